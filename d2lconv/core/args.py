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
from dataclasses import dataclass
from typing import Any, overload

import numpy as np

from .checks import check_bias, check_groups, is_int, pair
from .layout import layout, wrong_weight_layout
from .memo import memoised

Pair = tuple[int, int]
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


@dataclass(frozen=True)
class ConvArgs:
    """Explicit arguments of a 2-D convolution: pad by ``pads``, then a 'valid' convolution."""

    stride: Pair
    dilation: Pair
    pads: Pads
    groups: int
    out_hw: Pair
    channels_last: bool = False


def _conv2d_args(
    x_shape: Sequence[int],
    weight_shape: Sequence[int],
    bias_shape: Sequence[int] | None,
    stride: Any = 1,
    padding: Any = 0,
    dilation: Any = 1,
    groups: Any = 1,
    data_format: str = "NCHW",
) -> ConvArgs:
    """Validate ``conv2d``'s arguments (NCHW input and OIHW weight, or NHWC and HWIO) and make them explicit."""
    form = layout(data_format)
    n, c, h, w = form.data_shape(x_shape)
    o, cg, kh, kw = form.weight_shape(weight_shape, transposed=False)
    groups = check_groups(groups)
    if c % groups or o % groups:
        raise ValueError(f"groups={groups} must divide both the input channels ({c}) and the output channels ({o})")
    if cg != c // groups:
        fits = form.other().weight_shape(weight_shape, transposed=False)[1] == c // groups
        raise ValueError(
            f"weight has {cg} input channels per group but x has {c} channels in {groups} group(s) "
            f"({c // groups} per group)" + wrong_weight_layout(weight_shape, form, False, fits)
        )
    if kh < 1 or kw < 1 or o < 1:
        raise ValueError(f"weight must not be empty, got shape {tuple(weight_shape)}")
    check_bias(bias_shape, o)
    stride, dilation = pair(stride, "stride"), pair(dilation, "dilation")
    pads = explicit_padding(padding, (h, w), (kh, kw), stride, dilation)
    extent = (effective_size(kh, dilation[0]), effective_size(kw, dilation[1]))
    out = [
        _output_length(size, k, s, pads[2 * i], pads[2 * i + 1], d, False)
        for i, (size, k, s, d) in enumerate(zip((h, w), (kh, kw), stride, dilation, strict=True))
    ]
    return ConvArgs(stride, dilation, pads, groups, _check_output(out, (h, w), pads, extent), form.channels_last)


@dataclass(frozen=True)
class ConvTransposeArgs:
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


def _conv_transpose2d_args(
    x_shape: Sequence[int],
    weight_shape: Sequence[int],
    bias_shape: Sequence[int] | None,
    stride: Any = 1,
    padding: Any = 0,
    output_padding: Any = 0,
    dilation: Any = 1,
    groups: Any = 1,
    data_format: str = "NCHW",
) -> ConvTransposeArgs:
    """Validate ``conv_transpose2d``'s arguments (weight (C_in, C_out/groups, kh, kw), or with NHWC data
    (kh, kw, C_out/groups, C_in)) and make them explicit."""
    form = layout(data_format)
    n, c, h, w = form.data_shape(x_shape)
    ci, og, kh, kw = form.weight_shape(weight_shape, transposed=True)
    groups = check_groups(groups)
    if ci != c:
        fits = form.other().weight_shape(weight_shape, transposed=True)[0] == c
        raise ValueError(
            f"weight has {ci} input channels but x has {c}" + wrong_weight_layout(weight_shape, form, True, fits)
        )
    if c % groups:
        raise ValueError(f"groups={groups} must divide the input channels ({c})")
    if kh < 1 or kw < 1 or og < 1:
        raise ValueError(f"weight must not be empty, got shape {tuple(weight_shape)}")
    check_bias(bias_shape, og * groups)
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
    return ConvTransposeArgs(stride, dilation, pads, groups, og * groups, full, out_hw, form.channels_last)


@dataclass(frozen=True)
class PoolArgs:
    """Explicit arguments of a pooling: pad by ``padded`` (padding plus the ceil-mode
    overhang at the bottom/right), then a 'valid' pooling gives ``out_hw`` windows."""

    kernel: Pair
    stride: Pair
    dilation: Pair
    pads: Pads
    padded: Pads
    out_hw: Pair
    channels_last: bool = False


