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

from collections.abc import Callable
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from ...core.args import PoolArgs, avg_pool_divisor, conv2d_args, conv_transpose2d_args, pool2d_args
from ...core.checks import as_float_array, check_real_dtype, float_dtype, same_dtype_tensors

NAME = "torch"
FRAMEWORK = torch
# What ``native_op`` calls, the baseline ``d2lconv bench --ops`` times this tab against.
NATIVE_CALLS = "F.<op>, torch.autograd.grad"
_FLOATS = {torch.float32: "float32", torch.float64: "float64"}


def tensor(data: Any, dtype: str | None = None) -> torch.Tensor:
    """A float32 (or float64, from float64 data or ``dtype``) tensor; a torch tensor is cast only if its
    dtype differs (keeping its autograd history), anything else copied in."""
    if isinstance(data, torch.Tensor):
        if dtype in (None, _FLOATS.get(data.dtype)) and data.dtype in _FLOATS:  # the common case: nothing to do
            return data
        name = str(data.dtype).removeprefix("torch.")
        check_real_dtype(name, "data")
        return data.to(getattr(torch, float_dtype(name, dtype)))
    return torch.from_numpy(as_float_array(data, dtype).copy())


def to_numpy(x: Any) -> np.ndarray:
    """A NumPy array (float64 kept) from a tensor (a parameter or one that requires grad too) or an array-like."""
    if isinstance(x, torch.Tensor):
        return tensor(x).detach().numpy()
    return as_float_array(x)


def conv2d(
    x: Any,
    weight: Any,
    bias: Any = None,
    stride: Any = 1,
    padding: Any = 0,
    dilation: Any = 1,
    groups: int = 1,
    data_format: str = "NCHW",
) -> torch.Tensor:
    """Batched, multi-channel cross-correlation (NCHW data, OIHW weight, or NHWC and HWIO): ``F.conv2d``, which
    pads symmetrically itself; asymmetric padding goes through ``F.pad`` first."""
    x, weight, bias = same_dtype_tensors(tensor, x, weight, bias)
    args = conv2d_args(
        tuple(x.shape),
        tuple(weight.shape),
        None if bias is None else tuple(bias.shape),
        stride,
        padding,
        dilation,
        groups,
        data_format,
    )
    if args.channels_last:
        return _channels_last(conv2d(_channels_first(x), _oihw(weight), bias, stride, padding, dilation, groups))
    if x.numel() == 0:  # every sum is empty, so 0; torch would give 0 output channels for 0 input channels
        return _add_bias(x.new_zeros((x.shape[0], weight.shape[0], *args.out_hw)), bias)
    top, bottom, left, right = args.pads
    if top == bottom and left == right:  # no padded copy of x
        return F.conv2d(x, weight, bias, args.stride, (top, left), args.dilation, args.groups)
    return F.conv2d(_pad_hw(x, args.pads, 0.0), weight, bias, args.stride, 0, args.dilation, args.groups)


def conv_transpose2d(
    x: Any,
    weight: Any,
    bias: Any = None,
    stride: Any = 1,
    padding: Any = 0,
    output_padding: Any = 0,
    dilation: Any = 1,
    groups: int = 1,
    data_format: str = "NCHW",
) -> torch.Tensor:
    """Transposed convolution (weight (C_in, C_out/groups, kh, kw); with NHWC data (kh, kw, C_out/groups, C_in)):
    ``F.conv_transpose2d`` itself when the
    crop is symmetric and the extra rows are what torch's ``output_padding`` allows; else its full output, cropped."""
    x, weight, bias = same_dtype_tensors(tensor, x, weight, bias)
    args = conv_transpose2d_args(
        tuple(x.shape),
        tuple(weight.shape),
        None if bias is None else tuple(bias.shape),
        stride,
        padding,
        output_padding,
        dilation,
        groups,
        data_format,
    )
    if args.channels_last:
        w = _oihw(weight)
        return _channels_last(
            conv_transpose2d(_channels_first(x), w, bias, stride, padding, output_padding, dilation, groups)
        )
    top, bottom, left, right = args.crops
    (out_h, out_w), (full_h, full_w) = args.out_hw, args.full_hw
    extra = (out_h - (full_h - top - bottom), out_w - (full_w - left - right))
    if (
        x.numel()
        and top == bottom
        and left == right
        and all(0 <= e < max(s, d) for e, s, d in zip(extra, args.stride, args.dilation, strict=True))
    ):
        return F.conv_transpose2d(x, weight, bias, args.stride, (top, left), extra, args.groups, args.dilation)
    if x.numel() == 0:  # torch refuses an empty input unless only the batch is empty; every sum is 0
        full = x.new_zeros((x.shape[0], args.out_channels, *args.full_hw))
    else:
        full = F.conv_transpose2d(x, weight, None, args.stride, 0, 0, args.groups, args.dilation)
    # F.pad crops where a pad is negative and adds zeros (output_padding past the full output) where positive.
    return _add_bias(F.pad(full, (-left, left + out_w - full_w, -top, top + out_h - full_h)), bias)


