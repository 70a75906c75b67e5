"""How ``d2lconv bench`` (corr2d, ``--ops``, ``--train``, ``--port``) shows its reports to a person: rich tables
and figures.

What is measured lives in ``corr2d``, ``ops``, ``train`` and ``port``, the targets in ``targets``; this module only
presents the reports.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..runner import FAILED, SKIPPED
from .targets import (
    KERNEL,
    LIMITS,
    LOOP_LIMIT,
    LOOP_SIZE,
    MODES,
    NATIVE_LIMIT,
    NATIVE_NOTE,
    NATIVE_SIZE,
    NUMPY_LIMIT,
    NUMPY_LIMITS,
    NUMPY_NATIVE_LIMIT,
    OPS,
    OURS_LIMIT,
    PORT_RATIO_LIMIT,
    PORT_SECONDS_LIMIT,
)


def _ms(value: float | None) -> str:
    if value is None:
        return ""
    return f"{value:.3g}" if value < 100 else f"{value:,.0f}"


def _times(value: float | None, limit: float | None = None) -> str:
    """A ratio as text; in green or red when ``limit`` says whether it meets its target."""
    if value is None:
        return ""
    text = f"{value:.2f}x" if value < 10 else f"{value:,.0f}x"
    if limit is None:
        return text
    return f"[green]{text}[/]" if value <= limit else f"[bold red]{text}[/]"


def _target_text(target: dict[str, Any] | None) -> str:
    if target is None:
        return ""
    colour, mark = ("green", "✓") if target["met"] else ("bold red", "✗")
    return f"[{colour}]{_times(target['value'])} {mark}[/]"


def render_corr2d(report: dict[str, Any], console: Any) -> None:
    """Print the timings table, the targets and the import times."""
    from rich.markup import escape
    from rich.table import Table

    table = Table(
        title=f"Time per call, median ms ({KERNEL[0]}x{KERNEL[1]} kernel, square float32 images)",
        title_justify="left",
        caption=NATIVE_NOTE,
        caption_justify="left",
    )
    for column in ("backend", "size", "loop", "corr2d", "native", "corr2d/native", "loop/corr2d"):
        table.add_column(column, justify="left" if column == "backend" else "right", no_wrap=True)
    for name, entry in report["backends"].items():
        if entry["status"] != "ok":
            continue
        for index, row in enumerate(entry["timings"]):
            table.add_row(
                name if index == 0 else "",
                str(row["size"]),
                _ms(row["corr2d_loop_ms"]),
                _ms(row["corr2d_ms"]),
                _ms(row["native_corr2d_ms"]),
                _times(row["corr2d_over_native"]),
                _times(row["loop_over_corr2d"]),
            )
        table.add_section()
    console.print(table)

    summary = Table(title="Import time and targets", title_justify="left")
    for column in (
        "backend",
        "status",
        "import ms",
        f"corr2d/native @{NATIVE_SIZE}\n≤ {NATIVE_LIMIT:g} (numpy ≤ {NUMPY_NATIVE_LIMIT:g})",
        f"loop/corr2d @{LOOP_SIZE}\n≥ {LOOP_LIMIT:g}",
    ):
        summary.add_column(column, justify="left" if column in ("backend", "status") else "right", no_wrap=True)
    found = {(target["backend"], target["ratio"]): target for target in report["targets"]}
    skipped: dict[str, list[str]] = {}
    for name, entry in report["backends"].items():
        if entry["status"] in SKIPPED:
            skipped.setdefault(entry["status"], []).append(name)
            continue
        cells = [_target_text(found.get((name, ratio))) for ratio in ("corr2d_over_native", "loop_over_corr2d")]
        colour = "green" if entry["status"] == "ok" else "bold red"
        summary.add_row(name, f"[{colour}]{entry['status']}[/]", _ms(entry["import_ms"]), *cells)
    console.print(summary)
    if skipped:
        console.print("[dim]" + "; ".join(f"{status}: {', '.join(names)}" for status, names in skipped.items()) + "[/]")
    for name, entry in report["backends"].items():
        problems = ([entry["detail"]] if entry["status"] in FAILED else []) + [
            f"{method}: {error}" for method, error in entry["errors"].items()
        ]
        for problem in problems:
            console.print(f"[red]{escape(name + ': ' + problem)}[/]", highlight=False)
    probe = report["import_d2lconv"]
    heavy = f"imported {', '.join(probe['heavy_modules'])}" if probe["heavy_modules"] else "no framework imported"
    console.print(
        f"import d2lconv: [{'green' if probe['met'] else 'bold red'}]{probe['ms']:.0f} ms[/] "
        f"(numpy {probe['numpy_ms']:.0f} ms), target < {probe['target_ms']:g} ms, {heavy}",
        highlight=False,
    )


def plot_corr2d(report: dict[str, Any], path: Path | str) -> None:
    """Write a log-log plot of time per call vs image size, per backend and method (format from the suffix)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    styles = {"corr2d_loop": ":", "corr2d": "-", "native_corr2d": "--"}
    fig, ax = plt.subplots(figsize=(10, 5.5), layout="constrained")
    for index, (name, entry) in enumerate(report["backends"].items()):
        for method, style in styles.items():
            points = [(row["size"], row[f"{method}_ms"]) for row in entry["timings"] if row[f"{method}_ms"]]
            if points:
                ax.loglog(
                    *zip(*points, strict=True),
                    style,
                    marker="o",
                    markersize=3,
                    color=f"C{index}",
                    label=f"{name} {method}",
                )
    ax.set(
        xlabel="image size N (N x N)",
        ylabel="median time per call (ms)",
        title=f"2-D cross-correlation with a {KERNEL[0]}x{KERNEL[1]} kernel",
    )
    sizes = report["config"]["sizes"]
    ax.set_xticks(sizes, [str(size) for size in sizes], minor=False)
    ax.set_xticks([], minor=True)
    ax.grid(True, which="both", alpha=0.3)
    fig.legend(loc="outside right upper", fontsize=8)
    fig.savefig(path, dpi=120)
    plt.close(fig)


