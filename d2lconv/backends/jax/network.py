"""The Flax tab's network writer and reader: a bound ``flax.linen.Sequential`` <-> d2lconv's ``Network``.

Flax is NHWC: ``nn.Conv`` kernels are HWIO, ``nn.Dense`` kernels (in, out), and a flatten
reads (H, W, C), so the first dense layer after a flatten gets its input rows permuted.
``nn.ConvTranspose`` (``transpose_kernel=False``) is a convolution of the stride-dilated
input, so its kernel is PyTorch's flipped in space, (kh, kw, in, out), and its padding is
``dilation * (k - 1) - padding`` on each side (plus ``output_padding`` at the end).
Pooling and padding are functions (``functools.partial`` of ``nn.max_pool``, ``nn.avg_pool``,
``jnp.pad``), so a reader can see their arguments; the book writes them as lambdas, which
no reader can. The network is bound to its parameters: ``module.bind({"params": params})``.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence

import flax.linen as nn
import jax.numpy as jnp
import numpy as np

from ...core.args import explicit_padding
from ...core.network import Layer, Network, conv, dense_after_flatten, flatten_permutation, infer_input_shape, pool
from ...core.plan import cannot, plan, unsupported
from .ops import NAME, _enable_x64

_ACTIVATIONS = {"relu": nn.relu, "sigmoid": nn.sigmoid, "tanh": nn.tanh}


def _flatten(x: jnp.ndarray) -> jnp.ndarray:
    """(N, H, W, C) -> (N, H*W*C), as the book's ``lambda x: x.reshape((x.shape[0], -1))``."""
    return x.reshape((x.shape[0], -1))


def _pairs(pads: tuple[int, int, int, int]) -> str:
    return f"(({pads[0]}, {pads[1]}), ({pads[2]}, {pads[3]}))"


def _transpose_pads(layer: Layer) -> tuple[int, int, int, int]:
    """PyTorch's transposed-convolution padding as the padding of Flax's dilated-input convolution."""
    a, pads = layer.args, []
    for axis in range(2):
        extent = a["dilation"][axis] * (a["kernel_size"][axis] - 1)
        before, after = a["padding"][2 * axis : 2 * axis + 2]
        pads += [extent - before, extent - after + a["output_padding"][axis]]
    return pads[0], pads[1], pads[2], pads[3]


def _layer_source(index: int, layer: Layer) -> str:
    """One layer as the book's JAX tab writes it (``flax.linen``, channels last)."""
    a, kind = layer.args, layer.kind
    if kind in _ACTIVATIONS:
        return f"nn.{kind}"
    if kind == "flatten":
        return "flatten"
    if kind == "linear":
        return f"nn.Dense({a['out_features']}{'' if a['bias'] else ', use_bias=False'})"
    if kind in ("zero_pad2d", "constant_pad2d"):
        value = (
            ""
            if kind == "zero_pad2d" or a["value"] == 0
            else ", constant_values=-jnp.inf"
            if a["value"] == -math.inf
            else f", constant_values={a['value']!r}"
        )
        top, bottom, left, right = a["padding"]
        return f"functools.partial(jnp.pad, pad_width=((0, 0), ({top}, {bottom}), ({left}, {right}), (0, 0)){value})"
    padding = (
        "'SAME'" if a["padding"] == "same" else "'VALID'" if a["padding"] == (0, 0, 0, 0) else _pairs(a["padding"])
    )
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
        return f"nn.Conv({a['out_channels']}, {', '.join(options)})"
    if kind == "conv_transpose2d":
        if a["padding"] == "same":
            raise cannot(index, layer, "a transposed convolution with padding='same'", NAME)
        pads = _transpose_pads(layer)
        if min(pads) < 0:
            raise cannot(index, layer, "a transposed convolution padded by more than its kernel extent", NAME)
        options = [f"kernel_size={tuple(a['kernel_size'])}", f"strides={tuple(a['stride'])}", f"padding={_pairs(pads)}"]
        options += [f"kernel_dilation={tuple(a['dilation'])}"] if a["dilation"] != (1, 1) else []
        options += [] if a["bias"] else ["use_bias=False"]
        return f"nn.ConvTranspose({a['out_channels']}, {', '.join(options)})"
    options = [f"window_shape={tuple(a['kernel_size'])}", f"strides={tuple(a['stride'])}", f"padding={padding}"]
    if kind == "avg_pool2d" and a["padding"] != (0, 0, 0, 0) and not a["count_include_pad"]:
        options.append("count_include_pad=False")
    return f"functools.partial(nn.{'max_pool' if kind == 'max_pool2d' else 'avg_pool'}, {', '.join(options)})"


