"""ONNX Runtime as an independent reference for ``d2lconv parity --reference onnxruntime``.

Each batched case of ``d2lconv.book.ops`` becomes a one-node ONNX model (the description's layer,
planned for ONNX and written by ``d2lconv.onnx``), run by ONNX Runtime on the case's float32 inputs
(its CPU convolutions are float32 only). Its results carry the forward keys only (``"<op>/<name>"``):
ONNX Runtime has no gradients, so the gradient rows are left to the NumPy reference. It needs no framework and runs in
the command's own process.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ...book import ops as book
from ...core.network import Layer, Network, conv, normal_padding, pool
from ...core.plan import plan

NAME = "onnxruntime"
SECTION = "ops"


def case_network(case: book.Case, dtype: Any = np.float32) -> tuple[Network, np.ndarray]:
    """The one-layer network of ``case`` (weights in ``dtype``) and its input batch."""
    x, *rest = case.inputs(np.float32)
    assert x is not None
    options = dict(case.kwargs)
    if case.op not in ("conv2d", "conv_transpose2d"):
        return Network(x.shape[1:], [pool(case.op, **options)]), x.astype(dtype)
    weight, bias = rest
    assert weight is not None
    weights = {"weight": weight.astype(dtype), **({} if bias is None else {"bias": bias.astype(dtype)})}
    if case.op == "conv2d":
        layer = conv(x.shape[1], weight.shape[0], weight.shape[2:], **options)
        layer.weights.update(weights)
        layer.args["bias"] = bias is not None
    else:
        layer = _conv_transpose(x.shape[1], weight, options, weights)
    return Network(x.shape[1:], [layer]), x.astype(dtype)


def _pair(value: Any) -> tuple[int, int]:
    first, second = np.broadcast_to(value, 2).tolist()
    return int(first), int(second)


def _conv_transpose(in_channels: int, weight: np.ndarray, options: dict[str, Any], weights: dict) -> Layer:
    kernel, stride, dilation = (
        _pair(weight.shape[2:]),
        _pair(options.get("stride", 1)),
        _pair(options.get("dilation", 1)),
    )
    groups = options.get("groups", 1)
    args = dict(
        in_channels=in_channels,
        out_channels=weight.shape[1] * groups,
        kernel_size=kernel,
        stride=stride,
        padding=normal_padding(options.get("padding", 0), kernel, stride, dilation),
        output_padding=_pair(options.get("output_padding", 0)),
        dilation=dilation,
        groups=groups,
        bias="bias" in weights,
    )
    return Layer("conv_transpose2d", args, weights)


def compute_results(only: Any = None) -> dict[str, Any]:
    """ONNX Runtime's forward value of every batched case, as plain JSON (``only``: the sections asked
    for; none unless it names ``ops``); a case it cannot run becomes ``{"error": ...}``."""
    from ... import onnx as onnx_format

    if only and SECTION not in only:
        return {}
    results: dict[str, Any] = {}
    for case in book.CASES:
        try:
            net, x = case_network(case)
            model = onnx_format.build_network(plan(net, "onnx").network)
            results[case.key] = onnx_format.run_network(model, x).tolist()
        except Exception as error:  # recorded per case, as a worker records a failing check
            results[case.key] = {"error": f"{type(error).__name__}: {error}"}
    return results


def version() -> str:
    """ONNX Runtime's version."""
    import onnxruntime

    return str(onnxruntime.__version__)
