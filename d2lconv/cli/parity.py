"""``d2lconv parity``: every backend in its own process, compared with the NumPy reference
(``d2lconv.harness.parity``); a table or the JSON report, and its exit code."""

from __future__ import annotations

import argparse
from typing import Any

from ..harness.parity import run as parity
from ..harness.parity import sections
from ..harness.parity.compare import REFERENCE
from ..harness.parity.render import render
from .args import add_backends_option, add_timeout_option
from .console import run_and_show

EXIT_CODES = (
    "exit codes: 0 every compared backend agrees with numpy; 1 a value differs; "
    "2 a requested backend is missing, crashed or timed out, or a bad argument"
)


def parity_command(args: argparse.Namespace) -> int:
    """``d2lconv parity``: run, compare, print (a table or JSON); the exit code of the report."""
    report = run_and_show(
        args,
        "running",
        lambda **progress: parity.run_parity(args.backends, timeout=args.timeout, only=args.sections, **progress),
        render,
        always=(REFERENCE,),
    )
    return 2 if report is None else int(report["exit_code"])


def section_names(text: str) -> list[str]:
    """``--sections``: comma-separated section names of ``d2lconv.harness.parity.sections.SECTIONS``."""
    try:
        return sections.check_sections([name.strip() for name in text.split(",") if name.strip()] or [text])
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def add_parser(commands: Any) -> None:
    """Register ``d2lconv parity`` on the CLI's subcommands."""
    summary = "run every backend in its own process and compare with numpy"
    parser = commands.add_parser(
        "parity",
        help=summary,
        description=f"{summary.capitalize()}: the chapter's "
        "numbers, gradients, learned kernels and the batched ops, within float32 "
        "tolerance.",
        epilog=EXIT_CODES,
    )
    add_backends_option(parser, "backends to compare (default: every installed one; numpy always runs)")
    parser.add_argument(
        "--sections",
        type=section_names,
        metavar="S,T",
        help=f"compare only these sections of the book: {', '.join(sections.SECTIONS)} (default: all)",
    )
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    add_timeout_option(parser, parity.DEFAULT_TIMEOUT)
    parser.set_defaults(run=parity_command)
