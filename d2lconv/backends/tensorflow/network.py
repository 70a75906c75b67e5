"""The Keras tab's network writer and reader: Keras models <-> d2lconv's ``Network``.

Keras is NHWC. The writer (``network_write``) builds a ``keras.Sequential`` for a sequential
description and a functional ``keras.Model`` for a graph, from Keras's own layers, each named
after its node, with no transpose inside; the reader (``network_read``) reads any Sequential or
functional model back. Here: the tab's entry points, and running a model on NCHW batches (the
only place data is transposed, at the model's edge), in inference or training mode, node by node,
and one SGD step.
"""

from __future__ import annotations

import math
from contextlib import contextmanager
from typing import Any

import keras
import numpy as np
import tensorflow as tf
from keras import layers

from ...core.network import Network, dense_after_flatten, flatten_permutation, infer_input_shape
from ...core.plan import plan
from .network_read import keras_nodes, node_names, output_names, read_nodes
from .network_write import HELPERS, keras_weights, model_source
from .ops import NAME


def build_network(net: Network) -> keras.Model:
    """``net`` in Keras's own layers (NHWC), its weights loaded in Keras's layouts."""
    planned = plan(net, NAME).network
    namespace: dict[str, Any] = {"keras": keras, "layers": layers, "math": math, **HELPERS}
    exec(model_source(planned), namespace)  # the same source network_code shows
    model = namespace["net"]
    for name, arrays in keras_weights(planned).items():
        model.get_layer(name).set_weights(arrays)
    return model


def network_code(net: Network) -> str:
    """Source that builds ``net`` the way the book's TensorFlow tab would, and loads the weights file."""
    source = model_source(plan(net, NAME).network)
    helpers = "".join(
        f"\n\ndef {name}{_signature(name)}:\n    {_body(name)}\n" for name in HELPERS if f"({name}," in source
    )
    return (
        ("import math\n\n" if "math." in source else "") + "import keras\nimport numpy as np\n"
        f"from keras import layers\n{helpers}\n\n{source}"
        "weights = np.load('weights.npz')  # written by ported.save_weights\n"
        "for layer in net.layers:\n"
        "    if layer.weights:\n"
        "        layer.set_weights([weights[f'{layer.name}.{variable.name}'] for variable in layer.weights])\n"
    )


def _signature(name: str) -> str:
    return "(x, padding, value)" if name == "constant_pad" else "(x, alpha, beta)"


def _body(name: str) -> str:
    if name == "constant_pad":
        return (
            '"""Pads an NHWC batch\'s height and width with value (-inf: padding never wins a max)."""\n'
            "    return keras.ops.pad(x, [(0, 0), *padding, (0, 0)], constant_values=value)"
        )
    return '"""clip(alpha * x + beta, 0, 1)."""\n    return keras.ops.clip(alpha * x + beta, 0.0, 1.0)'


def native_weights(model: keras.Model) -> dict[str, np.ndarray]:
    """Every layer's variables in Keras's layouts, named ``"<layer name>.<variable name>"``."""
    return {
        f"{layer.name}.{variable.name}": np.array(variable.numpy())
        for layer in model.layers
        for variable in layer.weights
    }


def read_network(model: keras.Model, input_shape: tuple[int, ...] | None = None) -> Network:
    """The description of a ``keras.Sequential`` or functional ``keras.Model`` (channels last): kernels
    back to OIHW, the dense layer after a flatten back to (C, H, W) columns."""
    described = list(read_nodes(model))
    if not described:
        raise ValueError("port needs a network with at least one layer; this Keras model has none")
    if input_shape is None:
        try:
            shape = model.inputs[0].shape
            input_shape = (shape[3], shape[1], shape[2]) if len(shape) == 4 else tuple(shape[1:])
        except (AttributeError, IndexError, ValueError, TypeError):
            input_shape = infer_input_shape(described)
    outputs = output_names(model)
    net = Network(tuple(int(v) for v in input_shape), described, outputs)
    for index, chw in dense_after_flatten(net).items():
        weight = net.layers[index].weights["weight"]
        restored = np.empty_like(weight)
        restored[:, flatten_permutation(chw)] = weight  # HWC columns back to CHW
        net.layers[index].weights["weight"] = restored
    return net


def _nhwc(x: np.ndarray, dtype: Any) -> np.ndarray:
    x = np.asarray(x)
    return np.ascontiguousarray(x.transpose(0, 2, 3, 1) if x.ndim == 4 else x).astype(dtype)


def _nchw(y: Any) -> np.ndarray:
    y = np.asarray(y)
    return y.transpose(0, 3, 1, 2) if y.ndim == 4 else y


def _dtype(model: keras.Model, x: np.ndarray) -> Any:
    return model.inputs[0].dtype if getattr(model, "inputs", None) else np.asarray(x).dtype


@contextmanager
def _dropout_off(model: keras.Model):
    """Training mode for BatchNorm with every Dropout an identity, as the comparisons need."""
    dropouts = [layer for layer, _ in keras_nodes(model) if isinstance(layer, layers.Dropout)]
    rates = [layer.rate for layer in dropouts]
    for layer in dropouts:
        layer.rate = 0.0
    try:
        yield
    finally:
        for layer, rate in zip(dropouts, rates, strict=True):
            layer.rate = rate


def run_network(model: keras.Model, x: np.ndarray, train: bool = False) -> np.ndarray:
    """The model's output on an NCHW batch (transposed to NHWC and back), as NumPy; ``train=True`` runs one
    training-mode forward (batch statistics, moving statistics updated; dropout off)."""
    with _dropout_off(model):
        return _nchw(model(_nhwc(x, _dtype(model, x)), training=train))


def run_nodes(model: keras.Model, x: np.ndarray) -> dict[str, np.ndarray]:
    """Every node's output in inference mode, NCHW, by the reader's node names (a layer with an activation
    gives its activated output, under its own name)."""
    names = node_names(model)
    chosen = [layer for layer, _ in keras_nodes(model)]
    probe = keras.Model(model.inputs, [layer.output for layer in chosen])
    outputs = probe(_nhwc(x, _dtype(model, x)), training=False)
    return {names[layer.name]: _nchw(y) for layer, y in zip(chosen, outputs, strict=True)}


def train_step(model: keras.Model, x: np.ndarray, target: np.ndarray, lr: float) -> float:
    """One plain SGD step in place on mean((y - target)**2) after a training-mode forward (dropout off);
    the loss before the step."""
    inputs, expected = _nhwc(x, _dtype(model, x)), _nhwc(target, _dtype(model, x))
    with _dropout_off(model), tf.GradientTape() as tape:
        loss = tf.reduce_mean(tf.square(model(inputs, training=True) - expected))
    variables = model.trainable_variables
    for variable, grad in zip(variables, tape.gradient(loss, variables), strict=True):
        variable.assign_sub(lr * grad)
    return float(loss)
