"""The NumPy tab: the reference every framework is checked against.

A convolution is im2col and one BLAS matrix product per group: the windows of the
padded input are copied once into a contiguous matrix (C/groups*kh*kw rows, one
column per output pixel) and multiplied by the weight. A transposed convolution is
its adjoint: one matrix product, then col2im adds each kernel offset's rows back into
the (uncropped) output. Pooling reduces one strided slice per kernel offset, on an
(H, W, N*C) copy of the input so that each slice runs over long contiguous rows. The same
helpers give the hand-derived backward passes in ``grads``.

Every op computes in the common dtype of its inputs: float64 if any is float64, else float32.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from ...core.args import ConvArgs, ConvTransposeArgs, PoolArgs, avg_pool_divisor
from ...core.checks import as_float_array, common_dtype, dtype_name

NAME = "numpy"
FRAMEWORK = np
# What ``native_op`` calls, the baseline ``d2lconv bench --ops`` times this tab against.
NATIVE_CALLS = "torch's F.<op> and torch.autograd.grad, in the same process"


def tensor(data: Any, dtype: str | None = None) -> np.ndarray:
    """An array from nested lists, NumPy or any framework's tensor: float64 stays float64, the rest is float32."""
    return _real(data, "data", dtype)


def to_numpy(x: Any) -> np.ndarray:
    """A NumPy array (here: the array itself), its dtype kept."""
    return _real(x, "x")


def conv2d(x: np.ndarray, weight: np.ndarray, bias: np.ndarray | None, args: ConvArgs) -> np.ndarray:
    """Batched, multi-channel cross-correlation (NCHW data, OIHW weight, or NHWC and HWIO), as torch's ``conv2d``."""
    if args.channels_last:
        return _channels_last(conv2d(_channels_first(x), _oihw(weight), bias, args.channels_first()))
    cols = _im2col(
        _pad_channels_first(x, args.pads), weight.shape[2:], args.stride, args.dilation, args.out_hw, args.groups
    )
    y = np.matmul(_per_group(weight, args.groups), cols)  # (g, O/g, N*oh*ow)
    return _to_nchw(y.reshape(weight.shape[0], x.shape[0], *args.out_hw), bias)


def conv_transpose2d(x: np.ndarray, weight: np.ndarray, bias: np.ndarray | None, args: ConvTransposeArgs) -> np.ndarray:
    """Transposed convolution (weight (C_in, C_out/groups, kh, kw), or with NHWC data (kh, kw, C_out/groups,
    C_in)): each input pixel scatters the kernel."""
    if args.channels_last:
        return _channels_last(conv_transpose2d(_channels_first(x), _oihw(weight), bias, args.channels_first()))
    n, c, h, w = x.shape
    g, kernel = args.groups, weight.shape[2:]
    rows = _per_group(x.transpose(1, 0, 2, 3), g)  # (g, C_in/g, N*H*W)
    cols = np.matmul(_per_group(weight, g).transpose(0, 2, 1), rows)  # (g, C_out/g*kh*kw, N*H*W)
    top, _, left, _ = args.crops
    (out_h, out_w), (full_h, full_w) = args.out_hw, args.full_hw
    size = (max(full_h, top + out_h), max(full_w, left + out_w))  # output_padding may reach past the full output
    full = _col2im(cols.reshape(args.out_channels, *kernel, n, h, w), size, args.stride, args.dilation)
    return _to_nchw(full[:, :, top : top + out_h, left : left + out_w], bias)


def max_pool2d(x: np.ndarray, args: PoolArgs) -> np.ndarray:
    """Max pooling; padding and the ceil-mode overhang count as -inf."""
    if args.channels_last:
        return _channels_last(max_pool2d(_channels_first(x), args.channels_first()))
    padded = _pad_spatial_first(x, args.padded, -np.inf)
    first, *rest = _offset_slices(args.kernel, args.stride, args.dilation, args.out_hw)
    y = padded[first].copy()
    for window in rest:
        np.maximum(y, padded[window], out=y)  # a NaN propagates
    return _from_spatial_first(y, x.shape)


def avg_pool2d(x: np.ndarray, args: PoolArgs) -> np.ndarray:
    """Average pooling; the divisor counts real elements (and padding if ``count_include_pad``)."""
    if args.channels_last:
        return _channels_last(avg_pool2d(_channels_first(x), args.channels_first()))
    padded = _pad_spatial_first(x, args.padded, 0.0)
    first, *rest = _offset_slices(args.kernel, args.stride, args.dilation, args.out_hw)
    y = padded[first].copy()
    for window in rest:
        y += padded[window]
    y /= avg_pool_divisor(args)[:, :, None].astype(x.dtype)
    return _from_spatial_first(y, x.shape)


def native_op(
    op: str, inputs: tuple[Any, ...], kwargs: dict[str, Any], grad_output: Any = None, data_format: str = "NCHW"
) -> None:
    """NumPy has no convolution or pooling of its own: ``d2lconv bench --ops`` times the NumPy tab
    against torch's call in the same process instead (when torch is installed), so there is none here."""
    return None


def _real(data: Any, name: str, dtype: str | None = None) -> np.ndarray:
    """``data`` as a float32 or float64 array (``checks.float_dtype``); a ``TypeError`` naming ``name`` if not real."""
    return as_float_array(data, dtype, name)


def _in_common_dtype(**named: Any) -> list[Any]:
    """The named inputs as arrays of their common dtype (float64 wins); ``None`` stays ``None``."""
    arrays = [None if value is None else _real(value, name) for name, value in named.items()]
    dtype = common_dtype(*(dtype_name(a.dtype) for a in arrays if a is not None))
    return [None if a is None else a.astype(dtype, copy=False) for a in arrays]


