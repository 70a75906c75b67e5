"""The PyTorch tab's graphs: any ``nn.Module`` ``torch.fx`` can trace -> ``Network``, and a graph ``Network`` ->
an ``nn.Module`` of torch's own layers with a generated ``forward`` over named nodes.

The reader traces the model symbolically (``torch.fx.symbolic_trace``), so functional calls
(``F.relu``, ``torch.cat``, ``+``, ``*``, ``torch.flatten``, ``x.mean((2, 3))``) read as well as
modules; a node it cannot express is a ``ValueError`` naming it. The writer keeps the description's
node names as attribute names and as the names of the values its forward reads again later (a chain
runs in one variable, ``x = layer(x)``), so ``network_code`` reads like a hand-written PyTorch model.
"""

from __future__ import annotations

import keyword
import operator
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import fx, nn

from ...core.network import INPUT, Layer, Network, batch_norm, infer_input_shape, pool
from ...core.plan import SUPPORTED
from .._shared import forward_variables

# Modules with no arguments to read, and functions of one tensor: kind.
_MODULE_KINDS: dict[type, str] = {
    nn.ReLU: "relu",
    nn.Sigmoid: "sigmoid",
    nn.Tanh: "tanh",
    nn.ReLU6: "relu6",
    nn.SiLU: "silu",
    nn.Hardswish: "hard_swish",
}
_FUNCTION_KINDS: dict[Any, str] = {
    F.relu: "relu",
    torch.relu: "relu",
    torch.sigmoid: "sigmoid",
    F.sigmoid: "sigmoid",
    torch.tanh: "tanh",
    F.tanh: "tanh",
    F.relu6: "relu6",
    F.silu: "silu",
    F.hardswish: "hard_swish",
}
_METHOD_KINDS = {"relu": "relu", "sigmoid": "sigmoid", "tanh": "tanh"}
_ADD = (operator.add, torch.add, operator.iadd)
_MUL = (operator.mul, torch.mul, operator.imul)


def _fail(node: fx.Node, what: str) -> ValueError:
    return ValueError(
        f"node {node.name!r} ({node.op} {getattr(node.target, '__name__', node.target)!s}) cannot be ported: "
        f"{what}; port supports networks of: {SUPPORTED}"
    )


def _module_layer(node: fx.Node, module: nn.Module, read_sequential_layer: Any) -> Layer | None:
    """The description of one called module; None for an identity."""
    if isinstance(module, nn.Identity):
        return None
    for cls, kind in _MODULE_KINDS.items():
        if type(module) is cls:
            return Layer(kind)
    if isinstance(module, nn.BatchNorm1d | nn.BatchNorm2d):
        if module.momentum is None or not module.track_running_stats:
            raise _fail(node, "a BatchNorm without running statistics or with a cumulative average (momentum=None)")
        array = lambda tensor: None if tensor is None else tensor.detach().numpy().copy()  # noqa: E731
        return batch_norm(
            module.num_features,
            module.eps,
            module.momentum,
            "unbiased",
            array(module.weight),
            array(module.bias),
            array(module.running_mean),
            array(module.running_var),
            dtype=module.running_mean.numpy().dtype,
        )
    if isinstance(module, nn.Dropout):
        return Layer("dropout", {"rate": float(module.p)})
    if isinstance(module, nn.LeakyReLU):
        return Layer("leaky_relu", {"negative_slope": float(module.negative_slope)})
    if isinstance(module, nn.ELU):
        return Layer("elu", {"alpha": float(module.alpha)})
    if isinstance(module, nn.GELU):
        return Layer("gelu", {"approximate": module.approximate})
    if isinstance(module, nn.Hardsigmoid):
        return Layer("hard_sigmoid", {"alpha": 1 / 6, "beta": 0.5})
    if isinstance(module, nn.Softmax):
        return Layer("softmax", {"axis": module.dim})
    if isinstance(module, nn.AdaptiveAvgPool2d):
        size = module.output_size
        size = (size, size) if isinstance(size, int) else tuple(size)
        return Layer("adaptive_avg_pool", {"output_size": size})
    try:
        return read_sequential_layer(node.name, module)
    except ValueError:
        raise _fail(node, f"{module!r} is not a layer port knows") from None


