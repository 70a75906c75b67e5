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
  the opposite of torch's ``count_include_pad`` default, and ``max_pool2d`` has no dilation: symmetric
  padding of at most half the window with no ceil-mode overhang goes to Paddle's pooling itself (with
  ``exclusive = not count_include_pad``; average pooling in float32 only); otherwise pooling pads
  explicitly (-inf / 0), pools 'valid', divides window sums by the shared divisor, and decomposes dilated
  max pooling into strided slices. Those window sums are a convolution with a ones kernel, as
  ``F.avg_pool2d``'s float64 gradient is accurate only to ~1e-8. Paddle's max pooling skips NaN.
- ``F.conv2d`` with 0 input channels returns 0 output channels (and fails adding a bias): zeros instead.
- Importing paddle after tensorflow in one process segfaults; the registry imports paddle first.
"""

from __future__ import annotations

import functools
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np

with warnings.catch_warnings():
    warnings.filterwarnings("ignore", message="No ccache found", category=UserWarning)
    import paddle
import paddle.nn.functional as F

from ...core.args import ConvArgs, ConvTransposeArgs, PoolArgs, avg_pool_divisor
from ...core.checks import as_float_array, check_real_dtype, dtype_name, float_dtype
from .._shared import nchw_inside

NAME = "paddle"
FRAMEWORK = paddle
# What ``native_op`` calls, the baseline ``d2lconv bench --ops`` times this tab against.
NATIVE_CALLS = "F.<op>, paddle.grad"


def tensor(data: Any, dtype: str | None = None) -> paddle.Tensor:
    """A float32 (or float64, from float64 data or ``dtype``) ``paddle.Tensor``; a Paddle tensor
    (parameters too) is cast only if its dtype differs, keeping its autograd history."""
    if isinstance(data, paddle.Tensor):
        name = dtype_name(data.dtype)
        check_real_dtype(name, "data")
        wanted = float_dtype(name, dtype)
        return data if name == wanted else data.astype(wanted)
    return paddle.to_tensor(as_float_array(data, dtype))


def to_numpy(x: Any) -> np.ndarray:
    """A NumPy array (float64 kept) from a Paddle tensor or parameter (detached), or from any array-like."""
    if isinstance(x, paddle.Tensor):
        return tensor(x).detach().numpy()
    return as_float_array(x)


@nchw_inside(paddle.transpose)
def conv2d(x: paddle.Tensor, weight: paddle.Tensor, bias: paddle.Tensor | None, args: ConvArgs) -> paddle.Tensor:
    """Batched, multi-channel cross-correlation (NCHW data, OIHW weight), as torch's ``conv2d``."""
    if x.shape[1] == 0:  # no input channels: Paddle gives 0 output channels (and fails adding a bias)
        y = paddle.zeros([x.shape[0], weight.shape[0], *args.out_hw], dtype=x.dtype)
        return y if bias is None else y + bias.reshape([1, -1, 1, 1])
    # Explicit pads, never 'SAME' (Paddle drops the dilation with it); a symmetric pair when it is one,
    # as Paddle's four-value form takes a slower path.
    top, bottom, left, right = args.pads
    pads = _short(top, left) if top == bottom and left == right else list(args.pads)
    return F.conv2d(x, weight, bias, _short(*args.stride), pads, _short(*args.dilation), args.groups)


@nchw_inside(paddle.transpose)
def conv_transpose2d(
    x: paddle.Tensor, weight: paddle.Tensor, bias: paddle.Tensor | None, args: ConvTransposeArgs
) -> paddle.Tensor:
    """Transposed convolution (weight (C_in, C_out/groups, kh, kw)): ``F.conv2d_transpose`` itself when the crop
    is symmetric and the extra rows fit its ``output_padding`` (below the stride: Paddle refuses one that only
    the dilation allows); else the full result, cropped, plus bias."""
    top, bottom, left, right = args.crops
    extra = [args.out_hw[0] - (args.full_hw[0] - top - bottom), args.out_hw[1] - (args.full_hw[1] - left - right)]
    if top == bottom and left == right and all(0 <= e < s for e, s in zip(extra, args.stride, strict=True)):
        return F.conv2d_transpose(
            x,
            weight,
            bias,
            _short(*args.stride),
            _short(top, left),
            _short(*extra),
            dilation=_short(*args.dilation),
            groups=args.groups,
        )
    full = F.conv2d_transpose(x, weight, stride=args.stride, dilation=args.dilation, groups=args.groups)
    top, _, left, _ = args.crops
    out_h, out_w = args.out_hw
    grow = [0, max(0, left + out_w - full.shape[3]), 0, max(0, top + out_h - full.shape[2])]
    y = F.pad(full, grow)[:, :, top : top + out_h, left : left + out_w]
    return y if bias is None else y + bias.reshape([1, -1, 1, 1])


