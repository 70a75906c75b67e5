"""dc.port on hypothesis-drawn small graphs, in every one of the 30 directions between the six tabs.

A drawn graph has the graph kinds (BatchNorm, grouped, depthwise and dilated convolutions, sums,
squeeze-excite products, concatenations, every activation, dropout) in stages joined by stride-2
convolutions, poolings, stride-2 transposed convolutions and asymmetric zero paddings, with an optional
dense head. Each is built by the source tab's writer, ported to the target (the source's
reader, the target's writer), compared with NumPy's run of the description, then ported back to the
source (the target's reader, the source's writer) and compared again: NumPy -> each tab -> NumPy, and
every direction that does not go through NumPy. Each direction draws its own few graphs from a fixed seed
(the same on every run), float32 ones compared to 1e-4 and float64 ones to 1e-9, each times
max(1, max |reference|). A layer one of the two tabs cannot express exactly (``port`` refuses it with a
``ValueError``, as the contract says) makes hypothesis draw another graph.

Every tab keeps float64 (``port`` writes float64 layers), but some activations of TensorFlow, MXNet and
Paddle, and Paddle's BatchNorm, compute with a float32 constant (an op attribute such as leaky ReLU's slope,
BatchNorm's epsilon) and are off by 1e-10 to 4e-8 relative in float64: those kinds are left out of that
tab's float64 graphs, and each is an expected failure below, on the smallest network.
"""

from __future__ import annotations

import itertools
from dataclasses import replace

import numpy as np
import pytest
from hypothesis import HealthCheck, given, reject, seed, settings
from hypothesis import strategies as st

import d2lconv as dc
from d2lconv import backends
from d2lconv.core.network import INPUT, Layer, Network, batch_norm, conv, pool

if backends.is_installed("paddle"):
    dc.load_backend("paddle")  # before anything imports tensorflow

KINDS = ["conv", "depthwise", "batch_norm", "relu6", "leaky_relu", "elu", "gelu", "silu", "hard_swish"]
KINDS += ["hard_sigmoid", "softmax", "add", "mul", "concat", "dropout", "relu", "sigmoid", "tanh"]
FLOAT32_CONSTANTS = {  # kind -> the tabs whose op for it takes a constant as a float32 attribute (leaky ReLU's slope)
    kind: tabs
    for kind in KINDS
    if (tabs := tuple(name for name, facts in backends.FACTS.items() if kind in facts.float32_constants))
}
PAIRS = list(itertools.permutations(backends.BACKENDS, 2))
EXAMPLES = {"float32": 4, "float64": 3}  # per direction (210 graphs in all)


