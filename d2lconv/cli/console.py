"""What the commands share on the terminal: whether rich is there, one progress line per backend, and
``run_and_show``, the one prologue of the commands that run a tool per backend (parity, bench)."""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
from collections.abc import Callable, Iterator, Sequence
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
        yield (
            (lambda name: None),
            (lambda name, outcome: console.print(f"{name}: {outcome}", markup=False, highlight=False)),
        )
        return
    with Progress(
        SpinnerColumn(finished_text=" "), TextColumn("{task.description}"), TimeElapsedColumn(), console=console
    ) as bar:
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
    detail = f", {entry['detail']}" if entry["detail"] else ""
    seconds = f" ({entry['seconds']:.1f} s)" if entry["seconds"] is not None else ""
    return f"{entry['status']}{detail}{seconds}"


def run_and_show(
    args: argparse.Namespace,
    what: str,
    run: Callable[..., dict[str, Any]],
    render: Callable[[dict[str, Any], Any], None],
    always: Sequence[str] = (),
) -> dict[str, Any] | None:
    """Run a tool on ``args.backends`` with one progress line per backend doing ``what``, then print its
    report as JSON (``--json``) or with ``render(report, console)``. None when rich is needed and absent.

    ``run(on_start=..., on_done=...)`` runs the tool; ``always`` are the backends it runs unasked (a reference).
    """
    if not args.json and not has_rich():
        return None
    names = runner.to_run(runner.plan(args.backends, backends.available_backends(), always=always))
    with progress(names, what) as (start, finish):
        report = run(on_start=start, on_done=lambda name, entry: finish(name, outcome(entry)))
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        from rich.console import Console

        render(report, Console(emoji=False))  # no :name: emoji codes: layer specs hold colons
    return report
