"""The modern CNNs: the book's printed shapes from one description, the same function on every backend.

Shapes: the book's own output (d2l-en's shape-printing cells, and d2l-zh's where it prints another input;
DenseNet, which neither prints, on 96x96 and 224x224 from its arithmetic: 64 + 4 * 32 channels a block, halved between),
computed neutrally with ``Network.node_shapes`` at the book's input (no weights, no forward: VGG-11 alone
has 129 million weights) and, on each backend, from ``dc.layer_summary`` of the built model. Forwards
(batch 1): NiN on 67x67 (its smallest input), GoogLeNet, ResNet-18 and DenseNet on 32x32, every backend
against NumPy; AlexNet and VGG-11 only work on 224x224 (their dense layers fix the input), so their
forward on every backend is behind ``slow``.
"""

from __future__ import annotations

import numpy as np
import pytest

import d2lconv as dc
from d2lconv.book import modern_nets
from d2lconv.core.network import Layer, Network, batch_norm, conv, pool

# The book's printed shapes, block by block (batch dimension left out), d2l-en's input.
BOOK_SHAPES = {
    "AlexNet": [(96, 54, 54), (96, 26, 26), (256, 26, 26), (256, 12, 12), (384, 12, 12), (384, 12, 12)]
    + [(256, 12, 12), (256, 5, 5), (6400,), (4096,), (4096,), (10,)],
    "VGG11": [(64, 112, 112), (128, 56, 56), (256, 28, 28), (512, 14, 14), (512, 7, 7), (25088,), (4096,)]
    + [(4096,), (10,)],
    "NiN": [(96, 54, 54), (96, 26, 26), (256, 26, 26), (256, 12, 12), (384, 12, 12), (384, 5, 5), (10, 5, 5)]
    + [(10, 1, 1), (10,)],
    "GoogLeNet": [(64, 24, 24), (192, 12, 12), (480, 6, 6), (832, 3, 3), (1024,), (10,)],
    "ResNet18": [(64, 24, 24), (64, 24, 24), (128, 12, 12), (256, 6, 6), (512, 3, 3), (10,)],
    "DenseNet": [(64, 24, 24), (192, 24, 24), (96, 12, 12), (224, 12, 12), (112, 6, 6), (240, 6, 6), (120, 3, 3)]
    + [(248, 3, 3), (10,)],
}
BOOK_INPUT = {"AlexNet": 224, "VGG11": 224, "NiN": 224, "GoogLeNet": 96, "ResNet18": 96, "DenseNet": 96}
# d2l-zh prints ResNet-18 on 224x224; DenseNet's shapes, printed by neither edition, at that size too.
ZH_SHAPES = {
    "ResNet18": [(64, 56, 56), (64, 56, 56), (128, 28, 28), (256, 14, 14), (512, 7, 7), (10,)],
    "DenseNet": [(64, 56, 56), (192, 56, 56), (96, 28, 28), (224, 28, 28), (112, 14, 14), (240, 14, 14)]
    + [(120, 7, 7), (248, 7, 7), (10,)],
}
SMALL = {"NiN": 67, "GoogLeNet": 32, "ResNet18": 32, "DenseNet": 32}
BIG = ("AlexNet", "VGG11")


def _shapes(summary):
    return [shape for _, shape in summary]


def _builds_graphs(tab) -> bool:
    """Whether the tab's writer builds every kind the descriptions use (its graph writer has landed)."""
    probe = Network(
        (1, 4, 4),
        [
            conv(1, 2, 3, 1, 1, weight=np.ones((2, 1, 3, 3), np.float32), bias=np.zeros(2, np.float32)),
            batch_norm(2, name="bn"),
            Layer("relu", name="relu"),
            pool("max_pool2d", 3, 1, 1),
            Layer("add", name="add", inputs=("relu", "max_pool2d_3")),
            Layer("concat", name="concat", inputs=("add", "bn")),
            pool("avg_pool2d", 2, 2),
            Layer("dropout", {"rate": 0.5}),
            Layer("adaptive_avg_pool", {"output_size": (1, 1)}),
            Layer("flatten"),
        ],
    )
    try:
        tab.build_network(probe)
    except (ValueError, TypeError, KeyError, NotImplementedError, AttributeError):
        return False
    return True


