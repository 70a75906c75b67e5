"""What every ``d2lconv`` subcommand shares on its command line: argument types that validate at parse
time, the backend options, and the errors a command raises for the CLI to turn into one line.

A bad value fails in ``parse_args``, before any long work: ``d2lconv: error: argument --lr:
must be a positive number, got 'nan'`` and exit 2. A tool module imports from here, never
from ``d2lconv.cli``.
"""

from __future__ import annotations

import argparse
import importlib.util
import math
import os
import sys
from pathlib import Path
from typing import Any, NoReturn

from .. import backends
from ..book import training

NAMES = f"names: {', '.join(backends.BACKENDS)} (aliases {', '.join(backends.ALIASES)})"
PLOT_HINT = 'needs matplotlib: pip install "d2lconv[plot]"'
PLOT_FORMATS = ("png", "pdf", "svg", "svgz", "jpg", "jpeg", "webp", "tif", "tiff", "eps", "ps")


class CommandError(Exception):
    """A bad value a command finds itself, before its long work: one line ``d2lconv: error: ...``, exit 2."""


class RunFailed(Exception):
    """A run that failed on its own terms (it diverged, ...): one line saying what happened, exit 1."""


class Parser(argparse.ArgumentParser):
    """An argument parser whose errors are one line, ``d2lconv: error: ...``, exit 2 (no usage block)."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"d2lconv: error: {message} (see: {self.prog} --help)\n")


def _invalid(what: str, text: str) -> NoReturn:
    raise argparse.ArgumentTypeError(f"{what}, got {text!r}")


def positive_float(text: str) -> float:
    """A finite number above zero (a learning rate, a timeout in seconds)."""
    try:
        value = float(text)
    except ValueError:
        _invalid("must be a positive number", text)
    if not math.isfinite(value) or value <= 0:
        _invalid("must be a positive number", text)
    return value


def int_at_least(minimum: int, what: str | None = None) -> Any:
    """An argparse type: an integer of at least ``minimum``, described as ``what`` in the error."""
    what = what or {0: "a non-negative integer", 1: "a positive integer"}.get(minimum, f"an integer >= {minimum}")

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            _invalid(f"must be {what}", text)
        if value < minimum:
            _invalid(f"must be {what}", text)
        return value

    parse.__name__ = what  # argparse names the type by it in its own messages
    return parse


non_negative_int = int_at_least(0)
positive_int = int_at_least(1)


def plot_path(text: str) -> Path:
    """Where to write a figure: its folder must exist, and a name without a suffix gets ``.png``.

    Also checks that matplotlib is installed, so that ``--plot`` fails before the work, not after.
    """
    path = Path(text).expanduser()
    if not path.suffix:
        path = path.with_name(path.name + ".png")
    if path.suffix.lower().lstrip(".") not in PLOT_FORMATS:
        _invalid(f"must end in one of .{', .'.join(PLOT_FORMATS)} (or have no suffix, for .png)", text)
    folder = path.parent
    if not folder.is_dir():
        _invalid(f"folder {str(folder)!r} does not exist", text)
    if not os.access(folder, os.W_OK):
        _invalid(f"folder {str(folder)!r} is not writable", text)
    if path.is_dir():
        _invalid("is a folder; give a file name", text)
    if importlib.util.find_spec("matplotlib") is None:
        raise argparse.ArgumentTypeError(PLOT_HINT)
    return path


def backend_name(text: str) -> str:
    """A backend name or alias, as its canonical name (installed or not: running it says so)."""
    try:
        return backends.canonical_name(text.strip())
    except backends.BackendError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def backend_names(text: str) -> list[str]:
    """Comma-separated backend names or aliases, as canonical names."""
    names = [backend_name(name) for name in text.split(",") if name.strip()]
    if not names:
        _invalid("must name at least one backend", text)
    return names


# The options that name backends, on the commands that take them (demo, lenet: one; parity, bench: several;
# port: a source and a target), with the option each is written as.
BACKEND_OPTIONS = {"backend": "--backend", "backends": "--backends", "source": "--from", "target": "--to"}


def require_installed(args: argparse.Namespace) -> None:
    """Fail at once, before any work, when an option names a backend that is not installed here."""
    installed = backends.available_backends()
    for dest, option in BACKEND_OPTIONS.items():
        value = getattr(args, dest, None)
        for name in [value] if isinstance(value, str) else value or []:
            if name == "onnx":  # port --to onnx: the onnx extra, not a backend
                _require_onnx(option)
            elif name not in installed:
                raise CommandError(
                    f"argument {option}: backend {name!r} is not installed here: {backends.install_hint(name)}"
                )


def _require_onnx(option: str) -> None:
    missing = [module for module in ("onnx", "onnxruntime") if importlib.util.find_spec(module) is None]
    if missing:
        raise CommandError(f'argument {option}: onnx needs {" and ".join(missing)}: pip install "d2lconv[onnx]"')


def add_command(commands: Any, name: str, summary: str, details: str, exit_codes: str) -> argparse.ArgumentParser:
    """Register subcommand ``name``: ``summary`` is its line in ``d2lconv --help`` and, with ``details``, the
    start of its own help; its exit codes close that help."""
    return commands.add_parser(  # type: ignore[no-any-return]
        name, help=summary, description=f"{summary[0].upper()}{summary[1:]}: {details}", epilog=exit_codes
    )


def add_backend_option(parser: argparse.ArgumentParser, help: str) -> None:  # noqa: A002 - argparse's name
    """``--backend NAME`` for a command that runs one backend (``--backends NAME`` is accepted too, unlisted)."""
    parser.add_argument("--backend", dest="backend", type=backend_name, metavar="NAME", help=f"{help}; {NAMES}")
    parser.add_argument("--backends", dest="backend", type=backend_name, help=argparse.SUPPRESS)


def add_backends_option(parser: argparse.ArgumentParser, help: str) -> None:  # noqa: A002 - argparse's name
    """``--backends A,B`` for a command that runs several; ``--backend A`` is accepted too, both repeatable."""
    parser.add_argument(
        "--backends",
        "--backend",
        dest="backends",
        type=backend_names,
        action="extend",
        metavar="A,B",
        help=f"{help} (comma-separated or repeated; --backend is the same option); {NAMES}",
    )


def add_net_option(parser: argparse.ArgumentParser, help: str, **how: Any) -> None:  # noqa: A002 - argparse's name
    """``--net NAME`` for a command that trains or times ``dc.train``'s networks; ``how`` is argparse's
    ``nargs`` or ``default``."""
    parser.add_argument("--net", choices=list(training.NETS), metavar="NAME", help=help, **how)


def add_timeout_option(parser: argparse.ArgumentParser, default: float | None, shown: str = "") -> None:
    """``--timeout S`` for a command that runs each backend in a worker process (parity, bench); ``shown``
    describes the default when it depends on other options (``default`` is then None)."""
    parser.add_argument(
        "--timeout",
        type=positive_float,
        default=default,
        metavar="S",
        help=f"seconds per backend before it counts as hung (default: {shown or f'{default:g}'})",
    )


def wrote(path: Path | str) -> None:
    """Say where a file was written (the real path, suffix included), on stderr."""
    print(f"wrote {path}", file=sys.stderr)
