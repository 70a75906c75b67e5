"""LeNet (d2l 6.6) on every backend: the book's shapes, one seeded network, one loss curve, the data."""

from __future__ import annotations

import re

import numpy as np
import pytest
from scipy import ndimage

import d2lconv as dc
from d2lconv import cli
from d2lconv.book import lenet
from d2lconv.core.network import flatten_permutation

SUMMARY_SHAPES = [(6, 28, 28), (6, 14, 14), (16, 10, 10), (16, 5, 5), (400,), (120,), (84,), (10,)]


@pytest.fixture(scope="module")
def small_data() -> dc.Digits:
    """800 training images (25 minibatches of 32: two epochs are the 50 compared steps) and 64 test images."""
    data = dc.digits()
    return dc.Digits(data.train_x[:800], data.train_y[:800], data.test_x[:64], data.test_y[:64])


@pytest.fixture(scope="module")
def reference_losses(small_data) -> list[float]:
    with dc.use_backend("numpy"):
        return dc.train_lenet(small_data, epochs=2).losses


# --- the data ------------------------------------------------------------------------------------


def test_digits_shapes_dtypes_labels_and_split():
    data = dc.digits()
    assert data.train_x.shape == (1438, 1, 28, 28) and data.test_x.shape == (359, 1, 28, 28)
    assert data.train_x.dtype == data.test_x.dtype == np.float32
    assert data.train_y.shape == (1438,) and data.test_y.shape == (359,)
    assert data.train_y.dtype.kind == data.test_y.dtype.kind == "i"
    for labels in (data.train_y, data.test_y):
        np.testing.assert_array_equal(np.unique(labels), np.arange(10))
    assert np.bincount(data.test_y).min() >= 35  # stratified: about 20 % of each digit held out
    assert abs(float(data.train_x.mean())) < 1e-5 and abs(float(data.train_x.std()) - 1) < 1e-5


def test_digits_are_deterministic_copies():
    first, second = dc.digits(), dc.digits()
    for a, b in zip(first, second, strict=True):
        np.testing.assert_array_equal(a, b)
    first.train_x[:] = 0
    assert dc.digits().train_x.std() > 0.5


def test_upsampling_is_bilinear_with_half_pixel_centres():
    # scipy's zoom with grid_mode=True maps pixel edges onto pixel edges, the same half-pixel convention.
    image = np.random.default_rng(0).random((8, 8))
    matrix = lenet.bilinear_matrix(8, 28)
    expected = ndimage.zoom(image, 3.5, order=1, grid_mode=True, mode="nearest")
    np.testing.assert_allclose(matrix @ image @ matrix.T, expected, atol=1e-12)
    np.testing.assert_allclose(matrix.sum(1), 1.0)


@pytest.mark.parametrize(
    "mutate, error, message",
    [
        (lambda d: (d[0][:, :, :20], *d[1:]), ValueError, "train_x must have shape (N, 1, 28, 28)"),
        (lambda d: (*d[:2], d[2][:, 0, :, :27], d[3]), ValueError, "test_x must have shape"),
        (lambda d: (d[0], d[1] + 5, *d[2:]), ValueError, "train_y must hold labels 0..9"),
        (lambda d: (*d[:3], d[3] - 1), ValueError, "test_y must hold labels 0..9, got values from -1"),
        (lambda d: (d[0], d[1][:-1], *d[2:]), ValueError, "train_y must have one label per image"),
        (lambda d: (d[0].astype(str), *d[1:]), TypeError, "train_x must hold real numbers"),
        (lambda d: (d[0], d[1] + 0.5, *d[2:]), TypeError, "train_y must hold integer class labels"),
        (lambda d: d[:3], TypeError, "data must be a tuple (train_x, train_y, test_x, test_y)"),
    ],
)
def test_bad_data_is_rejected_before_training(small_data, mutate, error, message):
    with pytest.raises(error) as caught:
        dc.train_lenet(mutate(tuple(small_data)), epochs=1)
    assert message in str(caught.value)


@pytest.mark.parametrize(
    "arguments, message",
    [
        ({"epochs": 0}, "epochs must be a positive int"),
        ({"lr": -1.0}, "lr must be a positive number"),
        ({"batch_size": 2.5}, "batch_size must be a positive int"),
        ({"seed": -1}, "seed must be a non-negative int"),
    ],
)
def test_bad_arguments_are_rejected(arguments, message):
    with pytest.raises(ValueError, match=message):
        dc.train_lenet(**arguments)


def test_minibatches_cover_every_image_once_per_epoch():
    epochs = lenet.minibatches(0, 100, 32, 3)
    assert [len(batch) for batch in epochs[0]] == [32, 32, 32, 4]
    for batches in epochs:
        np.testing.assert_array_equal(np.sort(np.concatenate(batches)), np.arange(100))
    assert not np.array_equal(epochs[0][0], epochs[1][0])
    np.testing.assert_array_equal(lenet.minibatches(0, 100, 32, 1)[0][0], epochs[0][0])


# --- the network on every backend --------------------------------------------------------------------


def test_layer_summary_has_the_books_shapes(backend):
    summary = dc.layer_summary(dc.LeNet())
    assert [shape for _, shape in summary] == SUMMARY_SHAPES
    assert all(isinstance(name, str) and name for name, _ in summary)


def test_seeded_lenet_computes_the_same_function_as_numpy(backend, reference, small_data):
    # The first dense layer of an NHWC framework (Keras, Flax) only matches with its rows permuted
    # to the HWC flatten order: without the permutation this test fails there.
    X = small_data.test_x[:16]
    expected = reference.run_network(reference.LeNet(3), X)
    np.testing.assert_allclose(backend.run_network(backend.LeNet(3), X), expected, rtol=1e-4, atol=1e-5)
    assert not np.allclose(backend.run_network(backend.LeNet(4), X), expected, rtol=1e-2, atol=1e-3)