# The edge of the tab for NHWC data: NCHW views of it, the (contiguous) NCHW result back as NHWC.
def _channels_first(x: np.ndarray) -> np.ndarray:
    return x.transpose(0, 3, 1, 2)


def _channels_last(y: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(y.transpose(0, 2, 3, 1))


def _oihw(weight: np.ndarray) -> np.ndarray:
    """HWIO -> OIHW; the same permutation takes (kh, kw, C_out/groups, C_in) to (C_in, C_out/groups, kh, kw)."""
    return weight.transpose(3, 2, 0, 1)


def _hwio(weight: np.ndarray) -> np.ndarray:
    """OIHW -> HWIO (a weight's gradient back in the caller's layout), contiguous."""
    return np.ascontiguousarray(weight.transpose(2, 3, 1, 0))


def _pad_spatial_first(x: np.ndarray, pads: tuple[int, int, int, int], value: float) -> np.ndarray:
    """NCHW ``x`` padded with ``value`` and laid out (H, W, N*C), in one copy: pooling's
    strided slices then run over long contiguous rows (on NCHW they crawl along short ones)."""
    n, c, h, w = x.shape
    top, bottom, left, right = pads
    padded = np.full((h + top + bottom, w + left + right, n * c), value, x.dtype)
    padded[top : top + h, left : left + w] = x.reshape(n * c, h, w).transpose(1, 2, 0)
    return padded


def _from_spatial_first(y: np.ndarray, nchw: tuple[int, ...]) -> np.ndarray:
    """A (H, W, N*C) array back as a contiguous NCHW array (N and C from ``nchw``)."""
    return np.ascontiguousarray(y.transpose(2, 0, 1)).reshape(*nchw[:2], *y.shape[:2])


def _pad_channels_first(x: np.ndarray, pads: tuple[int, int, int, int]) -> np.ndarray:
    """NCHW ``x`` zero-padded and transposed to (C, N, H, W), in one copy."""
    n, c, h, w = x.shape
    top, bottom, left, right = pads
    padded = np.zeros((c, n, h + top + bottom, w + left + right), x.dtype)
    padded[:, :, top : top + h, left : left + w] = x.transpose(1, 0, 2, 3)
    return padded


def _im2col(
    padded: np.ndarray,
    kernel: tuple[int, int],
    stride: tuple[int, int],
    dilation: tuple[int, int],
    out_hw: tuple[int, int],
    groups: int,
) -> np.ndarray:
    """The windows of a padded (C, N, H, W) array as one contiguous matrix per group,
    (groups, C/groups*kh*kw, N*oh*ow): row (c, a, b), column (n, i, j) holds
    ``padded[c, n, i*sh + a*dh, j*sw + b*dw]``."""
    c, n = padded.shape[:2]
    extent = tuple(d * (k - 1) + 1 for k, d in zip(kernel, dilation, strict=True))
    view = sliding_window_view(padded, extent, axis=(2, 3))
    view = view[
        :,
        :,
        : (out_hw[0] - 1) * stride[0] + 1 : stride[0],
        : (out_hw[1] - 1) * stride[1] + 1 : stride[1],
        :: dilation[0],
        :: dilation[1],
    ]  # (C, N, oh, ow, kh, kw)
    cols = np.empty((c, *kernel, n, *out_hw), padded.dtype)
    np.copyto(cols, view.transpose(0, 4, 5, 1, 2, 3))
    return cols.reshape(groups, c // groups * kernel[0] * kernel[1], n * out_hw[0] * out_hw[1])


def _col2im(cols: np.ndarray, size: tuple[int, ...], stride: tuple[int, int], dilation: tuple[int, int]) -> np.ndarray:
    """The adjoint of ``_im2col``: cols (C, kh, kw, N, oh, ow) added into a zero (C, N, *size) array,
    one strided add per kernel offset."""
    c, kh, kw, n, oh, ow = cols.shape
    out = np.zeros((c, n, *size), cols.dtype)
    if cols.size:
        offsets = cols.reshape(c, kh * kw, n, oh, ow)
        for offset, (rows, cols_) in enumerate(_offset_slices((kh, kw), stride, dilation, (oh, ow))):
            out[:, :, rows, cols_] += offsets[:, offset]
    return out


def _offset_slices(
    kernel: tuple[int, int], stride: tuple[int, int], dilation: tuple[int, int], out_hw: tuple[int, int]
) -> list[tuple[slice, slice]]:
    """For each kernel offset (a, b), row-major, the (rows, columns) of the padded input it meets:
    ``a*dh + i*sh`` and ``b*dw + j*sw`` for every output (i, j)."""
    return [
        (
            slice(a * dilation[0], a * dilation[0] + (out_hw[0] - 1) * stride[0] + 1, stride[0]),
            slice(b * dilation[1], b * dilation[1] + (out_hw[1] - 1) * stride[1] + 1, stride[1]),
        )
        for a, b in np.ndindex(*kernel)
    ]


def _per_group(a: np.ndarray, groups: int) -> np.ndarray:
    """``a``'s first axis split into ``groups`` equal blocks, its other axes flattened: (groups, rows, columns)."""
    return a.reshape(groups, a.shape[0] // groups, int(np.prod(a.shape[1:])))


def _to_nchw(y: np.ndarray, bias: np.ndarray | None) -> np.ndarray:
    """A (C, N, H, W) result as a contiguous NCHW array, plus one bias per channel."""
    y = np.ascontiguousarray(y.transpose(1, 0, 2, 3))
    if bias is not None:
        y += bias.reshape(1, -1, 1, 1)
    return y
