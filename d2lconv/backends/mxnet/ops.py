"""The MXNet tab: Apache MXNet 1.9.1 (the last release) with its NumPy interface and Gluon.

This is the reference tab of the book's Chinese edition. Quirks worked around here:

- ``import mxnet`` needs ``numpy.bool``, which NumPy 1.24 removed: it is restored
  (as ``bool``) before the import, only when missing. MXNet needs numpy < 2.
- ``npx.set_np()`` is called at import: NumPy semantics for Gluon, process-wide.
- Under ``autograd.record()`` MXNet rejects in-place writes, so the book's loop
  (``Y[i, j] = ...``) is not differentiable; ``corr2d`` calls the native convolution.
- Layout stays NCHW everywhere (MXNet's NHWC convolution fails on CPU), so no
  layout conversion is needed.
- ``mxnet.numpy.pad`` ignores ``constant_values`` (it always pads with 0), so
  ``_pad_hw`` adds the border value after padding.
- ``npx.deconvolution`` is wrong for dilation > 1 with stride > 1 when MKLDNN is
  off, and its MKLDNN backward fails for a computed weight: the transposed
  convolution is built per kernel element instead.
- ``npx.pooling`` has no dilation, keeps a ceil-mode window that starts in the
  padding, skips NaN and turns an all -inf window into -3.4e38: pooling pads
  explicitly; max pooling is a max over strided slices; average pooling uses
  the 'sum' pool and the shared divisor.
- ``npx.convolution`` fails on an input with no channels: ``conv2d`` of an
  empty input is the bias alone.
"""

from __future__ import annotations

import os
import warnings
from typing import Any

import numpy as onp

# Storage-fallback notices are logged (harmlessly) for every op when MKLDNN is switched off.
os.environ.setdefault("MXNET_STORAGE_FALLBACK_LOG_VERBOSE", "0")
if "bool" not in vars(onp):  # hasattr() would warn: numpy 1.26 plans to reintroduce np.bool
    onp.bool = bool  # type: ignore[attr-defined]  # mxnet 1.9.1 still uses numpy.bool (apache/mxnet#21165)
with warnings.catch_warnings():
    # mxnet.numpy.fallback touches removed NumPy financial functions; distutils' LooseVersion.
    warnings.filterwarnings("ignore", category=DeprecationWarning, module=r"mxnet(\.|$)")
    import mxnet as mx
    from mxnet import gluon, npx
    from mxnet import np as mnp

from ...checks import as_float_array, check_real_dtype, float_dtype, same_dtype_tensors
from ...padding import avg_pool_divisor, conv2d_args, conv_transpose2d_args, pool2d_args

npx.set_np()

NAME = "mxnet"
FRAMEWORK = mx


def tensor(data: Any, dtype: str | None = None) -> mnp.ndarray:
    """A float32 (or float64, from float64 data or ``dtype``) ``mxnet.np.ndarray``; MXNet arrays (and
    Gluon parameters) keep their autograd history. The dtype is always explicit: ``mxnet.np``
    would make new arrays float32 whatever the data."""
    if isinstance(data, gluon.Parameter):
        data = data.data()
    if isinstance(data, mx.nd.NDArray):
        name = onp.dtype(data.dtype).name
        check_real_dtype(name, "data")
        return data.as_np_ndarray().astype(float_dtype(name, dtype), copy=False)
    array = as_float_array(data, dtype)
    return mnp.array(array, dtype=array.dtype)


def to_numpy(x: Any) -> onp.ndarray:
    """A NumPy array (float64 kept) from an MXNet array, a Gluon parameter or any array-like."""
    if isinstance(x, gluon.Parameter):
        x = x.data()
    return as_float_array(x)


def conv2d(x: Any, weight: Any, bias: Any = None, stride: Any = 1, padding: Any = 0, dilation: Any = 1,
           groups: int = 1) -> mnp.ndarray:
    """Batched, multi-channel cross-correlation (NCHW data, OIHW weight), as torch's ``conv2d``."""
    x, weight, bias = same_dtype_tensors(tensor, x, weight, bias)
    args = conv2d_args(x.shape, weight.shape, None if bias is None else bias.shape, stride, padding, dilation, groups)
    if x.size == 0:  # MXNet's convolution fails on an empty input; every output is the bias alone
        return _add_bias(mnp.zeros((x.shape[0], weight.shape[0], *args.out_hw), dtype=x.dtype), bias)
    y = npx.convolution(_pad_hw(x, args.pads), weight, kernel=weight.shape[2:], stride=args.stride,
                        dilate=args.dilation, num_filter=weight.shape[0], num_group=args.groups, no_bias=True)
    return _add_bias(y, bias)


