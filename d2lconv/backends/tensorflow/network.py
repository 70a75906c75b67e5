"""The Keras tab's network writer and reader: ``keras.Sequential`` <-> d2lconv's ``Network``.

Keras is NHWC: kernels are HWIO (``w.transpose(2, 3, 1, 0)`` of OIHW), a ``Dense`` kernel is
(in, out), and ``Flatten`` reads a feature map in (H, W, C) order, so the first dense layer
after a flatten gets its input rows permuted. Keras pads only 'valid' or 'same' (SAME_UPPER),
so other paddings arrive here as explicit ``ZeroPadding2D`` layers (and, before a max
pooling, a ``Lambda`` that pads with -inf): ``d2lconv.core.plan.plan`` decides. Each layer
is built from the same source text ``network_code`` shows.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import keras
import numpy as np
from keras import layers

from ...core.network import Layer, Network, conv, dense_after_flatten, flatten_permutation, infer_input_shape, pool
from ...core.plan import cannot, plan, unsupported
from .._shared import pair_source
from .ops import NAME

_ACTIVATIONS = ("relu", "sigmoid", "tanh")


def _constant_pad(x: Any, padding: Sequence[tuple[int, int]], value: float) -> Any:
    """Pads the height and width of an NHWC batch with ``value`` (-inf before a max pooling)."""
    return keras.ops.pad(x, [(0, 0), *padding, (0, 0)], constant_values=value)


def _layer_source(index: int, layer: Layer, dtype: str) -> str:
    """One layer as the book's TensorFlow tab writes it (``keras.layers``, channels last)."""
    a, kind = layer.args, layer.kind
    tail = f", dtype='{dtype}')" if dtype == "float64" else ")"
    if kind in _ACTIVATIONS:
        return f"layers.Activation('{kind}'{tail}"
    if kind == "flatten":
        return f"layers.Flatten({tail.removeprefix(', ')}"
    if kind == "linear":
        return f"layers.Dense({a['out_features']}{'' if a['bias'] else ', use_bias=False'}{tail}"
    if kind == "zero_pad2d":
        top, bottom, left, right = a["padding"]
        return f"layers.ZeroPadding2D((({top}, {bottom}), ({left}, {right})){tail}"
    if kind == "constant_pad2d":
        top, bottom, left, right = a["padding"]
        value = "-math.inf" if a["value"] == -math.inf else repr(a["value"])
        return (
            f"layers.Lambda(constant_pad, arguments={{'padding': (({top}, {bottom}), ({left}, {right})), "
            f"'value': {value}}}{tail}"
        )
    padding = "'same'" if a["padding"] == "same" else "'valid'"
    if kind == "conv2d":
        options = [f"kernel_size={pair_source(a['kernel_size'])}"]
        options += [f"strides={pair_source(a['stride'])}"] if a["stride"] != (1, 1) else []
        options += [f"padding={padding}"] if padding != "'valid'" else []
        options += [f"dilation_rate={pair_source(a['dilation'])}"] if a["dilation"] != (1, 1) else []
        options += [f"groups={a['groups']}"] if a["groups"] != 1 else []
        options += [] if a["bias"] else ["use_bias=False"]
        return f"layers.Conv2D({a['out_channels']}, {', '.join(options)}{tail}"
    if kind == "conv_transpose2d":
        if a["padding"] == "same" or a["padding"] != (0, 0, 0, 0):
            raise cannot(index, layer, "a cropped transposed convolution (Conv2DTranspose pads only 'valid')", NAME)
        options = [
            f"kernel_size={pair_source(a['kernel_size'])}",
            f"strides={pair_source(a['stride'])}",
            f"output_padding={pair_source(a['output_padding'])}",
        ]
        options += [f"dilation_rate={pair_source(a['dilation'])}"] if a["dilation"] != (1, 1) else []
        options += [] if a["bias"] else ["use_bias=False"]
        return f"layers.Conv2DTranspose({a['out_channels']}, {', '.join(options)}{tail}"
    name = "MaxPooling2D" if kind == "max_pool2d" else "AveragePooling2D"
    options = [f"pool_size={pair_source(a['kernel_size'])}", f"strides={pair_source(a['stride'])}"]
    options += [f"padding={padding}"] if padding != "'valid'" else []
    return f"layers.{name}({', '.join(options)}{tail}"


