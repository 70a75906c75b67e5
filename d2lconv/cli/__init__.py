"""The ``d2lconv`` command. Each subcommand lives in a module of its own that exposes
``add_parser(commands)`` (its options, with the shared types of ``d2lconv.cli.args``, and a
handler returning the exit code); registering it here is one line in ``build_parser``.

Nothing below this module imports it. ``main`` turns every failure into one line:
a bad value (argparse, a ``BackendError``, a ``CommandError``) is ``d2lconv: error: ...``
and exit 2; a run that fails on its own terms (``TrainingDivergedError``, ``RunFailed``)
is ``d2lconv: ...`` and exit 1. Never a traceback.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence

from .. import __version__, backends
from ..book.conv_layer import TrainingDivergedError
from . import bench, demo, info, parity
from . import port as port_command
from . import train as train_command
from .args import CommandError, Parser, RunFailed, require_installed


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``d2lconv`` command, one line per subcommand."""
    parser = Parser(
        prog="d2lconv",
        description="The 'Convolutions for Images' chapter of Dive into Deep "
        "Learning on NumPy, PyTorch, TensorFlow, MXNet, Paddle and JAX, proven to agree "
        "(sections numbered as in the Chinese edition, d2l-zh: 6.2 to 6.6).",
        epilog="d2lconv COMMAND --help describes a command and its exit codes. "
        "exit codes: 0 done; 1 the run failed on its own terms; 2 a bad argument or a missing backend.",
    )
    parser.add_argument("--version", action="version", version=f"d2lconv {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    demo.add_parser(commands)
    info.add_parser(commands)
    parity.add_parser(commands)
    bench.add_parser(commands)
    train_command.add_parser(commands)
    port_command.add_parser(commands)
    return parser


def _one_line(error: BaseException) -> str:
    """An exception's message on one line."""
    return " ".join(str(error).split())


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code (0 done, 1 the run failed, 2 a bad argument)."""
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exit_:  # --help, --version, or a bad argument (already printed as one line)
        return exit_.code if isinstance(exit_.code, int) else 2
    try:
        run: Callable[[argparse.Namespace], int] = args.run  # the subcommand's handler, set by its add_parser
        require_installed(args)  # a missing backend fails here, before any work
        return run(args)
    except (backends.BackendError, CommandError) as error:
        print(f"d2lconv: error: {_one_line(error)}", file=sys.stderr)
        return 2
    except (TrainingDivergedError, RunFailed) as error:
        print(f"d2lconv: {_one_line(error)}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("d2lconv: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # the reader went away (d2lconv demo | head): stop quietly, as a shell tool does
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    except Exception as error:  # noqa: BLE001 - the command line shows one line, never a traceback
        print(f"d2lconv: {args.command} failed: {type(error).__name__}: {_one_line(error)}", file=sys.stderr)
        return 1
