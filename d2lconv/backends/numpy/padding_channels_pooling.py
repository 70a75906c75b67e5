"""Sections 6.3 to 6.5, padding and stride, multiple channels, pooling, in the numpy tab."""

from __future__ import annotations

from typing import Any, cast

import numpy as np

from ...book import padding_channels_pooling as book
from ...core.args import conv2d_args
from .conv_layer import corr2d
from .ops import conv2d, tensor

# The conv layer ``comp_conv2d`` builds (``d2lconv demo --section 6.3`` names it).
CONV_LAYER = "d2lconv's conv2d"


def comp_conv2d(kernel_size: Any, padding: Any = 0, stride: Any = 1) -> tuple[int, int]:
    """The output (h, w) of a 1-in, 1-out channel convolution on an 8x8 input: ours, ``conv2d``."""
    kernel, padding, stride, _ = book.check_comp_conv2d(kernel_size, padding, stride)
    rng = np.random.default_rng()
    X = rng.random(book.COMP_CONV2D_INPUT)
    # (1, 1) indicates that batch size and the number of channels are both 1
    X, K, b = X.reshape((1, 1) + X.shape), rng.random((1, 1, *kernel)), rng.random(1)
    Y = conv2d(X, K, b, conv2d_args(X.shape, K.shape, b.shape, stride, padding))
    return tuple(Y.shape[2:])


def corr2d_multi_in(X: Any, K: Any) -> np.ndarray:
    """Cross-correlation of a multi-channel X (c, h, w) with K (c, kh, kw): one per channel, summed."""
    X, K = tensor(X), tensor(K)
    book.check_multi_in(X.shape, K.shape)
    # book.check_multi_in requires a channel, so the sum is an array, never its start value 0
    return cast(np.ndarray, sum(corr2d(x, k) for x, k in zip(X, K, strict=True)))


def corr2d_multi_in_out(X: Any, K: Any) -> np.ndarray:
    """One ``corr2d_multi_in`` per output channel of K (co, c, kh, kw), stacked: (co, oh, ow)."""
    X, K = tensor(X), tensor(K)
    book.check_multi_in_out(X.shape, K.shape)
    return np.stack([corr2d_multi_in(X, k) for k in K], 0)


def corr2d_multi_in_out_1x1(X: Any, K: Any) -> np.ndarray:
    """A 1x1 convolution as one matrix product: K (co, c) times X (c, h * w), the fully connected layer."""
    X, K = tensor(X), tensor(K)
    c_o, h, w = book.check_multi_in_out_1x1(X.shape, K.shape)
    c_i = X.shape[0]
    return (K.reshape((c_o, c_i)) @ X.reshape((c_i, h * w))).reshape((c_o, h, w))


def pool2d(X: Any, pool_size: Any, mode: str = "max") -> np.ndarray:
    """The book's pooling loop over a 2-D X, one output element per step; ``mode`` "max" or "avg"."""
    X = tensor(X)
    p_h, p_w = book.check_pool2d(X.shape, pool_size, mode)
    Y = np.zeros((X.shape[0] - p_h + 1, X.shape[1] - p_w + 1), dtype=X.dtype)
    for i in range(Y.shape[0]):
        for j in range(Y.shape[1]):
            if mode == "max":
                Y[i, j] = X[i : i + p_h, j : j + p_w].max()
            elif mode == "avg":
                Y[i, j] = X[i : i + p_h, j : j + p_w].mean()
    return Y
