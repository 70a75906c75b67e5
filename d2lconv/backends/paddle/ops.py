"""The PaddlePaddle tab: the chapter in Paddle's dygraph idiom (``paddle.nn.Layer``, ``F.conv2d``).

Quirks worked around here:

- The book's Paddle ``Conv2D`` assigns ``paddle.ParamAttr(paddle.rand(kernel_size))``, a parameter
  *descriptor* (its first argument is a name), so it creates no trainable parameter. Ours creates
  real parameters with ``create_parameter`` and an initializer.
- The book's kernel-learning cell keeps the bias of ``nn.Conv2D(1, 1, (1, 2))`` (zero, and never
  updated); the other tabs have none, so the built-in layer here has ``bias_attr=False``.
- ``import paddle`` warns "No ccache found" (``paddle.utils.cpp_extension``, only used to compile
  C++ extensions): that one warning is silenced during the import.
- ``padding='SAME'`` with ``dilation=2`` silently ignores the dilation, so 'same' is never passed to
  Paddle: every op gets the shared explicit pads.
- Paddle pooling keeps a ceil-mode window that starts inside the padding, its ``exclusive`` flag is
  the opposite of torch's ``count_include_pad`` default, and ``max_pool2d`` has no dilation: pooling
  pads explicitly (-inf / 0), pools 'valid', divides window sums by the shared divisor, and decomposes
  dilated max pooling into strided slices.
- ``F.conv2d`` with 0 input channels returns 0 output channels (and fails adding a bias): zeros instead.
- Importing paddle after tensorflow in one process segfaults; the registry imports paddle first.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np

with warnings.catch_warnings():
    warnings.filterwarnings("ignore", message="No ccache found", category=UserWarning)
    import paddle
import paddle.nn.functional as F

from ...checks import as_float_array, check_real_dtype, float_dtype, same_dtype_tensors
from ...padding import avg_pool_divisor, conv2d_args, conv_transpose2d_args, pool2d_args

NAME = "paddle"
FRAMEWORK = paddle


def tensor(data: Any, dtype: str | None = None) -> paddle.Tensor:
    """A float32 (or float64, from float64 data or ``dtype``) ``paddle.Tensor``; a Paddle tensor
    (parameters too) is cast only if its dtype differs, keeping its autograd history."""
    if isinstance(data, paddle.Tensor):
        name = str(data.dtype)
        check_real_dtype(name, "data")
        wanted = float_dtype(name, dtype)
        return data if name == f"paddle.{wanted}" else data.astype(wanted)
    return paddle.to_tensor(as_float_array(data, dtype))


def to_numpy(x: Any) -> np.ndarray:
    """A NumPy array (float64 kept) from a Paddle tensor or parameter (detached), or from any array-like."""
    if isinstance(x, paddle.Tensor):
        return tensor(x).detach().numpy()
    return as_float_array(x)


def conv2d(x: Any, weight: Any, bias: Any = None, stride: Any = 1, padding: Any = 0, dilation: Any = 1,
           groups: int = 1) -> paddle.Tensor:
    """Batched, multi-channel cross-correlation (NCHW data, OIHW weight), as torch's ``conv2d``."""
    x, weight, bias = same_dtype_tensors(tensor, x, weight, bias)
    args = conv2d_args(x.shape, weight.shape, None if bias is None else bias.shape, stride, padding, dilation, groups)
    if x.shape[1] == 0:  # no input channels: Paddle gives 0 output channels (and fails adding a bias)
        y = paddle.zeros([x.shape[0], weight.shape[0], *args.out_hw], dtype=x.dtype)
        return y if bias is None else y + bias.reshape([1, -1, 1, 1])
    # Explicit (top, bottom, left, right) pads, never 'SAME' (Paddle drops the dilation with it).
    return F.conv2d(x, weight, bias, args.stride, list(args.pads), args.dilation, args.groups)


def conv_transpose2d(x: Any, weight: Any, bias: Any = None, stride: Any = 1, padding: Any = 0,
                     output_padding: Any = 0, dilation: Any = 1, groups: int = 1) -> paddle.Tensor:
    """Transposed convolution (weight (C_in, C_out/groups, kh, kw)): the full result, cropped, plus bias."""
    x, weight, bias = same_dtype_tensors(tensor, x, weight, bias)
    args = conv_transpose2d_args(x.shape, weight.shape, None if bias is None else bias.shape, stride, padding,
                                 output_padding, dilation, groups)
    full = F.conv2d_transpose(x, weight, stride=args.stride, dilation=args.dilation, groups=args.groups)
    top, _, left, _ = args.crops
    out_h, out_w = args.out_hw
    grow = [0, max(0, left + out_w - full.shape[3]), 0, max(0, top + out_h - full.shape[2])]
    y = F.pad(full, grow)[:, :, top:top + out_h, left:left + out_w]
    return y if bias is None else y + bias.reshape([1, -1, 1, 1])


def max_pool2d(x: Any, kernel_size: Any, stride: Any = None, padding: Any = 0, dilation: Any = 1,
               ceil_mode: bool = False) -> paddle.Tensor:
    """Max pooling; padding and the ceil-mode overhang count as -inf. Dilated: max over strided slices."""
    x = tensor(x)
    args = pool2d_args(x.shape, kernel_size, stride, padding, dilation, ceil_mode)
    x = _pad_hw(x, args.padded, -np.inf)
    if args.dilation == (1, 1):
        return F.max_pool2d(x, args.kernel, args.stride)
    (kh, kw), (sh, sw), (dh, dw), (out_h, out_w) = args.kernel, args.stride, args.dilation, args.out_hw
    slices = [x[:, :, a * dh:a * dh + (out_h - 1) * sh + 1:sh, b * dw:b * dw + (out_w - 1) * sw + 1:sw]
              for a in range(kh) for b in range(kw)]
    return paddle.stack(slices).max(axis=0)


def avg_pool2d(x: Any, kernel_size: Any, stride: Any = None, padding: Any = 0, ceil_mode: bool = False,
               count_include_pad: bool = True) -> paddle.Tensor:
    """Average pooling; the divisor counts real elements (and padding if ``count_include_pad``)."""
    x = tensor(x)
    args = pool2d_args(x.shape, kernel_size, stride, padding, 1, ceil_mode)
    total = F.avg_pool2d(_pad_hw(x, args.padded, 0.0), args.kernel, args.stride, divisor_override=1)
    return total / paddle.to_tensor(avg_pool_divisor(args, tuple(x.shape[2:]), count_include_pad), dtype=x.dtype)


def _pad_hw(x: paddle.Tensor, pads: tuple[int, int, int, int], value: float) -> paddle.Tensor:
    top, bottom, left, right = pads
    return F.pad(x, [left, right, top, bottom], value=value)
