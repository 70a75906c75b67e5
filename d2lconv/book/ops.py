"""The batched operations' samples, declared once (as PyTorch's OpInfo does).

Each ``Case`` is one call of ``conv2d``, ``conv_transpose2d``, ``max_pool2d`` or
``avg_pool2d`` on seeded NCHW inputs. The same declarations drive ``d2lconv parity``
(forward values, gradients and float64 on every backend, and all of them again with
the inputs in NHWC, ``data_format="NHWC"``) and the tests, so a new sample is one line here.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..core.args import conv2d_args, conv_transpose2d_args, pool2d_args

SEED = 0


@dataclass(frozen=True)
class Case:
    """One batched operation: ``op(x, [weight, bias,] **kwargs)`` on seeded NCHW inputs.

    ``weight`` is OIHW for conv2d and (C_in, C_out/groups, kh, kw) for conv_transpose2d;
    ``bias`` adds one value per output channel. Pooling cases have no weight.
    """

    op: str
    name: str
    x: tuple[int, int, int, int]
    weight: tuple[int, int, int, int] | None = None
    bias: bool = False
    kwargs: dict[str, Any] = field(default_factory=dict)

    @property
    def key(self) -> str:
        """The result key, ``"<op>/<name>"``."""
        return f"{self.op}/{self.name}"

    def inputs(self, dtype: Any = np.float32) -> list[np.ndarray | None]:
        """The positional arguments, drawn from ``SEED`` and the key (so reordering changes nothing);
        float32 by default, or the same draws in ``dtype``."""
        rng = np.random.default_rng([SEED, zlib.crc32(self.key.encode())])
        x = rng.standard_normal(self.x).astype(dtype)
        if self.weight is None:
            return [x]
        weight = rng.standard_normal(self.weight).astype(dtype)
        channels = self.weight[0] if self.op == "conv2d" else self.weight[1] * self.kwargs.get("groups", 1)
        bias = rng.standard_normal(channels).astype(dtype) if self.bias else None
        return [x, weight, bias]

    def output_shape(self) -> tuple[int, ...]:
        """The shape of the op's output, from the shared argument normalisation (no backend needed)."""
        n, c = self.x[:2]
        if self.weight is None:  # pooling
            pooling = {name: value for name, value in self.kwargs.items() if name != "count_include_pad"}
            return (n, c, *pool2d_args(self.x, **pooling).out_hw)
        if self.op == "conv2d":
            return (n, self.weight[0], *conv2d_args(self.x, self.weight, None, **self.kwargs).out_hw)
        args = conv_transpose2d_args(self.x, self.weight, None, **self.kwargs)
        return (n, args.out_channels, *args.out_hw)

    def grad_output(self, dtype: Any = np.float32) -> np.ndarray:
        """A seeded gradient of the output, for the vector-Jacobian product of ``run_vjp``."""
        rng = np.random.default_rng([SEED, zlib.crc32(f"{self.key}/grad_output".encode())])
        return rng.standard_normal(self.output_shape()).astype(dtype)


