"""One node of a network's description: its kind, normalised arguments, weights, name and inputs.

The kinds and their arguments are documented in ``d2lconv.core.network``; the builders here
(``conv``, ``pool``, ``batch_norm``) normalise a framework's arguments once, for every reader.
"""

from __future__ import annotations

import keyword
from dataclasses import dataclass, field, replace
from fractions import Fraction
from typing import Any

import numpy as np

from .args import explicit_padding


def float32_attribute(value: float) -> float:
    """A layer attribute a framework stored as float32, as the number it was written as: the simplest
    fraction (denominator up to 100) that rounds to it, else its shortest decimal. Paddle's and ONNX's
    1/6 of hard-sigmoid is 0.16666667163372 in float32 and comes back as 1/6 (a writer then writes the
    framework's own layer, which PyTorch's has only for 1/6); 0.8999999761581421 comes back as 0.9."""
    stored = np.float32(value)
    if not np.isfinite(stored):
        return float(stored)
    simplest = Fraction(str(stored)).limit_denominator(100)
    return float(simplest) if np.float32(float(simplest)) == stored else float(str(stored))


# The layer kinds and the arguments each carries (``args`` keys); see the table above.
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
    "batch_norm": ("num_features", "eps", "momentum", "variance"),
    "add": (),
    "mul": (),
    "concat": (),
    "global_avg_pool": ("keepdims",),
    "adaptive_avg_pool": ("output_size",),
    "dropout": ("rate",),
    "relu": (),
    "sigmoid": (),
    "tanh": (),
    "relu6": (),
    "leaky_relu": ("negative_slope",),
    "elu": ("alpha",),
    "gelu": ("approximate",),
    "silu": (),
    "hard_swish": (),
    "hard_sigmoid": ("alpha", "beta"),
    "softmax": ("axis",),
}
# The kinds of the chapter's sequential networks (every tab writes them); the others came with graphs.
CHAPTER_KINDS = tuple(KINDS)[: tuple(KINDS).index("linear") + 1] + ("relu", "sigmoid", "tanh")
# Kinds that keep their input's shape and act elementwise (or along one axis, softmax).
ACTIVATIONS = (
    "relu",
    "sigmoid",
    "tanh",
    "relu6",
    "leaky_relu",
    "elu",
    "gelu",
    "silu",
    "hard_swish",
    "hard_sigmoid",
    "softmax",
)
SHAPE_KEEPING = (*ACTIVATIONS, "batch_norm", "dropout")
MERGES = ("add", "mul", "concat")  # the kinds that read two or more nodes
WEIGHTS: dict[str, tuple[str, ...]] = {
    "conv2d": ("weight", "bias"),
    "conv_transpose2d": ("weight", "bias"),
    "linear": ("weight", "bias"),
    "batch_norm": ("weight", "bias", "running_mean", "running_var"),
}
TRAINABLE = ("weight", "bias")  # running_mean/running_var are statistics, not trained
VARIANCE_ESTIMATES = ("unbiased", "biased")
INPUT = "input"
NO_PADDING = (0, 0, 0, 0)


@dataclass
class Layer:
    """One node: its kind (a key of ``KINDS``), normalised arguments, weights (NumPy, d2lconv layouts), its
    name and the names of the nodes it reads (both filled in by ``Network`` when left out)."""

    kind: str
    args: dict[str, Any] = field(default_factory=dict)
    weights: dict[str, np.ndarray] = field(default_factory=dict)
    name: str = ""
    inputs: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown layer kind {self.kind!r}; supported: {', '.join(KINDS)}")
        missing = [name for name in KINDS[self.kind] if name not in self.args]
        if missing:
            raise ValueError(f"a {self.kind} layer needs the arguments {missing}")
        self.inputs = tuple(self.inputs)
        if self.kind == "batch_norm":
            _check_batch_norm(self)

    def with_args(self, **changes: Any) -> Layer:
        """A copy with some arguments changed (the weights, name and inputs shared)."""
        return replace(self, args={**self.args, **changes})


def _check_batch_norm(layer: Layer) -> None:
    args, where = layer.args, f"batch_norm {layer.name or ''}".strip()
    if not 0 <= args["momentum"] <= 1:
        raise ValueError(f"{where}: momentum {args['momentum']} is not in [0, 1] (the weight of the new batch)")
    if not args["eps"] > 0:
        raise ValueError(f"{where}: eps must be positive, got {args['eps']}")
    if args["variance"] not in VARIANCE_ESTIMATES:
        raise ValueError(f"{where}: variance must be one of {VARIANCE_ESTIMATES}, got {args['variance']!r}")


def is_identifier(name: str) -> bool:
    """Whether ``name`` can name a node (a Python identifier, not a keyword, not ``INPUT``)."""
    return name.isidentifier() and not keyword.iskeyword(name) and name != INPUT


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


def batch_norm(
    num_features: int,
    eps: float = 1e-5,
    momentum: float = 0.1,
    variance: str = "unbiased",
    weight: np.ndarray | None = None,
    bias: np.ndarray | None = None,
    running_mean: np.ndarray | None = None,
    running_var: np.ndarray | None = None,
    dtype: Any = np.float32,
    name: str = "",
    inputs: tuple[str, ...] = (),
) -> Layer:
    """A batch_norm node (PyTorch's defaults: eps 1e-5, momentum 0.1 of the new batch, unbiased running
    variance); missing weights are PyTorch's initial ones (gamma 1, beta 0, mean 0, variance 1)."""
    defaults = {"weight": 1.0, "bias": 0.0, "running_mean": 0.0, "running_var": 1.0}
    given = {"weight": weight, "bias": bias, "running_mean": running_mean, "running_var": running_var}
    weights = {}
    for key, value in given.items():
        array = np.full(num_features, defaults[key], dtype) if value is None else np.asarray(value)
        if array.shape != (num_features,):
            raise ValueError(f"batch_norm {name}: {key} has shape {array.shape}, expected ({num_features},)")
        weights[key] = array
    args = dict(num_features=int(num_features), eps=float(eps), momentum=float(momentum), variance=variance)
    return Layer("batch_norm", args, weights, name, inputs)