def _function_layer(node: fx.Node, kwargs: dict[str, Any], tensors: int, shapes: int) -> Layer:
    """The description of a function or method call on ``tensors`` tensor inputs."""
    target, method = node.target, node.op == "call_method"
    constants = [arg for arg in node.args if not isinstance(arg, fx.Node)]
    if (target in _ADD or method and target == "add") and tensors >= 2 and not constants:
        return Layer("add")
    if (target in _MUL or method and target == "mul") and tensors >= 2 and not constants:
        return Layer("mul")
    if target is torch.cat:
        if kwargs.get("dim", node.args[1] if len(node.args) > 1 else 0) not in (1, -shapes):
            raise _fail(node, "a concatenation on an axis other than the channels (1)")
        return Layer("concat")
    if tensors != 1:
        raise _fail(node, "an operation on tensors and constants (x + 3, x * 0.5, ...)")
    if (target in _FUNCTION_KINDS or method and target in _METHOD_KINDS) and not constants[1:]:
        return Layer(_FUNCTION_KINDS[target] if not method else _METHOD_KINDS[str(target)])
    rest = node.args[1:]
    if target in (torch.flatten,) or method and target == "flatten":
        if (rest[0] if rest else kwargs.get("start_dim", 0)) != 1 or (rest[1:] or [kwargs.get("end_dim", -1)])[0] != -1:
            raise _fail(node, "a flatten that keeps dimensions other than the batch")
        return Layer("flatten")
    if method and target == "mean" or target is torch.mean:
        dims = rest[0] if rest else kwargs.get("dim")
        dims = tuple(sorted(d % 4 for d in ((dims,) if isinstance(dims, int) else dims or ())))
        if dims != (2, 3):
            raise _fail(node, "a mean over axes other than (2, 3) (height and width)")
        keepdim = rest[1] if len(rest) > 1 else kwargs.get("keepdim", False)
        return Layer("global_avg_pool", {"keepdims": bool(keepdim)})
    if target is F.adaptive_avg_pool2d:
        size = rest[0] if rest else kwargs["output_size"]
        return Layer("adaptive_avg_pool", {"output_size": (size, size) if isinstance(size, int) else tuple(size)})
    if target is F.dropout:
        return Layer("dropout", {"rate": float(rest[0] if rest else kwargs.get("p", 0.5))})
    if target is F.leaky_relu:
        return Layer("leaky_relu", {"negative_slope": float(rest[0] if rest else kwargs.get("negative_slope", 0.01))})
    if target is F.elu:
        return Layer("elu", {"alpha": float(rest[0] if rest else kwargs.get("alpha", 1.0))})
    if target is F.gelu:
        return Layer("gelu", {"approximate": kwargs.get("approximate", "none")})
    if target is F.hardsigmoid:
        return Layer("hard_sigmoid", {"alpha": 1 / 6, "beta": 0.5})
    if target in (F.softmax, torch.softmax) or method and target == "softmax":
        dim = rest[0] if rest else kwargs.get("dim")
        if dim is None:
            raise _fail(node, "a softmax without an explicit dim")
        return Layer("softmax", {"axis": dim % shapes})
    if target in (F.max_pool2d, F.avg_pool2d):
        names = ("kernel_size", "stride", "padding")
        options = {**dict(zip(names, rest, strict=False)), **kwargs}
        kind = "max_pool2d" if target is F.max_pool2d else "avg_pool2d"
        extra = {} if kind == "max_pool2d" else {"count_include_pad": options.get("count_include_pad", True)}
        return pool(
            kind,
            options["kernel_size"],
            options.get("stride") or None,
            options.get("padding", 0),
            options.get("ceil_mode", False),
            **extra,
        )
    raise _fail(node, "an operation port does not know")


def read_graph(model: nn.Module, input_shape: tuple[int, ...] | None, read_sequential_layer: Any) -> Network:
    """The description of any ``nn.Module`` ``torch.fx.symbolic_trace`` can trace."""
    try:
        traced = fx.symbolic_trace(model)
    except Exception as error:  # fx raises TraceError, TypeError, ... on data-dependent control flow
        raise ValueError(
            f"{type(model).__name__} cannot be traced by torch.fx ({type(error).__name__}: {error}); port reads "
            "a model whose forward has no data-dependent control flow"
        ) from None
    names: dict[str, str] = {}  # fx node name -> the description node it stands for
    ranks: dict[str, int] = {}
    described: list[Layer] = []
    outputs: tuple[str, ...] = ()
    modules = dict(traced.named_modules())
    for node in traced.graph.nodes:
        if node.op == "placeholder":
            if names:
                raise _fail(node, "a second input (port reads networks of one input)")
            names[node.name] = INPUT
            ranks[node.name] = 1 + len(input_shape) if input_shape else 4
            continue
        if node.op == "output":
            results = node.args[0] if isinstance(node.args[0], tuple | list) else (node.args[0],)
            outputs = tuple(names[result.name] for result in results)
            continue
        if node.op == "get_attr":
            raise _fail(node, "a tensor used directly by the forward (only layers' own weights port)")
        sources = [arg for arg in _flat(node.args) if isinstance(arg, fx.Node)]
        inputs = tuple(names[source.name] for source in sources)
        if node.op == "call_module":
            layer = _module_layer(node, modules[node.target], read_sequential_layer)
        else:
            layer = _function_layer(node, dict(node.kwargs), len(sources), ranks[sources[0].name] if sources else 4)
        if layer is None:
            names[node.name] = inputs[0]
            ranks[node.name] = ranks[sources[0].name]
            continue
        names[node.name] = node.name
        ranks[node.name] = _rank_after(layer, ranks[sources[0].name])
        described.append(Layer(layer.kind, layer.args, layer.weights, node.name, inputs))
    return Network(input_shape or infer_input_shape(described), described, outputs)


