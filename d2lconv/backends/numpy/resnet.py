"""ResNet (d2l-en 8.6, d2l-zh 7.6) in the numpy tab: the narrow ResNet of the digits in d2lconv's NumPy layers.

The network is one description (``d2lconv.book.resnet``: the book's stem, one ``Residual`` block per
stage of widths 16, 32, 64, global average pooling, a dense layer); this tab's writer builds it as
a ``Graph`` of NumPy layers, trained by their hand-derived backward passes (``BatchNorm2d``, ``Add``).
"""

from __future__ import annotations

from ...book.resnet import resnet_blocks, resnet_network
from .._shared import described
from . import layers
from .network import build_network


def ResNet(seed: int = 0, dtype: str = "float32") -> layers.Module:  # noqa: N802 - the book's name
    """The narrow ResNet with Xavier-uniform weights drawn from ``seed`` by NumPy, BatchNorm at its initial state
    (``dc.layer_summary`` prints its blocks), in ``dtype`` ("float64": ``dc.train(..., dtype="float64")``)."""
    return described(build_network(resnet_network(seed).astype(dtype)), resnet_blocks())
