"""The batched ops' parity checks, from the samples of ``d2lconv.book.ops``."""

from __future__ import annotations

import functools
from typing import Any

import numpy as np

import d2lconv as dc

from ....book import ops as book
from . import ATOL64, RTOL64, ParityCheck

INPUT_NAMES = ("x", "weight", "bias")


def run_case(case: book.Case, dtype: Any = np.float32, data_format: str = "NCHW") -> Any:
    """``case``'s op on its inputs, through the public API of the active backend; with
    ``data_format="NHWC"`` on the inputs in that layout, its result transposed back to NCHW."""
    inputs = case.inputs(dtype)
    if data_format == "NCHW":
        return getattr(dc, case.op)(*inputs, **case.kwargs)
    inputs = [book.channels_last(a, name) for a, name in zip(inputs, INPUT_NAMES, strict=False)]
    return book.channels_first(dc.to_numpy(getattr(dc, case.op)(*inputs, data_format=data_format, **case.kwargs)))


def run_vjp(case: book.Case, dtype: Any = np.float32, data_format: str = "NCHW") -> dict[str, Any]:
    """The gradients of ``case`` (``dc.vjp`` with its seeded ``grad_output``), keyed x, weight, bias;
    with ``data_format="NHWC"`` as ``run_case`` does, the gradients transposed back."""
    inputs: list[Any] = case.inputs(dtype)
    grad_output: Any = case.grad_output(dtype)
    if data_format == "NCHW":
        grads = dc.vjp(case.op, *inputs, grad_output=grad_output, **case.kwargs)
        return dict(zip(INPUT_NAMES, grads, strict=False))
    inputs = [book.channels_last(a, name) for a, name in zip(inputs, INPUT_NAMES, strict=False)]
    nhwc_grad = book.channels_last(grad_output)
    grads = dc.vjp(case.op, *inputs, grad_output=nhwc_grad, data_format=data_format, **case.kwargs)
    return {
        name: None if g is None else book.channels_first(dc.to_numpy(g), name)
        for name, g in zip(INPUT_NAMES, grads, strict=False)
    }


def run_float64(case: book.Case, data_format: str = "NCHW") -> dict[str, Any]:
    """The forward values and the gradients of ``case`` in float64."""
    return {"y": run_case(case, np.float64, data_format), **run_vjp(case, np.float64, data_format)}


def run_channels_last(case: book.Case) -> dict[str, Any]:
    """The forward values and the gradients of ``case`` with NHWC inputs, transposed back to NCHW:
    the same numbers as the NCHW ones (float32)."""
    return {"y": run_case(case, data_format="NHWC"), **run_vjp(case, data_format="NHWC")}


def max_pool_ties() -> dict[str, Any]:
    """Where the active backend's max pooling sends the gradient of windows with tied maxima, plain and
    dilated. The reference (and torch) gives it all to the first maximum in row-major order."""
    return {
        f"dilation{d}": dc.vjp("max_pool2d", book.tie_windows(d), kernel_size=2, stride=d + 1, dilation=d)[0]
        for d in (1, 2)
    }


def parity_checks() -> list[ParityCheck]:
    """Per case: the forward values (``"<op>/<name>"``), the gradients in float32 (``.../grad``),
    both again in float64 within 1e-10 (``.../float64``) and in float32 with NHWC inputs
    (``.../nhwc``, transposed back); then the max-pooling tie rule, informational (frameworks
    legitimately differ)."""
    checks: list[ParityCheck] = []
    for case in book.CASES:
        checks += [
            ParityCheck(case.key, functools.partial(run_case, case)),
            ParityCheck(f"{case.key}/grad", functools.partial(run_vjp, case)),
            ParityCheck(f"{case.key}/float64", functools.partial(run_float64, case), rtol=RTOL64, atol=ATOL64),
            ParityCheck(f"{case.key}/nhwc", functools.partial(run_channels_last, case)),
        ]
    return [*checks, ParityCheck("max_pool2d/ties", max_pool_ties, informational=True)]
