"""The MXNet tab's network writer: d2lconv's ``Network`` -> Gluon blocks (the reader is in network_read).

Gluon is NCHW with OIHW kernels and ``Dense`` weights (out, in), so weights copy over
unchanged. It pads a convolution or pooling only symmetrically and has no padding layer and no
'same': the tab's own ``Pad2D`` block pads exactly (MXNet's ``pad`` op) where ``plan`` puts an
explicit padding. Its ``BatchNorm`` momentum (0.9) weighs the running value (the description's
is the new batch's), and it updates the running statistics in the BACKWARD pass, so a
training-mode forward here is followed by a backward. A sequential network is written as the
book writes one, a ``HybridSequential``; a graph as a ``HybridBlock`` class whose
``hybrid_forward`` runs the nodes in order, each layer given its node's name as prefix (so the
symbol graph, and ``read_network``, keep the names). MXNet has no op for tanh-GELU or hard-swish:
they are written as expressions, which ``read_network`` reads back as those activations. Each model
is built from the same source text ``network_code`` shows; a graph is hybridized.
"""

from __future__ import annotations

import math
import weakref
from pathlib import Path
from typing import Any

import numpy as np

from ...core.conventions import momentum_kept
from ...core.network import INPUT, Layer, Network
from ...core.plan import plan
from .. import FACTS
from .._shared import pair_source
from .network_read import legacy_mode, read_symbol, symbol
from .ops import NAME, gluon, mnp, mx

nn = gluon.nn
_MODULES = {
    "relu": "nn.Activation('relu')",
    "sigmoid": "nn.Activation('sigmoid')",
    "tanh": "nn.Activation('tanh')",
    "flatten": "nn.Flatten()",
    "silu": "nn.Swish()",
}
_BATCH_NORM = {"weight": "gamma", "bias": "beta", "running_mean": "running_mean", "running_var": "running_var"}
_RESERVED = {"x", "self", "F", "nn", "math", "np", "npx", "Pad2D", "Net"}
# Gluon has no padding layer: this block (part of every generated source that pads) is the tab's own.
PAD_BLOCK = '''class Pad2D(nn.HybridBlock):
    """Pads H and W by (top, bottom, left, right) with value (Gluon has no padding layer)."""

    def __init__(self, padding, value=0.0, **kwargs):
        super().__init__(**kwargs)
        top, bottom, left, right = padding
        self._pad_width, self._value = (0, 0, 0, 0, top, bottom, left, right), value

    def hybrid_forward(self, F, x):
        padded = F.pad(x.as_nd_ndarray(), mode='constant', pad_width=self._pad_width, constant_value=self._value)
        return padded.as_np_ndarray()  # mxnet.np.pad pads with zeros only
'''
_BUILT: weakref.WeakSet = weakref.WeakSet()  # the models this tab built
_LEGACY: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # model -> whether it is a legacy one


def _layer_source(layer: Layer) -> str | None:
    """One node as the book's MXNet tab writes its layer (input sizes given, so weights exist before a call);
    None for a node written as an expression."""
    a, kind = layer.args, layer.kind
    if kind in _MODULES:
        return _MODULES[kind]
    if kind == "linear":
        return f"nn.Dense({a['out_features']}, in_units={a['in_features']}{'' if a['bias'] else ', use_bias=False'})"
    if kind == "batch_norm":
        momentum = momentum_kept(a["momentum"])
        return f"nn.BatchNorm(momentum={momentum}, epsilon={a['eps']}, in_channels={a['num_features']})"
    if kind == "leaky_relu":
        return f"nn.LeakyReLU({a['negative_slope']})"
    if kind == "elu":
        return f"nn.ELU({a['alpha']})"
    if kind == "gelu" and a["approximate"] == "none":
        return "nn.GELU()"
    if kind == "dropout":
        return f"nn.Dropout({a['rate']})"
    if kind == "global_avg_pool" and a["keepdims"]:
        return "nn.GlobalAvgPool2D()"
    if kind in ("zero_pad2d", "constant_pad2d"):
        value = (
            ""
            if kind == "zero_pad2d"
            else ", value=-math.inf"
            if a["value"] == -math.inf
            else f", value={a['value']!r}"
        )
        return f"Pad2D({a['padding']}{value})"
    padding = pair_source((a["padding"][0], a["padding"][2])) if "padding" in a else "0"
    if kind in ("conv2d", "conv_transpose2d"):
        options = [f"kernel_size={pair_source(a['kernel_size'])}"]
        options += [f"strides={pair_source(a['stride'])}"] if a["stride"] != (1, 1) else []
        options += [f"padding={padding}"] if padding != "0" else []
        if kind == "conv_transpose2d" and a["output_padding"] != (0, 0):
            options.append(f"output_padding={pair_source(a['output_padding'])}")
        options += [f"dilation={pair_source(a['dilation'])}"] if a["dilation"] != (1, 1) else []
        options += [f"groups={a['groups']}"] if a["groups"] != 1 else []
        options += [] if a["bias"] else ["use_bias=False"]
        options.append(f"in_channels={a['in_channels']}")
        return f"nn.{'Conv2D' if kind == 'conv2d' else 'Conv2DTranspose'}({a['out_channels']}, {', '.join(options)})"
    if kind in ("max_pool2d", "avg_pool2d"):
        options = [f"pool_size={pair_source(a['kernel_size'])}", f"strides={pair_source(a['stride'])}"]
        options += [f"padding={padding}"] if padding != "0" else []
        options += ["ceil_mode=True"] if a["ceil_mode"] else []
        if kind == "avg_pool2d" and not a["count_include_pad"] and padding != "0":
            options.append("count_include_pad=False")
        return f"nn.{'MaxPool2D' if kind == 'max_pool2d' else 'AvgPool2D'}({', '.join(options)})"
    return None


