"""What the commands share on the terminal: whether rich is there, one progress line per backend, and
``run_and_show``, the one prologue of the commands that run a tool per backend (parity, bench)."""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from .. import backends
from ..harness import runner

RICH_HINT = 'd2lconv: error: this command needs rich: pip install "d2lconv[cli]"'


def has_rich() -> bool:
    """Whether ``rich`` (the ``cli`` extra) is importable; if not, say how to install it on stderr."""
    try:
        import rich.console  # noqa: F401
    except ImportError:
        print(RICH_HINT, file=sys.stderr)
        return False
    return True


@dataclass
class Lines:
    """What a progress display does per backend: ``start(name)``, ``step(name, event)`` (a worker's step
    started or done, as ``runner`` reports it) and ``finish(name, outcome)``."""

    start: Callable[[str], None]
    step: Callable[[str, dict[str, Any]], None]
    finish: Callable[[str, str], None]


def _steps_text(done: list[str], running: str | None) -> str:
    text = ", ".join(done)
    return f"{text}{', ' if text and running else ''}{f'running {running}' if running else ''}"


@contextlib.contextmanager
def progress(names: Sequence[str], what: str) -> Iterator[Lines]:
    """Show one line per backend on stderr: a spinner and elapsed time while it runs, the steps it has
    finished (``section 6.2 0.4 s, ...``) and the one running, its outcome after.

    Without rich, or when stderr is not a terminal, it prints one plain line per finished step and per
    finished backend instead.
    """
    done: dict[str, list[str]] = {name: [] for name in names}

    def finished_step(name: str, event: dict[str, Any]) -> str | None:
        if "done" not in event:
            return None
        done[name].append(f"{event['done']} {event['seconds']:.1f} s")
        return done[name][-1]

    try:
        from rich.console import Console
        from rich.markup import escape
        from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
    except ImportError:
        console = None
    else:
        console = Console(stderr=True)
    if console is None or not console.is_terminal:

        def plain(text: str) -> None:
            if console is None:
                print(text, file=sys.stderr, flush=True)
            else:
                console.print(text, markup=False, highlight=False)

        def plain_step(name: str, event: dict[str, Any]) -> None:
            text = finished_step(name, event)
            if text is not None:
                plain(f"{name}: {text}")

        yield Lines(lambda name: None, plain_step, lambda name, outcome: plain(f"{name}: {outcome}"))
        return
    with Progress(
        SpinnerColumn(finished_text=" "), TextColumn("{task.description}"), TimeElapsedColumn(), console=console
    ) as bar:
        tasks = {name: bar.add_task(f"{name}: waiting", total=1, start=False) for name in names}

        def start(name: str) -> None:
            bar.update(tasks[name], description=f"{name}: {what}")
            bar.start_task(tasks[name])

        def step(name: str, event: dict[str, Any]) -> None:
            finished_step(name, event)
            running = event.get("started")
            bar.update(tasks[name], description=escape(f"{name}: {what}: {_steps_text(done[name], running)}"))

        def finish(name: str, outcome: str) -> None:
            steps = f" [{_steps_text(done[name], None)}]" if done[name] else ""
            bar.update(tasks[name], description=escape(f"{name}: {outcome}{steps}"), completed=1)
            bar.stop_task(tasks[name])

        yield Lines(start, step, finish)


def outcome(entry: dict[str, Any]) -> str:
    """One backend's status, detail and time on one line, for progress."""
    detail = f", {entry['detail']}" if entry["detail"] else ""
    seconds = f" ({entry['seconds']:.1f} s)" if entry["seconds"] is not None else ""
    return f"{entry['status']}{detail}{seconds}"


def run_and_show(
    args: argparse.Namespace,
    what: str,
    run: Callable[..., dict[str, Any]],
    render: Callable[[dict[str, Any], Any], None],
    always: Sequence[str] = (),
    steps: bool = False,
) -> dict[str, Any] | None:
    """Run a tool on ``args.backends`` with one progress line per backend doing ``what``, then print its
    report as JSON (``--json``) or with ``render(report, console)``. None when rich is needed and absent.

    ``run(on_start=..., on_done=...)`` runs the tool (with ``steps``, also ``on_event=...``: its workers
    announce their steps); ``always`` are the backends it runs unasked (a reference).
    """
    if not args.json and not has_rich():
        return None
    names = runner.to_run(runner.plan(args.backends, backends.available_backends(), always=always))
    with progress(names, what) as lines:
        events = {"on_event": lines.step} if steps else {}
        report = run(on_start=lines.start, on_done=lambda name, entry: lines.finish(name, outcome(entry)), **events)
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        from rich.console import Console

        render(report, Console(emoji=False))  # no :name: emoji codes: layer specs hold colons
    return report
