"""A sequential network as framework-neutral data: what LeNet's weight loading and ``port`` share.

A ``Network`` is an input shape and a list of ``Layer``s. Each layer has a kind, its
arguments normalised as the ops normalise them, and its weights as NumPy arrays in
d2lconv's layouts (convolution OIHW, transposed convolution (C_in, C_out/groups, kh, kw),
dense (out, in)). Data is NCHW and a flatten takes C, H, W in that order (torch's),
whatever the framework. Each tab has one writer (``build_network``: Network -> the
framework's own layers, weights loaded, layouts and flatten order handled) and one
reader (``read_network``: the framework's network -> Network), so porting A to B is B's
writer after A's reader.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

# The layer kinds and the arguments each carries (``args`` keys). Spatial arguments are
# pairs; padding is (top, bottom, left, right) or "same" (d2lconv's SAME_UPPER).
KINDS: dict[str, tuple[str, ...]] = {
    "conv2d": ("in_channels", "out_channels", "kernel_size", "stride", "padding", "dilation", "groups", "bias"),
    "conv_transpose2d": ("in_channels", "out_channels", "kernel_size", "stride", "padding", "output_padding",
                         "dilation", "groups", "bias"),
    "max_pool2d": ("kernel_size", "stride", "padding", "dilation", "ceil_mode"),
    "avg_pool2d": ("kernel_size", "stride", "padding", "ceil_mode", "count_include_pad"),
    "zero_pad2d": ("padding",),
    "flatten": (),
    "linear": ("in_features", "out_features", "bias"),
    "relu": (),
    "sigmoid": (),
    "tanh": (),
}


@dataclass
class Layer:
    """One layer: its kind (a key of ``KINDS``), normalised arguments, and weights (NumPy, d2lconv layouts)."""

    kind: str
    args: dict[str, Any] = field(default_factory=dict)
    weights: dict[str, np.ndarray] = field(default_factory=dict)


@dataclass
class Network:
    """A sequential network on inputs of shape (C, H, W)."""

    input_shape: tuple[int, int, int]
    layers: list[Layer]
