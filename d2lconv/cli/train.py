"""``d2lconv train --net NAME`` (and ``d2lconv lenet``, its ``--net lenet``): train a seeded network of
``d2lconv.train`` on the bundled digits, with a progress bar per minibatch and the curves."""

from __future__ import annotations

import argparse
import math
from typing import Any

from .. import backends
from ..book import lenet, training
from .args import (
    add_backend_option,
    add_command,
    add_net_option,
    non_negative_int,
    plot_path,
    positive_float,
    positive_int,
    wrote,
)
from .console import has_rich

EXIT_CODES = "exit codes: 0 trained; 1 the training diverged; 2 a bad argument or a backend that is not installed"


def _per_net(column: int) -> str:
    """One default of every network, for ``--help``: ``lenet 30, bn-lenet 20``."""
    return ", ".join(f"{net} {defaults[column]:g}" for net, defaults in training.NETS.items())


def add_parser(commands: Any) -> None:
    """Register ``d2lconv train`` and ``d2lconv lenet`` (the same command with ``--net lenet``)."""
    summary = f"train a network ({', '.join(training.NETS)}) on the bundled digits, with a progress bar"
    parser = add_command(
        commands,
        "train",
        summary,
        "the seeded network of dc.train in the framework's own layers, "
        "plain minibatch SGD, loss and accuracy per epoch; one seed gives one curve on every backend.",
        EXIT_CODES,
    )
    add_net_option(parser, f"the network: {', '.join(training.NETS)} (default: lenet)", default="lenet")
    _add_training_options(parser, *(f"per network: {_per_net(column)}" for column in (1, 2, 3)))
    summary = "train LeNet (d2l 6.6) on the bundled digits, with a progress bar (d2lconv train --net lenet)"
    parser = add_command(
        commands,
        "lenet",
        summary,
        "the seeded network in the framework's own layers, plain minibatch SGD, loss and accuracy per epoch.",
        EXIT_CODES,
    )
    _add_training_options(parser, f"{lenet.EPOCHS}", f"{lenet.LR}", f"{lenet.BATCH_SIZE}")
    parser.set_defaults(net="lenet")


