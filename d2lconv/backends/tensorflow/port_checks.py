"""The Keras tab's hooks for ``Ported.compare(train=True, per_layer=True)`` and the training-step check (see
``d2lconv.core.network``): a training-mode forward, every node's output, one SGD step with ``GradientTape``."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import keras
import numpy as np
import tensorflow as tf
from keras import layers

from .network import _dtype, _nchw, _nhwc
from .network_read import keras_nodes, node_names


@contextmanager
def _dropout_off(model: keras.Model) -> Iterator[None]:
    """Every Dropout an identity while a training-mode call runs (so that two frameworks can be compared)."""
    dropouts = [layer for layer, _ in keras_nodes(model) if isinstance(layer, layers.Dropout)]
    rates = [layer.rate for layer in dropouts]
    for layer in dropouts:
        layer.rate = 0.0
    try:
        yield
    finally:
        for layer, rate in zip(dropouts, rates, strict=True):
            layer.rate = rate


def train_forward(model: keras.Model, x: np.ndarray) -> np.ndarray:
    """One training-mode forward: BatchNormalization normalises with the batch's statistics and updates its
    moving statistics in place; dropout stays off. Output NCHW."""
    with _dropout_off(model):
        return _nchw(model(_nhwc(x, _dtype(model, x)), training=True))


def run_nodes(model: keras.Model, x: np.ndarray) -> dict[str, np.ndarray]:
    """Every node's output in inference mode, NCHW, keyed by the node names ``read_network`` gives (a layer
    with an activation gives its activated output, under its own name)."""
    names = node_names(model)
    chosen = [layer for layer, _ in keras_nodes(model)]
    probe = keras.Model(model.inputs, [layer.output for layer in chosen])
    outputs = probe([_nhwc(x, _dtype(model, x))], training=False)  # the probe's inputs are a list
    return {names[layer.name]: _nchw(y) for layer, y in zip(chosen, outputs, strict=True)}


def train_step(model: keras.Model, x: np.ndarray, target: np.ndarray, lr: float) -> float:
    """One plain SGD step in place on loss = mean((model(x) - target)**2), in training mode with dropout
    off (moving statistics updated); returns the loss before the step."""
    inputs, expected = _nhwc(x, _dtype(model, x)), _nhwc(target, _dtype(model, x))
    with _dropout_off(model), tf.GradientTape() as tape:
        loss = tf.reduce_mean(tf.square(model(inputs, training=True) - expected))
    variables = model.trainable_variables
    for variable, grad in zip(variables, tape.gradient(loss, variables), strict=True):
        variable.assign_sub(lr * grad)
    return float(loss)
