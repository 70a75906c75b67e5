"""Argument normalisation for ``conv2d``, ``conv_transpose2d`` and pooling, written once.

Every backend turns the many forms of ``stride``, ``padding``, ``dilation`` and
``kernel_size`` into the same explicit numbers here, then pads explicitly and
calls its framework's 'valid' operation: one meaning of ``'same'``, of asymmetric
padding and of ceil mode, whatever each framework's own convention is.

Layouts are NCHW for data, OIHW for convolution weights and (C_in, C_out/groups,
kh, kw) for transposed-convolution weights, or with ``data_format="NHWC"`` NHWC, HWIO
and (kh, kw, C_out/groups, C_in) (``layout.py``); the explicit arguments are the same
in both. Padding is ``(top, bottom, left, right)``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any, TypeVar, overload

import numpy as np

from .checks import check_bias, check_groups, is_int, pair
from .layout import layout, wrong_weight_layout
from .memo import memoised

Pair = tuple[int, int]
Shape = Sequence[int]
Pads = tuple[int, int, int, int]
IntOrPair = int | Sequence[int]
_PADDING_FORMS = "an int, a pair (ph, pw), a pair of pairs ((top, bottom), (left, right)), 'valid' or 'same'"


def effective_size(kernel: int, dilation: int) -> int:
    """The extent of a dilated kernel: ``dilation * (kernel - 1) + 1``."""
    return dilation * (kernel - 1) + 1


@overload
def conv_output_size(
    in_size: int,
    kernel_size: int,
    stride: int = 1,
    padding: int | str = 0,
    dilation: int = 1,
    ceil_mode: bool = False,
    data_format: str = "NCHW",
) -> int: ...
@overload
def conv_output_size(
    in_size: Sequence[int],
    kernel_size: IntOrPair,
    stride: IntOrPair = 1,
    padding: Any = 0,
    dilation: IntOrPair = 1,
    ceil_mode: bool = False,
    data_format: str = "NCHW",
) -> Pair: ...
@overload
def conv_output_size(
    in_size: IntOrPair,
    kernel_size: IntOrPair,
    stride: IntOrPair = 1,
    padding: Any = 0,
    dilation: IntOrPair = 1,
    ceil_mode: bool = False,
    data_format: str = "NCHW",
) -> int | Pair: ...
def conv_output_size(
    in_size: IntOrPair,
    kernel_size: IntOrPair,
    stride: IntOrPair = 1,
    padding: Any = 0,
    dilation: IntOrPair = 1,
    ceil_mode: bool = False,
    data_format: str = "NCHW",
) -> int | Pair:
    """Output size of a convolution or pooling: ints in, an int out; pairs in, a pair out. ``in_size`` may
    also be a 4-D input shape, whose (H, W) are read from the axes ``data_format`` names: a pair out.

    ``floor((n + pad_total - dilation*(k-1) - 1) / stride) + 1`` (ceil with ``ceil_mode``,
    dropping a last window that would start inside the bottom/right padding, as torch does).
    """
    form = layout(data_format)
    if isinstance(in_size, Sequence | np.ndarray) and len(in_size) != 2:
        in_size = form.data_shape(in_size, "in_size")[2:]
    scalar = all(is_int(v) for v in (in_size, kernel_size, stride, dilation)) and (
        is_int(padding) or isinstance(padding, str)
    )
    size, kernel = pair(in_size, "in_size", 0), pair(kernel_size, "kernel_size")
    stride, dilation = pair(stride, "stride"), pair(dilation, "dilation")
    pads = explicit_padding(padding, size, kernel, stride, dilation)
    rows = _output_length(size[0], kernel[0], stride[0], pads[0], pads[1], dilation[0], ceil_mode)
    cols = _output_length(size[1], kernel[1], stride[1], pads[2], pads[3], dilation[1], ceil_mode)
    return rows if scalar else (rows, cols)


def _output_length(n: int, k: int, s: int, before: int, after: int, d: int, ceil_mode: bool) -> int:
    span = n + before + after - effective_size(k, d)
    if span < 0 and not (ceil_mode and span > -s):
        return 0  # no window fits (in ceil mode torch still keeps one that overhangs by less than a stride)
    out = (math.ceil if ceil_mode else math.floor)(span / s) + 1
    if ceil_mode and (out - 1) * s >= n + before:
        out -= 1  # the last window would start in the padding: torch and ONNX drop it
    return out


def explicit_padding(padding: Any, in_hw: Pair, kernel: Pair, stride: Pair, dilation: Pair) -> Pads:
    """``padding`` in any accepted form as ``(top, bottom, left, right)``.

    ``'same'`` gives ``ceil(n / stride)`` outputs with the odd row/column at the
    bottom/right (TensorFlow, ONNX SAME_UPPER), for any stride and dilation.
    """
    if isinstance(padding, str):
        word = padding.lower()
        if word == "valid":
            return (0, 0, 0, 0)
        if word == "same":
            pads: list[int] = []
            for n, k, s, d in zip(in_hw, kernel, stride, dilation, strict=True):
                total = max((math.ceil(n / s) - 1) * s + effective_size(k, d) - n, 0)
                pads += [total // 2, total - total // 2]
            return tuple(pads)  # type: ignore[return-value]
        raise ValueError(f"padding must be {_PADDING_FORMS}; unknown word {padding!r}")
    if is_int(padding):
        pads = [padding] * 4
    elif isinstance(padding, Sequence | np.ndarray) and len(padding) == 2 and all(is_int(p) for p in padding):
        pads = [padding[0], padding[0], padding[1], padding[1]]
    elif (
        isinstance(padding, Sequence)
        and len(padding) == 2
        and all(isinstance(p, Sequence) and len(p) == 2 and all(is_int(v) for v in p) for p in padding)
    ):
        pads = [padding[0][0], padding[0][1], padding[1][0], padding[1][1]]
    else:
        raise TypeError(f"padding must be {_PADDING_FORMS}, got {padding!r}")
    if min(pads) < 0:
        raise ValueError(f"padding must not be negative, got {padding!r}")
    return tuple(int(p) for p in pads)  # type: ignore[return-value]


def _check_output(out: Sequence[int], in_hw: Pair, pads: Pads, extent: Pair) -> Pair:
    if min(out) < 1:
        padded = (in_hw[0] + pads[0] + pads[1], in_hw[1] + pads[2] + pads[3])
        raise ValueError(f"the kernel (extent {extent} with dilation) is larger than the padded input {padded}")
    return out[0], out[1]


class _InLayout:
    """What every op's explicit arguments say about the layout: ``channels_last`` data (NHWC) or not."""

    channels_last: bool

    def channels_first(self: _Args) -> _Args:
        """The same arguments for the op on the NCHW data (and OIHW-ordered weight) of a channels-first tab."""
        return replace(self, channels_last=False)  # type: ignore[type-var]