def _add_training_options(parser: argparse.ArgumentParser, epochs: str, lr: str, batch_size: str) -> None:
    """The options ``train`` and ``lenet`` share; a value left out is the network's default (shown as given)."""
    add_backend_option(parser, f"backend name or alias (default: ${backends.ENV_VAR} or numpy)")
    parser.add_argument("--epochs", type=positive_int, help=f"training epochs (default: {epochs})")
    parser.add_argument("--lr", type=positive_float, help=f"learning rate of plain SGD (default: {lr})")
    parser.add_argument("--batch-size", type=positive_int, help=f"minibatch size (default: {batch_size})")
    parser.add_argument(
        "--seed", type=non_negative_int, default=0, help="seed of the initial weights and minibatch order (default: 0)"
    )
    parser.add_argument(
        "--plot",
        type=plot_path,
        metavar="FILE",
        help="write the loss and accuracy curves (.png added when FILE has no suffix)",
    )
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Train on the chosen backend with a progress bar (the arguments are checked by the parser)."""
    import d2lconv as dc

    constructor, default_epochs, default_lr, default_batch = training.NETS[args.net]
    epochs = default_epochs if args.epochs is None else args.epochs
    values = {
        "lr": default_lr if args.lr is None else args.lr,
        "batch_size": default_batch if args.batch_size is None else args.batch_size,
        "seed": args.seed,
    }
    name = args.backend or backends.get_backend()
    if not has_rich():
        return 2
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
    from rich.table import Table

    console = Console()
    with dc.use_backend(name) as tab:
        console.print(
            f"{constructor} on backend '{name}' ({tab.FRAMEWORK.__name__} {tab.FRAMEWORK.__version__}): "
            f"plain SGD, lr {values['lr']}, batch {values['batch_size']}, seed {values['seed']}"
        )
        table = Table("layer", "output shape", title="layer summary (one 1x28x28 image)")
        for layer, shape in dc.layer_summary(getattr(tab, constructor)(values["seed"])):
            table.add_row(layer, " x ".join(map(str, shape)))
        console.print(table)
        if args.net == "lenet":
            console.print(
                f"note: the book's sigmoid LeNet sits at chance for about the first {lenet.PLATEAU_EPOCHS} epochs "
                f"on these digits; accuracy rises after that (defaults: above 95 % from epoch {lenet.EPOCHS_TO_95})"
            )
        columns = (
            TextColumn("epoch {task.fields[epoch]}/" + str(epochs)),
            BarColumn(),
            TextColumn("step {task.completed:.0f}/{task.total:.0f}"),
            TimeElapsedColumn(),
            TextColumn("remaining"),
            TimeRemainingColumn(),
            TextColumn("loss {task.fields[loss]}"),
        )
        steps = math.ceil(len(lenet.digits().train_y) / values["batch_size"]) * epochs
        with Progress(*columns, console=console) as bar:
            task = bar.add_task("", total=steps, epoch=1, loss="-")

            def on_step(epoch: int, step: int, steps: int, loss: float) -> None:
                bar.update(task, advance=1, epoch=epoch, loss=f"{loss:.3f}")

            def on_epoch(epoch: int, fit: lenet.LeNetFit) -> None:
                steps = len(fit.losses) // epoch
                mean_loss = sum(fit.losses[-steps:]) / steps
                bar.console.print(
                    f"epoch {epoch}/{epochs}: loss {mean_loss:.3f}, "
                    f"train acc {fit.train_acc[-1]:.3f}, test acc {fit.test_acc[-1]:.3f}"
                )

            fit = dc.train(args.net, epochs, on_epoch=on_epoch, on_step=on_step, **values)
    console.print(
        f"train acc {fit.train_acc[-1]:.3f}, test acc {fit.test_acc[-1]:.3f}, "
        f"{fit.seconds / epochs:.2f} s per epoch ({fit.seconds:.1f} s of training)"
    )
    if args.net == "lenet" and lenet.at_chance(fit.test_acc[-1]):
        console.print(ended_at_chance(epochs))
    if args.plot:
        plot(args.plot, constructor, fit)
        wrote(args.plot)
    return 0


def ended_at_chance(epochs: int) -> str:
    """Why a LeNet run that ended at chance level is not broken, and how many more epochs the default trains."""
    plateau = (
        f"the run ended at chance level, still on the sigmoid plateau: with the defaults accuracy rises after "
        f"epoch {lenet.PLATEAU_EPOCHS} and passes 95 % at epoch {lenet.EPOCHS_TO_95}"
    )
    if epochs < lenet.EPOCHS:
        return (
            f"{plateau}; the default {lenet.EPOCHS} epochs are {lenet.EPOCHS - epochs} more than this run's "
            f"{epochs} (d2lconv lenet --epochs {lenet.EPOCHS})"
        )
    return f"{plateau} (lr {lenet.LR}, batch {lenet.BATCH_SIZE}, seed 0); another lr, batch or seed can stay longer"


def plot(path: Any, title: str, fit: lenet.LeNetFit) -> None:
    """The loss of every step and the accuracies of every epoch, side by side, as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    epochs = len(fit.test_acc)
    steps = [(step + 1) * epochs / len(fit.losses) for step in range(len(fit.losses))]
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(10, 3.6))
    ax_loss.plot(steps, fit.losses, linewidth=0.8)
    ax_loss.set(title=f"{title} on {fit.backend}: loss of each minibatch", xlabel="epoch", ylabel="cross-entropy")
    ax_acc.plot(range(1, epochs + 1), fit.train_acc, marker="o", label="train acc")
    ax_acc.plot(range(1, epochs + 1), fit.test_acc, marker="s", label="test acc")
    ax_acc.set(title="accuracy", xlabel="epoch", ylim=(0, 1.02))
    ax_acc.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
