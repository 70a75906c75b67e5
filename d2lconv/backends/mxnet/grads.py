"""Gradients of every op in the mxnet tab: ``autograd.record()`` and ``backward``, the vector-Jacobian product."""

from __future__ import annotations

from typing import Any

from mxnet import autograd
from mxnet import np as mnp

from ...checks import check_same_shape, float_dtype
from .conv_layer import convolve2d, corr2d
from .ops import avg_pool2d, conv2d, conv_transpose2d, max_pool2d, tensor

OPS = {"corr2d": corr2d, "convolve2d": convolve2d, "conv2d": conv2d, "conv_transpose2d": conv_transpose2d,
       "max_pool2d": max_pool2d, "avg_pool2d": avg_pool2d}


def vjp(op: str, inputs: Any, grad_output: Any = None, kwargs: dict[str, Any] | None = None) -> tuple:
    """The gradient of ``sum(op(*inputs, **kwargs) * grad_output)`` w.r.t. each input, by MXNet's autograd.

    Each input is copied (``attach_grad`` would otherwise change the caller's array) in its own
    dtype; the op promotes to float64 where the inputs mix, so a gradient has its input's dtype.
    """
    leaves = [None if x is None else tensor(x).copy() for x in inputs]
    for x in leaves:
        if x is not None:
            x.attach_grad()
    with autograd.record():
        y = OPS[op](*leaves, **(kwargs or {}))
    dy = mnp.ones_like(y) if grad_output is None else tensor(grad_output, float_dtype(str(y.dtype)))
    check_same_shape(tuple(dy.shape), tuple(y.shape), "grad_output")
    y.backward(dy)
    return tuple(None if x is None else x.grad for x in leaves)
