"""Porting graphs to and from the NHWC frameworks (Keras, Flax).

A graph with every new kind (a stride-2 stem, BatchNorm with random statistics, a depthwise
convolution, a squeeze-excite gate, a residual sum, a four-branch concatenation, ceil-mode pooling,
dropout, global pooling, softmax) is written by each NHWC tab, checked against a reference computed
another way, read back exactly, and shown to contain no transpose. BatchNorm's momentum and variance
in training are checked against the description's formula computed in NumPy; the readers' refusals
name the layer. The ``slow`` tests port keras.applications networks to every framework and back.
"""

from __future__ import annotations

import importlib
import subprocess
import sys
from dataclasses import replace

import numpy as np
import pytest

import d2lconv as dc
from d2lconv import backends
from d2lconv.core.network import Layer, Network, batch_norm, conv, pool

if backends.is_installed("paddle"):
    dc.load_backend("paddle")  # before anything imports tensorflow

NHWC = ("tensorflow", "jax")


def installed(*names: str) -> None:
    for name in names:
        if not backends.is_installed(name):
            pytest.skip(f"{name} is not installed here ({backends.install_hint(name)})")


def checks(name: str):
    """The tab's port_checks module (training-mode forward, node outputs, one SGD step)."""
    return importlib.import_module(f"d2lconv.backends.{name}.port_checks")


def _bn(rng: np.random.Generator, channels: int, name: str, dtype: type, eps: float = 1e-3) -> Layer:
    return batch_norm(
        channels,
        eps=eps,
        momentum=0.1,
        weight=rng.uniform(0.5, 1.5, channels).astype(dtype),
        bias=rng.normal(0, 0.3, channels).astype(dtype),
        running_mean=rng.normal(0, 0.3, channels).astype(dtype),
        running_var=rng.uniform(0.5, 1.5, channels).astype(dtype),
        name=name,
    )


def _named(layer: Layer, name: str, *inputs: str) -> Layer:
    return replace(layer, name=name, inputs=inputs)


