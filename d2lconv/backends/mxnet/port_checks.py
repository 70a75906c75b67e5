"""The MXNet tab's hooks for ``Ported.compare(per_layer=True)`` and the training-step check (see
``d2lconv.core.network``): every node's output from the block's symbol graph, and one SGD step with autograd."""

from __future__ import annotations

import json

import numpy as np

from .network import _call, _dropouts, _first, _legacy, _restore_dropouts
from .network_read import first_output, legacy_mode, symbol
from .ops import autograd, gluon, mnp, mx


def run_nodes(model: gluon.Block, x: np.ndarray) -> dict[str, np.ndarray]:
    """Every node's output (inference mode) that the symbol graph names after a layer, keyed by the node names
    ``read_network`` gives (a model this tab built keeps the description's names)."""
    graph, _ = symbol(model)
    prefix = getattr(model, "prefix", "") or ""
    internals = graph.get_internals()
    names = set(internals.list_outputs())
    wanted = {}
    for node in json.loads(graph.tojson())["nodes"]:
        if node["op"] != "null":
            base = node["name"][len(prefix) :] if prefix and node["name"].startswith(prefix) else node["name"]
            wanted[base.removesuffix("_fwd")] = first_output(node["name"], names)
    outputs = list(wanted.values())
    group = mx.sym.Group([internals[name] for name in outputs])
    parameters = model.collect_params()
    dtype = next((parameter.dtype for parameter in parameters.values()), np.float32)
    with legacy_mode():
        block = gluon.SymbolBlock(group, mx.sym.var("data"), params=parameters)
        results = block(mx.nd.array(np.asarray(x), dtype=dtype))
    by_output = dict(zip(outputs, results, strict=True))
    return {node: by_output[output].asnumpy() for node, output in wanted.items() if output in by_output}


def train_forward(model: gluon.Block, x: np.ndarray) -> np.ndarray:
    """One training-mode pass: BatchNorm normalises with the batch's statistics and, in the backward MXNet
    runs for it, updates its running statistics in place; dropout stays off."""
    x, legacy = np.asarray(x), _legacy(model)
    rates = _dropouts(model, 0.0)
    try:
        with autograd.record(train_mode=True):
            y = _first(_call(model, x, legacy))
        y.backward()  # MXNet's BatchNorm updates its running statistics here
        return y.asnumpy()
    finally:
        _restore_dropouts(model, rates)


def train_step(model: gluon.Block, x: np.ndarray, target: np.ndarray, lr: float) -> float:
    """One step of plain SGD in place on loss = mean((y - target) ** 2), from a training-mode forward (running
    statistics updated, dropout identity); returns the loss before the step."""
    x, legacy = np.asarray(x), _legacy(model)
    parameters = [p for p in model.collect_params().values() if p.grad_req != "null"]
    rates = _dropouts(model, 0.0)
    try:
        with autograd.record(train_mode=True):
            y = _first(_call(model, x, legacy))
            goal = mx.nd.array(target, dtype=y.dtype) if legacy else mnp.array(target, dtype=y.dtype)
            loss = ((y - goal) ** 2).mean()
        loss.backward()
        for parameter in parameters:
            parameter.set_data(parameter.data() - lr * parameter.grad())
        return float(loss.asnumpy())
    finally:
        _restore_dropouts(model, rates)
