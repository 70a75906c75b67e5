"""The modern CNNs (d2l-en 8.1-8.7, d2l-zh 7.1-7.7), the framework-neutral half: each network as one description.

Each function returns a ``BookNet``: the network as a graph of ``Layer`` nodes (``d2lconv.core.network``)
with seeded weights - Xavier-uniform weights and zero biases drawn by NumPy from ``seed`` as LeNet's,
BatchNorm at its initial state (gamma 1, beta 0, mean 0, variance 1); ``seed=None``: zero weights that
take no memory, for shapes - the book's blocks whose output shapes its shape-printing cell prints
(``stages``), and that cell's input (``book_input``). Every tab's writer ``build_network`` turns the
graph into the framework's own layers. 10 classes, 1-channel input.

The description is d2l-en's PyTorch tab. Where the book's tabs differ (checked against d2l-en's and
d2l-zh's ``chapter_convolutional-modern/*.md``):

- AlexNet's first convolution (11x11, stride 4) pads 1 in the PyTorch and JAX tabs of d2l-en (PyTorch
  and Paddle of d2l-zh) and nothing in the MXNet and TensorFlow tabs of both: 54x54 after it on 224x224
  either way ((226 - 11) // 4 + 1 = (224 - 11) // 4 + 1 = 54), so the printed shapes agree; the values differ.
- GoogLeNet's and ResNet's (and DenseNet's) 7x7 stride-2 convolution and 3x3 stride-2 max pooling pad
  3 and 1 in the PyTorch and MXNet tabs and are ``padding='same'`` in the TensorFlow and JAX tabs. On the
  book's even inputs both give the same shapes (96 -> 48 -> 24), but 'same' pads 2 before and 3 after
  (SAME_UPPER: the extra row at the bottom and right) for the convolution and 0 before, 1 after for the
  pooling, so the windows - and the values - move by one pixel.
- Inputs of the shape-printing cells: AlexNet, VGG and NiN 224x224 in both editions; GoogLeNet 96x96 in
  both; ResNet 96x96 in d2l-en, 224x224 in d2l-zh. DenseNet has no such cell in either edition (only its
  blocks' shapes on 8x8): 96x96 here, the size both train it on (``resize=96``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from ..core.network import INPUT, Layer, Network, batch_norm, conv, pool

NUM_CLASSES = 10
CHANNELS = 1


@dataclass(frozen=True)
class BookNet:
    """A modern CNN as the book builds it: the graph, the blocks its cell prints, the cell's input (C, H, W)."""

    name: str
    network: Network
    stages: tuple[tuple[str, str], ...]  # (the book's block name, the node whose output ends it)
    book_input: tuple[int, int, int]

    def summary(self, input_shape: tuple[int, ...] | None = None) -> list[tuple[str, tuple[int, ...]]]:
        """[(block, output shape)] on one image of ``input_shape`` (C, H, W), by default the book's."""
        shape = self.book_input if input_shape is None else check_input_shape(self.name, input_shape)
        shapes = at_input(self.network, shape).node_shapes()
        return [(label, shapes[node]) for label, node in self.stages]


def check_input_shape(name: str, input_shape: Any) -> tuple[int, int, int]:
    """``input_shape`` as (1, H, W): a (C, H, W) or (N, C, H, W) shape with one channel (N is left out)."""
    try:
        if isinstance(input_shape, str):
            raise TypeError
        shape = tuple(int(v) for v in input_shape)
    except (TypeError, ValueError):
        raise TypeError(f"input_shape must be a tuple of ints (C, H, W), got {input_shape!r}") from None
    shape = shape[1:] if len(shape) == 4 else shape
    if len(shape) != 3 or shape[0] != CHANNELS or min(shape) < 1:
        raise ValueError(f"input_shape of {name} must be (1, H, W) (one channel), got {input_shape!r}")
    return (shape[0], shape[1], shape[2])


def at_input(network: Network, input_shape: tuple[int, ...]) -> Network:
    """The same graph on another input shape (weights shared)."""
    return replace(network, input_shape=tuple(input_shape))


