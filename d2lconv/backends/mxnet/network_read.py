"""The MXNet tab's network reader: any Gluon ``HybridBlock`` -> d2lconv's ``Network``, through its symbol graph.

Called on a symbol instead of an array, a ``HybridBlock`` returns the graph of its forward: nodes
with an op (``Convolution``, ``BatchNorm``, ``LeakyReLU``, ``_npi_add``, ...), attributes, and the
nodes they read; parameters are variables named as ``collect_params`` names them. Blocks written
for ``mxnet.np`` are traced with a NumPy symbol; legacy ``mx.nd`` blocks (the model zoo's) with a
legacy one, NumPy semantics switched off meanwhile. Conventions turned into d2lconv's:

- ``BatchNorm`` momentum 0.9 weighs the running value: the description's is 1 - 0.9; MXNet
  updates the running variance with the biased batch variance. With ``fix_gamma=True`` (the
  symbolic BatchNorm's default) MXNet ignores gamma and uses 1: the description's gamma is 1.
- ``Dense`` flattens a feature map itself: the description gets the flatten it implies.
- Pooling ``pooling_convention='full'`` (ceil mode) keeps a last window that starts in the
  padding, where PyTorch drops it; such a pooling is refused (that window sees padding only).
- A ``clip`` to [0, 6] is ReLU6. MXNet has no op for tanh-GELU or hard-swish, and ``Swish`` is
  x * sigmoid(x): an elementwise expression that computes GELU (tanh or erf), hard-swish or SiLU, in
  whatever order and form, is read as that activation (network_expressions); any other is refused.
"""

from __future__ import annotations

import json
import re
from contextlib import ExitStack
from typing import Any

import numpy as onp

from ...core.args import pool2d_args
from ...core.conventions import momentum_new_batch
from ...core.network import INPUT, KINDS, Layer, Network, batch_norm, conv, pool
from ...core.plan import unsupported
from .network_expressions import written_activations
from .ops import gluon, mx

_ACTIVATIONS = {"relu": "relu", "sigmoid": "sigmoid", "tanh": "tanh"}
_OPS = {  # op name (legacy or NumPy) -> what it is
    "relu": "relu",
    "_npx_relu": "relu",
    "sigmoid": "sigmoid",
    "_npx_sigmoid": "sigmoid",
    "tanh": "tanh",
    "_npi_tanh": "tanh",
    "elemwise_add": "add",
    "broadcast_add": "add",
    "_plus": "add",
    "_Plus": "add",
    "_npi_add": "add",
    "elemwise_mul": "mul",
    "broadcast_mul": "mul",
    "_mul": "mul",
    "_Mul": "mul",
    "_npi_multiply": "mul",
    "Concat": "concat",
    "concat": "concat",
    "_npi_concatenate": "concat",
    "Flatten": "flatten",
    "flatten": "flatten",
    "_npx_batch_flatten": "flatten",
    "mean": "mean",
    "_npi_mean": "mean",
    "softmax": "softmax",
    "_npx_softmax": "softmax",
    "clip": "clip",
    "_npi_clip": "clip",
    "_copy": "identity",
    "identity": "identity",
    "_mul_scalar": "scale",
    "_npi_multiply_scalar": "scale",
}
_SIZES = (*range(17, 513), *range(16, 0, -1))  # the input sizes tried when none is given


def _tuple(text: str) -> tuple[int, ...]:
    return tuple(int(v) for v in re.findall(r"-?\d+", text))


def _bool(text: Any) -> bool:
    return str(text).lower() in ("true", "1")


def legacy_mode() -> ExitStack:
    """A context with MXNet's NumPy semantics off (for blocks written with ``mx.nd``/legacy ops)."""
    stack = ExitStack()
    stack.enter_context(mx.util.np_array(False))
    stack.enter_context(mx.util.np_shape(False))
    return stack