_Args = TypeVar("_Args", bound=_InLayout)


@dataclass(frozen=True)
class ConvArgs(_InLayout):
    """Explicit arguments of a 2-D convolution: pad by ``pads``, then a 'valid' convolution."""

    stride: Pair
    dilation: Pair
    pads: Pads
    groups: int
    out_hw: Pair
    channels_last: bool = False


@dataclass(frozen=True)
class _Kernel:
    """A convolution's input and weight shapes read through its layout (the weight's axes in OIHW order)
    and checked against each other: what ``conv2d`` and ``conv_transpose2d`` check alike."""

    channels_last: bool
    x: tuple[int, int, int, int]
    weight: tuple[int, int, int, int]
    groups: int


def _kernel(x_shape: Shape, weight_shape: Shape, groups: Any, data_format: str, transposed: bool) -> _Kernel:
    form = layout(data_format)
    x, weight = form.data_shape(x_shape), form.weight_shape(weight_shape, transposed)
    groups = check_groups(groups)
    c, o = x[1], weight[0]
    if not transposed and (c % groups or o % groups):
        raise ValueError(f"groups={groups} must divide both the input channels ({c}) and the output channels ({o})")
    axis, channels = (0, c) if transposed else (1, c // groups)  # the weight's axis that must hold x's channels
    if weight[axis] != channels:
        fits = form.other().weight_shape(weight_shape, transposed)[axis] == channels
        detail = (
            f"{weight[0]} input channels but x has {c}"
            if transposed
            else f"{weight[1]} input channels per group but x has {c} channels in {groups} group(s) "
            f"({channels} per group)"
        )
        raise ValueError(f"weight has {detail}" + wrong_weight_layout(weight_shape, form, transposed, fits))
    if transposed and c % groups:
        raise ValueError(f"groups={groups} must divide the input channels ({c})")
    if min(weight[1:] if transposed else (weight[0], *weight[2:])) < 1:
        raise ValueError(f"weight must not be empty, got shape {tuple(weight_shape)}")
    return _Kernel(form.channels_last, x, weight, groups)


@memoised(shapes=3)
def conv2d_args(
    x_shape: Shape, weight_shape: Shape, bias_shape: Shape | None, stride: Any = 1, padding: Any = 0,
    dilation: Any = 1, groups: Any = 1, data_format: str = "NCHW",
) -> ConvArgs:  # fmt: skip
    """Validate ``conv2d``'s arguments (NCHW input and OIHW weight, or NHWC and HWIO) and make them explicit
    (memoised)."""
    kernel = _kernel(x_shape, weight_shape, groups, data_format, transposed=False)
    (h, w), size = kernel.x[2:], kernel.weight[2:]
    check_bias(bias_shape, kernel.weight[0])
    stride, dilation = pair(stride, "stride"), pair(dilation, "dilation")
    pads = explicit_padding(padding, (h, w), size, stride, dilation)
    out = [
        _output_length(n, k, s, pads[2 * i], pads[2 * i + 1], d, False)
        for i, (n, k, s, d) in enumerate(zip((h, w), size, stride, dilation, strict=True))
    ]
    extent = (effective_size(size[0], dilation[0]), effective_size(size[1], dilation[1]))
    out_hw = _check_output(out, (h, w), pads, extent)
    return ConvArgs(stride, dilation, pads, kernel.groups, out_hw, kernel.channels_last)


@dataclass(frozen=True)
class ConvTransposeArgs(_InLayout):
    """Explicit arguments of a transposed convolution.

    Compute the full transposed convolution (no padding), then keep rows
    ``crops[0] : crops[0] + out_hw[0]`` and columns ``crops[2] : crops[2] + out_hw[1]``,
    zero-extending at the bottom/right where ``output_padding`` reaches past it.
    """

    stride: Pair
    dilation: Pair
    crops: Pads
    groups: int
    out_channels: int
    full_hw: Pair
    out_hw: Pair
    channels_last: bool = False


@memoised(shapes=3)
def conv_transpose2d_args(
    x_shape: Shape, weight_shape: Shape, bias_shape: Shape | None, stride: Any = 1, padding: Any = 0,
    output_padding: Any = 0, dilation: Any = 1, groups: Any = 1, data_format: str = "NCHW",
) -> ConvTransposeArgs:  # fmt: skip
    """Validate ``conv_transpose2d``'s arguments (weight (C_in, C_out/groups, kh, kw), or with NHWC data
    (kh, kw, C_out/groups, C_in)) and make them explicit (memoised)."""
    kernel = _kernel(x_shape, weight_shape, groups, data_format, transposed=True)
    (h, w), (kh, kw), out_channels = kernel.x[2:], kernel.weight[2:], kernel.weight[1] * kernel.groups
    check_bias(bias_shape, out_channels)
    stride, dilation = pair(stride, "stride"), pair(dilation, "dilation")
    extra = pair(output_padding, "output_padding", minimum=0)
    for e, s, d in zip(extra, stride, dilation, strict=True):
        if e >= max(s, d):
            raise ValueError(f"output_padding {output_padding!r} must be smaller than stride or dilation")
    extent = (effective_size(kh, dilation[0]), effective_size(kw, dilation[1]))
    full = ((h - 1) * stride[0] + extent[0], (w - 1) * stride[1] + extent[1])
    if isinstance(padding, str) and padding.lower() == "same":
        crops: list[int] = []
        for e, s, k in zip(extra, stride, extent, strict=True):
            total = k + e - s
            if total < 0:
                raise ValueError(
                    f"padding='same' needs a kernel extent >= stride, got extent {extent}, stride {stride}"
                )
            crops += [total // 2, total - total // 2]
        pads: Pads = tuple(crops)  # type: ignore[assignment]
    else:
        pads = explicit_padding(padding, (h, w), (kh, kw), stride, dilation)
    out = (full[0] - pads[0] - pads[1] + extra[0], full[1] - pads[2] - pads[3] + extra[1])
    out_hw = _check_output(out, full, (0, 0, 0, 0), extent)
    return ConvTransposeArgs(stride, dilation, pads, kernel.groups, out_channels, full, out_hw, kernel.channels_last)


@dataclass(frozen=True)
class PoolArgs(_InLayout):
    """Explicit arguments of a pooling of an input ``in_hw`` high and wide: pad by ``padded`` (padding plus
    the ceil-mode overhang at the bottom/right), then a 'valid' pooling gives ``out_hw`` windows. Average
    pooling's divisor counts the padding when ``count_include_pad`` (``avg_pool_divisor``)."""

    kernel: Pair
    stride: Pair
    dilation: Pair
    pads: Pads
    padded: Pads
    out_hw: Pair
    in_hw: Pair
    ceil_mode: bool = False
    count_include_pad: bool = True
    channels_last: bool = False


@memoised(shapes=1)
def pool2d_args(
    x_shape: Shape, kernel_size: Any, stride: Any = None, padding: Any = 0, dilation: Any = 1,
    ceil_mode: bool = False, data_format: str = "NCHW", count_include_pad: bool = True,
) -> PoolArgs:  # fmt: skip
    """Validate pooling arguments (NCHW or NHWC input) and make them explicit (memoised).

    Padding may reach ``dilation * (kernel_size - 1)`` on each side (ONNX's rule:
    every window still sees one real element); torch stops at half the window.
    """
    n, c, h, w = layout(data_format).data_shape(x_shape)
    if h < 1 or w < 1:
        raise ValueError(f"x must have a positive height and width to pool, got shape {tuple(x_shape)}")
    kernel = pair(kernel_size, "kernel_size")
    stride = kernel if stride is None else pair(stride, "stride")
    dilation = pair(dilation, "dilation")
    pads = explicit_padding(padding, (h, w), kernel, stride, dilation)
    extent = (effective_size(kernel[0], dilation[0]), effective_size(kernel[1], dilation[1]))
    if max(pads[0], pads[1]) >= extent[0] or max(pads[2], pads[3]) >= extent[1]:
        raise ValueError(
            f"pooling padding {pads} (top, bottom, left, right) must be smaller than the window "
            f"{extent}, so that every window sees at least one real element"
        )
    out = [
        _output_length(size, k, s, pads[2 * i], pads[2 * i + 1], d, bool(ceil_mode))
        for i, (size, k, s, d) in enumerate(zip((h, w), kernel, stride, dilation, strict=True))
    ]
    out_hw = _check_output(out, (h, w), pads, extent)
    overhang = [
        max(0, (o - 1) * s + e - (size + pads[2 * i] + pads[2 * i + 1]))
        for i, (o, s, e, size) in enumerate(zip(out_hw, stride, extent, (h, w), strict=True))
    ]
    padded = (pads[0], pads[1] + overhang[0], pads[2], pads[3] + overhang[1])
    return PoolArgs(
        kernel, stride, dilation, pads, padded, out_hw, (h, w), bool(ceil_mode), bool(count_include_pad),
        layout(data_format).channels_last,
    )  # fmt: skip


def avg_pool2d_args(
    x_shape: Shape, kernel_size: Any, stride: Any = None, padding: Any = 0, ceil_mode: bool = False,
    count_include_pad: bool = True, data_format: str = "NCHW",
) -> PoolArgs:  # fmt: skip
    """``avg_pool2d``'s arguments, in its order, made explicit: a pooling without dilation (memoised)."""
    return pool2d_args(x_shape, kernel_size, stride, padding, 1, ceil_mode, data_format, count_include_pad)


@memoised(shapes=0)
def avg_pool_divisor(args: PoolArgs) -> np.ndarray:
    """The divisor of each average-pooling window, shape ``out_hw``, float32, read-only (memoised).

    It counts the window's real elements, plus its padding when ``count_include_pad``;
    never the ceil-mode overhang past the padding (torch's rule).
    """
    counts = []
    for axis in range(2):
        k, s, n = args.kernel[axis], args.stride[axis], args.in_hw[axis]
        before, after = args.pads[2 * axis], args.pads[2 * axis + 1]
        low, high = (-before, n + after) if args.count_include_pad else (0, n)
        starts = np.arange(args.out_hw[axis]) * s - before
        counts.append(np.clip(np.minimum(starts + k, high) - np.maximum(starts, low), 0, None))
    divisor = np.outer(counts[0], counts[1]).astype(np.float32)
    divisor.flags.writeable = False  # shared by every call with these arguments
    return divisor
