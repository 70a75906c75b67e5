"""BN-LeNet (d2l-en 8.5.4) on every backend: one seeded network, one loss curve, the same running statistics."""

from __future__ import annotations

import functools
import importlib

import numpy as np
import pytest

import d2lconv as dc
from d2lconv.backends import FACTS
from d2lconv.book import bn_lenet
from d2lconv.book.lenet import fit_network

# The book's shapes: no padding, so 24x24 after the first convolution and 256 features into the first dense layer
SHAPES = [(6, 24, 24), (6, 12, 12), (16, 8, 8), (16, 4, 4), (256,), (120,), (84,), (10,)]


@pytest.fixture(scope="module")
def small_data() -> dc.Digits:
    """800 training images (25 minibatches of 32: two epochs are the 50 compared steps) and 64 test images."""
    data = dc.digits()
    return dc.Digits(data.train_x[:800], data.train_y[:800], data.test_x[:64], data.test_y[:64])


@pytest.fixture(scope="module")
def reference_fits(small_data) -> tuple[dc.LeNetFit, dc.LeNetFit]:
    """NumPy's fits: one epoch (its running statistics) and two (its first 50 losses)."""
    with dc.use_backend("numpy"):
        return dc.train("bn-lenet", epochs=1, data=small_data), dc.train("bn-lenet", epochs=2, data=small_data)


def test_the_description_has_the_books_shapes():
    net = bn_lenet.bn_lenet_network(0)
    shapes = net.shapes()
    kept = [shapes[index + 1] for index, layer in enumerate(net.layers) if layer.kind not in ("batch_norm", "sigmoid")]
    assert kept == SHAPES
    rest, places = bn_lenet.split_batch_norms(bn_lenet.bn_lenet_network(0))
    assert places == {1: (6, 4), 5: (16, 4), 10: (120, 2), 13: (84, 2)}
    assert [layer.kind for layer in rest.layers].count("batch_norm") == 0


def test_bn_lenet_is_the_frameworks_own_layers_with_its_batch_norm(backend):
    net = dc.BNLeNet(seed=0)
    statistics = backend.running_statistics(net).values()
    assert [len(mean) for mean, _ in statistics] == [6, 16, 120, 84]
    for mean, var in statistics:  # the book's initial statistics: zeros and ones
        np.testing.assert_array_equal(mean, 0)
        np.testing.assert_array_equal(var, 1)


def test_first_50_losses_agree_with_numpy(backend, small_data, reference_fits):
    fit = dc.train("bn-lenet", epochs=2, data=small_data)
    assert len(fit.losses) == 50
    np.testing.assert_allclose(fit.losses, reference_fits[1].losses, rtol=1e-3)


def test_running_statistics_after_the_first_epoch_agree_with_numpy(backend, small_data, reference_fits):
    fit = dc.train("bn-lenet", epochs=1, data=small_data)
    got = backend.running_statistics(fit.model).values()
    want = dc.load_backend("numpy").running_statistics(reference_fits[0].model).values()
    for index, ((mean, var), (want_mean, want_var)) in enumerate(zip(got, want, strict=True)):
        np.testing.assert_allclose(mean, want_mean, rtol=1e-4, atol=1e-5, err_msg=f"batch norm {index}: mean")
        np.testing.assert_allclose(var, want_var, rtol=1e-4, atol=1e-5, err_msg=f"batch norm {index}: variance")
    assert fit.test_acc[-1] == pytest.approx(reference_fits[0].test_acc[-1], abs=2 / 64)


# The concise BN-LeNet (the framework's own BatchNorm layer) against the from-scratch one, ten minibatches of 32 from
# seed 0 with lr 0.5. Measured largest differences: losses 1.2e-7 (torch), 2.4e-7 (TensorFlow), 4.8e-7 (NumPy, JAX),
# 3.6e-6 (MXNet), 6.8e-6 absolute, 5.1e-6 relative (Paddle); running variances 2.7e-4 relative (Paddle's first
# BatchNorm: its kernel sums 18,432 values per channel in another order), after PyTorch's n / (n - 1).
CONCISE_STEPS, CONCISE_LOSS_RTOL, CONCISE_STATISTICS_RTOL = 10, 1e-4, 1e-3


def test_concise_is_the_frameworks_own_batch_norm_with_the_same_outputs(backend, small_data):
    scratch, concise = dc.BNLeNet(seed=0), dc.BNLeNet(seed=0, concise=True)
    assert len(backend.running_statistics(concise)) == 4
    own = {type(layer).__name__ for layer in _layers(concise)}
    assert own & {"BatchNorm2d", "BatchNorm1d", "BatchNormalization", "BatchNorm", "BatchNorm2D", "BatchNorm1D"}
    assert not any(isinstance(layer, backend.BatchNorm) for layer in _layers(concise))
    x = small_data.test_x[:32]
    np.testing.assert_allclose(backend.run_network(concise, x), backend.run_network(scratch, x), rtol=1e-5, atol=1e-6)


