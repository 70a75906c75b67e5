"""``d2lconv parity``: every backend in its own process, compared with the NumPy reference
(``d2lconv.harness.parity``); a table or the JSON report, and its exit code."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

from ..harness.parity import onnx_reference, sections
from ..harness.parity import run as parity
from ..harness.parity.compare import REFERENCE
from ..harness.parity.render import render
from .args import add_backends_option, add_command, add_timeout_option
from .console import run_and_show

EXIT_CODES = (
    "exit codes: 0 every compared backend agrees with the reference; 1 a value differs; "
    "2 a requested backend is missing, crashed or timed out, or a bad argument"
)


def parity_command(args: argparse.Namespace) -> int:
    """``d2lconv parity``: run, compare, print (a table or JSON); the exit code of the report."""
    only = args.sections or (None if args.all else list(sections.DEFAULT_SECTIONS))

    def run(on_done: Callable[[str, dict[str, Any]], None], **progress: Any) -> dict[str, Any]:
        def done(name: str, entry: dict[str, Any]) -> None:
            if entry["status"] == "timed out":  # say how to give it more time, or leave the section out
                entry["detail"] += (
                    f"; give it more time with --timeout S (now {args.timeout:g}) or leave that section out "
                    f"with --sections (chosen: {', '.join(sections.chosen(only))})"
                )
            on_done(name, entry)

        return parity.run_parity(
            args.backends, reference=args.reference, timeout=args.timeout, only=only, on_done=done, **progress
        )

    report = run_and_show(args, "running", run, render, always=(REFERENCE,), steps=True)
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
    parser = add_command(
        commands,
        "parity",
        summary,
        "the chapters' "
        "numbers, gradients, learned kernels, the batched ops, batch normalisation, LeNet's and BN-LeNet's "
        "losses and the modern CNNs' shapes, within float32 tolerance.",
        EXIT_CODES,
    )
    add_backends_option(parser, "backends to compare (default: every installed one; numpy always runs)")
    extra = [name for name in sections.SECTIONS if name not in sections.DEFAULT_SECTIONS]
    choice = parser.add_mutually_exclusive_group()
    choice.add_argument(
        "--sections",
        type=section_names,
        metavar="S,T",
        help=f"compare these sections of the book: {', '.join(sections.SECTIONS)} (default: the fast ones, "
        f"{', '.join(sections.DEFAULT_SECTIONS)}, seconds per backend)",
    )
    choice.add_argument(
        "--all",
        action="store_true",
        help=f"compare every section, {', '.join(extra)} too (the slow ones: tens of seconds to minutes per backend)",
    )
    parser.add_argument(
        "--reference",
        choices=(REFERENCE, onnx_reference.NAME),
        default=REFERENCE,
        help="what every backend is compared with: d2lconv's numpy backend (default), or onnxruntime "
        "(ONNX Runtime on each batched op as a one-node ONNX model; forward values only; numpy is compared "
        'too; needs pip install "d2lconv[onnx]")',
    )
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    add_timeout_option(parser, parity.DEFAULT_TIMEOUT)
    parser.set_defaults(run=parity_command)
