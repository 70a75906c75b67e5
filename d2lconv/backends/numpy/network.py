"""The NumPy tab's network writer and reader: d2lconv's own layers <-> the ``Network`` description.

The NumPy backend's native network is a ``layers.Sequential`` (a sequential description) or a
``layers_graph.Graph`` of named nodes, of small layer classes named and laid out as PyTorch's
(NCHW, OIHW, dense (out, in)), each with a forward and a hand-derived backward pass; so the
weights copy over unchanged. ``build_network`` writes each layer from the same source text
``network_code`` shows, and returns the model in inference mode.
"""

from __future__ import annotations

import math
import re
from dataclasses import replace
from pathlib import Path
from typing import Any, cast

import numpy as np

from ...core.checks import pair
from ...core.network import Layer, Network, batch_norm, conv, infer_input_shape, pool
from ...core.plan import plan, unsupported
from .. import FACTS
from .._shared import pair_source
from . import layers, layers_graph
from .ops import NAME

_ACTIVATIONS = {
    "relu": "ReLU()",
    "sigmoid": "Sigmoid()",
    "tanh": "Tanh()",
    "relu6": "ReLU6()",
    "silu": "SiLU()",
    "hard_swish": "Hardswish()",
    "add": "Add()",
    "mul": "Mul()",
    "concat": "Concat()",
}
_GRAPH_CLASSES = (
    "Graph",
    "BatchNorm2d",
    "Add",
    "Mul",
    "Concat",
    "GlobalAvgPool2d",
    "AdaptiveAvgPool2d",
    "Dropout",
    "ReLU6",
    "LeakyReLU",
    "ELU",
    "GELU",
    "SiLU",
    "Hardswish",
    "Hardsigmoid",
    "Softmax",
)
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
    if kind in _GRAPH_KINDS:
        return _GRAPH_KINDS[kind](a)
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


def _batch_norm_source(a: dict) -> str:
    variance = "" if a["variance"] == "unbiased" else f", variance={a['variance']!r}"
    return f"BatchNorm2d({a['num_features']}, eps={a['eps']!r}, momentum={a['momentum']!r}{variance})"


def _hard_sigmoid_source(a: dict) -> str:
    return "Hardsigmoid()" if (a["alpha"], a["beta"]) == (1 / 6, 0.5) else f"Hardsigmoid({a['alpha']!r}, {a['beta']!r})"


_GRAPH_KINDS = {
    "batch_norm": _batch_norm_source,
    "global_avg_pool": lambda a: f"GlobalAvgPool2d(keepdims={a['keepdims']})",
    "adaptive_avg_pool": lambda a: f"AdaptiveAvgPool2d({pair_source(a['output_size'])})",
    "dropout": lambda a: f"Dropout({a['rate']!r})",
    "leaky_relu": lambda a: f"LeakyReLU({a['negative_slope']!r})",
    "elu": lambda a: f"ELU({a['alpha']!r})",
    "gelu": lambda a: "GELU()" if a["approximate"] == "none" else f"GELU(approximate={a['approximate']!r})",
    "hard_sigmoid": _hard_sigmoid_source,
    "softmax": lambda a: f"Softmax(dim={a['axis']})",
}


def _source(net: Network) -> str:
    if net.is_sequential:
        lines = "".join(f"    {_layer_source(layer)},\n" for layer in net.layers)
        return f"Sequential(\n{lines})"
    lines = "".join(
        f"        ({layer.name!r}, {_layer_source(layer)}, "
        f"{repr(layer.inputs[0] if len(layer.inputs) == 1 else layer.inputs)}),\n"
        for layer in net.layers
    )
    return f"Graph(\n    [\n{lines}    ],\n    output={net.outputs[0]!r},\n)"


def _modules(model: layers.Module, net: Network) -> list[layers.Module]:
    """The model's layer for each of ``net``'s nodes, in order."""
    if isinstance(model, layers_graph.Graph):
        return [model[layer.name] for layer in net.layers]
    return list(cast(layers.Sequential, model))


def build_network(net: Network) -> layers.Module:
    """``net`` as d2lconv's NumPy layers, its weights loaded (copied; float64 stays float64), in inference mode."""
    planned = plan(net, FACTS[NAME]).network
    if len(planned.outputs) != 1:
        raise ValueError(f"the NumPy tab builds networks with one output; this one has {list(planned.outputs)}")
    namespace = {name: getattr(layers, name) for name in _CLASSES} | {"math": math}
    namespace |= {name: getattr(layers_graph, name) for name in _GRAPH_CLASSES}
    model = eval(_source(planned), namespace)  # the very text network_code shows
    for module, layer in zip(_modules(model, planned), planned.layers, strict=True):
        for name, array in layer.weights.items():
            store = cast(layers_graph.BatchNorm2d, module).buffers if name.startswith("running_") else module.params
            store[name] = np.array(array)
    return model.eval()


