"""``d2lconv.train``: one loop (``lenet.fit_network``) for every network the chapters train on the digits."""

from __future__ import annotations

import functools
from collections.abc import Callable
from types import ModuleType
from typing import Any

from ..core.checks import float_dtype
from . import bn_lenet, lenet, resnet

# net -> (the tab's constructor, default epochs, lr, batch size)
NETS: dict[str, tuple[str, int, float, int]] = {
    "lenet": ("LeNet", lenet.EPOCHS, lenet.LR, lenet.BATCH_SIZE),
    "bn-lenet": ("BNLeNet", bn_lenet.EPOCHS, bn_lenet.LR, bn_lenet.BATCH_SIZE),
    "resnet": ("ResNet", resnet.EPOCHS, resnet.LR, resnet.BATCH_SIZE),
}
# the nets whose tab constructors take ``dtype`` (built from their description cast to it)
FLOAT64_NETS = ("lenet", "resnet")


def train(
    tab: ModuleType,
    net: str = "lenet",
    data: Any = None,
    epochs: int | None = None,
    lr: float | None = None,
    batch_size: int | None = None,
    seed: int = 0,
    on_epoch: Callable[[int, lenet.LeNetFit], None] | None = None,
    on_step: Callable[[int, int, int, float], None] | None = None,
    dtype: str = "float32",
) -> lenet.LeNetFit:
    """Train the seeded network ``net`` (a key of ``NETS``) on ``tab``; ``None`` takes that network's default.
    ``dtype="float64"``: the seeded weights and the images in float64 (LeNet and ResNet; BN-LeNet's from-scratch
    ``BatchNorm`` is float32)."""
    if net not in NETS:
        raise ValueError(f"net must be one of {', '.join(NETS)}, got {net!r}")
    dtype = float_dtype("float32", dtype)
    if dtype != "float32" and net not in FLOAT64_NETS:
        raise ValueError(f"dtype {dtype!r} trains {' and '.join(FLOAT64_NETS)}, not {net!r}")
    constructor, default_epochs, default_lr, default_batch = NETS[net]
    build = getattr(tab, constructor)
    return lenet.fit_network(
        tab,
        functools.partial(build, dtype=dtype) if net in FLOAT64_NETS else build,
        data,
        default_epochs if epochs is None else epochs,
        default_lr if lr is None else lr,
        default_batch if batch_size is None else batch_size,
        seed,
        on_epoch,
        on_step,
        dtype,
    )
