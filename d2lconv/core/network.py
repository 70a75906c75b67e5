"""A sequential network as framework-neutral data: what LeNet's weight loading and ``port`` share.

A ``Network`` is an input shape and a list of ``Layer``s. Each layer has a kind, its
arguments normalised as the ops normalise them, and its weights as NumPy arrays in
d2lconv's layouts (convolution OIHW, transposed convolution (C_in, C_out/groups, kh, kw),
dense (out, in)). Data is NCHW and a flatten takes C, H, W in that order (torch's),
whatever the framework. Each tab has one writer (``build_network``: Network -> the
framework's own layers, weights loaded, layouts and flatten order handled) and one
reader (``read_network``: the framework's network -> Network), so porting A to B is B's
writer after A's reader.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from .args import conv_output_size, explicit_padding, pool2d_args

# The layer kinds and the arguments each carries (``args`` keys). Spatial arguments are
# pairs; padding is (top, bottom, left, right) or "same" (d2lconv's SAME_UPPER).
# ``constant_pad2d`` pads with ``value`` (-inf before a max pooling that a framework cannot pad itself).
KINDS: dict[str, tuple[str, ...]] = {
    "conv2d": ("in_channels", "out_channels", "kernel_size", "stride", "padding", "dilation", "groups", "bias"),
    "conv_transpose2d": (
        "in_channels",
        "out_channels",
        "kernel_size",
        "stride",
        "padding",
        "output_padding",
        "dilation",
        "groups",
        "bias",
    ),
    "max_pool2d": ("kernel_size", "stride", "padding", "dilation", "ceil_mode"),
    "avg_pool2d": ("kernel_size", "stride", "padding", "ceil_mode", "count_include_pad"),
    "zero_pad2d": ("padding",),
    "constant_pad2d": ("padding", "value"),
    "flatten": (),
    "linear": ("in_features", "out_features", "bias"),
    "relu": (),
    "sigmoid": (),
    "tanh": (),
}
ACTIVATIONS = ("relu", "sigmoid", "tanh")
NO_PADDING = (0, 0, 0, 0)


@dataclass
class Layer:
    """One layer: its kind (a key of ``KINDS``), normalised arguments, and weights (NumPy, d2lconv layouts)."""

    kind: str
    args: dict[str, Any] = field(default_factory=dict)
    weights: dict[str, np.ndarray] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown layer kind {self.kind!r}; supported: {', '.join(KINDS)}")
        missing = [name for name in KINDS[self.kind] if name not in self.args]
        if missing:
            raise ValueError(f"a {self.kind} layer needs the arguments {missing}")

    def with_args(self, **changes: Any) -> Layer:
        """A copy with some arguments changed (the weights shared)."""
        return replace(self, args={**self.args, **changes})


@dataclass
class Network:
    """A sequential network on inputs of shape (C, H, W), or (features,) when it starts with a dense layer."""

    input_shape: tuple[int, ...]
    layers: list[Layer]

    @property
    def dtype(self) -> np.dtype:
        """float64 if any weight is float64, else float32."""
        kinds = {array.dtype for layer in self.layers for array in layer.weights.values()}
        return np.dtype(np.float64) if np.dtype(np.float64) in kinds else np.dtype(np.float32)

    def shapes(self) -> list[tuple[int, ...]]:
        """The input shape of every layer, then the network's output shape (batch dimension left out)."""
        shapes: list[tuple[int, ...]] = [tuple(self.input_shape)]
        for index, layer in enumerate(self.layers):
            shapes.append(output_shape(layer, shapes[-1], index))
        return shapes


def conv(
    in_channels: int,
    out_channels: int,
    kernel_size: Any,
    stride: Any = 1,
    padding: Any = 0,
    dilation: Any = 1,
    groups: int = 1,
    weight: np.ndarray | None = None,
    bias: np.ndarray | None = None,
) -> Layer:
    """A conv2d layer with normalised arguments; weight OIHW."""
    kernel, stride, dilation = _pair(kernel_size), _pair(stride), _pair(dilation)
    weights = {"weight": weight} if weight is not None else {}
    if bias is not None:
        weights["bias"] = bias
    return Layer(
        "conv2d",
        dict(
            in_channels=in_channels,
            out_channels=out_channels,
            kernel_size=kernel,
            stride=stride,
            padding=normal_padding(padding, kernel, stride, dilation),
            dilation=dilation,
            groups=groups,
            bias=bias is not None,
        ),
        weights,
    )


def normal_padding(
    padding: Any, kernel: tuple[int, int], stride: tuple[int, int], dilation: tuple[int, int]
) -> tuple[int, int, int, int] | str:
    """Padding as (top, bottom, left, right), or "same" (SAME_UPPER) when it depends on the input size."""
    if isinstance(padding, str) and padding.lower() == "same":
        return "same"
    if isinstance(padding, tuple | list) and len(padding) == 4:
        padding = ((padding[0], padding[1]), (padding[2], padding[3]))
    return explicit_padding(padding, (1, 1), kernel, stride, dilation)


def resolve_padding(layer: Layer, in_hw: tuple[int, int]) -> tuple[int, int, int, int]:
    """The explicit padding (top, bottom, left, right) of ``layer`` on an input of ``in_hw``."""
    args = layer.args
    if args["padding"] != "same":
        top, bottom, left, right = args["padding"]
        return top, bottom, left, right
    return explicit_padding("same", in_hw, args["kernel_size"], args["stride"], args.get("dilation", (1, 1)))


def pad_pairs(pads: tuple[int, int, int, int]) -> tuple[tuple[int, int], tuple[int, int]]:
    """(top, bottom, left, right) as the ops take it: ((top, bottom), (left, right))."""
    return (pads[0], pads[1]), (pads[2], pads[3])


