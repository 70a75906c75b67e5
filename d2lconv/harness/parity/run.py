"""``d2lconv parity``: every backend in its own process, compared with the NumPy reference.

Frameworks collide in one process (paddle imported after tensorflow segfaults), so
each backend runs as a worker subprocess, ``python -m d2lconv.harness.parity.run --worker NAME``,
up to two at a time (``d2lconv.harness.runner``: timeouts, signals, the JSON channel). A
worker runs every section's ``parity_checks()`` (``d2lconv.harness.parity.sections``) through the
public API and writes one JSON object on the runner's result channel. The reference
is the numpy backend, run as a worker like the others (same code path). A check that
raises in a worker is recorded as that check's error (``{"error": "..."}``), the rest
of the backend still counts.

Three layers: this module computes (the worker) and runs; ``d2lconv.harness.parity.compare``
compares, a pure function of the recorded results, with each check's own tolerances
(``|value - reference| <= atol + rtol * |reference|``); ``d2lconv.harness.parity.render``
shows the report to a person.

``d2lconv parity --json`` prints this (shared with the notebooks)::

    {
      "reference": "numpy",
      "tolerance": {"rtol": 1e-4, "atol": 1e-5},
      "backends": {                      # every backend of d2lconv.BACKENDS, in that order
        "torch": {
          "status": "ok" | "not installed" | "missing" | "crashed" | "timed out" | "error",
                                          # "not installed": not requested and absent (not a failure)
                                          # "missing": requested but absent (exit 2)
          "detail": "",                   # e.g. "killed by signal SIGSEGV", the error's last line, the pip hint
          "version": "2.13.0",            # framework version or null
          "seconds": 3.1,                 # wall time of the worker process, or null
          "results": {                    # plain JSON numbers from the worker, {} unless status == ok
            "figure_6_2_1": [[19.0, 25.0], [37.0, 43.0]],
            "edge_map": [[...]],          # corr2d(edge_image(), edge_kernel()), 6x7
            "transposed_edge_map": [[...]],   # corr2d(edge_image().T, edge_kernel()), 8x5 zeros
            "corr2d_loop": [[...]],       # corr2d_loop on a seeded random 7x9 image, 3x2 kernel
            "convolve2d": [[...]],
            "corr2d_matmul": [[...]],
            "learn_builtin": {"losses": [...], "kernel": [[...]], "bias": null},   # seed 0, lr 0.03, 10 epochs
            "learn_custom": {"losses": [...], "kernel": [[...]], "bias": 0.0},     # seed 0, lr 0.01, 40 epochs
            "conv2d/<case name>": [...nested lists...],      # the batched cases (conv2d, conv_transpose2d,
            "max_pool2d/<case name>": [...],                 #  max_pool2d, avg_pool2d), seeded inputs
            ...
          }
        }, ...
      },
      "checks": [                        # one row per result key, in a stable order
        {"name": "figure_6_2_1", "cells": {"torch": {"ok": true, "max_abs_diff": 0.0}, ...}}, ...
      ],
      "agree": true,                     # every compared backend agrees with the reference
      "exit_code": 0                     # 0 agree, 1 a value differs, 2 missing/crashed/timed out
    }

Beyond that format, and compatible with it: a backend that is installed but left out
by ``--backends`` has status ``"not requested"``; ``results`` also holds
``"corr2d_grads"`` (``{"dX": ..., "dK": ...}`` by each framework's autograd); a
result the worker could not compute is ``{"error": "<type>: <message>"}``; a cell
may carry ``"error"`` (an exception, a shape mismatch) with ``max_abs_diff`` null,
and the learned-kernel rows carry ``"max_rel_diff"`` of the loss curve. ``cells``
holds the compared backends (status ok, the reference left out). A check row carries
``"tolerance": {"rtol": ..., "atol": ...}`` when its check declares tolerances other than
the report's, and ``"informational": true`` when its check is informational: such a row
is compared and shown but never changes ``agree`` or ``exit_code``.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from ... import backends
from ...cli.args import add_backends_option, add_timeout_option
from .. import runner
from ..console import has_rich, outcome, progress
from . import sections
from .compare import REFERENCE, build_report, entry

DEFAULT_TIMEOUT = 300.0
JOBS = 2
EXIT_CODES = (
    "exit codes: 0 every compared backend agrees with numpy; 1 a value differs; "
    "2 a requested backend is missing, crashed or timed out, or a bad argument"
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
    import d2lconv as dc

    return dc.to_numpy(value).astype(np.float64).tolist()


def compute_results(name: str, only: Sequence[str] | None = None) -> dict[str, Any]:
    """Every result of backend ``name`` (of the sections ``only`` names, if given) as plain JSON;
    a failing computation becomes ``{"error": ...}``."""
    import d2lconv as dc

    results: dict[str, Any] = {}
    with dc.use_backend(name):
        for check in sections.parity_checks(only):
            try:
                results[check.key] = _plain(check.compute())
            except Exception as error:  # recorded per check: one failing op must not hide the others
                results[check.key] = {"error": f"{type(error).__name__}: {error}"}
    return results


def worker_main(name: str, only: Sequence[str] | None = None) -> None:
    """Compute backend ``name``'s results and write them, with its version, as one JSON object."""
    with runner.result_channel() as write:
        tab = backends.load_backend(name)
        write({"backend": tab.NAME, "version": str(tab.FRAMEWORK.__version__), "results": compute_results(name, only)})


