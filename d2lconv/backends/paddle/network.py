"""The Paddle tab's network writer and reader: ``paddle.nn.Sequential`` <-> d2lconv's ``Network``.

Paddle is NCHW with OIHW kernels, but its ``Linear`` weight is (in, out), its
``AvgPool2D`` says ``exclusive`` for "padding stays out of the divisor" (the opposite of
``count_include_pad``, and on by default), and ceil mode keeps a last window that starts
in the padding (``d2lconv.core.plan.plan`` writes that overhang out as padding).
Convolutions take 4-value (top, bottom, left, right) padding directly. Each layer is
built from the same source text ``network_code`` shows.
"""

from __future__ import annotations

import math

import numpy as np
import paddle
from paddle import nn

from ...core.network import Layer, Network, conv, infer_input_shape, pool
from ...core.plan import plan, unsupported
from .._shared import pair_source
from .ops import NAME

_ACTIVATIONS = {"relu": "nn.ReLU()", "sigmoid": "nn.Sigmoid()", "tanh": "nn.Tanh()"}


def _padding_source(padding: tuple[int, int, int, int] | str) -> str:
    if isinstance(padding, str):
        return "'SAME'"
    top, bottom, left, right = padding
    return pair_source((top, left), list) if (top, left) == (bottom, right) else str(list(padding))


def _layer_source(layer: Layer) -> str:
    """One layer as the book's Paddle tab writes it."""
    a, kind = layer.args, layer.kind
    if kind in _ACTIVATIONS:
        return _ACTIVATIONS[kind]
    if kind == "flatten":
        return "nn.Flatten()"
    if kind == "linear":
        return f"nn.Linear({a['in_features']}, {a['out_features']}{'' if a['bias'] else ', bias_attr=False'})"
    if kind in ("zero_pad2d", "constant_pad2d"):
        top, bottom, left, right = a["padding"]
        if kind == "zero_pad2d":
            return f"nn.ZeroPad2D([{left}, {right}, {top}, {bottom}])"
        value = "-math.inf" if a["value"] == -math.inf else repr(a["value"])
        return f"nn.Pad2D([{left}, {right}, {top}, {bottom}], value={value})"
    options = []
    padding = _padding_source(a["padding"])
    if kind in ("conv2d", "conv_transpose2d"):
        head = (
            f"nn.{'Conv2D' if kind == 'conv2d' else 'Conv2DTranspose'}({a['in_channels']}, {a['out_channels']}, "
            f"kernel_size={pair_source(a['kernel_size'], list)}"
        )
        options += [f"stride={pair_source(a['stride'], list)}"] if a["stride"] != (1, 1) else []
        options += [f"padding={padding}"] if padding != "0" else []
        if kind == "conv_transpose2d" and a["output_padding"] != (0, 0):
            options.append(f"output_padding={pair_source(a['output_padding'], list)}")
        options += [f"dilation={pair_source(a['dilation'], list)}"] if a["dilation"] != (1, 1) else []
        options += [f"groups={a['groups']}"] if a["groups"] != 1 else []
        options += [] if a["bias"] else ["bias_attr=False"]
        return ", ".join([head, *options]) + ")"
    layer_class = "MaxPool2D" if kind == "max_pool2d" else "AvgPool2D"
    head = f"nn.{layer_class}(kernel_size={pair_source(a['kernel_size'], list)}"
    options += [f"stride={pair_source(a['stride'], list)}"]
    options += [f"padding={padding}"] if padding != "0" else []
    options += ["ceil_mode=True"] if a["ceil_mode"] else []
    if kind == "avg_pool2d" and a["count_include_pad"] and padding != "0":
        options.append("exclusive=False")  # Paddle's default leaves padding out of the divisor
    return ", ".join([head, *options]) + ")"


def _source(net: Network) -> str:
    lines = "".join(f"    {_layer_source(layer)},\n" for layer in net.layers)
    return f"nn.Sequential(\n{lines})"


def _paddle_weights(net: Network) -> dict[str, np.ndarray]:
    """Each parameter in Paddle's layouts (``Linear`` (in, out)), named as ``named_parameters`` names them."""
    return {
        f"{index}.{name}": np.ascontiguousarray(array.T if layer.kind == "linear" and name == "weight" else array)
        for index, layer in enumerate(net.layers)
        for name, array in layer.weights.items()
    }


def build_network(net: Network) -> nn.Sequential:
    """``net`` as a ``paddle.nn.Sequential``, its weights loaded (float64 stays float64)."""
    planned = plan(net, NAME).network
    model = eval(_source(planned), {"nn": nn, "math": math})  # the very text network_code shows
    if planned.dtype == np.float64:
        model.to(dtype="float64")
    weights = _paddle_weights(planned)
    for name, parameter in model.named_parameters():
        parameter.set_value(weights[name].astype(planned.dtype))
    return model


