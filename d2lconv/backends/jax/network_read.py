"""The Flax tab's reader: a bound flax.linen model -> d2lconv's ``Network``.

Two kinds of model have a layer graph to read. An ``nn.Sequential`` lists its layers: modules
(``nn.Conv``, ``nn.ConvTranspose``, ``nn.Dense``, ``nn.BatchNorm``, ``nn.Dropout``), activation
functions (``nn.relu``, ``nn.gelu``, ... or a ``functools.partial`` of one with its arguments) and
``functools.partial`` of ``nn.max_pool``, ``nn.avg_pool``, ``jnp.pad``. A module class that d2lconv's
writer made carries its graph (``Net.graph``: every node's kind, arguments and inputs); its weights are
read from the bound variables, so a model trained since is read as it is now. A hand-written
``__call__`` is Python code with no layer graph to read: ``ValueError`` says so.
"""

from __future__ import annotations

import functools
from typing import Any

import flax.linen as nn
import jax.numpy as jnp
import numpy as np

from ...core.conventions import momentum_new_batch
from ...core.network import Layer, Network, batch_norm, conv, pool
from ...core.plan import unsupported

# Flax's activation functions -> (kind, arguments, the function's own keyword -> the description's).
# nn.gelu's default is the tanh approximation; nn.leaky_relu's slope 0.01; nn.softmax's axis the last.
FUNCTIONS: dict[Any, tuple[str, dict[str, Any]]] = {
    nn.relu: ("relu", {}),
    nn.sigmoid: ("sigmoid", {}),
    nn.tanh: ("tanh", {}),
    nn.relu6: ("relu6", {}),
    nn.silu: ("silu", {}),
    nn.swish: ("silu", {}),
    nn.hard_swish: ("hard_swish", {}),
    nn.hard_silu: ("hard_swish", {}),
    nn.hard_sigmoid: ("hard_sigmoid", {"alpha": 1 / 6, "beta": 0.5}),
    nn.elu: ("elu", {"alpha": 1.0}),
    nn.leaky_relu: ("leaky_relu", {"negative_slope": 0.01}),
    nn.gelu: ("gelu", {"approximate": "tanh"}),
    nn.softmax: ("softmax", {"axis": 1}),
}


def _pads(padding: Any, index: int, layer: object) -> Any:
    if isinstance(padding, str):
        if padding.upper() not in ("SAME", "VALID"):
            raise unsupported(index, layer, f"padding {padding!r}")
        return padding.lower()
    if isinstance(padding, int):
        return padding
    (top, bottom), (left, right) = padding
    return ((top, bottom), (left, right))


def _function(index: int, layer: Any) -> Layer | None:
    """An activation function, or a functools.partial of one, of pooling or of padding; None otherwise."""
    if isinstance(layer, nn.Module):
        return None  # a module that holds variables cannot even be hashed
    function, keywords = (layer.func, dict(layer.keywords)) if isinstance(layer, functools.partial) else (layer, {})
    if function in FUNCTIONS:
        kind, args = FUNCTIONS[function]
        args = dict(args)
        if kind == "gelu" and "approximate" in keywords:
            args["approximate"] = "tanh" if keywords.pop("approximate") else "none"
        if kind == "softmax" and keywords.pop("axis", -1) not in (-1, 3):
            raise unsupported(index, layer, "softmax over an axis other than the channels")
        for key in ("negative_slope", "alpha"):
            if key in keywords and key in args:
                args[key] = float(keywords.pop(key))
        if keywords:
            raise unsupported(index, layer, f"the arguments {sorted(keywords)}")
        return Layer(kind, args)
    if getattr(layer, "__name__", None) == "flatten":
        return Layer("flatten")
    if function in (nn.max_pool, nn.avg_pool):
        kind = "max_pool2d" if function is nn.max_pool else "avg_pool2d"
        return pool(
            kind,
            keywords["window_shape"],
            keywords.get("strides"),
            _pads(keywords.get("padding", "VALID"), index, layer),
            count_include_pad=keywords.get("count_include_pad", True),
        )
    if function is jnp.pad and keywords.get("mode", "constant") == "constant":
        (_, _), (top, bottom), (left, right), (_, _) = keywords["pad_width"]
        value = float(keywords.get("constant_values", 0))
        if value == 0:
            return Layer("zero_pad2d", {"padding": (top, bottom, left, right)})
        return Layer("constant_pad2d", {"padding": (top, bottom, left, right), "value": value})
    return None


