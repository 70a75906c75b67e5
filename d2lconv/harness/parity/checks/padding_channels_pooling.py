"""Sections 6.3 to 6.5's parity checks (the book's half: ``d2lconv.book.padding_channels_pooling``)."""

from __future__ import annotations

from typing import Any

import numpy as np

import d2lconv as dc

from ....book import padding_channels_pooling as book
from . import ParityCheck


def parity_checks() -> list[ParityCheck]:
    """Every number sections 6.3 to 6.5 print, on the active backend, and the 1x1 form on seeded data."""
    rng = np.random.default_rng(0)
    X = rng.standard_normal((3, 3, 3)).astype(np.float32)
    K = rng.standard_normal((2, 3, 1, 1)).astype(np.float32)
    K3 = np.stack([np.asarray(book.MULTI_IN_K) + i for i in range(3)]).astype(np.float32)

    computations: dict[str, Any] = {
        f"comp_conv2d/{name}": (lambda args=args: np.array(dc.comp_conv2d(*args[:3]), np.float64))
        for name, args in book.COMP_CONV2D_CASES.items()
    }
    computations |= {
        "corr2d_multi_in/book": lambda: dc.corr2d_multi_in(book.MULTI_IN_X, book.MULTI_IN_K),
        "corr2d_multi_in_out/book": lambda: dc.corr2d_multi_in_out(book.MULTI_IN_X, K3),
        "corr2d_multi_in_out_1x1/seeded": lambda: dc.corr2d_multi_in_out_1x1(X, K),
        "pool2d/max": lambda: dc.pool2d(book.POOL_X, (2, 2)),
        "pool2d/avg": lambda: dc.pool2d(book.POOL_X, (2, 2), "avg"),
    }
    computations |= {
        f"max_pool2d/book_{name}": (lambda kwargs=kwargs: dc.max_pool2d(book.pool_input(), **kwargs))
        for name, (kwargs, _) in book.MAX_POOL_CASES.items()
    }
    computations["max_pool2d/book_two_channels"] = lambda: dc.max_pool2d(book.pool_input(2), 3, padding=1, stride=2)
    return [ParityCheck(key, compute) for key, compute in computations.items()]
