"""The NumPy reference's hand-derived backward passes and its dtype policy.

Every backward pass is checked against central finite differences in float64 on
hypothesis-drawn shapes and arguments (every padding form, stride, dilation, groups,
output_padding, ceil mode, count_include_pad); the max-pool tie rule on constructed ties;
the adjoint identity between conv2d and conv_transpose2d; float64 kept everywhere.
"""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from scipy import signal

import d2lconv as dc
from d2lconv.core.args import conv2d_args, conv_transpose2d_args, explicit_padding, pool2d_args

tab = dc.load_backend("numpy")


def public(name):
    """d2lconv's public function ``name`` run on the NumPy tab (whose ops take the explicit arguments)."""
    function = getattr(dc, name)

    def call(*args, **kwargs):
        with dc.use_backend("numpy"):
            return function(*args, **kwargs)

    return call


FINITE = {"rtol": 1e-7, "atol": 1e-9}
FLOAT64 = {"rtol": 1e-12, "atol": 1e-12}

small = st.integers(1, 3)
pairs = st.one_of(small, st.tuples(small, small))
dilations = st.one_of(st.integers(1, 2), st.tuples(st.integers(1, 2), st.integers(1, 2)))
pads = st.integers(0, 2)
paddings = st.one_of(
    pads,
    st.tuples(pads, pads),
    st.tuples(st.tuples(pads, pads), st.tuples(pads, pads)),
    st.sampled_from(["valid", "same"]),
)


def directional_difference(op, inputs, index, direction, dy, kwargs, step=1e-5):
    """Central difference of ``sum(op(*inputs, **kwargs) * dy)`` along ``direction`` in ``inputs[index]``."""

    def loss(shift):
        shifted = list(inputs)
        shifted[index] = inputs[index] + shift * direction
        return np.vdot(op(*shifted, **kwargs), dy)

    return (loss(step) - loss(-step)) / (2 * step)


def check_against_finite_differences(name, inputs, kwargs, seed, directions=3):
    """vjp of ``name`` (a random grad_output, float64) against central finite differences for every array
    input: <gradient, v> along random directions v (as jax.test_util.check_grads does), and element by
    element for small inputs."""
    op, rng = public(name), np.random.default_rng(seed)
    dy = rng.standard_normal(op(*inputs, **kwargs).shape)
    grads = tab.vjp(name, inputs, dy, kwargs)
    assert len(grads) == len(inputs)
    for index, (x, grad) in enumerate(zip(inputs, grads, strict=True)):
        if not isinstance(x, np.ndarray):
            assert grad is None
            continue
        assert grad.shape == x.shape and grad.dtype == np.float64
        basis = [np.eye(x.size)[i].reshape(x.shape) for i in range(x.size)] if x.size <= 12 else []
        for v in [rng.standard_normal(x.shape) for _ in range(directions)] + basis:
            np.testing.assert_allclose(
                np.vdot(grad, v),
                directional_difference(op, inputs, index, v, dy, kwargs),
                **FINITE,
                err_msg=f"{name} input {index}, {kwargs}",
            )


def normal(seed, *shape):
    return np.random.default_rng(seed).standard_normal(shape)


# --- every backward pass against finite differences ---------------------------------------------


@settings(max_examples=20, deadline=None)
@given(h=st.integers(1, 6), w=st.integers(1, 6), kh=small, kw=small, seed=st.integers(0, 2**16), convolve=st.booleans())
def test_corr2d_and_convolve2d_backward(h, w, kh, kw, seed, convolve):
    X, K = normal(seed, kh + h - 1, kw + w - 1), normal(seed + 1, kh, kw)
    check_against_finite_differences("convolve2d" if convolve else "corr2d", (X, K), {}, seed)


@settings(max_examples=20, deadline=None)
@given(
    n=st.integers(1, 2),
    groups=small,
    cg=st.integers(1, 2),
    og=st.integers(1, 2),
    kh=small,
    kw=small,
    extra_h=st.integers(0, 3),
    extra_w=st.integers(0, 3),
    stride=pairs,
    padding=paddings,
    dilation=dilations,
    bias=st.booleans(),
    seed=st.integers(0, 2**16),
)
def test_conv2d_backward(n, groups, cg, og, kh, kw, extra_h, extra_w, stride, padding, dilation, bias, seed):
    dh, dw = (dilation, dilation) if isinstance(dilation, int) else dilation
    x = normal(seed, n, groups * cg, dh * (kh - 1) + 1 + extra_h, dw * (kw - 1) + 1 + extra_w)
    weight = normal(seed + 1, groups * og, cg, kh, kw)
    inputs = (x, weight, normal(seed + 2, groups * og) if bias else None)
    check_against_finite_differences(
        "conv2d", inputs, dict(stride=stride, padding=padding, dilation=dilation, groups=groups), seed
    )


