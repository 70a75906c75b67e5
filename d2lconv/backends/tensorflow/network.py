"""The Keras tab's network writer and reader: Keras models <-> d2lconv's ``Network``.

Keras is NHWC. The writer (``network_graph``) builds a ``keras.Sequential`` for a sequential
description and a functional ``keras.Model`` for a graph, from Keras's own layers, each named
after its node, with no transpose inside; the reader (``network_read``) reads any Sequential or
functional model back. Here: the tab's entry points, and running a model on NCHW batches (the
only place data is transposed, at the model's edge); ``port_checks`` runs it in training mode, node by
node, and for one SGD step.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import keras
import numpy as np
from keras import layers

from ...core.network import Network, dense_after_flatten, flatten_permutation, infer_input_shape
from ...core.plan import plan
from .. import FACTS
from .network_graph import HELPERS, keras_weights, model_source
from .network_read import output_names, read_nodes
from .ops import NAME


def build_network(net: Network) -> keras.Model:
    """``net`` in Keras's own layers (NHWC), its weights loaded in Keras's layouts."""
    planned = plan(net, FACTS[NAME]).network
    namespace: dict[str, Any] = {"keras": keras, "layers": layers, "math": math, **HELPERS}
    exec(model_source(planned), namespace)  # the same source network_code shows
    model = namespace["net"]
    for name, arrays in keras_weights(planned).items():
        model.get_layer(name).set_weights(arrays)
    return model


def network_code(net: Network) -> str:
    """Source that builds ``net`` the way the book's TensorFlow tab would, and loads the weights file."""
    source = model_source(plan(net, FACTS[NAME]).network)
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


def save_model(model: keras.Model, folder: Path, stem: str) -> list[Path]:
    """The model in Keras's own saved form, a ``.keras`` file (``keras.models.load_model``)."""
    path = folder / f"{stem}.keras"
    model.save(path)
    return [path]


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


def run_network(model: keras.Model, x: np.ndarray) -> np.ndarray:
    """The model's output on an NCHW batch (transposed to NHWC and back), as NumPy, in inference mode."""
    return _nchw(model(_nhwc(x, _dtype(model, x)), training=False))
