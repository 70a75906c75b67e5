"""LeNet (d2l 6.6), the framework-neutral half: the network, the data, the training driver, parity.

One seed draws every initial weight (the book's Xavier uniform, zero biases) and the
minibatch order through NumPy. ``lenet_network(seed)`` describes the network as data
(``d2lconv.core.network``); each tab's writer ``build_network`` turns it into the framework's
own layers, in that framework's layouts and flatten order. ``train_lenet`` checks the
data, then runs plain minibatch SGD on the cross-entropy: the loop over epochs and
minibatches is here, the update of one minibatch is the tab's ``Trainer.step`` (autograd
and the framework's optimizer, or NumPy's hand-derived backward pass). So one seed gives
one loss curve on every backend.
"""

from __future__ import annotations

import functools
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import resources
from types import ModuleType
from typing import Any, NamedTuple

import numpy as np

from ..core.checks import float_dtype, is_int, to_array
from ..core.network import Layer, Network
from .conv_layer import TrainingDivergedError

IMAGE_SHAPE = (1, 28, 28)
NUM_CLASSES = 10
# Defaults for the bundled digits, chosen by a sweep on torch (README, "LeNet"). The sigmoid network
# starts on a plateau at chance level: each sigmoid layer squeezes the input-dependent part of its
# input, so the logits barely depend on the image, and plain SGD needs about 550 steps to leave it.
# lr 2 on minibatches of 32 leaves it in the fewest steps (lr 3 or more saturates the sigmoids and stays;
# minibatches of 8 or 16 are noisier and slower per image); with seed 0 test accuracy passes 95 %
# after about 25 epochs and stays at 96.7-97.2 % to epoch 30. The book's batch of 256 gives 1,438
# images only 6 steps an epoch.
EPOCHS, LR, BATCH_SIZE = 30, 2.0, 32
# Steps of the loss curve that ``d2lconv parity`` compares across backends, at a relative 1e-3.
PARITY_STEPS, LOSS_RTOL = 50, 1e-3
# A loss above this many times chance level (ln 10) means SGD is diverging.
DIVERGED_OVER_CHANCE = 10.0
# Measured with the defaults (seed 0, the same curve on every backend): test accuracy stays at chance
# (0.10) for the first 12 epochs, rises from epoch 13 and first passes 95 % at epoch 25.
PLATEAU_EPOCHS, EPOCHS_TO_95 = 12, 25


def at_chance(accuracy: float) -> bool:
    """Whether an accuracy on the 10 digits is chance level (below twice 1/10): the plateau not yet left."""
    return accuracy < 2 / NUM_CLASSES


class Digits(NamedTuple):
    """Images (N, 1, 28, 28) float32 and labels (N,) int64, split into fixed train and test sets."""

    train_x: np.ndarray
    train_y: np.ndarray
    test_x: np.ndarray
    test_y: np.ndarray


@dataclass
class LeNetFit:
    """What ``train_lenet`` measured: the loss of every minibatch step (before its update), the
    training accuracy of each epoch (over its minibatches, as the book counts it), the test
    accuracy after each epoch, and the wall time of the training steps alone (no evaluation)."""

    losses: list[float]
    train_acc: list[float]
    test_acc: list[float]
    seconds: float
    backend: str = ""
    lr: float = LR
    batch_size: int = BATCH_SIZE
    model: Any = field(default=None, repr=False)


# --- the data --------------------------------------------------------------------------------------------------


def bilinear_matrix(size_in: int, size_out: int) -> np.ndarray:
    """The (size_out, size_in) matrix of 1-D linear interpolation with half-pixel centres.

    As ``torch.nn.functional.interpolate(mode="bilinear", align_corners=False)``: output
    pixel ``i`` samples the input at ``(i + 0.5) * size_in / size_out - 0.5``, clamped to
    the image. An image is upsampled as ``A @ image @ A.T``.
    """
    source = np.clip((np.arange(size_out) + 0.5) * size_in / size_out - 0.5, 0, size_in - 1)
    left = np.floor(source).astype(int)
    right = np.minimum(left + 1, size_in - 1)
    weight = source - left
    matrix = np.zeros((size_out, size_in))
    np.add.at(matrix, (np.arange(size_out), left), 1 - weight)
    np.add.at(matrix, (np.arange(size_out), right), weight)
    return matrix


@functools.lru_cache(maxsize=1)
def _digits() -> Digits:
    with resources.files("d2lconv.book.data").joinpath("digits.npz").open("rb") as file, np.load(file) as stored:
        arrays = {name: stored[name] for name in stored.files}
    upsample = bilinear_matrix(8, IMAGE_SHAPE[1])
    train = upsample @ arrays["train_images"].astype(np.float64) @ upsample.T
    test = upsample @ arrays["test_images"].astype(np.float64) @ upsample.T
    mean, std = train.mean(), train.std()
    return Digits(
        ((train - mean) / std).astype(np.float32)[:, None],
        arrays["train_labels"].astype(np.int64),
        ((test - mean) / std).astype(np.float32)[:, None],
        arrays["test_labels"].astype(np.int64),
    )


