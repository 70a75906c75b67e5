"""Batch normalisation (d2l-en 8.5, d2l-zh 7.5) in the torch tab: the book's function and ``nn.Module``.

As the book's PyTorch tab, with momentum the weight of the new batch (d2l-en's 0.1; d2l-zh writes
0.9 as the old value's weight). The mode is an argument (the layer passes ``self.training``)
rather than the book's ``torch.is_grad_enabled()``, which takes evaluation under ``no_grad`` for
prediction but also a training step under ``no_grad`` for one; the moving statistics are
buffers, so ``net.double()`` and ``state_dict`` carry them.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from ...book.batch_norm import EPS, MOMENTUM, stat_shape
from ...book.bn_lenet import bn_lenet_network, interleave, split_batch_norms
from ...core.checks import same_dtype_tensors
from .ops import tensor


def batch_norm(
    X: Any, gamma: Any, beta: Any, moving_mean: Any, moving_var: Any, eps: float, momentum: float, training: bool
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The book's ``batch_norm``: ``(Y, moving_mean, moving_var)``, the statistics detached, in their given shape."""
    X, gamma, beta, moving_mean, moving_var = same_dtype_tensors(tensor, X, gamma, beta, moving_mean, moving_var)
    shape = (1, -1) if X.dim() == 2 else (1, -1, 1, 1)
    if not training:
        # In prediction mode, use the mean and variance obtained by the moving average
        X_hat = (X - moving_mean.reshape(shape)) / torch.sqrt(moving_var.reshape(shape) + eps)
    else:
        dim = (0,) if X.dim() == 2 else (0, 2, 3)  # every axis but the channels'
        mean = X.mean(dim=dim, keepdim=True)
        var = ((X - mean) ** 2).mean(dim=dim, keepdim=True)
        X_hat = (X - mean) / torch.sqrt(var + eps)
        moving_mean = (1.0 - momentum) * moving_mean + momentum * mean.reshape(moving_mean.shape)
        moving_var = (1.0 - momentum) * moving_var + momentum * var.reshape(moving_var.shape)
    Y = gamma.reshape(shape) * X_hat + beta.reshape(shape)  # scale and shift
    return Y, moving_mean.detach(), moving_var.detach()


class BatchNorm(nn.Module):
    """The book's ``BatchNorm(num_features, num_dims)``: 2 after a dense layer, 4 after a convolution."""

    def __init__(self, num_features: int, num_dims: int, eps: float = EPS, momentum: float = MOMENTUM) -> None:
        super().__init__()
        shape = stat_shape(num_features, num_dims)
        self.eps, self.momentum = eps, momentum
        # The scale and shift parameters are initialised to 1 and 0
        self.gamma = nn.Parameter(torch.ones(shape))
        self.beta = nn.Parameter(torch.zeros(shape))
        # The moving statistics are not parameters: buffers initialised to 0 and 1
        self.register_buffer("moving_mean", torch.zeros(shape))
        self.register_buffer("moving_var", torch.ones(shape))

    def forward(self, X: torch.Tensor) -> torch.Tensor:
        Y, moving_mean, moving_var = batch_norm(
            X, self.gamma, self.beta, self.moving_mean, self.moving_var, self.eps, self.momentum, self.training
        )
        self.moving_mean.copy_(moving_mean)
        self.moving_var.copy_(moving_var)
        return Y


def BNLeNet(seed: int = 0, concise: bool = False) -> nn.Sequential:  # noqa: N802 - the book's name
    """The book's BN-LeNet with this tab's ``BatchNorm``: the tab's writer builds the rest of
    ``bn_lenet_network(seed)`` in torch's own layers, weights drawn from ``seed`` by NumPy. ``concise=True`` is
    the book's concise implementation, torch's own ``nn.BatchNorm2d`` / ``nn.BatchNorm1d`` (momentum 0.1, eps
    1e-5) where the writer builds them: the same network, but its running variance takes the unbiased batch
    variance."""
    from .network import build_network  # an earlier section, imported here: grads imports this module first

    if concise:
        return build_network(bn_lenet_network(seed)).train()  # a new module trains, as nn.Sequential does
    rest, places = split_batch_norms(bn_lenet_network(seed))
    return nn.Sequential(*interleave(list(build_network(rest)), places, BatchNorm))


def running_statistics(net: nn.Module) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Each BatchNorm's (running mean, running variance) as flat arrays, in network order, by module name (a
    description's node name, an ``nn.Sequential``'s index): the book's ``BatchNorm`` and torch's own alike."""
    return {
        name: (layer.moving_mean.numpy().ravel(), layer.moving_var.numpy().ravel())
        if isinstance(layer, BatchNorm)
        else (layer.running_mean.numpy().ravel(), layer.running_var.numpy().ravel())
        for name, layer in net.named_modules()
        if isinstance(layer, BatchNorm | nn.BatchNorm1d | nn.BatchNorm2d)
    }
