"""Section 7.6's parity row, the narrow ResNet that trains on the digits (the book's half: ``d2lconv.book.resnet``).

Its first 10 losses, not 50 as LeNet's and BN-LeNet's: this float32 network of ReLUs and max poolings has
points where a window's maximum or a ReLU is tied to within rounding, and there another framework's
rounding takes the other branch. On the first 800 digits PyTorch and Paddle part from NumPy at step 14 and
Gluon at 36 (NumPy itself, its weights moved by 1e-7, at step 16 or 33); up to step 10 every backend agrees
to float32 rounding. The running statistics are left to the tests: PyTorch's own BatchNorm layer, which the
tab trains, keeps the unbiased batch variance where NumPy's keeps the biased one.
"""

from __future__ import annotations

from typing import Any

import d2lconv as dc

from ....book import resnet
from ....book.lenet import LOSS_RTOL
from . import ParityCheck

STEPS, TEST_IMAGES = 10, 64


def first_losses() -> dict[str, Any]:
    """The ResNet's first ``STEPS`` minibatch losses from seed 0 (one epoch of ``STEPS`` minibatches)."""
    data, images = dc.digits(), STEPS * resnet.BATCH_SIZE
    small = dc.Digits(data.train_x[:images], data.train_y[:images], data.test_x[:TEST_IMAGES],
                      data.test_y[:TEST_IMAGES])  # fmt: skip
    return {"losses": dc.train("resnet", epochs=1, data=small).losses}


def training_parity_checks() -> list[ParityCheck]:
    """Section 7.6-training: the narrow ResNet's first 10 losses, relative 1e-3."""
    return [ParityCheck("resnet_losses", first_losses, rtol=LOSS_RTOL)]