@st.composite
def graphs(draw: st.DrawFn, dtype: str, kinds: list[str]) -> Network:
    """Small graphs of ``kinds`` in ``dtype``, sizes odd and even, in stages: each node reads nodes of its stage
    of fitting shapes; a layer that changes the size (``resizings``) reads the concatenation of the stage's
    loose ends and starts the next; the last stage's loose ends are concatenated
    into the output, or into a dense head (after global pooling or a flatten), so that every node counts."""
    rng = np.random.default_rng(draw(st.integers(0, 100)))
    channels, size = draw(st.sampled_from([2, 4])), draw(st.integers(3, 7))
    shapes: dict[str, tuple[int, ...]] = {INPUT: (channels, size, size)}
    stage, layers = [INPUT], []

    def add(layer: Layer, name: str, inputs: tuple[str, ...], readable: bool = True) -> str:
        layers.append(Layer(layer.kind, layer.args, layer.weights, name, inputs))
        shapes[name] = Network(shapes[INPUT], layers).node_shapes()[name]
        stage.extend([name] if readable else [])
        return name

    def joined(name: str) -> str:
        """The stage's loose ends, concatenated when there are several."""
        read = {item for layer in layers for item in layer.inputs}
        loose = [item for item in stage if item not in read] or [stage[-1]]
        return loose[0] if len(loose) == 1 else add(Layer("concat"), name, tuple(loose))

    for index in range(draw(st.integers(2, 7))):
        name = f"n{index}"
        kind = draw(st.sampled_from([*kinds, "resize", "resize"] if 3 <= shapes[stage[-1]][1] <= 9 else kinds))
        if kind == "resize":
            source = joined(f"{name}_join")
            stage.clear()
            add(draw(resizings(shapes[source][0], rng)), name, (source,))
            continue
        source = draw(st.sampled_from(stage))
        c = shapes[source][0]
        if kind in ("conv", "depthwise"):
            if kind == "conv":
                out, groups = draw(st.sampled_from([2, 4])), draw(st.sampled_from([1, 2]))
            else:
                out, groups = 2 * c, c
            k, dilation = draw(st.sampled_from([1, 3])), draw(st.sampled_from([1, 2]))
            weight, bias = rng.standard_normal((out, c // groups, k, k)), rng.standard_normal(out)
            options = {"dilation": dilation, "groups": groups, "bias": bias if draw(st.booleans()) else None}
            add(conv(c, out, k, padding=dilation * (k // 2), weight=weight, **options), name, (source,))
        elif kind == "batch_norm":
            layer = batch_norm(
                c,
                eps=draw(st.sampled_from([1e-5, 1e-3])),
                weight=rng.uniform(0.5, 1.5, c),
                bias=rng.normal(0, 0.2, c),
                running_mean=rng.normal(0, 0.5, c),
                running_var=rng.uniform(0.5, 2, c),
            )
            add(layer, name, (source,))
        elif kind in ("add", "mul", "concat"):
            other = draw(st.sampled_from([item for item in stage if shapes[item][0] == c or kind == "concat"]))
            if kind == "mul" and draw(st.booleans()):  # a squeeze-excite gate: (C, 1, 1) * (C, H, W)
                other = add(Layer("global_avg_pool", {"keepdims": True}), f"{name}_gate", (other,), readable=False)
            add(Layer(kind), name, (source, other))
        else:
            args = {
                "leaky_relu": {"negative_slope": 0.1},
                "elu": {"alpha": 0.7},
                "gelu": {"approximate": draw(st.sampled_from(["none", "tanh"]))},
                "hard_sigmoid": {"alpha": 1 / 6, "beta": 0.5},
                "softmax": {"axis": 1},
                "dropout": {"rate": 0.3},
            }.get(kind, {})
            add(Layer(kind, args), name, (source,))
    last = joined("out")
    head = draw(st.sampled_from(["none", "global_avg_pool", "flatten"]))
    if head != "none":  # a dense layer after global pooling, or after a flatten (its rows permuted under NHWC)
        flat = add(Layer(head, {"keepdims": False} if head == "global_avg_pool" else {}), "flat", (last,))
        features = int(np.prod(shapes[flat]))
        weights = {"weight": rng.standard_normal((3, features)) / np.sqrt(features), "bias": rng.standard_normal(3)}
        add(Layer("linear", {"in_features": features, "out_features": 3, "bias": True}, weights), "dense", (flat,))
    return Network((channels, size, size), layers).astype(dtype)


@st.composite
def resizings(draw: st.DrawFn, c: int, rng: np.random.Generator) -> Layer:
    """A layer that changes the spatial size: a stride-2 convolution with PyTorch's symmetric padding (not
    Keras's 'same' on even sizes), a max or average pooling (padded or not, ceil mode or not), a stride-2
    transposed convolution, or an asymmetric zero padding."""
    kind, k = draw(st.sampled_from(["conv2d", "pool", "conv_transpose2d", "zero_pad2d"])), draw(st.sampled_from([2, 3]))
    if kind == "zero_pad2d":
        return Layer(kind, {"padding": tuple(draw(st.integers(0, 1)) for _ in range(4))})
    if kind == "pool":
        kind = draw(st.sampled_from(["max_pool2d", "avg_pool2d"]))
        padding, ceil_mode = draw(st.integers(0, k // 2)), draw(st.booleans())
        options = {"count_include_pad": draw(st.booleans())} if kind == "avg_pool2d" else {}
        return pool(kind, k, stride=2, padding=padding, ceil_mode=ceil_mode, **options)
    weight, bias = rng.standard_normal((c, c, k, k)), rng.standard_normal(c)  # OIHW, or IOHW transposed: C -> C
    layer = conv(c, c, k, stride=2, padding=k // 2, weight=weight, bias=bias)
    if kind == "conv2d":
        return layer
    return Layer(kind, {**layer.args, "output_padding": (draw(st.integers(0, 1)),) * 2}, layer.weights)


def installed(*names: str) -> None:
    for name in names:
        if not backends.is_installed(name):
            pytest.skip(f"{name} is not installed here ({backends.install_hint(name)})")


def agree(expected: np.ndarray, actual: np.ndarray) -> float:
    """max |expected - actual|, asserted within 1e-4 (float32) or 1e-9 (float64) x max(1, max |expected|)."""
    assert actual.shape == expected.shape and actual.dtype == expected.dtype, (actual.shape, actual.dtype)
    tolerance = 1e-9 if expected.dtype == np.float64 else 1e-4
    diff = float(np.max(np.abs(expected.astype(np.float64) - actual)))
    assert diff <= tolerance * max(1.0, float(np.max(np.abs(expected)))), diff
    return diff


@pytest.mark.cross  # two frameworks in one process
@pytest.mark.parametrize("dtype", sorted(EXAMPLES))
@pytest.mark.parametrize(("source", "target"), PAIRS)
def test_drawn_graphs_port_there_and_back(source, target, dtype):
    installed(source, target)
    kinds = [
        kind for kind in KINDS if dtype == "float32" or not {source, target} & set(FLOAT32_CONSTANTS.get(kind, ()))
    ]
    numpy = dc.load_backend("numpy")

    @seed(PAIRS.index((source, target)))  # each direction its own graphs, the same on every run
    @settings(max_examples=EXAMPLES[dtype], deadline=None, database=None, suppress_health_check=list(HealthCheck))
    @given(net=graphs(dtype, kinds))
    def there_and_back(net: Network) -> None:
        x = np.random.default_rng(1).standard_normal((3, *net.input_shape)).astype(net.dtype)
        expected = numpy.run_network(numpy.build_network(net), x)
        try:
            there = dc.port(dc.load_backend(source).build_network(net), to=target, input_shape=net.input_shape)
        except ValueError as error:  # a layer one of the two cannot express exactly is refused, by contract
            if "cannot express" not in str(error):
                raise
            reject()
        agree(expected, dc.load_backend(target).run_network(there.model, x))
        back = dc.port(there.model, to=source, input_shape=net.input_shape)
        agree(expected, dc.load_backend(source).run_network(back.model, x))

    there_and_back()


@pytest.mark.parametrize(
    ("kind", "tab"),
    [
        pytest.param(
            kind,
            tab,
            marks=[pytest.mark.xfail(strict=True, reason=f"{tab}'s {kind} has a float32 constant")]
            if tab in tabs
            else [],
        )
        for kind, tabs in FLOAT32_CONSTANTS.items()
        for tab in backends.BACKENDS
        if tab != "numpy"
    ],
)
def test_float64_layer_agrees_to_1e_12(kind, tab):
    installed(tab)
    net = _float64_network(kind)
    x = 4 * np.random.default_rng(1).standard_normal((3, 2, 5, 5))
    numpy, native = dc.load_backend("numpy"), dc.load_backend(tab)
    expected, actual = numpy.run_network(numpy.build_network(net), x), native.run_network(native.build_network(net), x)
    assert actual.dtype == np.float64
    assert np.max(np.abs(expected - actual)) <= 1e-12 * np.max(np.abs(expected))  # float64 throughout: ~1e-16


def _float64_network(kind: str) -> Network:
    """A float64 1x1 identity convolution, then one node of ``kind`` with a constant float32 cannot hold."""
    special = {
        "leaky_relu": Layer("leaky_relu", {"negative_slope": 0.1}),
        "elu": Layer("elu", {"alpha": 0.7}),
        "gelu": Layer("gelu", {"approximate": "none"}),
        "hard_sigmoid": Layer("hard_sigmoid", {"alpha": 1 / 6, "beta": 0.5}),
        "batch_norm": batch_norm(2, eps=1e-3, running_var=np.array([0.01, 0.02]), dtype=np.float64),  # a small variance
    }
    layer = special[kind] if kind in special else Layer(kind)
    identity = conv(2, 2, 1, weight=np.eye(2).reshape(2, 2, 1, 1))  # float64 weights: a float64 network
    return Network((2, 5, 5), [identity, layer])


@pytest.mark.cross  # two frameworks in one process
@pytest.mark.parametrize(
    ("kind", "tab"), [(kind, tab) for kind, tabs in FLOAT32_CONSTANTS.items() for tab in tabs], ids=str
)
def test_a_float32_constant_is_a_step_of_a_float64_port_not_an_error(kind, tab):
    """Where a framework's op rounds its constant to float32, a float64 port says so and agrees to 1e-6."""
    installed(tab)
    net = _float64_network(kind)
    x = 4 * np.random.default_rng(1).standard_normal((3, 2, 5, 5))
    numpy = dc.load_backend("numpy")
    expected = numpy.run_network(numpy.build_network(net), x)
    there = dc.port(numpy.build_network(net), to=tab)
    assert any("as float32" in step and kind in step for step in there.steps)
    actual = dc.load_backend(tab).run_network(there.model, x)
    assert actual.dtype == np.float64
    assert 1e-13 < np.max(np.abs(expected - actual)) <= 1e-6 * np.max(np.abs(expected))  # the rounding shows
    back = dc.port(there.model, to="numpy")
    assert np.max(np.abs(expected - back.model.forward(x))) <= 1e-6 * np.max(np.abs(expected))


def test_a_node_no_output_depends_on_is_left_out(backend, reference):
    weights = np.random.default_rng(0).standard_normal((2, 2, 2, 1, 1)).astype(np.float32)
    unused, used = (conv(2, 2, 1, weight=weight) for weight in weights)
    net = Network((2, 5, 5), [replace(unused, name="unused"), replace(used, name="out", inputs=(INPUT,))])
    model = backend.build_network(net)  # a functional Keras model cannot hold the unused node
    assert [layer.kind for layer in backend.read_network(model, net.input_shape).layers] == ["conv2d"]
    x = np.random.default_rng(1).standard_normal((3, 2, 5, 5)).astype(np.float32)
    agree(reference.run_network(reference.build_network(net), x), backend.run_network(model, x))


def test_a_graph_without_weights(backend, reference):
    net = Network(
        (2, 5, 5),
        [
            Layer("relu6", name="clipped"),
            Layer("silu", name="swished", inputs=(INPUT,)),
            Layer("add", name="out", inputs=("clipped", "swished")),
        ],
    )
    model = backend.build_network(net)  # MXNet's class then has no child block
    assert [layer.kind for layer in backend.read_network(model, net.input_shape).layers] == ["relu6", "silu", "add"]
    x = np.random.default_rng(1).standard_normal((3, 2, 5, 5)).astype(np.float32)
    agree(reference.run_network(reference.build_network(net), x), backend.run_network(model, x))


AFTER_ELEMENTWISE = {  # an activation MXNet writes as an expression, on the output of an elementwise op
    "hard_sigmoid": Layer("hard_sigmoid", {"alpha": 1 / 6, "beta": 0.5}),
    "add": Layer("add", inputs=("input", "input")),
    "relu6": Layer("relu6"),
    "mul": Layer("mul", inputs=("input", "input")),
}


@pytest.mark.parametrize("activation", ["gelu", "hard_swish", "silu"])
@pytest.mark.parametrize("before", sorted(AFTER_ELEMENTWISE))
def test_mxnet_reads_an_expression_whose_input_is_an_elementwise_op(before, activation):
    installed("mxnet")
    first = replace(AFTER_ELEMENTWISE[before], name="first")
    args = {"approximate": "tanh"} if activation == "gelu" else {}
    net = Network((2, 4, 4), [first, Layer(activation, args, name="second", inputs=("first",))])
    mxnet, numpy = dc.load_backend("mxnet"), dc.load_backend("numpy")
    read = mxnet.read_network(mxnet.build_network(net), net.input_shape)
    assert [(layer.kind, layer.args) for layer in read.layers] == [(first.kind, first.args), (activation, args)]
    x = 3 * np.random.default_rng(1).standard_normal((3, 2, 4, 4)).astype(np.float32)
    agree(numpy.run_network(numpy.build_network(net), x), numpy.run_network(numpy.build_network(read), x))
