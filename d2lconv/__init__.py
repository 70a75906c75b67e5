"""d2lconv: the "Convolutions for Images" chapter of Dive into Deep Learning on five backends.

Every function here sends its call to the active backend (``D2LCONV_BACKEND``,
``set_backend``, ``use_backend``; NumPy by default) and returns that backend's
native tensors. Importing d2lconv imports NumPy and no deep-learning framework.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from . import chapter
from .backends import (ALIASES, BACKENDS, BackendError, available_backends, get_backend, load_backend,
                       set_backend, use_backend)
from .backends import active_module as _tab
from .chapter import KernelFit, TrainingDivergedError
from .checks import check_op
from .padding import conv_output_size
from .porting import Ported, port

__version__ = "0.1.0"

__all__ = [
    "ALIASES", "BACKENDS", "BackendError", "KernelFit", "TrainingDivergedError", "Conv2D",
    "available_backends", "get_backend", "load_backend", "set_backend", "use_backend",
    "tensor", "to_numpy", "corr2d", "corr2d_loop", "convolve2d", "corr2d_matmul", "edge_image", "edge_kernel",
    "learn_kernel", "conv2d", "conv_transpose2d", "max_pool2d", "avg_pool2d", "conv_output_size",
    "vjp",
    "port", "Ported",
]


def tensor(data: Any, dtype: str | None = None) -> Any:
    """A tensor of the active backend from nested lists, NumPy or another tensor: float64 data stays
    float64, anything else becomes float32; ``dtype="float32"`` or ``"float64"`` forces one."""
    return _tab().tensor(data, dtype)


def to_numpy(x: Any) -> np.ndarray:
    """A NumPy array from any backend's tensor (grad-tracking ones too) or an array-like, its dtype kept."""
    return _tab().to_numpy(x)


def corr2d(X: Any, K: Any) -> Any:
    """2-D cross-correlation of X with K, 'valid'; vectorised and differentiable."""
    return _tab().corr2d(X, K)


def corr2d_loop(X: Any, K: Any) -> Any:
    """2-D cross-correlation as the book's double loop, in the active framework's idiom."""
    return _tab().corr2d_loop(X, K)


def convolve2d(X: Any, K: Any) -> Any:
    """Strict 2-D convolution, 'valid': ``corr2d`` with K flipped on both axes."""
    return _tab().convolve2d(X, K)


def corr2d_matmul(X: Any, K: Any) -> Any:
    """2-D cross-correlation as one matrix product (the chapter's exercise): ``W @ vec(X)``."""
    return _tab().corr2d_matmul(X, K)


def Conv2D(kernel_size: Any) -> Any:  # noqa: N802 - named as the layer class it builds
    """The book's layer ``y = corr2d(x, weight) + bias`` as the active framework's own layer class."""
    return _tab().Conv2D(kernel_size)


def edge_image() -> Any:
    """The book's 6x8 image: ones, columns 2..5 zero."""
    return tensor(chapter.edge_image())


def edge_kernel() -> Any:
    """The book's edge-detection kernel [[1.0, -1.0]]."""
    return tensor(chapter.edge_kernel())


def learn_kernel(X: Any = None, Y: Any = None, kernel_size: Any = (1, 2), lr: float = 3e-2, epochs: int = 10,
                 seed: int = 0, layer: str = "builtin") -> KernelFit:
    """Learn the kernel that maps X to Y by SGD on the summed squared error, as the book does.

    Defaults reproduce the book: X = edge image, Y = its edge map, the framework's own
    conv layer without bias (``layer="builtin"``) or our ``Conv2D`` (``layer="custom"``).
    Initial weights come from ``seed`` through NumPy, so every backend starts alike.
    """
    return chapter.learn_kernel(_tab(), X, Y, kernel_size, lr, epochs, seed, layer)


def conv2d(x: Any, weight: Any, bias: Any = None, stride: Any = 1, padding: Any = 0, dilation: Any = 1,
           groups: int = 1) -> Any:
    """Batched multi-channel cross-correlation: NCHW x, OIHW weight; as ``torch.nn.functional.conv2d``."""
    return _tab().conv2d(x, weight, bias, stride, padding, dilation, groups)


def conv_transpose2d(x: Any, weight: Any, bias: Any = None, stride: Any = 1, padding: Any = 0,
                     output_padding: Any = 0, dilation: Any = 1, groups: int = 1) -> Any:
    """Transposed convolution: NCHW x, weight (C_in, C_out/groups, kh, kw); as torch's."""
    return _tab().conv_transpose2d(x, weight, bias, stride, padding, output_padding, dilation, groups)


def max_pool2d(x: Any, kernel_size: Any, stride: Any = None, padding: Any = 0, dilation: Any = 1,
               ceil_mode: bool = False) -> Any:
    """2-D max pooling of NCHW x; padding counts as -inf and may reach ``kernel_size - 1``."""
    return _tab().max_pool2d(x, kernel_size, stride, padding, dilation, ceil_mode)


def avg_pool2d(x: Any, kernel_size: Any, stride: Any = None, padding: Any = 0, ceil_mode: bool = False,
               count_include_pad: bool = True) -> Any:
    """2-D average pooling of NCHW x; ``count_include_pad=False`` leaves padding out of the divisor."""
    return _tab().avg_pool2d(x, kernel_size, stride, padding, ceil_mode, count_include_pad)


def vjp(op: Any, *inputs: Any, grad_output: Any = None, **kwargs: Any) -> tuple[Any, ...]:
    """The gradient of ``sum(op(*inputs, **kwargs) * grad_output)`` with respect to each input.

    ``op`` is one of ``"corr2d"``, ``"convolve2d"``, ``"conv2d"``, ``"conv_transpose2d"``,
    ``"max_pool2d"``, ``"avg_pool2d"``, or the d2lconv function of that name. One native tensor per
    positional input, with its shape and dtype (``None`` for a ``None`` input such as ``bias=None``);
    ``grad_output`` defaults to ones. Frameworks use their own autograd, NumPy its hand-derived
    backward passes.
    """
    return _tab().vjp(check_op(op), inputs, grad_output, kwargs)
