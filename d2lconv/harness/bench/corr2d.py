"""``d2lconv bench``: the book's loop vs our ``corr2d`` vs each framework's own convolution.

Each backend is measured in its own fresh worker process, one at a time (two at
once would share the two cores and skew the timings): ``python -m d2lconv.harness.bench.corr2d
--worker NAME ...`` times loading the backend (importing its framework), then,
on square float32 images with a 3x3 kernel, ``corr2d_loop`` (small sizes only:
it is slow), ``corr2d`` and ``native_corr2d`` (the framework's own convolution
called directly; ``scipy.signal.correlate2d`` for NumPy). Every time is the median
over repeated samples after a warm-up call; the ratios come from the same run.
``import d2lconv`` is timed in fresh interpreters, which also check that it
imports no framework. Workers inherit the environment: on a busy machine,
``OMP_NUM_THREADS=1 d2lconv bench`` gives steadier single-threaded figures.

``d2lconv bench --json`` prints::

    {
      "config": {"sizes": [32, 64], "kernel": [3, 3], "loop_max_size": 64, "repeat": 7},
      "import_d2lconv": {"ms": 80.0, "numpy_ms": 65.0, "heavy_modules": [], "target_ms": 150.0, "met": true},
      "backends": {                  # every backend of d2lconv.BACKENDS, in that order
        "numpy": {
          "status": "ok", "detail": "", "version": "1.26.4", "seconds": 2.0,   # as in ``parity``
          "import_ms": 1.2,          # loading the backend: its framework and adapter (for tensorflow
                                     #  also paddle, which the registry imports first when installed)
          "timings": [{"size": 32, "corr2d_loop_ms": 2.1, "corr2d_ms": 0.01, "native_corr2d_ms": 0.02,
                       "corr2d_over_native": 0.5, "loop_over_corr2d": 210.0}, ...],   # null: not run
          "errors": {}               # method -> "<type>: <message>" for a method that raised
        }, ...
      },
      "targets": [{"backend": "numpy", "ratio": "corr2d_over_native", "size": 512, "value": 0.3,
                   "limit": 0.5, "met": true}, ...],   # limit: at most for corr2d_over_native, at least for loop
      "exit_code": 0                 # 2 when a requested backend is missing, crashed, timed out or failed
    }
"""

from __future__ import annotations

import argparse
import functools
import json
import math
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from ... import backends
from ...cli.args import (
    add_backends_option,
    add_timeout_option,
    int_at_least,
    non_negative_int,
    plot_path,
    positive_int,
)
from .. import runner
from ..console import has_rich, outcome, progress
from ..runner import FAILED
from . import lenet as bench_lenet
from . import ops as bench_ops

DEFAULT_SIZES = (32, 64, 128, 256, 512, 1024)
KERNEL = (3, 3)
LOOP_MAX_SIZE = 64
REPEAT = 7
DEFAULT_TIMEOUT = 600.0
SAMPLE_SECONDS = 0.02  # each sample repeats the call until it lasts this long
SLOW_SECONDS = 0.5  # a call slower than this gets 3 samples, not ``repeat``
METHODS = ("corr2d_loop", "corr2d", "native_corr2d")
HEAVY_MODULES = ("torch", "tensorflow", "keras", "mxnet", "paddle", "scipy", "matplotlib")
# Targets: corr2d / native at 512 at most 1.5 (NumPy: 0.5, twice as fast as scipy); loop / corr2d at 64
# at least 100; ``import d2lconv`` under 150 ms.
NATIVE_SIZE, NATIVE_LIMIT, NUMPY_NATIVE_LIMIT = 512, 1.5, 0.5
LOOP_SIZE, LOOP_LIMIT = 64, 100.0
IMPORT_LIMIT_MS = 150.0
NATIVE_NOTE = "native: the framework's own convolution (numpy: scipy.signal.correlate2d)"
BENCH_HINT = 'pip install "d2lconv[bench]"'  # SciPy, for numpy's native column, and rich


# --- the worker: one backend, in its own process ---------------------------------------------------------------


def block(result: Any) -> Any:
    """Wait until ``result`` is computed: MXNet and JAX run asynchronously (``bench_ops.block``)."""
    return bench_ops.block(result)


def median_ms(call: Callable[[], Any], repeat: int = REPEAT) -> float:
    """The median time of one ``call`` in ms, after a warm-up call, over ``repeat`` samples."""
    block(call())
    start = time.perf_counter()
    block(call())
    first = time.perf_counter() - start
    number = max(1, math.ceil(SAMPLE_SECONDS / max(first, 1e-9)))
    samples = []
    for _ in range(min(repeat, 3) if first > SLOW_SECONDS else repeat):
        start = time.perf_counter()
        for _ in range(number):
            block(call())
        samples.append((time.perf_counter() - start) / number)
    return statistics.median(samples) * 1e3


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


def worker_command(name: str, sizes: Sequence[int], loop_max_size: int, repeat: int) -> list[str]:
    """The command that runs backend ``name``'s bench worker."""
    return [
        sys.executable,
        "-m",
        "d2lconv.harness.bench.corr2d",
        "--worker",
        name,
        "--sizes",
        *map(str, sizes),
        "--loop-max",
        str(loop_max_size),
        "--repeat",
        str(repeat),
    ]


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