def _expression(layer: Layer, inputs: list[str]) -> str:
    """The hybrid_forward expression of a node that is no layer of its own."""
    a, kind, x = layer.args, layer.kind, inputs[0]
    expressions = {
        "add": lambda: " + ".join(inputs),
        "mul": lambda: " * ".join(inputs),
        "concat": lambda: f"F.np.concatenate([{', '.join(inputs)}], axis=1)",
        "global_avg_pool": lambda: f"{x}.mean(axis=(2, 3))",
        "relu6": lambda: f"F.np.clip({x}, 0, 6)",
        "hard_swish": lambda: f"{x} * F.hard_sigmoid({x}.as_nd_ndarray(), alpha=1 / 6, beta=0.5).as_np_ndarray()",
        "hard_sigmoid": lambda: (
            f"F.hard_sigmoid({x}.as_nd_ndarray(), alpha={a.get('alpha')}, beta={a.get('beta')}).as_np_ndarray()"
        ),
        "softmax": lambda: f"F.npx.softmax({x}, axis={a.get('axis')})",
        "gelu": lambda: f"0.5 * {x} * (1 + F.np.tanh(math.sqrt(2 / math.pi) * ({x} + 0.044715 * {x} ** 3)))",
    }
    return expressions[kind]()


def _identifier(name: str) -> str:
    return f"{name}_" if name in _RESERVED or hasattr(nn.HybridBlock, name) else name


def _sequential(net: Network) -> bool:
    return net.is_sequential and all(_layer_source(layer) for layer in net.layers)


def _source(net: Network) -> str:
    """``net = ...``: a ``HybridSequential`` for a sequential network, else a class and its instance."""
    pad = PAD_BLOCK + "\n\n" if any(layer.kind in ("zero_pad2d", "constant_pad2d") for layer in net.layers) else ""
    if _sequential(net):
        lines = "".join(f"    net.add({_layer_source(layer)})\n" for layer in net.layers)
        return f"{pad}net = nn.HybridSequential()\nwith net.name_scope():\n{lines}net.initialize()"
    names = {INPUT: "x", **{layer.name: _identifier(layer.name) for layer in net.layers}}
    init, forward = [], []
    for layer in net.layers:
        source, inputs, name = _layer_source(layer), [names[item] for item in layer.inputs], names[layer.name]
        if source is not None:
            source = source[:-1] + ("" if source.endswith("()") else ", ") + f"prefix='{layer.name}_')"
            init.append(f"            self.{name} = {source}\n")
            forward.append(f"        {name} = self.{name}({inputs[0]})\n")
        else:
            forward.append(f"        {name} = {_expression(layer, inputs)}\n")
    outputs = ", ".join(names[name] for name in net.outputs)
    children = f"        with self.name_scope():\n{''.join(init)}" if init else ""  # none: every node an expression
    return (
        f"{pad}class Net(nn.HybridBlock):\n    def __init__(self, **kwargs):\n        super().__init__(**kwargs)\n"
        f"{children}\n    def hybrid_forward(self, F, x):\n{''.join(forward)}"
        f"        return {outputs}\n\n\nnet = Net(prefix='')\nnet.initialize()"
    )


def _modules(net: Network) -> dict[str, Layer]:
    """Child name (an index for a ``HybridSequential``, else the attribute) -> its node, for nodes with weights."""
    if _sequential(net):
        return {str(index): layer for index, layer in enumerate(net.layers) if layer.weights}
    return {_identifier(layer.name): layer for layer in net.layers if layer.weights and _layer_source(layer)}


def _child(model: gluon.Block, name: str) -> gluon.Block:
    return model[int(name)] if name.isdigit() else getattr(model, name)


