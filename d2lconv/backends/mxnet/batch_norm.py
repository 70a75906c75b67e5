"""Batch normalisation (d2l-en 8.5, d2l-zh 7.5) in the mxnet tab: the book's function and a Gluon ``Block``.

As the book's MXNet tab, with momentum the weight of the new batch (d2l-en's 0.1; d2l-zh writes 0.9 as
the old value's weight) and epsilon 1e-5 (the book's MXNet tab writes 1e-12, every other tab 1e-5).
The layer asks ``autograd.is_training()`` for the mode, as the book does: training inside
``autograd.record()``, prediction outside it.
"""

from __future__ import annotations

from typing import Any

import numpy as onp
from mxnet import autograd, init
from mxnet import np as mnp
from mxnet.gluon import nn

from ...book.batch_norm import EPS, MOMENTUM, stat_shape
from ...book.bn_lenet import bn_lenet_network, interleave, split_batch_norms
from ...core.checks import same_dtype_tensors
from .ops import tensor


def batch_norm(
    X: Any, gamma: Any, beta: Any, moving_mean: Any, moving_var: Any, eps: float, momentum: float, training: bool
) -> tuple[mnp.ndarray, mnp.ndarray, mnp.ndarray]:
    """The book's ``batch_norm``: ``(Y, moving_mean, moving_var)``, the statistics in their given shape."""
    X, gamma, beta, moving_mean, moving_var = same_dtype_tensors(tensor, X, gamma, beta, moving_mean, moving_var)
    shape = (1, -1) if X.ndim == 2 else (1, -1, 1, 1)
    if not training:
        # In prediction mode, use the mean and variance obtained by the moving average
        X_hat = (X - moving_mean.reshape(shape)) / mnp.sqrt(moving_var.reshape(shape) + eps)
    else:
        axis = 0 if X.ndim == 2 else (0, 2, 3)  # every axis but the channels'
        mean = X.mean(axis=axis, keepdims=True)
        var = ((X - mean) ** 2).mean(axis=axis, keepdims=True)
        X_hat = (X - mean) / mnp.sqrt(var + eps)
        moving_mean = (1.0 - momentum) * moving_mean + momentum * mean.reshape(moving_mean.shape)
        moving_var = (1.0 - momentum) * moving_var + momentum * var.reshape(moving_var.shape)
    Y = gamma.reshape(shape) * X_hat + beta.reshape(shape)  # scale and shift
    return Y, moving_mean.detach(), moving_var.detach()


class BatchNorm(nn.Block):
    """The book's ``BatchNorm(num_features, num_dims)``: 2 after a dense layer, 4 after a convolution; its
    parameters are initialised here (gamma ones, beta zeros), so the layer is ready to call."""

    def __init__(
        self, num_features: int, num_dims: int, eps: float = EPS, momentum: float = MOMENTUM, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        shape = stat_shape(num_features, num_dims)
        self.eps, self.momentum = eps, momentum
        # The scale parameter and the shift parameter are initialised to 1 and 0
        self.gamma = self.params.get("gamma", shape=shape, init=init.One())
        self.beta = self.params.get("beta", shape=shape, init=init.Zero())
        # The variables that are not model parameters are initialised to 0 and 1
        self.moving_mean = mnp.zeros(shape)
        self.moving_var = mnp.ones(shape)
        self.initialize()  # ready to call, as the tab's Conv2D

    def forward(self, X: mnp.ndarray) -> mnp.ndarray:
        # If X is not on the main memory, copy moving_mean and moving_var to the device where X is
        if self.moving_mean.ctx != X.ctx:
            self.moving_mean = self.moving_mean.copyto(X.ctx)
            self.moving_var = self.moving_var.copyto(X.ctx)
        # Save the updated moving_mean and moving_var
        Y, self.moving_mean, self.moving_var = batch_norm(
            X, self.gamma.data(), self.beta.data(), self.moving_mean, self.moving_var,
            self.eps, self.momentum, autograd.is_training(),
        )  # fmt: skip
        return Y


def BNLeNet(seed: int = 0, concise: bool = False) -> nn.Sequential:  # noqa: N802 - the book's name
    """The book's BN-LeNet with this tab's ``BatchNorm`` (a ``Block``, so the network is an ``nn.Sequential``):
    the tab's writer builds the rest of ``bn_lenet_network(seed)`` in Gluon's own layers, weights drawn from
    ``seed`` by NumPy. ``concise=True`` is the book's concise implementation, Gluon's own ``nn.BatchNorm``
    (momentum 0.9, the weight kept, epsilon 1e-5) where the writer builds it."""
    from .network import build_network  # an earlier section, imported here: grads imports this module first

    if concise:
        return build_network(bn_lenet_network(seed))
    rest, places = split_batch_norms(bn_lenet_network(seed))
    built = build_network(rest)
    net = nn.Sequential()
    net.add(*interleave([built[index] for index in range(len(built))], places, BatchNorm))
    return net


def running_statistics(net: nn.Block) -> dict[str, tuple[onp.ndarray, onp.ndarray]]:
    """Each BatchNorm's (running mean, running variance) as flat arrays, in network order, by child name (a
    description's node name, an ``nn.Sequential``'s index): the book's ``BatchNorm`` and Gluon's own alike."""
    return {
        name: (layer.moving_mean.asnumpy().ravel(), layer.moving_var.asnumpy().ravel())
        if isinstance(layer, BatchNorm)
        else (layer.running_mean.data().asnumpy().ravel(), layer.running_var.data().asnumpy().ravel())
        for name, layer in net._children.items()
        if isinstance(layer, BatchNorm | nn.BatchNorm)
    }
