"""``d2lconv bench --lenet``: seconds per epoch of LeNet on the digits, per framework, ours vs the book's loop.

Each backend runs in its own worker process, one at a time (``python -m d2lconv.harness.bench.lenet
--worker NAME``). The worker alternates, ``rounds`` times, ``epochs`` epochs of d2lconv's
``train_lenet`` (the time of its training steps alone, as ``LeNetFit.seconds``) and
``epochs`` epochs of the tab's ``book_train`` (the framework's idiomatic loop: its own data
loader and optimizer, or ``compile``/``fit`` for Keras) on the same data, batch size and lr.
The first epoch of each run is left out (tracing, caches), the rest give a median. Targets:
d2lconv's loop at most 1.2x the idiomatic one; NumPy's epoch at most 5x torch's.

``d2lconv bench --lenet --json`` prints::

    {"config": {"epochs": 3, "rounds": 2, "batch_size": 32, "lr": 0.9},
     "backends": {"torch": {"status": "ok", "detail": "", "version": "2.13.0", "seconds": 20.1,
                            "ours_s": 0.41, "book_s": 0.39, "ours_over_book": 1.05}, ...},
     "targets": [{"backend": "torch", "ratio": "ours_over_book", "value": 1.05, "limit": 1.2, "met": true},
                 {"backend": "numpy", "ratio": "numpy_over_torch", "value": 3.1, "limit": 5.0, "met": true}, ...],
     "exit_code": 0}
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from collections.abc import Sequence
from typing import Any

from ... import backends
from ...book import lenet
from ..console import has_rich, outcome, progress
from ..runner import FAILED, plan, result_channel, run_worker

EPOCHS, ROUNDS = 3, 2
OURS_LIMIT, NUMPY_LIMIT = 1.2, 5.0
DEFAULT_TIMEOUT = 900.0


def _epoch_seconds(epochs: int) -> list[float]:
    """The training seconds of each epoch of one default ``train_lenet`` run on the active backend."""
    import d2lconv as dc

    marks = [0.0]
    dc.train_lenet(epochs=epochs, on_epoch=lambda epoch, fit: marks.append(fit.seconds))
    return [end - start for start, end in zip(marks[:-1], marks[1:], strict=True)]


def measure(name: str, epochs: int = EPOCHS, rounds: int = ROUNDS) -> dict[str, Any]:
    """Backend ``name``'s median seconds per epoch: d2lconv's driver and the framework's own loop, alternated."""
    import d2lconv as dc

    data = dc.digits()
    ours, book = [], []
    with dc.use_backend(name) as tab:
        for _ in range(rounds):
            ours += _epoch_seconds(epochs)[1:]
            book += tab.book_train(tab.LeNet(0), data.train_x, data.train_y, lenet.LR, lenet.BATCH_SIZE, epochs)[1:]
        version = str(tab.FRAMEWORK.__version__)
    ours_s, book_s = statistics.median(ours), statistics.median(book)
    return {"backend": name, "version": version, "ours_s": ours_s, "book_s": book_s, "ours_over_book": ours_s / book_s}


def worker_command(name: str, epochs: int, rounds: int) -> list[str]:
    """The command that runs backend ``name``'s LeNet bench worker."""
    return [
        sys.executable,
        "-m",
        "d2lconv.harness.bench.lenet",
        "--worker",
        name,
        "--epochs",
        str(epochs),
        "--rounds",
        str(rounds),
    ]


