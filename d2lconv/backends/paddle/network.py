"""The Paddle tab's network writer: d2lconv's ``Network`` -> ``paddle.nn`` layers (the reader is in network_read).

Paddle is NCHW with OIHW kernels, but its ``Linear`` weight is (in, out), its
``AvgPool2D`` says ``exclusive`` for "padding stays out of the divisor" (the opposite of
``count_include_pad``, and on by default), ceil mode keeps a last window that starts
in the padding (``d2lconv.core.plan.plan`` writes that overhang out as padding), and its
``BatchNorm2D`` momentum (0.9) weighs the running value (the description's is the new batch's).
Convolutions take 4-value (top, bottom, left, right) padding directly. A sequential network
is written as the book writes one, an ``nn.Sequential``; a graph as an ``nn.Layer`` class whose
``forward`` runs the nodes in order, each chain in one variable (``_shared.forward_variables``).
Each model is built from the same source text ``network_code`` shows.
"""

from __future__ import annotations

import itertools
import linecache
import math
import weakref
from pathlib import Path
from typing import Any

import numpy as np
import paddle
import paddle.nn.functional as F
from paddle import nn

from ...core.conventions import momentum_kept
from ...core.network import Layer, Network
from ...core.plan import plan
from .. import FACTS
from .._shared import forward_variables, pair_source
from .network_read import read_traced
from .ops import NAME

_MODULES = {
    "relu": "nn.ReLU()",
    "sigmoid": "nn.Sigmoid()",
    "tanh": "nn.Tanh()",
    "relu6": "nn.ReLU6()",
    "silu": "nn.Silu()",
    "hard_swish": "nn.Hardswish()",
    "flatten": "nn.Flatten()",
}
# Paddle's names for the description's BatchNorm weights.
_BATCH_NORM = {"weight": "weight", "bias": "bias", "running_mean": "_mean", "running_var": "_variance"}
# Names a generated class cannot give a node: its forward's own names and nn.Layer's attributes.
_RESERVED = {"x", "y", "self", "paddle", "nn", "F", "math"}
# The models this tab built: model -> ({sublayer name: node name}, the description it was built from), for
# port_checks.run_nodes.
_NODES: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_BUILDS = itertools.count()


def _pair(value: tuple[int, int]) -> str:
    return pair_source(value, list)


def _padding_source(padding: tuple[int, int, int, int] | str) -> str:
    if isinstance(padding, str):
        return "'SAME'"
    top, bottom, left, right = padding
    return _pair((top, left)) if (top, left) == (bottom, right) else str(list(padding))


def _layer_source(layer: Layer, shape: tuple[int, ...]) -> str | None:
    """One node as the book's Paddle tab writes its layer; None for a node written as an expression."""
    a, kind = layer.args, layer.kind
    if kind in _MODULES:
        return _MODULES[kind]
    if kind == "linear":
        return f"nn.Linear({a['in_features']}, {a['out_features']}{'' if a['bias'] else ', bias_attr=False'})"
    if kind == "batch_norm":
        dims = "2D" if len(shape) == 3 else "1D"
        return f"nn.BatchNorm{dims}({a['num_features']}, momentum={momentum_kept(a['momentum'])}, epsilon={a['eps']})"
    if kind == "leaky_relu":
        return f"nn.LeakyReLU({a['negative_slope']})"
    if kind == "elu":
        return f"nn.ELU({a['alpha']})"
    if kind == "gelu":
        return f"nn.GELU(approximate={a['approximate'] == 'tanh'})"
    if kind == "softmax":
        return f"nn.Softmax(axis={a['axis']})"
    if kind == "dropout":
        return f"nn.Dropout({a['rate']})"
    if kind == "adaptive_avg_pool":
        return f"nn.AdaptiveAvgPool2D({_pair(a['output_size'])})"
    if kind == "global_avg_pool" and a["keepdims"]:
        return "nn.AdaptiveAvgPool2D(1)"
    if kind in ("zero_pad2d", "constant_pad2d"):
        top, bottom, left, right = a["padding"]
        if kind == "zero_pad2d":
            return f"nn.ZeroPad2D([{left}, {right}, {top}, {bottom}])"
        value = "-math.inf" if a["value"] == -math.inf else repr(a["value"])
        return f"nn.Pad2D([{left}, {right}, {top}, {bottom}], value={value})"
    if kind in ("conv2d", "conv_transpose2d"):
        return _conv_source(a, kind)
    if kind in ("max_pool2d", "avg_pool2d"):
        return _pool_source(a, kind)
    return None