def targets(entries: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """The speed targets of every measured backend, at the sizes that were run."""
    found = []
    for name, entry in entries.items():
        rows = {row["size"]: row for row in entry.get("timings", [])}
        native_limit = NUMPY_NATIVE_LIMIT if name == "numpy" else NATIVE_LIMIT
        for ratio, size, limit, at_most in (
            ("corr2d_over_native", NATIVE_SIZE, native_limit, True),
            ("loop_over_corr2d", LOOP_SIZE, LOOP_LIMIT, False),
        ):
            value = rows.get(size, {}).get(ratio)
            if value is not None:
                found.append(
                    {
                        "backend": name,
                        "ratio": ratio,
                        "size": size,
                        "value": value,
                        "limit": limit,
                        "met": value <= limit if at_most else value >= limit,
                    }
                )
    return found


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
    decisions = runner.plan(requested, backends.available_backends())
    entries: dict[str, dict[str, Any]] = {
        name: {
            "status": decision,
            "detail": runner.skip_detail(decision, name),
            "version": None,
            "seconds": None,
            "import_ms": None,
            "timings": [],
            "errors": {},
        }
        for name, decision in decisions.items()
        if decision != "run"
    }

    def done(name: str, run: runner.WorkerRun) -> None:
        output = run.output if isinstance(run.output, dict) else {}
        entries[name] = {
            "status": run.status,
            "detail": run.detail,
            "version": output.get("version"),
            "seconds": run.seconds,
            "import_ms": output.get("import_ms"),
            "timings": with_ratios(output.get("timings", [])),
            "errors": output.get("errors", {}),
        }
        if on_done:
            on_done(name, entries[name])

    runner.run_planned(
        decisions,
        lambda name: worker_command(name, sizes, loop_max_size, repeat),
        timeout,
        jobs=1,
        on_start=on_start,
        on_done=done,
    )
    failed = any(entry["status"] in FAILED for entry in entries.values())
    return {
        "config": {"sizes": list(sizes), "kernel": list(KERNEL), "loop_max_size": loop_max_size, "repeat": repeat},
        "import_d2lconv": import_time(),
        "backends": {name: entries[name] for name in backends.BACKENDS},
        "targets": targets(entries),
        "exit_code": 2 if failed else 0,
    }


def bench_command(args: argparse.Namespace) -> int:
    """``d2lconv bench``: measure, then print a table or JSON, and write the plot if asked."""
    if args.ops:
        return bench_ops.ops_command(args)
    if not args.json and not has_rich():
        return 2
    names = runner.to_run(runner.plan(args.backends, backends.available_backends()))
    with progress(names, "measuring") as (start, finish):
        report = run_bench(
            args.backends,
            args.size,
            args.loop_max,
            args.repeat,
            args.timeout,
            on_start=start,
            on_done=lambda name, entry: finish(name, outcome(entry)),
        )
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        from rich.console import Console

        from .render import render_corr2d

        render_corr2d(report, Console())
    if args.plot:
        from .render import plot_corr2d

        plot_corr2d(report, args.plot)
        print(f"wrote {args.plot}", file=sys.stderr)
    return int(report["exit_code"])


def add_parser(commands: Any) -> None:
    """Register ``d2lconv bench`` on the CLI's subcommands."""
    kernel = f"{KERNEL[0]}x{KERNEL[1]}"
    summary = f"time the book's loop, corr2d and the native conv per backend ({kernel} kernel)"
    parser = commands.add_parser(
        "bench",
        help=summary,
        description=f"Time, per backend and in its own process, the book's loop, our corr2d and the framework's "
        f"own convolution on square float32 N x N images with a {kernel} kernel; medians after a "
        f"warm-up. NumPy's native column is SciPy's correlate2d: {BENCH_HINT}.",
        epilog="exit codes: 0 measured; 2 a requested backend is missing, crashed or timed out, or a bad argument",
    )
    parser.add_argument(
        "--size",
        type=int_at_least(max(KERNEL), f"an integer >= {max(KERNEL)}, the kernel's size"),
        nargs="+",
        default=list(DEFAULT_SIZES),
        metavar="N",
        help=f"image sizes N (N x N, at least {max(KERNEL)}) (default: {' '.join(map(str, DEFAULT_SIZES))})",
    )
    add_backends_option(parser, "backends to time (default: every installed one)")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    parser.add_argument(
        "--plot",
        type=plot_path,
        metavar="FILE",
        help="write a log-log plot of time vs size (.png added when FILE has no suffix)",
    )
    parser.add_argument(
        "--repeat", type=positive_int, default=REPEAT, metavar="R", help=f"samples per median (default: {REPEAT})"
    )
    parser.add_argument(
        "--loop-max",
        type=non_negative_int,
        default=LOOP_MAX_SIZE,
        metavar="N",
        help=f"largest size for corr2d_loop, which is slow (default: {LOOP_MAX_SIZE})",
    )
    add_timeout_option(parser, DEFAULT_TIMEOUT)
    bench_ops.add_arguments(parser)
    parser.set_defaults(run=bench_command)
    bench_lenet.add_flag(parser)


def main(argv: Sequence[str] | None = None) -> None:
    """``python -m d2lconv.harness.bench.corr2d --worker NAME --sizes N ...``: the worker process of one backend."""
    parser = argparse.ArgumentParser(prog="python -m d2lconv.harness.bench.corr2d", description=__doc__.splitlines()[0])
    parser.add_argument("--worker", required=True, metavar="NAME")
    parser.add_argument("--sizes", type=int, nargs="+", required=True)
    parser.add_argument("--loop-max", type=int, default=LOOP_MAX_SIZE)
    parser.add_argument("--repeat", type=int, default=REPEAT)
    args = parser.parse_args(argv)
    with runner.result_channel() as write:
        write(measure(args.worker, args.sizes, args.loop_max, args.repeat))


if __name__ == "__main__":
    main()
