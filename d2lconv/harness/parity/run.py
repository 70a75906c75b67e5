"""``d2lconv parity``: every backend in its own process, compared with the NumPy reference.

Frameworks collide in one process (paddle imported after tensorflow segfaults), so each backend runs
as a worker subprocess (``measure``), up to two at a time (``d2lconv.harness.runner``: timeouts,
signals, the JSON channel). A worker runs every section's ``parity_checks()``
(``d2lconv.harness.parity.sections``) through the public API and writes one JSON object on the
runner's result channel. The reference is the numpy backend, run as a worker like the others (same
code path). A check that raises in a worker is recorded as that check's error (``{"error":
"..."}``), the rest of the backend still counts.

Three layers: this module computes (the worker) and runs; ``d2lconv.harness.parity.compare``
compares, a pure function of the recorded results, with each check's own tolerances
(``|value - reference| <= atol + rtol * |reference|``); ``d2lconv.harness.parity.render``
shows the report to a person.

``d2lconv parity --json`` prints the report documented in docs/api.md ("JSON reports").
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

import d2lconv as dc

from ... import backends
from .. import runner
from . import onnx_reference, sections
from .compare import REFERENCE, build_report, entry

DEFAULT_TIMEOUT = 300.0
JOBS = 2
# JAX's worker is the longest by far: XLA compiles every shape of every case once (the ops section alone,
# about 250 calls on tiny inputs, is most of it). Started first, it runs beside all the others. On the fast
# sections, where compiling is nearly all the work, ``backends.FAST_COMPILE`` (XLA's LLVM optimisation
# level 0) halves JAX's time without changing any compared value (measured: 139 s -> 67 s on a loaded
# machine, the same largest difference from NumPy); the long sections keep the optimised code (LeNet's
# epochs take twice as long at level 0).
FIRST = ("jax",)
# The thread counts of OpenMP (torch, paddle, MXNet), MKL and OpenBLAS (NumPy), and TensorFlow's pools.
THREAD_VARIABLES = (
    "OMP_NUM_THREADS",
    "MKL_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "TF_NUM_INTRAOP_THREADS",
    "TF_NUM_INTEROP_THREADS",
)


def result_keys(only: Sequence[str] | None = None) -> list[str]:
    """The keys of every section's parity checks (or of the sections ``only`` names), in report order."""
    return [check.key for check in sections.parity_checks(only)]


# --- the worker: one backend, in its own process ---------------------------------------------------------------


def _plain(value: Any) -> Any:
    """A tensor, array or fit as plain JSON (nested lists of floats)."""
    if isinstance(value, dict):
        return {name: _plain(item) for name, item in value.items()}
    if value is None or isinstance(value, float):
        return value
    return dc.to_numpy(value).astype(np.float64).tolist()


def compute_results(name: str, only: Sequence[str] | None = None) -> dict[str, Any]:
    """Every result of backend ``name`` (of the sections ``only`` names, if given) as plain JSON;
    a failing computation becomes ``{"error": ...}``. Each section is announced as it starts and ends
    (``runner.step_started``/``step_done``): the progress shown, and what a timeout names."""
    results: dict[str, Any] = {}
    with dc.use_backend(name):
        for section in sections.chosen(only):
            step, start = f"section {section}", time.perf_counter()
            runner.step_started(step)
            for check in sections.SECTIONS[section]():
                try:
                    results[check.key] = _plain(check.compute())
                except Exception as error:  # recorded per check: one failing op must not hide the others
                    results[check.key] = {"error": f"{type(error).__name__}: {error}"}
            runner.step_done(step, time.perf_counter() - start)
    return results


def measure(name: str, only: Sequence[str] | None = None) -> dict[str, Any]:
    """The worker's result: backend ``name``'s version and results (of the sections ``only`` names, if given).

    Workers run ``JOBS`` at a time, so each keeps to one thread (unless the caller set a count): two
    workers' thread pools on a small machine's cores stall each other (torch's OpenMP threads most), and
    the numbers compared do not depend on it. On the fast sections JAX's compiler gets ``backends.FAST_COMPILE``.
    Set before the framework is imported, which reads them.
    """
    for variable in THREAD_VARIABLES:
        os.environ.setdefault(variable, "1")
    if name in backends.FAST_COMPILE and set(sections.chosen(only)) <= set(sections.DEFAULT_SECTIONS):
        os.environ.setdefault(*backends.FAST_COMPILE[name])
    tab = backends.load_backend(name)
    return {"backend": tab.NAME, "version": str(tab.FRAMEWORK.__version__), "results": compute_results(name, only)}


def worker_command(name: str, only: Sequence[str] | None = None) -> list[str]:
    """The command that runs backend ``name``'s parity worker (on the sections ``only`` names, if given)."""
    return runner.worker_command("parity", name, only=list(only) if only else None)


# --- running the workers --------------------------------------------------------------------------------------------


def _fields(name: str, output: dict[str, Any] | None) -> dict[str, Any]:
    """A parity entry's ``results``; a worker whose JSON has none is an error."""
    if output is None:
        return {"results": {}}
    if not isinstance(output.get("results"), dict):
        return {"status": "error", "detail": "the worker's JSON has no results", "results": {}}
    return {"results": output["results"]}


def run_backends(
    requested: Sequence[str] | None = None,
    *,
    installed: Sequence[str] | None = None,
    command: Callable[[str], Sequence[str]] | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    jobs: int = JOBS,
    on_start: Callable[[str], None] | None = None,
    on_done: Callable[[str, dict[str, Any]], None] | None = None,
    on_event: Callable[[str, dict[str, Any]], None] | None = None,
    only: Sequence[str] | None = None,
) -> dict[str, dict[str, Any]]:
    """Run the planned backends' workers, ``jobs`` at a time, and return the ``backends`` part of the report.

    ``command(name)`` gives a backend's worker command (default ``worker_command``, looked up at call
    time); ``on_start``/``on_event`` (a section started or done)/``on_done`` report progress from the
    worker threads.
    """
    return runner.run_backends(
        requested,
        command or (lambda name: worker_command(name, only)),
        _fields,
        timeout,
        jobs=jobs,
        always=(REFERENCE,),
        installed=installed,
        on_start=on_start,
        on_done=on_done,
        on_event=on_event,
        first=FIRST,
    )


def add_onnx_reference(entries: dict[str, dict[str, Any]], only: Sequence[str] | None = None) -> None:
    """Add ONNX Runtime's results (``onnx_reference``) to ``entries`` as the entry ``"onnxruntime"``."""
    try:
        results = onnx_reference.compute_results(only)
    except ImportError as error:
        entries[onnx_reference.NAME] = entry("missing", str(error))
        return
    entries[onnx_reference.NAME] = entry("ok", version=onnx_reference.version(), results=results)


def run_parity(requested: Sequence[str] | None = None, reference: str = REFERENCE, **options: Any) -> dict[str, Any]:
    """Run the workers (options as ``run_backends``) and compare them with ``reference`` (the NumPy
    backend, or ``"onnxruntime"``): the report of the schema."""
    entries = run_backends(requested, **options)
    if reference == onnx_reference.NAME:
        add_onnx_reference(entries, options.get("only"))
    return build_report(entries, sections.parity_checks(options.get("only")), reference)