def render_ops(report: dict[str, Any], console: Any) -> None:
    """Print one row per backend, layer and op: times and ratios (targets in colour), then any error."""
    from rich.markup import escape
    from rich.table import Table

    table = Table(
        title="d2lconv's op vs the framework's own call: median ms, and the median ratio of interleaved pairs",
        title_justify="left",
        caption="layer NxCxHxW:O:K:P; gradient: dc.vjp vs the framework's autograd; numpy: vs torch's call",
        caption_justify="left",
    )
    for column in ("backend", "layer", "format", "op", "forward ms", "ratio", "gradient ms", "ratio"):
        table.add_column(
            column,
            justify="left" if column in ("backend", "layer", "format", "op") else "right",
            no_wrap=column in ("op", "ratio"),
            overflow="fold",
        )
    problems = []
    for name, entry in report["backends"].items():
        if entry["status"] in FAILED:
            problems.append(f"{name}: {entry['status']}: {entry['detail']}")
        limits = NUMPY_LIMITS if name == "numpy" else LIMITS
        cells: dict[tuple[str, str, str], list[str]] = {}
        for row in entry["rows"]:
            layout = row.get("data_format", "NCHW")
            if row["error"]:
                problems.append(f"{name} {row['layer']} {layout} {row['op']} {row['mode']}: {row['error']}")
            cells.setdefault((row["layer"], layout, row["op"]), []).extend(
                [f"{_ms(row['ours_ms'])} / {_ms(row['native_ms'])}", _times(row["ratio"], limits.get(row["layer"]))]
            )
        for index, ((layer, layout, op), texts) in enumerate(cells.items()):
            table.add_row(name if index == 0 else "", layer, layout, op, *texts)
        if cells:
            table.add_section()
    console.print(table)
    met = [target["met"] for target in report["targets"]]
    config = report["config"]
    console.print(
        f"targets met: {sum(met)} of {len(met)}; load average {config['load_average'][0]:.2f}, "
        f"OMP_NUM_THREADS={config['omp_num_threads'] or 'unset'}",
        highlight=False,
    )
    for problem in problems:
        console.print(f"[red]{escape(problem)}[/]", highlight=False)