def _source(net: Network) -> str:
    lines = "".join(f"    {_layer_source(index, layer)},\n" for index, layer in enumerate(net.layers))
    return f"nn.Sequential([\n{lines}])"


def _flax_params(net: Network) -> dict[str, dict[str, np.ndarray]]:
    """Each layer's parameters in Flax's layouts, under Sequential's names ``layers_<index>``."""
    permuted, params = dense_after_flatten(net), {}
    for index, layer in enumerate(net.layers):
        if not layer.weights:
            continue
        weight = layer.weights["weight"]
        if layer.kind == "conv2d":
            kernel = weight.transpose(2, 3, 1, 0)
        elif layer.kind == "conv_transpose2d":
            kernel = weight[:, :, ::-1, ::-1].transpose(2, 3, 0, 1)
        else:
            kernel = (weight[:, flatten_permutation(permuted[index])] if index in permuted else weight).T
        params[f"layers_{index}"] = {
            "kernel": np.ascontiguousarray(kernel),
            **({"bias": layer.weights["bias"]} if "bias" in layer.weights else {}),
        }
    return params


def build_network(net: Network) -> nn.Sequential:
    """``net`` as a ``flax.linen.Sequential`` bound to its parameters (NHWC)."""
    planned = plan(net, NAME).network
    module = eval(_source(planned), {"nn": nn, "jnp": jnp, "functools": functools, "flatten": _flatten})
    with _enable_x64(planned.dtype == np.float64):  # float64 weights stay float64 (thread-local switch)
        params = {
            name: {key: jnp.asarray(value) for key, value in arrays.items()}
            for name, arrays in _flax_params(planned).items()
        }
    return module.bind({"params": params})


def network_code(net: Network) -> str:
    """Source that builds ``net`` the way the book's JAX tab would, and binds it to the weights file."""
    planned = plan(net, NAME).network
    source = _source(planned)
    x64 = "\njax.config.update('jax_enable_x64', True)  # float64 weights\n" if planned.dtype == np.float64 else ""
    helper = (
        '\n\ndef flatten(x):\n    """(N, H, W, C) -> (N, H*W*C)."""\n    return x.reshape((x.shape[0], -1))\n\n'
        if "flatten" in source
        else "\n"
    )
    return (
        "import functools\n\nimport flax.linen as nn\nimport jax\nimport jax.numpy as jnp\nimport numpy as np\n"
        f"{x64}{helper}\nmodule = {source}\n"
        "weights = np.load('weights.npz')  # written by ported.save_weights\n"
        "params = {}\n"
        "for key in weights:\n"
        "    layer, name = key.split('.')\n"
        "    params.setdefault(layer, {})[name] = jnp.asarray(weights[key])\n"
        "net = module.bind({'params': params})\n"
    )


def native_weights(model: nn.Sequential) -> dict[str, np.ndarray]:
    """The bound parameters in Flax's layouts, named ``"layers_<index>.kernel"`` / ``".bias"``."""
    return {
        f"{layer}.{name}": np.array(value)
        for layer, arrays in model.variables.get("params", {}).items()
        for name, value in arrays.items()
    }


