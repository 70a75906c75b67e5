"""Gradients of every op in the torch tab: ``torch.autograd.grad``, the vector-Jacobian product."""

from __future__ import annotations

from typing import Any

import torch

from ...core.checks import check_same_shape, dtype_name, float_dtype
from .._shared import call_op, vjp_leaves
from . import batch_norm as normalization
from . import conv_layer, ops
from .ops import tensor


def vjp(op: str, inputs: Any, grad_output: Any = None, kwargs: dict[str, Any] | None = None) -> tuple:
    """The gradient of ``sum(op(*inputs, **kwargs) * grad_output)`` w.r.t. each input, by torch autograd.

    Only the op's tensor arguments are differentiated (a positional ``kernel_size`` gets ``None``).
    Each input becomes a leaf in its own dtype (the op promotes to float64 where the inputs mix,
    and autograd casts each gradient back), so a gradient has its input's shape and dtype.
    """
    leaves = vjp_leaves(op, inputs, lambda x: tensor(x).detach().requires_grad_())
    with torch.enable_grad():
        y = call_op(op, (ops, conv_layer, normalization), leaves, inputs, kwargs)
    dy = torch.ones_like(y) if grad_output is None else tensor(grad_output, float_dtype(dtype_name(y.dtype)))
    check_same_shape(tuple(dy.shape), tuple(y.shape), "grad_output")
    wanted = [x for x in leaves if x is not None]
    found = iter(torch.autograd.grad(y, wanted, dy, allow_unused=True))
    return tuple(None if x is None else _zeros_if_unused(next(found), x) for x in leaves)


def _zeros_if_unused(grad: torch.Tensor | None, x: torch.Tensor) -> torch.Tensor:
    """An input the output does not depend on (an empty output) has gradient zero."""
    return torch.zeros_like(x) if grad is None else grad
