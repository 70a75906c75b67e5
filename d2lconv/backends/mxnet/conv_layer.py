"""Section 6.2, convolutions for images, in the mxnet tab."""

from __future__ import annotations

from typing import Any

import mxnet as mx
import numpy as onp
from mxnet import autograd, gluon, npx
from mxnet import np as mnp
from mxnet.gluon import nn

from ...book.conv_layer import patch_index
from ...core.checks import check_corr2d, pair, same_dtype_tensors
from .ops import tensor


def corr2d(X: Any, K: Any) -> mnp.ndarray:
    """2-D cross-correlation, 'valid': MXNet's own convolution on the (1, 1, H, W) reshaped input."""
    X, K = same_dtype_tensors(tensor, X, K)
    out_shape = check_corr2d(X.shape, K.shape)
    # The native op: at 512x512 with a 3x3 kernel a shift-sum takes 3-4x, im2col 1.4-2x its time.
    Y = npx.convolution(
        X.reshape(1, 1, *X.shape), K.reshape(1, 1, *K.shape), kernel=K.shape, num_filter=1, no_bias=True
    )
    return Y.reshape(out_shape)


def corr2d_loop(X: Any, K: Any) -> mnp.ndarray:
    """2-D cross-correlation as the book writes it: one output pixel per loop step.

    Not differentiable: under ``autograd.record()`` MXNet raises MXNetError "Inplace
    operations (+=, -=, x[:]=, etc) are not supported when recording with autograd"
    (the chapter's exercise); ``corr2d`` is the differentiable form.
    """
    X, K = same_dtype_tensors(tensor, X, K)
    check_corr2d(X.shape, K.shape)
    h, w = K.shape
    Y = mnp.zeros((X.shape[0] - h + 1, X.shape[1] - w + 1), dtype=X.dtype)
    for i in range(Y.shape[0]):
        for j in range(Y.shape[1]):
            Y[i, j] = (X[i : i + h, j : j + w] * K).sum()
    return Y


def convolve2d(X: Any, K: Any) -> mnp.ndarray:
    """Strict 2-D convolution, 'valid': cross-correlation with K flipped on both axes."""
    X, K = same_dtype_tensors(tensor, X, K)
    check_corr2d(X.shape, K.shape)
    return corr2d(X, K[::-1, ::-1])


def corr2d_matmul(X: Any, K: Any) -> mnp.ndarray:
    """2-D cross-correlation as one matrix product: the patches of X (gathered, one per row) times vec(K)."""
    X, K = same_dtype_tensors(tensor, X, K)
    out_shape = check_corr2d(X.shape, K.shape)
    patches = X.reshape(-1)[mnp.array(patch_index(X.shape, K.shape))]
    return (patches @ K.reshape(-1)).reshape(out_shape)


def native_corr2d(X: Any, K: Any) -> mnp.ndarray:
    """MXNet's own convolution (``npx.convolution``) on 2-D X and K, for benchmarks: here it is ``corr2d``."""
    return corr2d(X, K)


class Conv2D(nn.Block):
    """The book's convolutional layer, ``y = corr2d(x, weight) + bias``, as a Gluon Block.

    The weight starts uniform in [0, 1) (from MXNet's random generator), the bias at
    zero; the parameters are initialised here, so the layer is ready to call.
    """

    def __init__(self, kernel_size: Any, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        kernel_size = pair(kernel_size, "kernel_size")
        self.weight = self.params.get(
            "weight", shape=kernel_size, init=mx.init.Constant(mnp.random.uniform(size=kernel_size))
        )
        self.bias = self.params.get("bias", shape=(1,), init=mx.init.Zero())
        self.initialize()

    def forward(self, x: Any) -> mnp.ndarray:
        """``corr2d(x, weight) + bias`` on a 2-D input."""
        return corr2d(x, self.weight.data()) + self.bias.data()


def learn_kernel(
    X: onp.ndarray,
    Y: onp.ndarray,
    layer: str,
    kernel_size: tuple[int, int],
    weight: onp.ndarray | None,
    bias: float | None,
    lr: float,
    epochs: int,
) -> tuple[list[float], onp.ndarray, float | None]:
    """The book's training loop: squared error, ``autograd.record()``, plain SGD by the Gluon Trainer.

    ``weight`` (and ``bias``) are loaded into the layer; ``weight=None`` keeps its own initialisation.
    """
    if layer == "builtin":
        # in_channels=1 initialises the weight now (not at the first call), so it can be loaded.
        net = nn.Conv2D(1, kernel_size=kernel_size, in_channels=1, use_bias=False)
        net.initialize()
        if weight is not None:
            net.weight.set_data(tensor(weight).reshape(1, 1, *kernel_size))
        X, Y = tensor(X).reshape(1, 1, *X.shape), tensor(Y).reshape(1, 1, *Y.shape)
    else:
        net = Conv2D(kernel_size)
        if weight is not None:
            net.weight.set_data(tensor(weight))
        net.bias.set_data(tensor([bias]))
        X, Y = tensor(X), tensor(Y)
    trainer = gluon.Trainer(net.collect_params(), "sgd", {"learning_rate": lr})
    losses = []
    for _ in range(epochs):
        with autograd.record():
            squared_error = (net(X) - Y) ** 2
        losses.append(float(squared_error.sum()))
        squared_error.backward()  # as the book: a non-scalar head gets gradient ones, i.e. that of its sum
        trainer.step(1)  # sgd: weight -= lr * grad (no momentum, no weight decay)
    kernel = net.weight.data().asnumpy().reshape(kernel_size)
    return losses, kernel, None if layer == "builtin" else float(net.bias.data()[0])
