"""The modern CNNs (d2l-en chapter 8, d2l-zh chapter 7) in the active framework's own layers, and their shapes.

Each constructor builds one framework-neutral description (``d2lconv.book.modern_nets``) with the
active tab's graph writer ``build_network``; the model keeps a weightless copy of its description
so that ``layer_summary`` can print the book's block shapes for any input.
"""

from __future__ import annotations

from typing import Any, cast

from ..book import modern_nets
from ..core.checks import is_int
from . import active_module as _tab
from ._shared import DESCRIPTION, described


def _build(name: str, seed: int) -> Any:
    if not is_int(seed) or seed < 0:
        raise ValueError(f"seed must be a non-negative int, got {seed!r}")
    return described(_tab().build_network(modern_nets.NETWORKS[name](seed).network), modern_nets.NETWORKS[name](None))


def AlexNet(seed: int = 0) -> Any:  # noqa: N802 - the book's names
    """The book's AlexNet (first convolution padded 1, as d2l-en's PyTorch tab) in the active framework's layers."""
    return _build("AlexNet", seed)


def VGG11(seed: int = 0) -> Any:  # noqa: N802
    """The book's VGG-11 (129 million weights: its 4096-wide dense layers on 512x7x7) in the framework's layers."""
    return _build("VGG11", seed)


def NiN(seed: int = 0) -> Any:  # noqa: N802
    """The book's NiN in the active framework's layers."""
    return _build("NiN", seed)


def GoogLeNet(seed: int = 0) -> Any:  # noqa: N802
    """The book's GoogLeNet (stem padded 3 and 1, as the PyTorch tab) in the active framework's layers."""
    return _build("GoogLeNet", seed)


def ResNet18(seed: int = 0) -> Any:  # noqa: N802
    """The book's ResNet-18 (stem padded 3 and 1, as the PyTorch tab) in the active framework's layers."""
    return _build("ResNet18", seed)


def DenseNet(seed: int = 0) -> Any:  # noqa: N802
    """The book's DenseNet (growth rate 32, four blocks of four convolutions) in the active framework's layers."""
    return _build("DenseNet", seed)


def layer_summary(net: Any, input_shape: Any = None) -> list[tuple[str, tuple[int, ...]]]:
    """[(name, output shape), ...] as the book prints, shapes (C, H, W) or (features,) for one image.

    A modern CNN: the book's blocks on ``input_shape`` ((1, H, W) or (N, 1, H, W)), by default the input
    of the book's own shape-printing cell (d2l-en's: 224x224 for AlexNet, VGG and NiN, 96x96 for GoogLeNet and
    ResNet; d2l-zh prints ResNet on 224x224); DenseNet's is none, so its training size, 96x96. A LeNet: its
    layers on one 1x28x28 image (activations left out); ``input_shape`` must then be left out.
    """
    book_net = getattr(net, DESCRIPTION, None)
    if isinstance(book_net, modern_nets.BookNet):
        return book_net.summary(input_shape)
    if input_shape is not None:
        raise ValueError("input_shape is for the modern CNNs (dc.AlexNet, ...); a LeNet's summary is on 1x28x28")
    return cast(list[tuple[str, tuple[int, ...]]], _tab().layer_summary(net))
