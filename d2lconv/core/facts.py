"""What a port needs to know about one framework, as data: ``FrameworkFacts``.

The registry (``d2lconv.backends``) declares one per backend and ``d2lconv.porting`` ONNX's; the
framework-neutral machinery (``core.plan``, ``core.conventions``) takes them as arguments and never
tests a framework's name. Plain data: reading them imports no framework.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal


@dataclass(frozen=True)
class BatchNormFacts:
    """A framework's BatchNorm conventions.

    ``momentum``: what its "momentum" weighs, ``"new"`` (the new batch, PyTorch's and d2lconv's) or
    ``"kept"`` (the running value); ``eps``: its default epsilon; ``variance``: the estimate training
    puts into the running variance, ``"unbiased"``, ``"biased"`` or ``"either"`` (NumPy's layer follows
    the description's)."""

    momentum: Literal["new", "kept"]
    eps: float
    variance: Literal["unbiased", "biased", "either"]


@dataclass(frozen=True)
class FrameworkFacts:
    """One framework's conventions and what its own layers express, for ``plan`` and ``layout_steps``.

    - ``name``: the backend's (or target's) name, ``display``: the framework as the steps name it.
    - ``layouts``: how it lays out data (``"data"``: NCHW or NHWC) and weights (``"conv2d"``, ``"linear"``,
      ``"conv_transpose2d"``) and in which order a flatten reads a feature map (``"flatten"``).
    - ``batch_norm``: its BatchNorm conventions.
    - ``conv_padding``: what padding its convolution takes: ``"explicit"`` (any, asymmetric too),
      ``"symmetric"`` (one amount per axis) or ``"valid_or_same"`` (only those two words, Keras).
    - ``same_padding``: when its convolution's ``'same'`` is the description's: ``"any"`` (always),
      ``"stride_one"`` (accepted only with stride 1), ``"ignores_dilation"`` (wrong with a dilation) or
      ``"none"`` (no 'same'); ``same_padding_why`` says why in the steps when 'same' is written out.
    - ``grouped_conv_transpose``: whether its transposed convolution takes groups.
    - ``stride_with_dilation``: whether a (transposed) convolution takes stride and dilation both above 1.
    - ``pool_padding``: what padding its pooling takes: ``"any"`` (every pooling of the description as it
      is), ``"explicit"``, ``"symmetric"`` or ``"valid_or_same"``; ``pool_padding_limit`` bounds a symmetric
      one: ``"half_kernel"`` (at most half the kernel, PyTorch) or ``"window_fits"`` (the window must fit the
      padded input, MXNet).
    - ``dilated_pooling``: whether its pooling takes a dilation.
    - ``ceil_mode``: its pooling's ceil mode: ``"drops_overhang"`` (a last window that would start in the
      padding is dropped, as the description does), ``"keeps_overhang"`` (kept) or ``"none"`` (no ceil
      mode). A target with explicit pooling padding gets the overhang written out as padding instead.
    - ``adaptive_pooling``: whether it has an adaptive average pooling layer (else a plain one is used).
    - ``float32_constants``: the layer kinds whose op takes a constant as a float32 attribute (leaky ReLU's
      slope, BatchNorm's epsilon), so that in a float64 network they compute with it rounded to float32.
    """

    name: str
    display: str
    layouts: Mapping[str, str]
    batch_norm: BatchNormFacts
    conv_padding: Literal["explicit", "symmetric", "valid_or_same"]
    same_padding: Literal["any", "stride_one", "ignores_dilation", "none"]
    pool_padding: Literal["any", "explicit", "symmetric", "valid_or_same"]
    ceil_mode: Literal["drops_overhang", "keeps_overhang", "none"]
    adaptive_pooling: bool
    same_padding_why: str = ""
    pool_padding_limit: Literal["half_kernel", "window_fits"] | None = None
    dilated_pooling: bool = False
    grouped_conv_transpose: bool = True
    stride_with_dilation: bool = True
    float32_constants: tuple[str, ...] = ()


CHANNELS_FIRST: Mapping[str, str] = {
    "data": "NCHW",
    "conv2d": "OIHW",
    "linear": "(out, in)",
    "conv_transpose2d": "(in, out/groups, kh, kw)",
    "flatten": "CHW",
}
"""The layouts of d2lconv's description (NumPy's and PyTorch's), which most channels-first frameworks share."""
