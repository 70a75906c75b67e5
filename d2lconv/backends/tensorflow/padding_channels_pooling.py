"""Sections 6.3 to 6.5, padding and stride, multiple channels, pooling, in the tensorflow tab.

Keras's ``Conv2D`` knows only ``padding='valid'`` and ``'same'``. The book's TensorFlow tab
writes 'same' where the others pad (2, 1), which agrees in shape only at stride 1, and
'valid' where they pad (0, 1), so it prints (2, 1) instead of (2, 2). Keras users pad
explicitly with a ``ZeroPadding2D`` layer before a 'valid' ``Conv2D``; ``comp_conv2d`` does.
"""

from __future__ import annotations

from typing import Any

import tensorflow as tf

from ...book import padding_channels_pooling as book
from ...core.checks import same_dtype_tensors
from .conv_layer import corr2d
from .ops import tensor

# The conv layer ``comp_conv2d`` builds (``d2lconv demo --section 6.3`` names it).
CONV_LAYER = "keras ZeroPadding2D + Conv2D"


def comp_conv2d(kernel_size: Any, padding: Any = 0, stride: Any = 1) -> tuple[int, int]:
    """The output (h, w) of Keras's own ``Conv2D`` (1 filter) on an 8x8 input, padded by ``ZeroPadding2D``."""
    kernel, padding, stride, _ = book.check_comp_conv2d(kernel_size, padding, stride)
    conv2d = tf.keras.Sequential(
        [
            tf.keras.layers.ZeroPadding2D(padding),
            tf.keras.layers.Conv2D(1, kernel_size=kernel, padding="valid", strides=stride),
        ]
    )
    X = tf.random.uniform(shape=book.COMP_CONV2D_INPUT)
    # (1, ..., 1): batch size and number of channels both 1; Keras is channels-last
    Y = conv2d(tf.reshape(X, (1,) + X.shape + (1,)))
    return tuple(Y.shape[1:3])


def corr2d_multi_in(X: Any, K: Any) -> tf.Tensor:
    """Cross-correlation of a multi-channel X (c, h, w) with K (c, kh, kw): one per channel, summed."""
    X, K = same_dtype_tensors(tensor, X, K)
    book.check_multi_in(X.shape, K.shape)
    return tf.reduce_sum([corr2d(x, k) for x, k in zip(X, K, strict=True)], axis=0)


def corr2d_multi_in_out(X: Any, K: Any) -> tf.Tensor:
    """One ``corr2d_multi_in`` per output channel of K (co, c, kh, kw), stacked: (co, oh, ow)."""
    X, K = same_dtype_tensors(tensor, X, K)
    book.check_multi_in_out(X.shape, K.shape)
    return tf.stack([corr2d_multi_in(X, k) for k in K], 0)


def corr2d_multi_in_out_1x1(X: Any, K: Any) -> tf.Tensor:
    """A 1x1 convolution as one matrix product: K (co, c) times X (c, h * w), the fully connected layer."""
    X, K = same_dtype_tensors(tensor, X, K)
    c_o, h, w = book.check_multi_in_out_1x1(X.shape, K.shape)
    c_i = X.shape[0]
    return tf.reshape(tf.matmul(tf.reshape(K, (c_o, c_i)), tf.reshape(X, (c_i, h * w))), (c_o, h, w))


def pool2d(X: Any, pool_size: Any, mode: str = "max") -> tf.Tensor:
    """The book's pooling loop over a 2-D X: one ``assign`` per output element (so not differentiable)."""
    X = tensor(X)
    p_h, p_w = book.check_pool2d(X.shape, pool_size, mode)
    Y = tf.Variable(tf.zeros((X.shape[0] - p_h + 1, X.shape[1] - p_w + 1), dtype=X.dtype))
    for i in range(Y.shape[0]):
        for j in range(Y.shape[1]):
            if mode == "max":
                Y[i, j].assign(tf.reduce_max(X[i : i + p_h, j : j + p_w]))
            elif mode == "avg":
                Y[i, j].assign(tf.reduce_mean(X[i : i + p_h, j : j + p_w]))
    return tf.convert_to_tensor(Y)