def _blocks(model: gluon.Block) -> list[gluon.HybridBlock]:
    if isinstance(model, gluon.HybridBlock):
        return [model]
    if isinstance(model, gluon.nn.Sequential) and all(isinstance(block, gluon.HybridBlock) for block in model):
        return list(model)
    raise ValueError(
        f"port needs a Gluon HybridBlock (or a Sequential of them), whose forward has a symbol graph; "
        f"got {type(model).__name__}"
    )


def symbol(model: gluon.Block) -> tuple[Any, bool]:
    """The model's forward as a symbol, and whether the model is a legacy (``mx.nd``) one."""
    blocks = _blocks(model)
    failure: Exception | None = None
    for legacy in (False, True):
        # A fresh NameManager: ops a block leaves unnamed (``concat0``, ``_plus0``) are numbered from 0 on
        # every trace, so reading a model twice gives the same node names (its counter is process-wide).
        with legacy_mode() if legacy else ExitStack(), mx.name.NameManager():
            graph = mx.sym.var("data")
            graph = graph if legacy else graph.as_np_ndarray()
            try:
                for block in blocks:
                    graph = block(graph)
            except (TypeError, AttributeError, mx.base.MXNetError) as error:
                failure = error
                for parameter in model.collect_params().values():  # each keeps the symbol of the mode it was
                    parameter._var = None  # first traced in (a NumPy one here): the legacy trace needs its own
                continue
        outputs = list(graph) if isinstance(graph, tuple | list) else [graph]
        outputs = [item.as_nd_ndarray() if isinstance(item, mx.sym.np._Symbol) else item for item in outputs]
        return (outputs[0] if len(outputs) == 1 else mx.sym.Group(outputs)), legacy
    raise ValueError(f"MXNet cannot trace {type(model).__name__} to a symbol graph: {failure}")


def _parameters(model: gluon.Block) -> dict[str, onp.ndarray]:
    found = {}
    for name, parameter in model.collect_params().items():
        try:
            found[name] = parameter.data().asnumpy()
        except gluon.parameter.DeferredInitializationError:
            raise ValueError(
                f"the Gluon parameter {name} is not initialised yet (deferred): call the model once on a batch first"
            ) from None
    return found


def _input_shape(graph: Any, nodes: list[dict], parameters: dict[str, onp.ndarray]) -> tuple[int, ...]:
    """The first input shape the graph accepts: channels from its first convolution, then square sizes."""
    known = {name: array.shape for name, array in parameters.items()}
    for node in nodes:
        if node["op"] in ("Convolution", "Deconvolution", "FullyConnected"):
            weight = parameters[nodes[node["inputs"][1][0]]["name"]]
            if node["op"] == "FullyConnected":
                return (weight.shape[1],)
            groups = int(node["attrs"].get("num_group", 1))
            channels = weight.shape[0] if node["op"] == "Deconvolution" else weight.shape[1] * groups
            for side in _SIZES:
                try:
                    graph.infer_shape(data=(1, channels, side, side), **known)
                except mx.base.MXNetError:
                    continue
                return (channels, side, side)
    raise ValueError("port cannot tell this Gluon model's input shape; pass input_shape=(C, H, W)")


def first_output(node: str, outputs: Any) -> str:
    """The name the symbol's internals give a node's (first) output: ``conv0_output``, ``concatenate0_out``."""
    return next(
        f"{node}{suffix}" for suffix in ("_output", "_output0", "_out", "_out0") if f"{node}{suffix}" in outputs
    )


def _name(node: dict, prefix: str, taken: set[str]) -> str:
    base = node["name"]
    base = base[len(prefix) :] if prefix and base.startswith(prefix) and base != prefix else base
    base = re.sub(r"_fwd$", "", base)
    base = re.sub(r"\W", "_", base) or node["op"]
    base = base if base.isidentifier() and base != INPUT else f"n_{base}"
    name, count = base, 0
    while name in taken:
        count += 1
        name = f"{base}_{count}"
    taken.add(name)
    return name


