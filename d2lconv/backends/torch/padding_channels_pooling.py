"""Sections 6.3 to 6.5, padding and stride, multiple channels, pooling, in the torch tab."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from ...book import padding_channels_pooling as book
from ...core.checks import same_dtype_tensors
from .conv_layer import corr2d
from .ops import tensor

# The conv layer ``comp_conv2d`` builds (``d2lconv demo --section 6.3`` names it).
CONV_LAYER = "torch.nn.Conv2d"


def comp_conv2d(kernel_size: Any, padding: Any = 0, stride: Any = 1) -> tuple[int, int]:
    """The output (h, w) of torch's own ``nn.Conv2d`` (1 in, 1 out channel) on an 8x8 input, as the book."""
    kernel, padding, stride, _ = book.check_comp_conv2d(kernel_size, padding, stride)
    conv2d = nn.Conv2d(1, 1, kernel_size=kernel, padding=padding, stride=stride)
    X = torch.rand(size=book.COMP_CONV2D_INPUT)
    # (1, 1) indicates that batch size and the number of channels are both 1
    with torch.no_grad():
        Y = conv2d(X.reshape((1, 1) + X.shape))
    return tuple(Y.shape[2:])


def corr2d_multi_in(X: Any, K: Any) -> torch.Tensor:
    """Cross-correlation of a multi-channel X (c, h, w) with K (c, kh, kw): one per channel, summed."""
    X, K = same_dtype_tensors(tensor, X, K)
    book.check_multi_in(tuple(X.shape), tuple(K.shape))
    return sum(corr2d(x, k) for x, k in zip(X, K, strict=True))


def corr2d_multi_in_out(X: Any, K: Any) -> torch.Tensor:
    """One ``corr2d_multi_in`` per output channel of K (co, c, kh, kw), stacked: (co, oh, ow)."""
    X, K = same_dtype_tensors(tensor, X, K)
    book.check_multi_in_out(tuple(X.shape), tuple(K.shape))
    return torch.stack([corr2d_multi_in(X, k) for k in K], 0)


def corr2d_multi_in_out_1x1(X: Any, K: Any) -> torch.Tensor:
    """A 1x1 convolution as one matrix product: K (co, c) times X (c, h * w), the fully connected layer."""
    X, K = same_dtype_tensors(tensor, X, K)
    c_o, h, w = book.check_multi_in_out_1x1(tuple(X.shape), tuple(K.shape))
    c_i = X.shape[0]
    return torch.matmul(K.reshape((c_o, c_i)), X.reshape((c_i, h * w))).reshape((c_o, h, w))


def pool2d(X: Any, pool_size: Any, mode: str = "max") -> torch.Tensor:
    """The book's pooling loop over a 2-D X, one output element per step (differentiable in torch)."""
    X = tensor(X)
    p_h, p_w = book.check_pool2d(tuple(X.shape), pool_size, mode)
    Y = torch.zeros((X.shape[0] - p_h + 1, X.shape[1] - p_w + 1), dtype=X.dtype)
    for i in range(Y.shape[0]):
        for j in range(Y.shape[1]):
            if mode == "max":
                Y[i, j] = X[i : i + p_h, j : j + p_w].max()
            elif mode == "avg":
                Y[i, j] = X[i : i + p_h, j : j + p_w].mean()
    return Y
