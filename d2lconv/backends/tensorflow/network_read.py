"""The Keras tab's reader: a ``keras.Sequential`` or functional ``keras.Model`` -> d2lconv's ``Network``.

A functional model's graph is read from its public config (``model.get_config()``: every layer with
the layers it was called on), its weights from ``layer.get_weights()``; nothing is keyed on a
model's class. Keras is NHWC: kernels come back from HWIO to OIHW, a ``DepthwiseConv2D`` kernel
(kh, kw, C, m) becomes the grouped convolution (C*m, 1, kh, kw) in PyTorch's channel order, a
concatenation on the last axis is one on the channel axis, and the dense layer after a flatten gets
its (H, W, C) input columns back in (C, H, W) order. ``BatchNormalization``'s momentum is the weight
kept on the running value (0.99): the description stores 1 - momentum, the weight of the new batch;
its epsilon is kept, and Keras 3 puts the biased batch variance into the moving variance.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import keras
import numpy as np
from keras import layers

from ...core.conventions import momentum_new_batch
from ...core.network import INPUT, Layer, batch_norm, conv, is_identifier, pool
from ...core.plan import unsupported

# Keras's activation names -> (kind, arguments); Keras 3's leaky_relu defaults to a slope of 0.2,
# its hard_sigmoid is relu6(x + 3) / 6 and its gelu is the exact one.
ACTIVATIONS: dict[str, tuple[str, dict[str, Any]]] = {
    "relu": ("relu", {}),
    "relu6": ("relu6", {}),
    "sigmoid": ("sigmoid", {}),
    "tanh": ("tanh", {}),
    "elu": ("elu", {"alpha": 1.0}),
    "leaky_relu": ("leaky_relu", {"negative_slope": 0.2}),
    "gelu": ("gelu", {"approximate": "none"}),
    "silu": ("silu", {}),
    "swish": ("silu", {}),
    "hard_silu": ("hard_swish", {}),
    "hard_swish": ("hard_swish", {}),
    "hard_sigmoid": ("hard_sigmoid", {"alpha": 1 / 6, "beta": 0.5}),
    "softmax": ("softmax", {"axis": 1}),
}


def keras_nodes(model: keras.Model) -> list[tuple[layers.Layer, list[str]]]:
    """Each layer of ``model`` (input layers left out) in graph order, with the names of the nodes it
    reads; a Sequential model is a chain. Raises ``ValueError`` for a model with no layer graph."""
    if isinstance(model, keras.Sequential):
        chain = [layer for layer in model.layers if not isinstance(layer, layers.InputLayer)]
        return [(layer, [INPUT if index == 0 else chain[index - 1].name]) for index, layer in enumerate(chain)]
    config = model.get_config() if isinstance(model, keras.Model) else {}
    if "layers" not in config or "input_layers" not in config:
        raise ValueError(
            f"port reads a keras.Sequential or a functional keras.Model; a {type(model).__name__} that "
            "subclasses keras.Model has no layer graph to read (its call() is Python code)"
        )
    inputs = _histories(config["input_layers"])
    if len(inputs) != 1:
        raise ValueError(f"port reads models with one input; this {type(model).__name__} has {len(inputs)}")
    found = []
    for entry in config["layers"]:
        if entry["class_name"] == "InputLayer":
            continue
        nodes = entry["inbound_nodes"]
        if len(nodes) != 1:
            raise ValueError(
                f"layer {entry['name']!r} is called {len(nodes)} times; port reads layers called once (not shared)"
            )
        reads = [INPUT if name == inputs[0] else name for name in _histories(nodes[0])]
        found.append((model.get_layer(entry["name"]), reads))
    return found


def _histories(value: Any) -> list[str]:
    """The names of the layers whose outputs a serialised call reads, in order."""
    if isinstance(value, dict):
        if value.get("class_name") == "__keras_tensor__":
            return [value["config"]["keras_history"][0]]
        return [name for item in value.values() for name in _histories(item)]
    if isinstance(value, list | tuple):
        if len(value) == 3 and isinstance(value[0], str) and isinstance(value[1], int):
            return [value[0]]  # an input/output layer entry: [name, node index, tensor index]
        return [name for item in value for name in _histories(item)]
    return []


def node_names(model: keras.Model) -> dict[str, str]:
    """Keras layer name -> the name of the description node holding that layer's output (an identifier)."""
    names: dict[str, str] = {}
    for layer, _ in keras_nodes(model):
        name = re.sub(r"\W", "_", layer.name)
        name = name if is_identifier(name) else f"layer_{name}"
        while name in names.values():
            name += "_"
        names[layer.name] = name
    return names


