"""The parity checks of the book's sections, one module per section named like the book module
(``conv_layer`` for 6.2, ``ops``, ``padding_channels_pooling`` for 6.3-6.5, ``lenet`` for 6.6,
``modern_nets`` for 7.1-7.7's shapes, ``batch_norm`` for 7.5, ``resnet`` for 7.6, and ``porting``). Each defines
``parity_checks() -> list[ParityCheck]``: what a backend's worker computes through the public API, and how
it is compared with the NumPy reference."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

# Tolerances of a float32 comparison (|value - reference| <= atol + rtol * |reference|), and of float64.
RTOL, ATOL = 1e-4, 1e-5
RTOL64, ATOL64 = 1e-10, 1e-12


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
