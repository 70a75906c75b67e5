"""Section 6.6, LeNet, in the jax tab: a flax.linen ``nn.Sequential`` on NHWC images, ``jax.value_and_grad``.

As the book's JAX tab: the parameters live outside the module, a jitted step computes the
loss and its gradient with ``jax.value_and_grad`` and updates every parameter with
``jax.tree_util.tree_map(lambda p, g: p - lr * g, ...)`` (``jax.tree_map`` is gone since JAX 0.6).
Flax keeps images channels-last, so NCHW batches are transposed on the way in, and the
writer loads the first dense layer with its rows permuted to the (H, W, C) flatten order.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import linen as nn

from ...book.lenet import IMAGE_SHAPE, lenet_network
from .batch_norm import _train_mode
from .network import build_network
from .ops import _enable_x64

ACTIVATIONS = (nn.sigmoid, nn.relu, nn.tanh)


def LeNet(seed: int = 0, dtype: str = "float32") -> nn.Sequential:  # noqa: N802 - the book's name
    """The book's LeNet-5 as flax's own ``nn.Sequential`` (NHWC), bound to parameters drawn from ``seed``, in
    ``dtype``."""
    return build_network(lenet_network(seed).astype(dtype))


def _nhwc_images(X: np.ndarray) -> jax.Array:
    """NCHW images as the NHWC array flax layers take."""
    return jnp.asarray(X.transpose(0, 2, 3, 1))


def _name(layer: Any) -> str:
    """A module's class name; for a function (pooling, flatten), its name, through ``functools.partial``."""
    if isinstance(layer, nn.Module):
        return type(layer).__name__
    return getattr(getattr(layer, "func", layer), "__name__", type(layer).__name__).lstrip("_")


def layer_summary(net: nn.Sequential) -> list[tuple[str, tuple[int, ...]]]:
    """Each layer's name and output shape (C, H, W or features) for one 1x28x28 image; activations left out."""
    X = _nhwc_images(np.zeros((1, *IMAGE_SHAPE), np.float32))
    summary = []
    for layer in net.layers:
        X = layer(X)
        if not any(layer is activation for activation in ACTIVATIONS):
            shape = tuple(X.shape[1:])
            summary.append((_name(layer), (shape[2], shape[0], shape[1]) if len(shape) == 3 else shape))
    return summary


def _training_forward(module: nn.Module) -> Callable[..., Any]:
    """``module.apply`` in training mode: a sequential network's BatchNorm layers switched (``_train_mode``),
    a graph's ``Net`` called with ``train=True`` (its ``nn.BatchNorm`` layers use the batch's statistics)."""
    if isinstance(module, nn.Sequential):
        return _train_mode(module).apply
    return functools.partial(module.apply, train=True)


def _split(net: nn.Module) -> tuple[nn.Module, Any, dict[str, Any]]:
    """A bound network as its module, its ``params`` and the rest of its variables (BatchNorm's ``batch_stats``)."""
    module, variables = net.unbind()
    return module, variables["params"], {name: value for name, value in variables.items() if name != "params"}


def _sgd_step(module: nn.Module, lr: float) -> Any:
    """The jitted update of ``module`` in training mode (``_training_forward``): cross-entropy, ``jax.value_and_grad``,
    ``params - lr * grads`` by ``tree_map``; the ``state`` (BatchNorm's ``batch_stats``, empty for LeNet) is
    mutable in the forward pass and comes back new."""

    apply = _training_forward(module)

    def loss(params: Any, state: Any, X: jax.Array, y: jax.Array) -> tuple[jax.Array, Any]:
        y_hat, state = apply({"params": params, **state}, X, mutable=list(state))
        return optax.softmax_cross_entropy_with_integer_labels(y_hat, y).mean(), (y_hat, state)

    @jax.jit
    def step(params: Any, state: Any, X: jax.Array, y: jax.Array) -> tuple[Any, Any, jax.Array, jax.Array]:
        (l, (y_hat, state)), grads = jax.value_and_grad(loss, has_aux=True)(params, state, X, y)  # noqa: E741
        params = jax.tree_util.tree_map(lambda p, g: p - lr * g, params, grads)
        return params, state, l, (y_hat.argmax(1) == y).sum()

    return step


class Trainer:
    """Plain minibatch SGD on the cross-entropy: the parameters (and BatchNorm's statistics), updated
    functionally by a jitted step on the network in training mode."""

    def __init__(self, net: nn.Module, lr: float) -> None:
        self.module, self.params, self.state = _split(net)
        self._step = _sgd_step(self.module, lr)

    @property
    def net(self) -> nn.Module:
        """The module (prediction mode) bound to the current parameters and statistics."""
        return self.module.bind({"params": self.params, **self.state})

    def step(self, X: np.ndarray, y: np.ndarray) -> tuple[float, int]:
        """One update on a minibatch; returns its mean loss (before the update) and how many it got right."""
        with _enable_x64(X.dtype == np.float64):  # float64 images (and weights) stay float64 through the step
            self.params, self.state, l, right = self._step(self.params, self.state, _nhwc_images(X), jnp.asarray(y))  # noqa: E741
        return float(l), int(right)


def book_train(
    net: nn.Sequential, X: np.ndarray, y: np.ndarray, lr: float, batch_size: int, epochs: int
) -> list[float]:
    """The book's own loop (a jitted ``value_and_grad`` step on shuffled device arrays) for any bound network, its
    BatchNorm statistics carried as mutable state in training mode; the seconds of each epoch.

    For ``d2lconv bench``: the framework's idiomatic loop, to time d2lconv's driver against.
    """
    module, params, state = _split(net)
    step = _sgd_step(module, lr)
    X, y, key = _nhwc_images(X), jnp.asarray(y), jax.random.key(0)
    seconds = []
    for _ in range(epochs):
        start = time.perf_counter()
        key, shuffle = jax.random.split(key)
        order = jax.random.permutation(shuffle, len(y))
        for first in range(0, len(y), batch_size):
            index = order[first : first + batch_size]
            params, state, l, _ = step(params, state, X[index], y[index])  # noqa: E741 - the book's name
            float(l)  # the book records each minibatch's loss
        seconds.append(time.perf_counter() - start)
    return seconds