def _flat(args: Any) -> list[Any]:
    return [item for arg in args for item in (_flat(arg) if isinstance(arg, tuple | list) else [arg])]


def _rank_after(layer: Layer, rank: int) -> int:
    if layer.kind in ("flatten", "linear"):
        return 2
    if layer.kind == "global_avg_pool" and not layer.args["keepdims"]:
        return 2
    return rank


# --- the writer: a graph as an nn.Module with a generated forward ---

_RESERVED = {"self", "torch", "nn", "F", INPUT, "x", "y"}  # Python's and the forward's own names


def attribute(name: str) -> str:
    """The attribute (and variable) a node is kept under: its name, unless nn.Module or Python uses it."""
    return f"{name}_" if hasattr(nn.Module, name) or name in _RESERVED or keyword.iskeyword(name) else name


def _expression(layer: Layer, args: list[str]) -> str | None:
    """The forward's expression for a node written without a module; None for one with a module."""
    a, kind = layer.args, layer.kind
    if kind == "add":
        return " + ".join(args)
    if kind == "mul":
        return " * ".join(args)
    if kind == "concat":
        return f"torch.cat([{', '.join(args)}], dim=1)"
    if kind == "global_avg_pool":
        return f"{args[0]}.mean((2, 3){', keepdim=True' if a['keepdims'] else ''})"
    if kind == "hard_sigmoid" and (a["alpha"], a["beta"]) != (1 / 6, 0.5):
        return f"torch.clamp({a['alpha']!r} * {args[0]} + {a['beta']!r}, 0, 1)"
    return None


def module_source(layer: Layer, rank: int, sequential_source: Any) -> str:
    """The torch layer of one node."""
    a, kind = layer.args, layer.kind
    simple = {
        "relu6": "nn.ReLU6()",
        "silu": "nn.SiLU()",
        "hard_swish": "nn.Hardswish()",
        "hard_sigmoid": "nn.Hardsigmoid()",
    }
    if kind in simple:
        return simple[kind]
    if kind == "batch_norm":
        return (
            f"nn.BatchNorm{1 if rank == 2 else 2}d({a['num_features']}, eps={a['eps']!r}, momentum={a['momentum']!r})"
        )
    if kind == "dropout":
        return f"nn.Dropout({a['rate']!r})"
    if kind == "leaky_relu":
        return f"nn.LeakyReLU({a['negative_slope']!r})"
    if kind == "elu":
        return f"nn.ELU({a['alpha']!r})"
    if kind == "gelu":
        return "nn.GELU()" if a["approximate"] == "none" else f"nn.GELU(approximate={a['approximate']!r})"
    if kind == "softmax":
        return f"nn.Softmax(dim={a['axis']})"
    if kind == "adaptive_avg_pool":
        oh, ow = a["output_size"]
        return f"nn.AdaptiveAvgPool2d({oh if oh == ow else (oh, ow)})"
    return str(sequential_source(layer))


def graph_source(net: Network, sequential_source: Any) -> str:
    """``class Net(nn.Module)`` with one attribute per node that has a layer and a forward that runs each chain
    in one variable (``_shared.forward_variables``), naming the values read again later."""
    shapes = net.node_shapes()
    names = forward_variables(net, attribute)
    init, forward = [], []
    for layer in net.layers:
        args = [names[name] for name in layer.inputs]
        expression = _expression(layer, args)
        if expression is None:
            rank = 1 + len(shapes[layer.inputs[0]])
            init.append(f"        self.{attribute(layer.name)} = {module_source(layer, rank, sequential_source)}")
            expression = f"self.{attribute(layer.name)}({args[0]})"
        forward.append(f"        {names[layer.name]} = {expression}")
    result = ", ".join(names[name] for name in net.outputs)
    return (
        "class Net(nn.Module):\n"
        "    def __init__(self):\n"
        "        super().__init__()\n" + "\n".join(init) + "\n\n"
        "    def forward(self, x):\n" + "\n".join(forward) + f"\n        return {result}\n"
    )


def load_graph_weights(model: nn.Module, net: Network) -> None:
    """Copy every node's weights (and BatchNorm's running statistics) into ``model``'s layers."""
    with torch.no_grad():
        for layer in net.layers:
            for name, array in layer.weights.items():
                getattr(getattr(model, attribute(layer.name)), name).copy_(
                    torch.from_numpy(np.ascontiguousarray(array))
                )
