"""dc.port: every direction between the six frameworks, each porting rule, the generated code, bad input.

Importing paddle after tensorflow crashes a process (the registry refuses it with a
BackendError), so this module loads paddle first, at import, when it is installed; every
direction then runs in this one process. The generated code runs in a fresh process.
"""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import d2lconv as dc
from d2lconv import backends
from d2lconv.core.network import INPUT, Layer, Network, conv, pool
from d2lconv.porting import demo_network

if backends.is_installed("paddle"):
    dc.load_backend("paddle")  # before anything imports tensorflow

TOLERANCE = 1e-5  # max |source - target| / max |source|, float32


def lenet(seed: int = 0, dtype: type = np.float32) -> Network:
    """The book's LeNet-5 (conv 6@5x5 pad 2, sigmoid, avg pool 2/2, conv 16@5x5, sigmoid, avg pool 2/2,
    flatten, dense 120, 84, 10), with random weights."""
    rng = np.random.default_rng(seed)

    def uniform(*shape: int) -> np.ndarray:
        return rng.uniform(-0.5, 0.5, shape).astype(dtype)

    def dense(n_in: int, n_out: int) -> Layer:
        return Layer(
            "linear",
            {"in_features": n_in, "out_features": n_out, "bias": True},
            {"weight": uniform(n_out, n_in), "bias": uniform(n_out)},
        )

    return Network(
        (1, 28, 28),
        [
            conv(1, 6, 5, padding=2, weight=uniform(6, 1, 5, 5), bias=uniform(6)),
            Layer("sigmoid"),
            pool("avg_pool2d", 2, 2),
            conv(6, 16, 5, weight=uniform(16, 6, 5, 5), bias=uniform(16)),
            Layer("sigmoid"),
            pool("avg_pool2d", 2, 2),
            Layer("flatten"),
            dense(400, 120),
            Layer("sigmoid"),
            dense(120, 84),
            Layer("sigmoid"),
            dense(84, 10),
        ],
    )


def installed(name: str) -> None:
    if not backends.is_installed(name):
        pytest.skip(f"{name} is not installed here ({backends.install_hint(name)})")


def check_port(net: Network, source: str, target: str, batches: int = 2) -> dc.Ported:
    """Build ``net`` in ``source``, port it to ``target``, and compare on fresh random batches."""
    installed(target)
    model = dc.load_backend(source).build_network(net)
    ported = dc.port(model, to=target, input_shape=net.input_shape)
    assert ported.layout == ("NHWC" if target in ("tensorflow", "jax") else "NCHW")
    rng = np.random.default_rng(7)
    for _ in range(batches):
        x = rng.standard_normal((3, *net.input_shape)) * 2
        diff, relative = ported.compare(x)
        assert relative <= TOLERANCE, (source, target, diff, ported.steps)
    reference = dc.load_backend("numpy").run_network(dc.load_backend("numpy").build_network(net), x.astype(net.dtype))
    actual = dc.load_backend(target).run_network(ported.model, x.astype(net.dtype))
    np.testing.assert_allclose(actual, reference, rtol=1e-4, atol=1e-5)
    return ported


@pytest.mark.parametrize("target", backends.BACKENDS)
@pytest.mark.parametrize("size", [28, 29])
def test_lenet_every_direction(backend, target, size):
    if target == backend.NAME:
        pytest.skip("same framework")
    net = lenet()
    check_port(Network((1, size, size), net.layers), backend.NAME, target)


@pytest.mark.parametrize("target", backends.BACKENDS)
def test_demo_every_direction(backend, target):
    if target == backend.NAME:
        pytest.skip("same framework")
    ported = check_port(demo_network(), backend.NAME, target)
    nhwc = {backend.NAME, target} & {"tensorflow", "jax"}
    if len(nhwc) == 1:  # exactly one side is NHWC: layouts and the flatten order are named
        assert any("flatten" in step and "permuted" in step for step in ported.steps)
        assert any(step.startswith("conv2d weights") for step in ported.steps)


