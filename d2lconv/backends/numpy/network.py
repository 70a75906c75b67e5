"""The NumPy tab's network writer and reader: d2lconv's own layers <-> the ``Network`` description.

The NumPy backend's native network is a ``d2lconv.backends.numpy.layers.Sequential`` of small layer
classes named and laid out as PyTorch's (NCHW, OIHW, dense (out, in)), each with a forward
and a hand-derived backward pass; so the weights copy over unchanged. ``build_network``
writes each layer from the same source text ``network_code`` shows.
"""

from __future__ import annotations

import math

import numpy as np

from ...core.checks import pair
from ...core.network import Layer, Network, conv, infer_input_shape, pool
from ...core.plan import plan, unsupported
from .._shared import pair_source
from . import layers
from .ops import NAME

_ACTIVATIONS = {"relu": "ReLU()", "sigmoid": "Sigmoid()", "tanh": "Tanh()"}
_CLASSES = (
    "Sequential",
    "Conv2d",
    "ConvTranspose2d",
    "MaxPool2d",
    "AvgPool2d",
    "ZeroPad2d",
    "ConstantPad2d",
    "Flatten",
    "Linear",
    "ReLU",
    "Sigmoid",
    "Tanh",
)


def _padding_source(padding: tuple[int, int, int, int] | str) -> str:
    if isinstance(padding, str):
        return "'same'"
    top, bottom, left, right = padding
    return pair_source((top, left)) if (top, left) == (bottom, right) else str(tuple(padding))


def _layer_source(layer: Layer) -> str:
    """One layer, named and written as PyTorch's."""
    a, kind = layer.args, layer.kind
    if kind in _ACTIVATIONS:
        return _ACTIVATIONS[kind]
    if kind == "flatten":
        return "Flatten()"
    if kind == "linear":
        return f"Linear({a['in_features']}, {a['out_features']}{'' if a['bias'] else ', bias=False'})"
    if kind == "zero_pad2d":
        return f"ZeroPad2d({tuple(a['padding'])})"
    if kind == "constant_pad2d":
        value = "-math.inf" if a["value"] == -math.inf else repr(a["value"])
        return f"ConstantPad2d({tuple(a['padding'])}, {value})"
    options = []
    padding = _padding_source(a["padding"])
    if kind in ("conv2d", "conv_transpose2d"):
        head = (
            f"{'Conv2d' if kind == 'conv2d' else 'ConvTranspose2d'}({a['in_channels']}, {a['out_channels']}, "
            f"kernel_size={pair_source(a['kernel_size'])}"
        )
        options += [f"stride={pair_source(a['stride'])}"] if a["stride"] != (1, 1) else []
        options += [f"padding={padding}"] if padding != "0" else []
        if kind == "conv_transpose2d" and a["output_padding"] != (0, 0):
            options.append(f"output_padding={pair_source(a['output_padding'])}")
        options += [f"dilation={pair_source(a['dilation'])}"] if a["dilation"] != (1, 1) else []
        options += [f"groups={a['groups']}"] if a["groups"] != 1 else []
        options += [] if a["bias"] else ["bias=False"]
        return ", ".join([head, *options]) + ")"
    head = f"{'MaxPool2d' if kind == 'max_pool2d' else 'AvgPool2d'}(kernel_size={pair_source(a['kernel_size'])}"
    options += [f"stride={pair_source(a['stride'])}"]
    options += [f"padding={padding}"] if padding != "0" else []
    options += [f"dilation={pair_source(a['dilation'])}"] if a.get("dilation", (1, 1)) != (1, 1) else []
    options += ["ceil_mode=True"] if a["ceil_mode"] else []
    options += ["count_include_pad=False"] if not a.get("count_include_pad", True) else []
    return ", ".join([head, *options]) + ")"


def _source(net: Network) -> str:
    lines = "".join(f"    {_layer_source(layer)},\n" for layer in net.layers)
    return f"Sequential(\n{lines})"


