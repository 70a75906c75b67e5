"""``d2lconv parity``: every backend in its own process, compared with the NumPy reference.

Frameworks collide in one process (paddle imported after tensorflow segfaults), so
each backend runs as a worker subprocess, ``python -m d2lconv.parity --worker NAME``,
up to two at a time. A worker computes the chapter's numbers and the batched
``CASES`` through the public API and writes one JSON object to its stdout; it
first points fd 1 at stderr, so whatever a framework prints cannot corrupt it.
The reference is the numpy backend, run as a worker like the others (same code
path). A case that raises in a worker is recorded as that case's error
(``{"error": "..."}``), the rest of the backend still counts.

Comparison (``build_report``, ``compare``) is a pure function of the recorded
results. Values agree when ``|value - reference| <= atol + rtol * |reference|``;
loss curves use the same rule, which is relative for losses of order 1 and up.

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
holds the compared backends (status ok, the reference left out).
"""

from __future__ import annotations

import argparse
import concurrent.futures
import contextlib
import json
import math
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

import d2lconv as dc

from . import backends, sections

REFERENCE = "numpy"
RTOL, ATOL = sections.RTOL, sections.ATOL
DEFAULT_TIMEOUT = 300.0
JOBS = 2
FAILED = ("missing", "crashed", "timed out", "error")  # statuses that make the exit code 2
RICH_HINT = 'd2lconv: error: this command needs rich: pip install "d2lconv[cli]"'


def result_keys() -> list[str]:
    """The keys of every section's parity checks, in report order."""
    return [check.key for check in sections.parity_checks()]


# --- the worker: one backend, in its own process ---------------------------------------------------------------

def _plain(value: Any) -> Any:
    """A tensor, array or fit as plain JSON (nested lists of floats)."""
    if isinstance(value, dict):
        return {name: _plain(item) for name, item in value.items()}
    if value is None or isinstance(value, float):
        return value
    return dc.to_numpy(value).astype(np.float64).tolist()


def compute_results(name: str) -> dict[str, Any]:
    """Every result of backend ``name`` as plain JSON; a failing computation becomes ``{"error": ...}``."""
    results: dict[str, Any] = {}
    with dc.use_backend(name):
        for check in sections.parity_checks():
            try:
                results[check.key] = _plain(check.compute())
            except Exception as error:  # recorded per case: one failing op must not hide the others
                results[check.key] = {"error": f"{type(error).__name__}: {error}"}
    return results


@contextlib.contextmanager
def json_stdout() -> Iterator[Callable[[Any], None]]:
    """In a worker: send fd 1 to stderr (framework noise) and yield a writer of JSON to the real stdout."""
    sys.stdout.flush()
    out = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)
    try:
        yield lambda value: (json.dump(value, out), out.flush())
    finally:
        out.close()


def worker_main(name: str) -> None:
    """Compute backend ``name``'s results and write them, with its version, as one JSON object."""
    with json_stdout() as write:
        tab = dc.load_backend(name)
        write({"backend": tab.NAME, "version": str(tab.FRAMEWORK.__version__), "results": compute_results(name)})


def worker_command(name: str) -> list[str]:
    """The command that runs backend ``name``'s parity worker."""
    return [sys.executable, "-m", "d2lconv.parity", "--worker", name]


# --- running workers ----------------------------------------------------------------------------------------------

@dataclass
class WorkerRun:
    """How a worker process ended: a status of the schema, a detail, its wall time and its JSON output."""

    status: str
    detail: str = ""
    seconds: float | None = None
    output: Any = None