def _conv(rng: np.random.Generator, name: str, c_in: int, c_out: int, k: int, dtype: type, *inputs: str, **options):
    groups = options.get("groups", 1)
    made = conv(
        c_in,
        c_out,
        k,
        weight=(rng.standard_normal((c_out, c_in // groups, k, k)) / k).astype(dtype),
        bias=rng.normal(0, 0.1, c_out).astype(dtype),
        **options,
    )
    return _named(made, name, *inputs)


def block_network(seed: int = 0, dtype: type = np.float32) -> Network:
    """Every graph kind on a 3x12x13 input: stem (stride 2, symmetric padding 1: Keras's 'same' would pad the
    rows (0, 1)), depthwise + squeeze-excite + residual, four-branch concatenation, ceil-mode max pooling,
    dropout, global pooling, softmax."""
    rng = np.random.default_rng(seed)
    layers = [
        _conv(rng, "stem", 3, 8, 3, dtype, stride=2, padding=1),
        _bn(rng, 8, "stem_bn", dtype),
        Layer("relu", name="stem_act"),
        _conv(rng, "dw", 8, 16, 3, dtype, padding=1, groups=8),
        _bn(rng, 16, "dw_bn", dtype, eps=1e-5),
        Layer("relu6", name="dw_act"),
        Layer("global_avg_pool", {"keepdims": True}, name="se_pool"),
        _conv(rng, "se_reduce", 16, 4, 1, dtype),
        Layer("relu", name="se_relu"),
        _conv(rng, "se_expand", 4, 16, 1, dtype),
        Layer("hard_sigmoid", {"alpha": 1 / 6, "beta": 0.5}, name="se_gate"),
        Layer("mul", name="se", inputs=("dw_act", "se_gate")),
        _conv(rng, "proj", 8, 16, 1, dtype, "stem_act"),
        Layer("hard_swish", name="proj_act"),
        Layer("add", name="res", inputs=("se", "proj_act")),
        _conv(rng, "b1", 16, 4, 1, dtype),
        Layer("gelu", {"approximate": "tanh"}, name="b1_act"),
        _named(pool("max_pool2d", 3, 1, 1), "b2_pool", "res"),
        _conv(rng, "b2", 16, 4, 1, dtype),
        Layer("leaky_relu", {"negative_slope": 0.1}, name="b2_act"),
        _named(pool("avg_pool2d", 3, 1, 1, count_include_pad=False), "b3_pool", "res"),
        _conv(rng, "b3", 16, 4, 1, dtype),
        Layer("elu", {"alpha": 1.0}, name="b3_act"),
        _conv(rng, "b4", 16, 4, 3, dtype, "res", padding=2, dilation=2),
        Layer("silu", name="b4_act"),
        Layer("concat", name="cat", inputs=("b1_act", "b2_act", "b3_act", "b4_act")),
        _bn(rng, 16, "cat_bn", dtype),
        _named(pool("max_pool2d", 3, 2, ceil_mode=True), "pool"),
        Layer("dropout", {"rate": 0.25}, name="drop"),
        Layer("global_avg_pool", {"keepdims": False}, name="gap"),
        Layer("linear", {"in_features": 16, "out_features": 5, "bias": True}, name="fc"),
        Layer("softmax", {"axis": 1}, name="probs"),
    ]
    fc = next(layer for layer in layers if layer.name == "fc")
    fc.weights.update(weight=rng.standard_normal((5, 16)).astype(dtype), bias=rng.normal(0, 0.1, 5).astype(dtype))
    return Network((3, 12, 13), layers)


def _batch(shape: tuple[int, ...], seed: int = 1, dtype: type = np.float32) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((4, *shape)).astype(dtype)


@pytest.mark.cross
@pytest.mark.parametrize("target", NHWC)
def test_graph_written_in_keras_and_flax_agree_and_reads_back_exactly(target):
    installed(*NHWC)
    net = block_network()
    x = _batch(net.input_shape)
    tab = dc.load_backend(target)
    model = tab.build_network(net)
    other = dc.load_backend(next(name for name in NHWC if name != target))
    y = tab.run_network(model, x)
    np.testing.assert_allclose(y, other.run_network(other.build_network(net), x), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(y.sum(axis=1), 1, rtol=1e-5)  # softmax over the classes
    back = tab.read_network(model)
    by_name = {layer.name: layer for layer in back.layers}
    for layer in net.layers:  # every node comes back with its arguments and weights (planning adds pads only)
        read = by_name[layer.name]
        assert read.kind == layer.kind and read.inputs[-1:] != () and set(read.weights) == set(layer.weights)
        for key, value in layer.weights.items():
            np.testing.assert_allclose(read.weights[key], value, rtol=1e-6, err_msg=f"{layer.name}.{key}")
        if layer.kind == "batch_norm":
            assert read.args == {**layer.args, "variance": "biased"}
    np.testing.assert_allclose(tab.run_network(tab.build_network(back), x), y, rtol=1e-5, atol=1e-6)


def test_keras_writes_depthwise_and_stride_two_padding_with_its_own_layers():
    installed("tensorflow")
    tf_tab = dc.load_backend("tensorflow")
    net = block_network()
    model = tf_tab.build_network(net)
    kinds = {layer.name: type(layer).__name__ for layer in model.layers}
    assert kinds["dw"] == "DepthwiseConv2D" and kinds["stem_zero_pad2d"] == "ZeroPadding2D"
    assert kinds["stem"] == "Conv2D" and model.get_layer("stem").padding == "valid"
    dw, stem_bn = net.layer("dw"), net.layer("stem_bn")
    kernel, bias = model.get_layer("dw").get_weights()
    assert kernel.shape == (3, 3, 8, 2)  # (kh, kw, C, m)
    # The depthwise layer on its own against NumPy's grouped convolution (C*m, 1, kh, kw).
    x = _batch((8, 6, 6))
    single = tf_tab.build_network(Network((8, 6, 6), [replace(dw, inputs=())]))
    with dc.use_backend("numpy"):
        expected = dc.conv2d(x, dw.weights["weight"], dw.weights["bias"], padding=1, groups=8)
    np.testing.assert_allclose(tf_tab.run_network(single, x), expected, rtol=1e-5, atol=1e-5)
    bn = model.get_layer("stem_bn")
    assert bn.momentum == pytest.approx(0.9) and bn.epsilon == stem_bn.args["eps"]


def _batch_norm_reference(layer: Layer, x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The description's training-mode BatchNorm, in NumPy: output, new running mean and variance."""
    w, m, eps = layer.weights, layer.args["momentum"], layer.args["eps"]
    mean, var = x.mean(axis=(0, 2, 3)), x.var(axis=(0, 2, 3))  # biased, as Keras 3 and Flax update with
    shape = (1, -1, 1, 1)
    y = (x - mean.reshape(shape)) / np.sqrt(var.reshape(shape) + eps) * w["weight"].reshape(shape)
    y += w["bias"].reshape(shape)
    return y, (1 - m) * w["running_mean"] + m * mean, (1 - m) * w["running_var"] + m * var


@pytest.mark.parametrize("target", NHWC)
def test_batch_norm_training_updates_running_statistics_with_the_converted_momentum(target):
    installed(target)
    tab = dc.load_backend(target)
    layer = _bn(np.random.default_rng(3), 6, "bn", np.float32)
    net = Network((6, 5, 7), [layer])
    model = tab.build_network(net)
    x = _batch(net.input_shape) * 2 + 1
    np.testing.assert_allclose(  # inference: the running statistics, the source's epsilon
        tab.run_network(model, x),
        (x - layer.weights["running_mean"].reshape(1, -1, 1, 1))
        / np.sqrt(layer.weights["running_var"].reshape(1, -1, 1, 1) + 1e-3)
        * layer.weights["weight"].reshape(1, -1, 1, 1)
        + layer.weights["bias"].reshape(1, -1, 1, 1),
        rtol=1e-5,
        atol=1e-5,
    )
    expected, mean, var = _batch_norm_reference(layer, x)
    np.testing.assert_allclose(checks(target).train_forward(model, x), expected, rtol=1e-4, atol=1e-5)
    read = tab.read_network(model).layer("bn")
    np.testing.assert_allclose(read.weights["running_mean"], mean, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(read.weights["running_var"], var, rtol=1e-5, atol=1e-6)
    assert read.args["momentum"] == pytest.approx(0.1) and read.args["variance"] == "biased"


def test_no_transpose_inside_the_keras_model():
    installed("tensorflow")
    import tensorflow as tf

    model = dc.load_backend("tensorflow").build_network(block_network())
    assert not {"Permute", "Reshape", "Transpose"} & {type(layer).__name__ for layer in model.layers}
    traced = tf.function(lambda x: model(x, training=False)).get_concrete_function(
        tf.TensorSpec((2, 12, 13, 3), tf.float32)
    )
    ops = {op.type for op in traced.graph.get_operations()}
    assert "Conv2D" in ops and "DepthwiseConv2dNative" in ops
    assert not {op for op in ops if "Transpose" in op}, ops


def test_no_transpose_inside_the_flax_model():
    installed("jax")
    import jax

    model = dc.load_backend("jax").build_network(block_network())
    jaxpr = jax.make_jaxpr(lambda x: model(x))(np.zeros((2, 12, 13, 3), np.float32))
    primitives = {equation.primitive.name for equation in jaxpr.jaxpr.eqns}
    assert "conv_general_dilated" in primitives and "transpose" not in primitives, primitives


@pytest.mark.cross
def test_keras_and_flax_train_and_report_nodes_alike():
    installed(*NHWC)
    tf_tab, jax_tab = dc.load_backend("tensorflow"), dc.load_backend("jax")
    net = block_network()
    keras_model, flax_model = tf_tab.build_network(net), jax_tab.build_network(net)
    x = _batch(net.input_shape, seed=4)
    nodes = checks("tensorflow").run_nodes(keras_model, x), checks("jax").run_nodes(flax_model, x)
    assert {layer.name for layer in net.layers} <= set(nodes[0]) & set(nodes[1])
    for layer in net.layers:
        np.testing.assert_allclose(nodes[0][layer.name], nodes[1][layer.name], rtol=1e-4, atol=1e-5)
    assert nodes[0]["probs"].shape == (4, 5) and nodes[0]["stem"].shape == (4, 8, 6, 7)
    target = np.random.default_rng(5).uniform(0, 1, (4, 5)).astype(np.float32)
    losses = [
        checks(name).train_step(model, x, target, 0.5)
        for name, model in zip(NHWC, (keras_model, flax_model), strict=True)
    ]
    assert losses[0] == pytest.approx(losses[1], rel=1e-5)
    assert losses[0] == pytest.approx(float(np.mean((nodes[0]["probs"] - target) ** 2)), rel=0.5)  # training mode
    after = tf_tab.read_network(keras_model), jax_tab.read_network(flax_model)
    moved = 0.0
    for layer in net.layers:
        for key, value in layer.weights.items():
            keras_value, flax_value = after[0].layer(layer.name).weights[key], after[1].layer(layer.name).weights[key]
            np.testing.assert_allclose(keras_value, flax_value, rtol=1e-4, atol=1e-6, err_msg=f"{layer.name}.{key}")
            moved = max(moved, float(np.max(np.abs(keras_value - value))))
    assert moved > 1e-4  # the step changed the weights and the running statistics


@pytest.mark.parametrize("target", NHWC)
def test_generated_graph_code_rebuilds_the_model_in_a_fresh_process(target, tmp_path):
    installed(target)
    tab, net = dc.load_backend(target), block_network()
    model = tab.build_network(net)
    np.savez(tmp_path / "weights.npz", **tab.native_weights(model))
    x = _batch(net.input_shape)
    np.save(tmp_path / "x.npy", x)
    script = tab.network_code(net) + (
        f"\nimport numpy\nfrom d2lconv.backends.{target}.network import run_network\n"
        "numpy.save('y.npy', run_network(net, numpy.load('x.npy')))\n"
    )
    assert "transpose" not in script.lower() and "permute" not in script.lower()
    result = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    np.testing.assert_allclose(np.load(tmp_path / "y.npy"), tab.run_network(model, x), rtol=1e-6, atol=1e-7)


def test_flax_reads_transposed_convolutions_back():
    installed("jax")
    import flax.linen as nn
    import jax

    jax_tab, np_tab = dc.load_backend("jax"), dc.load_backend("numpy")
    rng = np.random.default_rng(6)
    made = conv(3, 4, 3, stride=2, weight=rng.standard_normal((3, 4, 3, 3)).astype(np.float32))
    layer = Layer("conv_transpose2d", {**made.args, "padding": (1, 1, 0, 0), "output_padding": (1, 0)}, made.weights)
    net = Network((3, 5, 6), [layer])
    back = jax_tab.read_network(jax_tab.build_network(net)).layers[0]
    # nn.ConvTranspose pads the dilated input: PyTorch's bottom padding 1 with output padding 1 there reads
    # back as padding 0 with output padding 0, the same computation.
    assert back.args == {**layer.args, "padding": (1, 0, 0, 0), "output_padding": (0, 0)}
    np.testing.assert_array_equal(back.weights["weight"], layer.weights["weight"])
    x = _batch((3, 5, 6))
    np.testing.assert_allclose(
        np_tab.run_network(np_tab.build_network(Network((3, 5, 6), [back])), x),
        np_tab.run_network(np_tab.build_network(net), x),
        rtol=1e-5,
        atol=1e-5,
    )
    # A user's own nn.ConvTranspose with 'VALID' padding, read and run by NumPy's layers.
    module = nn.Sequential([nn.ConvTranspose(4, (3, 2), strides=(2, 3), padding="VALID")])
    variables = module.init(jax.random.key(0), x.transpose(0, 2, 3, 1))
    bound = module.bind(variables)
    read = jax_tab.read_network(bound, (3, 5, 6))
    np.testing.assert_allclose(
        np_tab.run_network(np_tab.build_network(read), x), jax_tab.run_network(bound, x), rtol=1e-5, atol=1e-5
    )


def test_a_hand_written_flax_module_is_refused():
    installed("jax")
    import flax.linen as nn
    import jax

    class Net(nn.Module):
        @nn.compact
        def __call__(self, x):
            return nn.relu(nn.Dense(3)(x))

    bound = Net().bind(Net().init(jax.random.key(0), np.zeros((1, 4), np.float32)))
    with pytest.raises(ValueError, match=r"Net's hand-written __call__ is Python code with no layer graph"):
        dc.load_backend("jax").read_network(bound)


def test_keras_readers_refuse_what_they_cannot_read_naming_the_layer():
    installed("tensorflow")
    import keras

    inputs = keras.Input((8, 8, 3))
    scaled = keras.layers.Rescaling(1 / 255, name="scale")(inputs)
    model = keras.Model(inputs, keras.layers.Conv2D(2, 3, name="conv")(scaled))
    with pytest.raises(ValueError, match=r"node 'scale' \(<Rescaling.*not supported; port supports networks of"):
        dc.port(model, to="numpy")
    shared = keras.layers.Conv2D(3, 1, name="shared")
    model = keras.Model(inputs, shared(shared(inputs)))
    with pytest.raises(ValueError, match=r"layer 'shared' is called 2 times"):
        dc.port(model, to="numpy")
    lambdas = keras.Sequential([keras.Input((4,)), keras.layers.Lambda(lambda x: x * 2, name="double")])
    with pytest.raises(ValueError, match=r"node 'double' .*a Lambda layer"):
        dc.port(lambdas, to="numpy")

    class Sub(keras.Model):
        def call(self, x):
            return x

    with pytest.raises(ValueError, match=r"subclasses keras.Model has no layer graph"):
        dc.load_backend("tensorflow").read_network(Sub())


# keras.applications, randomly initialised (weights=None) with random BatchNorm statistics, to every
# framework and back: heavy, so `slow` (tox's `all` and `pytest -m slow` run them).
ZOO = {
    "ResNet50": (32, 32),
    "MobileNetV2": (32, 32),
    "DenseNet121": (32, 32),
    "InceptionV3": (75, 75),
}


def _zoo_model(name: str):
    import keras

    h, w = ZOO[name]
    keras.utils.set_random_seed(0)
    model = getattr(keras.applications, name)(weights=None, input_shape=(h, w, 3))
    rng = np.random.default_rng(0)
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            values = layer.get_weights()  # [gamma,] [beta,] moving mean, moving variance
            layer.set_weights(
                [rng.normal(0, 0.3, v.shape).astype(v.dtype) for v in values[:-1]]
                + [rng.uniform(0.5, 1.5, values[-1].shape).astype(values[-1].dtype)]
            )
    return model


@pytest.mark.slow
@pytest.mark.cross
@pytest.mark.parametrize("name", ZOO)
@pytest.mark.parametrize("target", ["numpy", "torch", "jax"])
def test_keras_applications_to_every_framework_and_back(name, target):
    installed("tensorflow", target)
    model = _zoo_model(name)
    h, w = ZOO[name]
    ported = dc.port(model, to=target, input_shape=(3, h, w))
    x = _batch((3, h, w), seed=2)
    reference = dc.load_backend("tensorflow").run_network(model, x)
    tolerance = 1e-4 * max(1.0, float(np.max(np.abs(reference))))
    assert ported.compare(x)[0] <= tolerance
    back = dc.port(ported.model, to="tensorflow", input_shape=(3, h, w))
    assert np.max(np.abs(dc.load_backend("tensorflow").run_network(back.model, x) - reference)) <= tolerance
    if target == "jax":
        assert any("momentum" in step for step in ported.steps) is False  # Keras and Flax weigh the running value
    else:
        assert any("momentum" in step for step in ported.steps)


@pytest.mark.slow
def test_keras_efficientnet_preprocessing_is_named_when_refused():
    installed("tensorflow")
    import keras

    model = keras.applications.EfficientNetB0(weights=None, input_shape=(32, 32, 3))
    with pytest.raises(ValueError, match=r"node 'rescaling.*Rescaling"):
        dc.port(model, to="numpy")
