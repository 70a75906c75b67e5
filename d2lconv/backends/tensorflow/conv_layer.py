"""Section 6.2, convolutions for images, in the tensorflow tab."""

from __future__ import annotations

from typing import Any

import numpy as np
import tensorflow as tf

from ...book.conv_layer import patch_index
from ...core.checks import check_corr2d, pair, same_dtype_tensors
from .ops import _conv_valid, tensor, to_numpy


def corr2d(X: Any, K: Any) -> tf.Tensor:
    """2-D cross-correlation, 'valid': ``tf.nn.conv2d`` on the (1, H, W, 1) view of X."""
    X, K = same_dtype_tensors(tensor, X, K)
    check_corr2d(X.shape, K.shape)
    # The conv op, not a shift-sum: at 512x512 / 3x3 an eager shift-sum takes 3-4x the native conv's time.
    return _conv_valid(X, K)


def corr2d_loop(X: Any, K: Any) -> tf.Tensor:
    """2-D cross-correlation as the book writes it: one ``assign`` per output pixel.

    Not differentiable: ``GradientTape`` does not see through ``Variable.assign`` and
    returns ``None`` for the gradient of K (the chapter's exercise); use ``corr2d``.
    """
    X, K = same_dtype_tensors(tensor, X, K)
    check_corr2d(X.shape, K.shape)
    h, w = K.shape
    Y = tf.Variable(tf.zeros((X.shape[0] - h + 1, X.shape[1] - w + 1), X.dtype))
    for i in range(Y.shape[0]):
        for j in range(Y.shape[1]):
            Y[i, j].assign(tf.reduce_sum(X[i : i + h, j : j + w] * K))
    return tf.convert_to_tensor(Y)


def convolve2d(X: Any, K: Any) -> tf.Tensor:
    """Strict 2-D convolution, 'valid': cross-correlation with K flipped on both axes."""
    X, K = same_dtype_tensors(tensor, X, K)
    check_corr2d(X.shape, K.shape)
    return corr2d(X, K[::-1, ::-1])


def corr2d_matmul(X: Any, K: Any) -> tf.Tensor:
    """2-D cross-correlation as one matrix product: the patches of X (``tf.gather``) times vec(K)."""
    X, K = same_dtype_tensors(tensor, X, K)
    out_shape = check_corr2d(X.shape, K.shape)
    patches = tf.gather(tf.reshape(X, [-1]), patch_index(tuple(X.shape), tuple(K.shape)))
    return tf.reshape(patches @ tf.reshape(K, (-1, 1)), out_shape)


def native_corr2d(X: Any, K: Any) -> tf.Tensor:
    """TensorFlow's own convolution, ``tf.nn.conv2d`` on (1, H, W, 1) and (kh, kw, 1, 1), for benchmarks."""
    X, K = same_dtype_tensors(tensor, X, K)
    check_corr2d(X.shape, K.shape)
    return _conv_valid(X, K)


class Conv2D(tf.keras.layers.Layer):
    """The book's convolutional layer, ``y = corr2d(x, weight) + bias``, as a Keras layer.

    The weights are created in the constructor from ``kernel_size`` (the book's
    ``build(self, kernel_size)`` would receive the input's shape from Keras instead):
    ``weight`` uniform in [0, 1), ``bias`` zero, both trainable.
    """

    def __init__(self, kernel_size: Any, **kwargs: Any) -> None:
        kernel_size = pair(kernel_size, "kernel_size")
        super().__init__(**kwargs)
        self.weight = self.add_weight(
            name="weight", shape=kernel_size, initializer=tf.keras.initializers.RandomUniform(0.0, 1.0)
        )
        self.bias = self.add_weight(name="bias", shape=(1,), initializer="zeros")

    def __call__(self, x: Any, *args: Any, **kwargs: Any) -> tf.Tensor:
        """Accept what ``corr2d`` accepts and raise its errors as they are (Keras would reword them)."""
        x = tensor(x)
        check_corr2d(x.shape, self.weight.shape)
        return super().__call__(x, *args, **kwargs)

    def call(self, x: tf.Tensor) -> tf.Tensor:
        """``corr2d(x, weight) + bias``."""
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
    """The book's training loop: ``GradientTape`` on the summed squared error, Keras SGD.

    "builtin" is the book's ``tf.keras.layers.Conv2D(1, kernel_size, use_bias=False)`` on NHWC
    data (1, H, W, 1); "custom" is our ``Conv2D`` on the 2-D data. ``weight`` (and ``bias``) are
    loaded into the layer; ``weight=None`` keeps Keras's own initialisation. Keras ``SGD``
    without momentum is exactly the book's ``w -= lr * grad``.
    """
    if layer == "builtin":
        net = tf.keras.layers.Conv2D(1, kernel_size, use_bias=False)
        X, Y = tf.reshape(X, (1, *X.shape, 1)), tf.reshape(Y, (1, *Y.shape, 1))
        net.build(X.shape)
        kernel = net.kernel
    else:
        net = Conv2D(kernel_size)
        kernel = net.weight
        net.bias.assign([bias])
    if weight is not None:
        kernel.assign(tf.reshape(weight, kernel.shape))
    optimizer = tf.keras.optimizers.SGD(learning_rate=lr)
    losses = []
    for _ in range(epochs):
        with tf.GradientTape() as tape:
            squared_error = (net(X) - Y) ** 2
            loss = tf.reduce_sum(squared_error)
        losses.append(float(loss))
        grads = tape.gradient(loss, net.trainable_variables)
        optimizer.apply_gradients(zip(grads, net.trainable_variables, strict=True))
    return losses, to_numpy(kernel).reshape(kernel_size), None if bias is None else float(to_numpy(net.bias)[0])