def test_flatten_order_changes_the_function(small_data):
    # What an NHWC framework computes when the first dense layer is loaded without permuting its rows:
    # its flatten hands the features over in (H, W, C) order, so the test above can tell the difference.
    network = lenet.lenet_network(0)
    dense = network.layers[7]
    unpermuted = np.empty_like(dense.weights["weight"])
    unpermuted[:, flatten_permutation((16, 5, 5))] = dense.weights["weight"]
    with dc.use_backend("numpy") as tab:
        X = small_data.test_x[:16]
        right = tab.run_network(tab.LeNet(0), X)
        dense.weights["weight"] = unpermuted
        wrong = tab.run_network(tab.build_network(network), X)
    assert np.abs(right - wrong).max() > 1e-2


def test_first_50_losses_match_numpy(backend, small_data, reference_losses):
    steps: list[tuple[int, int, int, float]] = []
    fit = dc.train_lenet(small_data, epochs=2, on_step=lambda *step: steps.append(step))
    assert [step[:3] for step in steps] == [(epoch, step, 25) for epoch in (1, 2) for step in range(1, 26)]
    assert [step[3] for step in steps] == fit.losses  # the callback sees every minibatch's loss as it ends
    assert len(fit.losses) == 50 and len(fit.train_acc) == len(fit.test_acc) == 2
    np.testing.assert_allclose(fit.losses, reference_losses, rtol=lenet.LOSS_RTOL)
    assert fit.losses[0] == pytest.approx(np.log(10), rel=0.1)  # chance level at the start
    assert fit.seconds > 0 and fit.backend == backend.NAME


def test_in_float64_the_first_50_losses_match_numpy_to_rounding(backend, small_data):
    with dc.use_backend("numpy"):
        reference = dc.train("lenet", epochs=2, data=small_data, dtype="float64").losses
    fit = dc.train("lenet", epochs=2, data=small_data, dtype="float64")
    assert fit.model is not None and len(fit.losses) == 50
    np.testing.assert_allclose(fit.losses, reference, rtol=1e-9)  # measured: 4e-16 on Keras


@pytest.mark.slow
def test_defaults_reach_95_percent(backend):
    fit = dc.train_lenet()
    assert len(fit.test_acc) == lenet.EPOCHS
    assert fit.test_acc[-1] >= 0.95, fit.test_acc
    # the plateau `d2lconv lenet` announces: chance for the first PLATEAU_EPOCHS epochs, then rising
    assert all(lenet.at_chance(accuracy) for accuracy in fit.test_acc[: lenet.PLATEAU_EPOCHS]), fit.test_acc
    assert not lenet.at_chance(fit.test_acc[lenet.PLATEAU_EPOCHS + 1]), fit.test_acc
    first_95 = next(epoch for epoch, accuracy in enumerate(fit.test_acc, 1) if accuracy >= 0.95)
    assert abs(first_95 - lenet.EPOCHS_TO_95) <= 2, fit.test_acc


# --- the command line ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--epochs", "0"], "argument --epochs: must be a positive integer, got '0'"),
        (["--epochs", "ten"], "argument --epochs: must be a positive integer, got 'ten'"),
        (["--lr", "-0.5"], "argument --lr: must be a positive number, got '-0.5'"),
        (["--batch-size", "2.5"], "argument --batch-size: must be a positive integer, got '2.5'"),
        (["--plot", "/no/such/folder/curves.png"], "folder '/no/such/folder' does not exist"),
        (["--backend", "caffe"], "unknown backend 'caffe'"),
    ],
)
def test_cli_rejects_bad_arguments_before_training(argv, message, capsys):
    assert cli.main(["lenet", *argv]) == 2
    err = capsys.readouterr().err
    assert err.startswith("d2lconv: error: ") and message in err and err.count("\n") == 1


def test_cli_trains_and_plots(tmp_path, capsys):
    plot = tmp_path / "curves.png"
    assert cli.main(["lenet", "--backend", "numpy", "--epochs", "1", "--plot", str(plot)]) == 0
    out = capsys.readouterr().out
    for shape in ("6 x 28 x 28", "16 x 5 x 5", "400", "84"):
        assert shape in out
    assert "test acc" in out and plot.read_bytes().startswith(b"\x89PNG")


def test_cli_explains_the_plateau_and_a_run_that_ends_on_it(capsys):
    assert cli.main(["lenet", "--backend", "numpy", "--epochs", "2"]) == 0
    out = " ".join(capsys.readouterr().out.split())  # rich wraps long lines
    assert f"sits at chance for about the first {lenet.PLATEAU_EPOCHS} epochs on these digits" in out
    epochs = re.findall(r"epoch (\d)/2: loss (\S+), train acc (\S+), test acc (\S+)", out)
    assert [epoch for epoch, *_ in epochs] == ["1", "2"]
    assert all(abs(float(loss) - np.log(10)) < 0.5 and lenet.at_chance(float(test)) for _, loss, _, test in epochs)
    assert "step 90/90" in out  # the bar counts minibatches: 45 per epoch
    assert "the run ended at chance level, still on the sigmoid plateau" in out
    assert f"the default {lenet.EPOCHS} epochs are {lenet.EPOCHS - 2} more than this run's 2" in out


def test_a_diverging_lr_says_so(small_data):
    with (
        np.errstate(over="ignore"),
        pytest.raises(dc.TrainingDivergedError, match="training LeNet diverged.*lr=1000000"),
    ):
        dc.train_lenet(small_data, epochs=1, lr=1e6)
