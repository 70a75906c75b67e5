"""The book's sections as units: each declares its own parity checks beside its code.

A section module (``d2lconv.book.conv_layer`` for 6.2, ``d2lconv.book.ops`` for the batched
operations, ...) defines ``parity_checks() -> list[ParityCheck]``. ``d2lconv parity``
runs every check of every section listed in ``SECTIONS`` in each backend's
worker process and compares the results with the NumPy reference, so a new section
adds its module here and touches nothing in the runner.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

# Tolerances of a float32 comparison (|value - reference| <= atol + rtol * |reference|), and of float64.
RTOL, ATOL = 1e-4, 1e-5
RTOL64, ATOL64 = 1e-10, 1e-12

# Each section's short name (``d2lconv parity --sections``) and where its checks are declared:
# ``module`` (its ``parity_checks()``) or ``module:function``.
SECTIONS: dict[str, str] = {
    "6.2": "d2lconv.book.conv_layer",
    "ops": "d2lconv.book.ops",
    "6.3-6.5": "d2lconv.book.padding_channels_pooling",
    "6.6": "d2lconv.book.lenet",
    "6.6-training": "d2lconv.book.lenet:training_parity_checks",
    "porting": "d2lconv.porting",
}


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


def _declared(where: str) -> list[ParityCheck]:
    module, _, function = where.partition(":")
    declared: list[ParityCheck] = getattr(importlib.import_module(module), function or "parity_checks")()
    return declared


def check_sections(names: Sequence[str]) -> list[str]:
    """``names`` as section names of ``SECTIONS``; a ``ValueError`` naming an unknown one and listing them."""
    unknown = [name for name in names if name not in SECTIONS]
    if unknown:
        raise ValueError(f"unknown section {unknown[0]!r}; sections: {', '.join(SECTIONS)}")
    return list(names)


def parity_checks(only: Sequence[str] | None = None) -> list[ParityCheck]:
    """The checks of every section (or of the sections ``only`` names), in the order of ``SECTIONS``;
    keys are unique."""
    chosen = [where for name, where in SECTIONS.items() if only is None or name in check_sections(only)]
    checks = [check for where in chosen for check in _declared(where)]
    keys = [check.key for check in checks]
    duplicated = sorted({key for key in keys if keys.count(key) > 1})
    if duplicated:
        raise RuntimeError(f"parity check keys declared twice: {duplicated}")
    return checks