def _pool(op: str, attrs: dict, shape: tuple[int, ...]) -> Layer:
    if attrs.get("layout", "NCHW") not in ("NCHW", "None"):
        raise unsupported(op, op, "a layout other than NCHW")
    if _bool(attrs.get("global_pool", False)):
        if attrs.get("pool_type", "max") != "avg":
            raise unsupported(op, op, "global max pooling")
        return Layer("global_avg_pool", {"keepdims": True})
    kernel, stride = _tuple(attrs["kernel"]), _tuple(attrs.get("stride", "(1, 1)")) or (1, 1)
    pads = _tuple(attrs.get("pad", "(0, 0)")) or (0, 0)
    convention = attrs.get("pooling_convention", "valid")
    if convention == "same":
        raise unsupported(op, op, "pooling_convention='same'")
    ceil = convention == "full"
    kind = {"max": "max_pool2d", "avg": "avg_pool2d"}.get(attrs.get("pool_type", "max"))
    if kind is None:
        raise unsupported(op, op, f"pool_type {attrs['pool_type']!r}")
    extra = {"count_include_pad": _bool(attrs.get("count_include_pad", True))} if kind == "avg_pool2d" else {}
    layer = pool(kind, kernel, stride, pads, ceil, **extra)
    if ceil:
        torch_rule = pool2d_args((1, *shape), kernel, stride, ((pads[0],) * 2, (pads[1],) * 2), 1, True).out_hw
        kept = tuple(-(-(n + 2 * p - k) // s) + 1 for n, k, s, p in zip(shape[1:], kernel, stride, pads, strict=True))
        if kept != torch_rule:
            raise unsupported(op, op, f"MXNet's ceil mode keeps a last window inside the padding ({kept} windows)")
    return layer


def _conv(op: str, attrs: dict, weight: onp.ndarray, bias: onp.ndarray | None) -> Layer:
    if attrs.get("layout", "NCHW") not in ("NCHW", "None"):
        raise unsupported(op, op, "a layout other than NCHW")
    groups = int(attrs.get("num_group", 1))
    transposed = op == "Deconvolution"
    in_channels = weight.shape[0] if transposed else weight.shape[1] * groups
    out_channels = int(attrs["num_filter"])
    kernel = _tuple(attrs["kernel"])
    stride, pads = _tuple(attrs.get("stride", "()")) or (1, 1), _tuple(attrs.get("pad", "()")) or (0, 0)
    dilation = _tuple(attrs.get("dilate", "()")) or (1, 1)
    layer = conv(in_channels, out_channels, kernel, stride, pads, dilation, groups, weight, bias)
    if transposed:
        if _tuple(attrs.get("target_shape", "()")):
            raise unsupported(op, op, "a transposed convolution given target_shape")
        adj = _tuple(attrs.get("adj", "()")) or (0, 0)
        layer = Layer("conv_transpose2d", {**layer.args, "output_padding": adj}, layer.weights)
    return layer


def read_symbol(model: gluon.Block, input_shape: tuple[int, ...] | None = None) -> Network:
    """The description of a Gluon block from its symbol graph (parameters initialised)."""
    graph, legacy = symbol(model)
    nodes, heads = (json.loads(graph.tojson())[key] for key in ("nodes", "heads"))
    expressions, hidden = written_activations(nodes, [head[0] for head in heads])
    parameters = _parameters(model)
    known = {name: array.shape for name, array in parameters.items()}
    internals = graph.get_internals()
    try:
        with legacy_mode() if legacy else ExitStack():
            shape = tuple(input_shape) if input_shape else _input_shape(graph, nodes, parameters)
            _, out_shapes, _ = internals.infer_shape(data=(1, *shape), **known)
    except mx.base.MXNetError as error:
        raise ValueError(
            f"the Gluon model does not run on inputs of shape {shape}: {str(error).splitlines()[0]}"
        ) from None
    shapes_by_output = dict(zip(internals.list_outputs(), out_shapes, strict=True))
    prefix = getattr(model, "prefix", "") or ""
    values: dict[int, Any] = {}  # node index -> ("node", name) | ("parameter", array) | ("data",)
    layers: list[Layer] = []
    taken: set[str] = set()
    shapes: dict[str, tuple[int, ...]] = {INPUT: shape}

    def tensor(node: dict, index: int, what: str) -> str:
        entry = values[index]
        if entry[0] != "node":
            raise unsupported(node["name"], node["op"], f"{what} is a parameter, not a computed tensor")
        return entry[1]

    def source(node: dict, position: int = 0) -> str:
        return tensor(node, node["inputs"][position][0], f"input {position}")

    def weight(node: dict, position: int) -> onp.ndarray | None:
        if position >= len(node["inputs"]):
            return None
        entry = values[node["inputs"][position][0]]
        return entry[1] if entry[0] == "parameter" else None

    def parameter(node: dict, position: int) -> onp.ndarray:
        array = weight(node, position)
        if array is None:
            raise unsupported(node["name"], node["op"], f"input {position} is not a parameter")
        return array

    for index, node in enumerate(nodes):
        op, attrs, name = node["op"], node.get("attrs", {}), node["name"]
        if op == "null":
            values[index] = ("parameter", parameters[name]) if name in parameters else ("node", INPUT)
            continue
        if index in hidden:  # inside an activation written as an expression: read at its last node
            continue
        kind = _OPS.get(op, op)
        layer: Layer | None = None
        if index in expressions:
            (kind, args), x = expressions[index]
            layer = Layer(kind, args, inputs=(tensor(node, x, "the expression's input"),))
        elif kind in ("Convolution", "Deconvolution"):
            no_bias = _bool(attrs.get("no_bias", False))
            layer = _conv(op, attrs, parameter(node, 1), None if no_bias else weight(node, 2))
        elif kind == "BatchNorm":
            if int(attrs.get("axis", 1)) != 1:
                raise unsupported(name, op, "a BatchNorm over an axis other than 1")
            gamma, beta, mean, var = (parameter(node, position) for position in range(1, 5))
            fix_gamma = _bool(attrs.get("fix_gamma", True))
            layer = batch_norm(
                len(mean),
                eps=float(attrs.get("eps", 1e-3)),
                momentum=momentum_new_batch(float(attrs.get("momentum", 0.9))),
                variance="biased",
                weight=onp.ones_like(gamma) if fix_gamma else gamma,
                bias=beta,
                running_mean=mean,
                running_var=var,
                dtype=mean.dtype,
            )
            if fix_gamma:  # batch_norm_steps names it: MXNet ignores gamma here
                layer.args["fixed_gamma"] = True
        elif kind in ("Activation", "_npx_activation"):
            act = attrs.get("act_type")
            if act not in _ACTIVATIONS:
                raise unsupported(name, op, f"activation {act!r}")
            layer = Layer(_ACTIVATIONS[act])
        elif kind in ("relu", "sigmoid", "tanh"):
            layer = Layer(kind)
        elif kind in ("LeakyReLU", "_npx_leaky_relu"):
            act, slope = attrs.get("act_type", "leaky"), float(attrs.get("slope", 0.25))
            if act == "leaky":
                layer = Layer("leaky_relu", {"negative_slope": slope})
            elif act == "elu":
                layer = Layer("elu", {"alpha": slope})
            elif act == "gelu":
                layer = Layer("gelu", {"approximate": "none"})
            else:
                raise unsupported(name, op, f"LeakyReLU act_type {act!r}")
        elif kind == "clip":
            if (float(attrs.get("a_min")), float(attrs.get("a_max"))) != (0.0, 6.0):
                raise unsupported(name, op, "a clip other than to [0, 6] (ReLU6)")
            layer = Layer("relu6")
        elif kind in ("hard_sigmoid", "_npx_hard_sigmoid"):
            layer = Layer(
                "hard_sigmoid", {"alpha": float(attrs.get("alpha", 0.2)), "beta": float(attrs.get("beta", 0.5))}
            )
        elif kind == "softmax":
            rank = len(shapes[source(node)]) + 1
            axis = int(attrs.get("axis", -1)) % rank
            layer = Layer("softmax", {"axis": axis})
        elif kind == "Dropout":
            if attrs.get("mode", "training") != "training":
                raise unsupported(name, op, "dropout in mode 'always' (it drops at inference too)")
            layer = Layer("dropout", {"rate": float(attrs.get("p", 0.5))})
        elif kind == "Pooling":
            layer = _pool(op, attrs, shapes[source(node)])
        elif kind in ("add", "mul"):
            layer = Layer(kind, inputs=tuple(source(node, position) for position in range(len(node["inputs"]))))
        elif kind == "concat":
            rank = len(shapes[source(node)]) + 1
            axis = int(attrs.get("axis", attrs.get("dim", 1))) % rank
            if axis != 1:
                raise unsupported(name, op, f"concatenation on axis {axis} (only the channel axis ports)")
            layer = Layer("concat", inputs=tuple(source(node, position) for position in range(len(node["inputs"]))))
        elif kind == "flatten":
            layer = Layer("flatten") if len(shapes[source(node)]) > 1 else None
        elif kind == "mean":
            axes = sorted(int(axis) % 4 for axis in _tuple(attrs.get("axis", "()")))
            if len(shapes[source(node)]) != 3 or axes != [2, 3]:
                raise unsupported(name, op, f"a mean over axes {axes} (only the spatial mean, global pooling, ports)")
            layer = Layer("global_avg_pool", {"keepdims": _bool(attrs.get("keepdims", False))})
        elif kind == "FullyConnected":
            w, b = parameter(node, 1), None if _bool(attrs.get("no_bias", False)) else weight(node, 2)
            incoming = source(node)
            if len(shapes[incoming]) > 1:
                if not _bool(attrs.get("flatten", True)):
                    raise unsupported(name, op, "a Dense applied to the last axis of a feature map (flatten=False)")
                flat = _name({"name": f"{name}_flatten", "op": "flatten"}, prefix, taken)
                layers.append(Layer("flatten", name=flat, inputs=(incoming,)))
                shapes[flat] = (int(onp.prod(shapes[incoming])),)
                incoming = flat
            args = {"in_features": w.shape[1], "out_features": w.shape[0], "bias": b is not None}
            layer = Layer("linear", args, {"weight": w, **({} if b is None else {"bias": b})}, inputs=(incoming,))
        elif kind == "Pad":
            pads = _tuple(attrs["pad_width"])
            if attrs.get("mode", "constant") != "constant" or any(pads[:4]):
                raise unsupported(name, op, f"padding mode {attrs.get('mode')!r} or padding of N and C")
            value = float(attrs.get("constant_value", 0))
            top, bottom, left, right = pads[4:]
            kind_ = "zero_pad2d" if value == 0 else "constant_pad2d"
            layer = Layer(kind_, {"padding": (top, bottom, left, right), **({"value": value} if value else {})})
        elif kind in ("identity", "scale") and (kind == "identity" or float(attrs.get("scalar", 0)) == 1.0):
            values[index] = values[node["inputs"][0][0]]
            continue
        else:
            raise unsupported(name, op, f"MXNet op {op!r}; the kinds that port are {', '.join(KINDS)}")
        if layer is None:
            values[index] = values[node["inputs"][0][0]]
            continue
        inputs = layer.inputs or (source(node),)
        named = Layer(layer.kind, layer.args, layer.weights, _name(node, prefix, taken), inputs)
        layers.append(named)
        values[index] = ("node", named.name)
        shapes[named.name] = tuple(int(v) for v in shapes_by_output[first_output(name, shapes_by_output)][1:])
    outputs = tuple(values[head[0]][1] for head in heads)
    return Network(shape, layers, outputs)
