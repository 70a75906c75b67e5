"""The NumPy tab's hooks for ``Ported.compare(per_layer=True)`` and the training-step check (see
``d2lconv.core.network``): every node's output, and one SGD step through the hand-derived backward passes."""

from __future__ import annotations

from typing import cast

import numpy as np

from . import layers, layers_graph
from .network import read_network


def run_nodes(model: layers.Module, x: np.ndarray) -> dict[str, np.ndarray]:
    """Every node's output in inference mode, keyed by the node names ``read_network`` gives."""
    model.eval()
    if isinstance(model, layers_graph.Graph):
        values = model.run(np.asarray(x))
        return {name: values[name] for name in model.nodes}
    names = [layer.name for layer in read_network(model, tuple(np.shape(x)[1:])).layers]
    outputs, value = {}, np.asarray(x)
    for name, module in zip(names, cast(layers.Sequential, model), strict=True):
        value = module.forward(value)
        outputs[name] = value
    return outputs


def training_mode(model: layers.Module) -> None:
    """Training mode with dropout off (so that two frameworks can be compared)."""
    model.train(True)
    for module in _all_modules(model):
        if isinstance(module, layers_graph.Dropout):
            module.eval()


def _all_modules(model: layers.Module) -> list[layers.Module]:
    return [model, *(module for child in model.children() for module in _all_modules(child))]


def train_forward(model: layers.Module, x: np.ndarray) -> np.ndarray:
    """One training-mode forward: BatchNorm normalises with the batch's statistics and updates its running
    statistics in place; dropout stays off. The model is left in inference mode."""
    training_mode(model)
    try:
        return np.asarray(model.forward(np.asarray(x)))
    finally:
        model.eval()


def train_step(model: layers.Module, x: np.ndarray, target: np.ndarray, lr: float) -> float:
    """One SGD step in place on loss = mean((model(x) - target)**2), in training mode with dropout off
    (BatchNorm's running statistics updated); returns the loss before the step. The model is left in
    inference mode."""
    training_mode(model)
    try:
        y = np.asarray(model.forward(np.asarray(x)))
        loss = float(np.mean((y - target) ** 2))
        model.backward(2 * (y - target) / y.size)
        for _, parameter, grad in cast(layers.Sequential, model).parameters():
            if grad is not None:
                parameter -= lr * grad
    finally:
        model.eval()
    return loss
