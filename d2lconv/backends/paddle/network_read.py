"""The Paddle tab's network reader: any ``paddle.nn.Layer`` whose forward Paddle traces -> d2lconv's ``Network``.

``paddle.jit.to_static`` turns the forward into a static program (PIR in Paddle 3) of ops
(``pd_op.conv2d``, ``pd_op.batch_norm_``, ...) whose operands name the values they read, traced in
inference mode; the layer's own ``forward`` is put back. Each op becomes a node; what Paddle spells as
several ops is one node: a convolution or ``Linear`` and the ``add`` of its bias, a ``Pad2D``
(``unsqueeze``, ``pad3d``, ``squeeze``). Conventions turned into d2lconv's:

- ``BatchNorm`` momentum 0.9 weighs the running value: the description's is 1 - 0.9 (PyTorch's); the
  running variance takes the biased batch variance. ``Linear`` weights (in, out) are transposed.
- Average pooling's ``exclusive`` is ``not count_include_pad``; ``'SAME'`` ignores dilation in
  Paddle's kernels, so a 'SAME' convolution is read with the dilation it really computes with (1).
- Ceil-mode pooling keeps a last window that starts in the padding, where PyTorch drops it; a
  pooling whose window count differs from PyTorch's is refused (that window sees padding only).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import paddle
from paddle import nn
from paddle.static import InputSpec

from ...core.args import pool2d_args
from ...core.conventions import momentum_new_batch
from ...core.layer import float32_attribute
from ...core.network import INPUT, KINDS, Layer, Network, batch_norm, conv, pool
from ...core.plan import unsupported

_SIMPLE = {
    "relu": "relu",
    "sigmoid": "sigmoid",
    "tanh": "tanh",
    "relu6": "relu6",
    "silu": "silu",
    "swish": "silu",
    "hardswish": "hard_swish",
}
_WITH_ARGS: dict[str, Any] = {  # Paddle op -> (kind, its arguments)
    "leaky_relu": lambda a: ("leaky_relu", {"negative_slope": float32_attribute(a["negative_slope"])}),
    "elu": lambda a: ("elu", {"alpha": float32_attribute(a["alpha"])}),
    "gelu": lambda a: ("gelu", {"approximate": "tanh" if a["approximate"] else "none"}),
    "hardsigmoid": lambda a: (
        "hard_sigmoid",
        {"alpha": float32_attribute(a["slope"]), "beta": float32_attribute(a["offset"])},
    ),
}
_SIZES = (*range(17, 513), *range(16, 0, -1))  # the input sizes tried when none is given


def _probe_input_shape(model: nn.Layer) -> tuple[int, ...]:
    """An input shape the model runs on: channels from its first convolution (features from a first
    ``Linear``), then the first square size (17, 18, ... 512, then 16 down to 1) its forward accepts."""
    first = next(
        (
            layer
            for layer in model.sublayers(include_self=True)
            if isinstance(layer, nn.Conv2D | nn.Conv2DTranspose | nn.Linear)
        ),
        None,
    )
    if first is None:
        raise ValueError(
            "port cannot tell this Paddle model's input shape (no convolution); pass input_shape=(C, H, W)"
        )
    if isinstance(first, nn.Linear):
        return (first.weight.shape[0],)
    channels = first._in_channels
    dtype = first.weight.dtype
    with paddle.no_grad():
        for side in _SIZES:
            try:
                model(paddle.zeros([1, channels, side, side], dtype=dtype))
            except (ValueError, RuntimeError, IndexError, AssertionError):
                continue
            return (channels, side, side)
    raise ValueError("port found no square input size this Paddle model accepts; pass input_shape=(C, H, W)")


def trace(model: nn.Layer, input_shape: tuple[int, ...]) -> Any:
    """The model's forward as a static program (inference mode), traced on a batch of ``input_shape``."""
    modes = [(layer, layer.training) for layer in model.sublayers(include_self=True)]
    dtype = next((parameter.dtype for parameter in model.parameters()), paddle.float32)
    model.eval()
    own_forward = "forward" in vars(model)
    try:
        paddle.jit.to_static(model, input_spec=[InputSpec([None, *input_shape], dtype)], full_graph=True)
        return model.forward.concrete_program
    except Exception as error:  # Paddle raises many kinds while translating a forward
        raise ValueError(
            f"Paddle cannot trace {type(model).__name__}.forward to a static program "
            f"(data-dependent control flow?): {str(error).strip().splitlines()[-1]}"
        ) from None
    finally:
        if not own_forward:
            vars(model).pop("forward", None)
        model._original_funcs.pop("forward", None)
        for layer, training in modes:
            layer.training = training