@pytest.mark.cross  # torch to every other framework
@pytest.mark.parametrize("target", backends.BACKENDS)
def test_float64_stays_float64(target):
    installed(target)
    source = "torch" if backends.is_installed("torch") else "numpy"
    net = lenet(dtype=np.float64)
    ported = dc.port(dc.load_backend(source).build_network(net), to=target) if target != source else None
    if ported is None:
        pytest.skip("same framework")
    x = np.random.default_rng(3).standard_normal((2, 1, 28, 28))
    out = dc.load_backend(target).run_network(ported.model, x)
    assert out.dtype == np.float64
    assert ported.compare(x)[1] <= 1e-12
    assert any("float64" in step for step in ported.steps)


def _run_code(ported: dc.Ported, x: np.ndarray, tmp_path) -> np.ndarray:
    ported.save_weights(tmp_path / "weights.npz")
    np.save(tmp_path / "x.npy", x)
    script = ported.code + (
        f"\nimport numpy\nfrom d2lconv.backends.{ported.target}.network import run_network\n"
        "numpy.save('y.npy', run_network(net, numpy.load('x.npy')))\n"
    )
    result = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    return np.load(tmp_path / "y.npy")


@pytest.mark.parametrize("target", backends.BACKENDS)
def test_generated_code_rebuilds_the_model_in_a_fresh_process(target, tmp_path):
    installed(target)
    source = "numpy" if target != "numpy" else ("torch" if backends.is_installed("torch") else None)
    if source is None:
        pytest.skip("needs a second framework")
    ported = dc.port(dc.load_backend(source).build_network(demo_network()), to=target, input_shape=(3, 16, 16))
    x = np.random.default_rng(5).standard_normal((2, 3, 16, 16)).astype(np.float32)
    expected = dc.load_backend(target).run_network(ported.model, x)
    np.testing.assert_allclose(_run_code(ported, x, tmp_path), expected, rtol=1e-6, atol=1e-6)


def values_read_again() -> Network:
    """A graph whose values are read again later: the input by a conv chain and by a 1x1 stride-2 shortcut, the
    chain's ReLU (named ``x``, as generated forwards name their input) by the next convolution and by the sum."""
    w = np.random.default_rng(4).standard_normal
    shortcut = conv(3, 4, 1, stride=2, weight=w((4, 3, 1, 1)).astype(np.float32))
    return Network(
        (3, 9, 9),
        [
            conv(3, 4, 3, stride=2, padding=1, weight=w((4, 3, 3, 3)).astype(np.float32)),
            Layer("relu", name="x"),
            conv(4, 4, 3, padding=1, weight=w((4, 4, 3, 3)).astype(np.float32)),
            Layer("add", name="inner", inputs=("conv2d_2", "x")),
            Layer("conv2d", shortcut.args, shortcut.weights, name="shortcut", inputs=(INPUT,)),
            Layer("add", name="outer", inputs=("inner", "shortcut")),
            Layer("global_avg_pool", {"keepdims": False}),
        ],
    )


@pytest.mark.parametrize("target", backends.BACKENDS)
def test_values_read_again_later_are_kept(target, tmp_path):
    """Where a writer runs a chain in one variable (``x = layer(x)``), the values read again later keep
    their own: the model and its generated code compute NumPy's function."""
    source = "numpy" if target != "numpy" else "torch"
    installed(source)
    ported = check_port(values_read_again(), source, target)
    x = np.random.default_rng(6).standard_normal((2, 3, 9, 9)).astype(np.float32)
    expected = dc.load_backend(target).run_network(ported.model, x)
    np.testing.assert_allclose(_run_code(ported, x, tmp_path), expected, rtol=1e-6, atol=1e-6)


# Each porting rule: a network that needs exactly that rule, ported where it matters, and the naive
# port (the rule left out) shown to differ, so the test fails if the rule is removed.


def _single(layer: Layer, shape: tuple[int, int, int]) -> Network:
    return Network(shape, [layer])


def _naive_difference(ported: dc.Ported, mutate, x: np.ndarray) -> float:
    """How far the ported model moves from the source when ``mutate`` undoes one rule in it."""
    tab = dc.load_backend(ported.target)
    mutate(ported.model)
    return float(
        np.max(
            np.abs(
                tab.run_network(ported.model, x) - dc.load_backend(ported.source).run_network(ported.source_model, x)
            )
        )
    )