def _source(net: Network) -> str:
    dtype = str(net.dtype)
    c, h, w = net.input_shape
    head = f"keras.Input(shape=({h}, {w}, {c}){', dtype=' + repr(dtype) if dtype == 'float64' else ''})"
    lines = "".join(f"    {_layer_source(index, layer, dtype)},\n" for index, layer in enumerate(net.layers))
    return f"keras.Sequential([\n    {head},\n{lines}])"


def _keras_weights(net: Network) -> list[list[np.ndarray]]:
    """Each layer's weights in Keras's layouts: HWIO kernels, (in, out) dense kernels with HWC rows."""
    permuted = dense_after_flatten(net)
    result = []
    for index, layer in enumerate(net.layers):
        arrays = []
        if layer.kind == "conv2d":
            arrays.append(layer.weights["weight"].transpose(2, 3, 1, 0))
        elif layer.kind == "conv_transpose2d":
            arrays.append(layer.weights["weight"].transpose(2, 3, 1, 0))  # (in, out, kh, kw) -> (kh, kw, out, in)
        elif layer.kind == "linear":
            weight = layer.weights["weight"]
            if index in permuted:
                weight = weight[:, flatten_permutation(permuted[index])]
            arrays.append(weight.T)
        if "bias" in layer.weights:
            arrays.append(layer.weights["bias"])
        result.append([np.ascontiguousarray(array) for array in arrays])
    return result


def build_network(net: Network) -> keras.Sequential:
    """``net`` as a ``keras.Sequential`` (NHWC), its weights loaded in Keras's layouts."""
    planned = plan(net, NAME).network
    model = eval(_source(planned), {"keras": keras, "layers": layers, "math": math, "constant_pad": _constant_pad})
    for layer, arrays in zip(model.layers, _keras_weights(planned), strict=True):
        if arrays:
            layer.set_weights(arrays)
    return model


def network_code(net: Network) -> str:
    """Source that builds ``net`` the way the book's TensorFlow tab would, and loads the weights file."""
    source = _source(plan(net, NAME).network)
    helper = (
        "\n\ndef constant_pad(x, padding, value):\n"
        '    """Pads an NHWC batch\'s height and width with value (-inf: padding never wins a max)."""\n'
        "    return keras.ops.pad(x, [(0, 0), *padding, (0, 0)], constant_values=value)\n\n"
        if "constant_pad" in source
        else "\n"
    )
    return (
        ("import math\n\n" if "math." in source else "") + "import keras\nimport numpy as np\n"
        f"from keras import layers\n{helper}\n"
        f"net = {source}\n"
        "weights = np.load('weights.npz')  # written by ported.save_weights\n"
        "for index, layer in enumerate(net.layers):\n"
        "    if layer.weights:\n"
        "        layer.set_weights([weights[f'{index}.{variable.name}'] for variable in layer.weights])\n"
    )


def native_weights(model: keras.Sequential) -> dict[str, np.ndarray]:
    """Every layer's variables in Keras's layouts, named ``"index.kernel"`` / ``"index.bias"``."""
    return {
        f"{index}.{variable.name}": np.array(variable.numpy())
        for index, layer in enumerate(model.layers)
        for variable in layer.weights
    }


def _padding(layer: layers.Layer) -> str | tuple[int, int, int, int]:
    return "same" if layer.padding == "same" else (0, 0, 0, 0)