def output_names(model: keras.Model) -> tuple[str, ...]:
    """The names of the nodes a functional model returns (a Sequential model: its last, left out)."""
    if isinstance(model, keras.Sequential):
        return ()
    names = node_names(model)
    return tuple(names[name] for name in _histories(model.get_config()["output_layers"]))


def read_nodes(model: keras.Model) -> Iterator[Layer]:
    """Every description node of ``model`` in graph order (a layer with an activation gives two)."""
    names = node_names(model)
    for index, (native, reads) in enumerate(keras_nodes(model)):
        inputs = tuple(name if name == INPUT else names[name] for name in reads)
        described = _read_layer(index, native)
        for step, layer in enumerate(described):
            last = step == len(described) - 1
            layer.name = names[native.name] if last else f"{names[native.name]}_{layer.kind}"
            layer.inputs = inputs
            inputs = (layer.name,)
            yield layer


def _activation(index: int, layer: layers.Layer, name: Any) -> Layer:
    if not isinstance(name, str) or name not in ACTIVATIONS:
        raise unsupported(index, layer, f"activation {name!r}")
    kind, args = ACTIVATIONS[name]
    return Layer(kind, dict(args))


def _rank(layer: layers.Layer) -> int:
    """The rank of the layer's (first) input, batch axis included."""
    tensor = layer.input
    return len((tensor[0] if isinstance(tensor, list | tuple) else tensor).shape)


def _channel_axis(layer: layers.Layer, axis: int) -> bool:
    """Whether the NHWC ``axis`` of the layer's input is its channel axis (the last)."""
    axes = axis if isinstance(axis, list | tuple) else [axis]
    return len(axes) == 1 and axes[0] % _rank(layer) == _rank(layer) - 1


def _read_layer(index: int, layer: layers.Layer) -> list[Layer]:
    """The layer's description (a convolution or dense layer with an activation becomes two nodes)."""
    config = layer.get_config()
    if config.get("data_format", "channels_last") != "channels_last":
        raise unsupported(layer.name, layer, "data_format='channels_first'")
    activation = config.get("activation", "linear")
    tail = [] if activation in ("linear", None) or isinstance(layer, layers.Activation) else [activation]
    main = _read_main(index, layer, config)
    return [main, *(_activation(index, layer, name) for name in tail)]