def digits() -> Digits:
    """scikit-learn's 8x8 handwritten digits (UCI, CC BY 4.0), bundled: 1,438 training and 359 test images.

    Each image is upsampled bilinearly (half-pixel centres) from 8x8 to 28x28, and all
    pixels are standardised with the mean and standard deviation of the training set:
    with raw pixels in [0, 16] a sigmoid LeNet under plain SGD stays at chance level.
    The split is fixed (stratified, 20 % of each digit held out). Fresh copies every call.
    """
    return Digits(*(array.copy() for array in _digits()))


def check_data(data: Any) -> Digits:
    """The user's ``(train_x, train_y, test_x, test_y)`` as ``Digits``; raises before any training.

    Images: numbers, shape (N, 1, 28, 28) or (N, 28, 28); labels: integers 0..9, one per image.
    """
    if not isinstance(data, tuple | list) or len(data) != 4:
        length = f" of length {len(data)}" if isinstance(data, tuple | list) else ""
        raise TypeError(f"data must be a tuple (train_x, train_y, test_x, test_y), got {type(data).__name__}{length}")
    arrays: list[np.ndarray] = []
    for split, x, y in (("train", data[0], data[1]), ("test", data[2], data[3])):
        x, y = to_array(x), to_array(y)
        x_name, y_name = f"{split}_x", f"{split}_y"
        if x.dtype.kind not in "biuf":
            raise TypeError(f"{x_name} must hold real numbers, got {x.dtype} data")
        if x.ndim == 3:
            x = x[:, None]
        if x.ndim != 4 or x.shape[1:] != IMAGE_SHAPE:
            raise ValueError(f"{x_name} must have shape (N, 1, 28, 28) or (N, 28, 28), got {x.shape}")
        if not np.all(np.isfinite(x)):
            raise ValueError(f"{x_name} holds inf or NaN")
        if y.dtype.kind not in "biu" and not (y.dtype.kind == "f" and np.all(y == np.round(y))):
            raise TypeError(f"{y_name} must hold integer class labels, got {y.dtype} data")
        if y.shape != (len(x),):
            raise ValueError(f"{y_name} must have one label per image: shape ({len(x)},), got {y.shape}")
        if len(x) == 0:
            raise ValueError(f"{x_name} is empty")
        if y.min() < 0 or y.max() >= NUM_CLASSES:
            raise ValueError(f"{y_name} must hold labels 0..{NUM_CLASSES - 1}, got values from {y.min()} to {y.max()}")
        arrays += [np.ascontiguousarray(x, dtype=np.float32), y.astype(np.int64)]
    return Digits(*arrays)


# --- the network and the minibatches, from one seed ------------------------------------------------------------