class _Reader:
    """Walks a traced program, op by op, into nodes."""

    def __init__(self, model: nn.Layer) -> None:
        self.parameters = {
            parameter.name: (path, np.array(parameter.numpy()))
            for path, parameter in [*model.named_parameters(), *model.named_buffers()]
        }
        self.values: dict[str, Any] = {}  # value id -> ("node", name) | ("parameter", path, array) | ("constant", v)
        self.layers: list[Layer] = []
        self.names: set[str] = set()
        self.uses: dict[str, int] = {}  # value id -> how many operands read it
        self.results: dict[str, str] = {}  # node name -> the id of the value it computes

    def name(self, base: str) -> str:
        base = base.replace(".", "_")
        base = base if base.isidentifier() and base != INPUT else f"n_{base}"
        name, count = base, 0
        while name in self.names:
            count += 1
            name = f"{base}_{count}"
        self.names.add(name)
        return name

    def operand(self, op: Any, index: int) -> Any:
        value = op.operand_source(index)
        return self.values.get(value.id) if value.initialized() else None

    def node(self, op: Any, index: int) -> str:
        entry = self.operand(op, index)
        if entry is None or entry[0] != "node":
            raise unsupported(op.name(), op.name(), f"operand {index} is a {entry and entry[0]}, not a computed tensor")
        return entry[1]

    def add(self, op: Any, layer: Layer, base: str) -> None:
        """``layer`` as the node computing ``op``'s result (reading ``op``'s first operand unless it says)."""
        named = Layer(layer.kind, layer.args, layer.weights, self.name(base), layer.inputs or (self.node(op, 0),))
        self.layers.append(named)
        self.values[op.result(0).id] = ("node", named.name)
        self.results[named.name] = op.result(0).id

    def alias(self, op: Any, index: int = 0) -> None:
        self.values[op.result(0).id] = self.operand(op, index)


def _constant(reader: _Reader, op: Any, index: int) -> Any:
    entry = reader.operand(op, index)
    if entry is None or entry[0] != "constant":
        raise unsupported(op.name(), op.name(), f"operand {index} must be a constant")
    return entry[1]


def _rank(op: Any, index: int = 0) -> int:
    return len(op.operand_source(index).shape)


