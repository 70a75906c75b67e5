"""An ONNX model read as a network description: the ops torch's exporters write for conv nets.

ONNX is NCHW with OIHW weights, d2lconv's own layouts, so reading is a matter of arguments: ONNX's
pads are [top, left, bottom, right], its ``BatchNormalization`` momentum weighs the old running
value (d2lconv's weighs the new batch), its ``AveragePool`` leaves the padding out of the divisor
unless told otherwise, its pooling stride defaults to 1, not to the window. Constants (initializers
and ``Constant`` nodes) are weights or arguments; every other value is a node of the graph. A
convolution with a BatchNorm folded into it is simply a convolution with a bias.
"""

from __future__ import annotations

import keyword
import re
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from google.protobuf.message import DecodeError
from onnx import helper, numpy_helper

from ..core.conventions import momentum_new_batch
from ..core.layer import float32_attribute
from ..core.network import INPUT, Layer, Network, batch_norm, conv, node_output_shape, normal_padding, pool

SUPPORTED = (
    "Conv", "ConvTranspose", "BatchNormalization", "Relu", "Clip", "LeakyRelu", "Sigmoid", "Tanh", "HardSigmoid",
    "HardSwish", "Gelu", "Elu", "Softmax", "MaxPool", "AveragePool", "GlobalAveragePool", "ReduceMean", "Add", "Mul",
    "Concat", "Flatten", "Reshape", "Gemm", "MatMul", "Pad", "Dropout", "Identity", "Constant",
)  # fmt: skip
_ELEMENTWISE = {"Relu": "relu", "Sigmoid": "sigmoid", "Tanh": "tanh", "HardSwish": "hard_swish"}


def load(source: Any) -> onnx.ModelProto:
    """An ``onnx.ModelProto`` from a model or the path of an ``.onnx`` file; a file that is not ONNX is a
    ``ValueError`` saying so (a missing one a ``FileNotFoundError``)."""
    if isinstance(source, onnx.ModelProto):
        return source
    path = Path(source)
    if not path.is_file():
        raise FileNotFoundError(f"no ONNX file {str(path)!r}")
    try:
        model = onnx.load(str(path))
    except (DecodeError, RuntimeWarning, ValueError, UnicodeDecodeError) as error:
        raise ValueError(f"{str(path)!r} is not an ONNX model ({error})") from None
    if not model.graph.node or not model.opset_import:
        raise ValueError(f"{str(path)!r} is not an ONNX model (it has no graph)")
    return model


def _identifier(name: str, taken: set[str]) -> str:
    """A node name as a Python identifier (``/layer1/conv/Conv`` -> ``layer1_conv_Conv``), unique."""
    base = re.sub(r"\W+", "_", name).strip("_") or "node"
    if base[0].isdigit() or keyword.iskeyword(base) or base == INPUT:
        base = f"n_{base}"
    unique, count = base, 1
    while unique in taken:
        count += 1
        unique = f"{base}_{count}"
    taken.add(unique)
    return unique


def _attribute(attribute: onnx.AttributeProto) -> Any:
    """A node attribute's value; a float one (ONNX stores them as float32) as the number it was written as."""
    value = helper.get_attribute_value(attribute)
    return float32_attribute(value) if attribute.type == onnx.AttributeProto.FLOAT else value