def _pool2d_args(
    x_shape: Sequence[int],
    kernel_size: Any,
    stride: Any = None,
    padding: Any = 0,
    dilation: Any = 1,
    ceil_mode: bool = False,
    data_format: str = "NCHW",
) -> PoolArgs:
    """Validate pooling arguments (NCHW or NHWC input) and make them explicit.

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
    return PoolArgs(kernel, stride, dilation, pads, padded, out_hw, layout(data_format).channels_last)


def _avg_pool_divisor(args: PoolArgs, in_hw: Pair, count_include_pad: bool) -> np.ndarray:
    counts = []
    for axis in range(2):
        k, s, n = args.kernel[axis], args.stride[axis], in_hw[axis]
        before, after = args.pads[2 * axis], args.pads[2 * axis + 1]
        low, high = (-before, n + after) if count_include_pad else (0, n)
        starts = np.arange(args.out_hw[axis]) * s - before
        counts.append(np.clip(np.minimum(starts + k, high) - np.maximum(starts, low), 0, None))
    divisor = np.outer(counts[0], counts[1]).astype(np.float32)
    divisor.flags.writeable = False  # shared by every call with these arguments
    return divisor


# --- memoised entry points: every op call normalises its arguments, so each distinct call is worked out once ---


_conv2d_memo = memoised(_conv2d_args, shapes=3)
_conv_transpose2d_memo = memoised(_conv_transpose2d_args, shapes=3)
_pool2d_memo = memoised(_pool2d_args, shapes=1)
_avg_pool_divisor_memo = memoised(_avg_pool_divisor, shapes=0)


def conv2d_args(
    x_shape: Sequence[int],
    weight_shape: Sequence[int],
    bias_shape: Sequence[int] | None,
    stride: Any = 1,
    padding: Any = 0,
    dilation: Any = 1,
    groups: Any = 1,
    data_format: str = "NCHW",
) -> ConvArgs:
    """Validate ``conv2d``'s arguments (NCHW input and OIHW weight, or NHWC and HWIO) and make them explicit
    (memoised)."""
    # Shapes (torch.Size, TensorShape, a Paddle list, a NumPy tuple) as tuples: the memo's key.
    bias = None if bias_shape is None else tuple(bias_shape)
    return _conv2d_memo(tuple(x_shape), tuple(weight_shape), bias, stride, padding, dilation, groups, data_format)


def conv_transpose2d_args(
    x_shape: Sequence[int],
    weight_shape: Sequence[int],
    bias_shape: Sequence[int] | None,
    stride: Any = 1,
    padding: Any = 0,
    output_padding: Any = 0,
    dilation: Any = 1,
    groups: Any = 1,
    data_format: str = "NCHW",
) -> ConvTransposeArgs:
    """Validate ``conv_transpose2d``'s arguments and make them explicit (memoised); see ``_conv_transpose2d_args``."""
    bias = None if bias_shape is None else tuple(bias_shape)
    return _conv_transpose2d_memo(
        tuple(x_shape), tuple(weight_shape), bias, stride, padding, output_padding, dilation, groups, data_format
    )


def pool2d_args(
    x_shape: Sequence[int],
    kernel_size: Any,
    stride: Any = None,
    padding: Any = 0,
    dilation: Any = 1,
    ceil_mode: bool = False,
    data_format: str = "NCHW",
) -> PoolArgs:
    """Validate pooling arguments (NCHW or NHWC input) and make them explicit (memoised); see ``_pool2d_args``."""
    return _pool2d_memo(tuple(x_shape), kernel_size, stride, padding, dilation, ceil_mode, data_format)


def avg_pool_divisor(args: PoolArgs, in_hw: Sequence[int], count_include_pad: bool) -> np.ndarray:
    """The divisor of each average-pooling window, shape ``out_hw``, float32, read-only (memoised).

    It counts the window's real elements, plus its padding when ``count_include_pad``;
    never the ceil-mode overhang past the padding (torch's rule).
    """
    return _avg_pool_divisor_memo(args, tuple(in_hw), count_include_pad)