# Names: k kernel, s stride, p padding, d dilation, op output_padding (AxB: height x width).
CASES: tuple[Case, ...] = (
    Case("conv2d", "k3_bias", (2, 3, 7, 8), (4, 3, 3, 3), bias=True),
    Case("conv2d", "s2_p1", (2, 3, 7, 8), (4, 3, 3, 3), kwargs={"stride": 2, "padding": 1}),
    Case("conv2d", "s2x1_p1x2", (1, 2, 9, 7), (3, 2, 3, 2), kwargs={"stride": (2, 1), "padding": (1, 2)}),
    Case("conv2d", "p_asymmetric_bias", (1, 2, 6, 7), (3, 2, 3, 3), bias=True, kwargs={"padding": ((1, 2), (0, 3))}),
    Case("conv2d", "valid", (1, 3, 6, 6), (2, 3, 2, 4), kwargs={"padding": "valid"}),
    Case("conv2d", "same_s2", (2, 3, 7, 8), (4, 3, 4, 3), kwargs={"padding": "same", "stride": 2}),
    Case("conv2d", "same_d2", (1, 2, 8, 9), (3, 2, 3, 3), kwargs={"padding": "same", "dilation": 2}),
    Case("conv2d", "d2_p2", (1, 2, 9, 9), (2, 2, 3, 3), kwargs={"dilation": 2, "padding": 2}),
    Case("conv2d", "groups2_p1_bias", (2, 4, 6, 6), (6, 2, 3, 3), bias=True, kwargs={"groups": 2, "padding": 1}),
    Case("conv2d", "depthwise_s2", (1, 4, 6, 7), (4, 1, 3, 3), kwargs={"groups": 4, "stride": 2}),
    Case("conv_transpose2d", "k3_bias", (2, 3, 4, 5), (3, 2, 3, 3), bias=True),
    Case(
        "conv_transpose2d",
        "s2_p1_op1",
        (1, 3, 4, 4),
        (3, 2, 3, 3),
        kwargs={"stride": 2, "padding": 1, "output_padding": 1},
    ),
    Case(
        "conv_transpose2d",
        "s2x3_p0x1_op1x2",
        (1, 2, 3, 4),
        (2, 3, 3, 2),
        kwargs={"stride": (2, 3), "padding": (0, 1), "output_padding": (1, 2)},
    ),
    Case(
        "conv_transpose2d",
        "groups2_s2_op1_bias",
        (1, 4, 4, 4),
        (4, 3, 3, 3),
        bias=True,
        kwargs={"groups": 2, "stride": 2, "output_padding": 1},
    ),
    Case("conv_transpose2d", "d2_p1", (1, 2, 4, 5), (2, 2, 3, 3), kwargs={"dilation": 2, "padding": 1}),
    Case("max_pool2d", "k2", (2, 3, 6, 8), kwargs={"kernel_size": 2}),
    Case("max_pool2d", "k3_s2_ceil", (2, 3, 7, 8), kwargs={"kernel_size": 3, "stride": 2, "ceil_mode": True}),
    Case(
        "max_pool2d",
        "k2_s2_p1_ceil",
        (1, 2, 5, 6),
        kwargs={"kernel_size": 2, "stride": 2, "padding": 1, "ceil_mode": True},
    ),
    Case("max_pool2d", "k3_p2", (1, 2, 5, 6), kwargs={"kernel_size": 3, "stride": 1, "padding": 2}),
    Case(
        "max_pool2d", "k3_s2_d2_p1", (1, 2, 9, 8), kwargs={"kernel_size": 3, "stride": 2, "dilation": 2, "padding": 1}
    ),
    Case("max_pool2d", "same_s2", (1, 3, 7, 8), kwargs={"kernel_size": 3, "stride": 2, "padding": "same"}),
    Case("avg_pool2d", "k2", (2, 3, 6, 8), kwargs={"kernel_size": 2}),
    Case(
        "avg_pool2d",
        "k3_s2_p1_include_pad",
        (2, 3, 7, 8),
        kwargs={"kernel_size": 3, "stride": 2, "padding": 1, "count_include_pad": True},
    ),
    Case(
        "avg_pool2d",
        "k3_s2_p1_exclude_pad",
        (2, 3, 7, 8),
        kwargs={"kernel_size": 3, "stride": 2, "padding": 1, "count_include_pad": False},
    ),
    Case(
        "avg_pool2d",
        "k3_s2_p2_ceil_include_pad",
        (1, 2, 8, 7),
        kwargs={"kernel_size": 3, "stride": 2, "padding": 2, "ceil_mode": True, "count_include_pad": True},
    ),
    Case(
        "avg_pool2d",
        "k3_s2_p2_ceil_exclude_pad",
        (1, 2, 8, 7),
        kwargs={"kernel_size": 3, "stride": 2, "padding": 2, "ceil_mode": True, "count_include_pad": False},
    ),
    Case(
        "avg_pool2d",
        "k2_s2_p1_ceil",
        (1, 2, 5, 6),
        kwargs={"kernel_size": 2, "stride": 2, "padding": 1, "ceil_mode": True},
    ),
)


# NCHW -> NHWC, and OIHW -> HWIO (the same axes take (C_in, C_out/groups, kh, kw) to (kh, kw, C_out/groups, C_in));
# a bias has one axis in both formats.
TO_CHANNELS_LAST = {"x": (0, 2, 3, 1), "weight": (2, 3, 1, 0), "bias": (0,)}
TO_CHANNELS_FIRST = {"x": (0, 3, 1, 2), "weight": (3, 2, 0, 1), "bias": (0,)}


def channels_last(array: np.ndarray | None, name: str = "x") -> np.ndarray | None:
    """An input (or result, for ``"x"``) ``name`` of a case in the NHWC format's layout, contiguous."""
    return None if array is None else np.ascontiguousarray(np.transpose(array, TO_CHANNELS_LAST[name]))


def channels_first(array: np.ndarray | None, name: str = "x") -> np.ndarray | None:
    """An input, result or gradient in the NHWC format's layout back in the NCHW one."""
    return None if array is None else np.transpose(array, TO_CHANNELS_FIRST[name])


# Where the maxima of each 2x2 window tie: six windows, (row, column) of the equal maxima in each.
TIES = (
    ((0, 0), (0, 1)),
    ((0, 0), (1, 0)),
    ((0, 0), (1, 1)),
    ((0, 1), (1, 0)),
    ((1, 0), (1, 1)),
    ((0, 0), (0, 1), (1, 0), (1, 1)),
)


def tie_windows(dilation: int = 1) -> np.ndarray:
    """An image of the six 2x2 windows of ``TIES`` side by side (taps ``dilation`` apart): the tied
    maxima are 1, everything else 0. ``max_pool2d(kernel_size=2, stride=dilation + 1)`` sees each once."""
    span = dilation + 1
    x = np.zeros((1, 1, span, span * len(TIES)), np.float32)
    for window, places in enumerate(TIES):
        for row, col in places:
            x[0, 0, row * dilation, span * window + col * dilation] = 1.0
    return x
