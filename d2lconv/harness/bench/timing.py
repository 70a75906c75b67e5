"""How the bench tools time a call: wait for asynchronous results, sample until a call lasts long enough,
take medians (and, against a framework's own call, interleave the two)."""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Callable
from typing import Any

REPEAT = 7
SAMPLE_SECONDS = 0.02  # each sample repeats its call until it lasts this long
SLOW_SECONDS = 0.5  # a call slower than this gets 3 samples, not ``repeat`` (median_ms)


def block(result: Any) -> Any:
    """Wait until ``result`` (a tensor or a tuple of them) is computed: MXNet and JAX run asynchronously."""
    for item in result if isinstance(result, (tuple, list)) else (result,):
        for wait in ("wait_to_read", "block_until_ready"):
            if hasattr(item, wait):
                getattr(item, wait)()
    return result


def _sample(call: Callable[[], Any], number: int) -> float:
    start = time.perf_counter()
    for _ in range(number):
        block(call())
    return (time.perf_counter() - start) / number


def median_ms(call: Callable[[], Any], repeat: int = REPEAT) -> float:
    """The median time of one ``call`` in ms, after a warm-up call, over ``repeat`` samples."""
    block(call())
    first = _sample(call, 1)
    number = max(1, math.ceil(SAMPLE_SECONDS / max(first, 1e-9)))
    samples = [_sample(call, number) for _ in range(min(repeat, 3) if first > SLOW_SECONDS else repeat)]
    return statistics.median(samples) * 1e3


def interleaved(ours: Callable[[], Any], native: Callable[[], Any] | None, repeat: int = REPEAT) -> dict[str, Any]:
    """Median ms of ``ours`` and ``native`` from alternating samples (ABBA), and the median per-pair ratio."""
    calls = [ours] if native is None else [ours, native]
    numbers = []
    for call in calls:
        block(call())  # warm-up: caches, lazy initialisation, MXNet's and JAX's compilation
        numbers.append(max(1, math.ceil(SAMPLE_SECONDS / max(_sample(call, 1), 1e-9))))
    samples: list[list[float]] = [[] for _ in calls]
    for index in range(repeat):
        order = range(len(calls)) if index % 2 == 0 else reversed(range(len(calls)))
        for which in order:
            samples[which].append(_sample(calls[which], numbers[which]))
    ours_ms = statistics.median(samples[0]) * 1e3
    if native is None:
        return {"ours_ms": ours_ms, "native_ms": None, "ratio": None, "overhead_us": None}
    native_ms = statistics.median(samples[1]) * 1e3
    return {
        "ours_ms": ours_ms,
        "native_ms": native_ms,
        "ratio": statistics.median(a / b for a, b in zip(samples[0], samples[1], strict=True)),
        "overhead_us": (ours_ms - native_ms) * 1e3,
    }