def test_rule_flatten_order_permutes_the_first_dense_layer():
    installed("tensorflow")
    net = lenet()
    ported = check_port(net, "numpy", "tensorflow")
    dense = next(layer for layer in ported.model.layers if type(layer).__name__ == "Dense")
    kernel, bias = dense.get_weights()
    np.testing.assert_array_equal(
        kernel, net.layers[7].weights["weight"][:, np.arange(400).reshape(16, 5, 5).transpose(1, 2, 0).ravel()].T
    )
    x = np.random.default_rng(1).standard_normal((2, 1, 28, 28)).astype(np.float32)
    assert (
        _naive_difference(ported, lambda model: dense.set_weights([net.layers[7].weights["weight"].T, bias]), x) > 1e-3
    )


def test_rule_stride_two_symmetric_padding_is_not_same():
    installed("tensorflow")
    rng = np.random.default_rng(2)
    net = _single(
        conv(
            2,
            3,
            3,
            stride=2,
            padding=1,
            weight=rng.standard_normal((3, 2, 3, 3)).astype(np.float32),
            bias=np.zeros(3, np.float32),
        ),
        (2, 8, 8),
    )
    ported = check_port(net, "numpy", "tensorflow")
    assert [type(layer).__name__ for layer in ported.model.layers] == ["ZeroPadding2D", "Conv2D"]
    assert any("'same' here would pad (top, bottom, left, right) = (0, 1, 0, 1)" in step for step in ported.steps)
    import keras

    naive = keras.Sequential([keras.Input((8, 8, 2)), keras.layers.Conv2D(3, 3, strides=2, padding="same")])
    naive.set_weights(ported.model.layers[1].get_weights())
    x = rng.standard_normal((1, 2, 8, 8)).astype(np.float32)
    naive_out = np.asarray(naive(x.transpose(0, 2, 3, 1))).transpose(0, 3, 1, 2)
    assert np.max(np.abs(naive_out - dc.load_backend("numpy").run_network(ported.source_model, x))) > 1e-2


@pytest.mark.parametrize("target", ["tensorflow", "jax", "torch", "paddle"])
def test_rule_max_pool_padding_counts_as_minus_infinity(target):
    net = _single(pool("max_pool2d", 3, stride=2, padding=1), (1, 8, 8))
    ported = check_port(net, "numpy", target)
    x = -1 - np.random.default_rng(3).random((2, 1, 8, 8)).astype(np.float32)  # all negative: 0-padding would win
    assert np.max(dc.load_backend(target).run_network(ported.model, x)) < 0
    with dc.use_backend("numpy"):
        zero_padded = dc.to_numpy(dc.max_pool2d(np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1))), 3, stride=2))
    assert np.max(zero_padded) == 0  # what the rule prevents


@pytest.mark.parametrize("count_include_pad", [True, False])
@pytest.mark.parametrize("target", ["paddle", "mxnet", "jax", "torch"])
def test_rule_average_pooling_divisor(target, count_include_pad):
    net = _single(pool("avg_pool2d", 3, stride=1, padding=1, count_include_pad=count_include_pad), (1, 5, 5))
    ported = check_port(net, "numpy", target)
    ones = np.ones((1, 1, 5, 5), np.float32)
    corner = dc.load_backend(target).run_network(ported.model, ones)[0, 0, 0, 0]
    assert corner == pytest.approx(4 / 9 if count_include_pad else 1.0)  # the divisor 9 or 4 at a corner


@pytest.mark.parametrize("target", ["paddle", "mxnet", "tensorflow", "jax"])
def test_rule_ceil_mode_window_placement(target):
    """Paddle and MXNet keep a ceil-mode window that starts in the padding (torch drops it); Keras and Flax
    have no ceil mode: the windows are placed by padding instead."""
    net = _single(pool("max_pool2d", 2, stride=2, padding=1, ceil_mode=True), (1, 6, 6))
    assert net.shapes()[-1] == (1, 4, 4)
    check_port(net, "numpy", target)


