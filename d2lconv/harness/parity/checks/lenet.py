"""Section 6.6's parity checks (the book's half: ``d2lconv.book.lenet``)."""

from __future__ import annotations

import math

import d2lconv as dc

from ....book import lenet
from . import ParityCheck

# Final test accuracy may differ by a few images after float32 rounding has compounded for 450 steps.
ACCURACY_ATOL = 0.02


def parity_checks() -> list[ParityCheck]:
    """LeNet's first 50 minibatch losses from the seeded start, relative 1e-3 (two epochs: seconds)."""
    steps_per_epoch = math.ceil(len(dc.digits().train_y) / lenet.BATCH_SIZE)
    epochs = math.ceil(lenet.PARITY_STEPS / steps_per_epoch)
    return [
        ParityCheck(
            "lenet_losses",
            lambda: {"losses": dc.train_lenet(epochs=epochs).losses[: lenet.PARITY_STEPS]},
            rtol=lenet.LOSS_RTOL,
        )
    ]


def training_parity_checks() -> list[ParityCheck]:
    """The final test accuracy of the default training, per backend (at least 0.95; within 0.02 of NumPy's)."""
    return [ParityCheck("lenet_test_acc", lambda: dc.train_lenet().test_acc[-1], rtol=0.0, atol=ACCURACY_ATOL)]