def _pool(reader: _Reader, op: Any, shape: tuple[int, ...]) -> Layer:
    attrs = op.attrs()
    kernel = tuple(_constant(reader, op, 1))
    if attrs["data_format"] != "NCHW":
        raise unsupported(op.name(), op.name(), "only NCHW data ports")
    if attrs["global_pooling"]:
        if attrs["pooling_type"] != "avg":
            raise unsupported(op.name(), op.name(), "global max pooling")
        return Layer("global_avg_pool", {"keepdims": True})
    if attrs["adaptive"]:
        if attrs["pooling_type"] != "avg":
            raise unsupported(op.name(), op.name(), "adaptive max pooling")
        return Layer("adaptive_avg_pool", {"output_size": (int(kernel[0]), int(kernel[-1]))})
    algorithm = attrs["padding_algorithm"]
    paddings = list(attrs["paddings"])
    padding: Any = "same" if algorithm == "SAME" else 0 if algorithm == "VALID" else paddings
    if isinstance(padding, list):
        padding = tuple(paddings) if len(paddings) == 4 else (paddings[0], paddings[1])
    kind = "max_pool2d" if attrs["pooling_type"] == "max" else "avg_pool2d"
    extra = {} if kind == "max_pool2d" else {"count_include_pad": not attrs["exclusive"]}
    layer = pool(kind, kernel, tuple(attrs["strides"]), padding, bool(attrs["ceil_mode"]), **extra)
    if layer.args["ceil_mode"] and layer.args["padding"] != "same":
        top, bottom, left, right = layer.args["padding"]
        windows = pool2d_args(
            (1, *shape), layer.args["kernel_size"], layer.args["stride"], ((top, bottom), (left, right)), 1, True
        )
        kept = tuple(
            -(-(n + before + after - k) // s) + 1
            for n, k, s, before, after in zip(
                shape[1:], layer.args["kernel_size"], layer.args["stride"], (top, left), (bottom, right), strict=True
            )
        )
        if kept != windows.out_hw:
            raise unsupported(
                op.name(),
                op.name(),
                f"Paddle's ceil mode keeps a last window inside the padding ({kept} windows, "
                f"PyTorch's rule {windows.out_hw})",
            )
    return layer


def _conv(reader: _Reader, op: Any) -> Layer:
    attrs = op.attrs()
    if attrs["data_format"] != "NCHW":
        raise unsupported(op.name(), op.name(), "only NCHW data ports")
    weight = reader.operand(op, 1)
    if weight is None or weight[0] != "parameter":
        raise unsupported(op.name(), op.name(), "a convolution whose kernel is not a parameter")
    array = weight[2]
    paddings = list(attrs["paddings"])
    dilation = tuple(attrs["dilations"])
    padding: Any
    if attrs["padding_algorithm"] == "SAME":
        padding, dilation = "same", (1, 1)  # Paddle's SAME kernels reset the dilation to 1
    elif attrs["padding_algorithm"] == "VALID":
        padding = 0
    else:
        padding = tuple(paddings) if len(paddings) == 4 else (paddings[0], paddings[1])
    groups = attrs["groups"]
    transposed = op.name().startswith("pd_op.conv2d_transpose")
    in_channels = array.shape[0] if transposed else array.shape[1] * groups
    out_channels = array.shape[1] * groups if transposed else array.shape[0]
    layer = conv(in_channels, out_channels, array.shape[2:], tuple(attrs["strides"]), padding, dilation, groups, array)
    if transposed:
        if len(_constant(reader, op, 2)):
            raise unsupported(op.name(), op.name(), "a transposed convolution given output_size")
        layer = Layer(
            "conv_transpose2d",
            {**layer.args, "output_padding": tuple(attrs["output_padding"]) or (0, 0)},
            layer.weights,
        )
    return layer


def _batch_norm(reader: _Reader, op: Any) -> Layer:
    attrs = op.attrs()
    if attrs["data_format"] not in ("NCHW", "NC", "AnyLayout"):
        raise unsupported(op.name(), op.name(), "only NCHW data ports")
    arrays = [reader.operand(op, index) for index in range(1, 5)]
    if any(entry is None for entry in arrays):
        raise unsupported(op.name(), op.name(), "a BatchNorm whose statistics are not parameters")
    mean, variance, scale, shift = (entry[2] for entry in arrays if entry is not None)
    return batch_norm(
        len(mean),
        eps=float32_attribute(attrs["epsilon"]),
        momentum=momentum_new_batch(float32_attribute(attrs["momentum"])),
        variance="biased",
        weight=scale,
        bias=shift,
        running_mean=mean,
        running_var=variance,
        dtype=mean.dtype,
    )


def _fold_bias(reader: _Reader, op: Any) -> bool:
    """``add(conv or linear without bias, bias parameter)``: the bias joins that node; True when folded."""
    for index in (0, 1):
        entry, other = reader.operand(op, 1 - index), reader.operand(op, index)
        if entry is None or entry[0] != "parameter" or other is None or other[0] != "node":
            continue
        layer = next(layer for layer in reader.layers if layer.name == other[1])
        if layer.kind not in ("conv2d", "conv_transpose2d", "linear") or layer.args["bias"]:
            continue
        if reader.uses.get(reader.results[layer.name], 0) != 1 or reader.layers[-1] is not layer:
            continue
        reader.layers[-1] = Layer(
            layer.kind,
            {**layer.args, "bias": True},
            {**layer.weights, "bias": entry[2].reshape(-1)},
            layer.name,
            layer.inputs,
        )
        reader.values[op.result(0).id] = other
        return True
    return False


def _read_op(reader: _Reader, op: Any, shapes: dict[str, tuple[int, ...]]) -> None:
    name = op.name()
    kind = name.split(".", 1)[1].rstrip("_") if "." in name else name
    attrs = op.attrs()
    if name == "builtin.parameter":
        path, array = reader.parameters[attrs["parameter_name"]]
        reader.values[op.result(0).id] = ("parameter", path, array)
    elif kind in ("full_int_array", "full"):
        reader.values[op.result(0).id] = ("constant", attrs["value"])
    elif name == "builtin.combine":
        reader.values[op.result(0).id] = ("list", [reader.node(op, index) for index in range(op.num_operands())])
    elif kind == "data":
        reader.values[op.result(0).id] = ("node", INPUT)
    elif kind == "reshape" and reader.operand(op, 0) and reader.operand(op, 0)[0] == "parameter":
        reader.alias(op)  # a bias reshaped to (1, C, 1, 1) before its add
    elif kind in ("conv2d", "depthwise_conv2d", "conv2d_transpose", "depthwise_conv2d_transpose"):
        reader.add(op, _conv(reader, op), reader.operand(op, 1)[1].rsplit(".", 1)[0])
    elif kind == "batch_norm":
        base = next(reader.operand(op, i)[1] for i in range(1, 5) if reader.operand(op, i))
        reader.add(op, _batch_norm(reader, op), base.rsplit(".", 1)[0])
    elif kind == "matmul":
        weight = reader.operand(op, 1)
        if weight is None or weight[0] != "parameter" or attrs["transpose_x"] or _rank(op) != 2:
            raise unsupported(
                name, name, "only a matrix product of a batch of vectors and a weight parameter (Linear) ports"
            )
        array = weight[2] if attrs["transpose_y"] else weight[2].T
        args = {"in_features": array.shape[1], "out_features": array.shape[0], "bias": False}
        reader.add(
            op,
            Layer("linear", args, {"weight": np.ascontiguousarray(array)}),
            weight[1].rsplit(".", 1)[0],
        )
    elif kind == "add" and _fold_bias(reader, op):
        pass
    elif kind in ("add", "multiply"):
        merge = "add" if kind == "add" else "mul"
        reader.add(op, Layer(merge, inputs=(reader.node(op, 0), reader.node(op, 1))), merge)
    elif kind == "concat":
        axis = int(np.ravel(_constant(reader, op, 1))[0])
        rank = len(op.result(0).shape)
        if axis % rank != 1:
            raise unsupported(name, name, f"concatenation on axis {axis} (only the channel axis ports)")
        reader.add(op, Layer("concat", inputs=tuple(reader.operand(op, 0)[1])), "cat")
    elif kind in _SIMPLE:
        reader.add(op, Layer(_SIMPLE[kind]), _SIMPLE[kind])
    elif kind in _WITH_ARGS:
        described, args = _WITH_ARGS[kind](attrs)
        reader.add(op, Layer(described, args), described)
    elif kind == "softmax":
        axis = attrs["axis"] % len(op.result(0).shape)
        reader.add(op, Layer("softmax", {"axis": axis}), kind)
    elif kind == "dropout":
        if attrs["mode"] != "upscale_in_train":
            raise unsupported(name, name, "dropout mode 'downscale_in_infer' (it scales at inference)")
        rate = float(np.ravel(_constant(reader, op, 2))[0])
        reader.add(op, Layer("dropout", {"rate": float32_attribute(rate)}), kind)
    elif kind == "pool2d":
        reader.add(op, _pool(reader, op, shapes[reader.node(op, 0)]), "pool")
    elif kind == "mean":
        axes = sorted(int(axis) % _rank(op) for axis in np.ravel(_constant(reader, op, 1)))
        if _rank(op) != 4 or axes != [2, 3]:
            raise unsupported(name, name, f"a mean over axes {axes} (only the spatial mean, global pooling, ports)")
        reader.add(op, Layer("global_avg_pool", {"keepdims": bool(attrs["keepdim"])}), "mean")
    elif kind in ("flatten", "reshape"):
        rank, out_rank = _rank(op), len(op.result(0).shape)
        if kind == "flatten" and (attrs["start_axis"] != 1 or attrs["stop_axis"] % rank != rank - 1):
            raise unsupported(name, name, "a flatten that keeps dimensions other than the batch")
        if out_rank != 2:
            raise unsupported(name, name, "a reshape other than a flatten to (N, features)")
        if rank == 2:
            reader.alias(op)
        else:
            reader.add(op, Layer("flatten"), "flatten")
    elif kind in ("unsqueeze", "squeeze") and list(np.ravel(_constant(reader, op, 1))) == [2]:
        reader.alias(op)  # Pad2D pads a 4-D batch as 5-D: unsqueeze, pad3d, squeeze
    elif kind == "pad3d":
        left, right, top, bottom, front, back = (int(v) for v in _constant(reader, op, 1))
        if attrs["mode"] != "constant" or front or back:
            raise unsupported(name, name, f"padding mode {attrs['mode']!r}")
        value, pads = float(attrs["pad_value"]), (top, bottom, left, right)
        padding = (
            Layer("zero_pad2d", {"padding": pads})
            if value == 0
            else Layer("constant_pad2d", {"padding": pads, "value": value})
        )
        reader.add(op, padding, "pad")
    elif kind in ("assign", "scale") and (
        kind == "assign" or (attrs.get("bias", 0) == 0 and _constant(reader, op, 1) == 1.0)
    ):
        reader.alias(op)
    else:
        raise unsupported(name, name, f"Paddle op {name!r}; the kinds that port are {', '.join(KINDS)}")


def read_traced(model: nn.Layer, input_shape: tuple[int, ...] | None = None) -> Network:
    """The description of a Paddle model, from the static program its forward traces to."""
    if not isinstance(model, nn.Layer):
        raise ValueError(f"port needs a paddle.nn.Layer; got {type(model).__name__}")
    shape = tuple(input_shape) if input_shape else _probe_input_shape(model)
    program = trace(model, shape)
    reader = _Reader(model)
    ops = list(program.main_program.global_block().ops)
    for op in ops:
        for index in range(op.num_operands()):
            value = op.operand_source(index)
            if value.initialized():
                reader.uses[value.id] = reader.uses.get(value.id, 0) + 1
    shapes: dict[str, tuple[int, ...]] = {INPUT: shape}
    for op in ops:
        count = len(reader.layers)
        _read_op(reader, op, shapes)
        if len(reader.layers) > count:
            shapes[reader.layers[-1].name] = tuple(int(v) for v in op.result(0).shape[1:])
    outputs = []
    for value in program.outputs:
        entry = reader.values.get(value.id)
        if entry is None or entry[0] != "node":
            raise ValueError("the traced Paddle program returns something that is not a computed tensor")
        outputs.append(entry[1])
    return Network(shape, reader.layers, tuple(outputs))
