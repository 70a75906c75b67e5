"""Gradients of every op in the tensorflow tab: ``tf.GradientTape``, the vector-Jacobian product."""

from __future__ import annotations

from typing import Any

import tensorflow as tf

from ...core.checks import check_same_shape
from .._shared import call_op, vjp_leaves
from . import batch_norm as normalization
from . import conv_layer, ops
from .ops import tensor


def vjp(op: str, inputs: Any, grad_output: Any = None, kwargs: dict[str, Any] | None = None) -> tuple:
    """The gradient of ``sum(op(*inputs, **kwargs) * grad_output)`` w.r.t. each input, by ``GradientTape``.

    Only the op's tensor arguments are differentiated (a positional ``kernel_size`` gets ``None``).
    Each input is watched in its own dtype (the op promotes to float64 where the inputs mix, and
    the tape casts each gradient back), so a gradient has its input's shape and dtype.
    """
    leaves = vjp_leaves(op, inputs, tensor)
    wanted = [x for x in leaves if x is not None]
    with tf.GradientTape() as tape:
        tape.watch(wanted)
        y = call_op(op, (ops, conv_layer, normalization), leaves, inputs, kwargs)
    dy = tf.ones_like(y) if grad_output is None else tensor(grad_output, y.dtype.name)
    check_same_shape(tuple(dy.shape), tuple(y.shape), "grad_output")
    found = iter(tape.gradient(y, wanted, output_gradients=dy, unconnected_gradients=tf.UnconnectedGradients.ZERO))
    return tuple(None if x is None else next(found) for x in leaves)
