"""The PaddlePaddle tab: the chapter in Paddle's dygraph idiom (``paddle.nn.Layer``, ``F.conv2d``).

Quirks worked around here:

- The book's Paddle ``Conv2D`` assigns ``paddle.ParamAttr(paddle.rand(kernel_size))``, a parameter
  *descriptor* (its first argument is a name), so it creates no trainable parameter. Ours creates
  real parameters with ``create_parameter`` and an initializer.
- The book's kernel-learning cell keeps the bias of ``nn.Conv2D(1, 1, (1, 2))`` (zero, and never
  updated); the other tabs have none, so the built-in layer here has ``bias_attr=False``.
- ``import paddle`` warns "No ccache found" (``paddle.utils.cpp_extension``, only used to compile
  C++ extensions): that one warning is silenced during the import.
- ``padding='SAME'`` with ``dilation=2`` silently ignores the dilation, so 'same' is never passed to
  Paddle: every op gets the shared explicit pads.
- Paddle pooling keeps a ceil-mode window that starts inside the padding, its ``exclusive`` flag is
  the opposite of torch's ``count_include_pad`` default, and ``max_pool2d`` has no dilation: pooling
  pads explicitly (-inf / 0), pools 'valid', divides window sums by the shared divisor, and decomposes
  dilated max pooling into strided slices.
- ``F.conv2d`` with 0 input channels returns 0 output channels (and fails adding a bias): zeros instead.
- Importing paddle after tensorflow in one process segfaults; the registry imports paddle first.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np

with warnings.catch_warnings():
    warnings.filterwarnings("ignore", message="No ccache found", category=UserWarning)
    import paddle
import paddle.nn.functional as F
from paddle import nn

from ..chapter import patch_index
from ..checks import as_float32_array, check_corr2d, check_real_dtype, check_same_shape, pair
from ..padding import avg_pool_divisor, conv2d_args, conv_transpose2d_args, pool2d_args

NAME = "paddle"
FRAMEWORK = paddle


def tensor(data: Any) -> paddle.Tensor:
    """A float32 ``paddle.Tensor``; a Paddle tensor (parameters too) is cast, keeping its autograd history."""
    if isinstance(data, paddle.Tensor):
        check_real_dtype(str(data.dtype), "data")
        return data.astype("float32")
    return paddle.to_tensor(as_float32_array(data))


def to_numpy(x: Any) -> np.ndarray:
    """A NumPy array from a Paddle tensor or parameter (detached), or from any array-like."""
    if isinstance(x, paddle.Tensor):
        return tensor(x).detach().numpy()
    return as_float32_array(x)


def corr2d(X: Any, K: Any) -> paddle.Tensor:
    """2-D cross-correlation, 'valid': the patches of X (``F.unfold``, one per column) weighted by K."""
    X, K = tensor(X), tensor(K)
    out_shape = check_corr2d(tuple(X.shape), tuple(K.shape))
    # unfold + matmul is Paddle's own im2col path: ~1.0x F.conv2d; a shift-sum is 3-7x slower (op overhead).
    patches = F.unfold(X.reshape([1, 1, *X.shape]), list(K.shape))  # (1, kh * kw, out_h * out_w)
    return (K.reshape([1, 1, -1]) @ patches).reshape(list(out_shape))


def corr2d_loop(X: Any, K: Any) -> paddle.Tensor:
    """The book's Paddle ``corr2d``: one output pixel per loop step (differentiable in Paddle)."""
    X, K = tensor(X), tensor(K)
    check_corr2d(tuple(X.shape), tuple(K.shape))
    h, w = K.shape
    Y = paddle.zeros((X.shape[0] - h + 1, X.shape[1] - w + 1), dtype="float32")
    for i in range(Y.shape[0]):
        for j in range(Y.shape[1]):
            Y[i, j] = (X[i:i + h, j:j + w] * K).sum()
    return Y


def convolve2d(X: Any, K: Any) -> paddle.Tensor:
    """Strict 2-D convolution, 'valid': cross-correlation with K flipped on both axes."""
    X, K = tensor(X), tensor(K)
    check_corr2d(tuple(X.shape), tuple(K.shape))
    return corr2d(X, paddle.flip(K, axis=[0, 1]))


def corr2d_matmul(X: Any, K: Any) -> paddle.Tensor:
    """2-D cross-correlation as one matrix product: the patches of X (one per row) times vec(K)."""
    X, K = tensor(X), tensor(K)
    out_shape = check_corr2d(tuple(X.shape), tuple(K.shape))
    index = patch_index(tuple(X.shape), tuple(K.shape))
    patches = paddle.gather(X.reshape([-1]), paddle.to_tensor(index.reshape(-1))).reshape(index.shape)
    return (patches @ K.reshape([-1])).reshape(list(out_shape))


def native_corr2d(X: Any, K: Any) -> paddle.Tensor:
    """Paddle's own convolution, ``F.conv2d``, on X and K reshaped to (1, 1, H, W): the benchmark baseline."""
    X, K = tensor(X), tensor(K)
    check_corr2d(tuple(X.shape), tuple(K.shape))
    Y = F.conv2d(X.reshape([1, 1, *X.shape]), K.reshape([1, 1, *K.shape]))
    return Y.reshape(Y.shape[2:])


