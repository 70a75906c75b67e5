"""Batch normalisation (d2l-en 8.5, d2l-zh 7.5) in the tensorflow tab: the function and a Keras ``Layer``.

The book's TensorFlow tab splits the work: its ``batch_norm`` only normalises with given statistics,
and the layer's ``call`` computes the batch's and updates the moving ones (momentum 0.1 as the new
batch's weight in d2l-en, 0.9 as the old value's in d2l-zh). Here ``batch_norm`` does the whole
of the book's function, with d2lconv's convention (the new batch's weight), and the layer calls it.
Keras keeps channels last: the layer normalises over every axis but the last (``channel_axis=-1``),
its weights are (C,) as Keras's own ``BatchNormalization``'s; Keras 3 has no ``add_update``, so the
layer assigns its moving statistics itself.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import tensorflow as tf

from ...book.batch_norm import EPS, MOMENTUM, check_layer
from ...book.bn_lenet import bn_lenet_network, interleave, split_batch_norms
from ...core.checks import same_dtype_tensors
from .ops import tensor


def batch_norm(
    X: Any, gamma: Any, beta: Any, moving_mean: Any, moving_var: Any, eps: float, momentum: float, training: bool,
    channel_axis: int = 1,
) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:  # fmt: skip
    """The book's ``batch_norm``: ``(Y, moving_mean, moving_var)``, the statistics in their given shape. The
    channels are on ``channel_axis``: 1 for d2lconv's NCHW (or (N, C)) data, -1 for the layer's NHWC."""
    X, gamma, beta, moving_mean, moving_var = same_dtype_tensors(tensor, X, gamma, beta, moving_mean, moving_var)
    rank, channel_axis = len(X.shape), channel_axis % len(X.shape)
    shape = [-1 if axis == channel_axis else 1 for axis in range(rank)]
    if not training:
        mean, var = tf.reshape(moving_mean, shape), tf.reshape(moving_var, shape)
    else:
        axes = [axis for axis in range(rank) if axis != channel_axis]
        mean = tf.reduce_mean(X, axes, keepdims=True)
        var = tf.reduce_mean(tf.math.squared_difference(X, mean), axes, keepdims=True)
        moving_mean = (1.0 - momentum) * moving_mean + momentum * tf.reshape(mean, moving_mean.shape)
        moving_var = (1.0 - momentum) * moving_var + momentum * tf.reshape(var, moving_var.shape)
    # Compute the reciprocal of the square root of the variance elementwise, then scale and shift
    inv = tf.math.rsqrt(var + eps) * tf.reshape(gamma, shape)
    Y = X * inv + (tf.reshape(beta, shape) - mean * inv)
    return Y, tf.stop_gradient(moving_mean), tf.stop_gradient(moving_var)


class BatchNorm(tf.keras.layers.Layer):
    """The book's ``BatchNorm`` on channels-last data; ``num_features`` and ``num_dims`` as the other tabs'."""

    def __init__(
        self, num_features: int, num_dims: int, eps: float = EPS, momentum: float = MOMENTUM, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        check_layer(num_features, num_dims)
        self.num_features, self.num_dims, self.eps, self.momentum = num_features, num_dims, eps, momentum

    def build(self, input_shape: Any) -> None:
        weight_shape = (self.num_features,)
        # The scale parameter and the shift parameter are initialised to 1 and 0
        self.gamma = self.add_weight(name="gamma", shape=weight_shape, initializer="ones", trainable=True)
        self.beta = self.add_weight(name="beta", shape=weight_shape, initializer="zeros", trainable=True)
        # The variables that are not model parameters are initialised to 0 and 1
        self.moving_mean = self.add_weight(name="moving_mean", shape=weight_shape, initializer="zeros", trainable=False)
        self.moving_variance = self.add_weight(
            name="moving_variance", shape=weight_shape, initializer="ones", trainable=False
        )

    def call(self, inputs: tf.Tensor, training: bool | None = None) -> tf.Tensor:
        Y, moving_mean, moving_variance = batch_norm(
            inputs, self.gamma, self.beta, self.moving_mean, self.moving_variance,
            self.eps, self.momentum, bool(training), channel_axis=-1,
        )  # fmt: skip
        if training:
            self.moving_mean.assign(moving_mean)
            self.moving_variance.assign(moving_variance)
        return Y


def BNLeNet(seed: int = 0, concise: bool = False) -> tf.keras.Model:  # noqa: N802 - the book's name
    """The book's BN-LeNet with this tab's ``BatchNorm`` (channels last): the tab's writer builds the rest of
    ``bn_lenet_network(seed)`` in Keras's own layers, weights drawn from ``seed`` by NumPy. ``concise=True`` is
    the book's concise implementation, Keras's own ``BatchNormalization`` (momentum 0.9, the weight kept,
    epsilon 1e-5) where the writer builds it."""
    from .network import build_network  # an earlier section, imported here: grads imports this module first

    if concise:
        return build_network(bn_lenet_network(seed))
    rest, places = split_batch_norms(bn_lenet_network(seed))
    built = build_network(rest).layers
    return tf.keras.Sequential([tf.keras.Input((28, 28, 1)), *interleave(built, places, BatchNorm)])


def running_statistics(net: tf.keras.Model) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Each BatchNorm's (moving mean, moving variance) as flat arrays, in network order, by layer name (a
    description's node name, else the name Keras gives): the book's ``BatchNorm`` and Keras's own alike."""
    return {
        layer.name: (layer.moving_mean.numpy().ravel(), layer.moving_variance.numpy().ravel())
        for layer in net.layers
        if isinstance(layer, BatchNorm | tf.keras.layers.BatchNormalization)
    }