def build_network(net: Network) -> gluon.HybridBlock:
    """``net`` as Gluon blocks, its weights loaded (float64 stays float64); a graph hybridized."""
    planned = plan(net, FACTS[NAME]).network
    namespace: dict[str, Any] = {"nn": nn, "math": math}
    exec(_source(planned), namespace)  # the very text network_code shows
    model = namespace["net"]
    if planned.dtype == np.float64:
        model.cast("float64")
    for child, layer in _modules(planned).items():
        for name, array in layer.weights.items():
            native = _BATCH_NORM[name] if layer.kind == "batch_norm" else name
            getattr(_child(model, child), native).set_data(mnp.array(array, dtype=array.dtype))
    if not _sequential(planned):  # a graph runs as one cached graph; a Sequential's layers stay reusable alone
        model.hybridize()
    _BUILT.add(model)
    return model


def network_code(net: Network) -> str:
    """Source that builds ``net`` the way the book's MXNet tab would, and loads the weights file."""
    planned = plan(net, FACTS[NAME]).network
    source = _source(planned)
    dtype = "\nnet.cast('float64')" if planned.dtype == np.float64 else ""
    return (
        ("import math\n\n" if "math." in source else "")
        + "import numpy as onp\n\nonp.bool = bool  # mxnet 1.9 needs it on numpy >= 1.24\n"
        "from mxnet import np, npx  # noqa: E402\nfrom mxnet.gluon import nn  # noqa: E402\n\nnpx.set_np()\n\n\n"
        f"{source}{dtype}\n"
        "weights = onp.load('weights.npz')  # written by ported.save_weights\n"
        "for key, array in weights.items():\n"
        "    child, name = key.rsplit('.', 1)\n"
        "    block = net[int(child)] if child.isdigit() else getattr(net, child)\n"
        "    getattr(block, name).set_data(np.array(array, dtype=array.dtype))\n"
        + ("" if _sequential(planned) else "net.hybridize()\n")
    )


def native_weights(model: gluon.Block) -> dict[str, np.ndarray]:
    """Every child block's parameters (BatchNorm statistics included) in Gluon's layouts, named
    ``"child.parameter"`` (``"0.weight"``, ``"conv1.weight"``, ``"bn1.gamma"``)."""
    found = {}
    for child_name, child in model._children.items():
        for name in ("weight", "bias", "gamma", "beta", "running_mean", "running_var"):
            parameter = getattr(child, name, None)
            if isinstance(parameter, gluon.Parameter):
                found[f"{child_name}.{name}"] = parameter.data().asnumpy()
    return found


def save_model(model: gluon.nn.Block, folder: Path, stem: str) -> list[Path]:
    """The model in Gluon's own saved form, ``.params`` (``load_parameters`` into the model ``network_code``
    builds)."""
    path = folder / f"{stem}.params"
    model.save_parameters(str(path))
    return [path]


def read_network(model: gluon.Block, input_shape: tuple[int, ...] | None = None) -> Network:
    """The description of a Gluon ``HybridBlock`` (or a ``Sequential`` of them) from its symbol graph; legacy
    ``mx.nd`` blocks (the model zoo's) included. Its parameters must be initialised."""
    return read_symbol(model, input_shape)


def _legacy(model: gluon.Block) -> bool:
    """Whether the model is a legacy (``mx.nd``) one, to be called with ``mx.nd`` arrays."""
    if model not in _LEGACY:
        try:
            _LEGACY[model] = model not in _BUILT and symbol(model)[1]
        except ValueError:  # no symbol graph (a Sequential with a plain Block): a NumPy-interface model
            _LEGACY[model] = False
    return _LEGACY[model]


def _call(model: gluon.Block, x: np.ndarray, legacy: bool) -> Any:
    parameters = list(model.collect_params().values())
    dtype = parameters[0].dtype if parameters else x.dtype
    if not legacy:
        return model(mnp.array(x, dtype=dtype))
    with legacy_mode():
        return model(mx.nd.array(x, dtype=dtype))


def _first(y: Any) -> Any:
    return y[0] if isinstance(y, tuple | list) else y


def _dropouts(model: gluon.Block, rate: float | None) -> dict:
    """Set every Dropout's rate to 0 (rate None: restore the ones returned before); the old rates."""
    found = {}
    stack = [model]
    while stack:
        block = stack.pop()
        stack += list(block._children.values())
        if isinstance(block, nn.Dropout):
            found[block] = block._rate
            block._rate = 0.0
    if found and isinstance(model, gluon.HybridBlock):
        model._clear_cached_op()
    return found


def _restore_dropouts(model: gluon.Block, rates: dict) -> None:
    for block, rate in rates.items():
        block._rate = rate
    if rates and isinstance(model, gluon.HybridBlock):
        model._clear_cached_op()


def run_network(model: gluon.Block, x: np.ndarray) -> np.ndarray:
    """The model's output on an NCHW NumPy batch, as NumPy (inference mode). Legacy ``mx.nd`` models are called
    with ``mx.nd`` arrays."""
    return _first(_call(model, np.asarray(x), _legacy(model))).asnumpy()
