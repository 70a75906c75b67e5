"""The NumPy tab: the reference every framework is checked against.

NumPy has no autograd, so ``Conv2D`` carries a backward pass derived by hand:
for ``Y = corr2d(X, K) + b`` and an upstream gradient ``dY``,
``dK = corr2d(X, dY)``, ``db = sum(dY)`` and ``dX = corr2d(pad(dY), flip(K))``
(the 'full' correlation of ``dY`` with ``K`` flipped on both axes).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from ..chapter import patch_index
from ..checks import as_float32_array, check_corr2d, check_same_shape, pair
from ..padding import avg_pool_divisor, conv2d_args, conv_transpose2d_args, pool2d_args

NAME = "numpy"
FRAMEWORK = np


def tensor(data: Any) -> np.ndarray:
    """A float32 array from nested lists, NumPy or any framework's tensor."""
    return as_float32_array(data)


def to_numpy(x: Any) -> np.ndarray:
    """A NumPy array (here: the array itself)."""
    return as_float32_array(x)


def corr2d(X: Any, K: Any) -> np.ndarray:
    """2-D cross-correlation, 'valid': a sum of shifted copies of X, one per kernel element."""
    X, K = tensor(X), tensor(K)
    out_h, out_w = check_corr2d(X.shape, K.shape)
    h, w = K.shape
    Y = np.zeros((out_h, out_w), dtype=np.float32)
    for a in range(h):
        for b in range(w):
            Y += K[a, b] * X[a:a + out_h, b:b + out_w]
    return Y


def corr2d_loop(X: Any, K: Any) -> np.ndarray:
    """2-D cross-correlation as the book writes it: one output pixel per loop step."""
    X, K = tensor(X), tensor(K)
    check_corr2d(X.shape, K.shape)
    h, w = K.shape
    Y = np.zeros((X.shape[0] - h + 1, X.shape[1] - w + 1), dtype=np.float32)
    for i in range(Y.shape[0]):
        for j in range(Y.shape[1]):
            Y[i, j] = (X[i:i + h, j:j + w] * K).sum()
    return Y


def convolve2d(X: Any, K: Any) -> np.ndarray:
    """Strict 2-D convolution, 'valid': cross-correlation with K flipped on both axes."""
    X, K = tensor(X), tensor(K)
    check_corr2d(X.shape, K.shape)
    return corr2d(X, K[::-1, ::-1])


def corr2d_matmul(X: Any, K: Any) -> np.ndarray:
    """2-D cross-correlation as one matrix product: the patches of X (one per row) times vec(K)."""
    X, K = tensor(X), tensor(K)
    out_shape = check_corr2d(X.shape, K.shape)
    patches = X.reshape(-1)[patch_index(X.shape, K.shape)]
    return (patches @ K.reshape(-1)).reshape(out_shape)


def native_corr2d(X: Any, K: Any) -> np.ndarray:
    """The library routine for the same job, for benchmarks: ``scipy.signal.correlate2d``."""
    from scipy.signal import correlate2d

    X, K = tensor(X), tensor(K)
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
        h, w = self.weight.shape
        check_same_shape(dY.shape, check_corr2d(self._x.shape, self.weight.shape), "grad_output")
        self.weight_grad = corr2d(self._x, dY)
        if self.bias is not None:
            self.bias_grad = dY.sum(keepdims=True).reshape(1)
        return corr2d(np.pad(dY, ((h - 1, h - 1), (w - 1, w - 1))), self.weight[::-1, ::-1])


def corr2d_grads(X: Any, K: Any, grad_output: Any) -> tuple[np.ndarray, np.ndarray]:
    """Gradients (dX, dK) of ``sum(corr2d(X, K) * grad_output)``, by ``Conv2D.backward``."""
    X, K = tensor(X), tensor(K)
    check_corr2d(X.shape, K.shape)
    net = Conv2D(K.shape, bias=False)
    net.weight[...] = K
    net(X)
    dX = net.backward(grad_output)
    return dX, net.weight_grad


def learn_kernel(X: np.ndarray, Y: np.ndarray, layer: str, kernel_size: tuple[int, int],
                 weight: np.ndarray | None, bias: float | None, lr: float,
                 epochs: int) -> tuple[list[float], np.ndarray, float | None]:
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
        losses.append(float((error ** 2).sum()))
        net.backward(2 * error)
        net.weight -= lr * net.weight_grad
        if net.bias is not None:
            net.bias -= lr * net.bias_grad
    return losses, net.weight, None if net.bias is None else float(net.bias[0])