def _read_main(index: int, layer: layers.Layer, config: dict) -> Layer:  # noqa: C901 - one branch per Keras layer
    values = layer.get_weights()
    bias = values[1] if len(values) > 1 else None
    if isinstance(layer, layers.Activation):
        return _activation(index, layer, config["activation"])
    if isinstance(layer, layers.ReLU):
        slope, threshold, top = config["negative_slope"], config["threshold"], config["max_value"]
        if threshold == 0 and slope == 0 and top in (None, 6):
            return Layer("relu" if top is None else "relu6")
        if threshold == 0 and top is None:
            return Layer("leaky_relu", {"negative_slope": float(slope)})
        raise unsupported(layer.name, layer, f"ReLU with threshold {threshold} and max_value {top}")
    if isinstance(layer, layers.LeakyReLU):
        return Layer("leaky_relu", {"negative_slope": float(config["negative_slope"])})
    if isinstance(layer, layers.ELU):
        return Layer("elu", {"alpha": float(config["alpha"])})
    if isinstance(layer, layers.Softmax):
        axis = config["axis"] if isinstance(config["axis"], int) else None
        if axis is None:
            raise unsupported(layer.name, layer, f"softmax over the axes {config['axis']}")
        rank = _rank(layer)
        nhwc = axis % rank
        return Layer("softmax", {"axis": nhwc if rank != 4 else (1, 2, 3, 1)[nhwc]})
    if isinstance(layer, layers.DepthwiseConv2D):
        kernel = values[0]  # (kh, kw, C, m)
        kh, kw, channels, multiplier = kernel.shape
        weight = kernel.transpose(2, 3, 0, 1).reshape(channels * multiplier, 1, kh, kw)
        return _conv(layer, config, channels, channels * multiplier, channels, weight, bias)
    if isinstance(layer, layers.Conv2DTranspose):
        if config["padding"] != "valid":
            raise unsupported(layer.name, layer, "a Conv2DTranspose with padding='same'")
        made = conv(
            values[0].shape[3],
            config["filters"],
            config["kernel_size"],
            config["strides"],
            0,
            config["dilation_rate"],
            1,
            values[0].transpose(3, 2, 0, 1),
            bias,
        )
        output_padding = tuple(config.get("output_padding") or (0, 0))
        return Layer("conv_transpose2d", {**made.args, "output_padding": output_padding}, made.weights)
    if isinstance(layer, layers.Conv2D):
        groups = config["groups"]
        weight = values[0].transpose(3, 2, 0, 1)
        return _conv(layer, config, values[0].shape[2] * groups, config["filters"], groups, weight, bias)
    if isinstance(layer, layers.Dense):
        return Layer(
            "linear",
            {"in_features": values[0].shape[0], "out_features": config["units"], "bias": bias is not None},
            {"weight": values[0].T.copy(), **({} if bias is None else {"bias": bias})},
        )
    if isinstance(layer, layers.BatchNormalization):
        return _batch_norm(layer, config)
    if isinstance(layer, layers.MaxPooling2D | layers.AveragePooling2D):
        kind = "max_pool2d" if isinstance(layer, layers.MaxPooling2D) else "avg_pool2d"
        padding = "same" if config["padding"] == "same" else 0
        return pool(kind, config["pool_size"], config["strides"], padding, count_include_pad=padding != "same")
    if isinstance(layer, layers.GlobalAveragePooling2D):
        return Layer("global_avg_pool", {"keepdims": bool(config.get("keepdims", False))})
    if isinstance(layer, layers.ZeroPadding2D):
        (top, bottom), (left, right) = config["padding"]
        return Layer("zero_pad2d", {"padding": (top, bottom, left, right)})
    if isinstance(layer, layers.Add | layers.Multiply):
        return Layer("add" if isinstance(layer, layers.Add) else "mul")
    if isinstance(layer, layers.Concatenate):
        if not _channel_axis(layer, config["axis"]):
            raise unsupported(layer.name, layer, f"concatenation on axis {config['axis']}, not the channel axis")
        return Layer("concat")
    if isinstance(layer, layers.Dropout):
        return Layer("dropout", {"rate": float(config["rate"])})
    if isinstance(layer, layers.Flatten):
        return Layer("flatten")
    if isinstance(layer, layers.Lambda):
        return _read_lambda(layer)
    raise unsupported(layer.name, layer)


def _conv(
    layer: layers.Layer,
    config: dict,
    in_channels: int,
    out_channels: int,
    groups: int,
    weight: np.ndarray,
    bias: np.ndarray | None,
) -> Layer:
    padding = "same" if config["padding"] == "same" else 0
    return conv(
        in_channels,
        out_channels,
        config["kernel_size"],
        config["strides"],
        padding,
        config["dilation_rate"],
        groups,
        np.ascontiguousarray(weight),
        bias,
    )


def _batch_norm(layer: layers.BatchNormalization, config: dict) -> Layer:
    if not _channel_axis(layer, config["axis"]) or config.get("renorm") or config.get("synchronized"):
        raise unsupported(layer.name, layer, "a BatchNormalization that is not plain, on the channel axis")
    dtype = np.asarray(layer.moving_mean).dtype
    return batch_norm(
        int(layer.moving_mean.shape[0]),
        eps=float(config["epsilon"]),
        momentum=momentum_new_batch(config["momentum"]),
        variance="biased",
        weight=np.asarray(layer.gamma) if layer.gamma is not None else None,
        bias=np.asarray(layer.beta) if layer.beta is not None else None,
        running_mean=np.asarray(layer.moving_mean),
        running_var=np.asarray(layer.moving_variance),
        dtype=dtype,
    )


def _read_lambda(layer: layers.Lambda) -> Layer:
    """The Lambda layers the writer makes: a constant padding, the tanh GELU, an other hard sigmoid."""
    function, arguments = layer.function, dict(getattr(layer, "arguments", None) or {})
    name = getattr(function, "__name__", "")
    if name == "constant_pad" and set(arguments) == {"padding", "value"}:
        (top, bottom), (left, right) = arguments["padding"]
        return Layer("constant_pad2d", {"padding": (top, bottom, left, right), "value": float(arguments["value"])})
    if function is keras.activations.gelu and set(arguments) == {"approximate"}:
        return Layer("gelu", {"approximate": "tanh" if arguments["approximate"] else "none"})
    if name == "hard_sigmoid" and set(arguments) == {"alpha", "beta"}:
        return Layer("hard_sigmoid", {"alpha": float(arguments["alpha"]), "beta": float(arguments["beta"])})
    raise unsupported(layer.name, layer, "a Lambda layer (its function is Python code port cannot read)")
