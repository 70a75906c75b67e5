"""Gradients in the NumPy tab: NumPy has no autograd, so every op has a backward pass derived by hand.

Each ``_<op>_backward(dy, ...)`` takes what the tab's op takes and returns the gradients of
``sum(op(...) * dy)`` with respect to the op's tensor inputs, computed in their
common dtype and returned in each input's own dtype. They are the reference every
framework's autograd is checked against.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from ...core.args import ConvArgs, ConvTransposeArgs, PoolArgs, avg_pool_divisor
from ...core.checks import check_corr2d, check_same_shape
from .._shared import EXPLICIT_ARGUMENTS, op_arguments, vjp_leaves
from . import conv_layer
from .ops import (
    _channels_first,
    _channels_last,
    _col2im,
    _from_spatial_first,
    _hwio,
    _im2col,
    _offset_slices,
    _oihw,
    _pad_channels_first,
    _pad_spatial_first,
    _per_group,
    _real,
    tensor,
)

# A convolution's gradients: of x, of the weight, of the bias (None without one).
_Gradients = tuple[np.ndarray, np.ndarray, np.ndarray | None]


def _upstream(grad_output: Any, shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
    """The upstream gradient: ones when ``None``, else checked against the output's shape."""
    if grad_output is None:
        return np.ones(shape, dtype)
    dy = _real(grad_output, "grad_output")
    check_same_shape(dy.shape, shape, "grad_output")
    return dy.astype(dtype, copy=False)


def _like(gradients: Sequence[np.ndarray | None], inputs: Sequence[np.ndarray | None]) -> tuple:
    """Each gradient in its input's dtype (None for a None input)."""
    return tuple(
        None if x is None or g is None else g.astype(x.dtype, copy=False)
        for g, x in zip(gradients, inputs, strict=True)
    )


def _corr2d_backward(dy: Any, X: Any, K: Any) -> tuple:
    """``corr2d`` is a sum of shifted copies of X weighted by K: see ``conv_layer._corr2d_backward``."""
    X, K = _real(X, "X"), _real(K, "K")
    dy = _upstream(dy, check_corr2d(X.shape, K.shape), np.result_type(X, K))
    return conv_layer._corr2d_backward(X, K, dy)


def _convolve2d_backward(dy: Any, X: Any, K: Any) -> tuple:
    """``convolve2d(X, K) = corr2d(X, flip(K))``: the same dX, and dK = flip(the gradient of flip(K))."""
    X, K = _real(X, "X"), _real(K, "K")
    dX, dK = _corr2d_backward(dy, X, K[::-1, ::-1])
    return dX, np.ascontiguousarray(dK[::-1, ::-1])


def _conv2d_backward(dy: Any, x: np.ndarray, weight: np.ndarray, bias: np.ndarray | None, args: ConvArgs) -> _Gradients:
    """Per group, ``Y = W @ cols`` with ``cols = im2col(pad(x))`` (ops.conv2d), so
    ``dW = dY @ colsᵀ``, ``d cols = Wᵀ @ dY`` and ``dx`` = col2im(d cols) with the padding cropped
    (col2im is im2col's adjoint); ``db`` sums dY over batch and pixels."""
    if args.channels_last:
        dy = _channels_first(_upstream(dy, (x.shape[0], *args.out_hw, weight.shape[3]), x.dtype))
        dx, dweight, dbias = _conv2d_backward(dy, _channels_first(x), _oihw(weight), bias, args.channels_first())
        return _channels_last(dx), _hwio(dweight), dbias
    (n, c, h, w), (o, _, kh, kw), g = x.shape, weight.shape, args.groups
    dy = _upstream(dy, (n, o, *args.out_hw), x.dtype)
    dy_rows = _per_group(dy.transpose(1, 0, 2, 3), g)  # (g, O/g, N*oh*ow), one copy
    padded = _pad_channels_first(x, args.pads)
    cols = _im2col(padded, (kh, kw), args.stride, args.dilation, args.out_hw, g)
    dweight = np.matmul(dy_rows, cols.transpose(0, 2, 1)).reshape(weight.shape)
    del cols  # one im2col-sized buffer at a time
    dcols = np.matmul(_per_group(weight, g).transpose(0, 2, 1), dy_rows)
    dpadded = _col2im(dcols.reshape(c, kh, kw, n, *args.out_hw), padded.shape[2:], args.stride, args.dilation)
    top, _, left, _ = args.pads
    dx = dpadded[:, :, top : top + h, left : left + w].transpose(1, 0, 2, 3)
    dbias = None if bias is None else dy.sum(axis=(0, 2, 3))
    return np.ascontiguousarray(dx), dweight, dbias


