"""``d2lconv lenet``: train the seeded LeNet on the bundled digits, with a progress bar and curves."""

from __future__ import annotations

import argparse
import importlib.util
import math
import os
import sys
from typing import Any

from . import backends, lenet
from .parity import has_rich


def add_parser(commands: Any) -> None:
    """Register ``d2lconv lenet`` on the ``add_subparsers`` object ``commands``."""
    parser = commands.add_parser("lenet", help="train LeNet (d2l 6.6) on the bundled digits, with a progress bar")
    parser.add_argument("--backend", help=f"backend name or alias (default: ${backends.ENV_VAR} or numpy)")
    parser.add_argument("--epochs", default=str(lenet.EPOCHS), help=f"training epochs (default: {lenet.EPOCHS})")
    parser.add_argument("--lr", default=str(lenet.LR), help=f"learning rate of plain SGD (default: {lenet.LR})")
    parser.add_argument("--batch-size", default=str(lenet.BATCH_SIZE),
                        help=f"minibatch size (default: {lenet.BATCH_SIZE})")
    parser.add_argument("--seed", default="0", help="seed of the initial weights and minibatch order (default: 0)")
    parser.add_argument("--plot", metavar="FILE", help="write the loss and accuracy curves as PNG")
    parser.set_defaults(run=run)


def _number(text: str, option: str, kind: type, positive: bool = True) -> Any:
    """``text`` as an int or a float; a ``ValueError`` naming the option and the value if it is not one."""
    try:
        value = kind(text)
    except ValueError:
        value = None
    if value is None or not math.isfinite(value) or not (value > 0 if positive else value >= 0):
        wanted = f"{'a positive' if positive else 'a non-negative'} {'int' if kind is int else 'number'}"
        raise ValueError(f"{option} must be {wanted}, got {text!r}")
    return value


def check_arguments(args: argparse.Namespace) -> dict[str, Any]:
    """The training arguments, checked; a ``ValueError`` naming the option and the value otherwise."""
    values = {"epochs": _number(args.epochs, "--epochs", int), "lr": _number(args.lr, "--lr", float),
              "batch_size": _number(args.batch_size, "--batch-size", int),
              "seed": _number(args.seed, "--seed", int, positive=False)}
    if args.plot:
        if importlib.util.find_spec("matplotlib") is None:
            raise ValueError('--plot needs matplotlib: pip install "d2lconv[plot]"')
        folder = os.path.dirname(os.path.abspath(args.plot))
        if not os.path.isdir(folder):
            raise ValueError(f"--plot {args.plot!r}: the folder {folder!r} does not exist")
    return values


def run(args: argparse.Namespace) -> int:
    """Check the arguments, then train on the chosen backend with a progress bar; 2 for bad arguments."""
    import d2lconv as dc

    try:
        values = check_arguments(args)
    except ValueError as error:
        print(f"d2lconv: error: {error}", file=sys.stderr)
        return 2
    name = backends.canonical_name(args.backend) if args.backend else backends.get_backend()
    if not has_rich():
        return 2
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
    from rich.table import Table

    console = Console()
    with dc.use_backend(name) as tab:
        console.print(f"LeNet on backend '{name}' ({tab.FRAMEWORK.__name__} {tab.FRAMEWORK.__version__}): "
                      f"plain SGD, lr {values['lr']}, batch {values['batch_size']}, seed {values['seed']}")
        table = Table("layer", "output shape", title="layer summary (one 1x28x28 image)")
        for layer, shape in dc.layer_summary(dc.LeNet(values["seed"])):
            table.add_row(layer, " x ".join(map(str, shape)))
        console.print(table)
        columns = (TextColumn("epoch"), MofNCompleteColumn(), BarColumn(), TextColumn("{task.description}"),
                   TimeElapsedColumn())
        with Progress(*columns, console=console) as bar:
            task = bar.add_task("", total=values["epochs"])

            def on_epoch(epoch: int, fit: lenet.LeNetFit) -> None:
                steps = len(fit.losses) // epoch
                mean_loss = sum(fit.losses[-steps:]) / steps
                bar.update(task, completed=epoch, description=f"loss {mean_loss:.3f}, train acc "
                           f"{fit.train_acc[-1]:.3f}, test acc {fit.test_acc[-1]:.3f}")

            try:
                fit = dc.train_lenet(on_epoch=on_epoch, **values)
            except lenet.TrainingDivergedError as error:
                console.print(f"d2lconv: {error}", markup=False)
                return 1
    console.print(f"train acc {fit.train_acc[-1]:.3f}, test acc {fit.test_acc[-1]:.3f}, "
                  f"{fit.seconds / values['epochs']:.2f} s per epoch ({fit.seconds:.1f} s of training)")
    if args.plot:
        plot(args.plot, fit)
        console.print(f"wrote {args.plot}")
    return 0


def plot(path: str, fit: lenet.LeNetFit) -> None:
    """The loss of every step and the accuracies of every epoch, side by side, as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    epochs = len(fit.test_acc)
    steps = [(step + 1) * epochs / len(fit.losses) for step in range(len(fit.losses))]
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(10, 3.6))
    ax_loss.plot(steps, fit.losses, linewidth=0.8)
    ax_loss.set(title=f"LeNet on {fit.backend}: loss of each minibatch", xlabel="epoch", ylabel="cross-entropy")
    ax_acc.plot(range(1, epochs + 1), fit.train_acc, marker="o", label="train acc")
    ax_acc.plot(range(1, epochs + 1), fit.test_acc, marker="s", label="test acc")
    ax_acc.set(title="accuracy", xlabel="epoch", ylim=(0, 1.02))
    ax_acc.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
