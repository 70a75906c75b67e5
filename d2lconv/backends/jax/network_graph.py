"""The Flax tab's writer: d2lconv's ``Network`` -> flax.linen source text and its variables, NHWC throughout.

A sequential network of the chapter's layers is an ``nn.Sequential`` (pooling and padding as
``functools.partial`` of ``nn.max_pool``, ``nn.avg_pool``, ``jnp.pad``, so a reader sees their
arguments). Any other network is a module class whose ``__call__`` computes the graph node by node,
one line a node, each output in a variable named after the node; layers with variables are
submodules named after their node: ``nn.Conv`` (HWIO kernel, ``feature_group_count`` for a grouped
or depthwise convolution), ``nn.ConvTranspose``, ``nn.Dense``, ``nn.BatchNorm`` (Flax's momentum is
the weight kept on the running value, 1 - the description's; ``use_running_average=not train``).
``nn.ConvTranspose`` (``transpose_kernel=False``) is a convolution of the stride-dilated input, so
its kernel is PyTorch's flipped in space, (kh, kw, in, out), and its padding is
``dilation * (k - 1) - padding`` on each side (plus ``output_padding`` at the end).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ...core.args import explicit_padding
from ...core.conventions import momentum_kept
from ...core.network import INPUT, Layer, Network, dense_after_flatten, flatten_permutation
from ...core.plan import cannot
from .. import FACTS
from .ops import NAME

# The kinds an nn.Sequential holds (everything else makes a module class).
SEQUENTIAL_KINDS = (
    "conv2d",
    "conv_transpose2d",
    "max_pool2d",
    "avg_pool2d",
    "zero_pad2d",
    "constant_pad2d",
    "flatten",
    "linear",
    "relu",
    "sigmoid",
    "tanh",
)
_FUNCTIONS = ("relu", "sigmoid", "tanh", "relu6", "silu", "hard_swish")
# Names the generated class uses itself: a node of that name gets a trailing underscore.
_RESERVED = {"x", "self", "train", "dropout", "nn", "jnp", "functools", "jax", "np", "flatten", "module", "net"}


def flatten(x: Any) -> Any:
    """(N, H, W, C) -> (N, H*W*C), as the book's ``lambda x: x.reshape((x.shape[0], -1))``."""
    return x.reshape((x.shape[0], -1))


def is_sequential(net: Network) -> bool:
    """Whether ``net`` is written as an ``nn.Sequential`` (a chain of the chapter's layers)."""
    return net.is_sequential and all(layer.kind in SEQUENTIAL_KINDS for layer in net.layers)


def _pairs(pads: tuple[int, int, int, int]) -> str:
    return f"(({pads[0]}, {pads[1]}), ({pads[2]}, {pads[3]}))"


def transpose_pads(layer: Layer) -> tuple[int, int, int, int]:
    """PyTorch's transposed-convolution padding as the padding of Flax's dilated-input convolution."""
    a, pads = layer.args, []
    for axis in range(2):
        extent = a["dilation"][axis] * (a["kernel_size"][axis] - 1)
        before, after = a["padding"][2 * axis : 2 * axis + 2]
        pads += [extent - before, extent - after + a["output_padding"][axis]]
    return pads[0], pads[1], pads[2], pads[3]


def _padding(a: dict) -> str:
    return "'SAME'" if a["padding"] == "same" else "'VALID'" if a["padding"] == (0, 0, 0, 0) else _pairs(a["padding"])


def _submodule(index: int, layer: Layer, name: str) -> str:
    """The constructor of a layer with variables (conv, transposed conv, dense); ``name`` ends it."""
    a, kind = layer.args, layer.kind
    tail = f", name='{name}')" if name else ")"
    if kind == "linear":
        return f"nn.Dense({a['out_features']}{'' if a['bias'] else ', use_bias=False'}{tail}"
    padding = _padding(a)
    if kind == "conv2d":
        if a["stride"] == (1, 1) and a["padding"] == explicit_padding(
            "same", (1, 1), a["kernel_size"], (1, 1), a["dilation"]
        ):
            padding = "'SAME'"  # at stride 1, 'same' pads the same on every input size
        options = [f"kernel_size={tuple(a['kernel_size'])}", f"padding={padding}"]
        options += [f"strides={tuple(a['stride'])}"] if a["stride"] != (1, 1) else []
        options += [f"kernel_dilation={tuple(a['dilation'])}"] if a["dilation"] != (1, 1) else []
        options += [f"feature_group_count={a['groups']}"] if a["groups"] != 1 else []
        options += [] if a["bias"] else ["use_bias=False"]
        return f"nn.Conv({a['out_channels']}, {', '.join(options)}{tail}"
    if a["padding"] == "same":
        raise cannot(index, layer, "a transposed convolution with padding='same'", FACTS[NAME])
    pads = transpose_pads(layer)
    if min(pads) < 0:
        raise cannot(index, layer, "a transposed convolution padded by more than its kernel extent", FACTS[NAME])
    options = [f"kernel_size={tuple(a['kernel_size'])}", f"strides={tuple(a['stride'])}", f"padding={_pairs(pads)}"]
    options += [f"kernel_dilation={tuple(a['dilation'])}"] if a["dilation"] != (1, 1) else []
    options += [] if a["bias"] else ["use_bias=False"]
    return f"nn.ConvTranspose({a['out_channels']}, {', '.join(options)}{tail}"


