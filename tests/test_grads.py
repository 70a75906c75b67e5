"""Gradients: ``dc.vjp`` on every backend against the NumPy reference's hand-derived backward passes,
``torch.autograd.gradcheck`` on d2lconv's ops, and the errors of a bad call."""

from __future__ import annotations

import numpy as np
import pytest

import d2lconv as dc
from d2lconv.book import ops as cases
from d2lconv.core.checks import TENSOR_INPUTS
from d2lconv.harness.parity.checks import ATOL, ATOL64, RTOL, RTOL64
from d2lconv.harness.parity.checks import ops as ops_checks


def reference_vjp(reference, case: cases.Case, dtype) -> tuple:
    """The NumPy reference's gradients of ``case``, as NumPy arrays."""
    return reference.vjp(case.op, case.inputs(dtype), case.grad_output(dtype), case.kwargs)


def assert_gradients_equal(grads, expected, dtype, rtol, atol):
    assert len(grads) == len(expected)
    for grad, want in zip(grads, expected, strict=True):
        if want is None:
            assert grad is None
            continue
        got = dc.to_numpy(grad)
        assert got.dtype == dtype and got.shape == want.shape
        np.testing.assert_allclose(got, want, rtol=rtol, atol=atol)


@pytest.mark.parametrize("case", cases.CASES, ids=lambda case: case.key)
def test_vjp_matches_the_reference(backend, reference, case):
    grads = dc.vjp(case.op, *case.inputs(), grad_output=case.grad_output(), **case.kwargs)
    assert_gradients_equal(grads, reference_vjp(reference, case, np.float32), np.float32, RTOL, ATOL)


@pytest.mark.parametrize("case", cases.CASES, ids=lambda case: case.key)
def test_vjp_in_float64_matches_the_reference_to_1e10(backend, reference, case):
    inputs = case.inputs(np.float64)
    grads = dc.vjp(case.op, *inputs, grad_output=case.grad_output(np.float64), **case.kwargs)
    assert_gradients_equal(grads, reference_vjp(reference, case, np.float64), np.float64, RTOL64, ATOL64)
    forward = dc.to_numpy(getattr(dc, case.op)(*inputs, **case.kwargs))
    with dc.use_backend("numpy"):
        expected = getattr(dc, case.op)(*inputs, **case.kwargs)
    assert forward.dtype == np.float64
    np.testing.assert_allclose(forward, expected, rtol=RTOL64, atol=ATOL64)


@pytest.mark.parametrize("case", cases.CASES, ids=lambda case: case.key)
def test_vjp_in_nhwc_is_the_nchw_gradient_transposed(backend, case):
    """Every case's gradients with NHWC inputs (and HWIO weights) equal the NCHW ones transposed,
    in float32 and (to 1e-12) in float64; the NCHW ones from the NumPy reference."""
    for dtype, rtol, atol in ((np.float32, RTOL, ATOL), (np.float64, 1e-12, 1e-12)):
        grads = ops_checks.run_vjp(case, dtype, data_format="NHWC")
        with dc.use_backend("numpy"):
            expected = ops_checks.run_vjp(case, dtype)
        for name, want in expected.items():
            if want is None:
                assert grads[name] is None
                continue
            assert grads[name].dtype == dtype and grads[name].shape == want.shape, name
            np.testing.assert_allclose(grads[name], want, rtol=rtol, atol=atol, err_msg=name)


def test_vjp_of_the_2d_ops(backend, reference, rng):
    X, K = rng.standard_normal((7, 9)), rng.standard_normal((3, 2))
    G = rng.standard_normal((5, 8))
    for op in ("corr2d", "convolve2d"):
        expected = reference.vjp(op, (X, K), G)
        assert_gradients_equal(dc.vjp(op, X, K, grad_output=G), expected, np.float64, RTOL64, ATOL64)
        assert_gradients_equal(
            dc.vjp(op, X.astype(np.float32), K.astype(np.float32), grad_output=G),
            [e.astype(np.float32) for e in expected],
            np.float32,
            RTOL,
            1e-4,
        )


def test_op_given_as_the_function_and_grad_output_default_ones(backend, rng):
    x, w = rng.standard_normal((1, 2, 5, 5)), rng.standard_normal((3, 2, 3, 3))
    by_function = dc.vjp(dc.conv2d, x, w, None, padding=1)
    by_name = dc.vjp("conv2d", x, w, None, grad_output=np.ones((1, 3, 5, 5)), padding=1)
    assert by_function[2] is None and by_name[2] is None
    for ours, theirs in zip(by_function[:2], by_name[:2], strict=True):
        np.testing.assert_array_equal(dc.to_numpy(ours), dc.to_numpy(theirs))
    # the gradient of sum(avg_pool2d(x, 2)) is 1/4 everywhere a window covers
    np.testing.assert_array_equal(dc.to_numpy(dc.vjp("avg_pool2d", np.ones((1, 1, 4, 5)), 2)[0])[0, 0, :, :4], 0.25)