def build_network(net: Network) -> layers.Sequential:
    """``net`` as d2lconv's NumPy layers, its weights loaded (copied; float64 stays float64)."""
    planned = plan(net, NAME).network
    namespace = {name: getattr(layers, name) for name in _CLASSES} | {"math": math}
    model = eval(_source(planned), namespace)  # the very text network_code shows
    for index, layer in enumerate(planned.layers):
        model[index].params.update({name: np.array(array) for name, array in layer.weights.items()})
    return model


def network_code(net: Network) -> str:
    """Source that builds ``net`` from d2lconv's NumPy layers and loads the weights file."""
    source = _source(plan(net, NAME).network)
    return (
        ("import math\n\n" if "math." in source else "") + "import numpy as np\n\n"
        f"from d2lconv.backends.numpy.layers import {', '.join(name for name in _CLASSES if name + '(' in source)}\n\n"
        f"net = {source}\n"
        "weights = np.load('weights.npz')  # written by ported.save_weights\n"
        "for index, layer in enumerate(net):\n"
        "    for name in layer.params:\n"
        "        layer.params[name] = weights[f'{index}.{name}']\n"
    )


def native_weights(model: layers.Sequential) -> dict[str, np.ndarray]:
    """The model's parameters, named ``"index.name"``."""
    return {name: np.array(value) for name, value, _ in model.parameters()}


def _read_layer(index: int, module: layers.Module) -> Layer:
    params = {name: np.array(value) for name, value in module.params.items()}
    if isinstance(module, layers.Conv2d):  # ConvTranspose2d too
        layer = conv(
            module.in_channels,
            module.out_channels,
            module.kernel_size,
            module.stride,
            layers._padding(module.padding),
            module.dilation,
            module.groups,
            params["weight"],
            params.get("bias"),
        )
        if isinstance(module, layers.ConvTranspose2d):
            output_padding = pair(module.output_padding, "output_padding", 0)
            layer = Layer("conv_transpose2d", {**layer.args, "output_padding": output_padding}, layer.weights)
        return layer
    if isinstance(module, layers.AvgPool2d):
        return pool(
            "avg_pool2d",
            module.kernel_size,
            module.stride,
            layers._padding(module.padding),
            module.ceil_mode,
            count_include_pad=module.count_include_pad,
        )
    if isinstance(module, layers.MaxPool2d):
        return pool(
            "max_pool2d",
            module.kernel_size,
            module.stride,
            layers._padding(module.padding),
            module.ceil_mode,
            dilation=module.dilation,
        )
    if isinstance(module, layers.ZeroPad2d):
        return Layer("zero_pad2d", {"padding": tuple(module.padding)})
    if isinstance(module, layers.ConstantPad2d):
        return Layer("constant_pad2d", {"padding": tuple(module.padding), "value": float(module.value)})
    if isinstance(module, layers.Linear):
        return Layer(
            "linear",
            {"in_features": module.in_features, "out_features": module.out_features, "bias": "bias" in params},
            params,
        )
    for kind, cls in (
        ("flatten", layers.Flatten),
        ("relu", layers.ReLU),
        ("sigmoid", layers.Sigmoid),
        ("tanh", layers.Tanh),
    ):
        if isinstance(module, cls):
            return Layer(kind)
    raise unsupported(index, module)


def read_network(model: layers.Sequential, input_shape: tuple[int, ...] | None = None) -> Network:
    """The description of a NumPy-backend ``Sequential``."""
    if not isinstance(model, layers.Sequential):
        raise ValueError(
            f"port needs a sequential network (d2lconv.backends.numpy.layers.Sequential); got {type(model).__name__}"
        )
    described = [_read_layer(index, module) for index, module in enumerate(model)]
    return Network(input_shape or infer_input_shape(described), described)


def run_network(model: layers.Sequential, x: np.ndarray) -> np.ndarray:
    """The model's output on an NCHW batch."""
    return np.asarray(model.forward(np.asarray(x)))
