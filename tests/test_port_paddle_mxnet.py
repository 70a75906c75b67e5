"""Porting real Paddle and Gluon networks: the Paddle reader (a traced static program), the Gluon reader (a
symbol graph, legacy ``mx.nd`` blocks included) and both writers, checked against the source model itself."""

from __future__ import annotations

import importlib

import numpy as np
import pytest

import d2lconv as dc
from d2lconv import backends
from d2lconv.porting import seeded_batch


def _require(*names: str) -> None:
    for name in names:
        if not backends.is_installed(name):
            pytest.skip(f"{name} is not installed here ({backends.install_hint(name)})")


def _close(actual: np.ndarray, expected: np.ndarray) -> None:
    """Within 1e-4 * max(1, max |expected|), the float32 tolerance of a port."""
    assert actual.shape == expected.shape
    assert np.max(np.abs(actual - expected)) <= 1e-4 * max(1.0, float(np.max(np.abs(expected))))


def _statistics(rng: np.random.Generator, channels: int) -> dict[str, np.ndarray]:
    """BatchNorm weights far from their initial values, so that a skipped BatchNorm, a wrong epsilon or a
    wrong gamma shows."""
    return {
        "gamma": rng.uniform(0.5, 1.5, channels).astype(np.float32),
        "beta": rng.normal(0, 0.2, channels).astype(np.float32),
        "mean": rng.normal(0, 0.5, channels).astype(np.float32),
        "var": rng.uniform(0.5, 2.0, channels).astype(np.float32),
    }


def _paddle_model(name: str, rng: np.random.Generator):
    _require("paddle")
    tab = dc.load_backend("paddle")
    import paddle

    model = getattr(paddle.vision.models, name)(pretrained=False)
    for layer in model.sublayers():
        if isinstance(layer, paddle.nn.BatchNorm2D):
            values = _statistics(rng, layer._mean.shape[0])
            for tensor, key in ((layer.weight, "gamma"), (layer.bias, "beta"), (layer._mean, "mean")):
                tensor.set_value(values[key])
            layer._variance.set_value(values["var"])
    model.eval()
    return tab, model


def _gluon_model(name: str, rng: np.random.Generator):
    _require("mxnet")
    tab = dc.load_backend("mxnet")
    import mxnet as mx
    from mxnet.gluon.model_zoo import vision

    with mx.util.np_array(False), mx.util.np_shape(False):  # the model zoo's blocks are legacy mx.nd ones
        model = vision.get_model(name, pretrained=False)
        model.initialize()
        model(mx.nd.zeros((1, 3, 32, 32)))
    keys = {"gamma": "gamma", "beta": "beta", "running_mean": "mean", "running_var": "var"}
    for key, parameter in model.collect_params().items():
        suffix = next((suffix for suffix in keys if key.endswith(suffix)), None)
        if suffix is not None:
            parameter.set_data(mx.nd.array(_statistics(rng, parameter.shape[0])[keys[suffix]]))
    return tab, model


@pytest.mark.cross
@pytest.mark.parametrize("target", ["numpy", "torch"])
@pytest.mark.parametrize(
    ("framework", "name"),
    [("paddle", "resnet18"), ("paddle", "mobilenet_v2"), ("mxnet", "resnet18_v1"), ("mxnet", "mobilenetv2_1.0")],
)
def test_model_zoo_ports_there_and_back(framework: str, name: str, target: str, rng: np.random.Generator) -> None:
    """paddle.vision.models and the Gluon model zoo, ported to NumPy and PyTorch and back, agree with the source.
    Heavy (about 5-15 s each): they run in tox's ``all`` (``cross``), which keeps the per-backend environments
    fast."""
    _require(target)
    tab, model = (_paddle_model if framework == "paddle" else _gluon_model)(name, rng)
    shape = (3, 32, 32)
    x = seeded_batch(shape, np.float32)
    expected = tab.run_network(model, x)
    there = dc.port(model, to=target, input_shape=shape)
    _close(dc.load_backend(target).run_network(there.model, x), expected)
    back = dc.port(there.model, to=framework, input_shape=shape)
    _close(tab.run_network(back.model, x), expected)


@pytest.mark.parametrize("framework", ["paddle", "mxnet"])
def test_model_zoo_reads_back_what_it_writes(framework: str, rng: np.random.Generator) -> None:
    """A zoo network read, written again in its own framework, and read back: the same description and outputs,
    in inference, in one training-mode forward, and after one SGD step on both."""
    tab, model = _paddle_model("mobilenet_v2", rng) if framework == "paddle" else _gluon_model("resnet18_v1", rng)
    shape = (3, 32, 32)
    net = tab.read_network(model, shape)
    rebuilt = tab.build_network(net)
    assert [layer.kind for layer in tab.read_network(rebuilt, shape).layers] == [layer.kind for layer in net.layers]
    x = seeded_batch(shape, np.float32)
    _close(tab.run_network(rebuilt, x), tab.run_network(model, x))
    checks = importlib.import_module(f"{tab.__name__}.port_checks")
    _close(checks.train_forward(rebuilt, x), checks.train_forward(model, x))
    target = np.zeros_like(tab.run_network(model, x))
    loss = checks.train_step(model, x, target, 0.01)
    assert checks.train_step(rebuilt, x, target, 0.01) == pytest.approx(loss, rel=1e-4)
    _close(tab.run_network(rebuilt, x), tab.run_network(model, x))
    nodes, rebuilt_nodes = checks.run_nodes(model, x), checks.run_nodes(rebuilt, x)
    shared = [name for name in nodes if name in rebuilt_nodes]
    assert len(shared) > len(net.layers) // 2
    for name in shared:
        _close(rebuilt_nodes[name], nodes[name])