def network_code(net: Network) -> str:
    """Source that builds ``net`` from d2lconv's NumPy layers and loads the weights file."""
    planned = plan(net, FACTS[NAME]).network
    source = _source(planned)
    used = [name for name in _CLASSES if re.search(rf"\b{name}\(", source)]
    used_graph = [name for name in _GRAPH_CLASSES if re.search(rf"\b{name}\(", source)]
    nodes = "net.layers" if planned.is_sequential else "net.nodes.values()"
    return (
        ("import math\n\n" if "math." in source else "")
        + "import numpy as np\n\n"
        + (f"from d2lconv.backends.numpy.layers import {', '.join(used)}\n" if used else "")
        + (f"from d2lconv.backends.numpy.layers_graph import {', '.join(used_graph)}\n" if used_graph else "")
        + f"\nnet = {source}\n"
        "weights = np.load('weights.npz')  # written by ported.save_weights\n"
        f"for key, layer in zip({'range(len(net))' if planned.is_sequential else 'net.nodes'}, {nodes}):\n"
        "    for name in layer.params:\n"
        "        layer.params[name] = weights[f'{key}.{name}']\n"
        "    for name in getattr(layer, 'buffers', {}):\n"
        "        layer.buffers[name] = weights[f'{key}.{name}']\n"
        "net.eval()  # inference: BatchNorm uses the running statistics, dropout is off\n"
    )


def native_weights(model: layers.Sequential | layers_graph.Graph) -> dict[str, np.ndarray]:
    """The model's parameters and running statistics, named ``"index.name"`` (``"node.name"`` in a Graph)."""
    return {name: np.array(value) for name, value, _ in model.parameters()} | {
        name: np.array(value) for name, value in model.buffers()
    }


def save_model(model: layers.Sequential | layers_graph.Graph, folder: Path, stem: str) -> list[Path]:
    """The model in its own saved form: d2lconv's NumPy layers keep their weights as an ``.npz``."""
    path = folder / f"{stem}.npz"
    arrays: dict[str, Any] = native_weights(model)
    np.savez(path, **arrays)
    return [path]


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
    if isinstance(module, layers_graph.BatchNorm2d):
        stats = {name: np.array(value) for name, value in module.buffers.items()}
        return batch_norm(
            module.num_features,
            module.eps,
            module.momentum,
            module.variance,
            weight=params.get("weight"),
            bias=params.get("bias"),
            running_mean=stats.get("running_mean"),
            running_var=stats.get("running_var"),
        )
    described = _read_graph_layer(module)
    if described is not None:
        return described
    raise unsupported(index, module)


_SIMPLE = (
    ("flatten", layers.Flatten),
    ("relu", layers.ReLU),
    ("sigmoid", layers.Sigmoid),
    ("tanh", layers.Tanh),
    ("relu6", layers_graph.ReLU6),
    ("silu", layers_graph.SiLU),
    ("hard_swish", layers_graph.Hardswish),
    ("add", layers_graph.Add),
    ("mul", layers_graph.Mul),
    ("concat", layers_graph.Concat),
)


def _read_graph_layer(module: layers.Module) -> Layer | None:
    """The kinds without weights: None for a module that is none of them."""
    for kind, cls in _SIMPLE:
        if type(module) is cls:
            return Layer(kind)
    arguments = {
        layers_graph.GlobalAvgPool2d: ("global_avg_pool", lambda m: {"keepdims": m.keepdims}),
        layers_graph.AdaptiveAvgPool2d: ("adaptive_avg_pool", lambda m: {"output_size": tuple(m.output_size)}),
        layers_graph.Dropout: ("dropout", lambda m: {"rate": m.p}),
        layers_graph.LeakyReLU: ("leaky_relu", lambda m: {"negative_slope": m.negative_slope}),
        layers_graph.ELU: ("elu", lambda m: {"alpha": m.alpha}),
        layers_graph.GELU: ("gelu", lambda m: {"approximate": m.approximate}),
        layers_graph.Hardsigmoid: ("hard_sigmoid", lambda m: {"alpha": m.alpha, "beta": m.beta}),
        layers_graph.Softmax: ("softmax", lambda m: {"axis": m.dim}),
    }
    if type(module) in arguments:
        kind, read = arguments[type(module)]
        return Layer(kind, read(module))
    return None


def read_network(model: layers.Module, input_shape: tuple[int, ...] | None = None) -> Network:
    """The description of a NumPy-backend ``Sequential`` or ``Graph``."""
    if isinstance(model, layers_graph.Graph):
        described = [
            replace(_read_layer(index, module), name=name, inputs=model.inputs[name])
            for index, (name, module) in enumerate(model.nodes.items())
        ]
        return Network(input_shape or infer_input_shape(described), described, (model.output,))
    if not isinstance(model, layers.Sequential):
        raise ValueError(
            "port needs a network of d2lconv's NumPy layers (layers.Sequential or layers_graph.Graph); "
            f"got {type(model).__name__}"
        )
    described = [_read_layer(index, module) for index, module in enumerate(model)]
    return Network(input_shape or infer_input_shape(described), described)


def run_network(model: layers.Module, x: np.ndarray) -> np.ndarray:
    """The model's output on an NCHW batch, in inference mode (its mode is restored after)."""
    training = model.training
    model.eval()  # prediction mode: BatchNorm uses its moving statistics
    try:
        return np.asarray(model.forward(np.asarray(x)))
    finally:
        model.train(training)