def max_pool2d(
    x: Any,
    kernel_size: Any,
    stride: Any = None,
    padding: Any = 0,
    dilation: Any = 1,
    ceil_mode: bool = False,
    data_format: str = "NCHW",
) -> torch.Tensor:
    """Max pooling; padding and the ceil-mode overhang count as -inf. ``F.max_pool2d`` pads by itself up to
    half the window (torch's rules are d2lconv's); beyond that, ``F.pad`` first."""
    x = tensor(x)
    args = pool2d_args(tuple(x.shape), kernel_size, stride, padding, dilation, ceil_mode, data_format)
    if args.channels_last:
        return _channels_last(max_pool2d(_channels_first(x), kernel_size, stride, padding, dilation, ceil_mode))
    if x.shape[1] == 0:  # torch refuses zero channels; the answer is empty
        return x.new_zeros((*x.shape[:2], *args.out_hw))
    if _torch_pads(args):
        return F.max_pool2d(x, args.kernel, args.stride, (args.pads[0], args.pads[2]), args.dilation, bool(ceil_mode))
    return F.max_pool2d(_pad_hw(x, args.padded, -np.inf), args.kernel, args.stride, 0, args.dilation)


def avg_pool2d(
    x: Any,
    kernel_size: Any,
    stride: Any = None,
    padding: Any = 0,
    ceil_mode: bool = False,
    count_include_pad: bool = True,
    data_format: str = "NCHW",
) -> torch.Tensor:
    """Average pooling: ``F.avg_pool2d`` when torch takes the padding; else window sums over the shared divisor."""
    x = tensor(x)
    args = pool2d_args(tuple(x.shape), kernel_size, stride, padding, 1, ceil_mode, data_format)
    if args.channels_last:
        return _channels_last(
            avg_pool2d(_channels_first(x), kernel_size, stride, padding, ceil_mode, count_include_pad)
        )
    if x.shape[1] == 0:  # torch refuses zero channels; the answer is empty
        return x.new_zeros((*x.shape[:2], *args.out_hw))
    if _torch_pads(args):
        return F.avg_pool2d(
            x, args.kernel, args.stride, (args.pads[0], args.pads[2]), bool(ceil_mode), bool(count_include_pad)
        )
    total = F.avg_pool2d(_pad_hw(x, args.padded, 0.0), args.kernel, args.stride, divisor_override=1)
    return total / torch.tensor(avg_pool_divisor(args, tuple(x.shape[2:]), count_include_pad), dtype=x.dtype)


def _torch_pads(args: PoolArgs) -> bool:
    """Whether torch's pooling takes the padding itself: symmetric and at most half the window."""
    top, bottom, left, right = args.pads
    return top == bottom and left == right and top <= args.kernel[0] // 2 and left <= args.kernel[1] // 2


def _pad_hw(x: torch.Tensor, pads: tuple[int, int, int, int], value: float) -> torch.Tensor:
    """Pad an NCHW tensor by (top, bottom, left, right); ``F.pad`` lists the last axis first."""
    top, bottom, left, right = pads
    return F.pad(x, (left, right, top, bottom), value=value)


# The edge of the tab for NHWC data: views (permute copies nothing), so torch runs its channels_last kernels.
def _channels_first(x: torch.Tensor) -> torch.Tensor:
    return x.permute(0, 3, 1, 2)


def _channels_last(y: torch.Tensor) -> torch.Tensor:
    return y.permute(0, 2, 3, 1)


def _oihw(weight: torch.Tensor) -> torch.Tensor:
    """HWIO -> OIHW; the same permutation takes (kh, kw, C_out/groups, C_in) to (C_in, C_out/groups, kh, kw)."""
    return weight.permute(3, 2, 0, 1)


def _add_bias(y: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
    return y if bias is None else y + bias.reshape(1, -1, 1, 1)


def native_op(
    op: str, inputs: tuple[Any, ...], kwargs: dict[str, Any], grad_output: Any = None, data_format: str = "NCHW"
) -> Callable[[], Any]:
    """torch's own call of a batched ``op`` for ``d2lconv bench --ops``, as a zero-argument callable:
    ``F.<op>(*inputs, **kwargs)``, or with ``grad_output`` its gradients by ``torch.autograd.grad``.

    ``inputs`` are NCHW torch tensors and ``kwargs`` int ``stride``/``padding`` (``kernel_size``
    for pooling): torch's own meaning, so they pass through unchanged.
    """
    function = getattr(F, op)
    if grad_output is None:
        return lambda: function(*inputs, **kwargs)
    leaves = tuple(t.detach().requires_grad_() for t in inputs)
    return lambda: torch.autograd.grad(function(*leaves, **kwargs), leaves, grad_output)