def _pads(
    padding: str | int | Sequence[Sequence[int]], index: int, layer: object
) -> str | int | tuple[tuple[int, int], tuple[int, int]]:
    if isinstance(padding, str):
        if padding.upper() not in ("SAME", "VALID"):
            raise unsupported(index, layer, f"padding {padding!r}")
        return padding.lower()
    if isinstance(padding, int):
        return padding
    (top, bottom), (left, right) = padding
    return ((top, bottom), (left, right))


def _read_layer(index: int, layer: object, params: dict) -> Layer:
    for kind, function in _ACTIVATIONS.items():
        if layer is function:
            return Layer(kind)
    if layer is _flatten or getattr(layer, "__name__", None) == "flatten":
        return Layer("flatten")
    if isinstance(layer, functools.partial):
        keywords = layer.keywords
        if layer.func in (nn.max_pool, nn.avg_pool):
            kind = "max_pool2d" if layer.func is nn.max_pool else "avg_pool2d"
            return pool(
                kind,
                keywords["window_shape"],
                keywords.get("strides"),
                _pads(keywords.get("padding", "VALID"), index, layer),
                count_include_pad=keywords.get("count_include_pad", True),
            )
        if layer.func is jnp.pad and keywords.get("mode", "constant") == "constant":
            (_, _), (top, bottom), (left, right), (_, _) = keywords["pad_width"]
            value = float(keywords.get("constant_values", 0))
            return (
                Layer("zero_pad2d", {"padding": (top, bottom, left, right)})
                if value == 0
                else Layer("constant_pad2d", {"padding": (top, bottom, left, right), "value": value})
            )
    arrays = {key: np.array(value) for key, value in params.get(f"layers_{index}", {}).items()}
    if isinstance(layer, nn.ConvTranspose):
        raise unsupported(index, layer, "reading nn.ConvTranspose back (write-only in this tab)")
    if isinstance(layer, nn.Conv):
        kernel, groups = arrays["kernel"], layer.feature_group_count
        if layer.input_dilation not in (1, (1, 1), None):
            raise unsupported(index, layer, "input_dilation")
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
    raise unsupported(
        index,
        layer,
        "Flax pooling and padding must be functools.partial of nn.max_pool, "
        "nn.avg_pool or jnp.pad, and flatten a function named flatten, to be read",
    )


def read_network(model: nn.Sequential, input_shape: tuple[int, ...] | None = None) -> Network:
    """The description of a bound ``flax.linen.Sequential``: kernels back to OIHW, the dense layer after
    a flatten back to (C, H, W) columns."""
    if not isinstance(model, nn.Sequential):
        raise ValueError(
            f"port needs a sequential network (flax.linen.Sequential, bound to its params); got {type(model).__name__}"
        )
    if model.scope is None:
        raise ValueError("port needs a bound Flax network: module.bind({'params': params})")
    params = model.variables.get("params", {})
    described = [_read_layer(index, layer, params) for index, layer in enumerate(model.layers)]
    net = Network(input_shape or infer_input_shape(described), described)
    for index, chw in dense_after_flatten(net).items():
        weight = net.layers[index].weights["weight"]
        restored = np.empty_like(weight)
        restored[:, flatten_permutation(chw)] = weight
        net.layers[index].weights["weight"] = restored
    return net


def run_network(model: nn.Sequential, x: np.ndarray) -> np.ndarray:
    """The model's output on an NCHW batch (transposed to NHWC and back), as NumPy."""
    float64 = any(
        np.asarray(leaf).dtype == np.float64
        for arrays in model.variables.get("params", {}).values()
        for leaf in arrays.values()
    )
    with _enable_x64(float64):
        y = np.asarray(model(jnp.asarray(np.ascontiguousarray(np.asarray(x).transpose(0, 2, 3, 1)))))
    return y.transpose(0, 3, 1, 2) if y.ndim == 4 else y