def worker_command(name: str, only: Sequence[str] | None = None) -> list[str]:
    """The command that runs backend ``name``'s parity worker (on the sections ``only`` names, if given)."""
    return [sys.executable, "-m", "d2lconv.harness.parity.run", "--worker", name] + (
        ["--sections", ",".join(only)] if only else []
    )


# --- running the workers --------------------------------------------------------------------------------------------


def to_entry(name: str, done: runner.WorkerRun) -> dict[str, Any]:
    """A finished worker as its entry of the report's ``backends`` part."""
    output = done.output if isinstance(done.output, dict) else {}
    item = entry(
        done.status,
        done.detail,
        output.get("version") or runner.framework_version(name),
        done.seconds,
        output.get("results") if done.status == "ok" else None,
    )
    if done.status == "ok" and not isinstance(item["results"], dict):
        item.update(status="error", detail="the worker's JSON has no results", results={})
    return item


def run_backends(
    requested: Sequence[str] | None = None,
    *,
    installed: Sequence[str] | None = None,
    command: Callable[[str], Sequence[str]] | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    jobs: int = JOBS,
    on_start: Callable[[str], None] | None = None,
    on_done: Callable[[str, dict[str, Any]], None] | None = None,
    only: Sequence[str] | None = None,
) -> dict[str, dict[str, Any]]:
    """Run the planned backends' workers, ``jobs`` at a time, and return the ``backends`` part of the report.

    ``command(name)`` gives a backend's worker command (default ``worker_command``, looked up at call
    time); ``on_start``/``on_done`` report progress from the worker threads.
    """
    decisions = runner.plan(
        requested, backends.available_backends() if installed is None else installed, always=(REFERENCE,)
    )
    entries = {
        name: entry(status, runner.skip_detail(status, name)) for name, status in decisions.items() if status != "run"
    }

    def done(name: str, run: runner.WorkerRun) -> None:
        entries[name] = to_entry(name, run)
        if on_done:
            on_done(name, entries[name])

    runner.run_planned(
        decisions, command or (lambda name: worker_command(name, only)), timeout, jobs, on_start=on_start, on_done=done
    )
    return {name: entries[name] for name in backends.BACKENDS}


def run_parity(requested: Sequence[str] | None = None, **options: Any) -> dict[str, Any]:
    """Run the workers (options as ``run_backends``) and compare them: the report of the schema."""
    return build_report(run_backends(requested, **options), sections.parity_checks(options.get("only")))


# --- the command ----------------------------------------------------------------------------------------------------


def parity_command(args: argparse.Namespace) -> int:
    """``d2lconv parity``: run, compare, print (a table or JSON); the exit code of the report."""
    if not args.json and not has_rich():
        return 2
    names = runner.to_run(runner.plan(args.backends, backends.available_backends(), always=(REFERENCE,)))
    with progress(names, "running") as (start, finish):
        report = run_parity(
            args.backends,
            timeout=args.timeout,
            only=args.sections,
            on_start=start,
            on_done=lambda name, item: finish(name, outcome(item)),
        )
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        from rich.console import Console

        from .render import render

        render(report, Console())
    exit_code: int = report["exit_code"]
    return exit_code


def add_parser(commands: Any) -> None:
    """Register ``d2lconv parity`` on the CLI's subcommands."""
    summary = "run every backend in its own process and compare with numpy"
    parser = commands.add_parser(
        "parity",
        help=summary,
        description=f"{summary.capitalize()}: the chapter's "
        "numbers, gradients, learned kernels and the batched ops, within float32 "
        "tolerance.",
        epilog=EXIT_CODES,
    )
    add_backends_option(parser, "backends to compare (default: every installed one; numpy always runs)")
    parser.add_argument(
        "--sections",
        type=section_names,
        metavar="S,T",
        help=f"compare only these sections of the book: {', '.join(sections.SECTIONS)} (default: all)",
    )
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    add_timeout_option(parser, DEFAULT_TIMEOUT)
    parser.set_defaults(run=parity_command)


def section_names(text: str) -> list[str]:
    """``--sections``: comma-separated section names of ``d2lconv.harness.parity.sections.SECTIONS``."""
    try:
        return sections.check_sections([name.strip() for name in text.split(",") if name.strip()] or [text])
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def main(argv: Sequence[str] | None = None) -> None:
    """``python -m d2lconv.harness.parity.run --worker NAME``: the worker process of one backend."""
    parser = argparse.ArgumentParser(prog="python -m d2lconv.harness.parity.run", description=__doc__.splitlines()[0])
    parser.add_argument("--worker", required=True, metavar="NAME", help="compute one backend's results as JSON")
    parser.add_argument("--sections", type=section_names, metavar="S,T", help="only these sections (default: all)")
    args = parser.parse_args(argv)
    worker_main(args.worker, args.sections)


if __name__ == "__main__":
    main()
