"""Section 6.2, convolutions for images, in the paddle tab."""

from __future__ import annotations

from typing import Any

import numpy as np
import paddle
import paddle.nn.functional as F
from paddle import nn

from ...book.conv_layer import patch_index
from ...core.checks import check_corr2d, pair, same_dtype_tensors
from .ops import tensor


def corr2d(X: Any, K: Any) -> paddle.Tensor:
    """2-D cross-correlation, 'valid': the patches of X (``F.unfold``, one per column) weighted by K."""
    X, K = same_dtype_tensors(tensor, X, K)
    out_shape = check_corr2d(tuple(X.shape), tuple(K.shape))
    # unfold + matmul is Paddle's own im2col path: ~1.0x F.conv2d; a shift-sum is 3-7x slower (op overhead).
    patches = F.unfold(X.reshape([1, 1, *X.shape]), list(K.shape))  # (1, kh * kw, out_h * out_w)
    return (K.reshape([1, 1, -1]) @ patches).reshape(list(out_shape))


def corr2d_loop(X: Any, K: Any) -> paddle.Tensor:
    """The book's Paddle ``corr2d``: one output pixel per loop step (differentiable in Paddle)."""
    X, K = same_dtype_tensors(tensor, X, K)
    check_corr2d(tuple(X.shape), tuple(K.shape))
    h, w = K.shape
    Y = paddle.zeros((X.shape[0] - h + 1, X.shape[1] - w + 1), dtype=X.dtype)
    for i in range(Y.shape[0]):
        for j in range(Y.shape[1]):
            Y[i, j] = (X[i : i + h, j : j + w] * K).sum()
    return Y


def convolve2d(X: Any, K: Any) -> paddle.Tensor:
    """Strict 2-D convolution, 'valid': cross-correlation with K flipped on both axes."""
    X, K = same_dtype_tensors(tensor, X, K)
    check_corr2d(tuple(X.shape), tuple(K.shape))
    return corr2d(X, paddle.flip(K, axis=[0, 1]))


def corr2d_matmul(X: Any, K: Any) -> paddle.Tensor:
    """2-D cross-correlation as one matrix product: the patches of X (one per row) times vec(K)."""
    X, K = same_dtype_tensors(tensor, X, K)
    out_shape = check_corr2d(tuple(X.shape), tuple(K.shape))
    index = patch_index(tuple(X.shape), tuple(K.shape))
    patches = paddle.gather(X.reshape([-1]), paddle.to_tensor(index.reshape(-1))).reshape(index.shape)
    return (patches @ K.reshape([-1])).reshape(list(out_shape))


def native_corr2d(X: Any, K: Any) -> paddle.Tensor:
    """Paddle's own convolution, ``F.conv2d``, on X and K reshaped to (1, 1, H, W): the benchmark baseline."""
    X, K = same_dtype_tensors(tensor, X, K)
    check_corr2d(tuple(X.shape), tuple(K.shape))
    Y = F.conv2d(X.reshape([1, 1, *X.shape]), K.reshape([1, 1, *K.shape]))
    return Y.reshape(Y.shape[2:])


class Conv2D(nn.Layer):
    """The book's convolutional layer, ``y = corr2d(x, weight) + bias``, with real Paddle parameters."""

    def __init__(self, kernel_size: Any) -> None:
        super().__init__()
        self.weight = self.create_parameter(
            list(pair(kernel_size, "kernel_size")),
            dtype="float32",
            default_initializer=nn.initializer.Uniform(0.0, 1.0),
        )
        self.bias = self.create_parameter(
            [1], dtype="float32", is_bias=True, default_initializer=nn.initializer.Constant(0.0)
        )

    def forward(self, x: Any) -> paddle.Tensor:
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
    """The book's Paddle training loop: squared error, ``backward``, manual SGD under ``no_grad``.

    ``weight`` (and ``bias``) are loaded into the layer; ``weight=None`` keeps its own initialisation.
    """
    if layer == "builtin":  # the book's cell without its bias (bias_attr=False), as in the other tabs
        net = nn.Conv2D(1, 1, kernel_size=kernel_size, bias_attr=False)
        X, Y = X.reshape(1, 1, *X.shape), Y.reshape(1, 1, *Y.shape)
    else:
        net = Conv2D(kernel_size)
        net.bias.set_value(np.array([bias], dtype=np.float32))
    if weight is not None:
        net.weight.set_value(weight.reshape(net.weight.shape))
    X, Y = paddle.to_tensor(X), paddle.to_tensor(Y)
    losses = []
    for _ in range(epochs):
        squared_error = (net(X) - Y) ** 2
        losses.append(float(squared_error.sum()))
        net.clear_gradients()
        squared_error.sum().backward()
        with paddle.no_grad():
            for param in net.parameters():
                param[:] -= lr * param.grad
    kernel = net.weight.numpy().reshape(kernel_size)
    return losses, kernel, None if layer == "builtin" else float(net.bias.numpy()[0])
