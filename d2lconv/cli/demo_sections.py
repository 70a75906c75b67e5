"""``d2lconv demo --section 6.3|6.4|6.5|7.5|7.6``: walk one of the book's later sections in the terminal.

Each walkthrough prints what the book's section prints, computed on the chosen backend,
with a line on where the book's own tabs disagree.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from ..book import padding_channels_pooling as pcp
from ..core.args import conv_output_size, explicit_padding
from . import demo_modern

SECTIONS = ("6.3", "6.4", "6.5", "7.5", "7.6")
TITLES = {
    "6.3": "Padding and Stride",
    "6.4": "Multiple Input and Multiple Output Channels",
    "6.5": "Pooling",
    "7.5": "Batch Normalization",
    "7.6": "Residual Networks (ResNet)",
}


def _show(title: str, array: object) -> None:
    print(f"{title}\n{np.array2string(np.asarray(array), precision=4, suppress_small=True)}\n")


def padding_and_stride() -> None:
    """6.3: ``comp_conv2d`` for the book's four layers, each against the output-size formula."""
    import d2lconv as dc

    layer = dc.load_backend(dc.get_backend()).padding_channels_pooling.CONV_LAYER
    print(f"comp_conv2d runs {layer} (1 channel in, 1 out) on an 8x8 input; out = floor((n - k + 2p) / s) + 1\n")
    for kernel, padding, stride, _ in pcp.COMP_CONV2D_CASES.values():
        shape = dc.comp_conv2d(kernel, padding, stride)
        formula = conv_output_size(pcp.COMP_CONV2D_INPUT, kernel, stride, padding)
        print(f"  kernel {kernel!s:<7} padding {padding!s:<7} stride {stride!s:<7} -> {shape}  (formula {formula})")
    print(
        f"\nThe book's TensorFlow tab writes padding='valid' for the last layer and prints "
        f"{dc.comp_conv2d((3, 5), 0, (3, 4))}: 'valid' is no padding at all. Keras has no symmetric padding "
        "argument; a ZeroPadding2D layer before a 'valid' Conv2D gives the (0, 1) of the other tabs."
    )
    top, bottom, _, _ = explicit_padding("same", pcp.COMP_CONV2D_INPUT, (3, 3), (2, 2), (1, 1))
    print(
        f"Its 'same' for kernel 3, stride 2 also gives (4, 4), but pads {top} rows on top and {bottom} at the "
        "bottom where the others pad 1 and 1: the same shape, windows shifted by one row and column."
    )


def channels() -> None:
    """6.4: cross-correlation summed over input channels, one kernel per output channel, and 1x1 as a matmul."""
    import d2lconv as dc

    X, K = pcp.MULTI_IN_X, pcp.MULTI_IN_K
    _show("X, 2 channels of 3x3 =", X)
    _show("K, 2 channels of 2x2 =", K)
    _show("corr2d_multi_in(X, K): one corr2d per channel, summed =", dc.to_numpy(dc.corr2d_multi_in(X, K)))
    K3 = np.stack([np.asarray(K, np.float32) + i for i in range(3)])
    print(f"K = stack((K, K + 1, K + 2)): shape {K3.shape} (out channels, in channels, height, width)\n")
    _show("corr2d_multi_in_out(X, K) =", dc.to_numpy(dc.corr2d_multi_in_out(X, K3)))
    rng = np.random.default_rng(0)
    X1, K1 = rng.standard_normal((3, 3, 3), np.float32), rng.standard_normal((2, 3, 1, 1), np.float32)
    Y1, Y2 = dc.to_numpy(dc.corr2d_multi_in_out_1x1(X1, K1)), dc.to_numpy(dc.corr2d_multi_in_out(X1, K1))
    print(
        f"1x1 kernels: corr2d_multi_in_out_1x1 (one matrix product) vs corr2d_multi_in_out: "
        f"sum |Y1 - Y2| = {np.abs(Y1 - Y2).sum():.2e}"
    )


def pooling() -> None:
    """6.5: the book's pooling loop, the framework layers' padding and stride, and channels pooled apart."""
    import d2lconv as dc

    X = pcp.POOL_X
    _show("X =", X)
    _show("pool2d(X, (2, 2)) =", dc.to_numpy(dc.pool2d(X, (2, 2))))
    _show("pool2d(X, (2, 2), 'avg') =", dc.to_numpy(dc.pool2d(X, (2, 2), "avg")))
    X4 = pcp.pool_input()
    _show("X = arange(16) as (1, 1, 4, 4) =", X4)
    for kwargs, _ in pcp.MAX_POOL_CASES.values():
        arguments = ", ".join(f"{name}={value}" for name, value in kwargs.items())
        _show(f"max_pool2d(X, {arguments}) =", dc.to_numpy(dc.max_pool2d(X4, **kwargs)))
    _show(
        "with a second channel X + 1, max_pool2d(X, 3, padding=1, stride=2) =",
        dc.to_numpy(dc.max_pool2d(pcp.pool_input(2), 3, padding=1, stride=2)),
    )
    negative = -X4 - 1
    zero_padded = np.pad(negative, ((0, 0), (0, 0), (1, 1), (1, 1)))
    print("The book's TensorFlow and JAX tabs pad with zeros before pooling; right only for non-negative inputs.")
    _show(
        "On -X - 1: max_pool2d(X, 3, padding=1, stride=2) (padding is -inf) =",
        dc.to_numpy(dc.max_pool2d(negative, 3, padding=1, stride=2)),
    )
    _show("padding with zeros first, as those tabs do =", dc.to_numpy(dc.max_pool2d(zero_padded, 3, stride=2)))


WALKS: dict[str, Callable[[], None]] = {
    "6.3": padding_and_stride,
    "6.4": channels,
    "6.5": pooling,
    "7.5": demo_modern.batch_normalization,
    "7.6": demo_modern.resnet,
}


def walk(section: str, backend: str) -> int:
    """Print section ``section`` of the book computed on ``backend``; the exit code."""
    import d2lconv as dc

    with dc.use_backend(backend) as tab:
        print(
            f"d2lconv demo, section {section} {TITLES[section]}, on backend '{tab.NAME}' "
            f"({tab.FRAMEWORK.__name__} {tab.FRAMEWORK.__version__})\n"
        )
        WALKS[section]()
    return 0
