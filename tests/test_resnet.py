"""The narrow ResNet (d2l-en 8.6) on every backend: one seeded network, one loss curve, the same running statistics."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

import d2lconv as dc
from d2lconv.backends import FACTS
from d2lconv.book import lenet, resnet
from d2lconv.core.layer import INPUT
from d2lconv.core.network import Network

# Each block's output (C, H, W): the stem's 7x7 stride-2 convolution and 3x3 stride-2 pooling take 28 to 7, the
# first Residual of each later stage halves height and width (7 -> 4 -> 2), global average pooling, 10 classes.
BLOCKS = {
    "b1_pool": (16, 7, 7),
    "b2_residual1_relu": (16, 7, 7),
    "b3_residual1_relu": (32, 4, 4),
    "b4_residual1_relu": (64, 2, 2),
    "head_linear": (10,),
}
# The per-backend tests train one epoch of 160 images: 10 minibatches of the defaults' 16, where the curves
# agree to float32 rounding (1e-6) on every backend. Later the runs part: this float32 ReLU network with max
# pooling has points where a max-pooling window or ReLU is tied to within rounding and takes the other
# branch in another framework's rounding (NumPy itself, its initial weights perturbed by 1e-7, parts at
# step 16 or 33 of the first 800 digits). On those 800, on one thread, Paddle and PyTorch part from NumPy at
# step 14, Gluon at 36, Keras and Flax stay within 2e-6 for 50 steps; on all 1,438 Gluon, Paddle and Flax
# part at step 7, PyTorch at 18, Keras at 27. BN-LeNet, sigmoids and average poolings, has no such
# points: its curves agree for 50 steps.
STEPS = 10
# In float64 that rounding is 1e9 times smaller and no tie is that close: the same seeded weights on the same
# minibatches give the same losses on every backend for these 50 steps (the check).
FLOAT64_STEPS = 50


def first_images(steps: int) -> dc.Digits:
    """The digits cut to ``steps`` minibatches of the defaults' 16 (one epoch) and 64 test images."""
    data = dc.digits()
    images = steps * resnet.BATCH_SIZE
    return dc.Digits(data.train_x[:images], data.train_y[:images], data.test_x[:64], data.test_y[:64])


@pytest.fixture(scope="module")
def small_data() -> dc.Digits:
    return first_images(STEPS)


def numpy_fit(data: dc.Digits, variance: str, dtype: str = "float32") -> dc.LeNetFit:
    """NumPy's one epoch of the ResNet whose BatchNorm nodes update the running variance with ``variance``."""
    tab = dc.load_backend("numpy")
    build = lambda seed: tab.build_network(resnet.resnet_network(seed, variance).astype(dtype))  # noqa: E731
    return lenet.fit_network(tab, build, data, 1, resnet.LR, resnet.BATCH_SIZE, 0, dtype=dtype)


@pytest.fixture(scope="module")
def reference_fits(small_data) -> dict[str, dc.LeNetFit]:
    """NumPy's epochs under both running-variance estimates (PyTorch's layer takes the unbiased one)."""
    return {variance: numpy_fit(small_data, variance) for variance in ("biased", "unbiased")}


def reference_variance(backend) -> str:
    """The running-variance estimate of ``backend``'s BatchNorm layer ("either": the description's biased one)."""
    variance = FACTS[backend.NAME].batch_norm.variance
    return "biased" if variance == "either" else variance


def assert_statistics_agree(got: dict, want: dict) -> None:
    assert list(got) == list(want)  # the description's node names, in its order
    for name, (mean, var) in got.items():
        np.testing.assert_allclose(mean, want[name][0], rtol=1e-4, atol=1e-5, err_msg=f"{name}: running mean")
        np.testing.assert_allclose(var, want[name][1], rtol=1e-4, atol=1e-5, err_msg=f"{name}: running variance")


def test_the_description_has_the_books_structure():
    net = resnet.resnet_network(0)
    shapes = net.node_shapes()
    assert {node: shapes[node] for node in BLOCKS} == BLOCKS
    convolutions = {layer.name: layer.args for layer in net.layers if layer.kind == "conv2d"}
    assert convolutions["b1_conv"]["kernel_size"] == (7, 7) and convolutions["b1_conv"]["stride"] == (2, 2)
    shortcuts = {name: args["kernel_size"] for name, args in convolutions.items() if name.endswith("conv3")}
    assert shortcuts == {"b3_residual1_conv3": (1, 1), "b4_residual1_conv3": (1, 1)}  # where the shape changes
    norms = [layer for layer in net.layers if layer.kind == "batch_norm"]
    assert len(norms) == 7 and {layer.args["variance"] for layer in norms} == {"biased"}
    assert {
        layer.args["variance"] for layer in resnet.resnet_network(0, "unbiased").layers if layer.kind == "batch_norm"
    } == {"unbiased"}