def _conv_source(a: dict, kind: str) -> str:
    padding = _padding_source(a["padding"])
    head = (
        f"nn.{'Conv2D' if kind == 'conv2d' else 'Conv2DTranspose'}({a['in_channels']}, {a['out_channels']}, "
        f"kernel_size={_pair(a['kernel_size'])}"
    )
    options = [f"stride={_pair(a['stride'])}"] if a["stride"] != (1, 1) else []
    options += [f"padding={padding}"] if padding != "0" else []
    if kind == "conv_transpose2d" and a["output_padding"] != (0, 0):
        options.append(f"output_padding={_pair(a['output_padding'])}")
    options += [f"dilation={_pair(a['dilation'])}"] if a["dilation"] != (1, 1) else []
    options += [f"groups={a['groups']}"] if a["groups"] != 1 else []
    options += [] if a["bias"] else ["bias_attr=False"]
    return ", ".join([head, *options]) + ")"


def _pool_source(a: dict, kind: str) -> str:
    padding = _padding_source(a["padding"])
    head = f"nn.{'MaxPool2D' if kind == 'max_pool2d' else 'AvgPool2D'}(kernel_size={_pair(a['kernel_size'])}"
    options = [f"stride={_pair(a['stride'])}"]
    options += [f"padding={padding}"] if padding != "0" else []
    options += ["ceil_mode=True"] if a["ceil_mode"] else []
    if kind == "avg_pool2d" and a["count_include_pad"] and padding != "0":
        options.append("exclusive=False")  # Paddle's default leaves padding out of the divisor
    return ", ".join([head, *options]) + ")"


def _identifier(name: str) -> str:
    """A node's name as an attribute and variable of the generated class (``name_`` where it would clash)."""
    return f"{name}_" if name in _RESERVED or hasattr(nn.Layer, name) else name


def _expression(layer: Layer, inputs: list[str]) -> str:
    """The forward's expression for a node that is no layer of its own."""
    a, kind = layer.args, layer.kind
    if kind == "add":
        return " + ".join(inputs)
    if kind == "mul":
        return " * ".join(inputs)
    if kind == "concat":
        return f"paddle.concat([{', '.join(inputs)}], axis=1)"
    if kind == "global_avg_pool":
        return f"{inputs[0]}.mean([2, 3])"
    if kind == "hard_sigmoid":
        return f"F.hardsigmoid({inputs[0]}, slope={a['alpha']}, offset={a['beta']})"
    raise AssertionError(f"no expression for {kind}")


def _sequential(net: Network, shapes: dict[str, tuple[int, ...]]) -> bool:
    return net.is_sequential and all(_layer_source(layer, shapes[layer.inputs[0]]) for layer in net.layers)


def _source(net: Network) -> str:
    """``net = ...``: an ``nn.Sequential`` for a sequential network, else a class and its instance."""
    shapes = net.node_shapes()
    if _sequential(net, shapes):
        lines = "".join(f"    {_layer_source(layer, shapes[layer.inputs[0]])},\n" for layer in net.layers)
        return f"net = nn.Sequential(\n{lines})"
    names = forward_variables(net, _identifier)
    init, forward = [], []
    for layer in net.layers:
        source, inputs = _layer_source(layer, shapes[layer.inputs[0]]), [names[name] for name in layer.inputs]
        if source is not None:
            init.append(f"        self.{_identifier(layer.name)} = {source}\n")
            forward.append(f"        {names[layer.name]} = self.{_identifier(layer.name)}({inputs[0]})\n")
        else:
            forward.append(f"        {names[layer.name]} = {_expression(layer, inputs)}\n")
    outputs = ", ".join(names[name] for name in net.outputs)
    return (
        "class Net(nn.Layer):\n    def __init__(self):\n        super().__init__()\n"
        f"{''.join(init)}\n    def forward(self, x):\n{''.join(forward)}        return {outputs}\n\n\nnet = Net()"
    )


def _modules(net: Network) -> dict[str, Layer]:
    """Sublayer name (as ``named_sublayers`` names it) -> its node, for the nodes written as layers."""
    shapes = net.node_shapes()
    if _sequential(net, shapes):
        return {str(index): layer for index, layer in enumerate(net.layers)}
    return {_identifier(layer.name): layer for layer in net.layers if _layer_source(layer, shapes[layer.inputs[0]])}


