"""``d2lconv bench``: the book's loop vs our ``corr2d`` vs each framework's own convolution.

Each backend is measured in its own fresh worker process, one at a time (two at
once would share the two cores and skew the timings): ``measure`` times loading the
backend (importing its framework), then, on square float32 images with a 3x3 kernel, ``corr2d_loop`` (small sizes only:
it is slow), ``corr2d`` and ``native_corr2d`` (the framework's own convolution
called directly; ``scipy.signal.correlate2d`` for NumPy). Every time is the median
over repeated samples after a warm-up call; the ratios come from the same run.
``import d2lconv`` is timed in fresh interpreters, which also check that it
imports no framework. Workers inherit the environment: on a busy machine,
``OMP_NUM_THREADS=1 d2lconv bench`` gives steadier single-threaded figures.

``d2lconv bench --json`` prints the report documented in docs/api.md ("JSON reports").
"""

from __future__ import annotations

import functools
import json
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from ... import backends
from .. import runner
from .targets import IMPORT_LIMIT_MS, KERNEL, corr2d_targets
from .timing import REPEAT, median_ms

DEFAULT_SIZES = (32, 64, 128, 256, 512, 1024)
LOOP_MAX_SIZE = 64
DEFAULT_TIMEOUT = 600.0
METHODS = ("corr2d_loop", "corr2d", "native_corr2d")
HEAVY_MODULES = ("torch", "tensorflow", "keras", "mxnet", "paddle", "scipy", "matplotlib")
BENCH_HINT = 'pip install "d2lconv[bench]"'  # SciPy, for numpy's native column, and rich


# --- the worker: one backend, in its own process ---------------------------------------------------------------


def measure(
    name: str, sizes: Sequence[int], loop_max_size: int = LOOP_MAX_SIZE, repeat: int = REPEAT
) -> dict[str, Any]:
    """Load backend ``name`` (timed) and time its three methods at every size; a raising method is recorded."""
    start = time.perf_counter()
    tab = backends.load_backend(name)
    import_ms = (time.perf_counter() - start) * 1e3
    rng = np.random.default_rng(0)
    K = tab.tensor(rng.random(KERNEL, dtype=np.float32))
    timings, errors = [], {}
    for size in sizes:
        X = tab.tensor(rng.random((size, size), dtype=np.float32))
        row: dict[str, Any] = {"size": size}
        for method in METHODS:
            row[f"{method}_ms"] = None
            if method in errors or (method == "corr2d_loop" and size > loop_max_size):
                continue
            try:
                row[f"{method}_ms"] = median_ms(functools.partial(getattr(tab, method), X, K), repeat)
            except ModuleNotFoundError as error:  # numpy's native_corr2d is SciPy's, an optional dependency
                errors[method] = f"needs {(error.name or 'scipy').split('.')[0]}: {BENCH_HINT}"
            except Exception as error:  # recorded: the other methods and sizes still count
                errors[method] = f"{type(error).__name__}: {error}"
        timings.append(row)
    return {
        "backend": tab.NAME,
        "version": str(tab.FRAMEWORK.__version__),
        "import_ms": import_ms,
        "timings": timings,
        "errors": errors,
    }


IMPORT_PROBE = (
    "import json, sys, time\n"
    "start = time.perf_counter()\n"
    "import numpy\n"
    "middle = time.perf_counter()\n"
    "import d2lconv\n"
    "end = time.perf_counter()\n"
    "print(json.dumps({'ms': (end - start) * 1e3, 'numpy_ms': (middle - start) * 1e3,\n"
    "                  'heavy_modules': sorted(m for m in %r if m in sys.modules)}))\n"
)


def import_time(runs: int = 5, timeout: float = 60.0) -> dict[str, Any]:
    """``import d2lconv`` in ``runs`` fresh interpreters: the median ms (NumPy's share apart) and any heavy
    module it pulled in."""
    probes = []
    for _ in range(runs):
        done = subprocess.run(
            [sys.executable, "-c", IMPORT_PROBE % (HEAVY_MODULES,)],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=True,
        )
        probes.append(json.loads(done.stdout))
    ms = statistics.median(probe["ms"] for probe in probes)
    heavy = sorted({module for probe in probes for module in probe["heavy_modules"]})
    return {
        "ms": ms,
        "numpy_ms": statistics.median(probe["numpy_ms"] for probe in probes),
        "heavy_modules": heavy,
        "target_ms": IMPORT_LIMIT_MS,
        "met": ms < IMPORT_LIMIT_MS and not heavy,
    }


# --- the report ---------------------------------------------------------------------------------------------------


def _ratio(numerator: float | None, denominator: float | None) -> float | None:
    return numerator / denominator if numerator is not None and denominator else None


def with_ratios(timings: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The timing rows with ``corr2d_over_native`` and ``loop_over_corr2d`` added."""
    return [
        {
            **row,
            "corr2d_over_native": _ratio(row["corr2d_ms"], row["native_corr2d_ms"]),
            "loop_over_corr2d": _ratio(row["corr2d_loop_ms"], row["corr2d_ms"]),
        }
        for row in timings
    ]


def run_bench(
    requested: Sequence[str] | None = None,
    sizes: Sequence[int] = DEFAULT_SIZES,
    loop_max_size: int = LOOP_MAX_SIZE,
    repeat: int = REPEAT,
    timeout: float = DEFAULT_TIMEOUT,
    on_start: Callable[[str], None] | None = None,
    on_done: Callable[[str, dict[str, Any]], None] | None = None,
) -> dict[str, Any]:
    """Measure ``import d2lconv``, then each planned backend in its own worker, one at a time: the report."""

    def fields(name: str, output: dict[str, Any] | None) -> dict[str, Any]:
        output = output or {}
        return {
            "import_ms": output.get("import_ms"),
            "timings": with_ratios(output.get("timings", [])),
            "errors": output.get("errors", {}),
        }

    options = {"sizes": list(sizes), "loop_max_size": loop_max_size, "repeat": repeat}
    entries = runner.run_backends(
        requested,
        lambda name: runner.worker_command("corr2d", name, **options),
        fields,
        timeout,
        on_start=on_start,
        on_done=on_done,
    )
    return {
        "config": {"sizes": list(sizes), "kernel": list(KERNEL), "loop_max_size": loop_max_size, "repeat": repeat},
        "import_d2lconv": import_time(),
        "backends": entries,
        "targets": corr2d_targets(entries),
        "exit_code": runner.exit_code(entries),
    }
