"""Batch normalisation (d2l-en 8.5, d2l-zh 7.5) in the numpy tab: the book's function, and a layer with a
hand-derived backward pass, so the NumPy tab trains BN networks as it trains LeNet.

Momentum is the weight of the new batch (PyTorch's convention, ``book.batch_norm``); the moving
variance takes the batch's biased variance, as the book's function does.
"""

from __future__ import annotations

from typing import Any, cast

import numpy as np

from ...book.batch_norm import EPS, MOMENTUM, stat_shape
from ...book.bn_lenet import bn_lenet_network, interleave, split_batch_norms
from . import layers
from .layers_graph import BatchNorm2d, Graph
from .network import build_network
from .ops import _in_common_dtype


def batch_norm(
    X: Any, gamma: Any, beta: Any, moving_mean: Any, moving_var: Any, eps: float, momentum: float, training: bool
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The book's ``batch_norm``: ``(Y, moving_mean, moving_var)``, the statistics in their given shape."""
    X, gamma, beta, moving_mean, moving_var = _in_common_dtype(
        X=X, gamma=gamma, beta=beta, moving_mean=moving_mean, moving_var=moving_var
    )
    shape = (1, -1) if X.ndim == 2 else (1, -1, 1, 1)
    if not training:
        # In prediction mode, use the mean and variance obtained by the moving average
        X_hat = (X - moving_mean.reshape(shape)) / np.sqrt(moving_var.reshape(shape) + eps)
    else:
        axes = (0,) if X.ndim == 2 else (0, 2, 3)  # every axis but the channels'
        mean = X.mean(axis=axes, keepdims=True)
        var = ((X - mean) ** 2).mean(axis=axes, keepdims=True)
        X_hat = (X - mean) / np.sqrt(var + eps)
        moving_mean = (1.0 - momentum) * moving_mean + momentum * mean.reshape(moving_mean.shape)
        moving_var = (1.0 - momentum) * moving_var + momentum * var.reshape(moving_var.shape)
    Y = gamma.reshape(shape) * X_hat + beta.reshape(shape)  # scale and shift
    return Y, moving_mean, moving_var


class BatchNorm(layers.Module):
    """The book's ``BatchNorm(num_features, num_dims)``: gamma (ones) and beta (zeros) are trained,
    the moving statistics (zeros and ones) are updated in training mode (``training``)."""

    def __init__(self, num_features: int, num_dims: int, eps: float = EPS, momentum: float = MOMENTUM) -> None:
        super().__init__()
        shape = stat_shape(num_features, num_dims)
        self.num_features, self.num_dims, self.eps, self.momentum = num_features, num_dims, eps, momentum
        self.params = {"gamma": np.ones(shape, np.float32), "beta": np.zeros(shape, np.float32)}
        self.moving_mean, self.moving_var = np.zeros(shape, np.float32), np.ones(shape, np.float32)

    def forward(self, x: Any) -> np.ndarray:
        self._input = x = np.asarray(x)
        self._statistics = self.moving_mean, self.moving_var  # what the prediction-mode backward divides by
        Y, self.moving_mean, self.moving_var = batch_norm(
            x, self.params["gamma"], self.params["beta"], self.moving_mean, self.moving_var,
            self.eps, self.momentum, self.training,
        )  # fmt: skip
        return Y

    def backward(self, grad: np.ndarray) -> np.ndarray:
        """By the NumPy tab's hand-derived ``vjp`` of ``batch_norm`` (``grads._batch_norm_backward``)."""
        inputs = (self._forward_input(), self.params["gamma"], self.params["beta"], *self._statistics)
        kwargs = {"eps": self.eps, "momentum": self.momentum, "training": self.training}
        dx, self.grads = layers._vjp("batch_norm", inputs, grad, kwargs, ("gamma", "beta"))
        return dx


def BNLeNet(seed: int = 0, concise: bool = False) -> layers.Sequential:  # noqa: N802 - the book's name
    """The book's BN-LeNet with this tab's ``BatchNorm``: the tab's writer builds the rest of
    ``bn_lenet_network(seed)`` in d2lconv's NumPy's own layers, weights drawn from ``seed`` by NumPy.
    ``concise=True``: the layer library's own ``BatchNorm2d`` (with the description's biased running variance)
    where the writer builds it, as the book's concise implementation takes the framework's."""
    if concise:
        net = cast(layers.Sequential, build_network(bn_lenet_network(seed)))
        net.train()  # a new network trains, as the from-scratch one does
        return net
    rest, places = split_batch_norms(bn_lenet_network(seed))
    return layers.Sequential(*interleave(list(cast(layers.Sequential, build_network(rest))), places, BatchNorm))


def running_statistics(net: layers.Sequential | Graph) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Each BatchNorm's (running mean, running variance) as flat arrays, in network order, by name (a ``Graph``'s
    node name, a ``Sequential``'s index): the book's ``BatchNorm`` and the layer library's ``BatchNorm2d`` alike."""
    named = net.nodes.items() if isinstance(net, Graph) else ((str(index), layer) for index, layer in enumerate(net))
    return {
        name: (layer.moving_mean.ravel(), layer.moving_var.ravel())
        if isinstance(layer, BatchNorm)
        else (layer.buffers["running_mean"].ravel(), layer.buffers["running_var"].ravel())
        for name, layer in named
        if isinstance(layer, BatchNorm | BatchNorm2d)
    }
