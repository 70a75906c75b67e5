"""Three real-network shapes as framework-neutral, seeded descriptions, for ``d2lconv port --net`` and parity.

``resnet``: a residual network with a stride-2 projection shortcut; ``mobilenet``: an inverted
residual block (depthwise convolution, ReLU6, squeeze-and-excitation, hard-swish, dropout);
``inception``: a four-branch block joined by concatenation, then ceil-mode pooling. Odd spatial
sizes (so that a stride-2 'same' shows), and BatchNorm statistics drawn at random (so that a
wrong epsilon, momentum or a skipped BatchNorm shows).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from ..core.network import INPUT, Layer, Network, batch_norm, conv, pool


class _Builder:
    """Appends named nodes; each call returns the new node's name."""

    def __init__(self, seed: int) -> None:
        self.rng = np.random.default_rng(seed)
        self.layers: list[Layer] = []

    def add(self, name: str, layer: Layer, *inputs: str) -> str:
        self.layers.append(Layer(layer.kind, layer.args, layer.weights, name, tuple(inputs)))
        return name

    def conv(self, name: str, source: str, c_in: int, c_out: int, k: int, bias: bool = False, **options: Any) -> str:
        groups = options.get("groups", 1)
        bound = 1 / np.sqrt(c_in // groups * k * k)
        weight = self.rng.uniform(-bound, bound, (c_out, c_in // groups, k, k)).astype(np.float32)
        b = self.rng.uniform(-bound, bound, c_out).astype(np.float32) if bias else None
        return self.add(name, conv(c_in, c_out, k, weight=weight, bias=b, **options), source)

    def bn(self, name: str, source: str, channels: int, eps: float = 1e-5) -> str:
        r = self.rng
        layer = batch_norm(
            channels,
            eps,
            0.1,
            weight=r.uniform(0.5, 1.5, channels).astype(np.float32),
            bias=r.normal(0, 0.2, channels).astype(np.float32),
            running_mean=r.normal(0, 0.5, channels).astype(np.float32),
            running_var=r.uniform(0.5, 2.0, channels).astype(np.float32),
        )
        return self.add(name, layer, source)

    def act(self, name: str, source: str, kind: str, **args: Any) -> str:
        return self.add(name, Layer(kind, args), source)

    def linear(self, name: str, source: str, n_in: int, n_out: int) -> str:
        bound = 1 / np.sqrt(n_in)
        weights = {
            "weight": self.rng.uniform(-bound, bound, (n_out, n_in)).astype(np.float32),
            "bias": self.rng.uniform(-bound, bound, n_out).astype(np.float32),
        }
        return self.add(
            name, Layer("linear", {"in_features": n_in, "out_features": n_out, "bias": True}, weights), source
        )


def resnet_network(seed: int = 0) -> Network:
    """Stem, a stride-2 block with a projection shortcut, an identity block, global pooling, dense; 3x15x15."""
    b = _Builder(seed)
    x = b.act("stem_relu", b.bn("stem_bn", b.conv("stem_conv", INPUT, 3, 8, 3, padding=1), 8), "relu")
    y = b.act("b1_relu1", b.bn("b1_bn1", b.conv("b1_conv1", x, 8, 16, 3, stride=2, padding=1), 16), "relu")
    y = b.bn("b1_bn2", b.conv("b1_conv2", y, 16, 16, 3, padding=1), 16)
    shortcut = b.bn("b1_down_bn", b.conv("b1_down", x, 8, 16, 1, stride=2), 16)
    x = b.act("b1_out", b.add("b1_add", Layer("add"), y, shortcut), "relu")
    y = b.act("b2_relu1", b.bn("b2_bn1", b.conv("b2_conv1", x, 16, 16, 3, padding=1), 16), "relu")
    y = b.bn("b2_bn2", b.conv("b2_conv2", y, 16, 16, 3, padding=1), 16, eps=1e-3)
    x = b.act("b2_out", b.add("b2_add", Layer("add"), y, x), "relu")
    x = b.add("pool", Layer("global_avg_pool", {"keepdims": False}), x)
    b.linear("fc", x, 16, 10)
    return Network((3, 15, 15), b.layers)


def mobilenet_network(seed: int = 0) -> Network:
    """A MobileNetV3-style stem and inverted residual block with squeeze-and-excitation; 3x17x17."""
    b = _Builder(seed)
    x = b.act("stem_act", b.bn("stem_bn", b.conv("stem_conv", INPUT, 3, 8, 3, stride=2, padding=1), 8), "hard_swish")
    y = b.act("expand_act", b.bn("expand_bn", b.conv("expand", x, 8, 24, 1), 24), "relu6")
    y = b.act("dw_act", b.bn("dw_bn", b.conv("dw", y, 24, 24, 3, padding=1, groups=24), 24, eps=1e-3), "relu6")
    gate = b.add("se_pool", Layer("global_avg_pool", {"keepdims": True}), y)
    gate = b.act("se_relu", b.conv("se_reduce", gate, 24, 6, 1, bias=True), "relu")
    gate = b.act("se_gate", b.conv("se_expand", gate, 6, 24, 1, bias=True), "hard_sigmoid", alpha=1 / 6, beta=0.5)
    y = b.add("se_scale", Layer("mul"), y, gate)
    y = b.bn("project_bn", b.conv("project", y, 24, 8, 1), 8)
    x = b.add("residual", Layer("add"), x, y)
    x = b.add("pool", Layer("adaptive_avg_pool", {"output_size": (1, 1)}), x)
    x = b.add("flatten", Layer("flatten"), x)
    x = b.add("dropout", Layer("dropout", {"rate": 0.2}), x)
    b.linear("fc", x, 8, 10)
    return Network((3, 17, 17), b.layers)


def inception_network(seed: int = 0) -> Network:
    """A stem, a four-branch Inception block joined on the channels, ceil-mode max pooling; 3x15x15."""
    b = _Builder(seed)
    x = b.act("stem_relu", b.bn("stem_bn", b.conv("stem_conv", INPUT, 3, 8, 3, padding=1), 8), "relu")
    p1 = b.act("p1_relu", b.conv("p1", x, 8, 4, 1, bias=True), "relu")
    p2 = b.act("p2_relu1", b.conv("p2_reduce", x, 8, 4, 1, bias=True), "relu")
    p2 = b.act("p2_relu2", b.conv("p2", p2, 4, 6, 3, bias=True, padding=1), "relu")
    p3 = b.act("p3_relu1", b.conv("p3_reduce", x, 8, 2, 1, bias=True), "relu")
    p3 = b.act("p3_relu2", b.conv("p3", p3, 2, 4, 5, bias=True, padding=2), "relu")
    p4 = b.add("p4_pool", pool("max_pool2d", 3, stride=1, padding=1), x)
    p4 = b.act("p4_relu", b.conv("p4", p4, 8, 4, 1, bias=True), "relu")
    x = b.add("concat", Layer("concat"), p1, p2, p3, p4)
    x = b.add("pool", pool("max_pool2d", 3, stride=2, ceil_mode=True), x)
    x = b.add("avg", pool("avg_pool2d", 3, stride=2, ceil_mode=True, count_include_pad=False), x)
    x = b.add("gap", Layer("global_avg_pool", {"keepdims": False}), x)
    b.linear("fc", x, 18, 10)
    return Network((3, 15, 15), b.layers)


PORTING_NETWORKS: dict[str, Callable[[int], Network]] = {
    "resnet": resnet_network,
    "mobilenet": mobilenet_network,
    "inception": inception_network,
}