def targets(entries: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """Our loop over the framework's (at most 1.2x) per backend, and NumPy's epoch over torch's (at most 5x)."""
    found = [
        {
            "backend": name,
            "ratio": "ours_over_book",
            "value": entry["ours_over_book"],
            "limit": OURS_LIMIT,
            "met": entry["ours_over_book"] <= OURS_LIMIT,
        }
        for name, entry in entries.items()
        if entry.get("ours_over_book") is not None
    ]
    numpy_s, torch_s = (entries.get(name, {}).get("ours_s") for name in ("numpy", "torch"))
    if numpy_s and torch_s:
        found.append(
            {
                "backend": "numpy",
                "ratio": "numpy_over_torch",
                "value": numpy_s / torch_s,
                "limit": NUMPY_LIMIT,
                "met": numpy_s / torch_s <= NUMPY_LIMIT,
            }
        )
    return found


def run_bench(
    requested: Sequence[str] | None = None,
    epochs: int = EPOCHS,
    rounds: int = ROUNDS,
    timeout: float = DEFAULT_TIMEOUT,
    on_start: Any = None,
    on_done: Any = None,
) -> dict[str, Any]:
    """Each planned backend in its own worker, one at a time: the report."""
    entries: dict[str, dict[str, Any]] = {}
    for name, decision in plan(requested, backends.available_backends(), always=()).items():
        entry: dict[str, Any] = {
            "status": decision,
            "detail": "",
            "version": None,
            "seconds": None,
            "ours_s": None,
            "book_s": None,
            "ours_over_book": None,
        }
        if decision == "run":
            if on_start:
                on_start(name)
            done = run_worker(worker_command(name, epochs, rounds), timeout)
            output = done.output if isinstance(done.output, dict) else {}
            entry.update({key: output.get(key) for key in ("version", "ours_s", "book_s", "ours_over_book")})
            entry.update(status=done.status, detail=done.detail, seconds=done.seconds)
            if on_done:
                on_done(name, entry)
        elif decision in ("missing", "not installed"):
            entry["detail"] = backends.install_hint(name)
        entries[name] = entry
    failed = any(entry["status"] in FAILED for entry in entries.values())
    return {
        "config": {"epochs": epochs, "rounds": rounds, "batch_size": lenet.BATCH_SIZE, "lr": lenet.LR},
        "backends": entries,
        "targets": targets(entries),
        "exit_code": 2 if failed else 0,
    }


def render(report: dict[str, Any], console: Any) -> None:
    """Print seconds per epoch per backend and the targets."""
    from rich.table import Table

    found = {(target["backend"], target["ratio"]): target for target in report["targets"]}

    def verdict(target: dict[str, Any] | None) -> str:
        if target is None:
            return ""
        colour, mark = ("green", "✓") if target["met"] else ("bold red", "✗")
        return f"[{colour}]{target['value']:.2f}x {mark}[/]"

    config = report["config"]
    table = Table(
        title=f"LeNet on the digits: seconds per epoch (median; batch {config['batch_size']}, "
        f"{config['rounds']} x {config['epochs']} epochs, first of each left out)",
        title_justify="left",
    )
    for column in (
        "backend",
        "status",
        "d2lconv",
        "book's loop",
        f"ours/book ≤ {OURS_LIMIT:g}",
        f"numpy/torch ≤ {NUMPY_LIMIT:g}",
    ):
        table.add_column(column, justify="left" if column in ("backend", "status") else "right", no_wrap=True)
    for name, entry in report["backends"].items():
        if entry["status"] in ("not installed", "not requested"):
            continue
        seconds = [f"{entry[key]:.3f}" if entry[key] is not None else "" for key in ("ours_s", "book_s")]
        table.add_row(
            name,
            entry["status"] if not entry["detail"] else f"{entry['status']}: {entry['detail']}",
            *seconds,
            verdict(found.get((name, "ours_over_book"))),
            verdict(found.get((name, "numpy_over_torch"))),
        )
    console.print(table)


def command(args: argparse.Namespace) -> int:
    """``d2lconv bench --lenet``: measure, then print a table or JSON."""
    requested = args.backends
    if not args.json and not has_rich():
        return 2
    to_run = [name for name, what in plan(requested, backends.available_backends(), always=()).items() if what == "run"]
    with progress(to_run, "training LeNet") as (start, finish):
        report = run_bench(requested, on_start=start, on_done=lambda name, entry: finish(name, outcome(entry)))
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        from rich.console import Console

        render(report, Console())
    return int(report["exit_code"])


def add_flag(parser: argparse.ArgumentParser) -> None:
    """Add ``--lenet`` to ``d2lconv bench``: with it, the command measures LeNet's training instead."""
    parser.add_argument(
        "--lenet",
        action="store_true",
        help="time LeNet's training per epoch instead: d2lconv's loop vs the framework's own",
    )
    plain = parser.get_default("run")
    parser.set_defaults(run=lambda args: command(args) if args.lenet else plain(args))


def main(argv: Sequence[str] | None = None) -> None:
    """``python -m d2lconv.harness.bench.lenet --worker NAME``: the worker process of one backend."""
    parser = argparse.ArgumentParser(prog="python -m d2lconv.harness.bench.lenet", description=__doc__.splitlines()[0])
    parser.add_argument("--worker", required=True, metavar="NAME")
    parser.add_argument("--epochs", type=int, default=EPOCHS)
    parser.add_argument("--rounds", type=int, default=ROUNDS)
    args = parser.parse_args(argv)
    with result_channel() as write:
        write(measure(args.worker, args.epochs, args.rounds))


if __name__ == "__main__":
    main()