def test_vjp_accepts_native_tensors_and_leaves_them_alone(backend, rng):
    x = dc.tensor(rng.standard_normal((1, 1, 4, 4)))
    before = dc.to_numpy(x).copy()
    (dx,) = dc.vjp("max_pool2d", x, kernel_size=2)
    (again,) = dc.vjp("max_pool2d", x, kernel_size=2)
    np.testing.assert_array_equal(dc.to_numpy(dx), dc.to_numpy(again))  # nothing accumulated between calls
    np.testing.assert_array_equal(dc.to_numpy(x), before)
    assert dc.to_numpy(dx).sum() == 4


def test_wrong_grad_output_shape_names_both_shapes(backend):
    with pytest.raises(ValueError, match=r"^grad_output must have shape \(1, 3, 3, 3\), got \(3, 3\)$"):
        dc.vjp("conv2d", np.ones((1, 2, 5, 5)), np.ones((3, 2, 3, 3)), grad_output=np.ones((3, 3)))
    with pytest.raises(ValueError, match=r"^grad_output must have shape \(2, 2\), got \(2, 3\)$"):
        dc.vjp("corr2d", np.ones((3, 3)), np.ones((2, 2)), grad_output=np.ones((2, 3)))


@pytest.mark.parametrize("op", ["conv3d", "corr2d_loop", np.max, None])
def test_unknown_op_lists_the_ops(backend, op):
    with pytest.raises(
        ValueError,
        match=r"^op must be one of corr2d, convolve2d, conv2d, conv_transpose2d, "
        r"max_pool2d, avg_pool2d, batch_norm \(a name or the d2lconv function\), got ",
    ):
        dc.vjp(op, np.ones((3, 3)), np.ones((2, 2)))
    assert set(TENSOR_INPUTS) == {
        "corr2d",
        "convolve2d",
        "conv2d",
        "conv_transpose2d",
        "max_pool2d",
        "avg_pool2d",
        "batch_norm",
    }


def test_a_bad_input_is_the_ops_own_error(backend):
    with pytest.raises(ValueError, match=r"K must be 2-D"):
        dc.vjp("corr2d", np.ones((3, 3)), np.ones(2))


# How each backend's max pooling splits the gradient of a window with tied maxima (README, conventions):
# "first" all to the first maximum in row-major order, "split" equally, "every" the whole to each maximum.
TIE_RULES = {
    "numpy": ("first", "first"),
    "torch": ("first", "first"),
    "tensorflow": ("first", "split"),
    "mxnet": ("first", "every"),
    "paddle": ("first", "split"),
    "jax": ("first", "first"),
}


def expected_tie_gradient(rule: str, dilation: int) -> np.ndarray:
    x = cases.tie_windows(dilation)
    span = dilation + 1
    grad = np.zeros_like(x)
    for window, places in enumerate(cases.TIES):
        chosen = places[:1] if rule == "first" else places
        for row, col in chosen:
            grad[0, 0, row * dilation, span * window + col * dilation] = 1 / len(places) if rule == "split" else 1
    return grad


def test_max_pool_tie_rule_is_the_documented_one(backend):
    if backend.NAME not in TIE_RULES:
        pytest.skip(f"no documented tie rule for {backend.NAME}")
    measured = ops_checks.max_pool_ties()
    for dilation, rule in zip((1, 2), TIE_RULES[backend.NAME], strict=True):
        np.testing.assert_array_equal(
            dc.to_numpy(measured[f"dilation{dilation}"]), expected_tie_gradient(rule, dilation)
        )


def test_gradcheck_passes_on_every_op():
    """``torch.autograd.gradcheck`` (first order) on d2lconv's ops with float64 torch tensors: in full on
    the 2-D ops, in its fast mode (a random direction per input, to keep the run short) on every case."""
    torch = pytest.importorskip("torch")
    if "torch" not in dc.available_backends():
        pytest.skip("torch is not installed")
    with dc.use_backend("torch"):
        rng = np.random.default_rng(5)
        X, K = (torch.from_numpy(rng.standard_normal(shape)).requires_grad_() for shape in ((6, 7), (3, 2)))
        assert torch.autograd.gradcheck(dc.corr2d, (X, K))
        assert torch.autograd.gradcheck(dc.convolve2d, (X, K))
        for case in cases.CASES:
            inputs = [None if a is None else torch.from_numpy(a).requires_grad_() for a in case.inputs(np.float64)]
            op = getattr(dc, case.op)
            assert torch.autograd.gradcheck(
                lambda *args, op=op, case=case: op(*args, **case.kwargs), inputs, fast_mode=True
            ), case.key
