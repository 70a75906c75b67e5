"""A network as framework-neutral data: a graph of layers, what ``port`` and LeNet's weight loading share.

A ``Network`` is an input shape, a list of ``Layer`` nodes in graph order (every node after the
nodes it reads) and the names of its output node(s). Each layer has a ``kind`` (a key of
``KINDS``), its arguments normalised once (``args``), its weights as NumPy arrays in d2lconv's
layouts, a unique ``name`` and ``inputs``: the names of the nodes it reads (``INPUT`` is the
network's input). Left out, the name is ``"<kind>_<index>"`` and the inputs are the previous
layer (the network input for the first), so a sequential network is a plain list of layers, as
before; ``outputs`` defaults to the last layer. Names are Python identifiers (writers use them as
attribute and layer names); readers turn a framework's names into such (``layer1.0.conv1`` ->
``layer1_0_conv1``, as ``torch.fx`` does).

Data is NCHW, whatever the framework: every axis below is an NCHW axis of the batch. Weights:

==================  ==========================================================================
kind                arguments (``args``) and weights
==================  ==========================================================================
conv2d              in_channels, out_channels, kernel_size, stride, padding, dilation, groups, bias;
                    weight OIHW (out, in/groups, kh, kw), bias (out,). A depthwise convolution is
                    groups == in_channels with out_channels = m * in_channels (m = depth multiplier):
                    weight (C*m, 1, kh, kw), output channel c*m + j reads input channel c (PyTorch's
                    order; Keras's DepthwiseConv2D kernel is (kh, kw, C, m) with the same order)
conv_transpose2d    as conv2d plus output_padding; weight (in, out/groups, kh, kw)
max_pool2d          kernel_size, stride, padding, dilation, ceil_mode
avg_pool2d          kernel_size, stride, padding, ceil_mode, count_include_pad
zero_pad2d          padding
constant_pad2d      padding, value (-inf before a max pooling a framework cannot pad itself)
flatten             -- (C, H, W order, PyTorch's)
linear              in_features, out_features, bias; weight (out, in), bias (out,)
batch_norm          num_features, eps, momentum, variance; weights weight (gamma), bias (beta),
                    running_mean, running_var, all (C,) and always present (gamma 1 and beta 0 when
                    the source has no affine parameters). Inference: (x - running_mean) /
                    sqrt(running_var + eps) * gamma + beta. Training: normalised with the batch's
                    mean and BIASED variance (every framework), then running = (1 - momentum) *
                    running + momentum * batch statistic, i.e. ``momentum`` is PyTorch's: the weight
                    of the NEW batch (Keras/Flax 0.99 and Paddle/Gluon 0.9 weigh the old value:
                    readers store 1 - theirs, see ``conventions.momentum_new_batch``). ``variance`` is the
                    estimate the source framework puts into running_var in training: "unbiased"
                    (n / (n - 1) times the biased one, n = N*H*W: PyTorch) or "biased" (Keras 3,
                    Flax). Statistics per channel (axis 1) of (N, C, H, W) or (N, C)
add, mul            -- ; two or more inputs, broadcast as NumPy does over (C, H, W): mul is the
                    squeeze-excite gate (N, C, 1, 1) * (N, C, H, W)
concat              -- ; two or more inputs joined on axis 1 (channels; features of vectors); NHWC
                    writers use their last axis
global_avg_pool     keepdims: mean over H and W; (N, C, 1, 1) if keepdims else (N, C)
adaptive_avg_pool   output_size (oh, ow), each dividing the input's (H, W): PyTorch's
                    AdaptiveAvgPool2d, then an average pooling with kernel = stride = H/oh, W/ow
dropout             rate (of zeroing, Keras's/PyTorch's p); identity at inference
relu, sigmoid,      --
tanh, relu6, silu,  silu = x * sigmoid(x) (swish); hard_swish = x * relu6(x + 3) / 6 (PyTorch's,
hard_swish          Keras 3's)
leaky_relu          negative_slope (PyTorch's 0.01; Keras's alpha/negative_slope default 0.3)
elu                 alpha
gelu                approximate: "none" (exact, erf) or "tanh"
hard_sigmoid        alpha, beta: clip(alpha * x + beta, 0, 1). PyTorch and Keras 3: 1/6, 1/2
                    (relu6(x + 3) / 6); ONNX's HardSigmoid and Keras 2: 0.2, 0.5
softmax             axis (an NCHW axis of the batch, >= 1; readers normalise -1 with the input's rank)
==================  ==========================================================================

Spatial arguments are pairs; padding is (top, bottom, left, right) or "same" (d2lconv's
SAME_UPPER). The shapes (``Network.node_shapes``) leave the batch dimension out.

Each tab ("backends/<name>/") provides, for ``port`` and its checks (the same names everywhere):

- ``build_network(net) -> model``: the framework's own layers, weights loaded, in its own layout;
  a graph when ``net`` is not ``is_sequential``. Nodes keep their names (``run_nodes`` reports them).
- ``network_code(net) -> str``: readable source, in the framework's idiom, that builds that model.
- ``read_network(model, input_shape=None) -> Network``: the description of a native model
  (readers never key on a model's class name; an op they cannot express is a ``ValueError``
  naming the node and listing ``KINDS``).
- ``native_weights(model) -> {name: array}``: for ``Ported.save_weights``.
- ``run_network(model, x) -> np.ndarray``: the output on an NCHW NumPy batch x, in inference mode.

and, for the checks of graphs, a module ``port_checks`` (the tests take a tab with one as able to
port graphs, and expect failures from the others until then):

- ``train_forward(model, x) -> np.ndarray``: ONE forward in training mode - BatchNorm normalises
  with the batch's statistics and updates the model's running statistics in place - with dropout
  kept at inference (identity) so that two frameworks can be compared; the model is left in
  inference mode (``Ported.compare(x, train=True)``).
- ``run_nodes(model, x) -> {node name: np.ndarray}``: every node's output in inference mode, in
  NCHW (layouts undone), keyed by the node names this tab's ``read_network`` gives the model
  (``compare(per_layer=True)`` matches them to the source's through the planned description, whose
  nodes a writer writes one for one and in order).
- ``train_step(model, x, target, lr) -> float``: one step of plain SGD in place: a training-mode
  forward as ``train_forward`` (running statistics updated), loss = mean((y - target)**2) over
  every element, its gradient, then every trainable weight w -= lr * dL/dw (gamma and beta
  included; running statistics are not trained). Returns the loss before the step; the model is
  left in inference mode (``Ported.compare_train_step``).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace

import numpy as np

from .layer import (
    ACTIVATIONS,
    CHAPTER_KINDS,
    INPUT,
    KINDS,
    MERGES,
    NO_PADDING,
    SHAPE_KEEPING,
    TRAINABLE,
    VARIANCE_ESTIMATES,
    WEIGHTS,
    Layer,
    batch_norm,
    conv,
    is_identifier,
    normal_padding,
    pad_pairs,
    pool,
    resolve_padding,
)
from .shapes import flatten_permutation, node_output_shape, output_shape

# The description's public names, importable from here (readers and writers use them).
__all__ = [
    "ACTIVATIONS",
    "CHAPTER_KINDS",
    "INPUT",
    "KINDS",
    "MERGES",
    "NO_PADDING",
    "SHAPE_KEEPING",
    "TRAINABLE",
    "VARIANCE_ESTIMATES",
    "WEIGHTS",
    "Layer",
    "Network",
    "batch_norm",
    "conv",
    "dense_after_flatten",
    "flatten_permutation",
    "infer_input_shape",
    "is_identifier",
    "node_output_shape",
    "normal_padding",
    "output_shape",
    "pad_pairs",
    "pool",
    "resolve_padding",
]


@dataclass
class Network:
    """A graph of layers on inputs of shape (C, H, W), or (features,) when it starts with a dense layer.

    Layers come in graph order; names and inputs left out are filled in (the previous layer), so a
    list of layers is a sequential network. ``outputs`` defaults to the last layer's name.
    """

    input_shape: tuple[int, ...]
    layers: list[Layer]
    outputs: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        self.input_shape = tuple(int(v) for v in self.input_shape)
        self.layers = list(_named(self.layers))
        self.outputs = tuple(self.outputs) or ((self.layers[-1].name,) if self.layers else (INPUT,))
        known = {INPUT, *(layer.name for layer in self.layers)}
        missing = [name for name in self.outputs if name not in known]
        if missing:
            raise ValueError(f"the network's outputs {missing} are not nodes of it")

    @property
    def dtype(self) -> np.dtype:
        """float64 if any weight is float64, else float32."""
        kinds = {array.dtype for layer in self.layers for array in layer.weights.values()}
        return np.dtype(np.float64) if np.dtype(np.float64) in kinds else np.dtype(np.float32)

    def astype(self, dtype: str) -> Network:
        """A copy whose weights (and running statistics) are ``dtype`` ("float32" or "float64"), for a float64 run
        of a seeded description; the layers' arguments, names and inputs shared."""
        return Network(
            self.input_shape,
            [
                replace(layer, weights={key: array.astype(dtype) for key, array in layer.weights.items()})
                for layer in self.layers
            ],
            self.outputs,
        )

    @property
    def is_sequential(self) -> bool:
        """Whether every layer reads exactly the one before it (the first the input) and the last is the output."""
        previous = INPUT
        for layer in self.layers:
            if layer.inputs != (previous,):
                return False
            previous = layer.name
        return self.outputs == (previous,)

    def layer(self, name: str) -> Layer:
        """The node called ``name``."""
        for layer in self.layers:
            if layer.name == name:
                return layer
        raise KeyError(f"no node {name!r} in the network")

    def consumers(self) -> dict[str, list[str]]:
        """Node name (``INPUT`` included) -> the names of the nodes that read it, in graph order."""
        readers: dict[str, list[str]] = {INPUT: [], **{layer.name: [] for layer in self.layers}}
        for layer in self.layers:
            for name in dict.fromkeys(layer.inputs):
                readers[name].append(layer.name)
        return readers

    def node_shapes(self) -> dict[str, tuple[int, ...]]:
        """Node name (``INPUT`` included) -> its output shape (batch dimension left out)."""
        shapes: dict[str, tuple[int, ...]] = {INPUT: tuple(self.input_shape)}
        for index, layer in enumerate(self.layers):
            shapes[layer.name] = node_output_shape(layer, [shapes[name] for name in layer.inputs], index)
        return shapes

    def shapes(self) -> list[tuple[int, ...]]:
        """The input shape, then every layer's output shape in order (batch dimension left out); for a
        sequential network, ``shapes()[i]`` is layer i's input."""
        shapes = self.node_shapes()
        return [shapes[INPUT], *(shapes[layer.name] for layer in self.layers)]