@pytest.mark.parametrize("target", ["torch", "paddle", "mxnet", "jax", "tensorflow"])
def test_rule_transposed_convolution_layout(target):
    rng = np.random.default_rng(4)
    padding, output_padding = (0, 0) if target == "tensorflow" else (1, 1)
    layer = conv(
        4,
        3,
        3,
        stride=2,
        padding=padding,
        weight=rng.standard_normal((4, 3, 3, 3)).astype(np.float32),
        bias=rng.standard_normal(3).astype(np.float32),
    )
    layer = Layer("conv_transpose2d", {**layer.args, "output_padding": (output_padding, output_padding)}, layer.weights)
    net = _single(layer, (4, 5, 5))
    ported = check_port(net, "numpy", target)
    # The same weights read as a convolution's (OIHW in (C_in, C_out) order, unflipped) compute something else.
    x = rng.standard_normal((1, 4, 5, 5)).astype(np.float32)
    swapped = Network(
        net.input_shape,
        [
            Layer(
                "conv_transpose2d",
                {**layer.args, "in_channels": 4},
                {"weight": layer.weights["weight"][:, :, ::-1, ::-1].copy(), "bias": layer.weights["bias"]},
            )
        ],
    )
    wrong = dc.load_backend("numpy").run_network(dc.load_backend("numpy").build_network(swapped), x)
    right = dc.load_backend(target).run_network(ported.model, x)
    assert np.max(np.abs(wrong - right)) > 1e-2


# Bad input: each error names the layer and what is wrong.


def test_unsupported_layer_lists_the_supported_ones():
    installed("torch")
    from torch import nn

    with pytest.raises(ValueError, match=r"node '.*1' .*Upsample.*port supports networks of: 2-D convolution.*tanh"):
        dc.port(nn.Sequential(nn.Conv2d(1, 2, 3), nn.Upsample(scale_factor=2)), to="numpy", input_shape=(1, 7, 7))


def test_a_single_layer_is_a_network_and_a_non_model_is_refused():
    installed("torch")
    from torch import nn

    ported = dc.port(nn.Conv2d(1, 2, 3), to="numpy", input_shape=(1, 7, 7))
    assert [layer.kind for layer in ported.network.layers] == ["conv2d"] and ported.max_diff < 1e-6
    with pytest.raises(ValueError, match="port needs a network of one of the frameworks of numpy, torch"):
        dc.port(object(), to="numpy")


def test_unknown_target_is_a_backend_error():
    model = dc.load_backend("numpy").build_network(demo_network())
    with pytest.raises(dc.BackendError, match="unknown backend 'caffe'.*numpy, torch"):
        dc.port(model, to="caffe")


@pytest.mark.parametrize("target", ["tensorflow", "jax", "paddle", "mxnet"])
def test_a_layer_the_target_cannot_express(target):
    installed(target)
    net = Network(
        (1, 9, 9),
        [conv(1, 1, 3, weight=np.ones((1, 1, 3, 3), np.float32)), pool("max_pool2d", 2, stride=1, dilation=2)],
    )
    model = dc.load_backend("numpy").build_network(net)
    with pytest.raises(ValueError, match=r"layer 1 \(max_pool2d .*dilation.*cannot be ported to " + target):
        dc.port(model, to=target)


def test_size_dependent_port_refuses_another_size():
    installed("tensorflow")
    ported = dc.port(dc.load_backend("numpy").build_network(demo_network()), to="tensorflow", input_shape=(3, 16, 16))
    with pytest.raises(ValueError, match="batch of shape|exact for inputs of shape"):
        ported.compare(np.zeros((1, 3, 17, 17), np.float32))


# Drawn networks: random strides, paddings, dilations, groups, ceil modes, from NumPy to every framework
# and back. A layer a framework cannot express must be refused by name, never ported wrong.


