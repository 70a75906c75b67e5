"""ONNX Runtime as an independent reference for ``d2lconv parity --reference onnxruntime``.

Each batched case of ``d2lconv.book.ops`` becomes a one-node ONNX model (the description's layer,
planned for ONNX and written by ``d2lconv.onnx``), run by ONNX Runtime on the case's float32 inputs
(its CPU convolutions are float32 only). Its results carry the forward keys only (``"<op>/<name>"``):
ONNX Runtime has no gradients, so the gradient rows are left to the NumPy reference. The porting
section's example networks (LeNet and the demo) are written to ONNX whole and run on the same seeded
batch, the value every backend's ports to and from NumPy must compute. It needs no framework and runs in
the command's own process.
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np

from ...book import ops as book
from ...book.lenet import lenet_network
from ...core.network import Layer, Network, conv, normal_padding, pool
from ...core.plan import plan
from ...porting import ONNX_FACTS, SEED, demo_network, seeded_batch

NAME = "onnxruntime"
SECTIONS = ("ops", "porting")


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
    """ONNX Runtime's forward value of every batched case and of the porting section's networks, as plain
    JSON (``only``: the sections asked for); a value it cannot compute becomes ``{"error": ...}``."""
    from ... import onnx as onnx_format

    def run(net: Network, x: np.ndarray) -> Any:
        return onnx_format.run_network(onnx_format.build_network(plan(net, ONNX_FACTS).network), x).tolist()

    results: dict[str, Any] = {}
    cases = {case.key: functools.partial(case_network, case) for case in book.CASES} if _asked("ops", only) else {}
    for key, make in cases.items():
        results[key] = _recorded(lambda make=make: run(*make()))
    if _asked("porting", only):
        for key, network in (("lenet", lenet_network), ("demo", demo_network)):
            net = network(SEED)
            x = seeded_batch(net.input_shape, net.dtype)
            output = _recorded(lambda net=net, x=x: run(net, x))
            failed = isinstance(output, dict)  # {"error": ...}
            results[f"port_{key}"] = output if failed else {"to_numpy": output, "from_numpy": output}
    return results


def _asked(section: str, only: Any) -> bool:
    return not only or section in only


def _recorded(compute: Any) -> Any:
    """``compute()``, or ``{"error": ...}`` when it raises (recorded per value, as a worker records a check)."""
    try:
        return compute()
    except Exception as error:
        return {"error": f"{type(error).__name__}: {error}"}


def version() -> str:
    """ONNX Runtime's version."""
    import onnxruntime

    return str(onnxruntime.__version__)