class _Reader:
    """Reads one graph node by node, keeping the description's nodes and the ONNX values they produce."""

    def __init__(self, model: onnx.ModelProto, input_shape: tuple[int, ...] | None) -> None:
        graph = model.graph
        self.constants = {tensor.name: numpy_helper.to_array(tensor) for tensor in graph.initializer}
        inputs = [value for value in graph.input if value.name not in self.constants]
        if len(inputs) != 1:
            raise ValueError(f"port reads ONNX models with one input; this one has {[v.name for v in inputs]}")
        self.input_name = inputs[0].name
        self.input_shape = input_shape or self._declared_shape(inputs[0])
        self.layers: list[Layer] = []
        self.values: dict[str, str] = {self.input_name: INPUT}  # ONNX value -> description node
        self.shapes: dict[str, tuple[int, ...]] = {INPUT: tuple(self.input_shape)}
        self.node_values: dict[str, str] = {}  # description node -> ONNX value (for run_nodes)
        self.uses: dict[str, int] = {}
        for node in graph.node:
            for name in node.input:
                self.uses[name] = self.uses.get(name, 0) + 1
        for value in graph.output:
            self.uses[value.name] = self.uses.get(value.name, 0) + 1
        self.taken: set[str] = set()

    @staticmethod
    def _declared_shape(value: onnx.ValueInfoProto) -> tuple[int, ...]:
        dims = value.type.tensor_type.shape.dim
        shape = [dim.dim_value if dim.HasField("dim_value") else 0 for dim in dims][1:]
        if not shape or not all(shape):
            raise ValueError(
                f"the ONNX input {value.name!r} has no fixed (C, H, W) size; pass input_shape=(C, H, W) to port"
            )
        return tuple(shape)

    def constant(self, node: onnx.NodeProto, index: int, what: str) -> np.ndarray | None:
        """Input ``index`` of ``node`` as a constant array (None when absent); a computed one is a ValueError."""
        if index >= len(node.input) or not node.input[index]:
            return None
        name = node.input[index]
        if name not in self.constants:
            raise ValueError(
                f"ONNX node {node.name!r} ({node.op_type}) takes a computed {what}; only a constant is supported"
            )
        return np.asarray(self.constants[name])

    def data(self, node: onnx.NodeProto, index: int = 0) -> str:
        name = node.input[index]
        if name not in self.values:
            raise ValueError(f"ONNX node {node.name!r} ({node.op_type}) reads {name!r}, which is not a network value")
        return self.values[name]

    def add(self, node: onnx.NodeProto, layer: Layer, inputs: list[str]) -> None:
        name = _identifier(node.name or f"{node.op_type.lower()}_{len(self.layers)}", self.taken)
        layer = replace(layer, name=name, inputs=tuple(inputs))
        self.shapes[name] = node_output_shape(layer, [self.shapes[source] for source in inputs], len(self.layers))
        self.layers.append(layer)
        self.values[node.output[0]] = name
        self.node_values[name] = node.output[0]

    def alias(self, node: onnx.NodeProto, source: str) -> None:
        self.values[node.output[0]] = source

    def unsupported(self, node: onnx.NodeProto, why: str = "") -> ValueError:
        reason = f": {why}" if why else f"; supported ops: {', '.join(SUPPORTED)}"
        return ValueError(f"ONNX node {node.name!r} ({node.op_type}) is not supported{reason}")

    def read(self, node: onnx.NodeProto) -> None:
        if node.domain not in ("", "ai.onnx"):
            raise self.unsupported(node)
        for extra in node.output[1:]:
            if extra and self.uses.get(extra):
                raise self.unsupported(node, f"its output {extra!r} is used (only the first output can be)")
        attributes = {attribute.name: _attribute(attribute) for attribute in node.attribute}
        op = node.op_type
        if op == "Constant":
            self.constants[node.output[0]] = (
                numpy_helper.to_array(attributes["value"])
                if "value" in attributes
                else (np.asarray(next(iter(attributes.values()))))
            )
        elif op == "Identity":
            self.alias(node, self.data(node))
        elif op in _ELEMENTWISE:
            self.add(node, Layer(_ELEMENTWISE[op]), [self.data(node)])
        elif op in ("Conv", "ConvTranspose"):
            self._conv(node, attributes)
        elif op == "BatchNormalization":
            self._batch_norm(node, attributes)
        elif op in ("MaxPool", "AveragePool"):
            self._pool(node, attributes)
        elif op in ("GlobalAveragePool", "ReduceMean"):
            self._global_pool(node, attributes)
        elif op in ("Add", "Mul"):
            self._merge(node)
        elif op in ("Gemm", "MatMul"):
            self._dense(node, attributes)
        elif op in ("Flatten", "Reshape"):
            self._flatten(node, attributes)
        else:
            self._other(node, op, attributes)

    def _other(self, node: onnx.NodeProto, op: str, attributes: dict[str, Any]) -> None:
        source = self.data(node)
        rank = 1 + len(self.shapes[source])
        if op == "Clip":
            low = self.constant(node, 1, "minimum") if len(node.input) > 1 else attributes.get("min")
            high = self.constant(node, 2, "maximum") if len(node.input) > 2 else attributes.get("max")
            low, high = (None if v is None else float(np.asarray(v)) for v in (low, high))
            if low != 0 or high not in (6.0, None):
                raise self.unsupported(node, f"Clip({low}, {high}); only Clip(0, 6) (ReLU6) and Clip(0) (ReLU)")
            self.add(node, Layer("relu6" if high == 6.0 else "relu"), [source])
        elif op == "LeakyRelu":
            self.add(node, Layer("leaky_relu", {"negative_slope": attributes.get("alpha", 0.01)}), [source])
        elif op == "Elu":
            self.add(node, Layer("elu", {"alpha": attributes.get("alpha", 1.0)}), [source])
        elif op == "HardSigmoid":
            args = {"alpha": attributes.get("alpha", 0.2), "beta": attributes.get("beta", 0.5)}
            self.add(node, Layer("hard_sigmoid", args), [source])
        elif op == "Gelu":
            approximate = attributes.get("approximate", b"none")
            approximate = approximate.decode() if isinstance(approximate, bytes) else approximate
            self.add(node, Layer("gelu", {"approximate": approximate}), [source])
        elif op == "Softmax":
            axis = int(attributes.get("axis", -1))
            self.add(node, Layer("softmax", {"axis": axis % rank}), [source])
        elif op == "Concat":
            axis = int(attributes["axis"]) % rank
            if axis != 1:
                raise self.unsupported(node, f"concatenation on axis {axis}; only the channel axis 1")
            self.add(node, Layer("concat"), [self.data(node, index) for index in range(len(node.input))])
        elif op == "Dropout":
            ratio = self.constant(node, 1, "ratio") if len(node.input) > 1 else attributes.get("ratio", 0.5)
            self.add(node, Layer("dropout", {"rate": float(np.asarray(0.5 if ratio is None else ratio))}), [source])
        elif op == "Pad":
            self._pad(node, attributes, source)
        else:
            raise self.unsupported(node)

    def _conv(self, node: onnx.NodeProto, attributes: dict[str, Any]) -> None:
        weight, bias = self.constant(node, 1, "weight"), self.constant(node, 2, "bias")
        assert weight is not None
        groups, kernel = int(attributes.get("group", 1)), (int(weight.shape[2]), int(weight.shape[3]))
        stride = tuple(attributes.get("strides", (1, 1)))
        dilation = tuple(attributes.get("dilations", (1, 1)))
        padding = self._padding(node, attributes)
        if node.op_type == "Conv":
            layer = conv(
                weight.shape[1] * groups, weight.shape[0], kernel, stride, padding, dilation, groups, weight, bias
            )
        else:
            if "output_shape" in attributes:
                raise self.unsupported(node, "an output_shape attribute (give pads and output_padding instead)")
            weights = {"weight": weight, **({} if bias is None else {"bias": bias})}
            args = dict(
                in_channels=weight.shape[0],
                out_channels=weight.shape[1] * groups,
                kernel_size=kernel,
                stride=stride,
                padding=normal_padding(padding, kernel, stride, dilation),
                output_padding=tuple(attributes.get("output_padding", (0, 0))),
                dilation=dilation,
                groups=groups,
                bias=bias is not None,
            )
            layer = Layer("conv_transpose2d", args, weights)
        self.add(node, layer, [self.data(node)])

    def _padding(self, node: onnx.NodeProto, attributes: dict[str, Any]) -> Any:
        auto = attributes.get("auto_pad", b"NOTSET")
        auto = auto.decode() if isinstance(auto, bytes) else auto
        if auto == "SAME_UPPER":
            return "same"
        if auto == "VALID":
            return 0
        if auto != "NOTSET":
            raise self.unsupported(node, f"auto_pad {auto} (d2lconv's 'same' is SAME_UPPER)")
        top, left, bottom, right = attributes.get("pads", (0, 0, 0, 0))
        return (top, bottom, left, right)

    def _batch_norm(self, node: onnx.NodeProto, attributes: dict[str, Any]) -> None:
        if attributes.get("training_mode", 0):
            raise self.unsupported(node, "training_mode=1 (an exported model is in inference mode)")
        gamma, beta, mean, var = (self.constant(node, index, "statistic") for index in (1, 2, 3, 4))
        assert gamma is not None
        layer = batch_norm(
            gamma.shape[0],
            eps=attributes.get("epsilon", 1e-5),
            momentum=momentum_new_batch(attributes.get("momentum", 0.9)),  # ONNX weighs the old value
            variance="biased",  # ONNX's running variance is the population (biased) one
            weight=gamma,
            bias=beta,
            running_mean=mean,
            running_var=var,
        )
        self.add(node, layer, [self.data(node)])

    def _pool(self, node: onnx.NodeProto, attributes: dict[str, Any]) -> None:
        kernel = tuple(attributes["kernel_shape"])
        options: dict[str, Any] = dict(
            stride=tuple(attributes.get("strides", (1, 1))),  # ONNX's default stride is 1, not the window
            padding=self._padding(node, attributes),
            ceil_mode=bool(attributes.get("ceil_mode", 0)),
        )
        if node.op_type == "MaxPool":
            layer = pool("max_pool2d", kernel, dilation=tuple(attributes.get("dilations", (1, 1))), **options)
        else:  # ONNX leaves the padding out of the divisor unless count_include_pad=1
            layer = pool(
                "avg_pool2d", kernel, count_include_pad=bool(attributes.get("count_include_pad", 0)), **options
            )
        self.add(node, layer, [self.data(node)])

    def _global_pool(self, node: onnx.NodeProto, attributes: dict[str, Any]) -> None:
        source = self.data(node)
        keepdims = True
        if node.op_type == "ReduceMean":
            axes = self.constant(node, 1, "axes") if len(node.input) > 1 else attributes.get("axes")
            rank = 1 + len(self.shapes[source])
            if axes is None or rank != 4 or sorted(int(a) % rank for a in np.ravel(axes)) != [2, 3]:
                raise self.unsupported(node, "ReduceMean over other axes than the spatial ones (2, 3)")
            keepdims = bool(attributes.get("keepdims", 1))
        self.add(node, Layer("global_avg_pool", {"keepdims": keepdims}), [source])

    def _merge(self, node: onnx.NodeProto) -> None:
        constant = [name for name in node.input if name in self.constants]
        if not constant:
            first, second = self.data(node, 0), self.data(node, 1)
            if node.op_type == "Mul" and self._is_silu(first, second):
                self._fuse_silu(node, first, second)
            else:
                self.add(node, Layer("add" if node.op_type == "Add" else "mul"), [first, second])
            return
        # MatMul then Add of a vector: a dense layer's bias (the dynamo exporter writes nn.Linear so)
        source = self.data(node, 1 - list(node.input).index(constant[0]))
        previous = self.layers[-1] if self.layers else Layer("flatten")
        bias = self.constants[constant[0]]
        fits = previous.name == source and previous.kind == "linear" and node.op_type == "Add"
        if not fits or previous.args["bias"] or bias.shape != (previous.args["out_features"],):
            raise self.unsupported(node, f"{node.op_type} with the constant {constant[0]!r}")
        self.layers[-1] = replace(
            previous.with_args(bias=True),
            weights={**previous.weights, "bias": bias.astype(previous.weights["weight"].dtype)},
        )
        self.alias(node, source)
        self.node_values[source] = node.output[0]

    def _is_silu(self, first: str, second: str) -> bool:
        """x * sigmoid(x) with the sigmoid used only there: SiLU, as exporters write it before opset 24."""
        last = self.layers[-1] if self.layers else None
        return (
            last is not None
            and last.kind == "sigmoid"
            and {first, second} == {last.name, last.inputs[0]}
            and self.uses.get(self.node_values[last.name], 0) == 1
        )

    def _fuse_silu(self, node: onnx.NodeProto, first: str, second: str) -> None:
        sigmoid = self.layers.pop()
        del self.node_values[sigmoid.name], self.shapes[sigmoid.name]
        self.taken.discard(sigmoid.name)
        source = first if second == sigmoid.name else second
        self.add(node, Layer("silu"), [source])

    def _dense(self, node: onnx.NodeProto, attributes: dict[str, Any]) -> None:
        weight, bias = self.constant(node, 1, "weight"), self.constant(node, 2, "bias")
        assert weight is not None
        if node.op_type == "MatMul":
            weight = weight.T  # MatMul's B is (in, out)
        else:
            if attributes.get("transA", 0):
                raise self.unsupported(node, "Gemm with transA=1")
            weight = (weight if attributes.get("transB", 0) else weight.T) * attributes.get("alpha", 1.0)
            bias = None if bias is None else np.broadcast_to(bias * attributes.get("beta", 1.0), weight.shape[:1])
        dtype = weight.dtype
        weights = {"weight": np.ascontiguousarray(weight, dtype)}
        if bias is not None:
            weights["bias"] = np.ascontiguousarray(bias, dtype)
        args = {"in_features": weight.shape[1], "out_features": weight.shape[0], "bias": bias is not None}
        self.add(node, Layer("linear", args, weights), [self.data(node)])

    def _flatten(self, node: onnx.NodeProto, attributes: dict[str, Any]) -> None:
        source = self.data(node)
        shape = self.shapes[source]
        if node.op_type == "Flatten":
            if int(attributes.get("axis", 1)) != 1:
                raise self.unsupported(node, "Flatten on another axis than 1")
        else:
            target = self.constant(node, 1, "shape")
            assert target is not None
            features = int(np.prod(shape))
            if len(target) != 2 or int(target[1]) not in (-1, features):
                raise self.unsupported(node, f"Reshape to {list(target)}; only a flatten to (N, {features})")
        if len(shape) == 1:
            self.alias(node, source)
        else:
            self.add(node, Layer("flatten"), [source])

    def _pad(self, node: onnx.NodeProto, attributes: dict[str, Any], source: str) -> None:
        mode = attributes.get("mode", b"constant")
        mode = mode.decode() if isinstance(mode, bytes) else mode
        pads = self.constant(node, 1, "pads") if len(node.input) > 1 else attributes.get("pads")
        if mode != "constant" or pads is None or len(node.input) > 3:
            raise self.unsupported(node, f"Pad in mode {mode} or with axes (only constant padding of H and W)")
        value = self.constant(node, 2, "value")
        begin_n, begin_c, top, left, end_n, end_c, bottom, right = (int(v) for v in pads)
        if begin_n or begin_c or end_n or end_c or min(top, left, bottom, right) < 0:
            raise self.unsupported(node, f"pads {list(pads)} (only non-negative padding of H and W)")
        fill = 0.0 if value is None else float(np.asarray(value))
        padding = (top, bottom, left, right)
        layer = (
            Layer("zero_pad2d", {"padding": padding})
            if fill == 0
            else Layer("constant_pad2d", {"padding": padding, "value": fill})
        )
        self.add(node, layer, [source])


def read(model: Any, input_shape: tuple[int, ...] | None = None) -> tuple[Network, dict[str, str]]:
    """The description of an ONNX model (or ``.onnx`` path) and, per node, the ONNX value it produces."""
    model = load(model)
    reader = _Reader(model, input_shape)
    for node in model.graph.node:
        reader.read(node)
    outputs = []
    for value in model.graph.output:
        if value.name not in reader.values:
            raise ValueError(f"the ONNX output {value.name!r} is not computed by a supported node")
        outputs.append(reader.values[value.name])
    return Network(tuple(reader.input_shape), reader.layers, tuple(outputs)), reader.node_values
