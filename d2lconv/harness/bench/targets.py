"""The speed targets of ``d2lconv bench``, in one place: what the tools measure against and what the
tables show. Each ``*_targets`` function is a pure function of a report's ``backends`` entries.
"""

from __future__ import annotations

from typing import Any

# corr2d: square float32 images with a 3x3 kernel. corr2d / native at 512 at most 1.5 (NumPy: 0.5, twice as
# fast as scipy); loop / corr2d at 64 at least 100; ``import d2lconv`` under 150 ms.
KERNEL = (3, 3)
NATIVE_SIZE, NATIVE_LIMIT, NUMPY_NATIVE_LIMIT = 512, 1.5, 0.5
LOOP_SIZE, LOOP_LIMIT = 64, 100.0
IMPORT_LIMIT_MS = 150.0
NATIVE_NOTE = "native: the framework's own convolution (numpy: scipy.signal.correlate2d)"

# --ops: ratio to the framework's own call at most 1.3 on the small layer and 1.10 on the ResNet-sized one;
# NumPy (to torch's call) at most 5 on the ResNet-sized layer.
OPS = ("conv2d", "conv_transpose2d", "max_pool2d", "avg_pool2d")
MODES = ("forward", "gradient")
LIMITS = {"1x3x32x32:8:3:1": 1.3, "8x64x56x56:64:3:1": 1.10}
NUMPY_LIMITS = {"8x64x56x56:64:3:1": 5.0}

# --port: a ported MobileNetV2 at most 1.10x the framework's own; port() of ResNet-50 under 10 s.
PORT_RATIO_LIMIT, PORT_SECONDS_LIMIT = 1.10, 10.0

# --train (and --lenet): d2lconv's training loop at most 1.2x the framework's idiomatic one, per network; NumPy's
# epoch at most 5x torch's.
OURS_LIMIT, NUMPY_LIMIT = 1.2, 5.0


def _target(backend: str, ratio: str, value: float, limit: float, at_most: bool = True, **where: Any) -> dict[str, Any]:
    return {
        "backend": backend,
        "ratio": ratio,
        **where,
        "value": value,
        "limit": limit,
        "met": value <= limit if at_most else value >= limit,
    }


def corr2d_targets(entries: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """The corr2d targets of every measured backend, at the sizes that were run."""
    found = []
    for name, entry in entries.items():
        rows = {row["size"]: row for row in entry.get("timings", [])}
        native_limit = NUMPY_NATIVE_LIMIT if name == "numpy" else NATIVE_LIMIT
        for ratio, size, limit, at_most in (
            ("corr2d_over_native", NATIVE_SIZE, native_limit, True),
            ("loop_over_corr2d", LOOP_SIZE, LOOP_LIMIT, False),
        ):
            value = rows.get(size, {}).get(ratio)
            if value is not None:
                found.append(_target(name, ratio, value, limit, at_most, size=size))
    return found


def ops_targets(entries: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """Every measured op ratio that has a target: at most the layer's limit."""
    found = []
    for name, entry in entries.items():
        limits = NUMPY_LIMITS if name == "numpy" else LIMITS
        for row in entry.get("rows", []):
            limit = limits.get(row["layer"])
            if limit is not None and row["ratio"] is not None:
                found.append(
                    {
                        "backend": name,
                        "layer": row["layer"],
                        "data_format": row.get("data_format", "NCHW"),
                        "op": row["op"],
                        "mode": row["mode"],
                        "value": row["ratio"],
                        "limit": limit,
                        "met": row["ratio"] <= limit,
                    }
                )
    return found


def train_targets(entries: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """Per backend and network, our loop over the framework's; per network, NumPy's epoch over torch's."""
    found = [
        _target(name, "ours_over_book", row["ours_over_book"], OURS_LIMIT, net=net)
        for name, entry in entries.items()
        for net, row in (entry.get("nets") or {}).items()
    ]
    numpy_nets, torch_nets = (entries.get(name, {}).get("nets") or {} for name in ("numpy", "torch"))
    found += [
        _target("numpy", "numpy_over_torch", row["ours_s"] / torch_nets[net]["ours_s"], NUMPY_LIMIT, net=net)
        for net, row in numpy_nets.items()
        if net in torch_nets
    ]
    return found


def port_targets(entries: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """Each ported network over the framework's own, per pair and batch; the seconds of port on ResNet-50."""
    found = [
        _target(name, "ported_over_native", row["ratio"], PORT_RATIO_LIMIT, source=row["source"], batch=row["batch"])
        for name, entry in entries.items()
        for row in entry.get("pairs") or []
        if row.get("ratio") is not None
    ]
    found += [
        _target(name, "port_seconds", entry["port_s"], PORT_SECONDS_LIMIT)
        for name, entry in entries.items()
        if entry.get("port_s") is not None
    ]
    return found