def _named(layers: Iterable[Layer]) -> Iterable[Layer]:
    """The layers with names and inputs filled in and checked (copies; weights and args shared)."""
    seen: set[str] = set()
    previous = INPUT
    for index, layer in enumerate(layers):
        name = layer.name or f"{layer.kind}_{index}"
        if not is_identifier(name):
            raise ValueError(f"layer {index} ({layer.kind}): the node name {name!r} is not a Python identifier")
        if name in seen:
            raise ValueError(f"layer {index} ({layer.kind}): the node name {name!r} is used twice")
        inputs = layer.inputs or (previous,)
        unknown = [source for source in inputs if source != INPUT and source not in seen]
        if unknown:
            raise ValueError(
                f"layer {index} ({name}, {layer.kind}) reads {unknown}, which are not earlier nodes "
                "(layers must come in graph order)"
            )
        count = len(inputs)
        if (layer.kind in MERGES) != (count > 1) or (layer.kind in MERGES and count < 2):
            needs = "two or more inputs" if layer.kind in MERGES else "one input"
            raise ValueError(f"layer {index} ({name}, {layer.kind}) needs {needs}, got {list(inputs)}")
        seen.add(name)
        previous = name
        yield layer if (name, inputs) == (layer.name, layer.inputs) else replace(layer, name=name, inputs=inputs)