def run_worker(command: Sequence[str], timeout: float) -> WorkerRun:
    """Run one worker process and classify its end: ok, crashed (a signal), timed out or error."""
    start = time.perf_counter()
    try:
        done = subprocess.run(list(command), capture_output=True, text=True, timeout=timeout,
                              stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        return WorkerRun("timed out", f"no result after {timeout:g} s", round(time.perf_counter() - start, 2))
    seconds = round(time.perf_counter() - start, 2)
    if done.returncode < 0:
        try:
            name = signal.Signals(-done.returncode).name
        except ValueError:
            name = str(-done.returncode)
        return WorkerRun("crashed", f"killed by signal {name}", seconds)
    lines = [line.strip() for line in done.stderr.splitlines() if line.strip()]
    if done.returncode > 0:
        return WorkerRun("error", lines[-1] if lines else f"exit code {done.returncode}", seconds)
    try:
        return WorkerRun("ok", "", seconds, json.loads(done.stdout))
    except json.JSONDecodeError:
        return WorkerRun("error", "the worker printed no JSON result", seconds)


def plan(requested: Sequence[str] | None, installed: Sequence[str],
         always: Sequence[str] = (REFERENCE,)) -> dict[str, str]:
    """What to do with each backend: ``"run"`` or the status it gets without running.

    ``requested=None`` means every installed backend; the ``always`` ones (the reference)
    run whether requested or not. Unknown names raise ``BackendError``.
    """
    wanted = None if requested is None else {backends.canonical_name(name) for name in requested}
    decisions = {}
    for name in backends.BACKENDS:
        if name not in installed:
            decisions[name] = "missing" if wanted is not None and name in wanted else "not installed"
        elif wanted is None or name in wanted or name in always:
            decisions[name] = "run"
        else:
            decisions[name] = "not requested"
    return decisions


def _entry(status: str, detail: str = "", version: str | None = None, seconds: float | None = None,
           results: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"status": status, "detail": detail, "version": version, "seconds": seconds, "results": results or {}}


def _installed_version(name: str) -> str | None:
    from .cli import framework_version

    return framework_version(name)


def run_backends(requested: Sequence[str] | None = None, *, installed: Sequence[str] | None = None,
                 command: Callable[[str], Sequence[str]] | None = None, timeout: float = DEFAULT_TIMEOUT,
                 jobs: int = JOBS, on_start: Callable[[str], None] | None = None,
                 on_done: Callable[[str, dict[str, Any]], None] | None = None) -> dict[str, dict[str, Any]]:
    """Run the planned backends' workers, ``jobs`` at a time, and return the ``backends`` part of the report.

    ``command(name)`` gives a backend's worker command (default ``worker_command``, looked up at call
    time); ``on_start``/``on_done`` report progress from the worker threads.
    """
    decisions = plan(requested, backends.available_backends() if installed is None else installed)
    entries = {name: _entry(status, backends.install_hint(name) if status in ("missing", "not installed") else "")
               for name, status in decisions.items() if status != "run"}
    command = command or (lambda name: worker_command(name))

    def run(name: str) -> dict[str, Any]:
        if on_start:
            on_start(name)
        done = run_worker(command(name), timeout)
        output = done.output if isinstance(done.output, dict) else {}
        entry = _entry(done.status, done.detail, output.get("version") or _installed_version(name), done.seconds,
                       output.get("results") if done.status == "ok" else None)
        if done.status == "ok" and not isinstance(entry["results"], dict):
            entry.update(status="error", detail="the worker's JSON has no results", results={})
        if on_done:
            on_done(name, entry)
        return entry

    to_run = [name for name, status in decisions.items() if status == "run"]
    with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        futures = {name: pool.submit(run, name) for name in to_run}
        entries.update({name: future.result() for name, future in futures.items()})
    return {name: entries[name] for name in backends.BACKENDS}


# --- comparing recorded results -----------------------------------------------------------------------------------

def _is_error(value: Any) -> bool:
    return isinstance(value, dict) and "error" in value


def _compare_arrays(reference: Any, value: Any) -> tuple[bool, float | None, str]:
    """(agree, max |difference|, problem) for two nested lists of numbers."""
    if (reference is None) != (value is None):
        return False, None, f"{'none' if value is None else value!r} where the reference has {reference!r}"
    if reference is None:
        return True, 0.0, ""
    ref, got = np.asarray(reference, np.float64), np.asarray(value, np.float64)
    if ref.shape != got.shape:
        return False, None, f"shape {got.shape}, reference {ref.shape}"
    close = np.isclose(got, ref, rtol=RTOL, atol=ATOL, equal_nan=True)
    with np.errstate(invalid="ignore"):
        diff = np.where(close & ~np.isfinite(got - ref), 0.0, np.abs(got - ref))
    largest = float(diff.max()) if diff.size else 0.0
    if not math.isfinite(largest):
        return False, None, "a non-finite value where the reference differs"
    return bool(close.all()), largest, ""


def compare(reference: Any, value: Any) -> dict[str, Any]:
    """One cell: does ``value`` agree with ``reference`` (both recorded results of one key)?"""
    if _is_error(reference):
        return {"ok": False, "max_abs_diff": None, "error": f"reference failed: {reference['error']}"}
    if _is_error(value):
        return {"ok": False, "max_abs_diff": None, "error": value["error"]}
    if isinstance(reference, dict):
        if not isinstance(value, dict) or set(value) != set(reference):
            fields = sorted(value) if isinstance(value, dict) else type(value).__name__
            return {"ok": False, "max_abs_diff": None, "error": f"fields {fields}, reference {sorted(reference)}"}
        parts = {name: _compare_arrays(reference[name], value[name]) for name in reference}
    else:
        parts = {"": _compare_arrays(reference, value)}
    problems = [f"{name}: {problem}" if name else problem for name, (_, _, problem) in parts.items() if problem]
    diffs = [diff for _, diff, _ in parts.values() if diff is not None]
    cell: dict[str, Any] = {"ok": all(ok for ok, _, _ in parts.values()),
                            "max_abs_diff": None if problems else max(diffs, default=0.0)}
    if "losses" in parts and not problems:
        ref, got = np.asarray(reference["losses"], np.float64), np.asarray(value["losses"], np.float64)
        cell["max_rel_diff"] = float((np.abs(got - ref) / np.maximum(np.abs(ref), 1e-30)).max()) if ref.size else 0.0
    if problems:
        cell["error"] = "; ".join(problems)
    return cell


def build_report(entries: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The full report of the schema from the ``backends`` part: checks, agreement, exit code."""
    reference = entries.get(REFERENCE, _entry("missing"))
    compared = [name for name, entry in entries.items() if name != REFERENCE and entry["status"] == "ok"]
    checks = []
    if reference["status"] == "ok":
        ref_results = reference["results"]
        keys = result_keys()
        for key in keys + sorted(set(ref_results) - set(keys)):
            if key in ref_results:
                checks.append({"name": key, "cells": {
                    name: compare(ref_results[key], entries[name]["results"].get(key, {"error": "no result"}))
                    for name in compared}})
    agree = all(cell["ok"] for check in checks for cell in check["cells"].values())
    failed = any(entry["status"] in FAILED for entry in entries.values())
    return {"reference": REFERENCE, "tolerance": {"rtol": RTOL, "atol": ATOL}, "backends": entries,
            "checks": checks, "agree": agree and not failed, "exit_code": 2 if failed else 0 if agree else 1}


def run_parity(requested: Sequence[str] | None = None, **options: Any) -> dict[str, Any]:
    """Run the workers (options as ``run_backends``) and compare them: the report of the schema."""
    return build_report(run_backends(requested, **options))


# --- presenting -----------------------------------------------------------------------------------------------------

def has_rich() -> bool:
    """Whether ``rich`` (the ``cli`` extra) is importable; if not, say how to install it on stderr."""
    try:
        import rich.console  # noqa: F401
    except ImportError:
        print(RICH_HINT, file=sys.stderr)
        return False
    return True


@contextlib.contextmanager
def progress(names: Sequence[str], what: str) -> Iterator[tuple[Callable[[str], None], Callable[[str, str], None]]]:
    """Show one line per backend on stderr: a spinner and elapsed time while it runs, its outcome after.

    Yields ``(start(name), finish(name, outcome))``. Without rich, or when stderr is not a
    terminal, it prints one plain line per finished backend instead.
    """
    try:
        from rich.console import Console
        from rich.markup import escape
        from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
    except ImportError:
        yield (lambda name: None), (lambda name, outcome: print(f"{name}: {outcome}", file=sys.stderr, flush=True))
        return
    console = Console(stderr=True)
    if not console.is_terminal:
        yield (lambda name: None), (lambda name, outcome: console.print(f"{name}: {outcome}", markup=False,
                                                                        highlight=False))
        return
    with Progress(SpinnerColumn(finished_text=" "), TextColumn("{task.description}"), TimeElapsedColumn(),
                  console=console) as bar:
        tasks = {name: bar.add_task(f"{name}: waiting", total=1, start=False) for name in names}

        def start(name: str) -> None:
            bar.update(tasks[name], description=f"{name}: {what}")
            bar.start_task(tasks[name])

        def finish(name: str, outcome: str) -> None:
            bar.update(tasks[name], description=escape(f"{name}: {outcome}"), completed=1)
            bar.stop_task(tasks[name])

        yield start, finish


def outcome(entry: dict[str, Any]) -> str:
    """One backend's status, detail and time on one line, for progress."""
    text = entry["status"] + (f", {entry['detail']}" if entry["detail"] else "")
    return text + (f" ({entry['seconds']:.1f} s)" if entry["seconds"] is not None else "")


def _kernel_text(fit: Any) -> str:
    if not isinstance(fit, dict) or "kernel" not in fit:
        return "error"
    return " ".join(f"{value:.4f}" for value in np.asarray(fit["kernel"]).ravel())


def _final_loss(fit: Any) -> str:
    return f"{fit['losses'][-1]:.4g}" if isinstance(fit, dict) and fit.get("losses") else "error"


def render(report: dict[str, Any], console: Any) -> None:
    """Print the report for a person: backends, the checks table, the learned kernels, the verdict."""
    from rich import box
    from rich.markup import escape
    from rich.table import Table

    entries = report["backends"]
    status = Table(title="Backends", title_justify="left")
    for column in ("backend", "status", "version", "seconds"):
        status.add_column(column, no_wrap=True)
    colours = {"ok": "green", "not installed": "dim", "not requested": "dim"}
    for name, entry in entries.items():
        colour = colours.get(entry["status"], "bold red")
        status.add_row(name + (" (reference)" if name == REFERENCE else ""),
                       f"[{colour}]{entry['status']}[/]", entry["version"] or "",
                       "" if entry["seconds"] is None else f"{entry['seconds']:.1f}")
    console.print(status)
    for name, entry in entries.items():
        if entry["detail"]:
            colour = "dim" if entry["status"] in ("not installed", "not requested") else "red"
            console.print(f"[{colour}]{escape(name + ': ' + entry['detail'])}[/]", highlight=False)

    compared = [name for name in entries if name != REFERENCE and entries[name]["status"] == "ok"]
    if report["checks"] and compared:
        tol = ", ".join(f"{name} {value:.0e}".replace("e-0", "e-") for name, value in report["tolerance"].items())
        table = Table(title=f"Agreement with {REFERENCE} ({tol})", title_justify="left", box=box.SIMPLE_HEAD,
                      caption="✓ within tolerance, else the max |difference|", caption_justify="left")
        table.add_column("check", no_wrap=True)
        for name in compared:
            table.add_column(name, justify="center", no_wrap=True)
        section = ""
        for check in report["checks"]:
            op, _, case = check["name"].rpartition("/")
            if op != section:
                table.add_row(f"[bold]{op}[/]")
                section = op
            table.add_row(f"  {case}" if op else case, *(_cell_text(check["cells"][name]) for name in compared))
        largest = [max((check["cells"][name]["max_abs_diff"] or 0.0 for check in report["checks"]), default=0.0)
                   for name in compared]
        table.add_row("[dim]largest |difference|[/]", *(f"[dim]{value:.1e}[/]" for value in largest))
        console.print(table)
        errors = [(check["name"], name, check["cells"][name]["error"]) for check in report["checks"]
                  for name in compared if "error" in check["cells"][name]]
        for key, name, error in errors:
            console.print(f"[red]{name} {key}:[/] {escape(error)}", highlight=False)

    shown = [name for name in entries if entries[name]["status"] == "ok"]
    if shown:
        fits = Table(title="Learned kernels and final losses, seed 0\n(builtin: lr 0.03, 10 epochs; "
                           "custom: lr 0.01, 40 epochs)", title_justify="left", box=box.SIMPLE_HEAD,
                     pad_edge=False, collapse_padding=True)
        for column in ("backend", "builtin kernel", "loss", "custom kernel", "bias", "loss"):
            fits.add_column(column, justify="left" if column == "backend" else "right", no_wrap=True)
        for name in shown:
            builtin, custom = (entries[name]["results"].get(key) for key in ("learn_builtin", "learn_custom"))
            bias = custom.get("bias") if isinstance(custom, dict) else None
            fits.add_row(name, _kernel_text(builtin), _final_loss(builtin), _kernel_text(custom),
                         "error" if bias is None else f"{bias:.3g}", _final_loss(custom))
        console.print(fits)
    console.print(_verdict(report), highlight=False)


def _cell_text(cell: dict[str, Any]) -> str:
    if cell["ok"]:
        return "[green]✓[/]"
    if cell["max_abs_diff"] is None:
        return "[bold red]error[/]"
    return f"[bold red]{cell['max_abs_diff']:.2g}[/]"


def _verdict(report: dict[str, Any]) -> str:
    entries = report["backends"]
    compared = [name for name in entries if name != REFERENCE and entries[name]["status"] == "ok"]
    failed = [f"{name} {entry['status']}" for name, entry in entries.items() if entry["status"] in FAILED]
    differing = sorted({name for check in report["checks"] for name, cell in check["cells"].items() if not cell["ok"]})
    parts = []
    if differing:
        parts.append(f"values differ on {', '.join(differing)}")
    if failed:
        parts.append("; ".join(failed))
    if not parts:
        return (f"[bold green]agree:[/] {', '.join(compared) or 'no other backend'} = {REFERENCE} "
                f"on {len(report['checks'])} checks (exit 0)")
    return f"[bold red]FAIL:[/] {'; '.join(parts)} (exit {report['exit_code']})"


def parse_backends(text: str | None) -> list[str] | None:
    """``"a,b"`` as canonical backend names (``BackendError`` for an unknown one); ``None`` for all."""
    if text is None:
        return None
    return [backends.canonical_name(name) for name in text.split(",") if name.strip()]


def parity_command(args: argparse.Namespace) -> int:
    """``d2lconv parity``: run, compare, print (a table or JSON); the exit code of the report."""
    requested = parse_backends(args.backends)
    if not args.json and not has_rich():
        return 2
    to_run = [name for name, what in plan(requested, backends.available_backends()).items() if what == "run"]
    with progress(to_run, "running") as (start, finish):
        report = run_parity(requested, timeout=args.timeout, on_start=start,
                            on_done=lambda name, entry: finish(name, outcome(entry)))
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        from rich.console import Console

        render(report, Console())
    return report["exit_code"]


def add_parser(commands: Any) -> None:
    """Register ``d2lconv parity`` on the CLI's subcommands."""
    parser = commands.add_parser("parity", help="run every backend in its own process and compare with numpy")
    parser.add_argument("--backends", metavar="A,B", help="comma-separated backends (default: every installed one)")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    parser.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT, metavar="S",
                        help=f"seconds per backend before it counts as hung (default: {DEFAULT_TIMEOUT:g})")
    parser.set_defaults(run=parity_command)


def main(argv: Sequence[str] | None = None) -> None:
    """``python -m d2lconv.parity --worker NAME``: the worker process of one backend."""
    parser = argparse.ArgumentParser(prog="python -m d2lconv.parity", description=__doc__.splitlines()[0])
    parser.add_argument("--worker", required=True, metavar="NAME", help="compute one backend's results as JSON")
    worker_main(parser.parse_args(argv).worker)


if __name__ == "__main__":
    main()
