"""``d2lconv bench --train``: seconds per epoch of the networks ``d2lconv.train`` trains on the digits (BN-LeNet
and the ResNet by default; ``--lenet`` is LeNet alone), per framework, d2lconv's loop vs the framework's own.

Each backend runs in its own worker process (``measure``), one at a time. For each network the worker
runs, ``ROUNDS`` times and in alternating order (ours, book; book, ours), ``epochs`` epochs of
d2lconv's ``dc.train`` (the time of its training steps alone, as ``LeNetFit.seconds``) and ``epochs``
epochs of the tab's ``book_train`` (the framework's idiomatic loop: its own data loader and optimizer,
``compile``/``fit`` for Keras, a jitted step for JAX) on a fresh network from the same seed, with the
same data, batch size and lr. The first epoch of each run is left out (tracing, compilation, caches);
the rest give a median. Targets: d2lconv's loop at most 1.2x the idiomatic one; NumPy's epoch at most
5x torch's, per network.

``d2lconv bench --train --json`` prints the report documented in docs/api.md ("JSON reports").
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Sequence
from typing import Any

from ...book import training
from .. import runner
from .targets import train_targets

EPOCHS, ROUNDS = 2, 2  # the first epoch of each run is left out: 2 x (2 - 1) samples per loop and network
DEFAULT_TIMEOUT = 1800.0
# The networks ``bench --train`` times unless told: every one of ``dc.train`` after the chapter-6 LeNet.
DEFAULT_NETS = tuple(net for net in training.NETS if net != "lenet")


def _our_epochs(net: str, epochs: int) -> list[float]:
    """The training seconds of each epoch of one ``dc.train(net)`` run (defaults) on the active backend."""
    import d2lconv as dc

    marks = [0.0]
    dc.train(net, epochs, on_epoch=lambda epoch, fit: marks.append(fit.seconds))
    return [end - start for start, end in zip(marks[:-1], marks[1:], strict=True)]


def _book_epochs(tab: Any, net: str, epochs: int) -> list[float]:
    """The seconds of each epoch of the tab's own loop, ``book_train``, on the same seeded network and data."""
    import d2lconv as dc

    constructor, _, lr, batch_size = training.NETS[net]
    data = dc.digits()
    return list(tab.book_train(getattr(tab, constructor)(0), data.train_x, data.train_y, lr, batch_size, epochs))


def measure(name: str, nets: Sequence[str] = DEFAULT_NETS, epochs: int = EPOCHS) -> dict[str, Any]:
    """Backend ``name``'s median seconds per epoch of each network: d2lconv's loop and the framework's, alternated."""
    import d2lconv as dc

    results = {}
    with dc.use_backend(name) as tab:
        for net in nets:
            runner.step_started(net)
            start = time.perf_counter()
            samples: dict[str, list[float]] = {"ours": [], "book": []}
            for round_ in range(ROUNDS):
                for loop in ("ours", "book") if round_ % 2 == 0 else ("book", "ours"):
                    run = _our_epochs(net, epochs) if loop == "ours" else _book_epochs(tab, net, epochs)
                    samples[loop] += run[1:]
            ours_s, book_s = statistics.median(samples["ours"]), statistics.median(samples["book"])
            results[net] = {"ours_s": ours_s, "book_s": book_s, "ours_over_book": ours_s / book_s}
            runner.step_done(net, time.perf_counter() - start)
        version = str(tab.FRAMEWORK.__version__)
    return {"backend": name, "version": version, "nets": results}


def run_bench(
    requested: Sequence[str] | None = None,
    nets: Sequence[str] = DEFAULT_NETS,
    epochs: int = EPOCHS,
    timeout: float = DEFAULT_TIMEOUT,
    on_start: Callable[[str], None] | None = None,
    on_done: Callable[[str, dict[str, Any]], None] | None = None,
    on_event: Callable[[str, dict[str, Any]], None] | None = None,
) -> dict[str, Any]:
    """Each planned backend in its own worker, one at a time: the report."""
    if epochs < 2:
        raise ValueError(f"epochs must be at least 2 (the first epoch of each run is left out), got {epochs!r}")
    unknown = [net for net in nets if net not in training.NETS]
    if unknown or not nets:
        raise ValueError(f"nets must name networks of {', '.join(training.NETS)}, got {list(nets)!r}")

    def fields(name: str, output: dict[str, Any] | None) -> dict[str, Any]:
        return {"nets": (output or {}).get("nets", {})}

    entries = runner.run_backends(
        requested,
        lambda name: runner.worker_command("train", name, nets=list(nets), epochs=epochs),
        fields,
        timeout,
        on_start=on_start,
        on_done=on_done,
        on_event=on_event,
    )
    return {
        "config": {
            "epochs": epochs,
            "rounds": ROUNDS,
            "nets": {net: {"lr": training.NETS[net][2], "batch_size": training.NETS[net][3]} for net in nets},
        },
        "backends": entries,
        "targets": train_targets(entries),
        "exit_code": runner.exit_code(entries),
    }