def xavier_uniform(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    """Glorot and Bengio's uniform init for a (out, in, ...) weight, as ``torch.nn.init.xavier_uniform_``."""
    receptive = math.prod(shape[2:])
    bound = math.sqrt(6.0 / (shape[1] * receptive + shape[0] * receptive))
    return rng.uniform(-bound, bound, shape).astype(np.float32)


def _seeds(seed: int) -> tuple[np.random.Generator, np.random.Generator]:
    """Independent generators for the initial weights and for the minibatch order."""
    weights, order = np.random.SeedSequence(seed).spawn(2)
    return np.random.default_rng(weights), np.random.default_rng(order)


def lenet_network(seed: int = 0) -> Network:
    """The book's LeNet-5 as a ``Network``: Xavier-uniform weights from ``seed``, zero biases."""
    rng = _seeds(seed)[0]

    def conv(c_in: int, c_out: int, pad: int) -> Layer:
        return Layer(
            "conv2d",
            {
                "in_channels": c_in,
                "out_channels": c_out,
                "kernel_size": (5, 5),
                "stride": (1, 1),
                "padding": (pad, pad, pad, pad),
                "dilation": (1, 1),
                "groups": 1,
                "bias": True,
            },
            {"weight": xavier_uniform(rng, (c_out, c_in, 5, 5)), "bias": np.zeros(c_out, np.float32)},
        )

    def pool() -> Layer:
        return Layer(
            "avg_pool2d",
            {
                "kernel_size": (2, 2),
                "stride": (2, 2),
                "padding": (0, 0, 0, 0),
                "ceil_mode": False,
                "count_include_pad": True,
            },
        )

    def linear(n_in: int, n_out: int) -> Layer:
        return Layer(
            "linear",
            {"in_features": n_in, "out_features": n_out, "bias": True},
            {"weight": xavier_uniform(rng, (n_out, n_in)), "bias": np.zeros(n_out, np.float32)},
        )

    sigmoid = functools.partial(Layer, "sigmoid")
    return Network(
        IMAGE_SHAPE,
        [
            conv(1, 6, 2),
            sigmoid(),
            pool(),
            conv(6, 16, 0),
            sigmoid(),
            pool(),
            Layer("flatten"),
            linear(16 * 5 * 5, 120),
            sigmoid(),
            linear(120, 84),
            sigmoid(),
            linear(84, NUM_CLASSES),
        ],
    )


def minibatches(seed: int, num_examples: int, batch_size: int, epochs: int) -> list[list[np.ndarray]]:
    """Per epoch, the indices of each minibatch: a fresh shuffle from ``seed``; the last batch may be short."""
    rng = _seeds(seed)[1]
    return [
        np.array_split(order, range(batch_size, num_examples, batch_size))
        for order in (rng.permutation(num_examples) for _ in range(epochs))
    ]


# --- training ---------------------------------------------------------------------------------------------------


def _positive(value: Any, name: str, integer: bool) -> None:
    ok = is_int(value) if integer else isinstance(value, int | float) and not isinstance(value, bool)
    if not ok or not value > 0 or not math.isfinite(value):
        raise ValueError(f"{name} must be a positive {'int' if integer else 'number'}, got {value!r}")


def evaluate_accuracy(tab: ModuleType, net: Any, X: np.ndarray, y: np.ndarray) -> float:
    """The fraction of images whose largest logit (``tab.run_network``) is their label."""
    return float(np.mean(tab.run_network(net, X).argmax(1) == y))


def train_lenet(
    tab: ModuleType,
    data: Any = None,
    epochs: int = EPOCHS,
    lr: float | None = None,
    batch_size: int | None = None,
    seed: int = 0,
    on_epoch: Callable[[int, LeNetFit], None] | None = None,
    on_step: Callable[[int, int, int, float], None] | None = None,
) -> LeNetFit:
    """Check everything, build the seeded LeNet in ``tab``'s framework, train it by minibatch SGD.

    ``on_epoch(epoch, fit)`` is called after each epoch (1, 2, ...) with the fit so far;
    ``on_step(epoch, step, steps, loss)`` after each minibatch (step 1..steps of that epoch).
    """
    return fit_network(tab, tab.LeNet, data, epochs, LR if lr is None else lr, batch_size, seed, on_epoch, on_step)


def fit_network(
    tab: ModuleType,
    build: Callable[[int], Any],
    data: Any,
    epochs: int,
    lr: float,
    batch_size: int | None,
    seed: int,
    on_epoch: Callable[[int, LeNetFit], None] | None = None,
    on_step: Callable[[int, int, int, float], None] | None = None,
    dtype: str = "float32",
) -> LeNetFit:
    """``train_lenet``'s loop for any seeded network ``build(seed)`` of ``tab`` (``d2lconv.train``'s too); the
    images go in as ``dtype``, which ``build`` makes the network's."""
    batch_size = BATCH_SIZE if batch_size is None else batch_size
    _positive(epochs, "epochs", integer=True)
    _positive(lr, "lr", integer=False)
    _positive(batch_size, "batch_size", integer=True)
    if not is_int(seed) or seed < 0:
        raise ValueError(f"seed must be a non-negative int, got {seed!r}")
    dtype = float_dtype("float32", dtype)  # a ValueError naming dtype unless "float32" or "float64"
    data = digits() if data is None else check_data(data)
    data = data._replace(train_x=data.train_x.astype(dtype), test_x=data.test_x.astype(dtype))

    trainer = tab.Trainer(build(seed), float(lr))
    fit = LeNetFit([], [], [], 0.0, tab.NAME, float(lr), batch_size)
    for epoch, batches in enumerate(minibatches(seed, len(data.train_y), batch_size, epochs), 1):
        correct = 0
        start = time.perf_counter()
        for step, index in enumerate(batches, 1):
            loss, right = trainer.step(data.train_x[index], data.train_y[index])
            fit.losses.append(loss)
            correct += right
            if on_step is not None:
                on_step(epoch, step, len(batches), loss)
        fit.seconds += time.perf_counter() - start
        diverged = [
            loss
            for loss in fit.losses[-len(batches) :]
            if not math.isfinite(loss) or loss > DIVERGED_OVER_CHANCE * math.log(NUM_CLASSES)
        ]
        if diverged:
            raise TrainingDivergedError(
                f"training {getattr(build, '__name__', 'the network')} diverged: the loss reached {diverged[0]:.4g} "
                f"in epoch {epoch} "
                f"with lr={lr}; try a smaller lr, e.g. {lr / 3:.2g}"
            )
        fit.train_acc.append(correct / len(data.train_y))
        fit.model = trainer.net
        fit.test_acc.append(evaluate_accuracy(tab, trainer.net, data.test_x, data.test_y))
        if on_epoch is not None:
            on_epoch(epoch, fit)
    return fit
