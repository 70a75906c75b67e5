"""BN-LeNet (d2l-en 8.5.4) on every backend: one seeded network, one loss curve, the same running statistics."""

from __future__ import annotations

import numpy as np
import pytest

import d2lconv as dc
from d2lconv.book import bn_lenet

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
    statistics = backend.running_statistics(net)
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
    got = backend.running_statistics(fit.model)
    want = dc.load_backend("numpy").running_statistics(reference_fits[0].model)
    for index, ((mean, var), (want_mean, want_var)) in enumerate(zip(got, want, strict=True)):
        np.testing.assert_allclose(mean, want_mean, rtol=1e-4, atol=1e-5, err_msg=f"batch norm {index}: mean")
        np.testing.assert_allclose(var, want_var, rtol=1e-4, atol=1e-5, err_msg=f"batch norm {index}: variance")
    assert fit.test_acc[-1] == pytest.approx(reference_fits[0].test_acc[-1], abs=2 / 64)


def test_train_rejects_an_unknown_network():
    with pytest.raises(ValueError, match=r"^net must be one of lenet, bn-lenet, got 'alexnet'"):
        dc.train("alexnet")


@pytest.mark.slow
def test_the_defaults_reach_97_percent(backend):
    fit = dc.train("bn-lenet")
    assert fit.test_acc[-1] >= 0.97
