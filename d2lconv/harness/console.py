"""What the tools share on the terminal: whether rich is there, and one progress line per backend."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable, Iterator, Sequence
from typing import Any

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
