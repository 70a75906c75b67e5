"""Every reader reads back everything its own tab's writer writes: a graph with every activation kind (GELU
exact and tanh, SiLU, hard-swish, hard-sigmoid, ...) and the graph kinds, built by each tab's writer, reads
back with the same kinds and arguments and the outputs of the NumPy reference. MXNet has no op for tanh-GELU
or hard-swish, so its writer writes them as expressions; its reader recognises those expressions, whichever
way a Gluon forward writes them, and refuses an expression that is not one of them, naming the node."""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import replace

import numpy as np
import pytest

import d2lconv as dc
from d2lconv import backends
from d2lconv.core.layer import ACTIVATIONS
from d2lconv.core.network import Layer, Network, batch_norm, conv, pool
from d2lconv.porting import seeded_batch

if backends.is_installed("paddle"):
    dc.load_backend("paddle")  # before anything imports tensorflow

CHAIN = [  # the activations applied one after the other, each kind with arguments other than the defaults
    Layer("gelu", {"approximate": "tanh"}),
    Layer("hard_swish"),
    Layer("silu"),
    Layer("gelu", {"approximate": "none"}),
    Layer("elu", {"alpha": 0.7}),
    Layer("leaky_relu", {"negative_slope": 0.2}),
    Layer("tanh"),
]


def _named(layer: Layer, name: str, *inputs: str) -> Layer:
    return replace(layer, name=name, inputs=inputs)


def every_activation(seed: int = 0) -> Network:
    """conv + BatchNorm, the activation chain, a squeeze-excite gate (hard-sigmoid, product), a residual sum,
    a concatenation with a ReLU6/sigmoid branch, dropout, global pooling, a dense layer and softmax."""
    rng = np.random.default_rng(seed)

    def weights(*shape: int) -> np.ndarray:
        return (rng.standard_normal(shape) * 1.5 / math.sqrt(np.prod(shape[1:]))).astype(np.float32)

    stem = conv(3, 6, 3, padding=1, weight=weights(6, 3, 3, 3), bias=rng.normal(0, 0.3, 6).astype(np.float32))
    norm = batch_norm(
        6,
        weight=rng.uniform(0.5, 1.5, 6).astype(np.float32),
        bias=rng.normal(0, 0.3, 6).astype(np.float32),
        running_mean=rng.normal(0, 0.3, 6).astype(np.float32),
        running_var=rng.uniform(0.5, 1.5, 6).astype(np.float32),
    )
    layers = [_named(stem, "stem", "input"), _named(norm, "stem_bn", "stem")]
    for index, layer in enumerate(CHAIN):
        layers.append(_named(layer, f"act{index}", layers[-1].name))
    last = layers[-1].name
    gate = conv(6, 6, 1, weight=weights(6, 6, 1, 1), bias=rng.normal(0, 0.3, 6).astype(np.float32))
    head = conv(6, 6, 1, weight=weights(6, 6, 1, 1), bias=np.zeros(6, np.float32))
    layers += [
        Layer("global_avg_pool", {"keepdims": True}, name="se_pool", inputs=(last,)),
        _named(gate, "se_conv", "se_pool"),
        Layer("hard_sigmoid", {"alpha": 1 / 6, "beta": 0.5}, name="se_gate", inputs=("se_conv",)),
        Layer("mul", name="se", inputs=(last, "se_gate")),
        Layer("add", name="res", inputs=("se", "stem_bn")),
        Layer("relu6", name="b1", inputs=("res",)),
        _named(head, "b2_conv", "res"),
        Layer("sigmoid", name="b2", inputs=("b2_conv",)),
        Layer("concat", name="cat", inputs=("b1", "b2")),
        _named(pool("max_pool2d", 3, 1, 1), "pool", "cat"),
        Layer("relu", name="pool_act", inputs=("pool",)),
        Layer("dropout", {"rate": 0.25}, name="drop", inputs=("pool_act",)),
        Layer("global_avg_pool", {"keepdims": False}, name="gap", inputs=("drop",)),
        Layer(
            "linear",
            {"in_features": 12, "out_features": 5, "bias": True},
            {"weight": weights(5, 12), "bias": rng.normal(0, 0.3, 5).astype(np.float32)},
            name="fc",
            inputs=("gap",),
        ),
        Layer("softmax", {"axis": 1}, name="probs", inputs=("fc",)),
    ]
    return Network((3, 9, 10), layers)


