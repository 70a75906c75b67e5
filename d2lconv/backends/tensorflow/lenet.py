"""Section 6.6, LeNet, in the tensorflow tab: ``keras.Sequential`` on NHWC images, ``GradientTape``, Keras SGD.

Keras keeps images channels-last, so NCHW batches are transposed to NHWC on the way in,
and the writer loads the first dense layer with its rows permuted from d2lconv's
flatten order (C, H, W) to Keras's (H, W, C).
"""

from __future__ import annotations

import time

import numpy as np
import tensorflow as tf

from ...book.lenet import IMAGE_SHAPE, lenet_network
from .network import build_network


def LeNet(seed: int = 0, dtype: str = "float32") -> tf.keras.Sequential:  # noqa: N802 - the book's name
    """The book's LeNet-5 as Keras's own ``Sequential`` (NHWC); weights drawn from ``seed`` by NumPy, in ``dtype``."""
    return build_network(lenet_network(seed).astype(dtype))


def _nhwc_images(X: np.ndarray) -> tf.Tensor:
    """NCHW images as the NHWC tensor Keras layers take."""
    return tf.constant(np.ascontiguousarray(X.transpose(0, 2, 3, 1)))


def layer_summary(net: tf.keras.Sequential) -> list[tuple[str, tuple[int, ...]]]:
    """Each layer's name and output shape (C, H, W or features) for one 1x28x28 image; activations left out."""
    X = _nhwc_images(np.zeros((1, *IMAGE_SHAPE), np.float32))
    summary = []
    for layer in net.layers:
        X = layer(X)
        if not isinstance(layer, tf.keras.layers.Activation):
            shape = tuple(X.shape[1:])
            summary.append((type(layer).__name__, (shape[2], shape[0], shape[1]) if len(shape) == 3 else shape))
    return summary


class Trainer:
    """Plain minibatch SGD on the cross-entropy: ``GradientTape`` and Keras SGD, in one ``tf.function``."""

    def __init__(self, net: tf.keras.Sequential, lr: float) -> None:
        self.net = net
        # Keras computes a loss in its floatx (float32) unless told: a float64 network's loss stays float64
        dtype = net.trainable_variables[0].dtype
        self.loss = tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True, dtype=dtype)
        self.optimizer = tf.keras.optimizers.SGD(learning_rate=lr)
        self.optimizer.build(net.trainable_variables)
        self._update = tf.function(self._update_eagerly, reduce_retracing=True)

    def _update_eagerly(self, X: tf.Tensor, y: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        with tf.GradientTape() as tape:
            y_hat = self.net(X, training=True)
            l = self.loss(y, y_hat)  # noqa: E741 - the book's name
        grads = tape.gradient(l, self.net.trainable_variables)
        self.optimizer.apply_gradients(zip(grads, self.net.trainable_variables, strict=True))
        return l, tf.reduce_sum(tf.cast(tf.argmax(y_hat, 1) == y, tf.int32))

    def step(self, X: np.ndarray, y: np.ndarray) -> tuple[float, int]:
        """One update on a minibatch; returns its mean loss (before the update) and how many it got right."""
        l, right = self._update(_nhwc_images(X), tf.constant(y))  # noqa: E741 - the book's name
        return float(l), int(right)


def book_train(
    net: tf.keras.Model, X: np.ndarray, y: np.ndarray, lr: float, batch_size: int, epochs: int
) -> list[float]:
    """The book's own loop (``compile`` and ``fit`` on a shuffled ``tf.data`` pipeline) for any Keras model (``fit``
    calls it with ``training=True``: BatchNorm in training mode); the seconds of each epoch.

    For ``d2lconv bench``: the framework's idiomatic loop, to time d2lconv's driver against.
    """

    class EpochTimer(tf.keras.callbacks.Callback):
        def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
            self.start = time.perf_counter()

        def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
            seconds.append(time.perf_counter() - self.start)

    seconds: list[float] = []
    net.compile(
        optimizer=tf.keras.optimizers.SGD(learning_rate=lr),
        loss=tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    data = tf.data.Dataset.from_tensor_slices((_nhwc_images(X), y)).shuffle(len(y)).batch(batch_size)
    net.fit(data, epochs=epochs, verbose=0, callbacks=[EpochTimer()], shuffle=False)  # the pipeline shuffles
    return seconds