def conv2d(x: Any, weight: Any, bias: Any = None, stride: Any = 1, padding: Any = 0, dilation: Any = 1,
           groups: int = 1) -> np.ndarray:
    """Batched, multi-channel cross-correlation (NCHW data, OIHW weight), as torch's ``conv2d``."""
    x, weight = tensor(x), tensor(weight)
    bias = None if bias is None else tensor(bias)
    args = conv2d_args(x.shape, weight.shape, None if bias is None else bias.shape, stride, padding, dilation, groups)
    top, bottom, left, right = args.pads
    x = np.pad(x, ((0, 0), (0, 0), (top, bottom), (left, right)))
    patches = _windows(x, weight.shape[2:], args.stride, args.dilation, args.out_hw)  # N C oh ow kh kw
    n, c = x.shape[:2]
    g, o = args.groups, weight.shape[0]
    patches = patches.reshape(n, g, c // g, *patches.shape[2:])
    y = np.einsum("ngcijab,gocab->ngoij", patches, weight.reshape(g, o // g, c // g, *weight.shape[2:]),
                  optimize=True).reshape(n, o, *args.out_hw)
    return _add_bias(y, bias)


def conv_transpose2d(x: Any, weight: Any, bias: Any = None, stride: Any = 1, padding: Any = 0,
                     output_padding: Any = 0, dilation: Any = 1, groups: int = 1) -> np.ndarray:
    """Transposed convolution (weight (C_in, C_out/groups, kh, kw)): each input pixel scatters the kernel."""
    x, weight = tensor(x), tensor(weight)
    bias = None if bias is None else tensor(bias)
    args = conv_transpose2d_args(x.shape, weight.shape, None if bias is None else bias.shape, stride, padding,
                                 output_padding, dilation, groups)
    n, c, h, w = x.shape
    g, (kh, kw), (sh, sw), (dh, dw) = args.groups, weight.shape[2:], args.stride, args.dilation
    xg = x.reshape(n, g, c // g, h, w)
    wg = weight.reshape(g, c // g, weight.shape[1], kh, kw)
    full = np.zeros((n, g, weight.shape[1], *args.full_hw), dtype=np.float32)
    for a in range(kh):
        for b in range(kw):
            full[:, :, :, a * dh:a * dh + (h - 1) * sh + 1:sh, b * dw:b * dw + (w - 1) * sw + 1:sw] += \
                np.einsum("ngcij,gco->ngoij", xg, wg[..., a, b])
    full = full.reshape(n, args.out_channels, *args.full_hw)
    top, _, left, _ = args.crops
    out_h, out_w = args.out_hw
    grow = ((0, 0), (0, 0), (0, max(0, top + out_h - full.shape[2])), (0, max(0, left + out_w - full.shape[3])))
    y = np.pad(full, grow)[:, :, top:top + out_h, left:left + out_w]
    return _add_bias(y, bias)


def max_pool2d(x: Any, kernel_size: Any, stride: Any = None, padding: Any = 0, dilation: Any = 1,
               ceil_mode: bool = False) -> np.ndarray:
    """Max pooling; padding and the ceil-mode overhang count as -inf."""
    x = tensor(x)
    args = pool2d_args(x.shape, kernel_size, stride, padding, dilation, ceil_mode)
    x = _pad_hw(x, args.padded, -np.inf)
    return _windows(x, args.kernel, args.stride, args.dilation, args.out_hw).max(axis=(4, 5))


def avg_pool2d(x: Any, kernel_size: Any, stride: Any = None, padding: Any = 0, ceil_mode: bool = False,
               count_include_pad: bool = True) -> np.ndarray:
    """Average pooling; the divisor counts real elements (and padding if ``count_include_pad``)."""
    x = tensor(x)
    args = pool2d_args(x.shape, kernel_size, stride, padding, 1, ceil_mode)
    total = _windows(_pad_hw(x, args.padded, 0.0), args.kernel, args.stride, args.dilation, args.out_hw)
    return total.sum(axis=(4, 5)) / avg_pool_divisor(args, x.shape[2:], count_include_pad)


def _pad_hw(x: np.ndarray, pads: tuple[int, int, int, int], value: float) -> np.ndarray:
    top, bottom, left, right = pads
    return np.pad(x, ((0, 0), (0, 0), (top, bottom), (left, right)), constant_values=value)


def _windows(x: np.ndarray, kernel: tuple[int, int], stride: tuple[int, int], dilation: tuple[int, int],
             out_hw: tuple[int, int]) -> np.ndarray:
    """A strided view (N, C, out_h, out_w, kh, kw) of the dilated windows of a padded NCHW array."""
    extent = tuple(d * (k - 1) + 1 for k, d in zip(kernel, dilation))
    view = sliding_window_view(x, extent, axis=(2, 3))
    return view[:, :, ::stride[0], ::stride[1], ::dilation[0], ::dilation[1]][:, :, :out_hw[0], :out_hw[1]]


def _add_bias(y: np.ndarray, bias: np.ndarray | None) -> np.ndarray:
    y = y.astype(np.float32, copy=False)
    return y if bias is None else y + bias.reshape(1, -1, 1, 1)
