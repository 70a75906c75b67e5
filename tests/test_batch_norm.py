"""Batch normalisation (d2l-en 8.5, d2l-zh 7.5) on every backend: the book's function, its gradient, its layer."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import LAYER_BASE, NATIVE_TENSOR, resolve

import d2lconv as dc
from d2lconv.book import batch_norm as bn
from d2lconv.core.conventions import momentum_kept, momentum_new_batch
from d2lconv.porting import FACTS

SHAPES = [(8, 5), (4, 3, 5, 6)]
NAMES = ("X", "gamma", "beta", "moving_mean", "moving_var")


def by_hand(X, gamma, beta, moving_mean, moving_var, eps, momentum, training):
    """The definition, channel by channel in float64: biased batch variance, momentum the new batch's weight."""
    X = X.astype(np.float64)
    Y, mean, var = np.empty_like(X), moving_mean.astype(np.float64), moving_var.astype(np.float64)
    for c in range(X.shape[1]):
        values = X[:, c]
        mu, sigma2 = (values.mean(), values.var()) if training else (moving_mean[c], moving_var[c])
        Y[:, c] = gamma[c] * (values - mu) / np.sqrt(sigma2 + eps) + beta[c]
        if training:
            mean[c] = (1 - momentum) * moving_mean[c] + momentum * values.mean()
            var[c] = (1 - momentum) * moving_var[c] + momentum * values.var()
    return Y, mean, var


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("training", [True, False])
@pytest.mark.parametrize("shape", SHAPES)
def test_batch_norm_matches_the_definition(backend, shape, training, dtype):
    inputs = bn.sample(3, shape, dtype)
    got = dc.batch_norm(*inputs.values(), eps=1e-5, momentum=0.1, training=training)
    want = by_hand(*inputs.values(), 1e-5, 0.1, training)
    tolerance = 1e-5 if dtype == np.float32 else 1e-12
    for name, g, w in zip(("Y", "moving_mean", "moving_var"), got, want, strict=True):
        assert isinstance(g, resolve(NATIVE_TENSOR[backend.NAME])), name
        assert dc.to_numpy(g).dtype == dtype, name
        assert dc.to_numpy(g).shape == w.shape, name
        np.testing.assert_allclose(dc.to_numpy(g), w, rtol=tolerance, atol=tolerance, err_msg=name)
    if not training:  # prediction mode returns the statistics unchanged
        np.testing.assert_array_equal(dc.to_numpy(got[1]), inputs["moving_mean"])


def test_batch_norm_keeps_the_statistics_shape(backend):
    """The book's (1, C, 1, 1) statistics come back as (1, C, 1, 1)."""
    inputs = bn.sample(4, (2, 3, 4, 4))
    for name in ("gamma", "beta", "moving_mean", "moving_var"):
        inputs[name] = inputs[name].reshape(1, 3, 1, 1)
    _, mean, var = dc.batch_norm(*inputs.values())
    assert dc.to_numpy(mean).shape == dc.to_numpy(var).shape == (1, 3, 1, 1)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("training", [True, False])
@pytest.mark.parametrize("shape", SHAPES)
def test_batch_norm_gradient_matches_numpys_hand_derived_one(backend, reference, shape, training, dtype):
    inputs = bn.sample(5, shape, dtype)
    grad_output = np.random.default_rng(6).standard_normal(shape).astype(dtype)
    kwargs = {"eps": 1e-5, "momentum": 0.1, "training": training}
    got = dc.vjp("batch_norm", *inputs.values(), grad_output=grad_output, **kwargs)
    want = reference.vjp("batch_norm", tuple(inputs.values()), grad_output, kwargs)
    tolerance = 1e-4 if dtype == np.float32 else 1e-10
    for name, g, w in zip(NAMES, got, want, strict=True):
        assert dc.to_numpy(g).dtype == dtype and dc.to_numpy(g).shape == np.shape(inputs[name]), name
        np.testing.assert_allclose(dc.to_numpy(g), w, rtol=tolerance, atol=tolerance, err_msg=name)


