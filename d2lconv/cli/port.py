"""``d2lconv port --from A --to B [--net NAME]`` or ``d2lconv port FILE.onnx --to B``: port a network, explain,
check; ``-o`` writes the result (``--to onnx``: an ``.onnx`` file)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

from .. import backends
from ..book.lenet import lenet_network
from ..book.porting_nets import PORTING_NETWORKS
from ..core.network import Network
from ..porting import ONNX, Ported, demo_network, port, ports_graphs
from .args import NAMES, CommandError, add_command, backend_name, non_negative_int

# The file ``ported.code`` loads its weights from (next to it).
WEIGHTS_FILE = "weights.npz"

NETS: dict[str, Callable[[int], Network]] = {"lenet": lenet_network, "demo": demo_network, **PORTING_NETWORKS}


def output_path(text: str) -> Path:
    """``-o PATH``: where to write what ``port`` made (a folder, created if absent; with ``--to onnx`` a
    file); its parent folder must exist."""
    path = Path(text).expanduser()
    if not path.parent.is_dir():
        raise argparse.ArgumentTypeError(f"folder {str(path.parent)!r} does not exist, got {text!r}")
    return path


def onnx_file(text: str) -> Path:
    """The ``FILE.onnx`` to port: an existing file."""
    path = Path(text).expanduser()
    if not path.is_file():
        raise argparse.ArgumentTypeError(f"no file {text!r}")
    return path


def port_target(text: str) -> str:
    """``--to``: a backend name or alias, or ``onnx``."""
    if text.strip().lower() == ONNX:
        return ONNX
    try:
        return backend_name(text)
    except argparse.ArgumentTypeError as error:
        raise argparse.ArgumentTypeError(f"{error}; or onnx") from None


def add_parser(commands: argparse._SubParsersAction) -> None:
    """Register the ``port`` subcommand."""
    summary = "port an example network between two frameworks, explain, check"
    parser = add_command(
        commands,
        "port",
        summary,
        "build the network in "
        "the source framework's own layers, port it, and print every step with its "
        "reason, the generated code and the measured difference.",
        "exit codes: 0 ported; 1 a layer the target cannot express; 2 a bad argument, the same "
        "framework on both sides, or a backend that is not installed",
    )
    parser.add_argument(
        "file", nargs="?", type=onnx_file, metavar="FILE.onnx", help="an ONNX file to port (instead of --from)"
    )
    parser.add_argument(
        "--from",
        dest="source",
        type=backend_name,
        metavar="NAME",
        help=f"the framework to port the example --net from; {NAMES}",
    )
    parser.add_argument(
        "--to",
        dest="target",
        type=port_target,
        required=True,
        metavar="NAME",
        help="the framework to port to (another one), or onnx (an ONNX model, checked by ONNX Runtime)",
    )
    parser.add_argument(
        "--net",
        choices=sorted(NETS),
        default="demo",
        help="lenet (the book's LeNet-5), demo (every porting trap in one network; default), or a real "
        "network's shape: resnet (residual blocks, a stride-2 projection shortcut), mobilenet (depthwise, "
        "ReLU6, squeeze-excite, hard-swish, dropout), inception (four branches concatenated, ceil-mode pooling)",
    )
    parser.add_argument(
        "--seed", type=non_negative_int, default=0, help="seed of the weights and of the test batch (default: 0)"
    )
    parser.add_argument(
        "-o",
        "--output",
        type=output_path,
        metavar="PATH",
        help="also write into the folder PATH (created if absent; its parent must exist) the model in the target's "
        "own saved form (Keras .keras, PyTorch state_dict .pt, Paddle .pdparams, Gluon .params, Flax .msgpack, "
        "NumPy .npz), the weights file (weights.npz, ported.save_weights) and the generated code (NET_TARGET.py, "
        "which loads weights.npz from its folder); with --to onnx, the ONNX file PATH",
    )
    parser.set_defaults(run=run)


def _onnx_source(path: Path) -> Network:
    """The description of an ONNX file, or one line (exit 2) saying why it cannot be read."""
    try:
        from .. import onnx as onnx_format

        return onnx_format.read_network(path)
    except ImportError as error:
        raise CommandError(str(error)) from None
    except (ValueError, FileNotFoundError) as error:
        raise CommandError(f"{path}: {error}") from None


def _kinds(net: Network) -> str:
    """The layer kinds, in order (a graph's: each kind once, with its count)."""
    if net.is_sequential:
        return ", ".join(layer.kind for layer in net.layers)
    counts: dict[str, int] = {}
    for layer in net.layers:
        counts[layer.kind] = counts.get(layer.kind, 0) + 1
    return f"a graph of {len(net.layers)} nodes: " + ", ".join(f"{n} {kind}" for kind, n in counts.items())


def run(args: argparse.Namespace) -> int:
    """Build the example network in the source framework (or read the ONNX file), port it, print the steps,
    the code and the measured difference; with ``--output``, write the result too."""
    if (args.file is None) == (args.source is None):
        raise CommandError("give either --from NAME (with --net) or an ONNX FILE, not both or neither")
    source, target = (ONNX if args.file is not None else args.source), args.target
    if source == target:
        raise CommandError(f"--from and --to name the same framework, {source!r}: nothing to port")
    if args.file is not None:
        net, model, label = _onnx_source(args.file), args.file, args.file.name
    else:
        net, label = NETS[args.net](args.seed), args.net
        for option, name in (("--from", source), ("--to", target)):
            if not (net.is_sequential or name == ONNX or ports_graphs(name)):
                raise CommandError(
                    f"{option} {name}: the {name} tab cannot port graphs such as --net {args.net} yet; "
                    f"tabs that can: {', '.join(n for n in backends.BACKENDS if ports_graphs(n))}"
                )
        model = backends.load_backend(source).build_network(net)
    try:
        ported = port(model, to=target, input_shape=net.input_shape, seed=args.seed)
    except ValueError as error:
        print(f"d2lconv: {error}", file=sys.stderr)
        return 1
    print(f"{label} ({_kinds(net)}) on {'x'.join(map(str, net.input_shape))} inputs, {source} -> {target}\n")
    print("Steps:" if ported.steps else "Steps: none (the two frameworks agree on every layout and padding here)")
    for step in ported.steps:
        print(f"  - {step}")
    if target != ONNX:
        print(f"\nCode ({target}; ported.save_weights('weights.npz') writes the weights it loads):\n")
        print(ported.code)
    print(f"Largest difference on a seeded random batch ({ported.layout}): {ported.max_diff:.3g}")
    if args.output is not None:
        _write(ported, args.output, Path(label).stem, target)
    return 0


def _write(ported: Ported, output: Path, stem: str, target: str) -> None:
    """Write the port: an ONNX file, or the weights and the code into a folder."""
    if target == ONNX:
        import onnx

        path = output / f"{stem}.onnx" if output.is_dir() else output
        onnx.save(ported.model, str(path))
        opset = ported.model.opset_import[0].version
        print(f"\nwrote {path} (ONNX, opset {opset}; checked by ONNX Runtime)")
        return
    if output.exists() and not output.is_dir():
        raise CommandError(f"argument -o/--output: {str(output)!r} exists and is not a folder")
    output.mkdir(exist_ok=True)
    weights, code = output / WEIGHTS_FILE, output / f"{stem}_{target}.py"
    saved = backends.load_backend(target).save_model(ported.model, output, stem)
    ported.save_weights(weights)
    code.write_text(ported.code)
    print()
    for path in saved:
        print(f"wrote {path} ({target}'s own saved form of the model)")
    print(f"wrote {weights} (the weights, in {target}'s layouts)")
    print(f"wrote {code} (builds the network in {target}; run it in {output}, it loads {WEIGHTS_FILE})")