def _close(actual: np.ndarray, expected: np.ndarray) -> None:
    """Within 1e-4 * max(1, max |expected|), the float32 tolerance of a port."""
    assert actual.shape == expected.shape
    assert np.max(np.abs(actual - expected)) <= 1e-4 * max(1.0, float(np.max(np.abs(expected))))


def _kinds(net: Network) -> Counter:
    """The kinds of the nodes; a 1x1 adaptive average pooling counted as the global one keeping dims, which is
    the same op (Paddle writes both as ``AdaptiveAvgPool2D(1)``, and its reader cannot tell them apart)."""
    return Counter(
        "global_avg_pool" if layer.kind == "adaptive_avg_pool" and layer.args["output_size"] == (1, 1) else layer.kind
        for layer in net.layers
    )


def _rounded(value: object) -> object:
    """A number to float32's 6 digits (a reader may hold an argument in float32)."""
    return float(f"{value:.6g}") if isinstance(value, float | np.floating) else value


def _activations(net: Network) -> Counter:
    """The activations with their arguments."""
    return Counter(
        (layer.kind, tuple(sorted((key, _rounded(value)) for key, value in layer.args.items())))
        for layer in net.layers
        if layer.kind in ACTIVATIONS
    )


def test_every_kind_reads_back_as_written(backend, reference) -> None:
    net = every_activation()
    assert {layer.kind for layer in net.layers} >= set(ACTIVATIONS)
    model = backend.build_network(net)
    back = backend.read_network(model, net.input_shape)
    assert _kinds(back) == _kinds(net)
    assert _activations(back) == _activations(net)
    x = seeded_batch(net.input_shape, np.float32)
    expected = reference.build_network(net).forward(x)
    _close(backend.run_network(model, x), expected)
    _close(reference.build_network(back).forward(x), expected)
    _close(dc.port(model, to="numpy", input_shape=net.input_shape).model.forward(x), expected)


# --- MXNet: activations a Gluon forward writes as expressions -------------------------------------------------

ROOT_2_OVER_PI = math.sqrt(2 / math.pi)
WRITTEN = {  # a form -> (legacy mx.nd?, the expression of F and y, the node read)
    "tanh-GELU, this tab's writer's": (
        False,
        lambda F, y: 0.5 * y * (1 + F.np.tanh(ROOT_2_OVER_PI * (y + 0.044715 * y**3))),
        Layer("gelu", {"approximate": "tanh"}),
    ),
    "tanh-GELU, BERT's (constants multiplied out)": (
        False,
        lambda F, y: y * 0.5 * (1.0 + F.np.tanh(0.7978845608 * y * (1 + 0.044715 * y * y))),
        Layer("gelu", {"approximate": "tanh"}),
    ),
    "tanh-GELU, legacy mx.nd": (
        True,
        lambda F, y: 0.5 * y * (1 + F.tanh(ROOT_2_OVER_PI * (y + 0.044715 * F.power(y, 3)))),
        Layer("gelu", {"approximate": "tanh"}),
    ),
    "tanh-GELU, legacy, halved last": (
        True,
        lambda F, y: (F.tanh((y + 0.044715 * F.square(y) * y) * 0.7978845608) + 1) * y / 2,
        Layer("gelu", {"approximate": "tanh"}),
    ),
    "erf-GELU, legacy": (
        True,
        lambda F, y: 0.5 * y * (1 + F.erf(y / math.sqrt(2))),
        Layer("gelu", {"approximate": "none"}),
    ),
    "hard-swish, this tab's writer's": (
        True,
        lambda F, y: y * F.hard_sigmoid(y, alpha=1 / 6, beta=0.5),
        Layer("hard_swish"),
    ),
    "hard-swish, PyTorch's": (False, lambda F, y: y * F.np.clip(y + 3, 0, 6) / 6, Layer("hard_swish")),
    "swish, legacy": (True, lambda F, y: F.sigmoid(y) * y, Layer("silu")),
}
NOT_AN_ACTIVATION = {  # a form with a wrong constant -> (legacy?, the expression, the op the error names)
    "tanh-GELU with 0.05 for 0.044715": (
        False,
        lambda F, y: 0.5 * y * (1 + F.np.tanh(ROOT_2_OVER_PI * (y + 0.05 * y**3))),
        "_npi_multiply_scalar",
    ),
    "tanh-GELU with 0.8 for sqrt(2 / pi), legacy": (
        True,
        lambda F, y: 0.5 * y * (1 + F.tanh(0.8 * (y + 0.044715 * y**3))),
        "_mul_scalar",
    ),
    "hard-swish over 5": (False, lambda F, y: y * F.np.clip(y + 3, 0, 6) / 5, "_npi_add_scalar"),
    "tanh-GELU plus its own tanh (a node inside read again)": (
        False,
        lambda F, y: (lambda t: 0.5 * y * (1 + t) + t)(F.np.tanh(ROOT_2_OVER_PI * (y + 0.044715 * y**3))),
        "_npi_multiply_scalar",
    ),
}


