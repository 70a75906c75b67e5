"""Sections 6.3 to 6.5 (padding and stride, multiple channels, pooling), framework-neutral half.

The book's data and printed numbers, the shape checks every tab runs before touching its
framework (one ``ValueError`` message per mistake, the same on every backend), and the
sections' parity checks. Each tab's ``padding_channels_pooling`` module holds the book's
code for these sections in its own framework's idiom.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ..core.args import Pair, conv_output_size
from ..core.checks import check_2d, check_corr2d, pair

Shape = Sequence[int]

# 6.3: ``comp_conv2d`` runs the framework's own conv layer on an input of this size.
COMP_CONV2D_INPUT = (8, 8)
# The book's four calls, (kernel_size, padding, stride), and the shape it prints for each.
COMP_CONV2D_CASES: dict[str, tuple[Any, Any, Any, tuple[int, int]]] = {
    "k3_p1": (3, 1, 1, (8, 8)),
    "k5x3_p2x1": ((5, 3), (2, 1), 1, (8, 8)),
    "k3_p1_s2": (3, 1, 2, (4, 4)),
    "k3x5_p0x1_s3x4": ((3, 5), (0, 1), (3, 4), (2, 2)),
}

# 6.4: the two-channel input and kernel of figure 6.4.1, and what the book prints.
MULTI_IN_X = [[[0.0, 1.0, 2.0], [3.0, 4.0, 5.0], [6.0, 7.0, 8.0]], [[1.0, 2.0, 3.0], [4.0, 5.0, 6.0], [7.0, 8.0, 9.0]]]
MULTI_IN_K = [[[0.0, 1.0], [2.0, 3.0]], [[1.0, 2.0], [3.0, 4.0]]]
MULTI_IN_Y = [[56.0, 72.0], [104.0, 120.0]]
# corr2d_multi_in_out(X, stack((K, K + 1, K + 2))):
MULTI_IN_OUT_Y = [[[56.0, 72.0], [104.0, 120.0]], [[76.0, 100.0], [148.0, 172.0]], [[96.0, 128.0], [192.0, 224.0]]]

# 6.5: the book's 3x3 input for its pooling loop, and what it prints for (2, 2) windows.
POOL_X = [[0.0, 1.0, 2.0], [3.0, 4.0, 5.0], [6.0, 7.0, 8.0]]
POOL_MAX = [[4.0, 5.0], [7.0, 8.0]]
POOL_AVG = [[2.0, 3.0], [5.0, 6.0]]
MODES = ("max", "avg")
# The framework layers' calls on X = arange(16) as (1, 1, 4, 4): keyword arguments of max_pool2d, printed result.
MAX_POOL_CASES: dict[str, tuple[dict[str, Any], list[list[float]]]] = {
    "k3": ({"kernel_size": 3}, [[10.0]]),
    "k3_p1_s2": ({"kernel_size": 3, "padding": 1, "stride": 2}, [[5.0, 7.0], [13.0, 15.0]]),
    "k2x3_p0x1_s2x3": ({"kernel_size": (2, 3), "padding": (0, 1), "stride": (2, 3)}, [[5.0, 7.0], [13.0, 15.0]]),
}
# With a second channel X + 1, the k3_p1_s2 call prints this for that channel.
SECOND_CHANNEL_MAX = [[6.0, 8.0], [14.0, 16.0]]


def pool_input(channels: int = 1) -> np.ndarray:
    """The book's pooling input: arange(16) as (1, 1, 4, 4); with 2 channels, X and X + 1 concatenated."""
    X = np.arange(16, dtype=np.float32).reshape(1, 1, 4, 4)
    return np.concatenate([X + c for c in range(channels)], axis=1)


def check_comp_conv2d(kernel_size: Any, padding: Any, stride: Any) -> tuple[Pair, Pair, Pair, Pair]:
    """``(kernel, padding, stride, output shape)`` of ``comp_conv2d``'s arguments, each as a pair.

    The book pads symmetrically: ``padding`` is an int or a pair (ph, pw), rows on top and bottom.
    """
    kernel, pads, strides = pair(kernel_size, "kernel_size"), pair(padding, "padding", 0), pair(stride, "stride")
    out = conv_output_size(COMP_CONV2D_INPUT, kernel, strides, pads)
    if min(out) < 1:
        raise ValueError(f"kernel_size {kernel} does not fit in the {COMP_CONV2D_INPUT} input padded by {pads}")
    return kernel, pads, strides, out


def check_multi_in(x_shape: Shape, k_shape: Shape) -> tuple[int, int]:
    """Check X (c, h, w) against K (c, kh, kw); return the output shape (oh, ow)."""
    _check_3d(x_shape, "X")
    _check_3d(k_shape, "K", "(channels, kernel height, kernel width)")
    _check_channels(x_shape[0], k_shape[0], "K", "corr2d_multi_in")
    return check_corr2d(x_shape[1:], k_shape[1:])


def check_multi_in_out(x_shape: Shape, k_shape: Shape) -> tuple[int, int, int]:
    """Check X (c, h, w) against K (co, c, kh, kw); return the output shape (co, oh, ow)."""
    _check_3d(x_shape, "X")
    _check_4d_kernel(k_shape)
    _check_channels(x_shape[0], k_shape[1], "K[i]", "corr2d_multi_in_out")
    return (int(k_shape[0]), *check_corr2d(x_shape[1:], k_shape[2:]))


def check_multi_in_out_1x1(x_shape: Shape, k_shape: Shape) -> tuple[int, int, int]:
    """Check X (c, h, w) against a 1x1 kernel K (co, c, 1, 1); return the output shape (co, h, w)."""
    _check_3d(x_shape, "X")
    _check_4d_kernel(k_shape)
    if tuple(k_shape[2:]) != (1, 1):
        raise ValueError(
            f"K must be a 1x1 kernel (out channels, in channels, 1, 1), got shape {tuple(k_shape)}; "
            "corr2d_multi_in_out takes larger kernels"
        )
    _check_channels(x_shape[0], k_shape[1], "K[i]", "corr2d_multi_in_out_1x1")
    return int(k_shape[0]), int(x_shape[1]), int(x_shape[2])


def check_pool2d(x_shape: Shape, pool_size: Any, mode: str) -> tuple[int, int]:
    """Check ``pool2d``'s arguments; return the window (ph, pw)."""
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    check_2d(x_shape, "X")
    window = pair(pool_size, "pool_size")
    if window[0] > x_shape[0] or window[1] > x_shape[1]:
        raise ValueError(f"pool_size {window} is larger than X of shape {tuple(x_shape)}")
    return window


def _check_3d(shape: Shape, name: str, layout: str = "(channels, height, width)") -> None:
    if len(shape) != 3:
        raise ValueError(f"{name} must be 3-D {layout}, got {len(shape)}-D shape {tuple(shape)}")
    if shape[0] == 0:
        raise ValueError(f"{name} has no channels (shape {tuple(shape)}); it needs at least one")


def _check_4d_kernel(shape: Shape) -> None:
    if len(shape) != 4:
        raise ValueError(
            "K must be 4-D (out channels, in channels, kernel height, kernel width), "
            f"got {len(shape)}-D shape {tuple(shape)}"
        )
    if shape[0] == 0:
        raise ValueError(f"K has no output channels (shape {tuple(shape)}); it needs at least one")


def _check_channels(x_channels: int, k_channels: int, kernel: str, op: str) -> None:
    if x_channels != k_channels:
        raise ValueError(
            f"X has {x_channels} channels but {kernel} has {k_channels}; "
            f"{op} needs one kernel channel per input channel"
        )
