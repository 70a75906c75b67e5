"""A network description written as an ONNX model: standard ops, opset 20, weights as initializers.

Every node of the description becomes the ONNX op that computes exactly it, in NCHW (ONNX's own
layout, so no transpose is needed anywhere). BatchNorm stays a ``BatchNormalization`` node rather
than being folded into the convolution before it, so the file keeps its running statistics and
can be trained or ported back exactly. 'same' padding is written out as explicit pads for the
network's input size.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from ..core.network import INPUT, Layer, Network, resolve_padding

OPSET = 20  # Gelu is an ONNX op from opset 20
OUTPUT_SUFFIX = "_output"
_DTYPES = {np.dtype(np.float32): TensorProto.FLOAT, np.dtype(np.float64): TensorProto.DOUBLE}


class _Graph:
    """The nodes and initializers of the graph being written, with unique names."""

    def __init__(self, dtype: np.dtype) -> None:
        self.dtype = dtype
        self.nodes: list[onnx.NodeProto] = []
        self.initializers: list[onnx.TensorProto] = []

    def constant(self, name: str, value: Any, dtype: Any = None) -> str:
        array = np.asarray(value, dtype=dtype or self.dtype)
        self.initializers.append(numpy_helper.from_array(array, name))
        return name

    def node(self, op: str, inputs: list[str], output: str, name: str, **attributes: Any) -> str:
        self.nodes.append(helper.make_node(op, inputs, [output], name=name, **attributes))
        return output


def _pads(layer: Layer, hw: tuple[int, int]) -> list[int]:
    """ONNX's pads order: [top, left, bottom, right]."""
    top, bottom, left, right = resolve_padding(layer, hw)
    return [top, left, bottom, right]