@settings(max_examples=20, deadline=None)
@given(
    n=st.integers(1, 2),
    groups=st.integers(1, 2),
    cg=st.integers(1, 2),
    og=st.integers(1, 2),
    kh=small,
    kw=small,
    h=st.integers(1, 4),
    w=st.integers(1, 4),
    stride=pairs,
    padding=paddings,
    dilation=dilations,
    output_padding=st.tuples(st.integers(0, 2), st.integers(0, 2)),
    bias=st.booleans(),
    seed=st.integers(0, 2**16),
)
def test_conv_transpose2d_backward(
    n, groups, cg, og, kh, kw, h, w, stride, padding, dilation, output_padding, bias, seed
):
    x, weight = normal(seed, n, groups * cg, h, w), normal(seed + 1, groups * cg, og, kh, kw)
    kwargs = dict(stride=stride, padding=padding, output_padding=output_padding, dilation=dilation, groups=groups)
    try:
        conv_transpose2d_args(x.shape, weight.shape, None, **kwargs)
    except ValueError:  # output_padding too large, or nothing left after the crop
        assume(False)
    check_against_finite_differences(
        "conv_transpose2d", (x, weight, normal(seed + 2, groups * og) if bias else None), kwargs, seed
    )


pool_arguments = dict(
    n=st.integers(1, 2),
    c=st.integers(1, 2),
    h=st.integers(1, 7),
    w=st.integers(1, 7),
    kernel_size=pairs,
    stride=st.one_of(st.none(), pairs),
    padding=paddings,
    ceil_mode=st.booleans(),
    seed=st.integers(0, 2**16),
)


def pool_inputs(n, c, h, w, kernel_size, stride, padding, dilation, ceil_mode, seed):
    try:
        pool2d_args((n, c, h, w), kernel_size, stride, padding, dilation, ceil_mode)
    except ValueError:  # padding not smaller than the window, or no window fits
        assume(False)
    return normal(seed, n, c, h, w), dict(stride=stride, padding=padding, ceil_mode=ceil_mode)


@settings(max_examples=20, deadline=None)
@given(dilation=dilations, **pool_arguments)
def test_max_pool2d_backward(n, c, h, w, kernel_size, stride, padding, dilation, ceil_mode, seed):
    x, kwargs = pool_inputs(n, c, h, w, kernel_size, stride, padding, dilation, ceil_mode, seed)
    assume(np.isfinite(public("max_pool2d")(x, kernel_size, dilation=dilation, **kwargs)).all())  # a dilated window
    # may meet only padding (its maximum is -inf); torch refuses such padding
    check_against_finite_differences("max_pool2d", (x, kernel_size), dict(kwargs, dilation=dilation), seed)


@settings(max_examples=20, deadline=None)
@given(count_include_pad=st.booleans(), **pool_arguments)
def test_avg_pool2d_backward(n, c, h, w, kernel_size, stride, padding, ceil_mode, count_include_pad, seed):
    x, kwargs = pool_inputs(n, c, h, w, kernel_size, stride, padding, 1, ceil_mode, seed)
    check_against_finite_differences(
        "avg_pool2d", (x,), dict(kwargs, kernel_size=kernel_size, count_include_pad=count_include_pad), seed
    )


# --- max pooling ties ---------------------------------------------------------------------------


def test_max_pool_tie_goes_to_the_first_maximal_element_in_row_major_order():
    x = np.zeros((1, 1, 3, 3))  # every 2x2 window (stride 1) is a four-way tie
    (dx, _) = tab.vjp("max_pool2d", (x, 2), None, {"stride": 1})
    np.testing.assert_array_equal(dx[0, 0], [[1, 1, 0], [1, 1, 0], [0, 0, 0]])
    x = np.array([[[[1.0, 5.0, 2.0], [5.0, 5.0, 0.0]]]])  # one window, three tied maxima, second in row-major order
    (dx,) = tab.vjp("max_pool2d", (x,), [[[[7.0]]]], {"kernel_size": (2, 3)})
    np.testing.assert_array_equal(dx[0, 0], [[0, 7, 0], [0, 0, 0]])


def test_max_pool_padding_never_takes_the_gradient_and_a_nan_does():
    x = np.full((1, 1, 2, 2), -1e300)  # padding is -inf: the real elements win even when very negative
    (dx,) = tab.vjp("max_pool2d", (x,), None, {"kernel_size": 3, "stride": 2, "padding": 1})
    np.testing.assert_array_equal(dx[0, 0], [[1, 0], [0, 0]])
    x = np.array([[[[1.0, np.nan], [3.0, 2.0]]]])
    (dx,) = tab.vjp("max_pool2d", (x,), None, {"kernel_size": 2})
    np.testing.assert_array_equal(dx[0, 0], [[0, 1], [0, 0]])


