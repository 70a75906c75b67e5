"""The PyTorch tab: the book's PyTorch code, trained by torch autograd and ``torch.optim``.

The book's ``Conv2D`` (``nn.Parameter(torch.rand(kernel_size))``) works as written, and
so does its double loop under autograd. Quirks worked around here: torch's convolutions
refuse 4-value (asymmetric) padding and ``padding='same'`` with a stride above 1, and its
pooling refuses padding above half the window, so everything is padded first with
``F.pad`` (-inf for max pooling) and then run with ``padding=0``; torch refuses or
mis-shapes empty inputs (zero channels), whose answers are written out instead;
``torch.tensor`` refuses NumPy arrays with negative strides, so arrays are copied before
``torch.from_numpy``; ``float()`` of a tensor that requires grad warns, ``.item()`` does not.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..chapter import patch_index
from ..checks import as_float32_array, check_corr2d, check_real_dtype, check_same_shape, pair
from ..padding import avg_pool_divisor, conv2d_args, conv_transpose2d_args, pool2d_args

NAME = "torch"
FRAMEWORK = torch


def tensor(data: Any) -> torch.Tensor:
    """A float32 tensor; a torch tensor is cast (keeping its autograd history), anything else copied in."""
    if isinstance(data, torch.Tensor):
        check_real_dtype(str(data.dtype).removeprefix("torch."), "data")
        return data.float()
    return torch.from_numpy(as_float32_array(data).copy())


def to_numpy(x: Any) -> np.ndarray:
    """A float32 NumPy array from a tensor (a parameter or one that requires grad too) or an array-like."""
    if isinstance(x, torch.Tensor):
        return tensor(x).detach().numpy()
    return as_float32_array(x)


def corr2d(X: Any, K: Any) -> torch.Tensor:
    """2-D cross-correlation, 'valid': a sum of shifted copies of X, one per kernel element."""
    X, K = tensor(X), tensor(K)
    out_h, out_w = check_corr2d(tuple(X.shape), tuple(K.shape))
    # Shift-sum, one fused multiply-add per kernel element (Y += K[a, b] * shifted X): at 512x512 it is
    # 3-20x faster than F.conv2d, which is slow on a single-channel image on CPU.
    h, w = K.shape
    Y = X.new_zeros((out_h, out_w))
    for a in range(h):
        for b in range(w):
            Y.addcmul_(K[a, b], X[a:a + out_h, b:b + out_w])
    return Y


def corr2d_loop(X: Any, K: Any) -> torch.Tensor:
    """2-D cross-correlation as the book's PyTorch tab writes it; differentiable as written.

    Autograd records each ``Y[i, j] = ...`` assignment, so gradients reach X and K
    (``Y`` itself is new and does not require grad, which is what makes this legal).
    """
    X, K = tensor(X), tensor(K)
    check_corr2d(tuple(X.shape), tuple(K.shape))
    h, w = K.shape
    Y = torch.zeros((X.shape[0] - h + 1, X.shape[1] - w + 1), dtype=X.dtype)
    for i in range(Y.shape[0]):
        for j in range(Y.shape[1]):
            Y[i, j] = (X[i:i + h, j:j + w] * K).sum()
    return Y


def convolve2d(X: Any, K: Any) -> torch.Tensor:
    """Strict 2-D convolution, 'valid': cross-correlation with K flipped on both axes."""
    X, K = tensor(X), tensor(K)
    check_corr2d(tuple(X.shape), tuple(K.shape))
    return corr2d(X, K.flip((0, 1)))


def corr2d_matmul(X: Any, K: Any) -> torch.Tensor:
    """2-D cross-correlation as one matrix product: the patches of X (one per row) times vec(K)."""
    X, K = tensor(X), tensor(K)
    out_shape = check_corr2d(tuple(X.shape), tuple(K.shape))
    patches = X.reshape(-1)[torch.from_numpy(patch_index(tuple(X.shape), tuple(K.shape)))]
    return (patches @ K.reshape(-1)).reshape(out_shape)


def native_corr2d(X: Any, K: Any) -> torch.Tensor:
    """torch's own convolution on the (1, 1, H, W) image, for benchmarks: ``F.conv2d``."""
    X, K = tensor(X), tensor(K)
    check_corr2d(tuple(X.shape), tuple(K.shape))
    return F.conv2d(X[None, None], K[None, None])[0, 0]


class Conv2D(nn.Module):
    """The book's convolutional layer, ``y = corr2d(x, weight) + bias``, as written in its PyTorch tab."""

    def __init__(self, kernel_size: Any) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.rand(pair(kernel_size, "kernel_size")))
        self.bias = nn.Parameter(torch.zeros(1))

    def forward(self, x: Any) -> torch.Tensor:
        return corr2d(x, self.weight) + self.bias


def corr2d_grads(X: Any, K: Any, grad_output: Any) -> tuple[np.ndarray, np.ndarray]:
    """Gradients (dX, dK) of ``sum(corr2d(X, K) * grad_output)``, by torch autograd."""
    X, K = tensor(X).detach().requires_grad_(), tensor(K).detach().requires_grad_()
    Y = corr2d(X, K)
    dY = tensor(grad_output)
    check_same_shape(tuple(dY.shape), tuple(Y.shape), "grad_output")
    dX, dK = torch.autograd.grad(Y, (X, K), grad_outputs=dY)
    return to_numpy(dX), to_numpy(dK)