def conv_transpose2d(x: Any, weight: Any, bias: Any = None, stride: Any = 1, padding: Any = 0,
                     output_padding: Any = 0, dilation: Any = 1, groups: int = 1) -> mnp.ndarray:
    """Transposed convolution (weight (C_in, C_out/groups, kh, kw)): each input pixel scatters the kernel.

    Built per kernel element, not with ``npx.deconvolution``: without MKLDNN that is wrong for
    dilation > 1 with stride > 1, and with MKLDNN its backward fails for a computed weight.
    """
    x, weight, bias = same_dtype_tensors(tensor, x, weight, bias)
    args = conv_transpose2d_args(x.shape, weight.shape, None if bias is None else bias.shape, stride, padding,
                                 output_padding, dilation, groups)
    n, c, h, w = x.shape
    g, (kh, kw), (sh, sw), (dh, dw) = args.groups, weight.shape[2:], args.stride, args.dilation
    (full_h, full_w), span_h, span_w = args.full_hw, (h - 1) * sh + 1, (w - 1) * sw + 1
    xg = x.reshape(n, g, c // g, h, w)
    wg = weight.reshape(g, c // g, weight.shape[1], kh, kw)
    full = mnp.zeros((n, args.out_channels, full_h, full_w), dtype=x.dtype)
    for a in range(kh):
        for b in range(kw):
            tap = mnp.einsum("ngcij,gco->ngoij", xg, wg[..., a, b]).reshape(n, args.out_channels, h, w)
            full = full + _pad_hw(_spread(tap, args.stride),
                                  (a * dh, full_h - a * dh - span_h, b * dw, full_w - b * dw - span_w))
    top, _, left, _ = args.crops
    out_h, out_w = args.out_hw
    grow = (0, max(0, top + out_h - full_h), 0, max(0, left + out_w - full_w))
    return _add_bias(_pad_hw(full, grow)[:, :, top:top + out_h, left:left + out_w], bias)


def max_pool2d(x: Any, kernel_size: Any, stride: Any = None, padding: Any = 0, dilation: Any = 1,
               ceil_mode: bool = False) -> mnp.ndarray:
    """Max pooling: the largest of the strided slices, one per window element, of the -inf padded input.

    Not ``npx.pooling``: it has no dilation, skips NaN and turns an all -inf window into -3.4e38.
    """
    x = tensor(x)
    args = pool2d_args(x.shape, kernel_size, stride, padding, dilation, ceil_mode)
    x = _pad_hw(x, args.padded, -onp.inf)
    (kh, kw), (sh, sw), (dh, dw), (out_h, out_w) = args.kernel, args.stride, args.dilation, args.out_hw
    return mnp.stack([x[:, :, a * dh:a * dh + (out_h - 1) * sh + 1:sh, b * dw:b * dw + (out_w - 1) * sw + 1:sw]
                      for a in range(kh) for b in range(kw)]).max(axis=0)


def avg_pool2d(x: Any, kernel_size: Any, stride: Any = None, padding: Any = 0, ceil_mode: bool = False,
               count_include_pad: bool = True) -> mnp.ndarray:
    """Average pooling: MXNet's window sum over the zero-padded input, divided by the shared divisor."""
    x = tensor(x)
    args = pool2d_args(x.shape, kernel_size, stride, padding, 1, ceil_mode)
    total = npx.pooling(_pad_hw(x, args.padded), kernel=args.kernel, stride=args.stride, pool_type="sum",
                        pooling_convention="valid")[:, :, :args.out_hw[0], :args.out_hw[1]]
    return total / mnp.array(avg_pool_divisor(args, x.shape[2:], count_include_pad), dtype=x.dtype)


def _pad_hw(x: mnp.ndarray, pads: tuple[int, int, int, int], value: float = 0.0) -> mnp.ndarray:
    """Pad H and W of an NCHW array by (top, bottom, left, right) with ``value``.

    ``mnp.pad`` ignores ``constant_values`` in MXNet 1.9.1, so pad with 0, then add the value on the border.
    """
    if not any(pads):
        return x
    top, bottom, left, right = pads
    widths = ((top, bottom), (left, right))
    padded = mnp.pad(x, ((0, 0), (0, 0), *widths))
    if value == 0:
        return padded
    border = onp.pad(onp.zeros(x.shape[2:], x.dtype), widths, constant_values=value)
    return padded + mnp.array(border, dtype=x.dtype)


def _spread(t: mnp.ndarray, factors: tuple[int, int]) -> mnp.ndarray:
    """A 4-D array with ``factor - 1`` zeros between neighbours along axes 2 and 3 (a stride's spread)."""
    if factors == (1, 1):
        return t
    (n, c, h, w), (fh, fw) = t.shape, factors
    spread = t.reshape(n, c, h, 1, w, 1)
    spread = mnp.concatenate([spread, mnp.zeros((n, c, h, fh - 1, w, 1), dtype=t.dtype)], axis=3)
    spread = mnp.concatenate([spread, mnp.zeros((n, c, h, fh, w, fw - 1), dtype=t.dtype)], axis=5)
    return spread.reshape(n, c, h * fh, w * fw)[:, :, :(h - 1) * fh + 1, :(w - 1) * fw + 1]


def _add_bias(y: mnp.ndarray, bias: mnp.ndarray | None) -> mnp.ndarray:
    return y if bias is None else y + bias.reshape(1, -1, 1, 1)
