"""Gradients of every op in the JAX tab: ``jax.vjp``, the vector-Jacobian product itself."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp

from ...core.checks import OPS as TENSOR_INPUTS
from ...core.checks import check_same_shape, dtype_name
from .batch_norm import batch_norm
from .conv_layer import convolve2d, corr2d
from .ops import _x64_for_float64, avg_pool2d, conv2d, conv_transpose2d, max_pool2d, tensor


def _batch_norm_output(*inputs: Any, **kwargs: Any) -> Any:
    """``batch_norm``'s Y, the output ``vjp`` differentiates (the moving statistics it returns are not)."""
    return batch_norm(*inputs, **kwargs)[0]


OPS: dict[str, Callable[..., jax.Array]] = {
    "corr2d": corr2d,
    "convolve2d": convolve2d,
    "conv2d": conv2d,
    "conv_transpose2d": conv_transpose2d,
    "max_pool2d": max_pool2d,
    "avg_pool2d": avg_pool2d,
    "batch_norm": _batch_norm_output,
}


@_x64_for_float64
def vjp(op: str, inputs: Any, grad_output: Any = None, kwargs: dict[str, Any] | None = None) -> tuple:
    """The gradient of ``sum(op(*inputs, **kwargs) * grad_output)`` w.r.t. each input, by ``jax.vjp``.

    Only the op's tensor arguments that are not None are differentiated (a positional ``kernel_size``
    gets ``None``). Each keeps its own dtype (the op promotes
    to float64 where the inputs mix, and ``jax.vjp`` casts each cotangent back), so a gradient has
    its input's shape and dtype.
    """
    tensors = TENSOR_INPUTS[op]
    leaves = [None if x is None or i >= tensors else tensor(x) for i, x in enumerate(inputs)]
    given = [i for i, x in enumerate(leaves) if x is not None]

    def of_given(*xs: jax.Array) -> jax.Array:
        full = list(leaves[:tensors])
        for i, x in zip(given, xs, strict=True):
            full[i] = x
        return OPS[op](*full, *inputs[tensors:], **(kwargs or {}))

    y, pullback = jax.vjp(of_given, *(leaves[i] for i in given))
    dy = jnp.ones_like(y) if grad_output is None else tensor(grad_output, dtype_name(y.dtype))
    check_same_shape(dy.shape, y.shape, "grad_output")
    found = iter(pullback(dy))
    return tuple(None if x is None else next(found) for x in leaves)
