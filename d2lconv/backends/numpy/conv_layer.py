"""Section 6.2, convolutions for images, in the numpy tab."""

from __future__ import annotations

from typing import Any

import numpy as np

from ...book.conv_layer import patch_index
from ...core.checks import check_corr2d, check_same_shape, pair
from .ops import _in_common_dtype, tensor


def corr2d(X: Any, K: Any) -> np.ndarray:
    """2-D cross-correlation, 'valid': a sum of shifted copies of X, one per kernel element."""
    X, K = _in_common_dtype(X=X, K=K)
    out_h, out_w = check_corr2d(X.shape, K.shape)
    h, w = K.shape
    Y = np.zeros((out_h, out_w), dtype=X.dtype)
    for a in range(h):
        for b in range(w):
            Y += K[a, b] * X[a : a + out_h, b : b + out_w]
    return Y


def corr2d_loop(X: Any, K: Any) -> np.ndarray:
    """2-D cross-correlation as the book writes it: one output pixel per loop step."""
    X, K = _in_common_dtype(X=X, K=K)
    check_corr2d(X.shape, K.shape)
    h, w = K.shape
    Y = np.zeros((X.shape[0] - h + 1, X.shape[1] - w + 1), dtype=X.dtype)
    for i in range(Y.shape[0]):
        for j in range(Y.shape[1]):
            Y[i, j] = (X[i : i + h, j : j + w] * K).sum()
    return Y


def convolve2d(X: Any, K: Any) -> np.ndarray:
    """Strict 2-D convolution, 'valid': cross-correlation with K flipped on both axes."""
    X, K = _in_common_dtype(X=X, K=K)
    check_corr2d(X.shape, K.shape)
    return corr2d(X, K[::-1, ::-1])


def corr2d_matmul(X: Any, K: Any) -> np.ndarray:
    """2-D cross-correlation as one matrix product: the patches of X (one per row) times vec(K)."""
    X, K = _in_common_dtype(X=X, K=K)
    out_shape = check_corr2d(X.shape, K.shape)
    patches = X.reshape(-1)[patch_index(X.shape, K.shape)]
    return (patches @ K.reshape(-1)).reshape(out_shape)


def native_corr2d(X: Any, K: Any) -> np.ndarray:
    """The library routine for the same job, for benchmarks: ``scipy.signal.correlate2d``."""
    from scipy.signal import correlate2d

    X, K = _in_common_dtype(X=X, K=K)
    check_corr2d(X.shape, K.shape)
    return correlate2d(X, K, mode="valid")


class Conv2D:
    """The book's convolutional layer, ``y = corr2d(x, weight) + bias``, with a hand-derived backward.

    ``bias=False`` makes the bias-free layer that stands in for a framework's
    built-in ``Conv2d(1, 1, kernel_size, bias=False)``.
    """

    def __init__(self, kernel_size: Any, bias: bool = True) -> None:
        self.weight = np.random.default_rng().random(pair(kernel_size, "kernel_size"), dtype=np.float32)
        self.bias = np.zeros(1, dtype=np.float32) if bias else None
        self.weight_grad = np.zeros_like(self.weight)
        self.bias_grad = None if self.bias is None else np.zeros_like(self.bias)
        self._x: np.ndarray | None = None

    def forward(self, x: Any) -> np.ndarray:
        """``corr2d(x, weight) + bias``; remembers ``x`` for ``backward``."""
        self._x = tensor(x)
        y = corr2d(self._x, self.weight)
        return y if self.bias is None else y + self.bias

    __call__ = forward

    def backward(self, grad_output: Any) -> np.ndarray:
        """Store the gradients of weight and bias; return the gradient of the input."""
        if self._x is None:
            raise RuntimeError("Conv2D.backward needs a forward call first")
        dY = tensor(grad_output)
        dX, self.weight_grad = _corr2d_backward(self._x, self.weight, dY)
        if self.bias is not None:
            self.bias_grad = dY.sum(keepdims=True).reshape(1).astype(self.bias.dtype)
        return dX


def _corr2d_backward(X: np.ndarray, K: np.ndarray, dY: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``Y = sum_ab K[a, b] * X[a:a+oh, b:b+ow]`` is linear in each factor, so
    ``dK[a, b] = sum(X[a:a+oh, b:b+ow] * dY)`` (that is ``corr2d(X, dY)``) and ``dX[a:a+oh, b:b+ow] += K[a, b] * dY``
    (the 'full' correlation of dY with K flipped). Computed in the common dtype; each gradient in its input's dtype."""
    out_h, out_w = check_corr2d(X.shape, K.shape)
    check_same_shape(dY.shape, (out_h, out_w), "grad_output")
    x, k, dy = _in_common_dtype(X=X, K=K, grad_output=dY)
    dX, dK = np.zeros_like(x), np.empty_like(k)
    for a, b in np.ndindex(*k.shape):
        dK[a, b] = np.vdot(x[a : a + out_h, b : b + out_w], dy)
        dX[a : a + out_h, b : b + out_w] += k[a, b] * dy
    return dX.astype(X.dtype, copy=False), dK.astype(K.dtype, copy=False)


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
    """The book's training loop: squared error, gradients by hand, plain SGD.

    ``weight`` (and ``bias``) are loaded into the layer; ``weight=None`` keeps its own initialisation.
    """
    net = Conv2D(kernel_size, bias=layer == "custom")
    if weight is not None:
        net.weight[...] = weight
    if net.bias is not None:
        net.bias[...] = bias
    losses = []
    for _ in range(epochs):
        error = net(X) - Y
        losses.append(float((error**2).sum()))
        net.backward(2 * error)
        net.weight -= lr * net.weight_grad
        if net.bias is not None and net.bias_grad is not None:
            net.bias -= lr * net.bias_grad
    return losses, net.weight, None if net.bias is None else float(net.bias[0])
