"""Gradients of every op in the mxnet tab: ``autograd.record()`` and ``backward``, the vector-Jacobian product."""

from __future__ import annotations

from typing import Any

from mxnet import autograd
from mxnet import np as mnp

from ...core.checks import check_same_shape, dtype_name, float_dtype
from .._shared import call_op, vjp_leaves
from . import batch_norm as normalization
from . import conv_layer, ops
from .ops import tensor


def vjp(op: str, inputs: Any, grad_output: Any = None, kwargs: dict[str, Any] | None = None) -> tuple:
    """The gradient of ``sum(op(*inputs, **kwargs) * grad_output)`` w.r.t. each input, by MXNet's autograd.

    Only the op's tensor arguments are differentiated (a positional ``kernel_size`` gets ``None``).
    Each input is detached (``attach_grad`` on the caller's array would change it; the detached
    handle shares its data, uncopied) in its own dtype; the op promotes to float64 where the inputs
    mix, so a gradient has its input's dtype.
    """
    leaves = vjp_leaves(op, inputs, lambda x: tensor(x).detach())
    for x in leaves:
        if x is not None:
            x.attach_grad()
    with autograd.record():
        y = call_op(op, (ops, conv_layer, normalization), leaves, inputs, kwargs)
    dy = mnp.ones_like(y) if grad_output is None else tensor(grad_output, float_dtype(dtype_name(y.dtype)))
    check_same_shape(tuple(dy.shape), tuple(y.shape), "grad_output")
    y.backward(dy)
    return tuple(None if x is None else x.grad for x in leaves)
