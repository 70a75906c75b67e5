"""How ``d2lconv parity`` compares: pure functions of the recorded results, no process, no framework.

Values agree when ``|value - reference| <= atol + rtol * |reference|``, with the tolerances
of the check that produced them (``ParityCheck.rtol``/``atol``; float32's 1e-4/1e-5 by
default). Loss curves use the same rule, which is relative for losses of order 1 and up.
An ``informational`` check is compared and shown, but never changes ``agree`` or the exit
code (a convention that legitimately differs between frameworks).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from ..runner import FAILED
from .checks import ATOL, RTOL, ParityCheck
from .sections import parity_checks

REFERENCE = "numpy"


def entry(
    status: str,
    detail: str = "",
    version: str | None = None,
    seconds: float | None = None,
    results: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """One backend of the report's ``backends`` part."""
    return {"status": status, "detail": detail, "version": version, "seconds": seconds, "results": results or {}}


def is_error(value: Any) -> bool:
    """Whether a recorded result is a computation that raised (``{"error": ...}``)."""
    return isinstance(value, dict) and "error" in value


def _compare_arrays(reference: Any, value: Any, rtol: float, atol: float) -> tuple[bool, float | None, str]:
    """(agree, max |difference|, problem) for two nested lists of numbers."""
    if (reference is None) != (value is None):
        return False, None, f"{'none' if value is None else value!r} where the reference has {reference!r}"
    if reference is None:
        return True, 0.0, ""
    ref, got = np.asarray(reference, np.float64), np.asarray(value, np.float64)
    if ref.shape != got.shape:
        return False, None, f"shape {got.shape}, reference {ref.shape}"
    close = np.isclose(got, ref, rtol=rtol, atol=atol, equal_nan=True)
    with np.errstate(invalid="ignore"):
        diff = np.where(close & ~np.isfinite(got - ref), 0.0, np.abs(got - ref))
    largest = float(diff.max()) if diff.size else 0.0
    if not math.isfinite(largest):
        return False, None, "a non-finite value where the reference differs"
    return bool(close.all()), largest, ""


def compare(reference: Any, value: Any, rtol: float = RTOL, atol: float = ATOL) -> dict[str, Any]:
    """One cell: does ``value`` agree with ``reference`` (both recorded results of one key)?"""
    if is_error(reference):
        return {"ok": False, "max_abs_diff": None, "error": f"reference failed: {reference['error']}"}
    if is_error(value):
        return {"ok": False, "max_abs_diff": None, "error": value["error"]}
    if isinstance(reference, dict):
        if not isinstance(value, dict) or set(value) != set(reference):
            fields = sorted(value) if isinstance(value, dict) else type(value).__name__
            return {"ok": False, "max_abs_diff": None, "error": f"fields {fields}, reference {sorted(reference)}"}
        parts = {name: _compare_arrays(reference[name], value[name], rtol, atol) for name in reference}
    else:
        parts = {"": _compare_arrays(reference, value, rtol, atol)}
    problems = [f"{name}: {problem}" if name else problem for name, (_, _, problem) in parts.items() if problem]
    diffs = [diff for _, diff, _ in parts.values() if diff is not None]
    cell: dict[str, Any] = {
        "ok": all(ok for ok, _, _ in parts.values()),
        "max_abs_diff": None if problems else max(diffs, default=0.0),
    }
    if "losses" in parts and not problems:
        ref, got = np.asarray(reference["losses"], np.float64), np.asarray(value["losses"], np.float64)
        cell["max_rel_diff"] = float((np.abs(got - ref) / np.maximum(np.abs(ref), 1e-30)).max()) if ref.size else 0.0
    if problems:
        cell["error"] = "; ".join(problems)
    return cell


def _row(key: str, check: ParityCheck | None, cells: dict[str, Any]) -> dict[str, Any]:
    row: dict[str, Any] = {"name": key, "cells": cells}
    if check is not None and (check.rtol, check.atol) != (RTOL, ATOL):
        row["tolerance"] = {"rtol": check.rtol, "atol": check.atol}
    if check is not None and check.informational:
        row["informational"] = True
    return row


def counts(row: dict[str, Any]) -> bool:
    """Whether a check row counts towards agreement (informational rows do not)."""
    return not row.get("informational", False)


def build_report(
    entries: dict[str, dict[str, Any]], checks: Sequence[ParityCheck] | None = None, reference: str = REFERENCE
) -> dict[str, Any]:
    """The full report (see ``d2lconv.harness.parity.run``) from its ``backends`` part and the declared checks.

    ``reference`` names the entry every other one is compared with: the NumPy backend, or
    ``"onnxruntime"`` (``onnx_reference``), whose results hold only the keys it computes, so that
    only those rows are compared.

    ``checks`` gives the row order and each key's tolerances (default: every section's
    ``parity_checks()``; their ``compute`` is not called). A key the reference recorded
    without a declared check is compared with the default tolerances, after the others.
    """
    if checks is None:
        checks = parity_checks()
    declared = {check.key: check for check in checks}
    reference_entry = entries.get(reference, entry("missing"))
    compared = [name for name, item in entries.items() if name != reference and item["status"] == "ok"]
    rows = []
    if reference_entry["status"] == "ok":
        ref_results = reference_entry["results"]
        for key in list(declared) + sorted(set(ref_results) - set(declared)):
            if key not in ref_results:
                continue
            check = declared.get(key)
            rtol, atol = (check.rtol, check.atol) if check else (RTOL, ATOL)
            cells = {
                name: compare(ref_results[key], entries[name]["results"].get(key, {"error": "no result"}), rtol, atol)
                for name in compared
            }
            rows.append(_row(key, check, cells))
    agree = all(cell["ok"] for row in rows if counts(row) for cell in row["cells"].values())
    failed = any(item["status"] in FAILED for item in entries.values())
    return {
        "reference": reference,
        "tolerance": {"rtol": RTOL, "atol": ATOL},
        "backends": entries,
        "checks": rows,
        "agree": agree and not failed,
        "exit_code": 2 if failed else 0 if agree else 1,
    }