class _Graph:
    """Adds seeded nodes one after another; ``node(...)`` returns the new node's name."""

    def __init__(self, seed: int | None) -> None:
        # LeNet's weight stream; no seed: weights are read-only zero views (for shapes alone, no memory).
        self.rng = None if seed is None else np.random.default_rng(np.random.SeedSequence(seed).spawn(2)[0])
        self.layers: list[Layer] = []
        self.last = INPUT

    def add(self, layer: Layer, name: str, *inputs: str) -> str:
        self.layers.append(replace(layer, name=name, inputs=tuple(inputs) or (self.last,)))
        self.last = name
        return name

    def xavier(self, shape: tuple[int, ...]) -> np.ndarray:
        """Xavier uniform on [-bound, bound], drawn in float32 (VGG-11 has 129 million weights)."""
        if self.rng is None:
            return np.broadcast_to(np.float32(0), shape)
        receptive = math.prod(shape[2:])
        bound = np.float32(math.sqrt(6.0 / (shape[1] * receptive + shape[0] * receptive)))
        weight = self.rng.random(shape, dtype=np.float32)
        weight *= 2 * bound
        weight -= bound
        return weight

    def conv(
        self, name: str, c_in: int, c_out: int, kernel: int, stride: int = 1, padding: int = 0, *inputs: str
    ) -> str:
        weight = self.xavier((c_out, c_in, kernel, kernel))
        layer = conv(c_in, c_out, kernel, stride, padding, weight=weight, bias=np.zeros(c_out, np.float32))
        return self.add(layer, name, *inputs)

    def linear(self, name: str, n_in: int, n_out: int) -> str:
        weights = {"weight": self.xavier((n_out, n_in)), "bias": np.zeros(n_out, np.float32)}
        return self.add(Layer("linear", {"in_features": n_in, "out_features": n_out, "bias": True}, weights), name)

    def bn(self, name: str, channels: int) -> str:
        return self.add(batch_norm(channels), name)

    def relu(self, name: str, *inputs: str) -> str:
        return self.add(Layer("relu"), name, *inputs)

    def max_pool(self, name: str, kernel: int, stride: int, padding: int = 0, *inputs: str) -> str:
        return self.add(pool("max_pool2d", kernel, stride, padding), name, *inputs)

    def simple(self, kind: str, name: str, args: dict[str, Any] | None = None, *inputs: str) -> str:
        return self.add(Layer(kind, args or {}), name, *inputs)

    def head(self, name: str, channels: int) -> str:
        """PyTorch's AdaptiveAvgPool2d((1, 1)), Flatten, Linear(10)."""
        self.simple("adaptive_avg_pool", f"{name}_pool", {"output_size": (1, 1)})
        self.simple("flatten", f"{name}_flatten")
        return self.linear(f"{name}_linear", channels, NUM_CLASSES)

    def network(self, input_shape: tuple[int, int, int]) -> Network:
        return Network(input_shape, self.layers)


def _dense_head(g: _Graph, features: int) -> str:
    """AlexNet's and VGG's classifier: two 4096-wide dense layers with ReLU and dropout 0.5, then 10 classes."""
    g.simple("flatten", "flatten")
    for index, n_in in ((1, features), (2, 4096)):
        g.linear(f"fc{index}", n_in, 4096)
        g.relu(f"fc{index}_relu")
        g.simple("dropout", f"fc{index}_dropout", {"rate": 0.5})
    return g.linear("fc3", 4096, NUM_CLASSES)


