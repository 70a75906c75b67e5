"""Sections 6.3 to 6.5 on every backend: padding and stride, multiple channels, pooling.

The book's printed numbers, references computed another way (SciPy, ``conv_output_size``,
the batched ops), each framework's own pooling layer, and the shape errors.
"""

from __future__ import annotations

import re

import numpy as np
import pytest
from scipy.signal import correlate2d

import d2lconv as dc
from d2lconv import cli
from d2lconv.book import padding_channels_pooling as pcp


def as_array(x) -> np.ndarray:
    return np.asarray(dc.to_numpy(x), dtype=np.float64)


def native_type(tab) -> type:
    return type(tab.tensor([[0.0]]))


# --- 6.3 padding and stride ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("case", list(pcp.COMP_CONV2D_CASES))
def test_comp_conv2d_prints_the_book_shapes(backend, case):
    kernel_size, padding, stride, expected = pcp.COMP_CONV2D_CASES[case]
    shape = dc.comp_conv2d(kernel_size, padding, stride)
    assert shape == expected
    assert all(type(size) is int for size in shape)


def test_comp_conv2d_defaults_and_the_tensorflow_tabs_valid(backend):
    # The book's TensorFlow tab says padding='valid' for the last call: that is padding 0, and (2, 1).
    assert dc.comp_conv2d((3, 5), padding=0, stride=(3, 4)) == (2, 1)
    assert dc.comp_conv2d(3) == (6, 6)


@pytest.mark.parametrize(
    "kernel_size, padding, stride",
    [(2, 0, 1), ((4, 1), (1, 0), (2, 3)), (5, 2, 3), ((1, 3), (3, 2), 1), (8, 0, 1), ((2, 6), (1, 2), (5, 1))],
)
def test_comp_conv2d_agrees_with_the_output_size_formula(backend, kernel_size, padding, stride):
    assert dc.comp_conv2d(kernel_size, padding, stride) == dc.conv_output_size((8, 8), kernel_size, stride, padding)


# --- 6.4 multiple input and output channels ------------------------------------------------------------------------


def book_kernels() -> np.ndarray:
    K = np.asarray(pcp.MULTI_IN_K, np.float32)
    return np.stack((K, K + 1, K + 2), 0)


def test_corr2d_multi_in_prints_the_book_numbers(backend):
    Y = dc.corr2d_multi_in(pcp.MULTI_IN_X, pcp.MULTI_IN_K)
    assert isinstance(Y, native_type(backend))
    np.testing.assert_array_equal(as_array(Y), pcp.MULTI_IN_Y)


def test_corr2d_multi_in_out_prints_the_book_numbers(backend):
    assert book_kernels().shape == (3, 2, 2, 2)
    Y = dc.corr2d_multi_in_out(pcp.MULTI_IN_X, book_kernels())
    assert isinstance(Y, native_type(backend))
    np.testing.assert_array_equal(as_array(Y), pcp.MULTI_IN_OUT_Y)


