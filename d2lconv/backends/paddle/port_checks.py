"""The Paddle tab's hooks for ``Ported.compare(per_layer=True)`` and the training-step check (see
``d2lconv.core.network``): every layer's output through forward hooks, and one SGD step with autograd."""

from __future__ import annotations

from typing import Any

import numpy as np
import paddle
from paddle import nn

from .network import _NODES, _batch, _restore, _training, read_network, run_network


def run_nodes(model: nn.Layer, x: np.ndarray) -> dict[str, np.ndarray]:
    """Every node's output that is a layer's (inference mode), keyed by the node names ``read_network`` gives:
    for a model this tab built, each of its layers; for another Paddle model, each layer with parameters of
    its own (``layer1.0.conv1`` -> ``layer1_0_conv1``)."""
    built, planned = _NODES.get(model, (None, None))
    if planned is not None:  # the description's names -> the names read_network gives the same nodes
        read = read_network(model, tuple(np.shape(x)[1:]))
        same = [layer.kind for layer in read.layers] == [layer.kind for layer in planned.layers]
        renamed = {mine.name: theirs.name for mine, theirs in zip(planned.layers, read.layers, strict=False)}
        built = {path: renamed[name] for path, name in built.items()} if same else built
    found: dict[str, np.ndarray] = {}
    hooks = []
    for path, layer in model.named_sublayers():
        if built is not None:
            name = built.get(path)
        else:
            name = path.replace(".", "_") if layer._parameters else None
        if name is None:
            continue

        def record(_layer: nn.Layer, _inputs: Any, output: Any, name: str = name) -> None:
            key, count = name, 0
            while key in found:
                count += 1
                key = f"{name}_{count}"
            found[key] = np.array(output.numpy())

        hooks.append(layer.register_forward_post_hook(record))
    try:
        run_network(model, x)
    finally:
        for hook in hooks:
            hook.remove()
    return found


def train_forward(model: nn.Layer, x: np.ndarray) -> np.ndarray:
    """One training-mode forward: BatchNorm normalises with the batch's statistics and updates its running
    statistics in place; dropout stays off. The model's modes are restored afterwards."""
    modes = _training(model)
    try:
        with paddle.no_grad():
            y = model(_batch(model, x))
        return np.array((y[0] if isinstance(y, tuple | list) else y).numpy())
    finally:
        _restore(modes)


def train_step(model: nn.Layer, x: np.ndarray, target: np.ndarray, lr: float) -> float:
    """One step of plain SGD in place on loss = mean((y - target) ** 2), from a training-mode forward (running
    statistics updated, dropout identity); returns the loss before the step."""
    modes = _training(model)
    try:
        y = model(_batch(model, x))
        y = y[0] if isinstance(y, tuple | list) else y
        loss = ((y - paddle.to_tensor(np.asarray(target)).astype(y.dtype)) ** 2).mean()
        loss.backward()
        with paddle.no_grad():
            for parameter in model.parameters():
                if parameter.grad is not None and not parameter.stop_gradient:
                    parameter.set_value(parameter - lr * parameter.grad)
                    parameter.clear_gradient()
        return float(loss)
    finally:
        _restore(modes)
