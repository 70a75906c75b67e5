"""The PyTorch tab's hooks for ``Ported.compare(per_layer=True)`` and the training-step check (see
``d2lconv.core.network``): every node's output through ``torch.fx``, and one SGD step with autograd."""

from __future__ import annotations

import numpy as np
import torch
from torch import fx, nn

from .network import read_network


def run_nodes(model: nn.Module, x: np.ndarray) -> dict[str, np.ndarray]:
    """Every node's output in inference mode, keyed by the node names ``read_network`` gives."""
    names = {layer.name for layer in read_network(model, tuple(np.shape(x)[1:])).layers}
    traced = fx.symbolic_trace(model)
    outputs: dict[str, np.ndarray] = {}

    class Recorder(fx.Interpreter):
        def run_node(self, node: fx.Node) -> object:
            result = super().run_node(node)
            if node.name in names:
                outputs[node.name] = result.detach().numpy().copy()
            return result

    dtype = next((parameter.dtype for parameter in model.parameters()), torch.float32)
    set_mode(traced, False)
    with torch.no_grad():
        Recorder(traced).run(torch.from_numpy(np.ascontiguousarray(x)).to(dtype))
    return outputs


def set_mode(model: nn.Module, train: bool) -> None:
    """Training or inference mode, with dropout always off (so that two frameworks can be compared)."""
    model.train(train)
    for module in model.modules():
        if isinstance(module, nn.Dropout):
            module.eval()


def train_forward(model: nn.Module, x: np.ndarray) -> np.ndarray:
    """One training-mode forward: BatchNorm normalises with the batch's statistics and updates its running
    statistics in place; dropout stays off. The model is left in inference mode."""
    dtype = next((parameter.dtype for parameter in model.parameters()), torch.float32)
    set_mode(model, True)
    try:
        with torch.no_grad():
            return model(torch.from_numpy(np.ascontiguousarray(x)).to(dtype)).numpy()
    finally:
        model.eval()


def train_step(model: nn.Module, x: np.ndarray, target: np.ndarray, lr: float) -> float:
    """One SGD step in place on loss = mean((model(x) - target)**2), in training mode with dropout off
    (BatchNorm's running statistics updated); returns the loss before the step. The model is left in
    inference mode."""
    dtype = next((parameter.dtype for parameter in model.parameters()), torch.float32)
    set_mode(model, True)
    try:
        model.zero_grad()
        y = model(torch.from_numpy(np.ascontiguousarray(x)).to(dtype))
        loss = ((y - torch.from_numpy(np.ascontiguousarray(target)).to(dtype)) ** 2).mean()
        loss.backward()
        with torch.no_grad():
            for parameter in model.parameters():
                if parameter.grad is not None:
                    parameter -= lr * parameter.grad
    finally:
        model.eval()
    return float(loss.detach())