def _conv_transpose2d_backward(
    dy: Any, x: np.ndarray, weight: np.ndarray, bias: np.ndarray | None, args: ConvTransposeArgs
) -> _Gradients:
    """Per group, ``full = col2im(Wᵀ @ x)`` (ops.conv_transpose2d), then a crop: so dfull is dY placed back
    in the full output (zero where cropped; output_padding's extension gets no gradient),
    ``dcols = im2col(dfull)``, ``dx = W @ dcols`` (a conv2d of dY: the adjoint's adjoint) and ``dW = x @ dcolsᵀ``."""
    if args.channels_last:
        dy = _channels_first(_upstream(dy, (x.shape[0], *args.out_hw, args.out_channels), x.dtype))
        dx, dweight, dbias = _conv_transpose2d_backward(
            dy, _channels_first(x), _oihw(weight), bias, args.channels_first()
        )
        return _channels_last(dx), _hwio(dweight), dbias
    (n, c, h, w), g = x.shape, args.groups
    dy = _upstream(dy, (n, args.out_channels, *args.out_hw), x.dtype)
    top, _, left, _ = args.crops
    rows, cols_ = min(args.out_hw[0], args.full_hw[0] - top), min(args.out_hw[1], args.full_hw[1] - left)
    dfull = np.zeros((args.out_channels, n, *args.full_hw), x.dtype)
    dfull[:, :, top : top + rows, left : left + cols_] = dy[:, :, :rows, :cols_].transpose(1, 0, 2, 3)
    dcols = _im2col(dfull, weight.shape[2:], args.stride, args.dilation, (h, w), g)  # (g, C_out/g*kh*kw, N*H*W)
    x_rows = _per_group(x.transpose(1, 0, 2, 3), g)
    dx = np.matmul(_per_group(weight, g), dcols).reshape(c, n, h, w).transpose(1, 0, 2, 3)
    dweight = np.matmul(x_rows, dcols.transpose(0, 2, 1)).reshape(weight.shape)
    dbias = None if bias is None else dy.sum(axis=(0, 2, 3))
    return np.ascontiguousarray(dx), dweight, dbias


def _max_pool2d_backward(dy: Any, x: np.ndarray, args: PoolArgs) -> tuple[np.ndarray]:
    """Each output is one element of its window, so dY goes to that element: the first maximal one
    in row-major window order (PyTorch's rule for ties; where the window holds a NaN, the NaN, as in torch).
    Padding and the ceil-mode overhang are -inf, so they never win over a real element."""
    if args.channels_last:
        dy = _channels_first(_upstream(dy, (x.shape[0], *args.out_hw, x.shape[3]), x.dtype))
        (dx,) = _max_pool2d_backward(dy, _channels_first(x), args.channels_first())
        return (_channels_last(dx),)
    dy = _upstream(dy, (*x.shape[:2], *args.out_hw), x.dtype)
    padded = _pad_spatial_first(x, args.padded, -np.inf)
    windows = _offset_slices(args.kernel, args.stride, args.dilation, args.out_hw)
    best = padded[windows[0]].copy()
    winner, hit = np.zeros(best.shape, np.min_scalar_type(len(windows))), np.empty(best.shape, bool)
    offsets = np.empty_like(winner)
    for offset, window in enumerate(windows[1:], start=1):  # a strictly larger element wins: ties stay first
        np.greater(padded[window], best, out=hit)
        np.maximum(best, padded[window], out=best)
        np.maximum(winner, np.multiply(hit, winner.dtype.type(offset), out=offsets), out=winner)  # offsets only grow
    if np.isnan(best).any():  # a NaN never compares greater: give its window's gradient to the (last) NaN, as torch
        for offset, window in enumerate(windows):
            np.copyto(winner, offset, where=np.isnan(padded[window]))
    dy, share = _to_spatial_first(dy), np.empty_like(best)
    dpadded = np.zeros_like(padded)
    for offset, window in enumerate(windows):
        np.multiply(dy, np.equal(winner, offset, out=hit), out=share)
        dpadded[window] += share
    return (_from_spatial_first(_crop_hw(dpadded, args.padded), x.shape),)


def _avg_pool2d_backward(dy: Any, x: np.ndarray, args: PoolArgs) -> tuple[np.ndarray]:
    """Each output is the sum of its window over a fixed divisor, so every element of the window
    receives dY / divisor (padding's share is dropped; the divisor is the forward's)."""
    if args.channels_last:
        dy = _channels_first(_upstream(dy, (x.shape[0], *args.out_hw, x.shape[3]), x.dtype))
        (dx,) = _avg_pool2d_backward(dy, _channels_first(x), args.channels_first())
        return (_channels_last(dx),)
    dy = _upstream(dy, (*x.shape[:2], *args.out_hw), x.dtype)
    share = _to_spatial_first(dy) / avg_pool_divisor(args)[:, :, None].astype(x.dtype)
    top, bottom, left, right = args.padded
    dpadded = np.zeros((x.shape[2] + top + bottom, x.shape[3] + left + right, share.shape[2]), x.dtype)
    for window in _offset_slices(args.kernel, args.stride, args.dilation, args.out_hw):
        dpadded[window] += share
    return (_from_spatial_first(_crop_hw(dpadded, args.padded), x.shape),)


