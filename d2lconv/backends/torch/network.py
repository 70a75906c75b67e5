"""The PyTorch tab's network writer and reader: ``nn.Sequential`` <-> d2lconv's ``Network``.

PyTorch is d2lconv's own layout (NCHW data, OIHW kernels, ``Linear`` weight (out, in),
flatten in C, H, W order), so weights copy over unchanged. ``build_network`` writes each
layer as the book's PyTorch tab would (``nn.Conv2d(1, 6, kernel_size=5, padding=2)``) from
the same source text ``network_code`` shows, so the code and the model cannot disagree.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ...core.network import CHAPTER_KINDS, Layer, Network, conv, infer_input_shape, pool
from ...core.plan import plan, unsupported
from .. import FACTS
from .._shared import pair_source
from .network_graph import graph_source, load_graph_weights, read_graph
from .ops import NAME

_ACTIVATIONS = {"relu": "nn.ReLU()", "sigmoid": "nn.Sigmoid()", "tanh": "nn.Tanh()"}


def _layer_source(layer: Layer) -> str:
    """One layer as the book's PyTorch tab writes it."""
    a, kind = layer.args, layer.kind
    if kind in _ACTIVATIONS:
        return _ACTIVATIONS[kind]
    if kind == "flatten":
        return "nn.Flatten()"
    if kind == "linear":
        return f"nn.Linear({a['in_features']}, {a['out_features']}{'' if a['bias'] else ', bias=False'})"
    if kind in ("zero_pad2d", "constant_pad2d"):
        top, bottom, left, right = a["padding"]
        value = "" if kind == "zero_pad2d" else ", -math.inf" if a["value"] == -np.inf else f", {a['value']!r}"
        name = "ZeroPad2d" if kind == "zero_pad2d" else "ConstantPad2d"
        return f"nn.{name}(({left}, {right}, {top}, {bottom}){value})"
    options = []
    padding = a["padding"]
    padding = "'same'" if padding == "same" else pair_source((padding[0], padding[2]))
    if kind in ("conv2d", "conv_transpose2d"):
        head = (
            f"nn.{'Conv2d' if kind == 'conv2d' else 'ConvTranspose2d'}({a['in_channels']}, {a['out_channels']}, "
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
    head = f"nn.{'MaxPool2d' if kind == 'max_pool2d' else 'AvgPool2d'}(kernel_size={pair_source(a['kernel_size'])}"
    options += [f"stride={pair_source(a['stride'])}"]
    options += [f"padding={padding}"] if padding != "0" else []
    options += [f"dilation={pair_source(a['dilation'])}"] if a.get("dilation", (1, 1)) != (1, 1) else []
    options += ["ceil_mode=True"] if a["ceil_mode"] else []
    options += ["count_include_pad=False"] if not a.get("count_include_pad", True) else []
    return ", ".join([head, *options]) + ")"


def _source(net: Network) -> str:
    lines = "".join(f"    {_layer_source(layer)},\n" for layer in net.layers)
    return f"nn.Sequential(\n{lines})"


def _is_chapter_sequence(net: Network) -> bool:
    """Whether ``net`` is a chain of the chapter's layers, written as an ``nn.Sequential``."""
    return net.is_sequential and all(layer.kind in CHAPTER_KINDS for layer in net.layers)


def build_network(net: Network) -> nn.Module:
    """``net`` in torch's own layers, its weights loaded (float64 stays float64), in inference mode: an
    ``nn.Sequential`` for a sequential network, else the ``Net`` module ``network_code`` shows."""
    planned = plan(net, FACTS[NAME]).network
    namespace = {"nn": nn, "torch": torch, "math": __import__("math")}
    if _is_chapter_sequence(planned):
        model = eval(_source(planned), namespace)  # the very text network_code shows
    else:
        exec(graph_source(planned, _layer_source), namespace)
        model = namespace["Net"]()
    model = model.double() if planned.dtype == np.float64 else model
    if _is_chapter_sequence(planned):
        with torch.no_grad():
            for index, layer in enumerate(planned.layers):
                for name, array in layer.weights.items():
                    getattr(model[index], name).copy_(torch.from_numpy(np.ascontiguousarray(array)))
    else:
        load_graph_weights(model, planned)
    return model.eval()


def network_code(net: Network) -> str:
    """Source that builds ``net`` the way the book's PyTorch tab would, and loads the weights file."""
    planned = plan(net, FACTS[NAME]).network
    dtype = "\nnet = net.double()" if planned.dtype == np.float64 else ""
    sequential = _is_chapter_sequence(planned)
    source = _source(planned) if sequential else "Net()"
    prelude = "" if sequential else graph_source(planned, _layer_source) + "\n\n"
    return (
        ("import math\n\n" if "math." in source + prelude else "")
        + "import numpy as np\nimport torch\nfrom torch import nn\n\n"
        f"{prelude}net = {source}{dtype}\n"
        "weights = np.load('weights.npz')  # written by ported.save_weights\n"
        "with torch.no_grad():\n"
        "    for name, tensor in net.state_dict().items():\n"
        "        if name in weights:\n"
        "            tensor.copy_(torch.from_numpy(weights[name]))\n"
        "net.eval()\n"
    )


def native_weights(model: nn.Module) -> dict[str, np.ndarray]:
    """The model's parameters and running statistics as NumPy arrays in torch's layouts, named as
    ``state_dict`` names them."""
    return {
        name: tensor.detach().numpy().copy()
        for name, tensor in model.state_dict().items()
        if tensor.is_floating_point()
    }


def save_model(model: nn.Module, folder: Path, stem: str) -> list[Path]:
    """The model in PyTorch's own saved form: its ``state_dict`` (``torch.load`` it into the model
    ``network_code`` builds)."""
    path = folder / f"{stem}.pt"
    torch.save(model.state_dict(), path)
    return [path]


def _read_layer(index: int, module: nn.Module) -> Layer:
    def array(parameter: Any) -> np.ndarray:
        return parameter.detach().numpy().copy()

    if isinstance(module, nn.Conv2d | nn.ConvTranspose2d):
        if module.padding_mode != "zeros":
            raise unsupported(index, module, f"padding_mode={module.padding_mode!r} (only zero padding ports)")
        padding = module.padding if isinstance(module.padding, str) else tuple(module.padding)
        layer = conv(
            module.in_channels,
            module.out_channels,
            module.kernel_size,
            module.stride,
            padding,
            module.dilation,
            module.groups,
            array(module.weight),
            None if module.bias is None else array(module.bias),
        )
        if isinstance(module, nn.ConvTranspose2d):
            layer = Layer(
                "conv_transpose2d", {**layer.args, "output_padding": tuple(module.output_padding)}, layer.weights
            )
        return layer
    if isinstance(module, nn.MaxPool2d | nn.AvgPool2d):
        if getattr(module, "return_indices", False) or getattr(module, "divisor_override", None):
            raise unsupported(index, module, "return_indices / divisor_override")
        kind = "max_pool2d" if isinstance(module, nn.MaxPool2d) else "avg_pool2d"
        extra = (
            {"dilation": module.dilation}
            if kind == "max_pool2d"
            else {"count_include_pad": bool(module.count_include_pad)}
        )
        return pool(kind, module.kernel_size, module.stride, module.padding, bool(module.ceil_mode), **extra)
    if isinstance(module, nn.ZeroPad2d | nn.ConstantPad2d):
        left, right, top, bottom = module.padding
        value = float(module.value)
        return (
            Layer("zero_pad2d", {"padding": (top, bottom, left, right)})
            if value == 0
            else Layer("constant_pad2d", {"padding": (top, bottom, left, right), "value": value})
        )
    if isinstance(module, nn.Flatten):
        if module.start_dim != 1 or module.end_dim != -1:
            raise unsupported(index, module, "a flatten that keeps dimensions other than the batch")
        return Layer("flatten")
    if isinstance(module, nn.Linear):
        weights = {"weight": array(module.weight), **({} if module.bias is None else {"bias": array(module.bias)})}
        return Layer(
            "linear",
            {"in_features": module.in_features, "out_features": module.out_features, "bias": module.bias is not None},
            weights,
        )
    for kind, cls in (("relu", nn.ReLU), ("sigmoid", nn.Sigmoid), ("tanh", nn.Tanh)):
        if isinstance(module, cls):
            return Layer(kind)
    raise unsupported(index, module)


def read_network(model: nn.Module, input_shape: tuple[int, ...] | None = None) -> Network:
    """The description of a torch ``nn.Sequential`` of the chapter's layers (nested ones are unrolled), else
    of any ``nn.Module`` ``torch.fx`` can trace (node names: fx's)."""
    if not isinstance(model, nn.Module):
        raise ValueError(f"port needs an nn.Module; got {type(model).__name__}")
    modules = [module for module in model.modules() if not isinstance(module, nn.Sequential)]
    chapter_layer = not list(model.children()) and _is_sequential_layer(model)
    if (isinstance(model, nn.Sequential) or chapter_layer) and all(_is_sequential_layer(m) for m in modules):
        layers = [_read_layer(index, module) for index, module in enumerate(modules)]
        return Network(input_shape or infer_input_shape(layers), layers)
    return read_graph(model, input_shape, _read_layer)


def _is_sequential_layer(module: nn.Module) -> bool:
    try:
        _read_layer(0, module)
    except ValueError:
        return False
    return True


def run_network(model: nn.Module, x: np.ndarray) -> np.ndarray:
    """The model's output on an NCHW NumPy batch, as NumPy (in the model's dtype), in inference mode (its
    mode is restored after: a training loop evaluates between epochs)."""
    batch = torch.from_numpy(np.ascontiguousarray(x))
    dtype = next((parameter.dtype for parameter in model.parameters()), batch.dtype)
    training = model.training
    model.eval()  # prediction mode: BatchNorm uses its moving statistics
    try:
        with torch.no_grad():
            return model(batch.to(dtype)).numpy()
    finally:
        model.train(training)