@pytest.mark.parametrize("training", [True, False])
@pytest.mark.parametrize("shape", SHAPES)
def test_numpys_hand_derived_gradient_matches_finite_differences(reference, shape, training):
    inputs = bn.sample(7, shape, np.float64)
    grad_output = np.random.default_rng(8).standard_normal(shape)
    kwargs = {"eps": 1e-5, "momentum": 0.1, "training": training}
    grads = reference.vjp("batch_norm", tuple(inputs.values()), grad_output, kwargs)
    step = 1e-6
    for position, name in enumerate(NAMES):
        numeric = np.zeros_like(inputs[name])
        for index in np.ndindex(numeric.shape):
            values = [value.copy() for value in inputs.values()]
            values[position][index] += step
            up = np.sum(reference.batch_norm(*values, **kwargs)[0] * grad_output)
            values[position][index] -= 2 * step
            down = np.sum(reference.batch_norm(*values, **kwargs)[0] * grad_output)
            numeric[index] = (up - down) / (2 * step)
        np.testing.assert_allclose(grads[position], numeric, rtol=1e-5, atol=1e-7, err_msg=name)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"momentum": -0.1}, r"momentum must be in \[0, 1\] .*got -0.1"),
        ({"momentum": 1.5}, r"momentum must be in \[0, 1\] .*got 1.5"),
        ({"eps": 0.0}, r"eps must be a positive number, got 0.0"),
        ({"eps": -1e-5}, r"eps must be a positive number, got -1e-05"),
        ({"gamma": np.ones(4)}, r"gamma must hold one value per channel \(3\), got shape \(4,\)"),
        ({"moving_var": np.ones((1, 4, 1, 1))}, r"moving_var must hold one value per channel \(3\), got shape"),
        ({"X": np.ones((2, 3, 4))}, r"X must be \(N, C\) or \(N, C, H, W\), got shape \(2, 3, 4\)"),
    ],
)
def test_bad_input_is_the_same_value_error_everywhere(backend, change, message):
    arguments = {**bn.sample(9, (2, 3, 4, 4)), "eps": 1e-5, "momentum": 0.1, **change}
    with pytest.raises(ValueError, match=r"^batch_norm: " + message):
        dc.batch_norm(**arguments)
    with pytest.raises(ValueError, match=r"^batch_norm: " + message):
        dc.vjp("batch_norm", *(arguments.pop(name) for name in NAMES), **arguments)


@pytest.mark.parametrize(("num_features", "num_dims"), [(0, 4), (3, 3), (2.5, 2)])
def test_bad_layer_arguments(backend, num_features, num_dims):
    with pytest.raises(ValueError, match=r"^BatchNorm: num_(features|dims) must be"):
        dc.BatchNorm(num_features, num_dims)


def test_momentum_conventions_map_both_ways():
    assert momentum_kept(0.1) == pytest.approx(0.9) and momentum_new_batch(momentum_kept(0.1)) == pytest.approx(0.1)
    assert FACTS["numpy"].batch_norm.momentum == FACTS["torch"].batch_norm.momentum == "new"  # d2lconv's is torch's
    assert FACTS["tensorflow"].batch_norm.momentum == FACTS["jax"].batch_norm.momentum == "kept"
    conventions = bn.momentum_conventions(facts for name, facts in FACTS.items() if name != "numpy")
    assert conventions["d2l-en from scratch (JAX tab)"] == conventions["d2l-zh from scratch (every tab)"] == "kept"
    assert conventions["d2lconv"] == conventions["PyTorch's own layer"] == "new"
    assert conventions["Keras's own layer"] == conventions["ONNX's own layer"] == "kept"
    inputs = bn.sample(10, (4, 3, 2, 2), np.float64)
    batch_mean = inputs["X"].mean(axis=(0, 2, 3))
    with dc.use_backend("numpy"):
        _, mean, _ = dc.batch_norm(*inputs.values(), momentum=0.1)
    kept = momentum_kept(0.1)  # the same update, written as Keras/Flax/Paddle/Gluon write it
    np.testing.assert_allclose(mean, kept * inputs["moving_mean"] + (1 - kept) * batch_mean, rtol=1e-12)


