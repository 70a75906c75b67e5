"""The ``d2lconv`` command: ``demo``, ``info``, ``parity``, ``bench``."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from importlib import metadata

import numpy as np

from . import backends, bench, chapter, parity, port_command


def framework_version(name: str) -> str | None:
    """The installed version of backend ``name``'s framework, read without importing it."""
    for distribution in metadata.packages_distributions().get(backends.framework_module(name), []):
        return distribution_version(distribution)
    return None


def info(args: argparse.Namespace) -> int:
    """Print every backend: installed or not, its version, and the active one."""
    try:
        active = backends.get_backend()
    except backends.BackendError as error:
        active = f"none ({error})"
    print(f"d2lconv {distribution_version('d2lconv')}, Python {sys.version.split()[0]}; active backend: {active}")
    for name in backends.BACKENDS:
        version = framework_version(name) if backends.is_installed(name) else None
        status = f"installed, {version or 'version unknown'}" if backends.is_installed(name) \
            else f"not installed: {backends.install_hint(name)}"
        print(f"  {name:<11} {status}")
    return 0


def distribution_version(distribution: str) -> str:
    """The installed version of ``distribution``, or "(not installed)"."""
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return "(not installed)"


def _show(title: str, array: np.ndarray) -> None:
    print(f"{title}\n{np.array2string(np.asarray(array), precision=4, suppress_small=True)}\n")


def demo(args: argparse.Namespace) -> int:
    """Walk through the chapter on one backend, printing what the book prints."""
    import d2lconv as dc

    name = backends.canonical_name(args.backend) if args.backend else backends.get_backend()
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
        _show("corr2d(X.T, K): the kernel only sees vertical edges, so all zeros =",
              dc.to_numpy(dc.corr2d(dc.to_numpy(X).T, K)))

        print(f"3. Learning a kernel: the framework's own conv layer, no bias, lr {args.lr}, seed {args.seed}")
        fit = dc.learn_kernel(lr=args.lr, epochs=args.epochs, seed=args.seed)
        if fit.initial_kernel is not None:
            print(f"initial kernel {np.array2string(fit.initial_kernel, precision=4)}")
        for epoch, loss in enumerate(fit.losses, 1):
            if epoch % 2 == 0:
                print(f"epoch {epoch}, loss {loss:.3f}")
        print(f"learned kernel {np.array2string(fit.kernel, precision=4)} (the edge kernel is [[1, -1]])")
        if args.plot:
            _plot(args.plot, dc.to_numpy(X), edges, fit)
            print(f"\nwrote {args.plot}")
    return 0


def _plot(path: str, image: np.ndarray, edges: np.ndarray, fit: chapter.KernelFit) -> None:
    try:
        import matplotlib
    except ImportError:
        raise SystemExit('--plot needs matplotlib: pip install "d2lconv[plot]"') from None
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


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``d2lconv`` command."""
    parser = argparse.ArgumentParser(prog="d2lconv", description="The 'Convolutions for Images' chapter of "
                                     "Dive into Deep Learning on NumPy, PyTorch, TensorFlow, MXNet and Paddle.")
    commands = parser.add_subparsers(dest="command", required=True)

    demo_parser = commands.add_parser("demo", help="walk through the chapter on one backend")
    demo_parser.add_argument("--backend", help=f"backend name or alias (default: ${backends.ENV_VAR} or numpy)")
    demo_parser.add_argument("--plot", metavar="FILE", help="write the edge image, edge map and loss curve as PNG")
    demo_parser.add_argument("--lr", type=float, default=3e-2, help="learning rate (default: the book's 0.03)")
    demo_parser.add_argument("--epochs", type=int, default=10, help="training epochs (default: 10)")
    demo_parser.add_argument("--seed", type=int, default=0, help="seed of the initial kernel (default: 0)")
    demo_parser.set_defaults(run=demo)

    info_parser = commands.add_parser("info", help="list backends, installed or not, with versions")
    info_parser.set_defaults(run=info)

    parity.add_parser(commands)
    bench.add_parser(commands)
    port_command.add_parser(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code (2 for a bad backend, one line, no traceback)."""
    args = build_parser().parse_args(argv)
    try:
        return args.run(args)
    except backends.BackendError as error:
        print(f"d2lconv: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