def _conv_transpose(index: int, layer: nn.ConvTranspose, arrays: dict) -> Layer:
    """nn.ConvTranspose back to PyTorch's form: the kernel flipped back, the dilated input's padding as
    PyTorch's padding and output padding."""
    if layer.transpose_kernel:
        raise unsupported(index, layer, "transpose_kernel=True")
    kernel = arrays["kernel"]  # (kh, kw, in, out), flipped
    kh, kw, c_in, c_out = kernel.shape
    dilation = tuple(layer.kernel_dilation or (1, 1))
    stride = tuple(layer.strides or (1, 1))
    extents = [dilation[0] * (kh - 1), dilation[1] * (kw - 1)]
    if isinstance(layer.padding, str) and layer.padding.upper() == "VALID":
        flax_pads = [(e, e + max(s - e - 1, 0)) for e, s in zip(extents, stride, strict=True)]
    elif isinstance(layer.padding, str):
        raise unsupported(index, layer, f"a transposed convolution with padding {layer.padding!r}")
    else:
        flax_pads = [tuple(pair) for pair in layer.padding]
    padding, output_padding = [], []
    for extent, (before, after) in zip(extents, flax_pads, strict=True):
        crop_after = extent - after  # PyTorch's padding at the end minus its output padding
        padding += [extent - before, max(crop_after, 0)]
        output_padding.append(max(-crop_after, 0))
    if min(padding) < 0:
        raise unsupported(index, layer, "a transposed convolution padded beyond its kernel extent")
    made = conv(c_in, c_out, (kh, kw), stride, 0, dilation, 1, kernel[::-1, ::-1].transpose(2, 3, 0, 1).copy())
    weights = {**made.weights, **({"bias": arrays["bias"]} if "bias" in arrays else {})}
    args = {**made.args, "padding": tuple(padding), "output_padding": tuple(output_padding), "bias": "bias" in arrays}
    return Layer("conv_transpose2d", args, weights)


def read_sequential_layer(index: int, layer: Any, variables: dict) -> Layer:
    """One layer of a bound ``nn.Sequential`` (its variables under ``layers_<index>``)."""
    made = _function(index, layer)
    if made is not None:
        return made
    name = f"layers_{index}"
    arrays = {key: np.array(value) for key, value in variables.get("params", {}).get(name, {}).items()}
    if isinstance(layer, nn.ConvTranspose):
        return _conv_transpose(index, layer, arrays)
    if isinstance(layer, nn.Conv):
        if layer.input_dilation not in (1, (1, 1), None):
            raise unsupported(index, layer, "input_dilation")
        kernel, groups = arrays["kernel"], layer.feature_group_count
        return conv(
            kernel.shape[2] * groups,
            layer.features,
            tuple(layer.kernel_size),
            layer.strides or 1,
            _pads(layer.padding, index, layer),
            layer.kernel_dilation or 1,
            groups,
            kernel.transpose(3, 2, 0, 1),
            arrays.get("bias"),
        )
    if isinstance(layer, nn.Dense):
        kernel = arrays["kernel"]
        return Layer(
            "linear",
            {"in_features": kernel.shape[0], "out_features": layer.features, "bias": "bias" in arrays},
            {"weight": kernel.T.copy(), **({"bias": arrays["bias"]} if "bias" in arrays else {})},
        )
    if isinstance(layer, nn.BatchNorm):
        stats = variables.get("batch_stats", {}).get(name, {})
        return _batch_norm(index, layer, arrays, {key: np.array(value) for key, value in stats.items()})
    if isinstance(layer, nn.Dropout):
        return Layer("dropout", {"rate": float(layer.rate)})
    raise unsupported(
        index,
        layer,
        "in an nn.Sequential, port reads Flax's layers, activation functions (or functools.partial of them), "
        "functools.partial of nn.max_pool, nn.avg_pool or jnp.pad, and a function named flatten",
    )


def _batch_norm(index: int, layer: nn.BatchNorm, params: dict, stats: dict) -> Layer:
    if layer.axis not in (-1, 3) or layer.axis_name is not None:
        raise unsupported(index, layer, "a BatchNorm that is not plain, over the channel axis")
    mean = stats["mean"]
    return batch_norm(
        mean.shape[0],
        eps=float(layer.epsilon),
        momentum=momentum_new_batch(layer.momentum),
        variance="biased",
        weight=params.get("scale"),
        bias=params.get("bias"),
        running_mean=mean,
        running_var=stats["var"],
        dtype=mean.dtype,
    )


def read_graph_weights(graph: Network, variables: dict) -> list[Layer]:
    """The nodes of a graph the writer made, with their weights read from the module's bound variables
    (Flax's layouts back to d2lconv's); a BatchNorm's running variance is now Flax's, the biased estimate."""
    params, stats = variables.get("params", {}), variables.get("batch_stats", {})
    nodes = []
    for layer in graph.layers:
        arrays = {key: np.array(value) for key, value in params.get(layer.name, {}).items()}
        weights: dict[str, np.ndarray] = {}
        if layer.kind == "batch_norm":
            node_stats = stats.get(layer.name, {})
            weights = {
                "weight": arrays["scale"],
                "bias": arrays["bias"],
                "running_mean": np.array(node_stats["mean"]),
                "running_var": np.array(node_stats["var"]),
            }
        elif layer.kind == "conv2d":
            weights = {"weight": arrays["kernel"].transpose(3, 2, 0, 1).copy()}
        elif layer.kind == "conv_transpose2d":
            weights = {"weight": arrays["kernel"][::-1, ::-1].transpose(2, 3, 0, 1).copy()}
        elif layer.kind == "linear":
            weights = {"weight": arrays["kernel"].T.copy()}
        if "bias" in arrays and layer.kind != "batch_norm":
            weights["bias"] = arrays["bias"]
        args = {**layer.args, "variance": "biased"} if layer.kind == "batch_norm" else dict(layer.args)
        nodes.append(Layer(layer.kind, args, weights, layer.name, layer.inputs))  # nn.BatchNorm's estimate: biased
    return nodes
