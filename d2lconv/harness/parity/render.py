"""How ``d2lconv parity`` shows a report to a person (rich tables); the JSON needs none of this."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..runner import FAILED, SKIPPED
from .compare import counts


def _kernel_text(fit: Any) -> str:
    if not isinstance(fit, dict) or "kernel" not in fit:
        return "error"
    return " ".join(f"{value:.4f}" for value in np.asarray(fit["kernel"]).ravel())


def _final_loss(fit: Any) -> str:
    return f"{fit['losses'][-1]:.4g}" if isinstance(fit, dict) and fit.get("losses") else "error"


def render(report: dict[str, Any], console: Any) -> None:
    """Print the report for a person: backends, the checks table, the learned kernels, the verdict."""
    from rich import box
    from rich.markup import escape
    from rich.table import Table

    entries, reference = report["backends"], report["reference"]
    status = Table(title="Backends", title_justify="left")
    for column in ("backend", "status", "version", "seconds"):
        status.add_column(column, no_wrap=True)
    colours = {"ok": "green", **{status: "dim" for status in SKIPPED}}
    for name, entry in entries.items():
        colour = colours.get(entry["status"], "bold red")
        status.add_row(
            name + (" (reference)" if name == reference else ""),
            f"[{colour}]{entry['status']}[/]",
            entry["version"] or "",
            "" if entry["seconds"] is None else f"{entry['seconds']:.1f}",
        )
    console.print(status)
    for name, entry in entries.items():
        if entry["detail"]:
            colour = "dim" if entry["status"] in SKIPPED else "red"
            console.print(f"[{colour}]{escape(name + ': ' + entry['detail'])}[/]", highlight=False)

    compared = [name for name in entries if name != reference and entries[name]["status"] == "ok"]
    if report["checks"] and compared:
        tol = _tolerance_text(report["tolerance"])
        table = Table(
            title=f"Agreement with {reference} ({tol})",
            title_justify="left",
            box=box.SIMPLE_HEAD,
            caption="✓ within tolerance, else the max |difference|",
            caption_justify="left",
        )
        table.add_column("check", no_wrap=True)
        for name in compared:
            table.add_column(name, justify="center", no_wrap=True)
        section = ""
        for check in report["checks"]:
            op, _, case = check["name"].rpartition("/")
            if op != section:
                table.add_row(f"[bold]{op}[/]")
                section = op
            label = (f"  {case}" if op else case) + _row_note(check)
            table.add_row(label, *(_cell_text(check["cells"][name], counts(check)) for name in compared))
        largest = [
            max((check["cells"][name]["max_abs_diff"] or 0.0 for check in report["checks"]), default=0.0)
            for name in compared
        ]
        table.add_row("[dim]largest |difference|[/]", *(f"[dim]{value:.1e}[/]" for value in largest))
        console.print(table)
        errors = [
            (check["name"], name, check["cells"][name]["error"])
            for check in report["checks"]
            for name in compared
            if "error" in check["cells"][name]
        ]
        for key, name, error in errors:
            console.print(f"[red]{name} {key}:[/] {escape(error)}", highlight=False)

    shown = [
        name for name in entries if entries[name]["status"] == "ok" and "learn_builtin" in entries[name]["results"]
    ]
    if shown:
        fits = Table(
            title="Learned kernels and final losses, seed 0\n(builtin: lr 0.03, 10 epochs; custom: lr 0.01, 40 epochs)",
            title_justify="left",
            box=box.SIMPLE_HEAD,
            pad_edge=False,
            collapse_padding=True,
        )
        for column in ("backend", "builtin kernel", "loss", "custom kernel", "bias", "loss"):
            fits.add_column(column, justify="left" if column == "backend" else "right", no_wrap=True)
        for name in shown:
            builtin, custom = (entries[name]["results"].get(key) for key in ("learn_builtin", "learn_custom"))
            bias = custom.get("bias") if isinstance(custom, dict) else None
            fits.add_row(
                name,
                _kernel_text(builtin),
                _final_loss(builtin),
                _kernel_text(custom),
                "error" if bias is None else f"{bias:.3g}",
                _final_loss(custom),
            )
        console.print(fits)
    console.print(_verdict(report), highlight=False)


def _tolerance_text(tolerance: dict[str, float]) -> str:
    return ", ".join(f"{name} {value:.0e}".replace("e-0", "e-") for name, value in tolerance.items())


def _row_note(check: dict[str, Any]) -> str:
    """A check's own tolerance, and whether it is informational, after its name."""
    notes = []
    if "tolerance" in check:
        notes.append(_tolerance_text(check["tolerance"]))
    if not counts(check):
        notes.append("informational")
    return f" [dim]({'; '.join(notes)})[/]" if notes else ""


def _cell_text(cell: dict[str, Any], counted: bool = True) -> str:
    colour = "bold red" if counted else "yellow"
    if cell["ok"]:
        return "[green]✓[/]"
    if cell["max_abs_diff"] is None:
        return f"[{colour}]error[/]"
    return f"[{colour}]{cell['max_abs_diff']:.2g}[/]"


def _verdict(report: dict[str, Any]) -> str:
    entries, reference = report["backends"], report["reference"]
    compared = [name for name in entries if name != reference and entries[name]["status"] == "ok"]
    failed = [f"{name} {entry['status']}" for name, entry in entries.items() if entry["status"] in FAILED]
    differing = sorted(
        {name for check in report["checks"] if counts(check) for name, cell in check["cells"].items() if not cell["ok"]}
    )
    parts = []
    if differing:
        parts.append(f"values differ on {', '.join(differing)}")
    if failed:
        parts.append("; ".join(failed))
    if not parts:
        return (
            f"[bold green]agree:[/] {', '.join(compared) or 'no other backend'} = {reference} "
            f"on {len(report['checks'])} checks (exit 0)"
        )
    return f"[bold red]FAIL:[/] {'; '.join(parts)} (exit {report['exit_code']})"
