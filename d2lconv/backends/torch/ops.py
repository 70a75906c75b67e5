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

from ...core.args import ConvArgs, ConvTransposeArgs, PoolArgs, avg_pool_divisor
from ...core.checks import as_float_array, check_real_dtype, float_dtype
from .._shared import nchw_inside

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


@nchw_inside(torch.permute)
def conv2d(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, args: ConvArgs) -> torch.Tensor:
    """Batched, multi-channel cross-correlation (NCHW data, OIHW weight): ``F.conv2d``, which pads symmetrically
    itself; asymmetric padding goes through ``F.pad`` first."""
    if x.numel() == 0:  # every sum is empty, so 0; torch would give 0 output channels for 0 input channels
        return _add_bias(x.new_zeros((x.shape[0], weight.shape[0], *args.out_hw)), bias)
    top, bottom, left, right = args.pads
    if top == bottom and left == right:  # no padded copy of x
        return F.conv2d(x, weight, bias, args.stride, (top, left), args.dilation, args.groups)
    return F.conv2d(_pad_hw(x, args.pads, 0.0), weight, bias, args.stride, 0, args.dilation, args.groups)


@nchw_inside(torch.permute)
def conv_transpose2d(
    x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, args: ConvTransposeArgs
) -> torch.Tensor:
    """Transposed convolution (weight (C_in, C_out/groups, kh, kw)): ``F.conv_transpose2d`` itself when the
    crop is symmetric and the extra rows are what torch's ``output_padding`` allows; else its full output, cropped."""
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


@nchw_inside(torch.permute)
def max_pool2d(x: torch.Tensor, args: PoolArgs) -> torch.Tensor:
    """Max pooling; padding and the ceil-mode overhang count as -inf. ``F.max_pool2d`` pads by itself up to
    half the window (torch's rules are d2lconv's); beyond that, ``F.pad`` first."""
    if x.shape[1] == 0:  # torch refuses zero channels; the answer is empty
        return x.new_zeros((*x.shape[:2], *args.out_hw))
    if _torch_pads(args):
        return F.max_pool2d(x, args.kernel, args.stride, (args.pads[0], args.pads[2]), args.dilation, args.ceil_mode)
    return F.max_pool2d(_pad_hw(x, args.padded, -np.inf), args.kernel, args.stride, 0, args.dilation)


@nchw_inside(torch.permute)
def avg_pool2d(x: torch.Tensor, args: PoolArgs) -> torch.Tensor:
    """Average pooling: ``F.avg_pool2d`` when torch takes the padding; else window sums over the shared divisor."""
    if x.shape[1] == 0:  # torch refuses zero channels; the answer is empty
        return x.new_zeros((*x.shape[:2], *args.out_hw))
    if _torch_pads(args):
        pads = (args.pads[0], args.pads[2])
        return F.avg_pool2d(x, args.kernel, args.stride, pads, args.ceil_mode, args.count_include_pad)
    total = F.avg_pool2d(_pad_hw(x, args.padded, 0.0), args.kernel, args.stride, divisor_override=1)
    return total / torch.tensor(avg_pool_divisor(args), dtype=x.dtype)


def _torch_pads(args: PoolArgs) -> bool:
    """Whether torch's pooling takes the padding itself: symmetric and at most half the window."""
    top, bottom, left, right = args.pads
    return top == bottom and left == right and top <= args.kernel[0] // 2 and left <= args.kernel[1] // 2


def _pad_hw(x: torch.Tensor, pads: tuple[int, int, int, int], value: float) -> torch.Tensor:
    """Pad an NCHW tensor by (top, bottom, left, right); ``F.pad`` lists the last axis first."""
    top, bottom, left, right = pads
    return F.pad(x, (left, right, top, bottom), value=value)


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