def dense_after_flatten(net: Network) -> dict[int, tuple[int, int, int]]:
    """For each linear layer fed (through shape-keeping layers only) by a flatten of a feature map: its
    index -> the (C, H, W) flattened. A global average pooling before a dense layer needs no such
    permutation: it leaves C values, in the same order in every layout."""
    shapes, by_name = net.node_shapes(), {layer.name: layer for layer in net.layers}
    found: dict[int, tuple[int, int, int]] = {}
    for index, layer in enumerate(net.layers):
        if layer.kind != "linear":
            continue
        source = by_name.get(layer.inputs[0])
        while source is not None and source.kind in SHAPE_KEEPING:
            source = by_name.get(source.inputs[0])
        if source is not None and source.kind == "flatten" and len(shapes[source.inputs[0]]) == 3:
            c, h, w = shapes[source.inputs[0]]
            found[index] = (c, h, w)
    return found


DEFAULT_SIZE = 17  # odd, so that 'same'-style asymmetry shows


def infer_input_shape(layers: list[Layer], size: int | None = None) -> tuple[int, ...]:
    """An input shape the layers accept: channels from the first convolution; the smallest square size
    that gives the first dense layer its ``in_features`` (LeNet: 28), else ``DEFAULT_SIZE`` or the next
    size that fits. A network that starts with a dense layer takes vectors. When no size fits (the channels
    cannot be told without a convolution), a guess that ``Network.shapes`` will reject."""
    first = next((layer for layer in layers if layer.kind in ("conv2d", "conv_transpose2d", "linear", "flatten")), None)
    if first is not None and first.kind == "linear":
        return (first.args["in_features"],)
    channels = first.args["in_channels"] if first is not None and first.kind != "flatten" else 1
    dense = next((layer for layer in layers if layer.kind == "linear"), None)
    sizes = (
        [size]
        if size
        else (range(1, 513) if dense is not None else [*range(DEFAULT_SIZE, 513), *range(DEFAULT_SIZE - 1, 0, -1)])
    )
    for side in sizes:
        try:
            Network((channels, side, side), layers).shapes()
        except ValueError:
            continue
        return (channels, side, side)
    return (channels, DEFAULT_SIZE, DEFAULT_SIZE)  # nothing fits: port() asks for input_shape
