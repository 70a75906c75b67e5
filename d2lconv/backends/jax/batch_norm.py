"""Batch normalisation (d2l-en 8.5) in the jax tab: the book's function and a ``flax.linen`` module.

As the book's JAX tab, with two corrections: momentum is the weight of the new batch (d2lconv's
convention; the tab writes 0.9 as the old value's weight), and the layer reduces over every axis but
the channels' (0, 1, 2) of its NHWC data, where the tab reduces over (0, 2, 3), i.e. over N, W and C,
keeping H. The function returns new statistics (JAX arrays are immutable); the layer keeps them in
the ``batch_stats`` collection, as the book's does, and uses them when ``deterministic``.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import linen as nn

from ...book.batch_norm import EPS, MOMENTUM, stat_shape
from ...book.bn_lenet import bn_lenet_network, interleave, split_batch_norms
from ...core.checks import same_dtype_tensors
from ...core.conventions import momentum_kept
from .ops import _x64_for_float64, tensor


@_x64_for_float64
def batch_norm(
    X: Any, gamma: Any, beta: Any, moving_mean: Any, moving_var: Any, eps: float, momentum: float, training: bool,
    channel_axis: int = 1,
) -> tuple[jax.Array, jax.Array, jax.Array]:  # fmt: skip
    """The book's ``batch_norm``: ``(Y, moving_mean, moving_var)``, the statistics in their given shape. The
    channels are on ``channel_axis``: 1 for d2lconv's NCHW (or (N, C)) data, -1 for the layer's NHWC."""
    X, gamma, beta, moving_mean, moving_var = same_dtype_tensors(tensor, X, gamma, beta, moving_mean, moving_var)
    channel_axis = channel_axis % X.ndim
    shape = tuple(-1 if axis == channel_axis else 1 for axis in range(X.ndim))
    if not training:
        # In prediction mode, use the mean and variance obtained by the moving average
        X_hat = (X - moving_mean.reshape(shape)) / jnp.sqrt(moving_var.reshape(shape) + eps)
    else:
        axes = tuple(axis for axis in range(X.ndim) if axis != channel_axis)
        mean = X.mean(axis=axes, keepdims=True)
        var = ((X - mean) ** 2).mean(axis=axes, keepdims=True)
        X_hat = (X - mean) / jnp.sqrt(var + eps)
        moving_mean = (1.0 - momentum) * moving_mean + momentum * mean.reshape(moving_mean.shape)
        moving_var = (1.0 - momentum) * moving_var + momentum * var.reshape(moving_var.shape)
    Y = gamma.reshape(shape) * X_hat + beta.reshape(shape)  # scale and shift
    return Y, jax.lax.stop_gradient(moving_mean), jax.lax.stop_gradient(moving_var)


class BatchNorm(nn.Module):
    """The book's ``BatchNorm(num_features, num_dims)`` on channels-last data; ``deterministic`` for prediction."""

    num_features: int
    num_dims: int
    deterministic: bool = False
    eps: float = EPS
    momentum: float = MOMENTUM

    @nn.compact
    def __call__(self, X: jax.Array) -> jax.Array:
        shape = stat_shape(self.num_features, self.num_dims, channels_last=True)
        # The scale parameter and the shift parameter are initialised to 1 and 0
        gamma = self.param("gamma", nn.initializers.ones, shape)
        beta = self.param("beta", nn.initializers.zeros, shape)
        # The moving statistics, initialised to 0 and 1, live in the 'batch_stats' collection
        moving_mean = self.variable("batch_stats", "moving_mean", jnp.zeros, shape)
        moving_var = self.variable("batch_stats", "moving_var", jnp.ones, shape)
        Y, mean, var = batch_norm(
            X, gamma, beta, moving_mean.value, moving_var.value,
            self.eps, self.momentum, not self.deterministic, channel_axis=-1,
        )  # fmt: skip
        if not self.deterministic and not self.is_initializing():
            moving_mean.value, moving_var.value = mean, var
        return Y