def _batch_norm_backward(
    dy: Any, X: Any, gamma: Any, beta: Any, moving_mean: Any, moving_var: Any, eps: float, momentum: float,
    training: bool,
) -> tuple:  # fmt: skip
    """Of Y only (the statistics returned are not differentiated). With ``x_hat = (X - mean) / sqrt(var + eps)``
    and ``Y = gamma x_hat + beta``, summing over the m values of each channel: dbeta = sum(dY), dgamma =
    sum(dY x_hat). In training mode mean and var are the batch's, so
    ``dX = (m dx_hat - sum(dx_hat) - x_hat sum(dx_hat x_hat)) / (m sqrt(var + eps))`` with ``dx_hat = gamma dY``,
    and the moving statistics get zero; in prediction mode they are the moving ones, ``dX = dx_hat / sqrt(var + eps)``,
    d moving_mean = -sum(dx_hat) / sqrt(var + eps) and d moving_var = -sum(dx_hat (X - mean)) / (2 (var + eps)^1.5)."""
    axes = (0,) if X.ndim == 2 else (0, 2, 3)
    shape = (1, -1) if X.ndim == 2 else (1, -1, 1, 1)
    dy = _upstream(dy, X.shape, X.dtype)
    if training:
        mean, var = X.mean(axis=axes, keepdims=True), X.var(axis=axes, keepdims=True)
    else:
        mean, var = moving_mean.reshape(shape), moving_var.reshape(shape)
    inv_std = 1 / np.sqrt(var + eps)
    x_hat = (X - mean) * inv_std
    dgamma, dbeta = (dy * x_hat).sum(axis=axes), dy.sum(axis=axes)
    dx_hat = dy * gamma.reshape(shape)
    if training:
        m = X.size // X.shape[1]
        dX = m * dx_hat - dx_hat.sum(axis=axes, keepdims=True) - x_hat * (dx_hat * x_hat).sum(axis=axes, keepdims=True)
        dX, dmean, dvar = dX * inv_std / m, np.zeros(mean.size, X.dtype), np.zeros(var.size, X.dtype)
    else:
        dX = dx_hat * inv_std
        dmean = -(dx_hat.sum(axis=axes) * inv_std.reshape(-1))
        dvar = -0.5 * (dx_hat * (X - mean)).sum(axis=axes) * inv_std.reshape(-1) ** 3
    statistics = (gamma, beta, moving_mean, moving_var)
    return dX, *(g.reshape(x.shape) for g, x in zip((dgamma, dbeta, dmean, dvar), statistics, strict=True))


def _to_spatial_first(y: np.ndarray) -> np.ndarray:
    """An NCHW array as a contiguous (H, W, N*C) one, the layout of ``ops._pad_spatial_first``."""
    n, c, h, w = y.shape
    return np.ascontiguousarray(y.reshape(n * c, h, w).transpose(1, 2, 0))


def _crop_hw(padded: np.ndarray, pads: tuple[int, int, int, int]) -> np.ndarray:
    """The real (unpadded) part of a padded (H, W, ...) array."""
    top, bottom, left, right = pads
    return padded[top : padded.shape[0] - bottom, left : padded.shape[1] - right]


# op -> its backward pass: for the ops of ``EXPLICIT_ARGUMENTS`` its parameters after ``dy`` are the tab's op's
# (its tensors in one dtype, then the explicit arguments); for the others, the public function's
_BACKWARD: dict[str, Callable[..., tuple]] = {
    "corr2d": _corr2d_backward,
    "convolve2d": _convolve2d_backward,
    "conv2d": _conv2d_backward,
    "conv_transpose2d": _conv_transpose2d_backward,
    "max_pool2d": _max_pool2d_backward,
    "avg_pool2d": _avg_pool2d_backward,
    "batch_norm": _batch_norm_backward,
}


def vjp(op: str, inputs: Sequence[Any], grad_output: Any = None, kwargs: dict[str, Any] | None = None) -> tuple:
    """One gradient per input of ``sum(op(*inputs, **kwargs) * grad_output)``, by the hand-derived backward
    passes above, each in its input's dtype; None for an input that is None or not a tensor (kernel_size, ...)."""
    if op in EXPLICIT_ARGUMENTS:
        leaves = vjp_leaves(op, inputs, tensor)
        gradients = _BACKWARD[op](grad_output, *op_arguments(op, tensor, leaves, inputs, kwargs))
        gradients = _like(gradients[: len(leaves)], leaves[: len(gradients)])
    else:
        gradients = _BACKWARD[op](grad_output, *inputs, **(kwargs or {}))
    return tuple(gradients[i] if i < len(gradients) else None for i in range(len(inputs)))
