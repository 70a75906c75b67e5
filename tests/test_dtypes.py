"""The dtype policy: float32 by default, float64 kept as float64 through every op and gradient,
float64 where float32 and float64 mix, ``dtype=`` forcing one, and non-real data refused."""

from __future__ import annotations

import numpy as np
import pytest

import d2lconv as dc
from d2lconv.book.ops import channels_last

BIG = 2.0**24 + 1  # the first integer float32 cannot hold


def dtype_of(x) -> np.dtype:
    return dc.to_numpy(x).dtype


def test_tensor_dtypes(backend):
    assert dtype_of(dc.tensor([[1.0, 2.0]])) == np.float32
    assert dtype_of(dc.tensor(np.arange(4))) == np.float32
    assert dtype_of(dc.tensor(np.array([True, False]))) == np.float32
    assert dtype_of(dc.tensor(np.ones(3, np.float16))) == np.float32
    assert dtype_of(dc.tensor(np.ones(3))) == np.float64
    assert dtype_of(dc.tensor(dc.tensor(np.ones(3)))) == np.float64  # a native float64 tensor stays float64
    assert dtype_of(dc.tensor([[1.0, 2.0]], dtype="float64")) == np.float64
    assert dtype_of(dc.tensor(np.ones(3), dtype="float32")) == np.float32
    assert dtype_of(dc.tensor(dc.tensor(np.ones(3)), dtype="float32")) == np.float32
    assert dc.to_numpy(dc.tensor(np.array([BIG])))[0] == BIG
    assert dc.to_numpy(dc.tensor([BIG], dtype="float64"))[0] == BIG
    assert dc.to_numpy(dc.tensor([BIG]))[0] == 2.0**24  # float32 by default, as documented


def test_bad_dtype_and_non_real_data(backend):
    with pytest.raises(ValueError, match=r"^dtype must be one of \('float32', 'float64'\), got 'int8'$"):
        dc.tensor([1.0], dtype="int8")
    with pytest.raises(TypeError, match=r"data must hold real numbers, got complex128 data"):
        dc.tensor(np.ones(2, complex))
    with pytest.raises(TypeError, match=r"data must hold real numbers, got <U1 data"):
        dc.tensor(["a"])


def every_op(dtype, data_format="NCHW"):
    """(name, call) for every op of the chapter, on inputs of ``dtype`` holding BIG where it matters; the
    batched ones in ``data_format`` (BIG is element [0, 0, 0, 0] of the input and of the result in both)."""
    rng = np.random.default_rng(3)
    X = rng.standard_normal((5, 6)).astype(dtype)
    X[0, 0] = BIG
    K = np.array([[1.0, 0.0], [0.0, 0.0]], dtype)  # corr2d(X, K)[0, 0] == X[0, 0]: BIG survives or not
    x = rng.standard_normal((1, 2, 6, 6)).astype(dtype)
    x[0, 0, 0, 0] = BIG
    w = np.zeros((2, 2, 3, 3), dtype)
    w[0, 0, 0, 0] = 1.0
    if data_format == "NHWC":
        x, w = channels_last(x), channels_last(w, "weight")
    layout = {"data_format": data_format}
    return [
        ("corr2d", lambda: dc.corr2d(X, K), BIG),
        ("corr2d_loop", lambda: dc.corr2d_loop(X, K), BIG),
        ("convolve2d", lambda: dc.convolve2d(X, K[::-1, ::-1].copy()), BIG),
        ("corr2d_matmul", lambda: dc.corr2d_matmul(X, K), BIG),
        ("conv2d", lambda: dc.conv2d(x, w, np.zeros(2, dtype), **layout), BIG),
        ("conv_transpose2d", lambda: dc.conv_transpose2d(x, w, np.zeros(2, dtype), **layout), BIG),
        ("max_pool2d", lambda: dc.max_pool2d(x, 2, **layout), BIG),
        ("avg_pool2d", lambda: dc.avg_pool2d(x, 1, **layout), BIG),
    ]


@pytest.mark.parametrize("data_format", ["NCHW", "NHWC"])
def test_float64_kept_through_every_op(backend, data_format):
    for name, call, first in every_op(np.float64, data_format):
        y = dc.to_numpy(call())
        assert y.dtype == np.float64, name
        assert y.reshape(-1)[0] == first, name  # float32 would give 2**24
    for name, call, _ in every_op(np.float32, data_format):
        assert dtype_of(call()) == np.float32, name


@pytest.mark.parametrize("data_format", ["NCHW", "NHWC"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_every_gradient_keeps_its_inputs_dtype(backend, dtype, data_format):
    rng = np.random.default_rng(4)
    x, w, b = (rng.standard_normal(shape).astype(dtype) for shape in ((1, 2, 6, 6), (2, 2, 3, 3), (2,)))
    if data_format == "NHWC":
        x, w = channels_last(x), channels_last(w, "weight")
    X, K = rng.standard_normal((5, 6)).astype(dtype), rng.standard_normal((2, 2)).astype(dtype)
    layout = {"data_format": data_format}
    calls = [
        ("corr2d", (X, K), {}),
        ("convolve2d", (X, K), {}),
        ("conv2d", (x, w, b), {"padding": 1, **layout}),
        ("conv_transpose2d", (x, w, b), {"stride": 2, **layout}),
        ("max_pool2d", (x,), {"kernel_size": 2, **layout}),
        ("avg_pool2d", (x,), {"kernel_size": 3, "padding": 1, **layout}),
    ]
    for op, inputs, kwargs in calls:
        grads = dc.vjp(op, *inputs, **kwargs)
        assert [dtype_of(g) for g in grads] == [dtype] * len(inputs), op
        assert [tuple(g.shape) for g in grads] == [a.shape for a in inputs], op


def test_mixed_float32_and_float64_give_float64(backend):
    rng = np.random.default_rng(5)
    x32 = rng.standard_normal((1, 2, 5, 5)).astype(np.float32)
    w64 = rng.standard_normal((3, 2, 3, 3))
    b32 = np.zeros(3, np.float32)
    y = dc.conv2d(x32, w64, b32)
    assert dtype_of(y) == np.float64
    with dc.use_backend("numpy"):
        expected = dc.conv2d(x32.astype(np.float64), w64)
    np.testing.assert_allclose(dc.to_numpy(y), expected, rtol=1e-10, atol=1e-12)
    assert dtype_of(dc.corr2d(x32[0, 0], w64[0, 0])) == np.float64
    assert dtype_of(dc.conv2d(dc.tensor(x32), dc.tensor(w64))) == np.float64  # native tensors too
    dx, dw, db = dc.vjp("conv2d", x32, w64, b32)
    assert (dtype_of(dx), dtype_of(dw), dtype_of(db)) == (np.float32, np.float64, np.float32)
    y = dc.conv2d(channels_last(x32), channels_last(w64, "weight"), b32, data_format="NHWC")
    assert dtype_of(y) == np.float64
    np.testing.assert_allclose(dc.to_numpy(y), channels_last(expected), rtol=1e-10, atol=1e-12)
    dx, dw, db = dc.vjp("conv2d", channels_last(x32), channels_last(w64, "weight"), b32, data_format="NHWC")
    assert (dtype_of(dx), dtype_of(dw), dtype_of(db)) == (np.float32, np.float64, np.float32)
