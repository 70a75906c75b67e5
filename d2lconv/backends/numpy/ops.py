"""The NumPy tab: the reference every framework is checked against.

NumPy has no autograd, so ``Conv2D`` carries a backward pass derived by hand:
for ``Y = corr2d(X, K) + b`` and an upstream gradient ``dY``,
``dK = corr2d(X, dY)``, ``db = sum(dY)`` and ``dX = corr2d(pad(dY), flip(K))``
(the 'full' correlation of ``dY`` with ``K`` flipped on both axes).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from ...checks import as_float32_array
from ...padding import avg_pool_divisor, conv2d_args, conv_transpose2d_args, pool2d_args

NAME = "numpy"
FRAMEWORK = np


def tensor(data: Any) -> np.ndarray:
    """A float32 array from nested lists, NumPy or any framework's tensor."""
    return as_float32_array(data)


def to_numpy(x: Any) -> np.ndarray:
    """A NumPy array (here: the array itself)."""
    return as_float32_array(x)


def conv2d(x: Any, weight: Any, bias: Any = None, stride: Any = 1, padding: Any = 0, dilation: Any = 1,
           groups: int = 1) -> np.ndarray:
    """Batched, multi-channel cross-correlation (NCHW data, OIHW weight), as torch's ``conv2d``."""
    x, weight = tensor(x), tensor(weight)
    bias = None if bias is None else tensor(bias)
    args = conv2d_args(x.shape, weight.shape, None if bias is None else bias.shape, stride, padding, dilation, groups)
    top, bottom, left, right = args.pads
    x = np.pad(x, ((0, 0), (0, 0), (top, bottom), (left, right)))
    patches = _windows(x, weight.shape[2:], args.stride, args.dilation, args.out_hw)  # N C oh ow kh kw
    n, c = x.shape[:2]
    g, o = args.groups, weight.shape[0]
    patches = patches.reshape(n, g, c // g, *patches.shape[2:])
    y = np.einsum("ngcijab,gocab->ngoij", patches, weight.reshape(g, o // g, c // g, *weight.shape[2:]),
                  optimize=True).reshape(n, o, *args.out_hw)
    return _add_bias(y, bias)


def conv_transpose2d(x: Any, weight: Any, bias: Any = None, stride: Any = 1, padding: Any = 0,
                     output_padding: Any = 0, dilation: Any = 1, groups: int = 1) -> np.ndarray:
    """Transposed convolution (weight (C_in, C_out/groups, kh, kw)): each input pixel scatters the kernel."""
    x, weight = tensor(x), tensor(weight)
    bias = None if bias is None else tensor(bias)
    args = conv_transpose2d_args(x.shape, weight.shape, None if bias is None else bias.shape, stride, padding,
                                 output_padding, dilation, groups)
    n, c, h, w = x.shape
    g, (kh, kw), (sh, sw), (dh, dw) = args.groups, weight.shape[2:], args.stride, args.dilation
    xg = x.reshape(n, g, c // g, h, w)
    wg = weight.reshape(g, c // g, weight.shape[1], kh, kw)
    full = np.zeros((n, g, weight.shape[1], *args.full_hw), dtype=np.float32)
    for a in range(kh):
        for b in range(kw):
            full[:, :, :, a * dh:a * dh + (h - 1) * sh + 1:sh, b * dw:b * dw + (w - 1) * sw + 1:sw] += \
                np.einsum("ngcij,gco->ngoij", xg, wg[..., a, b])
    full = full.reshape(n, args.out_channels, *args.full_hw)
    top, _, left, _ = args.crops
    out_h, out_w = args.out_hw
    grow = ((0, 0), (0, 0), (0, max(0, top + out_h - full.shape[2])), (0, max(0, left + out_w - full.shape[3])))
    y = np.pad(full, grow)[:, :, top:top + out_h, left:left + out_w]
    return _add_bias(y, bias)


def max_pool2d(x: Any, kernel_size: Any, stride: Any = None, padding: Any = 0, dilation: Any = 1,
               ceil_mode: bool = False) -> np.ndarray:
    """Max pooling; padding and the ceil-mode overhang count as -inf."""
    x = tensor(x)
    args = pool2d_args(x.shape, kernel_size, stride, padding, dilation, ceil_mode)
    x = _pad_hw(x, args.padded, -np.inf)
    return _windows(x, args.kernel, args.stride, args.dilation, args.out_hw).max(axis=(4, 5))


def avg_pool2d(x: Any, kernel_size: Any, stride: Any = None, padding: Any = 0, ceil_mode: bool = False,
               count_include_pad: bool = True) -> np.ndarray:
    """Average pooling; the divisor counts real elements (and padding if ``count_include_pad``)."""
    x = tensor(x)
    args = pool2d_args(x.shape, kernel_size, stride, padding, 1, ceil_mode)
    total = _windows(_pad_hw(x, args.padded, 0.0), args.kernel, args.stride, args.dilation, args.out_hw)
    return total.sum(axis=(4, 5)) / avg_pool_divisor(args, x.shape[2:], count_include_pad)


def _pad_hw(x: np.ndarray, pads: tuple[int, int, int, int], value: float) -> np.ndarray:
    top, bottom, left, right = pads
    return np.pad(x, ((0, 0), (0, 0), (top, bottom), (left, right)), constant_values=value)


def _windows(x: np.ndarray, kernel: tuple[int, int], stride: tuple[int, int], dilation: tuple[int, int],
             out_hw: tuple[int, int]) -> np.ndarray:
    """A strided view (N, C, out_h, out_w, kh, kw) of the dilated windows of a padded NCHW array."""
    extent = tuple(d * (k - 1) + 1 for k, d in zip(kernel, dilation))
    view = sliding_window_view(x, extent, axis=(2, 3))
    return view[:, :, ::stride[0], ::stride[1], ::dilation[0], ::dilation[1]][:, :, :out_hw[0], :out_hw[1]]


def _add_bias(y: np.ndarray, bias: np.ndarray | None) -> np.ndarray:
    y = y.astype(np.float32, copy=False)
    return y if bias is None else y + bias.reshape(1, -1, 1, 1)