def alexnet(seed: int | None = 0) -> BookNet:
    """AlexNet (d2l-en 8.1, d2l-zh 7.1); the first convolution pads 1 (d2l-en's PyTorch/JAX tabs)."""
    g = _Graph(seed)
    stages = []
    for index, (c_in, c_out, kernel, stride, padding, pooled) in enumerate(
        [(1, 96, 11, 4, 1, True), (96, 256, 5, 1, 2, True), (256, 384, 3, 1, 1, False), (384, 384, 3, 1, 1, False)]
        + [(384, 256, 3, 1, 1, True)],
        1,
    ):
        stages.append(("Conv2d", g.conv(f"conv{index}", c_in, c_out, kernel, stride, padding)))
        g.relu(f"conv{index}_relu")
        if pooled:
            stages.append(("MaxPool2d", g.max_pool(f"pool{index}", 3, 2)))
    _dense_head(g, 256 * 5 * 5)
    stages += [("Flatten", "flatten"), ("Linear", "fc1"), ("Linear", "fc2"), ("Linear", "fc3")]
    return BookNet("AlexNet", g.network((CHANNELS, 224, 224)), tuple(stages), (CHANNELS, 224, 224))


VGG11_ARCH = ((1, 64), (1, 128), (2, 256), (2, 512), (2, 512))


def vgg11(seed: int | None = 0) -> BookNet:
    """VGG-11 (d2l-en 8.2, d2l-zh 7.2): five VGG blocks of 3x3 convolutions (padding 1), each ending in a
    2x2 max pooling of stride 2, then AlexNet's classifier on 512x7x7."""
    g = _Graph(seed)
    stages, c_in = [], CHANNELS
    for block, (num_convs, c_out) in enumerate(VGG11_ARCH, 1):
        for index in range(1, num_convs + 1):
            g.conv(f"block{block}_conv{index}", c_in, c_out, 3, 1, 1)
            g.relu(f"block{block}_relu{index}")
            c_in = c_out
        stages.append(("Sequential", g.max_pool(f"block{block}_pool", 2, 2)))
    _dense_head(g, 512 * 7 * 7)
    stages += [("Flatten", "flatten"), ("Linear", "fc1"), ("Linear", "fc2"), ("Linear", "fc3")]
    return BookNet("VGG11", g.network((CHANNELS, 224, 224)), tuple(stages), (CHANNELS, 224, 224))


def nin(seed: int | None = 0) -> BookNet:
    """NiN (d2l-en 8.3, d2l-zh 7.3): NiN blocks (a convolution, two 1x1 convolutions, each with ReLU), max
    poolings, dropout 0.5, a 10-channel NiN block and a global average pooling."""
    g = _Graph(seed)
    stages, c_in = [], CHANNELS
    blocks = [(96, 11, 4, 0), (256, 5, 1, 2), (384, 3, 1, 1), (NUM_CLASSES, 3, 1, 1)]
    for block, (c_out, kernel, stride, padding) in enumerate(blocks, 1):
        if block == 4:
            g.simple("dropout", "dropout", {"rate": 0.5})
        g.conv(f"nin{block}_conv", c_in, c_out, kernel, stride, padding)
        g.relu(f"nin{block}_relu")
        for index in (1, 2):
            g.conv(f"nin{block}_1x1_{index}", c_out, c_out, 1)
            end = g.relu(f"nin{block}_1x1_{index}_relu")
        stages.append(("Sequential", end))
        if block < 4:
            stages.append(("MaxPool2d", g.max_pool(f"pool{block}", 3, 2)))
        c_in = c_out
    stages.append(("AdaptiveAvgPool2d", g.simple("adaptive_avg_pool", "gap", {"output_size": (1, 1)})))
    stages.append(("Flatten", g.simple("flatten", "flatten")))
    return BookNet("NiN", g.network((CHANNELS, 224, 224)), tuple(stages), (CHANNELS, 224, 224))


def _stem(g: _Graph, batch_norm_after: bool) -> str:
    """GoogLeNet's, ResNet's and DenseNet's b1: 7x7 convolution, stride 2, padding 3 (the PyTorch tab;
    'same' in the TensorFlow/JAX tabs), [BatchNorm], ReLU, 3x3 max pooling, stride 2, padding 1."""
    g.conv("b1_conv", CHANNELS, 64, 7, 2, 3)
    if batch_norm_after:
        g.bn("b1_bn", 64)
    g.relu("b1_relu")
    return g.max_pool("b1_pool", 3, 2, 1)