def _write(graph: _Graph, layer: Layer, inputs: list[str], hw: tuple[int, int] | None) -> str:
    """The ONNX nodes of one layer; returns the name of its output value."""
    kind, args, name, out = layer.kind, layer.args, layer.name, layer.name + OUTPUT_SUFFIX
    if kind in ("conv2d", "conv_transpose2d"):
        operands = [*inputs, graph.constant(f"{name}.weight", layer.weights["weight"])]
        if args["bias"]:
            operands.append(graph.constant(f"{name}.bias", layer.weights["bias"]))
        assert hw is not None
        attributes: dict[str, Any] = dict(
            kernel_shape=list(args["kernel_size"]),
            strides=list(args["stride"]),
            dilations=list(args["dilation"]),
            group=args["groups"],
            pads=_pads(layer, hw),
        )
        if kind == "conv_transpose2d":
            attributes["output_padding"] = list(args["output_padding"])
        return graph.node("Conv" if kind == "conv2d" else "ConvTranspose", operands, out, name, **attributes)
    if kind in ("max_pool2d", "avg_pool2d"):
        assert hw is not None
        attributes = dict(
            kernel_shape=list(args["kernel_size"]),
            strides=list(args["stride"]),
            pads=_pads(layer, hw),
            ceil_mode=int(args["ceil_mode"]),
        )
        if kind == "max_pool2d":
            return graph.node("MaxPool", inputs, out, name, dilations=list(args["dilation"]), **attributes)
        return graph.node(
            "AveragePool", inputs, out, name, count_include_pad=int(args["count_include_pad"]), **attributes
        )
    if kind in ("zero_pad2d", "constant_pad2d"):
        top, bottom, left, right = args["padding"]
        pads = graph.constant(f"{name}.pads", [0, 0, top, left, 0, 0, bottom, right], np.int64)
        value = graph.constant(f"{name}.value", args.get("value", 0.0))
        return graph.node("Pad", [*inputs, pads, value], out, name, mode="constant")
    if kind == "flatten":
        return graph.node("Flatten", inputs, out, name, axis=1)
    if kind == "linear":
        operands = [*inputs, graph.constant(f"{name}.weight", layer.weights["weight"])]
        if args["bias"]:
            operands.append(graph.constant(f"{name}.bias", layer.weights["bias"]))
        return graph.node("Gemm", operands, out, name, transB=1)
    if kind == "batch_norm":
        operands = [graph.constant(f"{name}.{key}", layer.weights[key]) for key in ("weight", "bias")]
        operands += [graph.constant(f"{name}.{key}", layer.weights[key]) for key in ("running_mean", "running_var")]
        # ONNX's momentum weighs the old running value: 1 - d2lconv's (PyTorch's) weight of the new batch.
        return graph.node(
            "BatchNormalization", [*inputs, *operands], out, name, epsilon=args["eps"], momentum=1 - args["momentum"]
        )
    if kind in ("add", "mul"):
        op, result = ("Add" if kind == "add" else "Mul"), inputs[0]
        for index, operand in enumerate(inputs[1:], 1):
            last = index == len(inputs) - 1
            result = graph.node(
                op, [result, operand], out if last else f"{name}_{index}", name if last else f"{name}_{index}"
            )
        return result
    if kind == "concat":
        return graph.node("Concat", inputs, out, name, axis=1)
    if kind == "global_avg_pool":
        if args["keepdims"]:
            return graph.node("GlobalAveragePool", inputs, out, name)
        pooled = graph.node("GlobalAveragePool", inputs, f"{name}_pooled", f"{name}_pool")
        return graph.node("Flatten", [pooled], out, name, axis=1)
    if kind == "adaptive_avg_pool":
        assert hw is not None
        window = [hw[0] // args["output_size"][0], hw[1] // args["output_size"][1]]
        return graph.node("AveragePool", inputs, out, name, kernel_shape=window, strides=window)
    if kind == "dropout":
        ratio = graph.constant(f"{name}.ratio", args["rate"])
        return graph.node("Dropout", [*inputs, ratio], out, name)
    return _activation(graph, layer, inputs[0], out)


_SIMPLE = {"relu": "Relu", "sigmoid": "Sigmoid", "tanh": "Tanh", "hard_swish": "HardSwish"}


def _activation(graph: _Graph, layer: Layer, value: str, out: str) -> str:
    kind, args, name = layer.kind, layer.args, layer.name
    if kind in _SIMPLE:
        return graph.node(_SIMPLE[kind], [value], out, name)
    if kind == "relu6":
        low, high = graph.constant(f"{name}.min", 0.0), graph.constant(f"{name}.max", 6.0)
        return graph.node("Clip", [value, low, high], out, name)
    if kind == "leaky_relu":
        return graph.node("LeakyRelu", [value], out, name, alpha=float(args["negative_slope"]))
    if kind == "elu":
        return graph.node("Elu", [value], out, name, alpha=float(args["alpha"]))
    if kind == "gelu":
        return graph.node("Gelu", [value], out, name, approximate=args["approximate"])
    if kind == "silu":  # x * sigmoid(x): ONNX has no SiLU before opset 24
        gate = graph.node("Sigmoid", [value], f"{name}_sigmoid", f"{name}_sigmoid")
        return graph.node("Mul", [value, gate], out, name)
    if kind == "hard_sigmoid":
        return graph.node("HardSigmoid", [value], out, name, alpha=float(args["alpha"]), beta=float(args["beta"]))
    if kind == "softmax":
        return graph.node("Softmax", [value], out, name, axis=int(args["axis"]))
    raise ValueError(f"layer {layer.name} ({kind}): no ONNX op written for this kind")  # every KINDS entry is above


def build_network(net: Network) -> onnx.ModelProto:
    """The ONNX model of ``net`` (input ``input``: NCHW with a free batch dimension), checked in full."""
    dtype = net.dtype
    graph, shapes, values = _Graph(dtype), net.node_shapes(), {INPUT: INPUT}
    for layer in net.layers:
        source_shape = shapes[layer.inputs[0]]
        hw = (source_shape[1], source_shape[2]) if len(source_shape) == 3 else None
        values[layer.name] = _write(graph, layer, [values[name] for name in layer.inputs], hw)
    element = _DTYPES[dtype]
    inputs = [helper.make_tensor_value_info(INPUT, element, ["N", *net.input_shape])]
    outputs = [helper.make_tensor_value_info(values[name], element, ["N", *shapes[name]]) for name in net.outputs]
    model = helper.make_model(
        helper.make_graph(graph.nodes, "d2lconv", inputs, outputs, graph.initializers),
        opset_imports=[helper.make_opsetid("", OPSET)],
        producer_name="d2lconv",
    )
    onnx.checker.check_model(model, full_check=True)
    return model


def network_code(net: Network) -> str:
    """Python that runs the written model with ONNX Runtime (the model itself is the file ``onnx.save`` writes)."""
    c_h_w = ", ".join(map(str, net.input_shape))
    return (
        "import numpy as np\nimport onnxruntime as ort\n\n"
        'session = ort.InferenceSession("model.onnx", providers=["CPUExecutionProvider"])\n'
        f"x = np.random.default_rng(0).standard_normal((2, {c_h_w})).astype(np.{net.dtype.name})\n"
        f'(y,) = session.run(None, {{"{INPUT}": x}})  # NCHW in, as the source network took it\n'
        "print(y.shape)\n"
    )