def _read_layer(index: int, layer: layers.Layer) -> list[Layer]:
    """The layer's description (a convolution or dense layer with an activation becomes two layers)."""
    config = layer.get_config()
    if config.get("data_format", "channels_last") != "channels_last":
        raise unsupported(index, layer, "data_format='channels_first'")
    values = [np.array(variable.numpy()) for variable in layer.weights]
    bias = values[1] if len(values) > 1 else None
    activation = config.get("activation", "linear")
    if isinstance(layer, layers.Activation | layers.ReLU) or activation not in ("linear", None):
        name = "relu" if isinstance(layer, layers.ReLU) else activation
        if name not in _ACTIVATIONS:
            raise unsupported(index, layer, f"activation {name!r}")
        if isinstance(layer, layers.Activation | layers.ReLU):
            return [Layer(name)]
    tail = [Layer(activation)] if activation not in ("linear", None) else []
    if isinstance(layer, layers.Conv2DTranspose):
        layer_ = conv(
            values[0].shape[3],
            config["filters"],
            config["kernel_size"],
            config["strides"],
            0,
            config["dilation_rate"],
            1,
            values[0].transpose(3, 2, 0, 1),
            bias,
        )
        if config["padding"] != "valid":
            raise unsupported(index, layer, "a Conv2DTranspose with padding='same'")
        output_padding = config.get("output_padding") or (0, 0)
        return [
            Layer("conv_transpose2d", {**layer_.args, "output_padding": tuple(output_padding)}, layer_.weights),
            *tail,
        ]
    if isinstance(layer, layers.Conv2D):
        return [
            conv(
                values[0].shape[2] * config["groups"],
                config["filters"],
                config["kernel_size"],
                config["strides"],
                _padding(layer),
                config["dilation_rate"],
                config["groups"],
                values[0].transpose(3, 2, 0, 1),
                bias,
            ),
            *tail,
        ]
    if isinstance(layer, layers.Dense):
        return [
            Layer(
                "linear",
                {"in_features": values[0].shape[0], "out_features": config["units"], "bias": bias is not None},
                {"weight": values[0].T.copy(), **({} if bias is None else {"bias": bias})},
            ),
            *tail,
        ]
    if isinstance(layer, layers.MaxPooling2D | layers.AveragePooling2D):
        kind = "max_pool2d" if isinstance(layer, layers.MaxPooling2D) else "avg_pool2d"
        return [
            pool(
                kind, config["pool_size"], config["strides"], _padding(layer), count_include_pad=layer.padding != "same"
            )
        ]
    if isinstance(layer, layers.ZeroPadding2D):
        (top, bottom), (left, right) = config["padding"]
        return [Layer("zero_pad2d", {"padding": (top, bottom, left, right)})]
    if (
        isinstance(layer, layers.Lambda)
        and getattr(layer, "arguments", None)
        and set(layer.arguments) == {"padding", "value"}
    ):
        (top, bottom), (left, right) = layer.arguments["padding"]
        return [Layer("constant_pad2d", {"padding": (top, bottom, left, right), "value": layer.arguments["value"]})]
    if isinstance(layer, layers.Flatten):
        return [Layer("flatten")]
    raise unsupported(index, layer)


def read_network(model: keras.Sequential, input_shape: tuple[int, ...] | None = None) -> Network:
    """The description of a ``keras.Sequential`` (channels last): kernels back to OIHW, the dense layer
    after a flatten back to (C, H, W) columns."""
    if not isinstance(model, keras.Sequential):
        raise ValueError(f"port needs a sequential network (keras.Sequential); got {type(model).__name__}")
    described = [layer for index, native in enumerate(model.layers) for layer in _read_layer(index, native)]
    if input_shape is None:
        try:
            shape = model.inputs[0].shape
            input_shape = (shape[3], shape[1], shape[2])
        except (AttributeError, IndexError, ValueError):
            input_shape = infer_input_shape(described)
    net = Network(tuple(int(v) for v in input_shape), described)
    for index, chw in dense_after_flatten(net).items():
        weight = net.layers[index].weights["weight"]
        restored = np.empty_like(weight)
        restored[:, flatten_permutation(chw)] = weight  # HWC columns back to CHW
        net.layers[index].weights["weight"] = restored
    return net


def run_network(model: keras.Sequential, x: np.ndarray) -> np.ndarray:
    """The model's output on an NCHW batch (transposed to NHWC and back), as NumPy."""
    dtype = model.layers[0].dtype if model.layers else np.asarray(x).dtype
    y = np.asarray(model(np.ascontiguousarray(np.asarray(x).transpose(0, 2, 3, 1)).astype(dtype)))
    return y.transpose(0, 3, 1, 2) if y.ndim == 4 else y
