"""The book's data and the framework-neutral half of learning a kernel.

Dive into Deep Learning, section "Convolutions for Images": figure 6.2.1, the
edge image and kernel, and ``learn_kernel``'s arguments, seeded initial
weights and divergence check. Each backend's own ``learn_kernel`` runs the
training loop in its framework's idiom.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import numpy as np

from ..core.checks import as_float32_array, check_2d, check_same_shape, check_seed, pair

FIGURE_X = [[0.0, 1.0, 2.0], [3.0, 4.0, 5.0], [6.0, 7.0, 8.0]]
FIGURE_K = [[0.0, 1.0], [2.0, 3.0]]
FIGURE_Y = [[19.0, 25.0], [37.0, 43.0]]
LAYERS = ("builtin", "custom")
# The default lr per layer. The builtin layer (kernel only) takes the book's 0.03, below its stability
# limit 2 / 60 = 0.0333 on the edge image. The custom layer's bias gradient sums all 42 output pixels, which
# lowers the limit to 0.0161 and makes the book's 0.03 diverge: it takes 0.014, the step ``lr_advice``
# suggests (the fastest-converging one, 0.0147, rounded down), and converges (loss 5.3 to 0.18 in 10 epochs).
DEFAULT_LR = {"builtin": 3e-2, "custom": 1.4e-2}


def edge_image() -> np.ndarray:
    """The 6x8 image of the book: ones, with columns 2..5 black (zero)."""
    X = np.ones((6, 8), dtype=np.float32)
    X[:, 2:6] = 0
    return X


def edge_kernel() -> np.ndarray:
    """The 1x2 kernel [[1, -1]] that is non-zero where neighbours in a row differ."""
    return np.array([[1.0, -1.0]], dtype=np.float32)


def initial_weight(seed: int, kernel_size: tuple[int, int]) -> np.ndarray:
    """Initial kernel weights drawn from ``seed`` by NumPy, uniform in [-1, 1), float32.

    Every backend loads these into its layer, so one seed gives one loss curve.
    """
    return np.random.default_rng(seed).uniform(-1.0, 1.0, kernel_size).astype(np.float32)


def patch_index(x_shape: tuple[int, int], k_shape: tuple[int, int]) -> np.ndarray:
    """Indices into the flattened X of every kernel-sized patch, shape (out_h * out_w, kh * kw).

    With it, cross-correlation is one matrix product (the chapter's exercise):
    ``corr2d(X, K) == (X.ravel()[patch_index] @ K.ravel()).reshape(out_h, out_w)``.
    """
    (h, w), (kh, kw) = x_shape, k_shape
    rows = np.arange(h - kh + 1)[:, None, None, None] + np.arange(kh)[None, None, :, None]
    cols = np.arange(w - kw + 1)[None, :, None, None] + np.arange(kw)[None, None, None, :]
    return (rows * w + cols).reshape((h - kh + 1) * (w - kw + 1), kh * kw)


# A loss this many times its first value means SGD is diverging (lr above 2 / curvature).
DIVERGED_GROWTH = 100.0


class TrainingDivergedError(FloatingPointError):
    """The loss of ``learn_kernel`` became inf or NaN, or grew ``DIVERGED_GROWTH``-fold."""


@dataclass
class KernelFit:
    """What ``learn_kernel`` learned: one loss per epoch (before its update), the kernel, the bias."""

    losses: list[float]
    kernel: np.ndarray
    bias: float | None
    backend: str = ""
    layer: str = "builtin"
    lr: float = 3e-2
    initial_kernel: np.ndarray | None = None


def stable_lr(X: np.ndarray, kernel_size: tuple[int, int], layer: str = "builtin") -> tuple[float, float]:
    """(the largest stable SGD step, the fastest-converging one) for learning a kernel on image ``X``.

    The summed squared error ``|P w - y|^2`` is quadratic in the weights ``w`` (the kernel,
    and the bias for the custom layer), ``P`` holding X's kernel-sized patches (and a
    column of ones for the bias). Its Hessian is ``H = 2 P^T P``, whatever Y is, and SGD
    with step lr converges exactly when ``lr < 2 / max eig(H)``; the step
    ``2 / (max eig(H) + min eig(H))`` contracts the slowest and fastest directions alike.
    """
    height, width = X.shape
    patches = np.asarray(X, np.float64).ravel()[patch_index((height, width), kernel_size)]
    if layer == "custom":
        patches = np.hstack([patches, np.ones((len(patches), 1))])
    eigenvalues = np.linalg.eigvalsh(2 * patches.T @ patches)
    return 2 / eigenvalues[-1], 2 / (eigenvalues[-1] + eigenvalues[0])


def _round_down(value: float) -> float:
    """``value`` rounded down to two significant digits (a suggestion must stay below its limit)."""
    scale = 10.0 ** (math.floor(math.log10(value)) - 1)
    return math.floor(value / scale) * scale


def lr_advice(X: np.ndarray, kernel_size: tuple[int, int], layer: str, lr: float) -> str:
    """What to try after SGD diverged with ``lr``: the stability limit on this X and a step that converges."""
    limit, fastest = stable_lr(X, kernel_size, layer)
    suggestion = float(f"{_round_down(min(fastest, 0.9 * limit)):.2g}")
    if lr < limit:
        return (
            f"lr is below this loss's stability limit {limit:.3g}, so the numbers themselves overflow: "
            f"check the scale of X and Y"
        )
    return (
        f"SGD on this loss (quadratic in the weights) is stable only for lr < {limit:.3g} "
        f"(2 / the largest eigenvalue of its Hessian on this X); try lr={suggestion:g}"
    )


def learn_kernel(
    tab: ModuleType,
    X: Any = None,
    Y: Any = None,
    kernel_size: Any = (1, 2),
    lr: float | None = None,
    epochs: int = 10,
    seed: int | None = 0,
    layer: str = "builtin",
) -> KernelFit:
    """Check the arguments, seed the weights, run ``tab.learn_kernel`` and check the losses.

    ``lr=None`` takes the layer's ``DEFAULT_LR`` (the book's 0.03 without a bias, 0.014 with one).
    ``seed=None`` keeps the framework's own default initialisation, as the book does
    (each framework draws differently, so the curves differ between backends).
    """
    kernel_size = pair(kernel_size, "kernel_size")
    if layer not in LAYERS:
        raise ValueError(f"layer must be one of {LAYERS}, got {layer!r}")
    lr = DEFAULT_LR[layer] if lr is None else lr
    if not isinstance(epochs, int) or isinstance(epochs, bool) or epochs < 0:
        raise ValueError(f"epochs must be a non-negative int, got {epochs!r}")
    if not isinstance(lr, (int, float)) or not lr > 0 or not math.isfinite(lr):
        raise ValueError(f"lr must be a positive number, got {lr!r}")
    check_seed(seed)
    X = edge_image() if X is None else as_float32_array(X, "X")
    check_2d(X.shape, "X")
    if 0 in X.shape:
        raise ValueError(f"X is empty (shape {X.shape}); an image needs at least one row and one column")
    if X.shape[0] < kernel_size[0] or X.shape[1] < kernel_size[1]:
        raise ValueError(f"kernel_size {kernel_size} is larger than X of shape {X.shape}")
    if Y is None:
        if kernel_size != (1, 2):
            raise ValueError(
                f"Y is required when kernel_size is {kernel_size}: the default Y is the edge map, "
                "made by the (1, 2) edge kernel"
            )
        Y = tab.to_numpy(tab.corr2d(X, edge_kernel()))
    Y = as_float32_array(Y, "Y")
    check_same_shape(Y.shape, (X.shape[0] - kernel_size[0] + 1, X.shape[1] - kernel_size[1] + 1), "Y")
    for name, data in (("X", X), ("Y", Y)):
        if not np.isfinite(data).all():  # the loss would be NaN whatever the lr: say so, do not blame the lr
            raise ValueError(f"{name} holds NaN or inf; learn_kernel needs finite data")

    weight = None if seed is None else initial_weight(seed, kernel_size)
    bias = 0.0 if layer == "custom" else None
    with np.errstate(over="ignore", invalid="ignore"):  # a diverging run is reported below, in one message
        losses, kernel, bias = tab.learn_kernel(
            X, Y, layer, kernel_size, None if weight is None else weight.copy(), bias, float(lr), epochs
        )
    losses = [float(loss) for loss in losses]
    bad = [
        epoch
        for epoch, loss in enumerate(losses, 1)
        if not math.isfinite(loss) or loss > DIVERGED_GROWTH * max(losses[0], 1e-12)
    ]
    if bad or not np.all(np.isfinite(kernel)):
        what = (
            f"the loss became {losses[bad[0] - 1]:.4g} at epoch {bad[0]} (from {losses[0]:.4g})"
            if bad
            else f"the kernel became inf or NaN after epoch {len(losses)}"
        )
        raise TrainingDivergedError(
            f"learn_kernel diverged: {what} with lr={lr} ({layer} layer); " + lr_advice(X, kernel_size, layer, lr)
        )
    return KernelFit(
        losses,
        np.asarray(kernel, np.float32).reshape(kernel_size),
        None if bias is None else float(bias),
        tab.NAME,
        layer,
        float(lr),
        weight,
    )
