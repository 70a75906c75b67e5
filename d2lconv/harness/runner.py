"""Running one backend in a process of its own: the plan, the worker's JSON channel, timeouts and signals.

Frameworks collide in one process (paddle imported after tensorflow segfaults; JAX's
x64 switch and TF's threads are global), so ``d2lconv parity``, ``d2lconv bench`` and
the notebook tests run each backend as a separate worker process. This module is the
part they share:

- ``plan`` decides, for every backend of ``d2lconv.BACKENDS``, whether it runs or the
  status it gets without running ("not installed", "missing", "not requested").
- A worker writes its one JSON result through ``result_channel()``: to a dedicated file
  descriptor that the parent opened (``D2LCONV_RESULT_FD``), so whatever a framework
  prints on stdout or stderr cannot corrupt it. Run by hand (no such fd), it writes to
  the real stdout and sends the process's own fd 1 to stderr. While it works it may
  announce its steps with ``step_started``/``step_done`` on a second channel
  (``D2LCONV_EVENT_FD``, a pipe the parent reads as they come): the progress shown, and
  what a timeout names.
- ``run_worker`` runs one worker command and classifies its end: ``ok`` (with the JSON),
  ``crashed`` (killed by a signal, named), ``timed out`` (its whole process group is
  killed) or ``error`` (a non-zero exit; the detail is the last line it printed).
- ``run_planned`` runs the planned backends, ``jobs`` at a time, reporting progress;
  ``run_backends`` does it for a tool (parity, each bench) and gives its report's
  ``backends`` part, one entry per backend of ``d2lconv.BACKENDS``.
- ``worker_command`` is the command of one tool's worker: ``python -m d2lconv.harness.worker
  TOOL NAME OPTIONS-AS-JSON`` (``d2lconv.harness.worker`` runs the tool's ``measure``).

Nothing here imports a framework, the tools, or the CLI.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from .. import backends

RESULT_FD_VAR = "D2LCONV_RESULT_FD"
EVENT_FD_VAR = "D2LCONV_EVENT_FD"
# Statuses of a backend that make a tool's exit code 2.
FAILED = ("missing", "crashed", "timed out", "error")
# Statuses of a backend that did not run and is not a failure.
SKIPPED = ("not installed", "not requested")


def worker_command(tool: str, name: str, **options: Any) -> list[str]:
    """The command that runs ``tool``'s worker (parity, corr2d, ops, train, port) on backend ``name``."""
    return [sys.executable, "-m", "d2lconv.harness.worker", tool, name, json.dumps(options)]


def plan(requested: Sequence[str] | None, installed: Sequence[str], always: Sequence[str] = ()) -> dict[str, str]:
    """What to do with each backend of ``d2lconv.BACKENDS``: ``"run"`` or the status it gets without running.

    ``requested=None`` means every installed backend; the ``always`` ones (a reference)
    run whether requested or not. A requested backend that is not installed is
    ``"missing"`` (a failure); one nobody asked for is ``"not installed"``. Unknown
    names raise ``BackendError``.
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


def to_run(decisions: Mapping[str, str]) -> list[str]:
    """The backends a plan runs, in its order."""
    return [name for name, decision in decisions.items() if decision == "run"]


def skip_detail(status: str, name: str) -> str:
    """The detail shown for a backend that did not run: the pip command that installs it, if it is absent."""
    return backends.install_hint(name) if status in ("missing", "not installed") else ""


# --- in the worker -------------------------------------------------------------------------------------------------


@contextlib.contextmanager
def result_channel() -> Iterator[Callable[[Any], None]]:
    """In a worker: yield a writer of its one JSON result, on the channel the parent reads.

    With ``D2LCONV_RESULT_FD`` set (``run_worker`` does), the JSON goes to that file
    descriptor. Without it, to the real stdout, while fd 1 is pointed at stderr so that
    what a framework prints cannot mix with it.
    """
    fd = os.environ.get(RESULT_FD_VAR)
    if fd is None:  # run by hand: the real stdout carries the JSON, fd 1 goes to stderr
        sys.stdout.flush()
        fd = str(os.dup(1))
        os.dup2(2, 1)
    with os.fdopen(int(fd), "w") as out:

        def write(value: Any) -> None:
            json.dump(value, out)
            out.flush()

        yield write


def _event(event: dict[str, Any]) -> None:
    fd = os.environ.get(EVENT_FD_VAR)
    if fd is not None:
        os.write(int(fd), (json.dumps(event) + "\n").encode())


def step_started(step: str) -> None:
    """In a worker: announce that ``step`` (e.g. "section 6.2") starts; a timeout names the one running."""
    _event({"started": step})


def step_done(step: str, seconds: float) -> None:
    """In a worker: announce that ``step`` finished after ``seconds``."""
    _event({"done": step, "seconds": round(seconds, 2)})


# --- in the parent -------------------------------------------------------------------------------------------------


@dataclass
class WorkerRun:
    """How a worker process ended: a status (ok, crashed, timed out, error), a detail, its wall time, its JSON."""

    status: str
    detail: str = ""
    seconds: float | None = None
    output: Any = None
    events: list[dict[str, Any]] = field(default_factory=list)


def _read_events(fd: int, events: list[dict[str, Any]], on_event: Callable[[dict[str, Any]], None] | None) -> None:
    """Collect the worker's step events from the read end ``fd`` of its event pipe, until it closes."""
    with os.fdopen(fd, "r", errors="replace") as pipe:
        for line in pipe:
            try:
                event = json.loads(line)
            except json.JSONDecodeError:
                continue
            events.append(event)
            if on_event is not None:
                on_event(event)


