"""Data layouts: ``data_format`` (NCHW or NHWC) and what each says about data and weight shapes.

The argument normalisation reads every shape through a ``Layout``, so a backend validates
and pads the same way in either format; a channels-first tab then transposes NHWC data at
its edge, a channels-last one (TensorFlow, JAX) calls its own NHWC op as it is.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from .checks import data_format as check_data_format


@dataclass(frozen=True)
class Layout:
    """One ``data_format``: the names of its axes and where N, C, H, W (and O, I, kh, kw) sit."""

    name: str
    data: str  # the data's axes, for messages
    conv_weight: str  # a convolution weight's axes
    transposed_weight: str  # a transposed-convolution weight's axes
    data_axes: tuple[int, int, int, int]  # positions of N, C, H, W in the data
    weight_axes: tuple[int, int, int, int]  # positions of OIHW's axes in a weight (the same for both weights)

    @property
    def channels_last(self) -> bool:
        return self.name == "NHWC"

    def data_shape(self, shape: Sequence[int], name: str = "x") -> tuple[int, int, int, int]:
        """A 4-D data shape as (N, C, H, W); a ``ValueError`` naming ``name`` and the layout otherwise."""
        return _in_order(_four(shape, name, self.data, self.name), self.data_axes)

    def weight_shape(self, shape: Sequence[int], transposed: bool) -> tuple[int, int, int, int]:
        """A 4-D weight shape in OIHW order ((C_in, C_out/groups, kh, kw) for a transposed convolution)."""
        axes = self.transposed_weight if transposed else self.conv_weight
        return _in_order(_four(shape, "weight", axes, self.name), self.weight_axes)

    def other(self) -> Layout:
        return NHWC if self is NCHW else NCHW


NCHW = Layout(
    "NCHW",
    "(N, C, H, W)",
    "OIHW (C_out, C_in/groups, kh, kw)",
    "(C_in, C_out/groups, kh, kw)",
    (0, 1, 2, 3),
    (0, 1, 2, 3),
)
NHWC = Layout(
    "NHWC",
    "(N, H, W, C)",
    "HWIO (kh, kw, C_in/groups, C_out)",
    "(kh, kw, C_out/groups, C_in)",
    (0, 3, 1, 2),
    (3, 2, 0, 1),
)


def layout(data_format: str) -> Layout:
    """The ``Layout`` of a ``data_format`` (``"NCHW"``, ``"NHWC"``, ``"channels_first"``, ``"channels_last"``)."""
    return NHWC if check_data_format(data_format) == "NHWC" else NCHW


def wrong_weight_layout(weight: Sequence[int], given: Layout, transposed: bool, fits: bool) -> str:
    """A hint for a weight whose channels do not fit: which layout it looks like, when ``fits`` says the
    other format's reading of ``weight`` matches the data ("" otherwise)."""
    if not fits:
        return ""
    other = given.other()
    looks, wanted = (
        (other.transposed_weight, given.transposed_weight) if transposed else (other.conv_weight, given.conv_weight)
    )
    return (
        f"; weight {tuple(weight)} looks like {looks}, the layout of data_format={other.name!r}: "
        f"with data_format={given.name!r} the weight is {wanted}"
    )


def _four(shape: Sequence[int], name: str, axes: str, data_format: str) -> tuple[int, int, int, int]:
    shape = tuple(int(v) for v in shape)
    if len(shape) != 4:
        raise ValueError(f"{name} must be 4-D {axes}, got {len(shape)}-D shape {shape} (data_format={data_format!r})")
    return shape


def _in_order(shape: tuple[int, int, int, int], axes: tuple[int, int, int, int]) -> tuple[int, int, int, int]:
    return shape[axes[0]], shape[axes[1]], shape[axes[2]], shape[axes[3]]
