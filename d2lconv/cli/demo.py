"""``d2lconv demo``: walk through the chapter on one backend, printing what the book prints."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import numpy as np

from .. import backends
from ..book import conv_layer as chapter
from . import demo_sections as section_demos
from .args import add_backend_option, add_command, non_negative_int, plot_path, positive_float, positive_int


def _show(title: str, array: Any) -> None:
    print(f"{title}\n{np.array2string(np.asarray(array), precision=4, suppress_small=True)}\n")


def demo(args: argparse.Namespace) -> int:
    """Walk through section 6.2 on one backend: the figure, edge detection, learning a kernel."""
    import d2lconv as dc

    name = args.backend or backends.get_backend()
    if args.section:
        return section_demos.walk(args.section, name)
    with dc.use_backend(name) as tab:
        print(f"d2lconv demo on backend '{name}' ({tab.FRAMEWORK.__name__} {tab.FRAMEWORK.__version__})\n")
        print("1. Cross-correlation (figure 6.2.1)")
        _show("X =", chapter.FIGURE_X)
        _show("K =", chapter.FIGURE_K)
        _show("corr2d(X, K) =", dc.to_numpy(dc.corr2d(chapter.FIGURE_X, chapter.FIGURE_K)))

        print("2. Object edge detection")
        X, K = dc.edge_image(), dc.edge_kernel()
        edges = dc.to_numpy(dc.corr2d(X, K))
        _show("X, a 6x8 image (1 = white, 0 = black) =", dc.to_numpy(X))
        _show("K =", dc.to_numpy(K))
        _show("Y = corr2d(X, K): 1 where white turns black, -1 where black turns white =", edges)
        _show(
            "corr2d(X.T, K): the kernel only sees vertical edges, so all zeros =",
            dc.to_numpy(dc.corr2d(dc.to_numpy(X).T, K)),
        )

        print(f"3. Learning a kernel: the framework's own conv layer, no bias, lr {args.lr}, seed {args.seed}")
        fit = dc.learn_kernel(lr=args.lr, epochs=args.epochs, seed=args.seed)
        if fit.initial_kernel is not None:
            print(f"initial kernel {np.array2string(fit.initial_kernel, precision=4)}")
        for epoch, loss in enumerate(fit.losses, 1):
            if epoch % 2 == 0:
                print(f"epoch {epoch}, loss {loss:.3f}")
        print(f"learned kernel {np.array2string(fit.kernel, precision=4)} (the edge kernel is [[1, -1]])")
        if args.plot:
            plot(args.plot, dc.to_numpy(X), edges, fit)
            print(f"\nwrote {args.plot}")
    return 0


def plot(path: Path, image: np.ndarray, edges: np.ndarray, fit: Any) -> None:
    """The edge image, its edge map and the loss curve side by side (format from the suffix)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax_image, ax_edges, ax_loss) = plt.subplots(1, 3, figsize=(12, 3.4))
    ax_image.imshow(image, cmap="gray", vmin=0, vmax=1)
    ax_image.set_title("edge image X")
    shown = ax_edges.imshow(edges, cmap="coolwarm", vmin=-1, vmax=1)
    ax_edges.set_title("edge map corr2d(X, [[1, -1]])")
    fig.colorbar(shown, ax=ax_edges, fraction=0.046)
    ax_loss.semilogy(range(1, len(fit.losses) + 1), fit.losses, marker="o")
    ax_loss.set(title=f"learning the kernel ({fit.backend})", xlabel="epoch", ylabel="summed squared error")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def add_parser(commands: Any) -> None:
    """Register ``d2lconv demo`` on the CLI's subcommands."""
    summary = "walk through the chapter on one backend"
    parser = add_command(
        commands,
        "demo",
        summary,
        "figure 6.2.1, edge detection, and learning the edge kernel by SGD, as the book prints them.",
        "exit codes: 0 done; 1 the training diverged; 2 a bad argument or a backend that is not installed",
    )
    add_backend_option(parser, f"backend name or alias (default: ${backends.ENV_VAR} or numpy)")
    parser.add_argument(
        "--plot",
        type=plot_path,
        metavar="FILE",
        help="write the edge image, edge map and loss "
        "curve as a figure (.png added when FILE has no suffix; needs the plot extra)",
    )
    parser.add_argument("--lr", type=positive_float, default=3e-2, help="learning rate (default: the book's 0.03)")
    parser.add_argument("--epochs", type=positive_int, default=10, help="training epochs (default: 10)")
    parser.add_argument("--seed", type=non_negative_int, default=0, help="seed of the initial kernel (default: 0)")
    parser.add_argument(
        "--section",
        choices=section_demos.SECTIONS,
        help="walk section 6.3, 6.4, 6.5, 7.5 (batch normalisation) or 7.6 (ResNet) instead of 6.2 "
        "(numbered as d2l-zh)",
    )
    parser.set_defaults(run=demo)
