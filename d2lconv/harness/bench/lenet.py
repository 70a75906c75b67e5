"""``d2lconv bench --lenet``: seconds per epoch of LeNet on the digits, per framework, ours vs the book's loop.

Each backend runs in its own worker process (``measure``), one at a time. The worker alternates,
``rounds`` times, ``epochs`` epochs of d2lconv's ``train_lenet`` (the time of its training steps
alone, as ``LeNetFit.seconds``) and ``epochs`` epochs of the tab's ``book_train`` (the framework's
idiomatic loop: its own data loader and optimizer, or ``compile``/``fit`` for Keras) on the same
data, batch size and lr. The first epoch of each run is left out (tracing, caches), the rest give a
median. Targets: d2lconv's loop at most 1.2x the idiomatic one; NumPy's epoch at most 5x torch's.

``d2lconv bench --lenet --json`` prints the report documented in docs/api.md ("JSON reports").
"""

from __future__ import annotations

import statistics
from collections.abc import Callable, Sequence
from typing import Any

from ...book import lenet
from .. import runner
from .targets import lenet_targets

EPOCHS, ROUNDS = 3, 2
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


def run_bench(
    requested: Sequence[str] | None = None,
    epochs: int = EPOCHS,
    rounds: int = ROUNDS,
    timeout: float = DEFAULT_TIMEOUT,
    on_start: Callable[[str], None] | None = None,
    on_done: Callable[[str, dict[str, Any]], None] | None = None,
) -> dict[str, Any]:
    """Each planned backend in its own worker, one at a time: the report."""

    def fields(name: str, output: dict[str, Any] | None) -> dict[str, Any]:
        return {key: (output or {}).get(key) for key in ("ours_s", "book_s", "ours_over_book")}

    entries = runner.run_backends(
        requested,
        lambda name: runner.worker_command("lenet", name, epochs=epochs, rounds=rounds),
        fields,
        timeout,
        on_start=on_start,
        on_done=on_done,
    )
    return {
        "config": {"epochs": epochs, "rounds": rounds, "batch_size": lenet.BATCH_SIZE, "lr": lenet.LR},
        "backends": entries,
        "targets": lenet_targets(entries),
        "exit_code": runner.exit_code(entries),
    }
