"""Gradients of every op in the tensorflow tab: ``tf.GradientTape``, the vector-Jacobian product."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import tensorflow as tf

from ...core.checks import OPS as TENSOR_INPUTS
from ...core.checks import check_same_shape
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
    """The gradient of ``sum(op(*inputs, **kwargs) * grad_output)`` w.r.t. each input, by ``GradientTape``.

    Only the op's tensor arguments are differentiated (a positional ``kernel_size`` gets ``None``).
    Each input is watched in its own dtype (the op promotes to float64 where the inputs mix, and
    the tape casts each gradient back), so a gradient has its input's shape and dtype.
    """
    tensors = TENSOR_INPUTS[op]
    leaves = [None if x is None or i >= tensors else tensor(x) for i, x in enumerate(inputs)]
    wanted = [x for x in leaves if x is not None]
    with tf.GradientTape() as tape:
        tape.watch(wanted)
        y = FUNCTIONS[op](*leaves[:tensors], *inputs[tensors:], **(kwargs or {}))
    dy = tf.ones_like(y) if grad_output is None else tensor(grad_output, y.dtype.name)
    check_same_shape(tuple(dy.shape), tuple(y.shape), "grad_output")
    found = iter(tape.gradient(y, wanted, output_gradients=dy, unconnected_gradients=tf.UnconnectedGradients.ZERO))
    return tuple(None if x is None else next(found) for x in leaves)
