"""Section 6.2, convolutions for images, in the torch tab."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ...book.conv_layer import patch_index
from ...core.checks import check_corr2d, pair, same_dtype_tensors
from .ops import tensor, to_numpy


def corr2d(X: Any, K: Any) -> torch.Tensor:
    """2-D cross-correlation, 'valid': a sum of shifted copies of X, one per kernel element."""
    X, K = same_dtype_tensors(tensor, X, K)
    out_h, out_w = check_corr2d(tuple(X.shape), tuple(K.shape))
    # Shift-sum, one fused multiply-add per kernel element (Y += K[a, b] * shifted X): at 512x512 it is
    # 3-20x faster than F.conv2d, which is slow on a single-channel image on CPU.
    h, w = K.shape
    Y = X.new_zeros((out_h, out_w))
    for a in range(h):
        for b in range(w):
            Y.addcmul_(K[a, b], X[a : a + out_h, b : b + out_w])
    return Y


def corr2d_loop(X: Any, K: Any) -> torch.Tensor:
    """2-D cross-correlation as the book's PyTorch tab writes it; differentiable as written.

    Autograd records each ``Y[i, j] = ...`` assignment, so gradients reach X and K
    (``Y`` itself is new and does not require grad, which is what makes this legal).
    """
    X, K = same_dtype_tensors(tensor, X, K)
    check_corr2d(tuple(X.shape), tuple(K.shape))
    h, w = K.shape
    Y = torch.zeros((X.shape[0] - h + 1, X.shape[1] - w + 1), dtype=X.dtype)
    for i in range(Y.shape[0]):
        for j in range(Y.shape[1]):
            Y[i, j] = (X[i : i + h, j : j + w] * K).sum()
    return Y


def convolve2d(X: Any, K: Any) -> torch.Tensor:
    """Strict 2-D convolution, 'valid': cross-correlation with K flipped on both axes."""
    X, K = same_dtype_tensors(tensor, X, K)
    check_corr2d(tuple(X.shape), tuple(K.shape))
    return corr2d(X, K.flip((0, 1)))


def corr2d_matmul(X: Any, K: Any) -> torch.Tensor:
    """2-D cross-correlation as one matrix product: the patches of X (one per row) times vec(K)."""
    X, K = same_dtype_tensors(tensor, X, K)
    out_shape = check_corr2d(tuple(X.shape), tuple(K.shape))
    patches = X.reshape(-1)[torch.from_numpy(patch_index(tuple(X.shape), tuple(K.shape)))]
    return (patches @ K.reshape(-1)).reshape(out_shape)


def native_corr2d(X: Any, K: Any) -> torch.Tensor:
    """torch's own convolution on the (1, 1, H, W) image, for benchmarks: ``F.conv2d``."""
    X, K = same_dtype_tensors(tensor, X, K)
    check_corr2d(tuple(X.shape), tuple(K.shape))
    return F.conv2d(X[None, None], K[None, None])[0, 0]


class Conv2D(nn.Module):
    """The book's convolutional layer, ``y = corr2d(x, weight) + bias``, as written in its PyTorch tab."""

    def __init__(self, kernel_size: Any) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.rand(pair(kernel_size, "kernel_size")))
        self.bias = nn.Parameter(torch.zeros(1))

    def forward(self, x: Any) -> torch.Tensor:
        return corr2d(x, self.weight) + self.bias


def learn_kernel(
    X: np.ndarray,
    Y: np.ndarray,
    layer: str,
    kernel_size: tuple[int, int],
    weight: np.ndarray | None,
    bias: float | None,
    lr: float,
    epochs: int,
) -> tuple[list[float], np.ndarray, float | None]:
    """The book's training loop: squared error, ``backward()``, plain SGD by ``torch.optim.SGD``.

    ``weight`` (and ``bias``) are loaded into the layer; ``weight=None`` keeps torch's own initialisation.
    """
    X, Y = tensor(X), tensor(Y)
    if layer == "builtin":  # the book's nn.Conv2d, on (batch, channel, height, width) data
        net: nn.Module = nn.Conv2d(1, 1, kernel_size=kernel_size, bias=False)
        X, Y = X.reshape(1, 1, *X.shape), Y.reshape(1, 1, *Y.shape)
    else:
        net = Conv2D(kernel_size)
    with torch.no_grad():
        if weight is not None:
            net.weight.copy_(tensor(weight).reshape(net.weight.shape))
        if bias is not None:
            net.bias.fill_(bias)
    trainer = torch.optim.SGD(net.parameters(), lr=lr)
    losses = []
    for _ in range(epochs):
        squared_error = (net(X) - Y) ** 2
        losses.append(squared_error.sum().item())
        trainer.zero_grad()
        squared_error.sum().backward()
        trainer.step()
    return losses, to_numpy(net.weight).reshape(kernel_size), None if bias is None else net.bias.item()
