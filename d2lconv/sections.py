"""The book's sections as units: each declares its own parity checks beside its code.

A section module (``d2lconv.chapter`` for 6.2, ``d2lconv.cases`` for the batched
operations, ...) defines ``parity_checks() -> list[ParityCheck]``. ``d2lconv parity``
runs every check of every module listed in ``SECTION_MODULES`` in each backend's
worker process and compares the results with the NumPy reference, so a new section
adds its module here and touches nothing in the runner.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

# Tolerances of a float32 comparison (|value - reference| <= atol + rtol * |reference|), and of float64.
RTOL, ATOL = 1e-4, 1e-5
RTOL64, ATOL64 = 1e-10, 1e-12

SECTION_MODULES: tuple[str, ...] = ("d2lconv.chapter", "d2lconv.cases", "d2lconv.porting")


@dataclass(frozen=True)
class ParityCheck:
    """One row of ``d2lconv parity``: what a worker computes, and how it is compared.

    ``compute`` runs on the active backend through d2lconv's public API and returns a
    tensor or array, a float, ``None``, or a dict of those (a dict is compared field by
    field; a ``"losses"`` field also reports its largest relative difference).
    An ``informational`` row is shown but never changes the exit code (a convention
    that legitimately differs between frameworks, such as max-pooling ties).
    """

    key: str
    compute: Callable[[], Any]
    rtol: float = RTOL
    atol: float = ATOL
    informational: bool = False


def parity_checks() -> list[ParityCheck]:
    """Every section's checks, in the order of ``SECTION_MODULES``; keys are unique."""
    checks = [check for name in SECTION_MODULES for check in importlib.import_module(name).parity_checks()]
    keys = [check.key for check in checks]
    duplicated = sorted({key for key in keys if keys.count(key) > 1})
    if duplicated:
        raise RuntimeError(f"parity check keys declared twice: {duplicated}")
    return checks
