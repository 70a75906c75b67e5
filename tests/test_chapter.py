"""The chapter on every backend: the book's numbers, SciPy references, gradients, training, bad input."""

from __future__ import annotations

import itertools
import re

import numpy as np
import pytest
from conftest import LAYER_BASE, NATIVE_TENSOR, resolve
from scipy import signal

import d2lconv as dc
from d2lconv.book import conv_layer as chapter

FLOAT32 = {"rtol": 1e-5, "atol": 1e-5}


def random_shapes(rng: np.random.Generator, count: int, largest: int = 12):
    """``count`` pairs of (image, kernel) with the kernel fitting inside the image."""
    for _ in range(count):
        h, w = rng.integers(1, largest, size=2)
        kh, kw = rng.integers(1, h + 1), rng.integers(1, w + 1)
        yield rng.standard_normal((h, w)).astype(np.float32), rng.standard_normal((kh, kw)).astype(np.float32)


# --- the book's numbers -------------------------------------------------------------------------


def test_figure_6_2_1(backend):
    Y = dc.corr2d([[0, 1, 2], [3, 4, 5], [6, 7, 8]], [[0, 1], [2, 3]])
    assert isinstance(Y, resolve(NATIVE_TENSOR[backend.NAME]))
    np.testing.assert_array_equal(dc.to_numpy(Y), [[19.0, 25.0], [37.0, 43.0]])
    np.testing.assert_array_equal(dc.to_numpy(dc.corr2d_loop(chapter.FIGURE_X, chapter.FIGURE_K)), chapter.FIGURE_Y)


def test_edge_detection(backend):
    X, K = dc.edge_image(), dc.edge_kernel()
    assert isinstance(X, resolve(NATIVE_TENSOR[backend.NAME]))
    image = dc.to_numpy(X)
    assert image.shape == (6, 8) and image.dtype == np.float32
    assert image[:, 2:6].sum() == 0 and image[:, [0, 1, 6, 7]].min() == 1
    np.testing.assert_array_equal(dc.to_numpy(K), [[1.0, -1.0]])
    expected = np.zeros((6, 7), np.float32)
    expected[:, 1], expected[:, 5] = 1.0, -1.0  # white to black, black to white
    np.testing.assert_array_equal(dc.to_numpy(dc.corr2d(X, K)), expected)


def test_transposed_image_has_no_vertical_edges(backend):
    Y = dc.to_numpy(dc.corr2d(dc.to_numpy(dc.edge_image()).T, dc.edge_kernel()))
    np.testing.assert_array_equal(Y, np.zeros((8, 5)))


def test_learned_kernel_is_the_edge_kernel(backend):
    fit = dc.learn_kernel()
    assert len(fit.losses) == 10 and fit.bias is None and fit.backend == backend.NAME
    assert all(later < earlier for earlier, later in itertools.pairwise(fit.losses))
    np.testing.assert_allclose(fit.kernel, [[1.0, -1.0]], atol=0.05)


# --- references computed another way ------------------------------------------------------------


def test_corr2d_and_convolve2d_match_scipy(backend, rng):
    for X, K in random_shapes(rng, 25):
        np.testing.assert_allclose(dc.to_numpy(dc.corr2d(X, K)), signal.correlate2d(X, K, "valid"), **FLOAT32)
        np.testing.assert_allclose(dc.to_numpy(dc.convolve2d(X, K)), signal.convolve2d(X, K, "valid"), **FLOAT32)
        np.testing.assert_allclose(
            dc.to_numpy(backend.native_corr2d(X, K)), signal.correlate2d(X, K, "valid"), **FLOAT32
        )


def test_loop_and_matmul_equal_corr2d(backend, rng):
    for X, K in random_shapes(rng, 10, largest=8):
        expected = dc.to_numpy(dc.corr2d(X, K))
        np.testing.assert_allclose(dc.to_numpy(dc.corr2d_loop(X, K)), expected, **FLOAT32)
        np.testing.assert_allclose(dc.to_numpy(dc.corr2d_matmul(X, K)), expected, **FLOAT32)


def test_native_tensors_in_and_out(backend):
    X = dc.tensor(np.arange(12, dtype=np.int64).reshape(3, 4))
    assert isinstance(X, resolve(NATIVE_TENSOR[backend.NAME]))
    assert dc.to_numpy(X).dtype == np.float32
    np.testing.assert_array_equal(
        dc.to_numpy(dc.corr2d(X, dc.tensor([[1.0], [1.0]]))), [[4, 6, 8, 10], [12, 14, 16, 18]]
    )


def test_nan_propagates_only_where_it_is_seen(backend):
    X = np.ones((4, 5), np.float32)
    X[0, 0] = np.nan
    Y = dc.to_numpy(dc.corr2d(X, np.ones((2, 2))))
    assert np.isnan(Y[0, 0]) and np.isfinite(Y).sum() == Y.size - 1