def _pad_value(a: dict) -> str:
    value = a.get("value", 0)
    return "" if value == 0 else ", constant_values=-jnp.inf" if value == -math.inf else f", constant_values={value!r}"


def _pool_options(a: dict, kind: str) -> list[str]:
    options = [f"strides={tuple(a['stride'])}", f"padding={_padding(a)}"]
    if kind == "avg_pool2d" and a["padding"] != (0, 0, 0, 0) and not a["count_include_pad"]:
        options.append("count_include_pad=False")
    return options


def sequential_layer_source(index: int, layer: Layer) -> str:
    """One layer of an ``nn.Sequential``, as the book's JAX tab writes it."""
    a, kind = layer.args, layer.kind
    if kind in ("relu", "sigmoid", "tanh"):
        return f"nn.{kind}"
    if kind == "flatten":
        return "flatten"
    if kind in ("zero_pad2d", "constant_pad2d"):
        top, bottom, left, right = a["padding"]
        return (
            f"functools.partial(jnp.pad, pad_width=((0, 0), ({top}, {bottom}), ({left}, {right}), (0, 0))"
            f"{_pad_value(a)})"
        )
    if kind in ("max_pool2d", "avg_pool2d"):
        function = "nn.max_pool" if kind == "max_pool2d" else "nn.avg_pool"
        options = [f"window_shape={tuple(a['kernel_size'])}", *_pool_options(a, kind)]
        return f"functools.partial({function}, {', '.join(options)})"
    return _submodule(index, layer, "")


def node_source(index: int, layer: Layer, reads: list[str], rank: int) -> str:  # noqa: C901 - a branch per kind
    """One node of a module class's ``__call__``: the expression of its output, from the variables
    ``reads`` of its inputs; ``rank`` is its input's rank, batch axis included."""
    a, kind, v = layer.args, layer.kind, reads[0]
    if kind in ("conv2d", "conv_transpose2d", "linear"):
        return f"{_submodule(index, layer, layer.name)}({v})"
    if kind == "batch_norm":
        return (
            f"nn.BatchNorm(use_running_average=not train, momentum={momentum_kept(a['momentum'])!r}, "
            f"epsilon={a['eps']!r}, use_fast_variance=False, name='{layer.name}')({v})"
        )
    if kind == "dropout":
        return f"nn.Dropout({a['rate']!r}, deterministic=not (train and dropout), name='{layer.name}')({v})"
    if kind in _FUNCTIONS:
        return f"nn.{kind}({v})"
    if kind == "leaky_relu":
        return f"nn.leaky_relu({v}, negative_slope={a['negative_slope']!r})"
    if kind == "elu":
        return f"nn.elu({v}, alpha={a['alpha']!r})"
    if kind == "gelu":
        return f"nn.gelu({v}, approximate={a['approximate'] == 'tanh'})"
    if kind == "hard_sigmoid":
        if math.isclose(a["alpha"], 1 / 6) and a["beta"] == 0.5:
            return f"nn.hard_sigmoid({v})"
        return f"jnp.clip({a['alpha']!r} * {v} + {a['beta']!r}, 0.0, 1.0)"
    if kind == "softmax":
        axis = a["axis"] if rank != 4 else (0, 3, 1, 2)[a["axis"]]
        return f"nn.softmax({v}, axis={-1 if axis == rank - 1 else axis})"
    if kind in ("add", "mul"):
        return f" {'+' if kind == 'add' else '*'} ".join(reads)
    if kind == "concat":
        return f"jnp.concatenate([{', '.join(reads)}], axis=-1)"
    if kind == "global_avg_pool":
        return f"jnp.mean({v}, axis=(1, 2){', keepdims=True' if a['keepdims'] else ''})"
    if kind == "flatten":
        return f"{v}.reshape(({v}.shape[0], -1))"
    if kind in ("zero_pad2d", "constant_pad2d"):
        top, bottom, left, right = a["padding"]
        return f"jnp.pad({v}, ((0, 0), ({top}, {bottom}), ({left}, {right}), (0, 0)){_pad_value(a)})"
    if kind in ("max_pool2d", "avg_pool2d"):
        function = "nn.max_pool" if kind == "max_pool2d" else "nn.avg_pool"
        return f"{function}({v}, {tuple(a['kernel_size'])}, {', '.join(_pool_options(a, kind))})"
    raise cannot(index, layer, f"a {kind} node (plan rewrites it for Flax first)", FACTS[NAME])


