"""The MXNet tab's network writer and reader: Gluon ``nn.HybridSequential`` <-> d2lconv's ``Network``.

Gluon is NCHW with OIHW kernels and ``Dense`` weights (out, in), so weights copy over
unchanged. It pads a convolution or pooling only symmetrically and has no padding layer,
no 'same', and a ceil mode that keeps a last window starting in the padding:
``d2lconv.core.plan.plan`` writes 'same' out and refuses what Gluon cannot express.
``Dense`` flattens its input itself (the book's MXNet LeNet has no ``Flatten``); the reader
adds the flatten it implies. Each layer is built from the same source text ``network_code``
shows.
"""

from __future__ import annotations

import numpy as np

from ...core.network import Layer, Network, conv, infer_input_shape, pool
from ...core.plan import plan, unsupported
from .._shared import pair_source
from .ops import NAME, gluon, mnp

nn = gluon.nn
_ACTIVATIONS = ("relu", "sigmoid", "tanh")
_SPATIAL = ("conv2d", "conv_transpose2d", "max_pool2d", "avg_pool2d", "zero_pad2d", "constant_pad2d")


def _layer_source(layer: Layer) -> str:
    """One layer as the book's MXNet tab writes it (input sizes given, so weights exist before a call)."""
    a, kind = layer.args, layer.kind
    if kind in _ACTIVATIONS:
        return f"nn.Activation('{kind}')"
    if kind == "flatten":
        return "nn.Flatten()"
    if kind == "linear":
        return f"nn.Dense({a['out_features']}, in_units={a['in_features']}{'' if a['bias'] else ', use_bias=False'})"
    padding = pair_source((a["padding"][0], a["padding"][2])) if "padding" in a else "0"
    if kind in ("conv2d", "conv_transpose2d"):
        options = [f"kernel_size={pair_source(a['kernel_size'])}"]
        options += [f"strides={pair_source(a['stride'])}"] if a["stride"] != (1, 1) else []
        options += [f"padding={padding}"] if padding != "0" else []
        if kind == "conv_transpose2d" and a["output_padding"] != (0, 0):
            options.append(f"output_padding={pair_source(a['output_padding'])}")
        options += [f"dilation={pair_source(a['dilation'])}"] if a["dilation"] != (1, 1) else []
        options += [f"groups={a['groups']}"] if a["groups"] != 1 else []
        options += [] if a["bias"] else ["use_bias=False"]
        options.append(f"in_channels={a['in_channels']}")
        return f"nn.{'Conv2D' if kind == 'conv2d' else 'Conv2DTranspose'}({a['out_channels']}, {', '.join(options)})"
    options = [f"pool_size={pair_source(a['kernel_size'])}", f"strides={pair_source(a['stride'])}"]
    options += [f"padding={padding}"] if padding != "0" else []
    options += ["ceil_mode=True"] if a["ceil_mode"] else []
    if kind == "avg_pool2d" and not a["count_include_pad"] and padding != "0":
        options.append("count_include_pad=False")
    return f"nn.{'MaxPool2D' if kind == 'max_pool2d' else 'AvgPool2D'}({', '.join(options)})"


def _source(net: Network) -> str:
    lines = "".join(f"    net.add({_layer_source(layer)})\n" for layer in net.layers)
    return f"net = nn.HybridSequential()\nwith net.name_scope():\n{lines}net.initialize()"


def build_network(net: Network) -> gluon.nn.HybridSequential:
    """``net`` as a Gluon ``HybridSequential``, its weights loaded (float64 stays float64)."""
    planned = plan(net, NAME).network
    namespace = {"nn": nn}
    exec(_source(planned), namespace)  # the very text network_code shows
    model = namespace["net"]
    if planned.dtype == np.float64:
        model.cast("float64")
    for index, layer in enumerate(planned.layers):
        for name, array in layer.weights.items():
            getattr(model[index], name).set_data(mnp.array(array, dtype=array.dtype))
    return model


def network_code(net: Network) -> str:
    """Source that builds ``net`` the way the book's MXNet tab would, and loads the weights file."""
    planned = plan(net, NAME).network
    dtype = "\nnet.cast('float64')" if planned.dtype == np.float64 else ""
    return (
        "import numpy as onp\n\nonp.bool = bool  # mxnet 1.9 needs it on numpy >= 1.24\n"
        "from mxnet import np, npx  # noqa: E402\nfrom mxnet.gluon import nn  # noqa: E402\n\nnpx.set_np()\n"
        f"{_source(planned)}{dtype}\n"
        "weights = onp.load('weights.npz')  # written by ported.save_weights\n"
        "for index, layer in enumerate(net):\n"
        "    for name in ('weight', 'bias'):\n"
        "        if f'{index}.{name}' in weights:\n"
        "            getattr(layer, name).set_data(np.array(weights[f'{index}.{name}']))\n"
    )


