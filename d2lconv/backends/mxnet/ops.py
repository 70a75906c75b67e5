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
  off, and its MKLDNN backward fails: the transposed convolution is the
  convolution of the stride-spread input with the flipped kernel instead.
- ``npx.pooling`` has no dilation, keeps a ceil-mode window that starts in the
  padding, skips NaN and turns an all -inf window into -3.4e38: it pools with
  its own padding only when that is symmetric, at most half the window and
  without a ceil-mode overhang (NaN skipped then, as Paddle does); otherwise
  pooling pads explicitly, max pooling is a max over strided slices and average
  pooling uses the 'sum' pool and the shared divisor.
- ``npx.convolution`` fails on an input with no channels: ``conv2d`` of an
  empty input is the bias alone.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable
from typing import Any

import numpy as onp

# Storage-fallback notices are logged (harmlessly) for every op when MKLDNN is switched off.
os.environ.setdefault("MXNET_STORAGE_FALLBACK_LOG_VERBOSE", "0")
if "bool" not in vars(onp):  # hasattr() would warn: numpy 1.26 plans to reintroduce np.bool
    vars(onp)["bool"] = bool  # mxnet 1.9.1 uses numpy.bool (apache/mxnet#21165); vars(): the stubs type it a class
with warnings.catch_warnings():
    # mxnet.numpy.fallback touches removed NumPy financial functions; distutils' LooseVersion.
    warnings.filterwarnings("ignore", category=DeprecationWarning, module=r"mxnet(\.|$)")
    import mxnet as mx
    from mxnet import autograd, gluon, npx
    from mxnet import np as mnp

from ...core.args import ConvArgs, ConvTransposeArgs, PoolArgs, avg_pool_divisor
from ...core.checks import as_float_array, check_real_dtype, float_dtype
from .._shared import nchw_inside

npx.set_np()

NAME = "mxnet"
FRAMEWORK = mx
# What ``native_op`` calls, the baseline ``d2lconv bench --ops`` times this tab against.
NATIVE_CALLS = "npx.convolution / deconvolution / pooling, autograd"
_FLOATS = {onp.dtype("float32"): "float32", onp.dtype("float64"): "float64"}


def tensor(data: Any, dtype: str | None = None) -> mnp.ndarray:
    """A float32 (or float64, from float64 data or ``dtype``) ``mxnet.np.ndarray``; MXNet arrays (and
    Gluon parameters) keep their autograd history. The dtype is always explicit: ``mxnet.np``
    would make new arrays float32 whatever the data."""
    if type(data) is mnp.ndarray:
        kept = _FLOATS.get(data.dtype)  # each .dtype (and .shape) of an MXNet array is a C call: read once
        if kept is not None and dtype in (None, kept):
            return data  # the common case: nothing to do
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


@nchw_inside(mnp.transpose)
def conv2d(x: mnp.ndarray, weight: mnp.ndarray, bias: mnp.ndarray | None, args: ConvArgs) -> mnp.ndarray:
    """Batched, multi-channel cross-correlation (NCHW data, OIHW weight), as torch's ``conv2d``."""
    x_shape, w_shape = x.shape, weight.shape
    if 0 in x_shape:  # MXNet's convolution fails on an empty input; every output is the bias alone
        return _add_bias(mnp.zeros((x_shape[0], w_shape[0], *args.out_hw), dtype=x.dtype), bias)
    return _add_bias(_convolution(x, weight, w_shape, args.pads, args.stride, args.dilation, args.groups), bias)