# --- gradients ----------------------------------------------------------------------------------


def finite_difference(f, x: np.ndarray, step: float = 1e-3) -> np.ndarray:
    """Central finite differences of scalar ``f`` at ``x`` (float64)."""
    grad = np.zeros_like(x, dtype=np.float64)
    for index in np.ndindex(x.shape):
        shift = np.zeros_like(x, dtype=np.float64)
        shift[index] = step
        grad[index] = (f(x + shift) - f(x - shift)) / (2 * step)
    return grad


def test_hand_derived_backward_matches_finite_differences(reference, rng):
    """The NumPy Conv2D's backward (weight, bias, input) against central differences of sum(y**2)/2."""
    X, K = rng.standard_normal((5, 6)), rng.standard_normal((2, 3))
    layer = reference.Conv2D((2, 3))
    layer.weight[...], layer.bias[...] = K, 0.7
    Y = layer(X)
    dX = layer.backward(Y)  # d(sum(y**2)/2)/dy = y

    def loss(X=X, K=K, b=0.7):
        return 0.5 * ((signal.correlate2d(X, K, "valid") + b) ** 2).sum()

    np.testing.assert_allclose(layer.weight_grad, finite_difference(lambda k: loss(K=k), K), rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(dX, finite_difference(lambda x: loss(X=x), X), rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(
        layer.bias_grad, [(loss(b=0.7 + 1e-3) - loss(b=0.7 - 1e-3)) / 2e-3], rtol=1e-4, atol=1e-4
    )


def test_vjp_of_corr2d_is_two_correlations(backend, rng):
    """dX is G fully convolved with K, dK is X correlated with G ('valid'), by SciPy."""
    for X, K in random_shapes(rng, 8, largest=9):
        G = rng.standard_normal((X.shape[0] - K.shape[0] + 1, X.shape[1] - K.shape[1] + 1)).astype(np.float32)
        dX, dK = dc.vjp("corr2d", X, K, grad_output=G)
        np.testing.assert_allclose(dc.to_numpy(dX), signal.convolve2d(G, K, "full"), rtol=1e-4, atol=1e-4)
        np.testing.assert_allclose(dc.to_numpy(dK), signal.correlate2d(X, G, "valid"), rtol=1e-4, atol=1e-4)


# --- the Conv2D layer ---------------------------------------------------------------------------


def test_conv2d_layer_is_the_frameworks_own_layer(backend, rng):
    layer = dc.Conv2D((2, 3))
    if backend.NAME in LAYER_BASE:
        assert isinstance(layer, resolve(LAYER_BASE[backend.NAME]))
    weight, bias = dc.to_numpy(layer.weight), dc.to_numpy(layer.bias)
    assert weight.shape == (2, 3) and bias.shape == (1,)
    assert 0 <= weight.min() and weight.max() < 1 and bias[0] == 0  # the book: rand weights, zero bias
    X = rng.standard_normal((5, 7)).astype(np.float32)
    Y = dc.to_numpy(layer(dc.tensor(X)))
    np.testing.assert_allclose(Y, signal.correlate2d(X, weight, "valid") + bias, **FLOAT32)
    assert dc.to_numpy(dc.Conv2D(3).weight).shape == (3, 3)


def test_custom_layer_trains_like_the_reference(backend, reference):
    fit = dc.learn_kernel(layer="custom", lr=1e-2, epochs=40)
    with dc.use_backend("numpy"):
        expected = dc.learn_kernel(layer="custom", lr=1e-2, epochs=40)
    np.testing.assert_allclose(fit.losses, expected.losses, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(fit.kernel, [[1.0, -1.0]], atol=0.01)
    assert abs(fit.bias) < 1e-3


@pytest.mark.parametrize("layer, lr", [("builtin", 0.03), ("custom", 0.014)])
def test_learn_kernel_converges_with_its_defaults(backend, layer, lr):
    """The default lr is per layer, below the stability limit 2 / max eig(H) of the edge image's loss."""
    fit = dc.learn_kernel(layer=layer)
    assert fit.lr == lr < chapter.stable_lr(chapter.edge_image(), (1, 2), layer)[0]
    assert (np.diff(fit.losses) < 0).all(), fit.losses
    assert fit.losses[-1] < fit.losses[0] / 25
    np.testing.assert_allclose(fit.kernel, [[1.0, -1.0]], atol=0.12)


@pytest.mark.parametrize("layer", ["builtin", "custom"])
@pytest.mark.parametrize("seed", [0, 7])
def test_same_seed_same_loss_curve(backend, layer, seed):
    lr = 3e-2 if layer == "builtin" else 1e-2
    fit = dc.learn_kernel(seed=seed, layer=layer, lr=lr, epochs=12)
    with dc.use_backend("numpy"):
        expected = dc.learn_kernel(seed=seed, layer=layer, lr=lr, epochs=12)
    np.testing.assert_allclose(fit.losses, expected.losses, rtol=1e-4)
    np.testing.assert_allclose(fit.kernel, expected.kernel, rtol=1e-4, atol=1e-6)
    np.testing.assert_array_equal(fit.initial_kernel, chapter.initial_weight(seed, (1, 2)))


def test_learn_kernel_on_other_data(backend, rng):
    X = rng.standard_normal((8, 9)).astype(np.float32)
    K = np.array([[0.5, -0.25], [0.0, 1.0]], np.float32)
    fit = dc.learn_kernel(X, signal.correlate2d(X, K, "valid"), kernel_size=2, lr=1e-2, epochs=300)
    np.testing.assert_allclose(fit.kernel, K, atol=1e-3)


def test_framework_default_initialisation_still_learns(backend):
    fit = dc.learn_kernel(seed=None, epochs=30)
    assert fit.initial_kernel is None and fit.losses[-1] < fit.losses[0]


@pytest.mark.parametrize(
    "layer, lr, limit", [("builtin", 1.0, 1 / 30), ("builtin", 0.1, 1 / 30), ("custom", 3e-2, 0.01609)]
)
def test_diverging_training_states_the_limit_and_suggests_an_lr_that_converges(backend, layer, lr, limit):
    """Summed squared error on the edge image: H = 2 P^T P, whose largest eigenvalue is 60 for the
    kernel alone (limit 2 / 60) and 124.3 with the bias (the custom layer's bias gradient sums 42 pixels)."""
    with pytest.raises(dc.TrainingDivergedError, match=rf"diverged.* with lr={lr} \({layer} layer\)") as caught:
        dc.learn_kernel(layer=layer, lr=lr, epochs=40)
    message = str(caught.value)
    stated = float(re.search(r"stable only for lr < (\S+) ", message).group(1))
    assert stated == pytest.approx(limit, rel=1e-3)
    suggested = float(re.search(r"try lr=(\S+)$", message).group(1))
    assert 0.5 * limit < suggested < limit
    fit = dc.learn_kernel(layer=layer, lr=suggested, epochs=40)
    assert fit.losses[-1] < 1e-3 * fit.losses[0]  # it converges, to the edge kernel
    np.testing.assert_allclose(fit.kernel, [[1.0, -1.0]], atol=0.01)


def test_the_stability_limit_is_two_over_the_largest_hessian_eigenvalue(rng):
    """Checked another way: the Hessian by finite differences of the summed squared error."""
    X = rng.standard_normal((5, 6))
    Y = rng.standard_normal((4, 4))

    def loss(w: np.ndarray) -> float:
        return float(((signal.correlate2d(X, w[:-1].reshape(2, 3), "valid") + w[-1] - Y) ** 2).sum())

    step, w0 = 1e-3, rng.standard_normal(7)
    basis = np.eye(7) * step
    hessian = np.array(
        [
            [(loss(w0 + a + b) - loss(w0 + a - b) - loss(w0 - a + b) + loss(w0 - a - b)) / (4 * step**2) for b in basis]
            for a in basis
        ]
    )
    limit, fastest = chapter.stable_lr(X, (2, 3), "custom")
    assert limit == pytest.approx(2 / np.linalg.eigvalsh(hessian).max(), rel=1e-5)
    assert fastest < limit


@pytest.mark.parametrize("name", ["X", "Y"])
@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_nan_or_inf_in_the_data_is_named_not_blamed_on_the_lr(backend, name, bad):
    data = {"X": chapter.edge_image(), "Y": np.asarray(dc.to_numpy(dc.corr2d(dc.edge_image(), dc.edge_kernel())))}
    data[name] = data[name].copy()
    data[name][1, 1] = bad
    with pytest.raises(ValueError, match=rf"^{name} holds NaN or inf; learn_kernel needs finite data$"):
        dc.learn_kernel(data["X"], data["Y"])


# --- bad input: the same exception and message on every backend -------------------------------

BAD_INPUTS = [
    (dc.corr2d, (np.ones((2, 3, 4)), np.ones((2, 2))), ValueError, r"X must be 2-D .* got 3-D shape \(2, 3, 4\)"),
    (dc.corr2d, (np.ones((3, 3)), [1.0, 2.0]), ValueError, r"K must be 2-D .* got 1-D shape \(2,\)"),
    (dc.corr2d, (np.ones((2, 2)), np.ones((3, 1))), ValueError, r"K of shape \(3, 1\) is larger than X"),
    (dc.corr2d, (np.ones((2, 2)), np.ones((0, 1))), ValueError, r"K is empty"),
    (dc.corr2d, ([["a", "b"], ["c", "d"]], [[1.0]]), TypeError, r"^X must hold real numbers, got <U1 data$"),
    (dc.corr2d, ([[1.0]], [["a", "b"]]), TypeError, r"^K must hold real numbers, got <U1 data$"),
    (dc.corr2d, (np.ones((2, 2)) * 1j, [[1.0]]), TypeError, r"^X must hold real numbers, got complex128"),
    (
        dc.corr2d,
        ([[1.0, 2.0], [3.0]], [[1.0]]),
        ValueError,
        r"^X must be rectangular: a nested list whose rows differ in length$",
    ),
    (dc.convolve2d, ([[1.0, 2.0], [3.0, 4.0]], [[1.0], [2.0, 3.0]]), ValueError, r"^K must be rectangular"),
    (
        dc.corr2d,
        (np.ones((0, 3)), [[1.0]]),
        ValueError,
        r"^X is empty \(shape \(0, 3\)\); an image needs at least one row and one column$",
    ),
    (dc.conv2d, (np.ones((1, 1, 3, 3)), "ab"), TypeError, r"^weight must hold real numbers"),
    (dc.max_pool2d, ([[[[1.0, 2.0], [3.0]]]], 1), ValueError, r"^x must be rectangular"),
    (dc.corr2d_loop, (np.ones((3,)), np.ones((1, 1))), ValueError, r"X must be 2-D"),
    (dc.convolve2d, (np.ones((2, 2)), np.ones((2, 3))), ValueError, r"larger than X"),
    (dc.corr2d_matmul, (np.ones((2, 2)), np.ones((0, 0))), ValueError, r"K is empty"),
    (dc.Conv2D, ((0, 2),), ValueError, r"kernel_size must be at least 1, got \(0, 2\)"),
    (dc.Conv2D, (-1,), ValueError, r"kernel_size must be at least 1"),
    (dc.Conv2D, ("3",), TypeError, r"kernel_size must be an int or a pair of ints"),
    (dc.learn_kernel, (None, None, (1, 2), 3e-2, 10, 0, "fancy"), ValueError, r"layer must be one of"),
    (dc.learn_kernel, (None, None, (1, 2), -1.0), ValueError, r"lr must be a positive number"),
    (dc.learn_kernel, (None, np.ones((6, 6))), ValueError, r"Y must have shape \(6, 7\), got \(6, 6\)"),
    (dc.learn_kernel, (None, None, (2, 2)), ValueError, r"Y is required"),
    (dc.learn_kernel, (np.ones((0, 3)),), ValueError, r"^X is empty \(shape \(0, 3\)\)"),
    (
        dc.learn_kernel,
        (None, None, (1, 2), 3e-2, 10, -1),
        ValueError,
        r"^seed must be a non-negative int or None, got -1$",
    ),
    (
        dc.learn_kernel,
        (None, None, (1, 2), 3e-2, 10, 1.5),
        TypeError,
        r"^seed must be a non-negative int or None, got 1.5$",
    ),
    (dc.learn_kernel, (None, None, (1, 2), 3e-2, 10, True), TypeError, r"^seed must be a non-negative int"),
]


@pytest.mark.parametrize(
    "call, args, error, message", BAD_INPUTS, ids=[f"{call.__name__}-{i}" for i, (call, *_) in enumerate(BAD_INPUTS)]
)
def test_bad_input_is_a_clear_error(backend, call, args, error, message):
    with pytest.raises(error, match=message) as caught:
        call(*args)
    assert type(caught.value) is error  # ours, not a framework's subclass


def test_bad_native_tensor_is_the_same_error(backend):
    with pytest.raises(ValueError, match=r"X must be 2-D"):
        dc.corr2d(dc.tensor(np.ones((1, 3, 3))), dc.tensor(np.ones((2, 2))))
    layer = dc.Conv2D((1, 2))
    with pytest.raises(ValueError, match=r"X must be 2-D"):
        layer(dc.tensor(np.ones((1, 1, 6, 8))))


@pytest.mark.parametrize("name", ["convolve2d", "corr2d_matmul", "native_corr2d"])
def test_every_tab_function_validates_its_input(backend, name):
    with pytest.raises(ValueError, match=r"K must be 2-D"):
        getattr(backend, name)(np.ones((3, 3)), np.ones(2))
    with pytest.raises(ValueError, match=r"K is empty"):
        getattr(backend, name)(np.ones((3, 3)), np.ones((0, 2)))


def test_dir_shows_the_api_not_the_names_d2lconv_imports_for_itself():
    shown = dir(dc)
    assert not {"Any", "annotations", "np", "names_inputs"} & set(shown)
    assert set(dc.__all__) <= set(shown) and "__version__" in shown and "backends" in shown
    assert dc.np is np  # still there for code that used it, just not advertised
