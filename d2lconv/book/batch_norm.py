"""Batch normalisation (d2l-en 8.5, d2l-zh 7.5), the framework-neutral half: checks, conventions, samples.

Each tab's ``batch_norm.py`` writes the book's from-scratch ``batch_norm`` and its ``BatchNorm``
layer in that framework's idiom. What is the same for all of them lives here:

- one momentum convention across d2lconv: **PyTorch's, the weight of the new batch**, so
  ``moving = (1 - momentum) * moving + momentum * batch`` (d2l-en's PyTorch, MXNet and
  TensorFlow tabs write it so; ``BOOK_MOMENTUM`` says what each tab of the book means). Keras,
  Gluon's ``nn.BatchNorm``, Paddle and Flax take the weight kept on the old value instead
  (each framework's ``FrameworkFacts.batch_norm`` in the registry says which; ``momentum_kept`` converts).
- the moving variance is updated with the batch's biased variance, as the book's function
  does (PyTorch's own ``nn.BatchNorm2d`` uses the unbiased one there).
- the checks every tab shares: the same ``ValueError`` on every backend.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import numpy as np

from ..core.facts import FrameworkFacts

# The book's epsilon (d2l-en's MXNet tab writes 1e-12; every other tab 1e-5) and d2lconv's momentum.
EPS, MOMENTUM = 1e-5, 0.1
# Who means what by "momentum": the weight of the "new" batch, or the weight the running value keeps ("kept").
# The book's from-scratch functions as each of its tabs writes them.
BOOK_MOMENTUM: dict[str, str] = {
    "d2l-en from scratch (PyTorch, MXNet, TensorFlow tabs)": "new",
    "d2l-en from scratch (JAX tab)": "kept",
    "d2l-zh from scratch (every tab)": "kept",
}


def momentum_conventions(frameworks: Iterable[FrameworkFacts]) -> dict[str, str]:
    """Who means what by "momentum": d2lconv, the book's tabs, then each framework's own layer as its
    facts say (``frameworks``: the registry's and ONNX's, from the caller: the book sits below them)."""
    own = {f"{facts.display}'s own layer": facts.batch_norm.momentum for facts in frameworks}
    return {"d2lconv": "new", **BOOK_MOMENTUM, **own}


def stat_shape(num_features: int, num_dims: int, channels_last: bool = False) -> tuple[int, ...]:
    """The book's parameter shape: (1, C) after a dense layer, (1, C, 1, 1) after a convolution
    ((1, 1, 1, C) where the framework keeps channels last)."""
    check_layer(num_features, num_dims)
    if num_dims == 2:
        return (1, num_features)
    return (1, 1, 1, num_features) if channels_last else (1, num_features, 1, 1)


def check_layer(num_features: Any, num_dims: Any) -> None:
    """The arguments of ``BatchNorm(num_features, num_dims)``."""
    if isinstance(num_features, bool) or not isinstance(num_features, int | np.integer) or num_features < 1:
        raise ValueError(f"BatchNorm: num_features must be a positive int, got {num_features!r}")
    if num_dims not in (2, 4) or isinstance(num_dims, bool):
        raise ValueError(
            f"BatchNorm: num_dims must be 2 (after a dense layer) or 4 (after a convolution), got {num_dims!r}"
        )


def check_batch_norm(
    x_shape: tuple[int, ...],
    shapes: dict[str, tuple[int, ...]],
    eps: Any,
    momentum: Any,
    channel_axis: int = 1,
) -> int:
    """Check ``batch_norm``'s arguments; return the channel count C.

    X is (N, C) or (N, C, H, W) (C last where ``channel_axis=-1``); gamma, beta, moving_mean and
    moving_var each hold C values, in any shape (the book's (1, C, 1, 1) or a plain (C,)).
    """
    if len(x_shape) not in (2, 4):
        raise ValueError(f"batch_norm: X must be (N, C) or (N, C, H, W), got shape {tuple(x_shape)}")
    channels = x_shape[channel_axis]
    for name, shape in shapes.items():
        if math.prod(shape) != channels or sum(n != 1 for n in shape) > 1:
            raise ValueError(
                f"batch_norm: {name} must hold one value per channel ({channels}), got shape {tuple(shape)}"
            )
    if isinstance(eps, bool) or not isinstance(eps, int | float | np.floating) or not eps > 0 or not math.isfinite(eps):
        raise ValueError(f"batch_norm: eps must be a positive number, got {eps!r}")
    if isinstance(momentum, bool) or not isinstance(momentum, int | float | np.floating) or not 0 <= momentum <= 1:
        raise ValueError(
            f"batch_norm: momentum must be in [0, 1] (the weight of the new batch, PyTorch's convention), "
            f"got {momentum!r}"
        )
    return int(channels)


def batch_norm_options(
    x_shape: Any, gamma_shape: Any, beta_shape: Any, mean_shape: Any, var_shape: Any, eps: Any = EPS,
    momentum: Any = MOMENTUM, training: Any = True,
) -> tuple[float, float, bool]:  # fmt: skip
    """Check a ``batch_norm`` call (its five tensors' shapes and its options, as ``check_batch_norm``) and
    return its options as every tab's function takes them, after the tensors: ``(eps, momentum, training)``."""
    shapes = {"gamma": gamma_shape, "beta": beta_shape, "moving_mean": mean_shape, "moving_var": var_shape}
    check_batch_norm(tuple(x_shape), {name: tuple(shape) for name, shape in shapes.items()}, eps, momentum)
    return float(eps), float(momentum), bool(training)


def sample(seed: int, shape: tuple[int, ...], dtype: Any = np.float32) -> dict[str, np.ndarray]:
    """A batch X of ``shape`` (mean 3, std 2: far from what BN makes of it) and per-channel gamma, beta and
    moving statistics, each (C,), from ``seed``: the inputs the tests and parity compare backends on."""
    rng = np.random.default_rng(seed)
    channels = shape[1]
    return {
        "X": (3 + 2 * rng.standard_normal(shape)).astype(dtype),
        "gamma": rng.uniform(0.5, 1.5, channels).astype(dtype),
        "beta": rng.uniform(-0.5, 0.5, channels).astype(dtype),
        "moving_mean": rng.uniform(-1, 1, channels).astype(dtype),
        "moving_var": rng.uniform(0.5, 2, channels).astype(dtype),
    }