@pytest.mark.parametrize(
    "x_shape, k_shape", [((1, 5, 6), (2, 1, 3, 2)), ((3, 7, 4), (4, 3, 2, 4)), ((2, 4, 4), (1, 2, 4, 4))]
)
def test_multi_channel_corr2d_equals_scipy(backend, rng, x_shape, k_shape):
    X = rng.standard_normal(x_shape).astype(np.float32)
    K = rng.standard_normal(k_shape).astype(np.float32)
    expected = np.stack(
        [
            sum(
                correlate2d(X[c].astype(np.float64), K[o, c].astype(np.float64), mode="valid")
                for c in range(x_shape[0])
            )
            for o in range(k_shape[0])
        ]
    )
    np.testing.assert_allclose(as_array(dc.corr2d_multi_in_out(X, K)), expected, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(as_array(dc.corr2d_multi_in(X, K[0])), expected[0], rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("x_shape, c_out", [((3, 3, 3), 2), ((4, 5, 2), 6), ((1, 1, 1), 1)])
def test_1x1_form_equals_the_loop_form(backend, rng, x_shape, c_out):
    X = rng.standard_normal(x_shape).astype(np.float32)
    K = rng.standard_normal((c_out, x_shape[0], 1, 1)).astype(np.float32)
    Y1 = dc.corr2d_multi_in_out_1x1(X, K)
    assert isinstance(Y1, native_type(backend))
    Y2 = as_array(dc.corr2d_multi_in_out(X, K))
    assert as_array(Y1).shape == (c_out, *x_shape[1:])
    assert np.abs(as_array(Y1) - Y2).sum() < 1e-5  # the book's check
    np.testing.assert_allclose(
        as_array(Y1), np.einsum("oc,chw->ohw", K[:, :, 0, 0].astype(np.float64), X), rtol=1e-5, atol=1e-6
    )


# --- 6.5 pooling ---------------------------------------------------------------------------------------------------


def test_pool2d_prints_the_book_numbers(backend):
    Y = dc.pool2d(pcp.POOL_X, (2, 2))
    assert isinstance(Y, native_type(backend))
    np.testing.assert_array_equal(as_array(Y), pcp.POOL_MAX)
    np.testing.assert_array_equal(as_array(dc.pool2d(pcp.POOL_X, (2, 2), "avg")), pcp.POOL_AVG)


@pytest.mark.parametrize("shape, pool_size", [((5, 6), (2, 3)), ((4, 4), 3), ((3, 7), (3, 1)), ((2, 2), (2, 2))])
def test_pool2d_equals_the_batched_pooling(backend, rng, shape, pool_size):
    X = rng.standard_normal(shape).astype(np.float32) - 2.0  # negative values: no zero can pass as a maximum
    for mode, batched in (("max", dc.max_pool2d), ("avg", dc.avg_pool2d)):
        expected = as_array(batched(X[None, None], pool_size, stride=1))[0, 0]
        np.testing.assert_allclose(as_array(dc.pool2d(X, pool_size, mode)), expected, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("case", list(pcp.MAX_POOL_CASES))
def test_max_pool2d_prints_the_book_numbers(backend, case):
    kwargs, expected = pcp.MAX_POOL_CASES[case]
    np.testing.assert_array_equal(as_array(dc.max_pool2d(pcp.pool_input(), **kwargs)), [[expected]])


def test_max_pool2d_pools_each_channel_on_its_own(backend):
    Y = as_array(dc.max_pool2d(pcp.pool_input(2), 3, padding=1, stride=2))
    np.testing.assert_array_equal(Y, [[pcp.MAX_POOL_CASES["k3_p1_s2"][1], pcp.SECOND_CHANNEL_MAX]])


def framework_max_pool(name: str, X: np.ndarray, kernel, stride, padding, pad_value: float = -np.inf) -> np.ndarray:
    """The framework's own max-pooling layer on NCHW ``X``, called as its users call it.

    torch, MXNet and Paddle take the padding as an argument. Keras's ``MaxPool2D`` has only
    'valid' and 'same', so the input is padded by hand with ``pad_value`` first, as the book's
    TensorFlow tab does (with zeros); the book's JAX tab does the same with ``jnp.pad`` and
    ``nn.max_pool`` 'VALID' (flax's own ``padding=`` argument pads with -inf).
    """
    (ph, pw) = (padding, padding) if isinstance(padding, int) else padding
    if name == "torch":
        import torch

        return torch.nn.MaxPool2d(kernel, stride=stride, padding=padding)(torch.from_numpy(X)).numpy()
    if name == "mxnet":
        from mxnet import np as mnp
        from mxnet.gluon import nn

        return nn.MaxPool2D(kernel, strides=stride, padding=padding)(mnp.array(X)).asnumpy()
    if name == "paddle":
        import paddle

        return paddle.nn.MaxPool2D(kernel, stride=stride, padding=padding)(paddle.to_tensor(X)).numpy()
    nhwc = X.transpose(0, 2, 3, 1)
    if name == "tensorflow":
        import tensorflow as tf

        padded = tf.pad(nhwc, [[0, 0], [ph, ph], [pw, pw], [0, 0]], constant_values=pad_value)
        Y = tf.keras.layers.MaxPool2D(pool_size=kernel, strides=stride, padding="valid")(padded).numpy()
    elif name == "jax":
        from flax import linen as nn
        from jax import numpy as jnp

        pairs = lambda v: (v, v) if isinstance(v, int) else tuple(v)  # noqa: E731
        padded = jnp.pad(nhwc, ((0, 0), (ph, ph), (pw, pw), (0, 0)), constant_values=pad_value)
        Y = np.asarray(nn.max_pool(padded, window_shape=pairs(kernel), strides=pairs(stride), padding="VALID"))
    else:
        pytest.skip(f"{name} has no pooling layer of its own; its max_pool2d is the reference")
    return Y.transpose(0, 3, 1, 2)


# (kernel, stride, padding) of the book's three layer calls, and two more
LAYER_CASES = [(3, 3, 0), (3, 2, 1), ((2, 3), (2, 3), (0, 1)), (2, 1, 1), ((3, 2), (1, 2), (1, 0))]


@pytest.mark.parametrize("kernel, stride, padding", LAYER_CASES)
def test_the_frameworks_own_pooling_layer_equals_max_pool2d(backend, rng, kernel, stride, padding):
    for X in (pcp.pool_input(2), rng.standard_normal((2, 3, 5, 6)).astype(np.float32) - 3.0):
        expected = as_array(dc.max_pool2d(X, kernel, stride=stride, padding=padding))
        np.testing.assert_array_equal(framework_max_pool(backend.NAME, X, kernel, stride, padding), expected)


@pytest.mark.parametrize("kernel, stride, padding", [case for case in LAYER_CASES if case[2]])
def test_zero_padding_is_right_only_for_non_negative_inputs(backend, kernel, stride, padding):
    # The book's TensorFlow and JAX tabs pad with zeros before pooling: right on arange(16), wrong below zero.
    if backend.NAME not in ("tensorflow", "jax"):
        pytest.skip("only the book's TensorFlow and JAX tabs pad with zeros before pooling")
    X = pcp.pool_input(2)
    book = framework_max_pool(backend.NAME, X, kernel, stride, padding, pad_value=0.0)
    np.testing.assert_array_equal(book, as_array(dc.max_pool2d(X, kernel, stride=stride, padding=padding)))
    negative = -X - 1
    book = framework_max_pool(backend.NAME, negative, kernel, stride, padding, pad_value=0.0)
    right = as_array(dc.max_pool2d(negative, kernel, stride=stride, padding=padding))
    assert (right < 0).all() and (book == 0).any()


def test_float64_stays_float64_and_wins_over_float32(backend, rng):
    X, K = rng.standard_normal((2, 4, 4)), rng.standard_normal((3, 2, 2, 2))
    K1 = K[:, :, :1, :1]
    outputs = [
        dc.corr2d_multi_in(X, K[0]),
        dc.corr2d_multi_in_out(X, K),
        dc.corr2d_multi_in_out_1x1(X, K1),
        dc.pool2d(X[0], (2, 2)),
        dc.pool2d(X[0], (2, 2), "avg"),
        dc.corr2d_multi_in_out(X.astype(np.float32), K),
        dc.corr2d_multi_in_out_1x1(X, K1.astype(np.float32)),
    ]
    assert [dc.to_numpy(Y).dtype for Y in outputs] == [np.float64] * len(outputs)
    expected = np.stack([sum(correlate2d(X[c], K[o, c], mode="valid") for c in range(2)) for o in range(3)])
    np.testing.assert_allclose(dc.to_numpy(outputs[1]), expected, rtol=1e-12)


# --- bad shapes: one message on every backend ----------------------------------------------------------------------

X3 = np.zeros((2, 3, 3), np.float32)
BAD_CALLS = {
    "multi_in_2d_x": (lambda: dc.corr2d_multi_in(X3[0], X3[:, :2, :2]), r"X must be 3-D \(channels, height, width\)"),
    "multi_in_channels": (lambda: dc.corr2d_multi_in(X3, np.zeros((3, 2, 2))), "X has 2 channels but K has 3"),
    "multi_in_kernel_too_big": (lambda: dc.corr2d_multi_in(X3, np.zeros((2, 4, 2))), "larger than X"),
    "multi_in_out_3d_k": (lambda: dc.corr2d_multi_in_out(X3, np.zeros((2, 2, 2))), "K must be 4-D"),
    "multi_in_out_channels": (
        lambda: dc.corr2d_multi_in_out(X3, np.zeros((3, 1, 2, 2))),
        r"X has 2 channels but K\[i\] has 1",
    ),
    "1x1_not_1x1": (lambda: dc.corr2d_multi_in_out_1x1(X3, np.zeros((3, 2, 2, 2))), "K must be a 1x1 kernel"),
    "1x1_channels": (lambda: dc.corr2d_multi_in_out_1x1(X3, np.zeros((3, 4, 1, 1))), "X has 2 channels but"),
    "1x1_2d_x": (lambda: dc.corr2d_multi_in_out_1x1(X3[0], np.zeros((3, 3, 1, 1))), "X must be 3-D"),
    "pool2d_mode": (lambda: dc.pool2d(X3[0], (2, 2), "min"), r"mode must be one of \('max', 'avg'\), got 'min'"),
    "pool2d_3d_x": (lambda: dc.pool2d(X3, (2, 2)), "X must be 2-D"),
    "pool2d_too_big": (lambda: dc.pool2d(X3[0], (4, 2)), r"pool_size \(4, 2\) is larger than X"),
    "comp_conv2d_too_big": (lambda: dc.comp_conv2d(9), "does not fit in the"),
    "comp_conv2d_stride_0": (lambda: dc.comp_conv2d(3, stride=0), "stride must be at least 1"),
    "comp_conv2d_negative_padding": (lambda: dc.comp_conv2d(3, padding=-1), "padding must be at least 0"),
}


@pytest.mark.parametrize("case", list(BAD_CALLS))
def test_bad_shapes_raise_the_same_value_error_everywhere(backend, case):
    call, message = BAD_CALLS[case]
    with pytest.raises(ValueError, match=message) as caught:
        call()
    with dc.use_backend("numpy"):
        with pytest.raises(ValueError) as on_numpy:
            call()
    assert str(caught.value) == str(on_numpy.value)


def test_public_api_lists_the_sections_functions():
    for name in ("comp_conv2d", "corr2d_multi_in", "corr2d_multi_in_out", "corr2d_multi_in_out_1x1", "pool2d"):
        assert name in dc.__all__ and callable(getattr(dc, name))


# --- the command line walks each section ---------------------------------------------------------------------------


@pytest.mark.parametrize("section, printed", [("6.3", "(2, 2)"), ("6.4", "[[ 56.  72.]"), ("6.5", "[[4. 5.]")])
def test_demo_walks_a_section(capsys, section, printed):
    assert cli.main(["demo", "--backend", "numpy", "--section", section]) == 0
    out = capsys.readouterr().out
    assert printed in out and "numpy" in out


def test_demo_rejects_an_unknown_section(capsys):
    assert cli.main(["demo", "--section", "6.9"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("d2lconv: error: argument --section: invalid choice: '6.9'") and err.count("\n") == 1


def test_demo_walks_batch_normalisation_on_the_backend(backend, capsys):
    """7.5: the definition's numbers on the small batch (batch mean [4, 5], biased variance 5), the moving
    statistics after one step and ten, and BN-LeNet's first losses falling while LeNet's sit at ln 10."""
    assert cli.main(["demo", "--backend", backend.NAME, "--section", "7.5"]) == 0
    out = capsys.readouterr().out
    y = (np.array([1, 3, 5, 7]) - 4) / np.sqrt(5 + 1e-5)
    assert f"[[{y[0]:.4f} {y[0]:.4f}]" in out and f" [ {y[2]:.4f} -{y[2]:.4f}]" in out
    assert "mean [0.4 0.5], variance [1.4 1.4]" in out
    ten = 1 - 0.9**10  # ten updates of weight 0.1 from 0; Paddle's momentum=0.1 keeps 0.1 ** 10 of the old value
    assert f"gives [{4 * ten:.3f} {5 * ten:.3f}]" in out and "of the old value: [4. 5.]" in out
    lenet, bn_lenet = (
        [float(v) for v in re.search(rf"{net} +\(lr [\d.]+\): (.*)", out).group(1).split()]
        for net in ("lenet", "bn-lenet")
    )
    assert len(lenet) == len(bn_lenet) == 7
    assert all(abs(loss - np.log(10)) < 0.05 for loss in lenet[2:]) and bn_lenet[-1] < 0.3 * bn_lenet[0]


def test_demo_walks_resnet_on_the_backend(backend, capsys):
    """7.6: the book's Residual shapes and ResNet-18's summary, run block by block in the framework's layers."""
    assert cli.main(["demo", "--backend", backend.NAME, "--section", "7.6"]) == 0
    out = capsys.readouterr().out
    assert "Residual(3, 3)(X): (4, 3, 6, 6)" in out
    assert "Residual(3, 6, use_1x1conv=True, strides=2)(X): (4, 6, 3, 3)" in out
    printed = re.findall(r"Sequential output shape:\t \((.*)\)", out)
    assert printed == ["1, 64, 24, 24", "1, 64, 24, 24", "1, 128, 12, 12", "1, 256, 6, 6", "1, 512, 3, 3", "1, 10"]
    assert "own layers: the same shapes." in out
    assert "pads (2, 3) (top, bottom) and (0, 1)" in out