def test_paddle_reads_a_forward_of_functional_calls(rng: np.random.Generator) -> None:
    """A user's own paddle.nn.Layer with functional calls (F.relu6, paddle.concat, *, mean, hard-sigmoid) is traced
    and rebuilt exactly."""
    _require("paddle")
    tab = dc.load_backend("paddle")
    import paddle
    import paddle.nn.functional as F
    from paddle import nn

    class Block(nn.Layer):
        def __init__(self) -> None:
            super().__init__()
            self.depthwise = nn.Conv2D(6, 6, 3, padding=[0, 1, 1, 2], groups=6, bias_attr=False)
            self.norm = nn.BatchNorm2D(6)
            self.squeeze = nn.Conv2D(6, 3, 1)
            self.excite = nn.Conv2D(3, 6, 1)
            self.head = nn.Linear(12, 4)

        def forward(self, x):
            y = F.relu6(self.norm(self.depthwise(x)))
            gate = F.hardsigmoid(self.excite(F.silu(self.squeeze(F.adaptive_avg_pool2d(y, 1)))))
            y = F.hardswish(y * gate)
            z = paddle.concat([y, F.max_pool2d(y, 3, 1, 1, ceil_mode=True)], axis=1)
            return F.softmax(self.head(F.gelu(z, approximate=True).mean([2, 3])), axis=-1)

    model = Block()
    values = _statistics(rng, 6)
    model.norm._mean.set_value(values["mean"])
    model.norm._variance.set_value(values["var"])
    model.eval()
    net = tab.read_network(model, (6, 9, 11))
    kinds = {layer.kind for layer in net.layers}
    assert {"relu6", "hard_sigmoid", "hard_swish", "mul", "concat", "global_avg_pool", "gelu", "softmax"} <= kinds
    assert net.layer("norm").args["momentum"] == pytest.approx(0.1)  # Paddle's 0.9 weighs the running value
    x = seeded_batch((6, 9, 11), np.float32)
    _close(tab.run_network(tab.build_network(net), x), tab.run_network(model, x))


def test_paddle_refuses_an_op_it_cannot_port_naming_it() -> None:
    _require("paddle")
    tab = dc.load_backend("paddle")
    import paddle
    from paddle import nn

    class Sorts(nn.Layer):
        def __init__(self) -> None:
            super().__init__()
            self.conv = nn.Conv2D(1, 2, 3)

        def forward(self, x):
            return paddle.sort(self.conv(x), axis=1)

    with pytest.raises(ValueError, match=r"pd_op\.(argsort|sort)"):
        tab.read_network(Sorts(), (1, 8, 8))


def test_gluon_fix_gamma_reads_gamma_as_one(rng: np.random.Generator) -> None:
    """MXNet's BatchNorm(scale=False) sets fix_gamma, and MXNet then ignores gamma: the port must too."""
    _require("mxnet")
    tab = dc.load_backend("mxnet")
    from mxnet import gluon
    from mxnet import np as mnp

    model = gluon.nn.HybridSequential()
    model.add(gluon.nn.Conv2D(4, 3, in_channels=2), gluon.nn.BatchNorm(scale=False, in_channels=4))
    model.initialize()
    model[1].gamma.set_data(mnp.array([3.0, -2.0, 5.0, 7.0]))
    values = _statistics(rng, 4)
    model[1].running_mean.set_data(mnp.array(values["mean"]))
    model[1].running_var.set_data(mnp.array(values["var"]))
    net = tab.read_network(model, (2, 7, 7))
    np.testing.assert_array_equal(net.layers[1].weights["weight"], np.ones(4, np.float32))
    x = seeded_batch((2, 7, 7), np.float32)
    ported = dc.port(model, to="numpy", input_shape=(2, 7, 7))
    _close(ported.model.forward(x), tab.run_network(model, x))
    assert any("fix_gamma=True" in step for step in ported.steps)


def test_gluon_ports_asymmetric_padding_with_its_own_padding_block() -> None:
    """Gluon pads only symmetrically and has no padding layer: the tab's Pad2D block pads exactly, both ways."""
    _require("mxnet")
    tab, reference = dc.load_backend("mxnet"), dc.load_backend("numpy")
    from d2lconv.core.network import Layer, Network, conv

    rng = np.random.default_rng(3)
    weight = rng.standard_normal((3, 2, 3, 3)).astype(np.float32)
    net = Network(
        (2, 9, 8),
        [conv(2, 3, 3, stride=2, padding=((0, 1), (2, 1)), weight=weight), Layer("relu")],
    )
    ported = dc.port(reference.build_network(net), to="mxnet")
    assert "Pad2D((0, 1, 2, 1))" in ported.code
    x = seeded_batch((2, 9, 8), np.float32)
    _close(tab.run_network(ported.model, x), reference.build_network(net).forward(x))
    back = dc.port(ported.model, to="numpy")
    _close(back.model.forward(x), reference.build_network(net).forward(x))