# --- conv_transpose2d is the adjoint of conv2d --------------------------------------------------


@settings(max_examples=20, deadline=None)
@given(
    groups=st.integers(1, 2),
    cg=st.integers(1, 3),
    og=st.integers(1, 3),
    kh=small,
    kw=small,
    h=st.integers(3, 9),
    w=st.integers(3, 9),
    stride=pairs,
    padding=paddings,
    dilation=dilations,
    seed=st.integers(0, 2**16),
)
def test_adjoint_identity_in_float64(groups, cg, og, kh, kw, h, w, stride, padding, dilation, seed):
    """<conv2d(x, w), y> = <x, conv_transpose2d(y, w)>, and conv2d's input gradient is that transposed conv."""
    x, weight = normal(seed, 2, groups * cg, h, w), normal(seed + 1, groups * og, cg, kh, kw)
    try:
        args = conv2d_args(x.shape, weight.shape, None, stride, padding, dilation, groups)
    except ValueError:  # the kernel does not fit
        assume(False)
    top, bottom, left, right = explicit_padding(padding, (h, w), (kh, kw), args.stride, args.dilation)
    extent = [d * (k - 1) + 1 for k, d in zip((kh, kw), args.dilation, strict=True)]
    output_padding = tuple(
        size + before + after - ((o - 1) * s + e)
        for size, before, after, o, s, e in zip(
            (h, w), (top, left), (bottom, right), args.out_hw, args.stride, extent, strict=True
        )
    )
    y = public("conv2d")(x, weight, stride=stride, padding=padding, dilation=dilation, groups=groups)
    probe = normal(seed + 2, *y.shape)
    back = public("conv_transpose2d")(
        probe,
        weight,
        stride=stride,
        padding=((top, bottom), (left, right)),
        output_padding=output_padding,
        dilation=dilation,
        groups=groups,
    )
    assert back.shape == x.shape and back.dtype == np.float64
    # Both sides are sums of products that can cancel: the rounding bound scales with the sum of their sizes.
    magnitude = float(np.vdot(np.abs(y), np.abs(probe)))
    np.testing.assert_allclose(np.vdot(y, probe), np.vdot(x, back), rtol=0, atol=1e-12 * magnitude)
    dx, _ = tab.vjp(
        "conv2d", (x, weight), probe, dict(stride=stride, padding=padding, dilation=dilation, groups=groups)
    )
    np.testing.assert_allclose(dx, back, **FLOAT64)


# --- dtypes -------------------------------------------------------------------------------------

X64, W64 = normal(1, 2, 4, 6, 7), normal(2, 4, 2, 3, 2)
CALLS = [
    ("corr2d", (X64[0, 0], W64[0, 0]), {}),
    ("convolve2d", (X64[0, 0], W64[0, 0]), {}),
    ("conv2d", (X64, W64, normal(3, 4)), {"padding": "same", "groups": 2}),
    ("conv_transpose2d", (X64, W64, normal(3, 4)), {"stride": 2, "output_padding": 1, "groups": 2}),
    ("max_pool2d", (X64, 3), {"stride": 2, "padding": 1, "ceil_mode": True}),
    ("avg_pool2d", (X64, 2), {"count_include_pad": False, "padding": 1}),
]


@pytest.mark.parametrize("name, inputs, kwargs", CALLS, ids=[call[0] for call in CALLS])
def test_float64_is_kept_and_mixed_gives_float64(name, inputs, kwargs):
    op = public(name)
    y64 = op(*inputs, **kwargs)
    assert y64.dtype == np.float64
    assert all(g is None or g.dtype == np.float64 for g in tab.vjp(name, inputs, None, kwargs))
    as32 = [a.astype(np.float32) if isinstance(a, np.ndarray) else a for a in inputs]
    y32 = op(*as32, **kwargs)
    assert y32.dtype == np.float32
    np.testing.assert_allclose(y32, y64, rtol=1e-4, atol=1e-4)
    if not isinstance(inputs[1], np.ndarray):
        return  # pooling: one array input
    mixed = [as32[0], *inputs[1:]]  # float32 x, float64 weight: computed in float64
    assert op(*mixed, **kwargs).dtype == np.float64
    grads = tab.vjp(name, mixed, None, kwargs)
    assert grads[0].dtype == np.float32  # each gradient in its own input's dtype
    assert all(g is None or g.dtype == np.float64 for g in grads[1:])


