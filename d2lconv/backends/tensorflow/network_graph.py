"""The Keras tab's writer: d2lconv's ``Network`` -> Keras's own layers, channels last, as source text.

Every node becomes one Keras layer named after it: ``Conv2D`` (HWIO kernel), ``DepthwiseConv2D``
for a depthwise convolution (kernel (kh, kw, C, m)), ``BatchNormalization`` with Keras's momentum
(the weight kept on the running value, 1 - the description's) and the source's epsilon,
``Add``/``Multiply``/``Concatenate`` (on the last axis, NHWC's channels), ``GlobalAveragePooling2D``,
``Dropout`` and the activations. Nothing transposes inside the model. Paddings Keras's 'valid' and
'same' cannot express arrive from ``d2lconv.core.plan`` as ``ZeroPadding2D`` nodes (and, before a max
pooling, a ``Lambda`` that pads with -inf).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import keras
import numpy as np

from ...core.conventions import momentum_kept
from ...core.network import INPUT, Layer, Network, dense_after_flatten, flatten_permutation
from ...core.plan import cannot
from .. import FACTS
from .._shared import pair_source
from .ops import NAME

# Activations that are one Keras layer with no argument.
_NAMED = {
    "relu": "layers.ReLU",
    "relu6": "layers.ReLU",
    "sigmoid": "layers.Activation('sigmoid'",
    "tanh": "layers.Activation('tanh'",
    "silu": "layers.Activation('silu'",
    "hard_swish": "layers.Activation('hard_silu'",
}
# Names the generated source uses itself: a node of that name gets a trailing underscore.
_RESERVED = {"keras", "layers", "np", "math", "net", "inputs", "weights", "layer", "constant_pad", "hard_sigmoid"}


def constant_pad(x: Any, padding: Sequence[tuple[int, int]], value: float) -> Any:
    """Pads the height and width of an NHWC batch with ``value`` (-inf before a max pooling)."""
    return keras.ops.pad(x, [(0, 0), *padding, (0, 0)], constant_values=value)


def hard_sigmoid(x: Any, alpha: float, beta: float) -> Any:
    """clip(alpha * x + beta, 0, 1): a hard sigmoid other than Keras's relu6(x + 3) / 6 (ONNX's 0.2, 0.5)."""
    return keras.ops.clip(alpha * x + beta, 0.0, 1.0)


HELPERS = {"constant_pad": constant_pad, "hard_sigmoid": hard_sigmoid}


def variable(name: str) -> str:
    """The Python variable holding node ``name``'s output in the generated source."""
    return "inputs" if name == INPUT else f"{name}_" if name in _RESERVED else name


def layer_source(index: int, layer: Layer, rank: int, dtype: str) -> str:  # noqa: C901 - one branch per kind
    """One node as the book's TensorFlow tab writes a layer (``keras.layers``, channels last); ``rank`` is
    the rank of its (first) input, batch axis included."""
    a, kind = layer.args, layer.kind
    tail = f", name='{layer.name}'" + (f", dtype='{dtype}')" if dtype == "float64" else ")")
    if kind in _NAMED:
        head = _NAMED[kind]
        if head.endswith("ReLU"):
            return f"{head}({'max_value=6' + tail if kind == 'relu6' else tail.removeprefix(', ')}"
        return head + tail
    if kind == "leaky_relu":
        return f"layers.LeakyReLU(negative_slope={a['negative_slope']!r}{tail}"
    if kind == "elu":
        return f"layers.ELU(alpha={a['alpha']!r}{tail}"
    if kind == "gelu":
        if a["approximate"] == "none":
            return f"layers.Activation('gelu'{tail}"
        return f"layers.Lambda(keras.activations.gelu, arguments={{'approximate': True}}{tail}"
    if kind == "hard_sigmoid":
        if math.isclose(a["alpha"], 1 / 6) and a["beta"] == 0.5:
            return f"layers.Activation('hard_sigmoid'{tail}"
        return f"layers.Lambda(hard_sigmoid, arguments={{'alpha': {a['alpha']!r}, 'beta': {a['beta']!r}}}{tail}"
    if kind == "softmax":
        axis = a["axis"] if rank != 4 else (0, 3, 1, 2)[a["axis"]]
        return f"layers.Softmax(axis={-1 if axis == rank - 1 else axis}{tail}"
    if kind in ("add", "mul", "concat"):
        return f"layers.{dict(add='Add', mul='Multiply', concat='Concatenate')[kind]}({tail.removeprefix(', ')}"
    if kind == "dropout":
        return f"layers.Dropout({a['rate']!r}{tail}"
    if kind == "global_avg_pool":
        return f"layers.GlobalAveragePooling2D({'keepdims=True' + tail if a['keepdims'] else tail.removeprefix(', ')}"
    if kind == "flatten":
        return f"layers.Flatten({tail.removeprefix(', ')}"
    if kind == "linear":
        return f"layers.Dense({a['out_features']}{'' if a['bias'] else ', use_bias=False'}{tail}"
    if kind == "batch_norm":
        return f"layers.BatchNormalization(momentum={momentum_kept(a['momentum'])!r}, epsilon={a['eps']!r}{tail}"
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
        return _conv_source(a, padding, tail)
    if kind == "conv_transpose2d":
        if a["padding"] == "same" or a["padding"] != (0, 0, 0, 0):
            raise cannot(
                index, layer, "a cropped transposed convolution (Conv2DTranspose pads only 'valid')", FACTS[NAME]
            )
        options = [
            f"kernel_size={pair_source(a['kernel_size'])}",
            f"strides={pair_source(a['stride'])}",
            f"output_padding={pair_source(a['output_padding'])}",
        ]
        options += [f"dilation_rate={pair_source(a['dilation'])}"] if a["dilation"] != (1, 1) else []
        options += [] if a["bias"] else ["use_bias=False"]
        return f"layers.Conv2DTranspose({a['out_channels']}, {', '.join(options)}{tail}"
    if kind in ("max_pool2d", "avg_pool2d"):
        name = "MaxPooling2D" if kind == "max_pool2d" else "AveragePooling2D"
        options = [f"pool_size={pair_source(a['kernel_size'])}", f"strides={pair_source(a['stride'])}"]
        options += [f"padding={padding}"] if padding != "'valid'" else []
        return f"layers.{name}({', '.join(options)}{tail}"
    raise cannot(index, layer, f"a {kind} node (plan rewrites it for Keras first)", FACTS[NAME])


