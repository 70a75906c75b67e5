"""Gradients of every op in the JAX tab: ``jax.vjp``, the vector-Jacobian product itself."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from ...core.checks import check_same_shape, dtype_name
from .._shared import call_op, vjp_leaves
from . import batch_norm as normalization
from . import conv_layer, ops
from .ops import _x64_for_float64, tensor


@_x64_for_float64
def vjp(op: str, inputs: Any, grad_output: Any = None, kwargs: dict[str, Any] | None = None) -> tuple:
    """The gradient of ``sum(op(*inputs, **kwargs) * grad_output)`` w.r.t. each input, by ``jax.vjp``.

    Only the op's tensor arguments that are not None are differentiated (a positional ``kernel_size``
    gets ``None``). Each keeps its own dtype (the op promotes
    to float64 where the inputs mix, and ``jax.vjp`` casts each cotangent back), so a gradient has
    its input's shape and dtype.
    """
    leaves = vjp_leaves(op, inputs, tensor)
    given = [i for i, x in enumerate(leaves) if x is not None]

    def of_given(*xs: jax.Array) -> jax.Array:
        full = list(leaves)
        for i, x in zip(given, xs, strict=True):
            full[i] = x
        return call_op(op, (ops, conv_layer, normalization), full, inputs, kwargs)

    y, pullback = jax.vjp(of_given, *(leaves[i] for i in given))
    dy = jnp.ones_like(y) if grad_output is None else tensor(grad_output, dtype_name(y.dtype))
    check_same_shape(dy.shape, y.shape, "grad_output")
    found = iter(pullback(dy))
    return tuple(None if x is None else next(found) for x in leaves)