def _paddle_weights(net: Network) -> dict[str, np.ndarray]:
    """Each parameter in Paddle's layouts (``Linear`` (in, out)), named as ``named_parameters`` names them."""
    weights = {}
    for module, layer in _modules(net).items():
        for name, array in layer.weights.items():
            native = _BATCH_NORM[name] if layer.kind == "batch_norm" else name
            array = array.T if layer.kind == "linear" and name == "weight" else array
            weights[f"{module}.{native}"] = np.ascontiguousarray(array)
    return weights


def build_network(net: Network) -> nn.Layer:
    """``net`` in Paddle's own layers, its weights loaded (float64 stays float64)."""
    planned = plan(net, FACTS[NAME]).network
    namespace: dict[str, Any] = {"nn": nn, "F": F, "paddle": paddle, "math": math}
    source = _source(planned)
    filename = f"<d2lconv paddle network {next(_BUILDS)}>"
    # In linecache, so that Paddle can read the forward's source to trace it (read_network of a ported model).
    linecache.cache[filename] = (len(source), None, source.splitlines(keepends=True), filename)
    exec(compile(source, filename, "exec"), namespace)  # the very text network_code shows
    model = namespace["net"]
    if planned.dtype == np.float64:
        model.to(dtype="float64")
    weights = _paddle_weights(planned)
    for name, parameter in model.state_dict().items():
        parameter.set_value(weights[name].astype(planned.dtype))
    model.eval()
    _NODES[model] = ({module: layer.name for module, layer in _modules(planned).items()}, planned)
    return model


def network_code(net: Network) -> str:
    """Source that builds ``net`` the way the book's Paddle tab would, and loads the weights file."""
    planned = plan(net, FACTS[NAME]).network
    source = _source(planned)
    imports = "import paddle\nimport paddle.nn.functional as F\n" if "paddle." in source or "F." in source else ""
    dtype = "\nnet.to(dtype='float64')" if planned.dtype == np.float64 else ""
    return (
        ("import math\n\n" if "math." in source else "") + f"import numpy as np\n{imports}from paddle import nn\n\n\n"
        f"{source}{dtype}\n"
        "weights = np.load('weights.npz')  # written by ported.save_weights\n"
        "for name, tensor in net.state_dict().items():\n"
        "    tensor.set_value(weights[name])\n"
        "net.eval()\n"
    )


def native_weights(model: nn.Layer) -> dict[str, np.ndarray]:
    """The model's parameters and BatchNorm statistics in Paddle's layouts, named as ``state_dict`` names them."""
    return {name: np.array(tensor.numpy()) for name, tensor in model.state_dict().items()}


def save_model(model: nn.Layer, folder: Path, stem: str) -> list[Path]:
    """The model in Paddle's own saved form: its ``state_dict`` as ``.pdparams`` (``paddle.load`` it and
    ``set_state_dict`` into the model ``network_code`` builds)."""
    path = folder / f"{stem}.pdparams"
    paddle.save(model.state_dict(), str(path))
    return [path]


def read_network(model: nn.Layer, input_shape: tuple[int, ...] | None = None) -> Network:
    """The description of any ``paddle.nn.Layer`` whose forward Paddle traces to a static program (input shape:
    ``input_shape``, else the first square size the model accepts, from 17)."""
    return read_traced(model, input_shape)


def _batch(model: nn.Layer, x: np.ndarray) -> paddle.Tensor:
    dtype = next((parameter.dtype for parameter in model.parameters()), None)
    batch = paddle.to_tensor(np.ascontiguousarray(x))
    return batch if dtype is None else batch.astype(dtype)


def _output(y: Any) -> np.ndarray:
    return np.array((y[0] if isinstance(y, tuple | list) else y).numpy())


def _training(model: nn.Layer) -> list[tuple[nn.Layer, bool]]:
    """Switch to training mode with dropout kept at inference (identity); the modes to restore."""
    modes = [(layer, layer.training) for layer in model.sublayers(include_self=True)]
    model.train()
    for layer in model.sublayers():
        if isinstance(layer, nn.Dropout | nn.Dropout2D | nn.AlphaDropout):
            layer.eval()
    return modes


def _restore(modes: list[tuple[nn.Layer, bool]]) -> None:
    for layer, training in modes:
        layer.training = training


def run_network(model: nn.Layer, x: np.ndarray) -> np.ndarray:
    """The model's output on an NCHW NumPy batch, as NumPy, in inference mode (the model's modes restored)."""
    modes = [(layer, layer.training) for layer in model.sublayers(include_self=True)]
    model.eval()
    try:
        with paddle.no_grad():
            return _output(model(_batch(model, x)))
    finally:
        _restore(modes)
