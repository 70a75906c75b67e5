"""The batched ops' parity checks, from the samples of ``d2lconv.book.ops``."""

from __future__ import annotations

import functools
from typing import Any

import numpy as np

import d2lconv as dc

from ....book import ops as book
from . import ATOL64, RTOL64, ParityCheck

INPUT_NAMES = ("x", "weight", "bias")


def run_case(case: book.Case, dtype: Any = np.float32) -> Any:
    """``case``'s op on its inputs, through the public API of the active backend."""
    return getattr(dc, case.op)(*case.inputs(dtype), **case.kwargs)


def run_vjp(case: book.Case, dtype: Any = np.float32) -> dict[str, Any]:
    """The gradients of ``case`` (``dc.vjp`` with its seeded ``grad_output``), keyed x, weight, bias."""
    inputs = case.inputs(dtype)
    grads = dc.vjp(case.op, *inputs, grad_output=case.grad_output(dtype), **case.kwargs)
    return dict(zip(INPUT_NAMES, grads, strict=False))


def run_float64(case: book.Case) -> dict[str, Any]:
    """The forward values and the gradients of ``case`` in float64."""
    return {"y": run_case(case, np.float64), **run_vjp(case, np.float64)}


def max_pool_ties() -> dict[str, Any]:
    """Where the active backend's max pooling sends the gradient of windows with tied maxima, plain and
    dilated. The reference (and torch) gives it all to the first maximum in row-major order."""
    return {
        f"dilation{d}": dc.vjp("max_pool2d", book.tie_windows(d), kernel_size=2, stride=d + 1, dilation=d)[0]
        for d in (1, 2)
    }


def parity_checks() -> list[ParityCheck]:
    """Per case: the forward values (``"<op>/<name>"``), the gradients in float32 (``.../grad``)
    and both again in float64 within 1e-10 (``.../float64``); then the max-pooling tie rule,
    informational (frameworks legitimately differ)."""
    checks: list[ParityCheck] = []
    for case in book.CASES:
        checks += [
            ParityCheck(case.key, functools.partial(run_case, case)),
            ParityCheck(f"{case.key}/grad", functools.partial(run_vjp, case)),
            ParityCheck(f"{case.key}/float64", functools.partial(run_float64, case), rtol=RTOL64, atol=ATOL64),
        ]
    return [*checks, ParityCheck("max_pool2d/ties", max_pool_ties, informational=True)]