@nchw_inside(mnp.transpose)
def conv_transpose2d(
    x: mnp.ndarray, weight: mnp.ndarray, bias: mnp.ndarray | None, args: ConvTransposeArgs
) -> mnp.ndarray:
    """Transposed convolution (weight (C_in, C_out/groups, kh, kw)): ``npx.convolution`` of the input spread
    by the stride (zeros between its pixels), padded by the kernel's extent less the crop, with the kernel
    flipped and its in/out channels swapped in each group.

    Not ``npx.deconvolution``: without MKLDNN that is wrong for dilation > 1 with stride > 1, and with
    MKLDNN its backward fails ("could not execute a primitive").
    """
    x_shape, w_shape = x.shape, weight.shape
    if 0 in x_shape:  # MXNet's convolution fails on an empty input; every output is the bias alone
        return _add_bias(mnp.zeros((x_shape[0], args.out_channels, *args.out_hw), dtype=x.dtype), bias)
    c, g, (og, kh, kw) = x_shape[1], args.groups, w_shape[1:]
    kernel = mnp.flip(weight.reshape(g, c // g, og, kh, kw).swapaxes(1, 2).reshape(g * og, c // g, kh, kw), (2, 3))
    spread = _spread(x, args.stride)
    span_h, span_w = ((size - 1) * s + 1 for size, s in zip(x_shape[2:], args.stride, strict=True))  # spread's
    (out_h, out_w), (dh, dw) = args.out_hw, args.dilation
    top, _, left, _ = args.crops
    # Output row i is full row i + top: pad (extent - 1 - top) before and (out - span + top) after.
    pads = [(kh - 1) * dh - top, out_h - span_h + top, (kw - 1) * dw - left, out_w - span_w + left]
    if min(pads) < 0:  # a crop past the extent: drop input rows/columns instead of padding
        spread = spread[
            :, :, max(0, -pads[0]) : span_h - max(0, -pads[1]), max(0, -pads[2]) : span_w - max(0, -pads[3])
        ]
        pads = [max(0, p) for p in pads]
    kernel_shape = (g * og, c // g, kh, kw)
    return _add_bias(_convolution(spread, kernel, kernel_shape, tuple(pads), (1, 1), args.dilation, g), bias)


@nchw_inside(mnp.transpose)
def max_pool2d(x: mnp.ndarray, args: PoolArgs) -> mnp.ndarray:
    """Max pooling: ``npx.pooling`` when it takes the padding itself (symmetric, at most half the window,
    no ceil-mode overhang, no dilation); else the largest of the strided slices, one per window element,
    of the -inf padded input. ``npx.pooling`` skips NaN (as Paddle's pooling does) and gives -3.4e38 for a
    window of -inf only.
    """
    if args.dilation == (1, 1) and _mxnet_pads(args):
        return _pooling(x, args, "max")
    x = _pad_hw(x, args.padded, -onp.inf)
    (kh, kw), (sh, sw), (dh, dw), (out_h, out_w) = args.kernel, args.stride, args.dilation, args.out_hw
    return mnp.stack(
        [
            x[:, :, a * dh : a * dh + (out_h - 1) * sh + 1 : sh, b * dw : b * dw + (out_w - 1) * sw + 1 : sw]
            for a in range(kh)
            for b in range(kw)
        ]
    ).max(axis=0)


@nchw_inside(mnp.transpose)
def avg_pool2d(x: mnp.ndarray, args: PoolArgs) -> mnp.ndarray:
    """Average pooling: ``npx.pooling`` when it takes the padding itself (see ``max_pool2d``); else MXNet's
    window sum over the zero-padded input, divided by the shared divisor."""
    if _mxnet_pads(args):
        return _pooling(x, args, "avg", count_include_pad=args.count_include_pad)
    total = npx.pooling(
        _pad_hw(x, args.padded), kernel=args.kernel, stride=args.stride, pool_type="sum", pooling_convention="valid"
    )[:, :, : args.out_hw[0], : args.out_hw[1]]
    return total / mnp.array(avg_pool_divisor(args), dtype=x.dtype)


def _convolution(
    x: mnp.ndarray,
    weight: mnp.ndarray,
    weight_shape: tuple[int, ...],
    pads: tuple[int, int, int, int],
    stride: tuple[int, int],
    dilation: tuple[int, int],
    groups: int,
) -> mnp.ndarray:
    """``npx.convolution`` after padding (top, bottom, left, right): symmetric padding is its own ``pad``."""
    top, bottom, left, right = pads
    if top != bottom or left != right:
        x, top, left = _pad_hw(x, pads), 0, 0
    return npx.convolution(
        x,
        weight,
        kernel=weight_shape[2:],
        stride=stride,
        dilate=dilation,
        pad=(top, left),
        num_filter=weight_shape[0],
        num_group=groups,
        no_bias=True,
    )


def _pooling(x: mnp.ndarray, args: PoolArgs, pool_type: str, **options: Any) -> mnp.ndarray:
    """``npx.pooling`` padding by itself (where ``_mxnet_pads`` says it pads as torch does)."""
    pad = (args.pads[0], args.pads[2])
    return npx.pooling(
        x, kernel=args.kernel, stride=args.stride, pad=pad, pool_type=pool_type, pooling_convention="valid", **options
    )


def _mxnet_pads(args: PoolArgs) -> bool:
    """Whether ``npx.pooling`` takes the padding itself with torch's meaning: symmetric, at most half the
    window, and no ceil-mode overhang (its 'full' convention keeps a window that starts in the padding)."""
    top, bottom, left, right = args.padded
    return top == bottom and left == right and top <= args.kernel[0] // 2 and left <= args.kernel[1] // 2


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
    return spread.reshape(n, c, h * fh, w * fw)[:, :, : (h - 1) * fh + 1, : (w - 1) * fw + 1]


def _add_bias(y: mnp.ndarray, bias: mnp.ndarray | None) -> mnp.ndarray:
    return y if bias is None else y + bias.reshape(1, -1, 1, 1)


def native_op(
    op: str, inputs: tuple[Any, ...], kwargs: dict[str, Any], grad_output: Any = None, data_format: str = "NCHW"
) -> Callable[[], Any]:
    """MXNet's own call of a batched ``op`` for ``d2lconv bench --ops``, as a zero-argument callable:
    ``npx.convolution`` / ``npx.deconvolution`` / ``npx.pooling``, or with ``grad_output`` their
    gradients by ``autograd.record`` and ``backward``.

    ``inputs`` are NCHW arrays, ``kwargs`` int ``stride``/``padding`` (``kernel_size`` for pooling).
    """
    stride, pad = kwargs.get("stride", 1), kwargs.get("padding", 0)
    if op in ("conv2d", "conv_transpose2d"):
        weight = inputs[1]
        options = dict(kernel=weight.shape[2:], stride=(stride, stride), pad=(pad, pad), no_bias=True)
        if op == "conv2d":

            def call(*leaves: mnp.ndarray) -> mnp.ndarray:
                x, weight = leaves
                return npx.convolution(x, weight, num_filter=weight.shape[0], **options)
        else:

            def call(*leaves: mnp.ndarray) -> mnp.ndarray:
                x, weight = leaves
                return npx.deconvolution(x, weight, num_filter=weight.shape[1], **options)
    else:
        size = kwargs["kernel_size"]
        options = dict(
            kernel=(size, size),
            stride=(stride or size,) * 2,
            pad=(pad, pad),
            pool_type="max" if op == "max_pool2d" else "avg",
            pooling_convention="valid",
        )

        def call(*leaves: mnp.ndarray) -> mnp.ndarray:
            return npx.pooling(leaves[0], **options)

    if grad_output is None:
        return lambda: call(*inputs)
    leaves = tuple(t.copy() for t in inputs)
    for leaf in leaves:
        leaf.attach_grad()

    def gradients() -> tuple[mnp.ndarray, ...]:
        with autograd.record():
            y = call(*leaves)
        y.backward(grad_output)
        return tuple(leaf.grad for leaf in leaves)

    return gradients