def test_resnet_is_the_frameworks_own_layers_at_the_books_initial_state(backend):
    net = backend.ResNet(seed=0)
    assert dc.layer_summary(net) == [("Sequential", shape) for shape in BLOCKS.values()]
    statistics = backend.running_statistics(net)
    assert list(statistics) == [layer.name for layer in resnet.resnet_network(0).layers if layer.kind == "batch_norm"]
    for mean, var in statistics.values():
        np.testing.assert_array_equal(mean, 0)
        np.testing.assert_array_equal(var, 1)


def test_the_losses_agree_with_numpy(backend, small_data, reference_fits):
    fit = dc.train("resnet", epochs=1, data=small_data)
    assert len(fit.losses) == STEPS
    np.testing.assert_allclose(fit.losses, reference_fits["biased"].losses, rtol=1e-3)


def test_running_statistics_after_the_epoch_agree_with_numpy(backend, small_data, reference_fits):
    fit = dc.train("resnet", epochs=1, data=small_data)
    reference = reference_fits[reference_variance(backend)].model
    want = dc.load_backend("numpy").running_statistics(reference)
    assert_statistics_agree(backend.running_statistics(fit.model), want)


def names_sorting_backwards(net: Network) -> Network:
    """``net`` with its nodes renamed so that their names sort in the reverse of the graph's order (``x99_b1_conv``,
    ``x98_b1_bn``, ...)."""
    names = {INPUT: INPUT} | {layer.name: f"x{99 - index}_{layer.name}" for index, layer in enumerate(net.layers)}
    layers = [
        dataclasses.replace(layer, name=names[layer.name], inputs=tuple(names[name] for name in layer.inputs))
        for layer in net.layers
    ]
    return Network(net.input_shape, layers, tuple(names[name] for name in net.outputs))


def one_epoch(tab, net: Network, data: dc.Digits) -> dc.LeNetFit:
    """``net`` on ``tab`` for one epoch of ``data`` (the ResNet's learning rate and minibatches)."""
    return lenet.fit_network(tab, lambda seed: tab.build_network(net), data, 1, resnet.LR, resnet.BATCH_SIZE, 0)


def test_running_statistics_come_in_the_graphs_order_not_by_name(backend):
    """Two training steps of the ResNet with names that sort backwards (JAX's jitted step returns ``batch_stats``
    sorted by name): every tab gives the statistics in the description's order, NumPy's values under each name."""
    data, numpy_tab = first_images(2), dc.load_backend("numpy")
    net = names_sorting_backwards(resnet.resnet_network(0))
    reference = names_sorting_backwards(resnet.resnet_network(0, reference_variance(backend)))
    got = backend.running_statistics(one_epoch(backend, net, data).model)
    want = numpy_tab.running_statistics(one_epoch(numpy_tab, reference, data).model)
    norms = [layer.name for layer in net.layers if layer.kind == "batch_norm"]
    assert list(want) == norms and norms != sorted(norms)
    assert np.abs(want[norms[-1]][0]).max() > 1e-3  # moved from zeros
    assert_statistics_agree(got, want)


def test_in_float64_50_losses_and_the_running_statistics_agree_with_numpy(backend):
    data = first_images(FLOAT64_STEPS)
    reference = numpy_fit(data, reference_variance(backend), "float64")
    fit = dc.train("resnet", epochs=1, data=data, dtype="float64")
    assert len(fit.losses) == FLOAT64_STEPS
    np.testing.assert_allclose(fit.losses, reference.losses, rtol=1e-3)
    got = backend.running_statistics(fit.model)
    assert {str(mean.dtype) for mean, _ in got.values()} == {"float64"}
    assert_statistics_agree(got, dc.load_backend("numpy").running_statistics(reference.model))


def test_dtype_is_float32_or_float64(backend):
    with pytest.raises(ValueError, match="dtype"):
        dc.train("resnet", epochs=1, dtype="float16")
    with pytest.raises(ValueError, match="dtype"):
        dc.train("bn-lenet", epochs=1, dtype="float64")  # its from-scratch BatchNorm is float32


@pytest.mark.slow
def test_the_defaults_reach_97_percent(backend):
    fit = dc.train("resnet")
    assert len(fit.test_acc) == resnet.EPOCHS
    assert fit.test_acc[-1] >= 0.97