def _conv_source(a: dict, padding: str, tail: str) -> str:
    depthwise = a["groups"] == a["in_channels"] > 1
    options = [f"kernel_size={pair_source(a['kernel_size'])}"]
    options += [f"strides={pair_source(a['stride'])}"] if a["stride"] != (1, 1) else []
    options += [f"padding={padding}"] if padding != "'valid'" else []
    options += [f"dilation_rate={pair_source(a['dilation'])}"] if a["dilation"] != (1, 1) else []
    options += [] if a["bias"] else ["use_bias=False"]
    if depthwise:
        multiplier = a["out_channels"] // a["in_channels"]
        options += [f"depth_multiplier={multiplier}"] if multiplier != 1 else []
        return f"layers.DepthwiseConv2D({', '.join(options)}{tail}"
    options += [f"groups={a['groups']}"] if a["groups"] != 1 else []
    return f"layers.Conv2D({a['out_channels']}, {', '.join(options)}{tail}"


def model_source(net: Network) -> str:
    """``net`` as Keras source: a ``keras.Sequential`` when it is one, else a functional ``keras.Model``
    whose lines assign each node's output to a variable named after it; the model is ``net``."""
    dtype = str(net.dtype)
    c, h, w = net.input_shape if len(net.input_shape) == 3 else (net.input_shape[0], None, None)
    shape = f"({h}, {w}, {c})" if h is not None else f"({c},)"
    dtype_option = ", dtype='float64'" if dtype == "float64" else ""
    shapes = net.node_shapes()
    sources = [
        layer_source(index, layer, 1 + len(shapes[layer.inputs[0]]), dtype) for index, layer in enumerate(net.layers)
    ]
    if net.is_sequential:
        lines = "".join(f"    {source},\n" for source in sources)
        return f"net = keras.Sequential([\n    keras.Input(shape={shape}{dtype_option}),\n{lines}])\n"
    statements = [f"inputs = keras.Input(shape={shape}{dtype_option}, name='input')"]
    for layer, source in zip(net.layers, sources, strict=True):
        reads = [variable(name) for name in layer.inputs]
        argument = reads[0] if len(reads) == 1 else f"[{', '.join(reads)}]"
        statements.append(f"{variable(layer.name)} = {source}({argument})")
    outputs = [variable(name) for name in net.outputs]
    statements.append(
        f"net = keras.Model(inputs, {outputs[0] if len(outputs) == 1 else '[' + ', '.join(outputs) + ']'})"
    )
    return "\n".join(statements) + "\n"


def keras_weights(net: Network) -> dict[str, list[np.ndarray]]:
    """Each node's weights in Keras's layouts, by node (= Keras layer) name: HWIO kernels, (kh, kw, C, m)
    depthwise kernels, (in, out) dense kernels with HWC rows after a flatten, BatchNormalization's
    [gamma, beta, moving mean, moving variance]."""
    permuted = dense_after_flatten(net)
    result = {}
    for index, layer in enumerate(net.layers):
        weights, a = layer.weights, layer.args
        if layer.kind == "conv2d" and a["groups"] == a["in_channels"] > 1:
            out, _, kh, kw = weights["weight"].shape
            arrays = [
                weights["weight"].reshape(a["in_channels"], out // a["in_channels"], kh, kw).transpose(2, 3, 0, 1)
            ]
        elif layer.kind in ("conv2d", "conv_transpose2d"):
            arrays = [weights["weight"].transpose(2, 3, 1, 0)]  # transposed: (in, out, kh, kw) -> (kh, kw, out, in)
        elif layer.kind == "linear":
            weight = weights["weight"]
            arrays = [(weight[:, flatten_permutation(permuted[index])] if index in permuted else weight).T]
        elif layer.kind == "batch_norm":
            arrays = [weights[key] for key in ("weight", "bias", "running_mean", "running_var")]
        else:
            continue
        if "bias" in weights and layer.kind != "batch_norm":
            arrays.append(weights["bias"])
        result[layer.name] = [np.ascontiguousarray(array) for array in arrays]
    return result
