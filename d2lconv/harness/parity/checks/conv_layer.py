"""Section 6.2's parity checks (the book's half: ``d2lconv.book.conv_layer``)."""

from __future__ import annotations

from typing import Any

import numpy as np

import d2lconv as dc

from ....book import conv_layer
from . import ParityCheck


def parity_checks() -> list[ParityCheck]:
    """Section 6.2's numbers on the active backend: the figure, the edge maps, the loop, the
    matrix form, autograd's gradients of ``corr2d`` and both learned loss curves (seed 0)."""
    rng = np.random.default_rng(0)
    X = rng.standard_normal((7, 9)).astype(np.float32)
    K = rng.standard_normal((3, 2)).astype(np.float32)
    grad = rng.standard_normal((5, 8)).astype(np.float32)

    def fit(layer: str, lr: float, epochs: int) -> dict[str, Any]:
        result = dc.learn_kernel(seed=0, lr=lr, epochs=epochs, layer=layer)
        return {"losses": result.losses, "kernel": result.kernel, "bias": result.bias}

    def grads() -> dict[str, Any]:
        dX, dK = dc.vjp("corr2d", X, K, grad_output=grad)
        return {"dX": dX, "dK": dK}

    computations: dict[str, Any] = {
        "figure_6_2_1": lambda: dc.corr2d(conv_layer.FIGURE_X, conv_layer.FIGURE_K),
        "edge_map": lambda: dc.corr2d(dc.edge_image(), dc.edge_kernel()),
        "transposed_edge_map": lambda: dc.corr2d(dc.to_numpy(dc.edge_image()).T, dc.edge_kernel()),
        "corr2d_loop": lambda: dc.corr2d_loop(X, K),
        "convolve2d": lambda: dc.convolve2d(X, K),
        "corr2d_matmul": lambda: dc.corr2d_matmul(X, K),
        "corr2d_grads": grads,
        "learn_builtin": lambda: fit("builtin", 3e-2, 10),
        "learn_custom": lambda: fit("custom", 1e-2, 40),
    }
    return [ParityCheck(key, compute) for key, compute in computations.items()]