@nchw_inside(paddle.transpose)
def max_pool2d(x: paddle.Tensor, args: PoolArgs) -> paddle.Tensor:
    """Max pooling; padding and the ceil-mode overhang count as -inf. Dilated: max over strided slices."""
    if args.dilation == (1, 1) and _paddle_pads(args):
        return F.max_pool2d(x, _short(*args.kernel), _short(*args.stride), _short(args.pads[0], args.pads[2]))
    x = _pad_hw(x, args.padded, -np.inf)
    if args.dilation == (1, 1):
        return F.max_pool2d(x, args.kernel, args.stride)
    (kh, kw), (sh, sw), (dh, dw), (out_h, out_w) = args.kernel, args.stride, args.dilation, args.out_hw
    slices = [
        x[:, :, a * dh : a * dh + (out_h - 1) * sh + 1 : sh, b * dw : b * dw + (out_w - 1) * sw + 1 : sw]
        for a in range(kh)
        for b in range(kw)
    ]
    return paddle.stack(slices).max(axis=0)


@nchw_inside(paddle.transpose)
def avg_pool2d(x: paddle.Tensor, args: PoolArgs) -> paddle.Tensor:
    """Average pooling; the divisor counts real elements (and padding if ``count_include_pad``)."""
    if x.dtype == paddle.float32 and _paddle_pads(args):
        return F.avg_pool2d(
            x,
            _short(*args.kernel),
            _short(*args.stride),
            _short(args.pads[0], args.pads[2]),
            exclusive=not args.count_include_pad,
        )
    total = _window_sums(_pad_hw(x, args.padded, 0.0), args.kernel, args.stride)
    return total / paddle.to_tensor(avg_pool_divisor(args), dtype=x.dtype)


def _short(height: int, width: int) -> int | list[int]:
    """A (height, width) argument as Paddle parses it fastest: one int when both are equal (a list
    costs Paddle ~16 us more per call, more than its whole max pooling of a 3x32x32 image)."""
    return height if height == width else [height, width]


def _paddle_pads(args: PoolArgs) -> bool:
    """Whether Paddle's pooling takes the padding itself with torch's meaning: symmetric, at most half the
    window, and no ceil-mode overhang (Paddle keeps a last window that starts in the padding)."""
    top, bottom, left, right = args.padded
    return top == bottom and left == right and top <= args.kernel[0] // 2 and left <= args.kernel[1] // 2


def _window_sums(x: paddle.Tensor, kernel: tuple[int, int], stride: tuple[int, int]) -> paddle.Tensor:
    """The sum of every pooling window: each channel convolved with a kernel of ones.

    Not ``F.avg_pool2d``: its float64 backward accumulates in lower precision (gradients off by ~1e-8).
    """
    n, c, h, w = x.shape
    y = F.conv2d(x.reshape([n * c, 1, h, w]), paddle.ones([1, 1, *kernel], dtype=x.dtype), stride=list(stride))
    return y.reshape([n, c, *y.shape[2:]])


def _pad_hw(x: paddle.Tensor, pads: tuple[int, int, int, int], value: float) -> paddle.Tensor:
    top, bottom, left, right = pads
    return F.pad(x, [left, right, top, bottom], value=value)


def native_op(
    op: str, inputs: tuple[Any, ...], kwargs: dict[str, Any], grad_output: Any = None, data_format: str = "NCHW"
) -> Callable[[], Any]:
    """Paddle's own call of a batched ``op`` for ``d2lconv bench --ops``, as a zero-argument callable:
    ``F.conv2d`` / ``F.conv2d_transpose`` / ``F.max_pool2d`` / ``F.avg_pool2d`` (``exclusive=False``,
    torch's default divisor), or with ``grad_output`` their gradients by ``paddle.grad``.

    ``inputs`` are NCHW tensors, ``kwargs`` int ``stride``/``padding`` (``kernel_size`` for pooling).
    """
    function = {
        "conv2d": F.conv2d,
        "conv_transpose2d": F.conv2d_transpose,
        "max_pool2d": F.max_pool2d,
        "avg_pool2d": functools.partial(F.avg_pool2d, exclusive=False),
    }[op]
    if grad_output is None:
        return lambda: function(*inputs, **kwargs)
    leaves = tuple(t.detach() for t in inputs)
    for leaf in leaves:
        leaf.stop_gradient = False
    return lambda: paddle.grad([function(*leaves, **kwargs)], list(leaves), [grad_output])
