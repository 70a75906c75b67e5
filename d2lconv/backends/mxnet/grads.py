"""Gradients of every op in the mxnet tab: ``autograd.record()`` and ``backward``, the vector-Jacobian product."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from mxnet import autograd
from mxnet import np as mnp

from ...core.checks import OPS as TENSOR_INPUTS
from ...core.checks import check_same_shape, dtype_name, float_dtype
from .batch_norm import batch_norm
from .conv_layer import convolve2d, corr2d
from .ops import avg_pool2d, conv2d, conv_transpose2d, max_pool2d, tensor


def _batch_norm_output(*inputs: Any, **kwargs: Any) -> Any:
    """``batch_norm``'s Y, the output ``vjp`` differentiates (the moving statistics it returns are not)."""
    return batch_norm(*inputs, **kwargs)[0]


FUNCTIONS: dict[str, Callable[..., Any]] = {
    "corr2d": corr2d,
    "convolve2d": convolve2d,
    "conv2d": conv2d,
    "conv_transpose2d": conv_transpose2d,
    "max_pool2d": max_pool2d,
    "avg_pool2d": avg_pool2d,
    "batch_norm": _batch_norm_output,
}


def vjp(op: str, inputs: Any, grad_output: Any = None, kwargs: dict[str, Any] | None = None) -> tuple:
    """The gradient of ``sum(op(*inputs, **kwargs) * grad_output)`` w.r.t. each input, by MXNet's autograd.

    Only the op's tensor arguments are differentiated (a positional ``kernel_size`` gets ``None``).
    Each input is detached (``attach_grad`` on the caller's array would change it; the detached
    handle shares its data, uncopied) in its own dtype; the op promotes to float64 where the inputs
    mix, so a gradient has its input's dtype.
    """
    tensors = TENSOR_INPUTS[op]
    leaves = [None if x is None or i >= tensors else tensor(x).detach() for i, x in enumerate(inputs)]
    for x in leaves:
        if x is not None:
            x.attach_grad()
    with autograd.record():
        y = FUNCTIONS[op](*leaves[:tensors], *inputs[tensors:], **(kwargs or {}))
    dy = mnp.ones_like(y) if grad_output is None else tensor(grad_output, float_dtype(dtype_name(y.dtype)))
    check_same_shape(tuple(dy.shape), tuple(y.shape), "grad_output")
    y.backward(dy)
    return tuple(None if x is None else x.grad for x in leaves)