def run_layer(backend_name: str, layer, X: np.ndarray, training: bool) -> np.ndarray:
    """One forward pass of a BatchNorm layer in the framework's own way of choosing the mode; NCHW in and out."""
    tab = dc.load_backend(backend_name)
    if backend_name in ("numpy", "torch", "paddle"):
        layer.train(training)
        return dc.to_numpy(layer(tab.tensor(X)))
    if backend_name == "mxnet":
        from mxnet import autograd

        with autograd.record(train_mode=training):
            return dc.to_numpy(layer(tab.tensor(X)))
    nhwc = X.transpose(0, 2, 3, 1) if X.ndim == 4 else X
    if backend_name == "tensorflow":
        Y = dc.to_numpy(layer(tab.tensor(nhwc), training=training))
    else:
        raise AssertionError(backend_name)
    return Y.transpose(0, 3, 1, 2) if X.ndim == 4 else Y


def layer_statistics(backend_name: str, layer) -> tuple[np.ndarray, np.ndarray]:
    if backend_name == "tensorflow":
        return dc.to_numpy(layer.moving_mean).ravel(), dc.to_numpy(layer.moving_variance).ravel()
    return dc.to_numpy(layer.moving_mean).ravel(), dc.to_numpy(layer.moving_var).ravel()


@pytest.mark.parametrize("shape", SHAPES)
def test_the_layer_trains_and_predicts_as_the_function(backend, shape):
    """Two training passes then one prediction pass of the layer (gamma 1, beta 0) against the function."""
    X1, X2 = (bn.sample(seed, shape)["X"] for seed in (11, 12))
    layer = dc.BatchNorm(shape[1], len(shape))
    if backend.NAME in LAYER_BASE:
        assert isinstance(layer, resolve(LAYER_BASE[backend.NAME]))
    ones, zeros = np.ones(shape[1], np.float32), np.zeros(shape[1], np.float32)
    mean, var = zeros, ones
    if backend.NAME == "jax":
        import jax

        nhwc = [X.transpose(0, 2, 3, 1) if X.ndim == 4 else X for X in (X1, X2)]
        variables = layer.init(jax.random.PRNGKey(0), nhwc[0])
        outputs = []
        for X in nhwc:
            Y, updates = layer.apply(variables, X, mutable=["batch_stats"])
            variables = {**variables, **updates}
            outputs.append(np.asarray(Y))
        predicted = np.asarray(layer.clone(deterministic=True).apply(variables, nhwc[1]))
        outputs.append(predicted)
        outputs = [Y.transpose(0, 3, 1, 2) if Y.ndim == 4 else Y for Y in outputs]
        stats = variables["batch_stats"]
        got_mean, got_var = np.asarray(stats["moving_mean"]).ravel(), np.asarray(stats["moving_var"]).ravel()
    else:
        outputs = [run_layer(backend.NAME, layer, X, True) for X in (X1, X2)]
        outputs.append(run_layer(backend.NAME, layer, X2, False))
        got_mean, got_var = layer_statistics(backend.NAME, layer)
    for index, X in enumerate((X1, X2)):
        Y, mean, var = by_hand(X, ones, zeros, mean, var, bn.EPS, bn.MOMENTUM, True)
        np.testing.assert_allclose(outputs[index], Y, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(got_mean, mean, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(got_var, var, rtol=1e-5, atol=1e-6)
    Y, _, _ = by_hand(X2, ones, zeros, mean, var, bn.EPS, bn.MOMENTUM, False)
    np.testing.assert_allclose(outputs[2], Y, rtol=1e-4, atol=1e-4)
