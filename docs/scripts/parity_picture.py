"""Draw the site's picture of a real ``d2lconv parity`` run: its backends, and its checks summed up by
section of the book, as the terminal shows them (rich), saved as a self-contained SVG.

    d2lconv parity --json > parity.json        # every installed backend (all six for the picture)
    python docs/scripts/parity_picture.py parity.json docs/assets/parity.svg
"""

from __future__ import annotations

import argparse
import io
import json
import re
from pathlib import Path
from typing import Any

from rich import box
from rich.console import Console
from rich.table import Table

from d2lconv.harness.parity import sections
from d2lconv.harness.parity.compare import REFERENCE, counts


def section_checks(report: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    """The report's counted checks (informational rows left out), by section of the book."""
    by_key = {check["name"]: check for check in report["checks"]}
    grouped = {
        section: [by_key[check.key] for check in sections.parity_checks([section]) if check.key in by_key]
        for section in sections.SECTIONS
    }
    return {section: [check for check in checks if counts(check)] for section, checks in grouped.items() if checks}


def picture(report: dict[str, Any]) -> str:
    """One row per backend: its version, its seconds, how many of each section's checks agree with NumPy,
    and its largest difference; as an SVG of the terminal."""
    console = Console(record=True, width=100, file=io.StringIO(), color_system="truecolor")
    grouped = section_checks(report)
    table = Table(
        title=f"d2lconv parity: every backend in its own process, compared with {REFERENCE}",
        title_justify="left",
        caption="checks that agree within tolerance (|diff| <= 1e-5 + 1e-4 |ref| unless a check sets its own)",
        caption_justify="left",
        box=box.SIMPLE_HEAD,
    )
    for column in ("backend", "version", "seconds"):
        table.add_column(column, no_wrap=True)
    for section, checks in grouped.items():
        table.add_column(f"{section}\n[dim]{len(checks)}[/]", justify="center", no_wrap=True)
    table.add_column("largest\n|diff|", justify="right", no_wrap=True)
    for name, entry in report["backends"].items():
        seconds = "" if entry["seconds"] is None else f"{entry['seconds']:.0f}"
        if name == REFERENCE or entry["status"] != "ok":
            note = "[dim]reference[/]" if name == REFERENCE else f"[bold red]{entry['status']}[/]"
            table.add_row(name, entry["version"] or "", seconds, note, *[""] * len(grouped))
            continue
        cells, largest = [], 0.0
        for checks in grouped.values():
            passed = sum(check["cells"][name]["ok"] for check in checks)
            largest = max([largest, *((check["cells"][name]["max_abs_diff"] or 0.0) for check in checks)])
            cells.append(f"[{'green' if passed == len(checks) else 'bold red'}]{passed} ✓[/]")
        table.add_row(name, entry["version"] or "", seconds, *cells, f"{largest:.1e}")
    console.print(table)
    verdict = "[bold green]agree[/]" if report["exit_code"] == 0 else "[bold red]differ[/]"
    console.print(f"{verdict}: {len(report['checks'])} checks, exit code {report['exit_code']}", highlight=False)
    svg = console.export_svg(title="d2lconv parity")
    return re.sub(r"@font-face \{.*?\}\s*", "", svg, flags=re.S)  # its web font would load from a CDN


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("report", type=Path, help="the output of d2lconv parity --json")
    parser.add_argument("svg", type=Path, help="the picture to write")
    args = parser.parse_args()
    args.svg.write_text(picture(json.loads(args.report.read_text())))


if __name__ == "__main__":
    main()