def test_concise_gives_the_same_outputs_in_training_mode(backend, small_data):
    """One training-mode forward of each fresh network on a batch of 32 (BatchNorm on the batch's statistics):
    the same outputs (measured largest difference 0 in TensorFlow to 3.9e-6 in Paddle, on outputs up to 1.85),
    and not the inference-mode ones (which differ from them by 0.98)."""
    x = small_data.train_x[:32]
    scratch, concise = dc.BNLeNet(seed=0), dc.BNLeNet(seed=0, concise=True)
    inference = backend.run_network(scratch, x)
    forward = importlib.import_module(f"d2lconv.backends.{backend.NAME}.port_checks").train_forward
    if backend.NAME == "jax":  # a Flax nn.Sequential's BatchNorm mode is fixed when it is built: the trainer's clone
        scratch, concise = (_jax_training_mode(net) for net in (scratch, concise))
    training = forward(scratch, x)
    np.testing.assert_allclose(forward(concise, x), training, rtol=1e-5, atol=1e-5)
    assert np.abs(training - inference).max() > 0.5


def _jax_training_mode(net):
    module, variables = net.unbind()
    return importlib.import_module("d2lconv.backends.jax.batch_norm")._train_mode(module).bind(variables, mutable=True)


def test_concise_trains_as_the_from_scratch_one(backend, small_data):
    """The same losses on the same first ten minibatches from seed 0, and the same running statistics but for the
    variance estimate: both start from mean 0 and variance 1, so after k steps the running variance is
    0.9^k + sum(0.1 * 0.9^(k-j) * batch variance_j); PyTorch's own layer puts n / (n - 1) times the biased batch
    variance into it (n = values per channel in a batch), every other framework's and the book's the biased one."""
    steps = 32 * CONCISE_STEPS
    data = dc.Digits(small_data.train_x[:steps], small_data.train_y[:steps], small_data.test_x, small_data.test_y)
    concise = fit_network(backend, functools.partial(backend.BNLeNet, concise=True), data, 1, bn_lenet.LR, 32, 0)
    scratch = fit_network(backend, backend.BNLeNet, data, 1, bn_lenet.LR, 32, 0)
    assert len(concise.losses) == CONCISE_STEPS
    np.testing.assert_allclose(concise.losses, scratch.losses, rtol=CONCISE_LOSS_RTOL)
    net = bn_lenet.bn_lenet_network(0)
    shapes = net.shapes()
    counts = [32 * int(np.prod(shapes[i][1:])) for i, layer in enumerate(net.layers) if layer.kind == "batch_norm"]
    assert counts == [32 * 24 * 24, 32 * 8 * 8, 32, 32]
    unbiased = FACTS[backend.NAME].batch_norm.variance == "unbiased"
    kept = (1 - bn_lenet.MOMENTUM) ** CONCISE_STEPS  # the initial variance's share
    pairs = zip(*(backend.running_statistics(fit.model).values() for fit in (concise, scratch)), strict=True)
    for index, (count, ((mean, var), (want_mean, want_var))) in enumerate(zip(counts, pairs, strict=True)):
        np.testing.assert_allclose(mean, want_mean, rtol=CONCISE_STATISTICS_RTOL, atol=1e-5, err_msg=f"mean {index}")
        factor = count / (count - 1) if unbiased else 1.0
        expected = kept + (want_var - kept) * factor
        np.testing.assert_allclose(var, expected, rtol=CONCISE_STATISTICS_RTOL, err_msg=f"variance {index}")
    # The effect on predictions: the dense layers' n = 32 makes PyTorch's running variance 3.2 % larger there.
    x = small_data.test_x[:32]
    gap = np.abs(backend.run_network(concise.model, x) - backend.run_network(scratch.model, x)).max()
    assert gap > 1e-4 if unbiased else gap < 1e-4


def _layers(net):
    """The layers of a BN-LeNet of any backend, for their types."""
    for name in ("modules", "sublayers"):  # torch, Paddle
        if callable(getattr(net, name, None)):
            return list(getattr(net, name)())
    if hasattr(net, "layers"):  # Keras, Flax's nn.Sequential
        return list(net.layers)
    return [net[index] for index in range(len(net))]  # Gluon, NumPy's Sequential


def test_train_rejects_an_unknown_network():
    with pytest.raises(ValueError, match=r"^net must be one of lenet, bn-lenet, resnet, got 'alexnet'"):
        dc.train("alexnet")


@pytest.mark.slow
def test_the_defaults_reach_97_percent(backend):
    fit = dc.train("bn-lenet")
    assert fit.test_acc[-1] >= 0.97