def _need_graph_writer(tab) -> None:
    if not _builds_graphs(tab):
        pytest.skip(f"the {tab.NAME} tab's graph writer (add, concat, batch_norm, dropout, ...) is not here yet")


# --- the descriptions, neutrally -----------------------------------------------------------------------


@pytest.mark.parametrize("name", list(BOOK_SHAPES))
def test_description_prints_the_books_shapes(name):
    book_net = modern_nets.NETWORKS[name](None)
    assert book_net.book_input == (1, BOOK_INPUT[name], BOOK_INPUT[name])
    assert _shapes(book_net.summary()) == BOOK_SHAPES[name]
    assert book_net.network.node_shapes()[book_net.network.outputs[0]] == (10,)


@pytest.mark.parametrize("name", list(ZH_SHAPES))
def test_description_prints_d2l_zh_shapes_on_224(name):
    assert _shapes(modern_nets.NETWORKS[name](None).summary((1, 1, 224, 224))) == ZH_SHAPES[name]


@pytest.mark.parametrize("name", ["NiN", "GoogLeNet", "ResNet18", "DenseNet"])
def test_seeded_weights_are_xavier_uniform_and_reproducible(name):
    first, again, other = (modern_nets.NETWORKS[name](seed).network for seed in (0, 0, 1))
    convs = [layer for layer in first.layers if layer.kind == "conv2d"]
    for layer, twin in zip(first.layers, again.layers, strict=True):
        for key, array in layer.weights.items():
            np.testing.assert_array_equal(array, twin.weights[key])
    weight = convs[-1].weights["weight"]
    out, inp, kh, kw = weight.shape
    bound = np.sqrt(6 / ((inp + out) * kh * kw))
    assert weight.dtype == np.float32 and np.abs(weight).max() <= bound
    assert abs(weight.std() - bound / np.sqrt(3)) < 0.05 * bound  # the uniform's standard deviation
    assert not np.array_equal(weight, [layer for layer in other.layers if layer.kind == "conv2d"][-1].weights["weight"])
    assert all(not layer.weights["bias"].any() for layer in convs)


def test_bad_input_shape_and_seed_are_named():
    book_net = modern_nets.resnet18(None)
    with pytest.raises(ValueError, match="input_shape of ResNet18 must be"):
        book_net.summary((3, 96, 96))
    with pytest.raises(TypeError, match="input_shape must be a tuple"):
        book_net.summary("96")
    with pytest.raises(ValueError, match="seed must be a non-negative int"):
        dc.ResNet18(seed=-1)


def test_lenet_summary_refuses_an_input_shape():
    with dc.use_backend("numpy"), pytest.raises(ValueError, match="input_shape is for the modern CNNs"):
        dc.layer_summary(dc.LeNet(), (1, 28, 28))


# --- on every backend ------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", list(SMALL))
def test_network_prints_the_books_shapes_and_computes_numpys_function(backend, reference, name):
    _need_graph_writer(backend)
    _need_graph_writer(reference)
    assert _shapes(dc.layer_summary(getattr(dc, name)(seed=3))) == BOOK_SHAPES[name]
    # Keras fixes a functional model's input size: the forward's model is described on the small input.
    small = modern_nets.at_input(modern_nets.NETWORKS[name](3).network, (1, SMALL[name], SMALL[name]))
    x = np.random.default_rng(7).standard_normal((1, 1, SMALL[name], SMALL[name])).astype(np.float32)
    y = backend.run_network(backend.build_network(small), x)
    expected = reference.run_network(reference.build_network(small), x)
    assert y.shape == (1, 10)
    assert np.abs(y - expected).max() <= 1e-4 * max(1.0, np.abs(expected).max())


@pytest.mark.slow
@pytest.mark.parametrize("name", BIG)
def test_big_network_on_the_books_input_computes_numpys_function(backend, reference, name):
    _need_graph_writer(backend)
    _need_graph_writer(reference)
    model = getattr(dc, name)(seed=3)
    assert _shapes(dc.layer_summary(model)) == BOOK_SHAPES[name]
    x = np.random.default_rng(7).standard_normal((1, 1, 224, 224)).astype(np.float32)
    y = backend.run_network(model, x)
    expected = reference.run_network(reference.build_network(modern_nets.NETWORKS[name](3).network), x)
    assert y.shape == (1, 10)
    assert np.abs(y - expected).max() <= 1e-4 * max(1.0, np.abs(expected).max())
