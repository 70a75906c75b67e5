"""Section 6.2, convolutions for images, in the JAX tab.

The book's JAX ``corr2d`` (``Y = Y.at[i, j].set(...)``) is functional, so ``jax.grad``
differentiates it as written: it is ``corr2d_loop`` here. The book's ``Conv2D`` is broken
twice: flax.linen has no ``nn.param`` (a module declares parameters with ``self.param``), and
flax calls ``__call__``, never ``forward``. Ours uses both, and ``nn.initializers.uniform(1.0)``
(the book passes the factory ``nn.initializers.uniform`` itself, and its default scale is 0.01).
"""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from ...book.conv_layer import patch_index
from ...core.checks import check_corr2d, pair, same_dtype_tensors
from .ops import _NCHW, _x64_for_float64, tensor, to_numpy


@jax.jit
def _shift_sum(X: jax.Array, K: jax.Array) -> jax.Array:
    """Y = sum over kernel elements of K[a, b] * X shifted by (a, b); XLA fuses it into one pass."""
    h, w = K.shape
    out_h, out_w = X.shape[0] - h + 1, X.shape[1] - w + 1
    Y = jnp.zeros((out_h, out_w), X.dtype)
    for a in range(h):
        for b in range(w):
            Y = Y + K[a, b] * X[a : a + out_h, b : b + out_w]
    return Y


@_x64_for_float64
def corr2d(X: Any, K: Any) -> jax.Array:
    """2-D cross-correlation, 'valid': a jitted sum of shifted copies of X, one per kernel element."""
    X, K = same_dtype_tensors(tensor, X, K)
    check_corr2d(X.shape, K.shape)
    # Compiled once per shape; at 512x512 / 3x3 faster than lax.conv on a single-channel image on CPU.
    return _shift_sum(X, K)


@_x64_for_float64
def corr2d_loop(X: Any, K: Any) -> jax.Array:
    """2-D cross-correlation as the book's JAX tab writes it; ``jax.grad`` differentiates it as written.

    ``Y.at[i, j].set(v)`` returns a new array instead of writing in place, so every output
    element is a traced function of X and K.
    """
    X, K = same_dtype_tensors(tensor, X, K)
    check_corr2d(X.shape, K.shape)
    h, w = K.shape
    Y = jnp.zeros((X.shape[0] - h + 1, X.shape[1] - w + 1), X.dtype)
    for i in range(Y.shape[0]):
        for j in range(Y.shape[1]):
            Y = Y.at[i, j].set((X[i : i + h, j : j + w] * K).sum())
    return Y


@_x64_for_float64
def convolve2d(X: Any, K: Any) -> jax.Array:
    """Strict 2-D convolution, 'valid': cross-correlation with K flipped on both axes."""
    X, K = same_dtype_tensors(tensor, X, K)
    check_corr2d(X.shape, K.shape)
    return corr2d(X, K[::-1, ::-1])


@_x64_for_float64
def corr2d_matmul(X: Any, K: Any) -> jax.Array:
    """2-D cross-correlation as one matrix product: the patches of X (one per row) times vec(K)."""
    X, K = same_dtype_tensors(tensor, X, K)
    out_shape = check_corr2d(X.shape, K.shape)
    patches = X.reshape(-1)[patch_index(X.shape, K.shape)]
    return (patches @ K.reshape(-1)).reshape(out_shape)


@_x64_for_float64
def native_corr2d(X: Any, K: Any) -> jax.Array:
    """JAX's own convolution, ``lax.conv_general_dilated`` on (1, 1, H, W), for benchmarks."""
    X, K = same_dtype_tensors(tensor, X, K)
    check_corr2d(X.shape, K.shape)
    return lax.conv_general_dilated(X[None, None], K[None, None], (1, 1), "VALID", dimension_numbers=_NCHW)[0, 0]