def network_code(net: Network) -> str:
    """Source that builds ``net`` the way the book's Paddle tab would, and loads the weights file."""
    planned = plan(net, NAME).network
    source = _source(planned)
    dtype = "\nnet.to(dtype='float64')" if planned.dtype == np.float64 else ""
    return (
        ("import math\n\n" if "math." in source else "") + "import numpy as np\nfrom paddle import nn\n\n"
        f"net = {source}{dtype}\n"
        "weights = np.load('weights.npz')  # written by ported.save_weights\n"
        "for name, parameter in net.named_parameters():\n"
        "    parameter.set_value(weights[name])\n"
    )


def native_weights(model: nn.Sequential) -> dict[str, np.ndarray]:
    """The model's parameters in Paddle's layouts, named as ``named_parameters`` names them."""
    return {name: np.array(parameter.numpy()) for name, parameter in model.named_parameters()}


def _padding(padding: object) -> object:
    if isinstance(padding, str):
        return padding.lower()
    if isinstance(padding, list | tuple) and len(padding) == 4:
        return ((padding[0], padding[1]), (padding[2], padding[3]))
    return padding


def _read_layer(index: int, module: nn.Layer) -> Layer:
    def array(parameter: paddle.Tensor) -> np.ndarray:
        return np.array(parameter.numpy())

    if isinstance(module, nn.Conv2D | nn.Conv2DTranspose):
        if module._padding_mode != "zeros" or module._data_format != "NCHW":
            raise unsupported(index, module, "only zero padding and NCHW data port")
        layer = conv(
            module._in_channels,
            module._out_channels,
            tuple(module._kernel_size),
            tuple(module._stride),
            _padding(module._padding),
            tuple(module._dilation),
            module._groups,
            array(module.weight),
            None if module.bias is None else array(module.bias),
        )
        if isinstance(module, nn.Conv2DTranspose):
            output_padding = module.output_padding
            output_padding = (output_padding, output_padding) if np.ndim(output_padding) == 0 else output_padding
            layer = Layer("conv_transpose2d", {**layer.args, "output_padding": tuple(output_padding)}, layer.weights)
        return layer
    if isinstance(module, nn.MaxPool2D | nn.AvgPool2D):
        if module.data_format != "NCHW" or getattr(module, "return_mask", False) or getattr(module, "divisor", None):
            raise unsupported(index, module, "data_format / return_mask / divisor_override")
        if isinstance(module, nn.MaxPool2D):
            return pool("max_pool2d", module.ksize, module.stride, _padding(module.padding), module.ceil_mode)
        return pool(
            "avg_pool2d",
            module.ksize,
            module.stride,
            _padding(module.padding),
            module.ceil_mode,
            count_include_pad=not module.exclusive,
        )
    if isinstance(module, nn.ZeroPad2D | nn.Pad2D):
        if module._mode != "constant":
            raise unsupported(index, module, f"padding mode {module._mode!r}")
        left, right, top, bottom = module.padding
        value = float(module.value)
        return (
            Layer("zero_pad2d", {"padding": (top, bottom, left, right)})
            if value == 0
            else Layer("constant_pad2d", {"padding": (top, bottom, left, right), "value": value})
        )
    if isinstance(module, nn.Flatten):
        if module.start_axis != 1 or module.stop_axis != -1:
            raise unsupported(index, module, "a flatten that keeps dimensions other than the batch")
        return Layer("flatten")
    if isinstance(module, nn.Linear):
        weight = array(module.weight)
        weights = {"weight": weight.T.copy(), **({} if module.bias is None else {"bias": array(module.bias)})}
        return Layer(
            "linear",
            {"in_features": weight.shape[0], "out_features": weight.shape[1], "bias": module.bias is not None},
            weights,
        )
    for kind, cls in (("relu", nn.ReLU), ("sigmoid", nn.Sigmoid), ("tanh", nn.Tanh)):
        if isinstance(module, cls):
            return Layer(kind)
    raise unsupported(index, module)


def read_network(model: nn.Sequential, input_shape: tuple[int, ...] | None = None) -> Network:
    """The description of a ``paddle.nn.Sequential`` (nested ones are unrolled); Linear weights to (out, in)."""
    if not isinstance(model, nn.Sequential):
        raise ValueError(f"port needs a sequential network (paddle.nn.Sequential); got {type(model).__name__}")
    modules = [module for module in model.sublayers() if not isinstance(module, nn.Sequential)]
    described = [_read_layer(index, module) for index, module in enumerate(modules)]
    return Network(input_shape or infer_input_shape(described), described)


def run_network(model: nn.Sequential, x: np.ndarray) -> np.ndarray:
    """The model's output on an NCHW NumPy batch, as NumPy."""
    x = paddle.to_tensor(np.ascontiguousarray(x))
    dtype = next((parameter.dtype for parameter in model.parameters()), x.dtype)
    training = model.training
    model.eval()  # prediction mode: BatchNorm uses its moving statistics
    try:
        with paddle.no_grad():
            return np.array(model(x.astype(dtype)).numpy())
    finally:
        if training:
            model.train()
