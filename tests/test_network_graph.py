"""The framework-neutral graph description (d2lconv.core.network) and its framework-independent rules."""

import numpy as np
import pytest

from d2lconv.backends import FACTS
from d2lconv.core.conventions import batch_norm_steps, momentum_kept, momentum_new_batch, unbiased_gap
from d2lconv.core.network import INPUT, Layer, Network, batch_norm, conv, dense_after_flatten, pool
from d2lconv.core.plan import plan


def residual() -> Network:
    """conv-bn-relu beside a stride-2 projection shortcut, their sum, global pooling, dense."""
    w = np.random.default_rng(0).standard_normal
    shortcut = conv(3, 4, 1, stride=2, weight=w((4, 3, 1, 1)))
    return Network(
        (3, 9, 9),
        [
            conv(3, 4, 3, stride=2, padding=1, weight=w((4, 3, 3, 3)), bias=w(4)),
            batch_norm(4, name="bn"),
            Layer("relu", name="act"),
            Layer("conv2d", shortcut.args, shortcut.weights, name="shortcut", inputs=(INPUT,)),
            Layer("add", name="sum", inputs=("act", "shortcut")),
            Layer("global_avg_pool", {"keepdims": False}, name="gap"),
            Layer("linear", {"in_features": 4, "out_features": 2, "bias": False}, {"weight": w((2, 4))}),
        ],
    )


def test_a_list_of_layers_is_a_sequential_network_with_default_names():
    net = Network((1, 8, 8), [conv(1, 2, 3), Layer("relu"), pool("max_pool2d", 2)])
    assert [layer.name for layer in net.layers] == ["conv2d_0", "relu_1", "max_pool2d_2"]
    assert [layer.inputs for layer in net.layers] == [(INPUT,), ("conv2d_0",), ("relu_1",)]
    assert net.outputs == ("max_pool2d_2",) and net.is_sequential
    assert net.shapes() == [(1, 8, 8), (2, 6, 6), (2, 6, 6), (2, 3, 3)]


def test_graph_shapes_readers_and_order():
    net = residual()
    assert not net.is_sequential
    shapes = net.node_shapes()
    assert shapes["bn"] == (4, 5, 5) and shapes["shortcut"] == (4, 5, 5) and shapes["sum"] == (4, 5, 5)
    assert shapes["gap"] == (4,) and net.shapes()[-1] == (2,)
    assert net.consumers()[INPUT] == ["conv2d_0", "shortcut"]
    assert dense_after_flatten(net) == {}  # global pooling: no flatten permutation


@pytest.mark.parametrize(
    ("layers", "message"),
    [
        ([Layer("relu", name="a"), Layer("relu", name="a")], "'a' is used twice"),
        ([Layer("relu", inputs=("later",)), Layer("relu", name="later")], "not earlier nodes"),
        ([Layer("add", inputs=(INPUT,))], "needs two or more inputs"),
        ([Layer("relu", name="x", inputs=(INPUT, INPUT))], "needs one input"),
        ([Layer("relu", name="not valid")], "not a Python identifier"),
    ],
)
def test_malformed_graphs_are_value_errors_naming_the_node(layers, message):
    with pytest.raises(ValueError, match=message):
        Network((2, 4, 4), layers)


def test_new_kinds_shapes_and_argument_checks():
    gate = [
        Layer("global_avg_pool", {"keepdims": True}, name="squeeze"),
        Layer("hard_sigmoid", {"alpha": 1 / 6, "beta": 0.5}),
    ]
    net = Network((3, 6, 6), [*gate, Layer("mul", name="excite", inputs=(INPUT, "hard_sigmoid_1"))])
    assert net.node_shapes()["squeeze"] == (3, 1, 1) and net.shapes()[-1] == (3, 6, 6)
    cat = Network((3, 6, 6), [Layer("relu", name="a"), Layer("concat", name="c", inputs=(INPUT, "a"))])
    assert cat.shapes()[-1] == (6, 6, 6)
    assert Network((3, 6, 6), [Layer("adaptive_avg_pool", {"output_size": (2, 3)})]).shapes()[-1] == (3, 2, 3)
    with pytest.raises(ValueError, match="must divide"):
        Network((3, 7, 7), [Layer("adaptive_avg_pool", {"output_size": (2, 2)})]).shapes()
    with pytest.raises(ValueError, match="cannot broadcast"):
        Network(
            (3, 6, 6), [Layer("relu", name="a"), Layer("flatten"), Layer("add", inputs=("a", "flatten_1"))]
        ).shapes()
    with pytest.raises(ValueError, match="momentum 1.5 is not in"):
        batch_norm(3, momentum=1.5)
    with pytest.raises(ValueError, match="variance must be one of"):
        batch_norm(3, variance="sample")
    with pytest.raises(ValueError, match="expects 4 channels"):
        Network((3, 6, 6), [batch_norm(4)]).shapes()


def test_plan_keeps_node_names_when_it_inserts_padding():
    planned = plan(residual(), FACTS["tensorflow"])  # on 9x9, padding 1 with stride 2 is Keras's 'same'
    names = [layer.name for layer in planned.network.layers]
    assert {"bn", "act", "shortcut", "sum", "gap"} <= set(names)
    assert planned.network.layer("sum").inputs == ("act", "shortcut")
    planned = plan(Network((3, 8, 8), residual().layers), FACTS["tensorflow"])  # even size: symmetric != 'same'
    first = planned.network.layers[0]
    assert first.kind == "zero_pad2d" and first.name == "conv2d_0_zero_pad2d"
    assert planned.network.layer("conv2d_0").inputs == ("conv2d_0_zero_pad2d",)
    assert planned.network.node_shapes()["sum"] == (4, 4, 4)


def test_adaptive_pooling_becomes_plain_pooling_where_the_target_has_none():
    net = Network((2, 6, 4), [Layer("adaptive_avg_pool", {"output_size": (3, 2)}, name="pool")])
    planned = plan(net, FACTS["tensorflow"]).network.layer("pool")
    assert planned.kind == "avg_pool2d" and planned.args["kernel_size"] == (2, 2) and planned.args["stride"] == (2, 2)
    assert plan(net, FACTS["torch"]).network.layer("pool").kind == "adaptive_avg_pool"
    global_pool = Network((2, 6, 4), [Layer("adaptive_avg_pool", {"output_size": (1, 1)})])
    ones = plan(global_pool, FACTS["jax"]).network.layers[0]
    assert ones.kind == "global_avg_pool" and ones.args == {"keepdims": True}


def test_momentum_conventions_and_the_variance_gap():
    assert momentum_new_batch(0.99) == 0.01 and momentum_kept(0.1) == 0.9
    # After one step, unbiased vs biased running variance differ by momentum * var / (n - 1):
    rng = np.random.default_rng(0)
    batch = rng.standard_normal(32)
    unbiased = 0.9 * 1.0 + 0.1 * batch.var(ddof=1)
    biased = 0.9 * 1.0 + 0.1 * batch.var()
    assert unbiased - biased == pytest.approx(unbiased_gap(0.1, 32) * batch.var(), rel=1e-12)
    steps = batch_norm_steps(FACTS["torch"], FACTS["tensorflow"], residual())
    assert any("momentum [0.1]" in step and "[0.9]" in step for step in steps)
    assert any("epsilon [1e-05]" in step for step in steps) and any("unbiased" in step for step in steps)
    assert batch_norm_steps(FACTS["torch"], FACTS["numpy"], residual()) == []