class _BoundWhenBuiltAtTopLevel(type):
    """``Conv2D(kernel_size)`` written by the user gives a module bound to fresh parameters
    (``module.bind``), usable like a layer of the other tabs: ``layer.weight``, ``layer(X)``.

    flax's own copies (``init``, ``apply``, ``bind`` pass ``parent``) and submodules built
    inside another module (whose parent is that module) are left as flax makes them, and
    ``Conv2D(kernel_size, parent=None)`` is the plain unbound module.
    """

    def __call__(cls, *args: Any, **kwargs: Any) -> Any:
        module = super().__call__(*args, **kwargs)
        if "parent" in kwargs or module.parent is not None:
            return module
        key = jax.random.key(int(np.random.default_rng().integers(2**31)))  # unseeded, as the book's rand
        return module.bind(module.init(key, jnp.zeros(pair(module.kernel_size, "kernel_size"))))


class Conv2D(nn.Module, metaclass=_BoundWhenBuiltAtTopLevel):
    """The book's convolutional layer, ``y = corr2d(x, weight) + bias``, as a flax.linen module.

    ``weight`` is uniform in [0, 1) and ``bias`` zero, both in the "params" collection.
    """

    kernel_size: Any

    def __post_init__(self) -> None:
        pair(self.kernel_size, "kernel_size")  # the same error as every tab, at construction
        super().__post_init__()

    def setup(self) -> None:
        self.weight = self.param("weight", nn.initializers.uniform(1.0), pair(self.kernel_size, "kernel_size"))
        self.bias = self.param("bias", nn.initializers.zeros, (1,))

    def __call__(self, x: Any) -> jax.Array:
        return corr2d(x, self.weight) + self.bias


def learn_kernel(
    X: np.ndarray,
    Y: np.ndarray,
    layer: str,
    kernel_size: tuple[int, int],
    weight: np.ndarray | None,
    bias: float | None,
    lr: float,
    epochs: int,
) -> tuple[list[float], np.ndarray, float | None]:
    """The book's training loop: ``jax.value_and_grad`` of the summed squared error, and
    plain SGD as ``jax.tree_util.tree_map(lambda p, g: p - lr * g, params, grads)``.

    "builtin" is the book's ``nn.Conv(1, kernel_size, use_bias=False, padding='VALID')`` on NHWC
    data (1, H, W, 1), its kernel HWIO; "custom" is our ``Conv2D`` on the 2-D data. ``weight``
    (and ``bias``) are loaded into the parameters; ``weight=None`` keeps flax's own initialisation.
    """
    X, Y = jnp.asarray(X, jnp.float32), jnp.asarray(Y, jnp.float32)
    if layer == "builtin":
        net: nn.Module = nn.Conv(1, kernel_size=kernel_size, use_bias=False, padding="VALID")
        X, Y = X.reshape((1, *X.shape, 1)), Y.reshape((1, *Y.shape, 1))
        name = "kernel"
    else:
        net = Conv2D(kernel_size, parent=None)  # unbound: the parameters live in ``params``
        name = "weight"
    params = net.init(jax.random.key(0), X)
    if weight is not None:
        loaded = params["params"][name].shape  # (kh, kw, 1, 1) HWIO for nn.Conv, (kh, kw) for Conv2D
        params = {"params": {**params["params"], name: jnp.asarray(weight, jnp.float32).reshape(loaded)}}
    if bias is not None:
        params = {"params": {**params["params"], "bias": jnp.full((1,), bias, jnp.float32)}}

    def loss(params: Any, X: jax.Array, Y: jax.Array) -> jax.Array:
        Y_hat = net.apply(params, X)
        return ((Y_hat - Y) ** 2).sum()

    losses = []
    for _ in range(epochs):
        l, grads = jax.value_and_grad(loss)(params, X, Y)  # noqa: E741 - the book's name
        losses.append(float(l))
        params = jax.tree_util.tree_map(lambda p, g: p - lr * g, params, grads)
    learned = params["params"]
    return (losses, to_numpy(learned[name]).reshape(kernel_size), None if bias is None else float(learned["bias"][0]))