def test_float64_agrees_with_a_float64_reference():
    x, weight = normal(4, 2, 3, 9, 8), normal(5, 4, 3, 3, 2)
    padded = np.pad(x, ((0, 0), (0, 0), (1, 2), (0, 1)))
    expected = np.array(
        [
            [sum(signal.correlate2d(padded[n, c], weight[o, c], "valid") for c in range(3)) for o in range(4)]
            for n in range(2)
        ]
    )
    np.testing.assert_allclose(public("conv2d")(x, weight, padding=((1, 2), (0, 1))), expected, **FLOAT64)
    assert tab.to_numpy(tab.corr2d(np.array([[2.0**24 + 1]]), np.ones((1, 1)))).item() == 2**24 + 1


def test_tensor_dtype_policy():
    assert tab.tensor(np.ones(2)).dtype == np.float64
    assert tab.tensor([1, 2]).dtype == np.float32
    assert tab.tensor([1.5, 2.0]).dtype == np.float32  # Python floats are float64 to NumPy, not to d2lconv
    assert public("conv2d")([[[[1.5]]]], np.ones((1, 1, 1, 1), np.float32)).dtype == np.float32
    assert tab.tensor(np.ones(2, np.float16)).dtype == np.float32
    assert tab.tensor([1, 2], dtype="float64").dtype == np.float64
    assert tab.tensor(np.ones(2), dtype="float32").dtype == np.float32
    assert tab.to_numpy(tab.tensor(np.ones(2))).dtype == np.float64
    with pytest.raises(TypeError, match="data must hold real numbers, got complex128"):
        tab.tensor(np.ones(2, complex))
    with pytest.raises(TypeError, match="x must hold real numbers, got <U1"):
        public("conv2d")(np.array([[[["a"]]]]), np.ones((1, 1, 1, 1)))
    with pytest.raises(ValueError, match="dtype must be one of"):
        tab.tensor([1.0], dtype="float16")


# --- grad_output --------------------------------------------------------------------------------


@pytest.mark.parametrize("name, inputs, kwargs", CALLS, ids=[call[0] for call in CALLS])
def test_grad_output_default_and_wrong_shape(name, inputs, kwargs):
    shape = public(name)(*inputs, **kwargs).shape
    for default, ones in zip(
        tab.vjp(name, inputs, None, kwargs), tab.vjp(name, inputs, np.ones(shape), kwargs), strict=True
    ):
        assert (default is None and ones is None) or np.array_equal(default, ones)
    wrong = shape[:-1] + (shape[-1] + 1,)
    with pytest.raises(ValueError, match=rf"grad_output must have shape \({shape[0]}, .*got \({wrong[0]}, "):
        tab.vjp(name, inputs, np.ones(wrong), kwargs)


# --- memory -------------------------------------------------------------------------------------


def test_conv2d_holds_one_im2col_buffer_at_a_time():
    x, weight = normal(6, 2, 16, 32, 32).astype(np.float32), normal(7, 16, 16, 3, 3).astype(np.float32)
    im2col = 2 * 16 * 9 * 32 * 32 * 4  # 9 times x: a second im2col-sized buffer would break the bound below
    for call in (
        lambda: public("conv2d")(x, weight, padding=1),
        lambda: tab.vjp("conv2d", (x, weight), None, {"padding": 1}),
        lambda: public("conv_transpose2d")(x, weight, padding=1),
        lambda: tab.vjp("conv_transpose2d", (x, weight), None, {"padding": 1}),
    ):
        tracemalloc.start()
        try:
            call()
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        assert im2col < peak < im2col + 6 * x.nbytes  # plus x-sized copies (padding, upstream, gradients)


@pytest.mark.parametrize(
    "name, inputs, kwargs",
    [
        ("conv2d", (np.zeros((0, 4, 6, 6)), np.ones((2, 4, 3, 3)), np.ones(2)), {"padding": 1}),
        ("conv2d", (np.zeros((2, 0, 6, 6)), np.ones((3, 0, 3, 3))), {}),
        ("conv_transpose2d", (np.zeros((0, 4, 6, 6)), np.ones((4, 2, 3, 3)), np.ones(2)), {"stride": 2}),
        ("conv_transpose2d", (np.zeros((2, 0, 6, 6)), np.ones((0, 2, 3, 3))), {}),
        ("max_pool2d", (np.zeros((0, 4, 6, 6)), 2), {}),
        ("avg_pool2d", (np.zeros((2, 0, 6, 6)), 2), {}),
    ],
    ids=lambda value: value if isinstance(value, str) else "",
)
def test_empty_batch_or_channels(name, inputs, kwargs):
    y = public(name)(*inputs, **kwargs)  # no input channels: sums of nothing, zeros
    assert not y.any() and y.dtype == np.float64
    for x, grad in zip(inputs, tab.vjp(name, inputs, None, kwargs), strict=True):
        assert grad is None if not isinstance(x, np.ndarray) else (grad.shape == x.shape and not grad.any())
