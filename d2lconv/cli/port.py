"""``d2lconv port --from A --to B [--net lenet|demo]``: port an example network, explain, check."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .. import backends
from ..book.lenet import lenet_network
from ..porting import demo_network, port
from .args import NAMES, CommandError, backend_name, non_negative_int

# The file ``ported.code`` loads its weights from (next to it).
WEIGHTS_FILE = "weights.npz"

NETS = {"lenet": lenet_network, "demo": demo_network}


def output_folder(text: str) -> Path:
    """``-o DIR``: where to write what ``port`` made; created if absent, but its parent folder must exist."""
    path = Path(text).expanduser()
    if path.exists() and not path.is_dir():
        raise argparse.ArgumentTypeError(f"{str(path)!r} exists and is not a folder")
    if not path.parent.is_dir():
        raise argparse.ArgumentTypeError(f"folder {str(path.parent)!r} does not exist, got {text!r}")
    return path


def add_parser(commands: argparse._SubParsersAction) -> None:
    """Register the ``port`` subcommand."""
    summary = "port an example network between two frameworks, explain, check"
    parser = commands.add_parser(
        "port",
        help=summary,
        description=f"{summary.capitalize()}: build the network in "
        "the source framework's own layers, port it, and print every step with its "
        "reason, the generated code and the measured difference.",
        epilog="exit codes: 0 ported; 1 a layer the target cannot express; 2 a bad argument, the same "
        "framework on both sides, or a backend that is not installed",
    )
    parser.add_argument(
        "--from",
        dest="source",
        type=backend_name,
        required=True,
        metavar="NAME",
        help=f"the framework to port from; {NAMES}",
    )
    parser.add_argument(
        "--to",
        dest="target",
        type=backend_name,
        required=True,
        metavar="NAME",
        help="the framework to port to (another one)",
    )
    parser.add_argument(
        "--net",
        choices=sorted(NETS),
        default="demo",
        help="lenet (the book's LeNet-5) or demo (every porting trap in one network; default)",
    )
    parser.add_argument(
        "--seed", type=non_negative_int, default=0, help="seed of the weights and of the test batch (default: 0)"
    )
    parser.add_argument(
        "-o",
        "--output",
        type=output_folder,
        metavar="DIR",
        help="also write into DIR (created if absent; its parent must exist) the weights file (weights.npz, "
        "ported.save_weights) and the generated code (NET_TARGET.py, which loads weights.npz from its folder)",
    )
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Build the example network in the source framework, port it, print the steps, the code and the
    measured difference; with ``--output``, write the weights and the code too."""
    source, target = args.source, args.target
    if source == target:
        raise CommandError(f"--from and --to name the same framework, {source!r}: nothing to port")
    net = NETS[args.net](args.seed)
    model = backends.load_backend(source).build_network(net)
    try:
        ported = port(model, to=target, input_shape=net.input_shape, seed=args.seed)
    except ValueError as error:
        print(f"d2lconv: {error}", file=sys.stderr)
        return 1
    print(
        f"{args.net} ({', '.join(layer.kind for layer in net.layers)}) on {'x'.join(map(str, net.input_shape))} "
        f"inputs, {source} -> {target}\n"
    )
    print("Steps:" if ported.steps else "Steps: none (the two frameworks agree on every layout and padding here)")
    for step in ported.steps:
        print(f"  - {step}")
    print(f"\nCode ({target}; ported.save_weights('weights.npz') writes the weights it loads):\n")
    print(ported.code)
    print(f"Largest difference on a seeded random batch ({ported.layout}): {ported.max_diff:.3g}")
    if args.output is not None:
        args.output.mkdir(exist_ok=True)
        weights, code = args.output / WEIGHTS_FILE, args.output / f"{args.net}_{target}.py"
        ported.save_weights(weights)
        code.write_text(ported.code)
        print(f"\nwrote {weights} (the weights, in {target}'s layouts)")
        print(f"wrote {code} (builds the network in {target}; run it in {args.output}, it loads {WEIGHTS_FILE})")
    return 0