def BNLeNet(seed: int = 0, concise: bool = False) -> nn.Sequential:  # noqa: N802 - the book's name
    """The book's BN-LeNet with this tab's ``BatchNorm`` (channels last), bound to its variables in prediction
    mode (``deterministic``; the trainer switches it, ``_train_mode``): the tab's writer builds the rest of
    ``bn_lenet_network(seed)`` in flax's own layers, weights drawn from ``seed`` by NumPy. ``concise=True`` is
    the book's concise implementation, Flax's own ``nn.BatchNorm`` (momentum 0.9, the weight kept, epsilon
    1e-5), in prediction mode (``use_running_average``) likewise."""
    from .network import build_network  # an earlier section, imported here: grads imports this module first

    rest, places = split_batch_norms(bn_lenet_network(seed))
    module, variables = build_network(rest).unbind()
    layers = interleave(list(module.layers), places, _flax_batch_norm if concise else _book_batch_norm)
    old_names = iter(range(len(module.layers)))
    params, batch_stats = {}, {}
    for index, layer in enumerate(layers):
        name = f"layers_{index}"
        if index in places:  # gamma 1, beta 0, moving mean 0, moving variance 1 (Flax's scale, bias, mean, var)
            if isinstance(layer, BatchNorm):
                shape = stat_shape(*places[index], channels_last=True)
                names = ("gamma", "beta", "moving_mean", "moving_var")
            else:
                shape, names = places[index][:1], ("scale", "bias", "mean", "var")
            params[name] = {names[0]: jnp.ones(shape), names[1]: jnp.zeros(shape)}
            batch_stats[name] = {names[2]: jnp.zeros(shape), names[3]: jnp.ones(shape)}
        else:
            old = f"layers_{next(old_names)}"
            if old in variables["params"]:
                params[name] = variables["params"][old]
    return nn.Sequential(layers).bind({"params": params, "batch_stats": batch_stats})


def _book_batch_norm(num_features: int, num_dims: int) -> BatchNorm:
    return BatchNorm(num_features, num_dims, deterministic=True)


def _flax_batch_norm(num_features: int, num_dims: int) -> nn.BatchNorm:
    """Flax's own layer as the tab's writer builds a batch_norm node: its momentum is the weight kept."""
    return nn.BatchNorm(
        use_running_average=True, momentum=momentum_kept(MOMENTUM), epsilon=EPS, use_fast_variance=False
    )


def _train_mode(module: nn.Sequential) -> nn.Sequential:
    """An (unbound) ``nn.Sequential`` whose BatchNorm layers (the book's or Flax's) compute batch statistics."""
    return module.clone(
        layers=[
            layer.clone(deterministic=False)
            if isinstance(layer, BatchNorm)
            else layer.clone(use_running_average=False)
            if isinstance(layer, nn.BatchNorm)
            else layer
            for layer in module.layers
        ]
    )


def running_statistics(net: nn.Module) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Each BatchNorm's (running mean, running variance) in the bound ``net`` as flat arrays, by submodule name (an
    ``nn.Sequential``'s ``layers_<index>``, a description's node name): the book's ``BatchNorm`` (moving_mean,
    moving_var) and Flax's (mean, var) alike. In network order, which the ``batch_stats`` dict does not keep: a
    jitted step returns it sorted by name (``layers_10`` before ``layers_5``)."""
    stats = net.variables.get("batch_stats", {})
    if isinstance(net, nn.Sequential):
        names = [f"layers_{index}" for index in range(len(net.layers))]
    else:  # a module class this tab's writer made carries its graph
        names = [layer.name for layer in type(net).graph.layers]
    statistics = {}
    for name in names:
        if name in stats:
            mean, var = ("moving_mean", "moving_var") if "moving_mean" in stats[name] else ("mean", "var")
            statistics[name] = (np.asarray(stats[name][mean]).ravel(), np.asarray(stats[name][var]).ravel())
    return statistics