def _inception(g: _Graph, name: str, c_in: int, c1: int, c2: tuple[int, int], c3: tuple[int, int], c4: int) -> int:
    """The Inception block: 1x1 | 1x1, 3x3 | 1x1, 5x5 | 3x3 max pooling, 1x1; paths joined on channels."""
    source = g.last
    g.conv(f"{name}_p1", c_in, c1, 1, 1, 0, source)
    p1 = g.relu(f"{name}_p1_relu")
    g.conv(f"{name}_p2_1", c_in, c2[0], 1, 1, 0, source)
    g.relu(f"{name}_p2_1_relu")
    g.conv(f"{name}_p2_2", c2[0], c2[1], 3, 1, 1)
    p2 = g.relu(f"{name}_p2_2_relu")
    g.conv(f"{name}_p3_1", c_in, c3[0], 1, 1, 0, source)
    g.relu(f"{name}_p3_1_relu")
    g.conv(f"{name}_p3_2", c3[0], c3[1], 5, 1, 2)
    p3 = g.relu(f"{name}_p3_2_relu")
    g.max_pool(f"{name}_p4_pool", 3, 1, 1, source)
    g.conv(f"{name}_p4", c_in, c4, 1)
    p4 = g.relu(f"{name}_p4_relu")
    g.simple("concat", name, None, p1, p2, p3, p4)
    return c1 + c2[1] + c3[1] + c4


# Per stage (b3, b4, b5), each Inception block's (c1, (c2 1x1, c2 3x3), (c3 1x1, c3 5x5), c4).
GOOGLENET_INCEPTIONS = {
    3: [(64, (96, 128), (16, 32), 32), (128, (128, 192), (32, 96), 64)],
    4: [
        (192, (96, 208), (16, 48), 64),
        (160, (112, 224), (24, 64), 64),
        (128, (128, 256), (24, 64), 64),
        (112, (144, 288), (32, 64), 64),
        (256, (160, 320), (32, 128), 128),
    ],
    5: [(256, (160, 320), (32, 128), 128), (384, (192, 384), (48, 128), 128)],
}


def googlenet(seed: int | None = 0) -> BookNet:
    """GoogLeNet (d2l-en 8.4, d2l-zh 7.4): the stem, b2 (1x1 and 3x3 convolutions), nine Inception blocks
    in b3-b5 with 3x3 stride-2 max poolings (padding 1) between, global average pooling, a dense layer."""
    g = _Graph(seed)
    stages = [("Sequential", _stem(g, batch_norm_after=False))]
    g.conv("b2_conv1", 64, 64, 1)
    g.relu("b2_relu1")
    g.conv("b2_conv2", 64, 192, 3, 1, 1)
    g.relu("b2_relu2")
    stages.append(("Sequential", g.max_pool("b2_pool", 3, 2, 1)))
    c = 192
    for block, inceptions in GOOGLENET_INCEPTIONS.items():
        for index, args in enumerate(inceptions, 1):
            c = _inception(g, f"b{block}_inception{index}", c, *args)
        if block < 5:
            stages.append(("Sequential", g.max_pool(f"b{block}_pool", 3, 2, 1)))
    g.simple("adaptive_avg_pool", "b5_pool", {"output_size": (1, 1)})
    stages.append(("Sequential", g.simple("flatten", "b5_flatten")))
    stages.append(("Linear", g.linear("fc", c, NUM_CLASSES)))
    return BookNet("GoogLeNet", g.network((CHANNELS, 96, 96)), tuple(stages), (CHANNELS, 96, 96))


def _residual(g: _Graph, name: str, c_in: int, c_out: int, stride: int) -> str:
    """The book's Residual: 3x3 conv (stride), BN, ReLU, 3x3 conv, BN, plus the input (through a 1x1
    convolution of that stride when the shape changes: ``use_1x1conv``), ReLU."""
    source = g.last
    g.conv(f"{name}_conv1", c_in, c_out, 3, stride, 1)
    g.bn(f"{name}_bn1", c_out)
    g.relu(f"{name}_relu1")
    g.conv(f"{name}_conv2", c_out, c_out, 3, 1, 1)
    main = g.bn(f"{name}_bn2", c_out)
    shortcut = g.conv(f"{name}_conv3", c_in, c_out, 1, stride, 0, source) if stride != 1 or c_in != c_out else source
    g.simple("add", f"{name}_add", None, main, shortcut)
    return g.relu(f"{name}_relu")