def _gluon_block(legacy: bool, expression):
    """conv -> the expression -> conv, a user's own HybridBlock, with weights large enough that the activation's
    curve matters (|y| up to about 4)."""
    if not backends.is_installed("mxnet"):
        pytest.skip(f"mxnet is not installed here ({backends.install_hint('mxnet')})")
    tab = dc.load_backend("mxnet")
    import mxnet as mx
    from mxnet import gluon

    class Expression(gluon.HybridBlock):
        def __init__(self) -> None:
            super().__init__()
            with self.name_scope():
                self.conv = gluon.nn.Conv2D(4, 3, in_channels=2)
                self.head = gluon.nn.Conv2D(3, 1, in_channels=4)

        def hybrid_forward(self, F, x):
            return self.head(expression(F, self.conv(x)))

    rng = np.random.default_rng(5)
    with mx.util.np_array(not legacy), mx.util.np_shape(not legacy):  # a legacy block is built in legacy mode
        model = Expression()
        model.initialize()
        array = mx.nd.array if legacy else mx.np.array
        model.conv.weight.set_data(array(rng.normal(0, 0.6, (4, 2, 3, 3)).astype(np.float32)))
        model.head.weight.set_data(array(rng.normal(0, 0.5, (3, 4, 1, 1)).astype(np.float32)))
    return tab, model


@pytest.mark.parametrize("form", list(WRITTEN))
def test_gluon_expressions_of_an_activation_read_as_it(form: str, reference) -> None:
    legacy, expression, expected = WRITTEN[form]
    tab, model = _gluon_block(legacy, expression)
    shape = (2, 7, 8)
    back = tab.read_network(model, shape)
    assert [(layer.kind, layer.args) for layer in back.layers] == [
        ("conv2d", back.layers[0].args),
        (expected.kind, expected.args),
        ("conv2d", back.layers[2].args),
    ]
    x = seeded_batch(shape, np.float32)
    y = tab.run_network(model, x)
    _close(reference.build_network(back).forward(x), y)
    _close(dc.port(model, to="numpy", input_shape=shape).model.forward(x), y)


@pytest.mark.parametrize("form", list(NOT_AN_ACTIVATION))
def test_gluon_expression_that_is_no_activation_is_refused_naming_the_node(form: str) -> None:
    legacy, expression, op = NOT_AN_ACTIVATION[form]
    tab, model = _gluon_block(legacy, expression)
    with pytest.raises(ValueError, match=rf"node '\w+' \('{op}'\) is not supported"):
        tab.read_network(model, (2, 7, 8))
