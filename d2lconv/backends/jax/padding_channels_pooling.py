"""Sections 6.3 to 6.5, padding and stride, multiple channels, pooling, in the jax tab."""

from __future__ import annotations

from typing import Any

import jax
from flax import linen as nn
from jax import numpy as jnp

from ...book import padding_channels_pooling as book
from ...core.checks import same_dtype_tensors
from .conv_layer import corr2d
from .ops import _x64_for_float64, tensor

# The conv layer ``comp_conv2d`` builds (``d2lconv demo --section 6.3`` names it).
CONV_LAYER = "flax.linen.Conv"


def comp_conv2d(kernel_size: Any, padding: Any = 0, stride: Any = 1) -> tuple[int, int]:
    """The output (h, w) of flax's own ``nn.Conv`` (1 feature) on an 8x8 input, as the book.

    flax reads ``padding=(ph, pw)`` as ``ph`` rows on top and bottom, ``pw`` columns left and right.
    """
    kernel, padding, stride, _ = book.check_comp_conv2d(kernel_size, padding, stride)
    conv2d = nn.Conv(1, kernel_size=kernel, padding=padding, strides=stride)
    key = jax.random.PRNGKey(0)
    X = jax.random.uniform(key, shape=book.COMP_CONV2D_INPUT)
    # (1, ..., 1): batch size and number of channels both 1; flax is channels-last
    Y, _ = conv2d.init_with_output(key, X.reshape((1,) + X.shape + (1,)))
    return tuple(Y.shape[1:3])


@_x64_for_float64
def corr2d_multi_in(X: Any, K: Any) -> jax.Array:
    """Cross-correlation of a multi-channel X (c, h, w) with K (c, kh, kw): one per channel, summed."""
    X, K = same_dtype_tensors(tensor, X, K)
    book.check_multi_in(X.shape, K.shape)
    return sum(corr2d(x, k) for x, k in zip(X, K, strict=True))


@_x64_for_float64
def corr2d_multi_in_out(X: Any, K: Any) -> jax.Array:
    """One ``corr2d_multi_in`` per output channel of K (co, c, kh, kw), stacked: (co, oh, ow)."""
    X, K = same_dtype_tensors(tensor, X, K)
    book.check_multi_in_out(X.shape, K.shape)
    return jnp.stack([corr2d_multi_in(X, k) for k in K], 0)


@_x64_for_float64
def corr2d_multi_in_out_1x1(X: Any, K: Any) -> jax.Array:
    """A 1x1 convolution as one matrix product: K (co, c) times X (c, h * w), the fully connected layer."""
    X, K = same_dtype_tensors(tensor, X, K)
    c_o, h, w = book.check_multi_in_out_1x1(X.shape, K.shape)
    c_i = X.shape[0]
    return jnp.matmul(K.reshape((c_o, c_i)), X.reshape((c_i, h * w))).reshape((c_o, h, w))


@_x64_for_float64
def pool2d(X: Any, pool_size: Any, mode: str = "max") -> jax.Array:
    """The book's pooling loop over a 2-D X: functional updates ``Y.at[i, j].set``, so ``jax.grad`` sees it."""
    X = tensor(X)
    p_h, p_w = book.check_pool2d(X.shape, pool_size, mode)
    Y = jnp.zeros((X.shape[0] - p_h + 1, X.shape[1] - p_w + 1), dtype=X.dtype)
    for i in range(Y.shape[0]):
        for j in range(Y.shape[1]):
            if mode == "max":
                Y = Y.at[i, j].set(X[i : i + p_h, j : j + p_w].max())
            elif mode == "avg":
                Y = Y.at[i, j].set(X[i : i + p_h, j : j + p_w].mean())
    return Y