def variable(name: str) -> str:
    """The Python variable holding node ``name``'s output in the generated ``__call__``."""
    return "x" if name == INPUT else f"{name}_" if name in _RESERVED else name


def module_source(net: Network, every_node: bool = False) -> str:
    """``net`` as flax.linen source defining ``module``: an ``nn.Sequential``, or an instance of the class
    ``Net`` whose ``__call__(x, train=False)`` runs the graph (``every_node``: it returns every node's
    output in a dict, for ``run_nodes``)."""
    if is_sequential(net) and not every_node:
        lines = "".join(f"    {sequential_layer_source(index, layer)},\n" for index, layer in enumerate(net.layers))
        return f"module = nn.Sequential([\n{lines}])\n"
    shapes = net.node_shapes()
    dropout = any(layer.kind == "dropout" for layer in net.layers)
    body = [
        f"        {variable(layer.name)} = "
        f"{node_source(index, layer, [variable(name) for name in layer.inputs], 1 + len(shapes[layer.inputs[0]]))}"
        for index, layer in enumerate(net.layers)
    ]
    if every_node:
        result = "{" + ", ".join(f"'{layer.name}': {variable(layer.name)}" for layer in net.layers) + "}"
    else:
        outputs = [variable(name) for name in net.outputs]
        result = outputs[0] if len(outputs) == 1 else f"({', '.join(outputs)},)"
    signature = "self, x, train: bool = False" + (", dropout: bool = True" if dropout else "")
    doc = "NHWC in and out; train=True: BatchNorm normalises with the batch's statistics and updates them"
    doc += " (and Dropout drops, unless dropout=False)." if dropout else "."
    return (
        "class Net(nn.Module):\n"
        f'    """The ported network. {doc}"""\n\n'
        "    @nn.compact\n"
        f"    def __call__({signature}):\n" + "\n".join(body) + f"\n        return {result}\n\n\nmodule = Net()\n"
    )


def flax_variables(net: Network) -> dict[str, dict[str, dict[str, np.ndarray]]]:
    """The variables in Flax's layouts: ``params`` (kernels HWIO, transposed-conv kernels (kh, kw, in, out)
    flipped, dense (in, out) with HWC rows after a flatten, BatchNorm scale and bias) and ``batch_stats``
    (mean, var), under the submodules' names (an nn.Sequential's ``layers_<index>``)."""
    sequential = is_sequential(net)
    permuted, params, stats = dense_after_flatten(net), {}, {}
    for index, layer in enumerate(net.layers):
        if not layer.weights:
            continue
        name, weights = f"layers_{index}" if sequential else layer.name, layer.weights
        if layer.kind == "batch_norm":
            params[name] = {"scale": weights["weight"], "bias": weights["bias"]}
            stats[name] = {"mean": weights["running_mean"], "var": weights["running_var"]}
            continue
        weight = weights["weight"]
        if layer.kind == "conv2d":
            kernel = weight.transpose(2, 3, 1, 0)
        elif layer.kind == "conv_transpose2d":
            kernel = weight[:, :, ::-1, ::-1].transpose(2, 3, 0, 1)
        else:
            kernel = (weight[:, flatten_permutation(permuted[index])] if index in permuted else weight).T
        params[name] = {
            "kernel": np.ascontiguousarray(kernel),
            **({"bias": weights["bias"]} if "bias" in weights else {}),
        }
    return {"params": params, **({"batch_stats": stats} if stats else {})}
