"""Section 7.5's parity checks, batch normalisation (the book's half: ``d2lconv.book.batch_norm``, ``bn_lenet``)."""

from __future__ import annotations

import functools
from typing import Any

import numpy as np

import d2lconv as dc

from ....backends import load_backend
from ....book import batch_norm as bn
from ....book.lenet import LOSS_RTOL, PARITY_STEPS, LeNetFit
from . import ParityCheck

# The function's seeded inputs: after a dense layer (N, C) and after a convolution (N, C, H, W).
SHAPES = {"2d": (8, 5), "4d": (4, 3, 5, 6)}
NAMES = ("X", "gamma", "beta", "moving_mean", "moving_var")
# BN-LeNet on the first 800 training images and 64 test images: 25 minibatches of 32 an epoch, so two
# epochs are the 50 compared steps (LeNet's: losses within 1e-3 relative); running statistics within 1e-4.
TRAIN_IMAGES, TEST_IMAGES, EPOCHS = 800, 64, 2
STATISTICS_RTOL = 1e-4


def forward(shape: tuple[int, ...], training: bool) -> dict[str, Any]:
    """``dc.batch_norm`` on seeded float32 inputs of ``shape`` (batch mean 3, std 2), momentum 0.1 of the new
    batch: Y and the moving statistics it returns (updated in training mode, unchanged in prediction mode)."""
    X, gamma, beta, moving_mean, moving_var = bn.sample(3, shape).values()
    Y, mean, var = dc.batch_norm(X, gamma, beta, moving_mean, moving_var, bn.EPS, bn.MOMENTUM, training)
    return {"Y": Y, "moving_mean": mean, "moving_var": var}


def gradients(shape: tuple[int, ...], training: bool) -> dict[str, Any]:
    """``dc.vjp("batch_norm", ...)`` on the same inputs and a seeded output gradient: one gradient per input."""
    inputs = bn.sample(3, shape)
    grad_output = np.random.default_rng(4).standard_normal(shape).astype(np.float32)
    options = {"eps": bn.EPS, "momentum": bn.MOMENTUM, "training": training}
    grads = dc.vjp("batch_norm", *inputs.values(), grad_output=grad_output, **options)
    return dict(zip(NAMES, grads, strict=True))


def parity_checks() -> list[ParityCheck]:
    """The book's function in training and prediction mode, (N, C) and (N, C, H, W), and its gradients."""
    checks = []
    for dims, shape in SHAPES.items():
        for mode, training in (("train", True), ("predict", False)):
            checks += [
                ParityCheck(f"batch_norm/{mode}_{dims}", functools.partial(forward, shape, training)),
                ParityCheck(f"batch_norm/{mode}_{dims}/grad", functools.partial(gradients, shape, training)),
            ]
    return checks


@functools.cache
def first_steps(net: str, backend: str) -> LeNetFit:
    """``dc.train(net)`` from seed 0 on ``backend`` for the first ``PARITY_STEPS`` minibatches (once per worker:
    the losses and the running statistics are two rows with their own tolerances)."""
    data = dc.digits()
    small = dc.Digits(data.train_x[:TRAIN_IMAGES], data.train_y[:TRAIN_IMAGES], data.test_x[:TEST_IMAGES],
                      data.test_y[:TEST_IMAGES])  # fmt: skip
    with dc.use_backend(backend):
        return dc.train(net, epochs=EPOCHS, data=small)


def losses(net: str) -> dict[str, Any]:
    """The first ``PARITY_STEPS`` minibatch losses of ``net`` from seed 0, on the active backend."""
    return {"losses": first_steps(net, dc.get_backend()).losses[:PARITY_STEPS]}


def running_statistics(net: str) -> dict[str, Any]:
    """The running mean and variance of each batch normalisation of ``net`` after those steps (``mean0``, ...)."""
    name = dc.get_backend()
    result: dict[str, Any] = {}
    statistics = load_backend(name).running_statistics(first_steps(net, name).model).values()
    for index, (mean, var) in enumerate(statistics):
        result |= {f"mean{index}": mean, f"var{index}": var}
    return result


def first_steps_checks(net: str) -> list[ParityCheck]:
    """``net``'s first 50 losses (relative 1e-3) and its running statistics after them (1e-4): the tab's own
    BatchNorm layers trained by ``dc.train`` (two epochs of 800 images); rows ``<net>_losses``, ``<net>_statistics``."""
    key = net.replace("-", "_")
    return [
        ParityCheck(f"{key}_losses", functools.partial(losses, net), rtol=LOSS_RTOL),
        ParityCheck(
            f"{key}_statistics",
            functools.partial(running_statistics, net),
            rtol=STATISTICS_RTOL,
            atol=STATISTICS_RTOL / 10,
        ),
    ]


def training_parity_checks() -> list[ParityCheck]:
    """Section 7.5-training: BN-LeNet's first steps (``first_steps_checks``)."""
    return first_steps_checks("bn-lenet")