@st.composite
def networks(draw):
    size = draw(st.integers(7, 12))
    channels = draw(st.sampled_from([2, 4]))
    rng = np.random.default_rng(draw(st.integers(0, 100)))
    layers, shape = [], (channels, size, size)
    for _ in range(draw(st.integers(1, 3))):
        kind = draw(st.sampled_from(["conv2d", "max_pool2d", "avg_pool2d", "relu", "tanh"]))
        kernel = draw(st.integers(1, 3))
        if kind == "conv2d":
            groups = draw(st.sampled_from([1, 2]))
            out = draw(st.sampled_from([2, 4]))
            layer = conv(
                shape[0],
                out,
                kernel,
                stride=draw(st.integers(1, 2)),
                padding=draw(st.integers(0, 2)),
                dilation=draw(st.integers(1, 2)),
                groups=groups,
                weight=rng.standard_normal((out, shape[0] // groups, kernel, kernel)).astype(np.float32),
                bias=rng.standard_normal(out).astype(np.float32),
            )
        elif kind in ("max_pool2d", "avg_pool2d"):
            kernel = max(kernel, 2)
            extra = {"count_include_pad": draw(st.booleans())} if kind == "avg_pool2d" else {}
            layer = pool(
                kind,
                kernel,
                stride=draw(st.integers(1, 2)),
                padding=draw(st.integers(0, kernel // 2)),
                ceil_mode=draw(st.booleans()),
                **extra,
            )
        else:
            layer = Layer(kind)
        try:
            new_shape = Network(shape, [layer]).shapes()[-1]
        except ValueError:
            continue
        if min(new_shape[1:]) < 1:
            continue
        layers.append(layer)
        shape = new_shape
    if draw(st.booleans()):
        features = int(np.prod(shape))
        layers += [
            Layer("flatten"),
            Layer(
                "linear",
                {"in_features": features, "out_features": 3, "bias": True},
                {
                    "weight": rng.standard_normal((3, features)).astype(np.float32),
                    "bias": rng.standard_normal(3).astype(np.float32),
                },
            ),
        ]
    return Network((channels, size, size), layers or [Layer("relu")])


@pytest.mark.parametrize("target", [name for name in backends.BACKENDS if name != "numpy"])
@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(net=networks())
def test_drawn_networks_to_every_framework_and_back(target, net):
    installed(target)
    try:
        ported = check_port(net, "numpy", target, batches=1)
    except ValueError as error:
        assert "cannot be ported to" in str(error) and str(error).startswith("layer ")
        return
    back = dc.port(ported.model, to="numpy", input_shape=net.input_shape)
    assert back.compare(np.random.default_rng(0).standard_normal((2, *net.input_shape)))[1] <= TOLERANCE


def test_numpy_layers_backward_matches_finite_differences():
    net = Network(lenet().input_shape, lenet(dtype=np.float64).layers)
    model = dc.load_backend("numpy").build_network(net)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 1, 28, 28))
    grad = rng.standard_normal((2, 10))
    model.forward(x)
    dx = model.backward(grad)
    weight = model[0].params["weight"]
    for where in [(0, 0, 0, 0), (3, 0, 2, 4)]:
        step = 1e-6
        weight[where] += step
        up = np.sum(model.forward(x) * grad)
        weight[where] -= 2 * step
        down = np.sum(model.forward(x) * grad)
        weight[where] += step
        assert model[0].grads["weight"][where] == pytest.approx((up - down) / (2 * step), rel=1e-5, abs=1e-8)
    bumped = x.copy()
    bumped[1, 0, 13, 7] += 1e-6
    assert dx[1, 0, 13, 7] == pytest.approx(
        (np.sum(model.forward(bumped) * grad) - np.sum(model.forward(x) * grad)) / 1e-6, rel=1e-3, abs=1e-7
    )


def test_port_command_prints_steps_code_and_difference():
    installed("torch")
    result = subprocess.run(
        [sys.executable, "-m", "d2lconv.cli", "port", "--from", "numpy", "--to", "pytorch"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "numpy -> torch" in result.stdout and "nn.Sequential(" in result.stdout
    assert float(result.stdout.rsplit("(NCHW): ", 1)[1]) < 1e-5


def test_port_command_bad_name_is_one_line_and_exit_2():
    result = subprocess.run(
        [sys.executable, "-m", "d2lconv.cli", "port", "--from", "numpy", "--to", "caffe"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 2
    assert result.stderr.strip().startswith("d2lconv: error: argument --to: unknown backend 'caffe'")
    assert "or onnx" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
