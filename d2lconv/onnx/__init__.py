"""ONNX as one more reader and writer of the network description, run by ONNX Runtime.

``port`` treats ONNX like a tab: ``read_network`` (an ``onnx.ModelProto`` or ``.onnx`` path -> the
description), ``build_network`` (description -> a checked ``onnx.ModelProto``), ``run_network`` and
``run_nodes`` (ONNX Runtime, NCHW in and out). It needs the ``onnx`` extra
(``pip install "d2lconv[onnx]"``: onnx and onnxruntime) and imports them only when used.
"""

from __future__ import annotations

from typing import Any

import numpy as np

try:
    import onnx
    import onnxruntime
except ImportError as error:  # the extra is missing: say which install fixes it
    raise ImportError(f'ONNX support needs onnx and onnxruntime: pip install "d2lconv[onnx]" ({error})') from None

from ..core.network import Network
from .reader import SUPPORTED, load, read
from .writer import OPSET, build_network, network_code

NAME = "onnx"
__all__ = ["NAME", "OPSET", "SUPPORTED", "build_network", "load", "native_weights", "network_code", "read_network"]
__all__ += ["run_network", "run_nodes"]


def read_network(model: Any, input_shape: tuple[int, ...] | None = None) -> Network:
    """The description of an ONNX model or ``.onnx`` file (``input_shape`` (C, H, W) where the file leaves it free)."""
    return read(model, input_shape)[0]


def native_weights(model: onnx.ModelProto) -> dict[str, np.ndarray]:
    """The model's initializers by name."""
    return {tensor.name: onnx.numpy_helper.to_array(tensor) for tensor in load(model).graph.initializer}


def _session(model: onnx.ModelProto) -> onnxruntime.InferenceSession:
    options = onnxruntime.SessionOptions()
    options.log_severity_level = 3  # errors only: ORT warns about unused initializers
    return onnxruntime.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])


def _input_value(model: onnx.ModelProto) -> onnx.ValueInfoProto:
    constants = {tensor.name for tensor in model.graph.initializer}
    return next(value for value in model.graph.input if value.name not in constants)


def _batches(model: onnx.ModelProto, x: np.ndarray) -> list[np.ndarray]:
    """``x`` split into the batch size the model was exported with, when it fixes one (torch's exporters do
    unless told otherwise), the last part filled up with zeros; else whole. Inference treats each example
    on its own, so the filling changes no other example's output."""
    first = _input_value(model).type.tensor_type.shape.dim[0]
    size = first.dim_value if first.HasField("dim_value") else 0
    if not size or size == len(x):
        return [x]
    filled = np.concatenate([x, np.zeros((-len(x) % size, *x.shape[1:]), x.dtype)])
    return [filled[start : start + size] for start in range(0, len(filled), size)]


def _run(session: onnxruntime.InferenceSession, model: onnx.ModelProto, x: Any, names: Any) -> list[np.ndarray]:
    """The outputs ``names`` (None: the graph's) on ``x``, in the batches the model takes, joined (the
    filling of the last batch left out)."""
    name, x = str(_input_value(model).name), np.asarray(x)
    parts = [session.run(names, {name: part}) for part in _batches(model, x)]
    return [np.concatenate([part[index] for part in parts])[: len(x)] for index in range(len(parts[0]))]


def run_network(model: Any, x: np.ndarray, train: bool = False) -> np.ndarray:
    """ONNX Runtime's output on the NCHW batch ``x`` (inference only: an ONNX file has no training mode)."""
    if train:
        raise ValueError(
            "ONNX Runtime runs an ONNX model in inference mode only; compare(train=True) needs a framework"
        )
    model = load(model)
    return _run(_session(model), model, x, None)[0]


def run_nodes(model: Any, x: np.ndarray) -> dict[str, np.ndarray]:
    """Every description node's output on ``x``, by node name (each node's ONNX value made a graph output)."""
    model = load(model)
    _, node_values = read(model, tuple(np.shape(x)[1:]))
    probed = onnx.ModelProto()
    probed.CopyFrom(model)
    present = {value.name for value in probed.graph.output}
    for value in node_values.values():
        if value not in present:
            probed.graph.output.append(onnx.ValueInfoProto(name=value))
    names = [value.name for value in probed.graph.output]
    results = dict(zip(names, _run(_session(probed), model, x, names), strict=True))
    return {node: results[value] for node, value in node_values.items()}