def learn_kernel(X: np.ndarray, Y: np.ndarray, layer: str, kernel_size: tuple[int, int],
                 weight: np.ndarray | None, bias: float | None, lr: float,
                 epochs: int) -> tuple[list[float], np.ndarray, float | None]:
    """The book's training loop: squared error, ``backward()``, plain SGD by ``torch.optim.SGD``.

    ``weight`` (and ``bias``) are loaded into the layer; ``weight=None`` keeps torch's own initialisation.
    """
    X, Y = tensor(X), tensor(Y)
    if layer == "builtin":  # the book's nn.Conv2d, on (batch, channel, height, width) data
        net: nn.Module = nn.Conv2d(1, 1, kernel_size=kernel_size, bias=False)
        X, Y = X.reshape(1, 1, *X.shape), Y.reshape(1, 1, *Y.shape)
    else:
        net = Conv2D(kernel_size)
    with torch.no_grad():
        if weight is not None:
            net.weight.copy_(tensor(weight).reshape(net.weight.shape))
        if bias is not None:
            net.bias.fill_(bias)
    trainer = torch.optim.SGD(net.parameters(), lr=lr)
    losses = []
    for _ in range(epochs):
        l = (net(X) - Y) ** 2  # noqa: E741 - the book's name
        losses.append(l.sum().item())
        trainer.zero_grad()
        l.sum().backward()
        trainer.step()
    return losses, to_numpy(net.weight).reshape(kernel_size), None if bias is None else net.bias.item()


def conv2d(x: Any, weight: Any, bias: Any = None, stride: Any = 1, padding: Any = 0, dilation: Any = 1,
           groups: int = 1) -> torch.Tensor:
    """Batched, multi-channel cross-correlation (NCHW data, OIHW weight): ``F.conv2d`` after ``F.pad``."""
    x, weight = tensor(x), tensor(weight)
    bias = None if bias is None else tensor(bias)
    args = conv2d_args(tuple(x.shape), tuple(weight.shape), None if bias is None else tuple(bias.shape),
                       stride, padding, dilation, groups)
    if x.numel() == 0:  # every sum is empty, so 0; torch would give 0 output channels for 0 input channels
        return _add_bias(x.new_zeros((x.shape[0], weight.shape[0], *args.out_hw)), bias)
    return F.conv2d(_pad_hw(x, args.pads, 0.0), weight, bias, args.stride, 0, args.dilation, args.groups)


def conv_transpose2d(x: Any, weight: Any, bias: Any = None, stride: Any = 1, padding: Any = 0,
                     output_padding: Any = 0, dilation: Any = 1, groups: int = 1) -> torch.Tensor:
    """Transposed convolution (weight (C_in, C_out/groups, kh, kw)): the full ``F.conv_transpose2d``, cropped."""
    x, weight = tensor(x), tensor(weight)
    bias = None if bias is None else tensor(bias)
    args = conv_transpose2d_args(tuple(x.shape), tuple(weight.shape), None if bias is None else tuple(bias.shape),
                                 stride, padding, output_padding, dilation, groups)
    if x.numel() == 0:  # torch refuses an empty input unless only the batch is empty; every sum is 0
        full = x.new_zeros((x.shape[0], args.out_channels, *args.full_hw))
    else:
        full = F.conv_transpose2d(x, weight, None, args.stride, 0, 0, args.groups, args.dilation)
    top, _, left, _ = args.crops
    (out_h, out_w), (full_h, full_w) = args.out_hw, args.full_hw
    # F.pad crops where a pad is negative and adds zeros (output_padding past the full output) where positive.
    return _add_bias(F.pad(full, (-left, left + out_w - full_w, -top, top + out_h - full_h)), bias)


def max_pool2d(x: Any, kernel_size: Any, stride: Any = None, padding: Any = 0, dilation: Any = 1,
               ceil_mode: bool = False) -> torch.Tensor:
    """Max pooling; padding and the ceil-mode overhang count as -inf (``F.pad``, then ``F.max_pool2d``)."""
    x = tensor(x)
    args = pool2d_args(tuple(x.shape), kernel_size, stride, padding, dilation, ceil_mode)
    if x.shape[1] == 0:  # torch refuses zero channels; the answer is empty
        return x.new_zeros((*x.shape[:2], *args.out_hw))
    return F.max_pool2d(_pad_hw(x, args.padded, -np.inf), args.kernel, args.stride, 0, args.dilation)


def avg_pool2d(x: Any, kernel_size: Any, stride: Any = None, padding: Any = 0, ceil_mode: bool = False,
               count_include_pad: bool = True) -> torch.Tensor:
    """Average pooling: window sums (``F.avg_pool2d`` with divisor 1) over the shared divisor."""
    x = tensor(x)
    args = pool2d_args(tuple(x.shape), kernel_size, stride, padding, 1, ceil_mode)
    if x.shape[1] == 0:  # torch refuses zero channels; the answer is empty
        return x.new_zeros((*x.shape[:2], *args.out_hw))
    total = F.avg_pool2d(_pad_hw(x, args.padded, 0.0), args.kernel, args.stride, divisor_override=1)
    return total / torch.from_numpy(avg_pool_divisor(args, tuple(x.shape[2:]), count_include_pad))


def _pad_hw(x: torch.Tensor, pads: tuple[int, int, int, int], value: float) -> torch.Tensor:
    """Pad an NCHW tensor by (top, bottom, left, right); ``F.pad`` lists the last axis first."""
    top, bottom, left, right = pads
    return F.pad(x, (left, right, top, bottom), value=value)


def _add_bias(y: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
    return y if bias is None else y + bias.reshape(1, -1, 1, 1)