def native_weights(model: gluon.nn.HybridSequential) -> dict[str, np.ndarray]:
    """Every layer's weight and bias in Gluon's layouts, named ``"index.weight"`` / ``"index.bias"``."""
    return {
        f"{index}.{name}": getattr(layer, name).data().asnumpy()
        for index, layer in enumerate(model)
        for name in ("weight", "bias")
        if getattr(layer, name, None) is not None
    }


def _activation(block: gluon.nn.Block) -> str | None:
    act = getattr(block, "act", None)
    return None if act is None else act._act_type


def _read_block(index: int, block: gluon.nn.Block, previous: str | None) -> list[Layer]:
    """The block's description; a layer with ``activation=`` becomes two, a flattening ``Dense`` two."""
    activation = _activation(block)
    tail = [Layer(activation)] if activation else []
    if tail and tail[0].kind not in _ACTIVATIONS:
        raise unsupported(index, block, f"activation {tail[0].kind!r}")
    if isinstance(block, nn.Conv2D | nn.Conv2DTranspose):
        kwargs = block._kwargs
        if kwargs.get("layout", "NCHW") != "NCHW":
            raise unsupported(index, block, "a layout other than NCHW")
        weight = block.weight.data().asnumpy()
        bias = None if block.bias is None else block.bias.data().asnumpy()
        transposed = isinstance(block, nn.Conv2DTranspose)
        in_channels = weight.shape[0] if transposed else weight.shape[1] * kwargs["num_group"]
        layer = conv(
            in_channels,
            kwargs["num_filter"],
            kwargs["kernel"],
            kwargs["stride"],
            tuple(kwargs["pad"]),
            kwargs["dilate"],
            kwargs["num_group"],
            weight,
            bias,
        )
        if transposed:
            layer = Layer("conv_transpose2d", {**layer.args, "output_padding": tuple(kwargs["adj"])}, layer.weights)
        return [layer, *tail]
    if isinstance(block, nn.MaxPool2D | nn.AvgPool2D):
        kwargs = block._kwargs
        if kwargs.get("layout", "NCHW") != "NCHW":
            raise unsupported(index, block, "a layout other than NCHW")
        ceil = kwargs["pooling_convention"] == "full"
        if isinstance(block, nn.MaxPool2D):
            return [pool("max_pool2d", kwargs["kernel"], kwargs["stride"], tuple(kwargs["pad"]), ceil)]
        return [
            pool(
                "avg_pool2d",
                kwargs["kernel"],
                kwargs["stride"],
                tuple(kwargs["pad"]),
                ceil,
                count_include_pad=kwargs.get("count_include_pad", True),
            )
        ]
    if isinstance(block, nn.Dense):
        weight = block.weight.data().asnumpy()
        bias = None if block.bias is None else block.bias.data().asnumpy()
        flatten = [Layer("flatten")] if block._flatten and previous in _SPATIAL else []
        return [
            *flatten,
            Layer(
                "linear",
                {"in_features": weight.shape[1], "out_features": weight.shape[0], "bias": bias is not None},
                {"weight": weight, **({} if bias is None else {"bias": bias})},
            ),
            *tail,
        ]
    if isinstance(block, nn.Flatten):
        return [Layer("flatten")]
    if isinstance(block, nn.Activation):
        if block._act_type not in _ACTIVATIONS:
            raise unsupported(index, block, f"activation {block._act_type!r}")
        return [Layer(block._act_type)]
    raise unsupported(index, block)


def read_network(model: gluon.nn.Sequential, input_shape: tuple[int, ...] | None = None) -> Network:
    """The description of a Gluon ``Sequential`` or ``HybridSequential`` whose parameters are initialised."""
    if not isinstance(model, nn.Sequential | nn.HybridSequential):
        raise ValueError(
            f"port needs a sequential network (gluon nn.Sequential / nn.HybridSequential); got {type(model).__name__}"
        )
    described: list[Layer] = []
    for index, block in enumerate(model):
        previous = next((layer.kind for layer in reversed(described) if layer.kind not in _ACTIVATIONS), None)
        described += _read_block(index, block, previous)
    return Network(input_shape or infer_input_shape(described), described)


def run_network(model: gluon.nn.HybridSequential, x: np.ndarray) -> np.ndarray:
    """The model's output on an NCHW NumPy batch, as NumPy."""
    x = np.asarray(x)
    parameters = list(model.collect_params().values())
    return model(mnp.array(x, dtype=parameters[0].dtype if parameters else x.dtype)).asnumpy()