def plot_ops(report: dict[str, Any], path: Path | str) -> None:
    """Write the ratios as grouped bars, one panel per layer, as PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    layers = [
        (layer["spec"], layout)
        for layer in report["config"]["layers"]
        for layout in report["config"].get("data_formats", ["NCHW"])
    ]
    columns = [(op, mode) for op in OPS for mode in MODES]
    names = [name for name, entry in report["backends"].items() if entry["status"] == "ok"]
    fig, axes = plt.subplots(len(layers), 1, figsize=(11, 3 * len(layers)), layout="constrained", squeeze=False)
    width = 0.8 / max(len(names), 1)
    for ax, (layer, layout) in zip(axes[:, 0], layers, strict=True):
        for index, name in enumerate(names):
            found = {
                (row["op"], row["mode"]): row["ratio"]
                for row in report["backends"][name]["rows"]
                if row["layer"] == layer and row.get("data_format", "NCHW") == layout
            }
            values = [found.get(column) or 0.0 for column in columns]
            ax.bar([i + index * width for i in range(len(columns))], values, width, label=name, color=f"C{index}")
        if layer in LIMITS:
            ax.axhline(LIMITS[layer], color="black", linestyle="--", linewidth=1)
        ax.axhline(1.0, color="grey", linewidth=0.5)
        ax.set_yscale("log")
        ax.set_xticks(
            [i + width * (len(names) - 1) / 2 for i in range(len(columns))],
            [f"{op}\n{mode}" for op, mode in columns],
            fontsize=8,
        )
        ax.set(title=f"layer {layer}, {layout}", ylabel="d2lconv / native")
    axes[0, 0].legend(fontsize=8, ncol=len(names))
    fig.savefig(path, dpi=120)
    plt.close(fig)


def render_train(report: dict[str, Any], console: Any) -> None:
    """Print seconds per epoch per backend and network, and the targets."""
    from rich.markup import escape
    from rich.table import Table

    found = {(target["backend"], target["net"], target["ratio"]): target for target in report["targets"]}
    config = report["config"]
    nets = "; ".join(
        f"{net}: lr {net_config['lr']:g}, batch {net_config['batch_size']}"
        for net, net_config in config["nets"].items()
    )
    table = Table(
        title="Training on the digits: seconds per epoch (median), d2lconv's loop and the framework's own",
        caption=f"{config['rounds']} runs of {config['epochs']} epochs per loop, alternated, the first epoch of "
        f"each left out; {nets}",
        title_justify="left",
        caption_justify="left",
    )
    for column in (
        "backend",
        "network",
        "d2lconv",
        "own loop",
        f"ours/own ≤ {OURS_LIMIT:g}",
        f"numpy/torch ≤ {NUMPY_LIMIT:g}",
    ):
        table.add_column(
            column, justify="left" if column in ("backend", "network") else "right", no_wrap=column != "network"
        )
    for name, entry in report["backends"].items():
        if entry["status"] in SKIPPED:
            continue
        if entry["status"] != "ok":
            table.add_row(
                name, f"[bold red]{entry['status']}[/]{': ' if entry['detail'] else ''}{escape(entry['detail'])}"
            )
            continue
        for net, row in entry["nets"].items():
            table.add_row(
                name,
                net,
                f"{row['ours_s']:.3f}",
                f"{row['book_s']:.3f}",
                _target_text(found.get((name, net, "ours_over_book"))),
                _target_text(found.get((name, net, "numpy_over_torch"))),
            )
    console.print(table)


def render_port(report: dict[str, Any], console: Any) -> None:
    """Print each ported MobileNetV2 against the framework's own, and the seconds port takes on ResNet-50."""
    from rich.table import Table

    config = report["config"]
    table = Table(
        title=f"Ported MobileNetV2 vs the framework's own: ms per inference call (median, interleaved; "
        f"input {'x'.join(map(str, config['input']))})",
        title_justify="left",
    )
    for column in ("target", "status", "ported from", "batch", "ported", "own", f"ported/own ≤ {PORT_RATIO_LIMIT:g}"):
        table.add_column(column, justify="left" if column in ("target", "status", "ported from") else "right")
    found = {(t["backend"], t.get("source"), t.get("batch")): t for t in report["targets"]}
    for name, entry in report["backends"].items():
        if entry["status"] in SKIPPED:
            continue
        status = entry["status"] if not entry["detail"] else f"{entry['status']}: {entry['detail']}"
        for row in entry.get("pairs") or [{}]:
            table.add_row(
                name,
                status,
                row.get("source", ""),
                str(row.get("batch", "")),
                _ms(row.get("ours_ms")),
                _ms(row.get("native_ms")),
                _target_text(found.get((name, row.get("source"), row.get("batch")))),
            )
    console.print(table)
    for target in report["targets"]:
        if target["ratio"] == "port_seconds":
            console.print(
                f"port of Paddle's ResNet-50 to PyTorch: {target['value']:.2f} s "
                f"({'met' if target['met'] else 'MISSED'}: under {PORT_SECONDS_LIMIT:g} s, imports excluded)"
            )