RESNET18_ARCH = ((2, 64), (2, 128), (2, 256), (2, 512))


def resnet18(seed: int | None = 0) -> BookNet:
    """ResNet-18 (d2l-en 8.6, d2l-zh 7.6): the stem with BatchNorm, four stages of two Residual blocks (the
    first block of stages 2-4 halves height and width with a 1x1 convolution on the shortcut), then global
    average pooling and a dense layer. The book's cell: 96x96 in d2l-en, 224x224 in d2l-zh."""
    g = _Graph(seed)
    stages = [("Sequential", _stem(g, batch_norm_after=True))]
    c_in = 64
    for block, (num_residuals, c_out) in enumerate(RESNET18_ARCH, 2):
        for index in range(1, num_residuals + 1):
            stride = 2 if index == 1 and block > 2 else 1
            end = _residual(g, f"b{block}_residual{index}", c_in, c_out, stride)
            c_in = c_out
        stages.append(("Sequential", end))
    stages.append(("Sequential", g.head("head", c_in)))
    return BookNet("ResNet18", g.network((CHANNELS, 96, 96)), tuple(stages), (CHANNELS, 96, 96))


DENSENET_ARCH, GROWTH_RATE = (4, 4, 4, 4), 32


def densenet(seed: int | None = 0) -> BookNet:
    """DenseNet (d2l-en 8.7, d2l-zh 7.7): the stem with BatchNorm, four dense blocks of four
    BN-ReLU-3x3 convolutions (growth rate 32, each output concatenated to its input on channels), transition
    blocks (BN, ReLU, 1x1 convolution halving the channels, 2x2 average pooling of stride 2) between them,
    then BN, ReLU, global average pooling and a dense layer. No shape-printing cell in either edition: 96x96,
    the size the book trains it on."""
    g = _Graph(seed)
    stages = [("Sequential", _stem(g, batch_norm_after=True))]
    c = 64
    for block, num_convs in enumerate(DENSENET_ARCH, 1):
        for index in range(1, num_convs + 1):
            name, source = f"dense{block}_conv{index}", g.last
            g.bn(f"{name}_bn", c)
            g.relu(f"{name}_relu")
            g.conv(name, c, GROWTH_RATE, 3, 1, 1)
            g.simple("concat", f"{name}_concat", None, source, name)
            c += GROWTH_RATE
        stages.append(("DenseBlock", g.last))
        if block < len(DENSENET_ARCH):
            g.bn(f"transition{block}_bn", c)
            g.relu(f"transition{block}_relu")
            g.conv(f"transition{block}_conv", c, c // 2, 1)
            c //= 2
            stages.append(("Sequential", g.add(pool("avg_pool2d", 2, 2), f"transition{block}_pool")))
    g.bn("head_bn", c)
    g.relu("head_relu")
    stages.append(("Sequential", g.head("head", c)))
    return BookNet("DenseNet", g.network((CHANNELS, 96, 96)), tuple(stages), (CHANNELS, 96, 96))


# The constructors by the public names (``dc.AlexNet`` ...).
NETWORKS = {
    "AlexNet": alexnet,
    "VGG11": vgg11,
    "NiN": nin,
    "GoogLeNet": googlenet,
    "ResNet18": resnet18,
    "DenseNet": densenet,
}


def residual(c_in: int, c_out: int, stride: int = 1, size: int = 6, seed: int | None = 0) -> Network:
    """The book's ``Residual`` block alone on (c_in, size, size) inputs: ``Residual(3, 3)`` keeps the shape,
    ``Residual(3, 6, use_1x1conv=True, strides=2)`` (the 1x1 shortcut follows from a new shape) halves it."""
    g = _Graph(seed)
    _residual(g, "residual", c_in, c_out, stride)
    return g.network((c_in, size, size))
