"""The PyTorch tab: the book's PyTorch code, trained by torch autograd and ``torch.optim``.

The book's ``Conv2D`` (``nn.Parameter(torch.rand(kernel_size))``) works as written, and
so does its double loop under autograd. Quirks worked around here: torch's convolutions
refuse 4-value (asymmetric) padding and ``padding='same'`` with a stride above 1, and its
pooling refuses padding above half the window, so everything is padded first with
``F.pad`` (-inf for max pooling) and then run with ``padding=0``; torch refuses or
mis-shapes empty inputs (zero channels), whose answers are written out instead;
``torch.tensor`` refuses NumPy arrays with negative strides, so arrays are copied before
``torch.from_numpy``; ``float()`` of a tensor that requires grad warns, ``.item()`` does not.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from ...checks import as_float_array, check_real_dtype, float_dtype, same_dtype_tensors
from ...padding import avg_pool_divisor, conv2d_args, conv_transpose2d_args, pool2d_args

NAME = "torch"
FRAMEWORK = torch


def tensor(data: Any, dtype: str | None = None) -> torch.Tensor:
    """A float32 (or float64, from float64 data or ``dtype``) tensor; a torch tensor is cast only if its
    dtype differs (keeping its autograd history), anything else copied in."""
    if isinstance(data, torch.Tensor):
        name = str(data.dtype).removeprefix("torch.")
        check_real_dtype(name, "data")
        return data.to(getattr(torch, float_dtype(name, dtype)))
    return torch.from_numpy(as_float_array(data, dtype).copy())


def to_numpy(x: Any) -> np.ndarray:
    """A NumPy array (float64 kept) from a tensor (a parameter or one that requires grad too) or an array-like."""
    if isinstance(x, torch.Tensor):
        return tensor(x).detach().numpy()
    return as_float_array(x)


def conv2d(x: Any, weight: Any, bias: Any = None, stride: Any = 1, padding: Any = 0, dilation: Any = 1,
           groups: int = 1) -> torch.Tensor:
    """Batched, multi-channel cross-correlation (NCHW data, OIHW weight): ``F.conv2d`` after ``F.pad``."""
    x, weight, bias = same_dtype_tensors(tensor, x, weight, bias)
    args = conv2d_args(tuple(x.shape), tuple(weight.shape), None if bias is None else tuple(bias.shape),
                       stride, padding, dilation, groups)
    if x.numel() == 0:  # every sum is empty, so 0; torch would give 0 output channels for 0 input channels
        return _add_bias(x.new_zeros((x.shape[0], weight.shape[0], *args.out_hw)), bias)
    return F.conv2d(_pad_hw(x, args.pads, 0.0), weight, bias, args.stride, 0, args.dilation, args.groups)


def conv_transpose2d(x: Any, weight: Any, bias: Any = None, stride: Any = 1, padding: Any = 0,
                     output_padding: Any = 0, dilation: Any = 1, groups: int = 1) -> torch.Tensor:
    """Transposed convolution (weight (C_in, C_out/groups, kh, kw)): the full ``F.conv_transpose2d``, cropped."""
    x, weight, bias = same_dtype_tensors(tensor, x, weight, bias)
    args = conv_transpose2d_args(tuple(x.shape), tuple(weight.shape), None if bias is None else tuple(bias.shape),
                                 stride, padding, output_padding, dilation, groups)
    if x.numel() == 0:  # torch refuses an empty input unless only the batch is empty; every sum is 0
        full = x.new_zeros((x.shape[0], args.out_channels, *args.full_hw))
    else:
        full = F.conv_transpose2d(x, weight, None, args.stride, 0, 0, args.groups, args.dilation)
    top, _, left, _ = args.crops
    (out_h, out_w), (full_h, full_w) = args.out_hw, args.full_hw
    # F.pad crops where a pad is negative and adds zeros (output_padding past the full output) where positive.
    return _add_bias(F.pad(full, (-left, left + out_w - full_w, -top, top + out_h - full_h)), bias)


def max_pool2d(x: Any, kernel_size: Any, stride: Any = None, padding: Any = 0, dilation: Any = 1,
               ceil_mode: bool = False) -> torch.Tensor:
    """Max pooling; padding and the ceil-mode overhang count as -inf (``F.pad``, then ``F.max_pool2d``)."""
    x = tensor(x)
    args = pool2d_args(tuple(x.shape), kernel_size, stride, padding, dilation, ceil_mode)
    if x.shape[1] == 0:  # torch refuses zero channels; the answer is empty
        return x.new_zeros((*x.shape[:2], *args.out_hw))
    return F.max_pool2d(_pad_hw(x, args.padded, -np.inf), args.kernel, args.stride, 0, args.dilation)


def avg_pool2d(x: Any, kernel_size: Any, stride: Any = None, padding: Any = 0, ceil_mode: bool = False,
               count_include_pad: bool = True) -> torch.Tensor:
    """Average pooling: window sums (``F.avg_pool2d`` with divisor 1) over the shared divisor."""
    x = tensor(x)
    args = pool2d_args(tuple(x.shape), kernel_size, stride, padding, 1, ceil_mode)
    if x.shape[1] == 0:  # torch refuses zero channels; the answer is empty
        return x.new_zeros((*x.shape[:2], *args.out_hw))
    total = F.avg_pool2d(_pad_hw(x, args.padded, 0.0), args.kernel, args.stride, divisor_override=1)
    return total / torch.from_numpy(avg_pool_divisor(args, tuple(x.shape[2:]), count_include_pad)).to(x.dtype)


def _pad_hw(x: torch.Tensor, pads: tuple[int, int, int, int], value: float) -> torch.Tensor:
    """Pad an NCHW tensor by (top, bottom, left, right); ``F.pad`` lists the last axis first."""
    top, bottom, left, right = pads
    return F.pad(x, (left, right, top, bottom), value=value)


def _add_bias(y: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
    return y if bias is None else y + bias.reshape(1, -1, 1, 1)
