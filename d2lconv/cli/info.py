"""``d2lconv info``: every backend, installed or not, with its version, and the active one."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from .. import backends


def info(args: argparse.Namespace) -> int:
    """Print every backend: installed or not, its version, and the active one."""
    try:
        active = backends.get_backend()
    except backends.BackendError as error:
        active = f"none ({error})"
    print(
        f"d2lconv {backends.distribution_version('d2lconv')}, Python {sys.version.split()[0]}; active backend: {active}"
    )
    for name in backends.BACKENDS:
        installed = backends.is_installed(name)
        status = (
            f"installed, {backends.framework_version(name) or 'version unknown'}"
            if installed
            else f"not installed: {backends.install_hint(name)}"
        )
        print(f"  {name:<11} {status}")
    return 0


def add_parser(commands: Any) -> None:
    """Register ``d2lconv info`` on the CLI's subcommands."""
    summary = "list backends, installed or not, with versions"
    parser = commands.add_parser(
        "info",
        help=summary,
        description=f"{summary.capitalize()}, and the active backend (${backends.ENV_VAR}).",
        epilog="exit codes: 0 listed (it only reads what is installed); 2 a bad argument",
    )
    parser.set_defaults(run=info)