class Conv2D(nn.Layer):
    """The book's convolutional layer, ``y = corr2d(x, weight) + bias``, with real Paddle parameters."""

    def __init__(self, kernel_size: Any) -> None:
        super().__init__()
        self.weight = self.create_parameter(list(pair(kernel_size, "kernel_size")), dtype="float32",
                                            default_initializer=nn.initializer.Uniform(0.0, 1.0))
        self.bias = self.create_parameter([1], dtype="float32", is_bias=True,
                                          default_initializer=nn.initializer.Constant(0.0))

    def forward(self, x: Any) -> paddle.Tensor:
        return corr2d(x, self.weight) + self.bias


def corr2d_grads(X: Any, K: Any, grad_output: Any) -> tuple[np.ndarray, np.ndarray]:
    """Gradients (dX, dK) of ``sum(corr2d(X, K) * grad_output)``, by Paddle's autograd."""
    X, K, dY = tensor(X).detach(), tensor(K).detach(), tensor(grad_output)
    check_same_shape(tuple(dY.shape), check_corr2d(tuple(X.shape), tuple(K.shape)), "grad_output")
    X.stop_gradient = K.stop_gradient = False
    dX, dK = paddle.grad((corr2d(X, K) * dY).sum(), [X, K])
    return dX.numpy(), dK.numpy()


def learn_kernel(X: np.ndarray, Y: np.ndarray, layer: str, kernel_size: tuple[int, int],
                 weight: np.ndarray | None, bias: float | None, lr: float,
                 epochs: int) -> tuple[list[float], np.ndarray, float | None]:
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
        l = (net(X) - Y) ** 2
        losses.append(float(l.sum()))
        net.clear_gradients()
        l.sum().backward()
        with paddle.no_grad():
            for param in net.parameters():
                param[:] -= lr * param.grad
    kernel = net.weight.numpy().reshape(kernel_size)
    return losses, kernel, None if layer == "builtin" else float(net.bias.numpy()[0])


def conv2d(x: Any, weight: Any, bias: Any = None, stride: Any = 1, padding: Any = 0, dilation: Any = 1,
           groups: int = 1) -> paddle.Tensor:
    """Batched, multi-channel cross-correlation (NCHW data, OIHW weight), as torch's ``conv2d``."""
    x, weight = tensor(x), tensor(weight)
    bias = None if bias is None else tensor(bias)
    args = conv2d_args(x.shape, weight.shape, None if bias is None else bias.shape, stride, padding, dilation, groups)
    if x.shape[1] == 0:  # no input channels: Paddle gives 0 output channels (and fails adding a bias)
        y = paddle.zeros([x.shape[0], weight.shape[0], *args.out_hw], dtype="float32")
        return y if bias is None else y + bias.reshape([1, -1, 1, 1])
    # Explicit (top, bottom, left, right) pads, never 'SAME' (Paddle drops the dilation with it).
    return F.conv2d(x, weight, bias, args.stride, list(args.pads), args.dilation, args.groups)


def conv_transpose2d(x: Any, weight: Any, bias: Any = None, stride: Any = 1, padding: Any = 0,
                     output_padding: Any = 0, dilation: Any = 1, groups: int = 1) -> paddle.Tensor:
    """Transposed convolution (weight (C_in, C_out/groups, kh, kw)): the full result, cropped, plus bias."""
    x, weight = tensor(x), tensor(weight)
    bias = None if bias is None else tensor(bias)
    args = conv_transpose2d_args(x.shape, weight.shape, None if bias is None else bias.shape, stride, padding,
                                 output_padding, dilation, groups)
    full = F.conv2d_transpose(x, weight, stride=args.stride, dilation=args.dilation, groups=args.groups)
    top, _, left, _ = args.crops
    out_h, out_w = args.out_hw
    grow = [0, max(0, left + out_w - full.shape[3]), 0, max(0, top + out_h - full.shape[2])]
    y = F.pad(full, grow)[:, :, top:top + out_h, left:left + out_w]
    return y if bias is None else y + bias.reshape([1, -1, 1, 1])


def max_pool2d(x: Any, kernel_size: Any, stride: Any = None, padding: Any = 0, dilation: Any = 1,
               ceil_mode: bool = False) -> paddle.Tensor:
    """Max pooling; padding and the ceil-mode overhang count as -inf. Dilated: max over strided slices."""
    x = tensor(x)
    args = pool2d_args(x.shape, kernel_size, stride, padding, dilation, ceil_mode)
    x = _pad_hw(x, args.padded, -np.inf)
    if args.dilation == (1, 1):
        return F.max_pool2d(x, args.kernel, args.stride)
    (kh, kw), (sh, sw), (dh, dw), (out_h, out_w) = args.kernel, args.stride, args.dilation, args.out_hw
    slices = [x[:, :, a * dh:a * dh + (out_h - 1) * sh + 1:sh, b * dw:b * dw + (out_w - 1) * sw + 1:sw]
              for a in range(kh) for b in range(kw)]
    return paddle.stack(slices).max(axis=0)


def avg_pool2d(x: Any, kernel_size: Any, stride: Any = None, padding: Any = 0, ceil_mode: bool = False,
               count_include_pad: bool = True) -> paddle.Tensor:
    """Average pooling; the divisor counts real elements (and padding if ``count_include_pad``)."""
    x = tensor(x)
    args = pool2d_args(x.shape, kernel_size, stride, padding, 1, ceil_mode)
    total = F.avg_pool2d(_pad_hw(x, args.padded, 0.0), args.kernel, args.stride, divisor_override=1)
    return total / paddle.to_tensor(avg_pool_divisor(args, tuple(x.shape[2:]), count_include_pad))


def _pad_hw(x: paddle.Tensor, pads: tuple[int, int, int, int], value: float) -> paddle.Tensor:
    top, bottom, left, right = pads
    return F.pad(x, [left, right, top, bottom], value=value)