def _timeout_detail(timeout: float, seconds: float, events: list[dict[str, Any]]) -> str:
    """What a timed-out worker was doing: the step that had started and not finished, and for how long."""
    detail = f"no result after {timeout:g} s"
    done = [event["done"] for event in events if "done" in event]
    running = [event["started"] for event in events if "started" in event and event["started"] not in done]
    if running:
        finished = sum(event.get("seconds", 0.0) for event in events if "done" in event)
        detail += f", in {running[-1]} ({max(seconds - finished, 0.0):.0f} s of it"
        detail += f"; done before it: {', '.join(done)})" if done else ")"
    return detail


def signal_name(number: int) -> str:
    """``SIGSEGV`` for 11, the number itself for an unknown signal."""
    try:
        return signal.Signals(number).name
    except ValueError:
        return str(number)


_running: set[subprocess.Popen] = set()  # live workers, killed if the parent is interrupted
_running_lock = threading.Lock()


def _kill_group(process: subprocess.Popen) -> None:
    """Kill the worker and whatever it started (it leads its own process group)."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait()


def kill_running() -> None:
    """Kill every worker still running (on Ctrl-C: workers lead their own sessions, so none saw it)."""
    with _running_lock:
        running = list(_running)
    for process in running:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, signal.SIGKILL)


def run_worker(
    command: Sequence[str],
    timeout: float,
    env: Mapping[str, str] | None = None,
    on_event: Callable[[dict[str, Any]], None] | None = None,
) -> WorkerRun:
    """Run one worker command and classify its end; its JSON result comes on a dedicated fd, its step
    events (``step_started``/``step_done``) on a pipe, passed to ``on_event`` as they come."""
    events: list[dict[str, Any]] = []
    event_read, event_write = os.pipe()
    reader = threading.Thread(target=_read_events, args=(event_read, events, on_event), daemon=True)
    with tempfile.TemporaryFile("w+") as channel:
        environment = dict(os.environ if env is None else env)
        environment[RESULT_FD_VAR] = str(channel.fileno())
        environment[EVENT_FD_VAR] = str(event_write)
        start = time.perf_counter()
        try:
            process = subprocess.Popen(
                list(command),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
                errors="replace",
                env=environment,
                pass_fds=(channel.fileno(), event_write),
                start_new_session=True,
            )
        finally:
            os.close(event_write)  # the worker holds the only write end: the reader ends when it exits
        reader.start()
        with _running_lock:
            _running.add(process)
        try:
            printed, _ = process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            _kill_group(process)
            reader.join(timeout=5)
            seconds = round(time.perf_counter() - start, 2)
            return WorkerRun("timed out", _timeout_detail(timeout, seconds, events), seconds, events=events)
        except BaseException:  # KeyboardInterrupt included: never leave a worker behind
            _kill_group(process)
            raise
        finally:
            with _running_lock:
                _running.discard(process)
        reader.join(timeout=5)
        seconds = round(time.perf_counter() - start, 2)
        if process.returncode < 0:
            return WorkerRun("crashed", f"killed by signal {signal_name(-process.returncode)}", seconds, events=events)
        lines = [line.strip() for line in printed.splitlines() if line.strip()]
        if process.returncode > 0:
            return WorkerRun("error", lines[-1] if lines else f"exit code {process.returncode}", seconds, events=events)
        channel.seek(0)
        text = channel.read()
    try:
        return WorkerRun("ok", "", seconds, json.loads(text), events)
    except json.JSONDecodeError:
        return WorkerRun("error", "the worker wrote no JSON result", seconds, events=events)


def run_planned(
    decisions: Mapping[str, str],
    command: Callable[[str], Sequence[str]],
    timeout: float,
    jobs: int = 1,
    on_start: Callable[[str], None] | None = None,
    on_done: Callable[[str, WorkerRun], None] | None = None,
    on_event: Callable[[str, dict[str, Any]], None] | None = None,
    first: Sequence[str] = (),
) -> dict[str, WorkerRun]:
    """Run the worker of every backend the plan runs, ``jobs`` at a time; ``{name: WorkerRun}`` in plan order.

    ``on_start(name)``, ``on_event(name, event)`` (a step started or done) and ``on_done(name, run)``
    report progress (from worker threads when ``jobs > 1``). Timing benchmarks use ``jobs=1``: two
    workers would share the cores. The backends ``first`` names start before the others (a long worker
    started first overlaps the short ones instead of running alone at the end).
    """

    def run(name: str) -> WorkerRun:
        if on_start:
            on_start(name)
        done = run_worker(command(name), timeout, on_event=None if on_event is None else partial(on_event, name))
        if on_done:
            on_done(name, done)
        return done

    names = to_run(decisions)
    started = sorted(names, key=lambda name: name not in first)
    if jobs <= 1:
        runs = {name: run(name) for name in started}
        return {name: runs[name] for name in names}
    with concurrent.futures.ThreadPoolExecutor(max_workers=jobs) as pool:
        futures = {name: pool.submit(run, name) for name in started}
        try:
            return {name: futures[name].result() for name in names}
        except BaseException:  # Ctrl-C reaches this thread only: end the workers so the pool can close
            for future in futures.values():
                future.cancel()
            kill_running()
            raise


def run_backends(
    requested: Sequence[str] | None,
    command: Callable[[str], Sequence[str]],
    fields: Callable[[str, dict[str, Any] | None], dict[str, Any]],
    timeout: float,
    *,
    jobs: int = 1,
    always: Sequence[str] = (),
    installed: Sequence[str] | None = None,
    on_start: Callable[[str], None] | None = None,
    on_done: Callable[[str, dict[str, Any]], None] | None = None,
    on_event: Callable[[str, dict[str, Any]], None] | None = None,
    first: Sequence[str] = (),
) -> dict[str, dict[str, Any]]:
    """Plan, run the planned backends' workers (those ``first`` names first) and return a report's ``backends``
    part, in registry order.

    Every entry starts ``status``, ``detail``, ``version`` (the worker's, else the installed one of a
    backend that ran), ``seconds``; the tool's ``fields(name, output)`` adds its own keys from the worker's
    JSON object (None when no worker ran or it wrote none) and may override those four.
    ``on_done(name, entry)`` is called as each worker ends.
    """
    decisions = plan(requested, backends.available_backends() if installed is None else installed, always)

    def entry(name: str, status: str, detail: str, run: WorkerRun | None = None) -> dict[str, Any]:
        output = run.output if run is not None and isinstance(run.output, dict) else None
        version = (output or {}).get("version") or (backends.framework_version(name) if run else None)
        seconds = None if run is None else run.seconds
        return {"status": status, "detail": detail, "version": version, "seconds": seconds} | fields(name, output)

    entries = {
        name: entry(name, status, skip_detail(status, name)) for name, status in decisions.items() if status != "run"
    }

    def done(name: str, run: WorkerRun) -> None:
        entries[name] = entry(name, run.status, run.detail, run)
        if on_done:
            on_done(name, entries[name])

    run_planned(decisions, command, timeout, jobs, on_start=on_start, on_done=done, on_event=on_event, first=first)
    return {name: entries[name] for name in backends.BACKENDS}


def exit_code(entries: Mapping[str, Mapping[str, Any]]) -> int:
    """A measuring tool's exit code: 2 when a backend is missing, crashed, timed out or failed, else 0."""
    return 2 if any(entry["status"] in FAILED for entry in entries.values()) else 0
