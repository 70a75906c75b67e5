"""The Flax tab's hooks for ``Ported.compare(train=True, per_layer=True)`` and the training-step check (see
``d2lconv.core.network``): a training-mode forward, every node's output, one SGD step with ``jax.value_and_grad``.

A bound module's variables are written back with ``scope.put_variable`` (the writer binds them mutable),
so the running statistics and the weights change in place, as in the other frameworks.
"""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from ...core.network import Network
from .network import _is_float64, _module, _nchw, _nhwc, read_network
from .ops import _enable_x64


def _training_options(model: nn.Module) -> dict[str, bool]:
    """The keyword arguments of a training-mode call of a module the writer made: BatchNorm on the batch's
    statistics, Dropout off. An nn.Sequential takes none (its BatchNorm's mode is fixed when it is built)."""
    graph = getattr(type(model), "graph", None)
    if not isinstance(graph, Network):
        return {}
    return {"train": True, **({"dropout": False} if any(n.kind == "dropout" for n in graph.layers) else {})}


def _write_back(model: nn.Module, collection: str, values: dict[str, Any]) -> None:
    for name, arrays in values.items():
        model.scope.put_variable(collection, name, arrays)


def train_forward(model: nn.Module, x: np.ndarray) -> np.ndarray:
    """One training-mode forward: BatchNorm normalises with the batch's statistics and the bound running
    statistics are updated in place; dropout stays off. Output NCHW."""
    module, variables = model.unbind()
    options, mutable = _training_options(model), ["batch_stats"] if "batch_stats" in variables else False
    with _enable_x64(_is_float64(model)):
        result = jax.jit(lambda v, inputs: module.apply(v, inputs, mutable=mutable, **options))(variables, _nhwc(x))
    y, updates = result if mutable else (result, {})
    _write_back(model, "batch_stats", updates.get("batch_stats", {}))
    return _nchw(y)


def run_nodes(model: nn.Module, x: np.ndarray) -> dict[str, np.ndarray]:
    """Every node's output in inference mode, NCHW, keyed by the node names ``read_network`` gives (an
    nn.Sequential's are ``<kind>_<index>``): the same graph, written to return every node."""
    net = read_network(model, tuple(np.shape(x)[1:]))
    probe = _module(net, every_node=True)
    variables = model.variables
    if isinstance(model, nn.Sequential):  # the probe's submodules are named after the nodes, not layers_<index>
        names = {f"layers_{index}": layer.name for index, layer in enumerate(net.layers)}
        variables = {
            collection: {names[key]: value for key, value in arrays.items()} for collection, arrays in variables.items()
        }
    with _enable_x64(_is_float64(model)):
        outputs = probe.apply(variables, _nhwc(x))
    return {name: _nchw(value) for name, value in outputs.items()}


def train_step(model: nn.Module, x: np.ndarray, target: np.ndarray, lr: float) -> float:
    """One plain SGD step in place on loss = mean((model(x) - target)**2), in training mode with dropout off
    (running statistics updated); returns the loss before the step."""
    module, variables = model.unbind()
    options = _training_options(model)
    mutable = ["batch_stats"] if "batch_stats" in variables else []
    with _enable_x64(_is_float64(model)):
        inputs, expected = _nhwc(x), _nhwc(target)

        def loss(params: dict) -> tuple[jnp.ndarray, dict]:
            y, updates = module.apply({**variables, "params": params}, inputs, mutable=mutable, **options)
            return jnp.mean((y - expected) ** 2), updates

        (value, updates), grads = jax.value_and_grad(loss, has_aux=True)(variables["params"])
        params = jax.tree.map(lambda w, g: w - lr * g, variables["params"], grads)
    _write_back(model, "params", params)
    _write_back(model, "batch_stats", updates.get("batch_stats", {}))
    return float(value)
