"""Batch normalisation (d2l-zh 7.5) in the paddle tab: the book's function and a ``paddle.nn.Layer``.

As d2l-zh's Paddle tab, with three corrections: momentum is the weight of the new batch (d2lconv's
convention; the tab writes 0.9 as the old value's weight), a (N, C) input is averaged per feature
(the tab's ``paddle.mean(X)`` averages over everything), and the moving variance starts at ones
(the tab's zeros make the first predictions divide by sqrt(eps)). The layer's mode is ``self.training``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import paddle
from paddle import nn

from ...book.batch_norm import EPS, MOMENTUM, stat_shape
from ...book.bn_lenet import bn_lenet_network, interleave, split_batch_norms
from ...core.checks import same_dtype_tensors
from .ops import tensor


def batch_norm(
    X: Any, gamma: Any, beta: Any, moving_mean: Any, moving_var: Any, eps: float, momentum: float, training: bool
) -> tuple[paddle.Tensor, paddle.Tensor, paddle.Tensor]:
    """The book's ``batch_norm``: ``(Y, moving_mean, moving_var)``, the statistics detached, in their given shape."""
    X, gamma, beta, moving_mean, moving_var = same_dtype_tensors(tensor, X, gamma, beta, moving_mean, moving_var)
    shape = [1, -1] if X.ndim == 2 else [1, -1, 1, 1]
    if not training:
        # In prediction mode, use the mean and variance obtained by the moving average
        X_hat = (X - moving_mean.reshape(shape)) / (moving_var.reshape(shape) + eps) ** 0.5
    else:
        axis = [0] if X.ndim == 2 else [0, 2, 3]  # every axis but the channels'
        mean = paddle.mean(X, axis=axis, keepdim=True)
        var = paddle.mean((X - mean) ** 2, axis=axis, keepdim=True)
        X_hat = (X - mean) / (var + eps) ** 0.5
        moving_mean = (1.0 - momentum) * moving_mean + momentum * mean.reshape(moving_mean.shape)
        moving_var = (1.0 - momentum) * moving_var + momentum * var.reshape(moving_var.shape)
    Y = gamma.reshape(shape) * X_hat + beta.reshape(shape)  # scale and shift
    return Y, moving_mean.detach(), moving_var.detach()


class BatchNorm(nn.Layer):
    """The book's ``BatchNorm(num_features, num_dims)``: 2 after a dense layer, 4 after a convolution."""

    def __init__(self, num_features: int, num_dims: int, eps: float = EPS, momentum: float = MOMENTUM) -> None:
        super().__init__()
        shape = list(stat_shape(num_features, num_dims))
        self.eps, self.momentum = eps, momentum
        # The scale and shift parameters take part in the gradient; initialised to 1 and 0
        self.gamma = self.create_parameter(shape, default_initializer=nn.initializer.Constant(1.0))
        self.beta = self.create_parameter(shape, is_bias=True, default_initializer=nn.initializer.Constant(0.0))
        # The moving statistics are buffers initialised to 0 and 1
        self.register_buffer("moving_mean", paddle.zeros(shape))
        self.register_buffer("moving_var", paddle.ones(shape))

    def forward(self, X: paddle.Tensor) -> paddle.Tensor:
        Y, moving_mean, moving_var = batch_norm(
            X, self.gamma, self.beta, self.moving_mean, self.moving_var, self.eps, self.momentum, self.training
        )
        paddle.assign(moving_mean, self.moving_mean)
        paddle.assign(moving_var, self.moving_var)
        return Y


def BNLeNet(seed: int = 0, concise: bool = False) -> nn.Sequential:  # noqa: N802 - the book's name
    """The book's BN-LeNet with this tab's ``BatchNorm``: the tab's writer builds the rest of
    ``bn_lenet_network(seed)`` in Paddle's own layers, weights drawn from ``seed`` by NumPy. ``concise=True`` is
    the book's concise implementation, Paddle's own ``nn.BatchNorm2D`` / ``nn.BatchNorm1D`` (momentum 0.9, the
    weight kept, epsilon 1e-5) where the writer builds them."""
    from .network import build_network  # an earlier section, imported here: grads imports this module first

    if concise:
        net = build_network(bn_lenet_network(seed))
        net.train()  # a new network trains, as nn.Sequential does
        return net
    rest, places = split_batch_norms(bn_lenet_network(seed))
    built = build_network(rest)
    return nn.Sequential(*interleave([built[index] for index in range(len(built))], places, BatchNorm))


def running_statistics(net: nn.Layer) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Each BatchNorm's (running mean, running variance) as flat arrays, in network order, by sublayer name (a
    description's node name, an ``nn.Sequential``'s index): the book's ``BatchNorm`` and Paddle's own alike."""
    return {
        name: (layer.moving_mean.numpy().ravel(), layer.moving_var.numpy().ravel())
        if isinstance(layer, BatchNorm)
        else (layer._mean.numpy().ravel(), layer._variance.numpy().ravel())
        for name, layer in net.named_sublayers()
        if isinstance(layer, BatchNorm | nn.BatchNorm1D | nn.BatchNorm2D)
    }
