"""``d2lconv port --from A --to B [--net lenet|demo]``: port an example network, explain, check."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

from .. import backends
from .args import non_negative_int

if TYPE_CHECKING:
    from ..core.network import Network


def _lenet(seed: int) -> Network:
    try:
        from ..book.lenet import lenet_network
    except ImportError:
        raise backends.BackendError("--net lenet needs d2lconv's LeNet section (d2lconv.book.lenet)") from None
    return lenet_network(seed)


def _demo(seed: int) -> Network:
    from ..porting import demo_network

    return demo_network(seed)


NETS = {"lenet": _lenet, "demo": _demo}


def add_parser(commands: argparse._SubParsersAction) -> None:
    """Register the ``port`` subcommand."""
    summary = "port an example network between two frameworks, explain, check"
    parser = commands.add_parser(
        "port",
        help=summary,
        description=f"{summary.capitalize()}: build the network in "
        "the source framework's own layers, port it, and print every step with its "
        "reason, the generated code and the measured difference.",
        epilog="exit codes: 0 ported; 1 a layer the target cannot express; 2 a bad or missing backend",
    )
    parser.add_argument("--from", dest="source", required=True, metavar="NAME", help="the framework to port from")
    parser.add_argument("--to", dest="target", required=True, metavar="NAME", help="the framework to port to")
    parser.add_argument(
        "--net",
        choices=sorted(NETS),
        default="demo",
        help="lenet (the book's LeNet-5) or demo (every porting trap in one network; default)",
    )
    parser.add_argument(
        "--seed", type=non_negative_int, default=0, help="seed of the weights and of the test batch (default: 0)"
    )
    parser.set_defaults(run=run)


def _backend(value: str, option: str) -> str:
    try:
        name = backends.canonical_name(value)
    except backends.BackendError as error:
        raise backends.BackendError(f"{option} {value!r}: {error}") from None
    if not backends.is_installed(name):
        raise backends.BackendError(f"{option} {value!r}: not installed here: {backends.install_hint(name)}")
    return name


def run(args: argparse.Namespace) -> int:
    """Build the example network in the source framework, port it, print the steps, the code and the
    measured difference."""
    source, target = _backend(args.source, "--from"), _backend(args.target, "--to")
    if "tensorflow" in (source, target) and "paddle" in (source, target):
        backends.load_backend("paddle")  # paddle first: importing it after tensorflow crashes
    from ..porting import port

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
    return 0