def _pair(value: Any) -> tuple[int, int]:
    return (int(value), int(value)) if np.ndim(value) == 0 else (int(value[0]), int(value[1]))


def output_shape(layer: Layer, shape: tuple[int, ...], index: int = 0) -> tuple[int, ...]:
    """The shape (batch dimension left out) ``layer`` gives for an input of ``shape``."""
    args, kind = layer.args, layer.kind
    if kind in ACTIVATIONS:
        return shape
    if kind == "flatten":
        return (int(np.prod(shape)),)
    if kind == "linear":
        if shape != (args["in_features"],):
            raise ValueError(f"layer {index} (linear) expects {args['in_features']} features, got shape {shape}")
        return (args["out_features"],)
    if len(shape) != 3:
        raise ValueError(f"layer {index} ({kind}) needs a (C, H, W) input, got shape {shape}")
    c, h, w = shape
    if kind in ("zero_pad2d", "constant_pad2d"):
        top, bottom, left, right = args["padding"]
        return (c, h + top + bottom, w + left + right)
    if kind == "conv2d":
        if c != args["in_channels"]:
            raise ValueError(f"layer {index} (conv2d) expects {args['in_channels']} channels, got {c}")
        out = conv_output_size(
            (h, w), args["kernel_size"], args["stride"], pad_pairs(resolve_padding(layer, (h, w))), args["dilation"]
        )
        return (args["out_channels"], *out)
    if kind == "conv_transpose2d":
        if c != args["in_channels"]:
            raise ValueError(f"layer {index} (conv_transpose2d) expects {args['in_channels']} channels, got {c}")
        sizes = []
        for axis, n in enumerate((h, w)):
            k, s, d = args["kernel_size"][axis], args["stride"][axis], args["dilation"][axis]
            before, after = args["padding"][2 * axis : 2 * axis + 2]
            sizes.append((n - 1) * s + d * (k - 1) + 1 - before - after + args["output_padding"][axis])
        return (args["out_channels"], *sizes)
    pool = pool2d_args(
        (1, c, h, w),
        args["kernel_size"],
        args["stride"],
        pad_pairs(resolve_padding(layer, (h, w))),
        args.get("dilation", 1),
        args["ceil_mode"],
    )
    return (c, *pool.out_hw)


def flatten_permutation(chw: tuple[int, int, int]) -> np.ndarray:
    """Indices that reorder a CHW-flattened vector into HWC order: ``hwc = chw[perm]``.

    An NHWC framework flattens (H, W, C); d2lconv's description flattens (C, H, W). The
    first dense layer after a flatten takes its input columns in this order there.
    """
    c, h, w = chw
    return np.transpose(np.arange(c * h * w).reshape(c, h, w), (1, 2, 0)).reshape(-1)


def dense_after_flatten(net: Network) -> dict[int, tuple[int, int, int]]:
    """For each linear layer fed (through activations only) by a flatten: its index -> the (C, H, W) flattened."""
    shapes = net.shapes()
    found: dict[int, tuple[int, int, int]] = {}
    pending: tuple[int, int, int] | None = None
    for index, layer in enumerate(net.layers):
        if layer.kind == "flatten":
            shape = shapes[index]
            pending = shape if len(shape) == 3 else None
        elif layer.kind == "linear":
            if pending is not None:
                found[index] = pending
            pending = None
        elif layer.kind not in ACTIVATIONS:
            pending = None
    return found


def pool(
    kind: str,
    kernel_size: Any,
    stride: Any = None,
    padding: Any = 0,
    ceil_mode: bool = False,
    dilation: Any = 1,
    count_include_pad: bool = True,
) -> Layer:
    """A max_pool2d or avg_pool2d layer with normalised arguments (``stride=None`` = the window)."""
    kernel = _pair(kernel_size)
    stride = kernel if stride is None or stride == () else _pair(stride)
    args: dict[str, Any] = dict(kernel_size=kernel, stride=stride, ceil_mode=bool(ceil_mode))
    if kind == "max_pool2d":
        args["dilation"] = _pair(dilation)
    else:
        args["count_include_pad"] = bool(count_include_pad)
    args["padding"] = normal_padding(padding, kernel, stride, args.get("dilation", (1, 1)))
    return Layer(kind, args)


DEFAULT_SIZE = 17  # odd, so that 'same'-style asymmetry shows


def infer_input_shape(layers: list[Layer], size: int | None = None) -> tuple[int, ...]:
    """An input shape the layers accept: channels from the first convolution; the smallest square size
    that gives the first dense layer its ``in_features`` (LeNet: 28), else ``DEFAULT_SIZE`` or the next
    size that fits. A network that starts with a dense layer takes vectors. When no size fits (the channels
    cannot be told without a convolution), a guess that ``Network.shapes`` will reject."""
    first = next((layer for layer in layers if layer.kind in ("conv2d", "conv_transpose2d", "linear", "flatten")), None)
    if first is not None and first.kind == "linear":
        return (first.args["in_features"],)
    channels = first.args["in_channels"] if first is not None and first.kind != "flatten" else 1
    dense = next((layer for layer in layers if layer.kind == "linear"), None)
    sizes = (
        [size]
        if size
        else (range(1, 513) if dense is not None else [*range(DEFAULT_SIZE, 513), *range(DEFAULT_SIZE - 1, 0, -1)])
    )
    for side in sizes:
        try:
            Network((channels, side, side), layers).shapes()
        except ValueError:
            continue
        return (channels, side, side)
    return (channels, DEFAULT_SIZE, DEFAULT_SIZE)  # nothing fits: port() asks for input_shape
