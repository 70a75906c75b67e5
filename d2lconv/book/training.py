"""``d2lconv.train``: one loop (``lenet.fit_network``) for every network the chapters train on the digits."""

from __future__ import annotations

from collections.abc import Callable
from types import ModuleType
from typing import Any

from . import bn_lenet, lenet, resnet

# net -> (the tab's constructor, default epochs, lr, batch size)
NETS: dict[str, tuple[str, int, float, int]] = {
    "lenet": ("LeNet", lenet.EPOCHS, lenet.LR, lenet.BATCH_SIZE),
    "bn-lenet": ("BNLeNet", bn_lenet.EPOCHS, bn_lenet.LR, bn_lenet.BATCH_SIZE),
    "resnet": ("ResNet", resnet.EPOCHS, resnet.LR, resnet.BATCH_SIZE),
}


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
) -> lenet.LeNetFit:
    """Train the seeded network ``net`` (a key of ``NETS``) on ``tab``; ``None`` takes that network's default."""
    if net not in NETS:
        raise ValueError(f"net must be one of {', '.join(NETS)}, got {net!r}")
    constructor, default_epochs, default_lr, default_batch = NETS[net]
    return lenet.fit_network(
        tab,
        getattr(tab, constructor),
        data,
        default_epochs if epochs is None else epochs,
        default_lr if lr is None else lr,
        default_batch if batch_size is None else batch_size,
        seed,
        on_epoch,
        on_step,
    )
