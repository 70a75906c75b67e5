"""d2lconv: the convolutional-networks chapter of Dive into Deep Learning on six backends, proven to agree.

Every function here sends its call to the active backend (``D2LCONV_BACKEND``,
``set_backend``, ``use_backend``; NumPy by default) and returns that backend's
native tensors. Importing d2lconv imports NumPy and no deep-learning framework.
"""

from __future__ import annotations

from typing import Any, cast

import numpy as np

from .backends import (
    ALIASES,
    BACKENDS,
    BackendError,
    available_backends,
    get_backend,
    load_backend,
    set_backend,
    use_backend,
)
from .backends import active_module as _tab
from .backends.modern_cnns import VGG11, AlexNet, DenseNet, GoogLeNet, NiN, ResNet18, layer_summary
from .book import batch_norm as bn
from .book import conv_layer as chapter
from .book import lenet, training
from .book.conv_layer import KernelFit, TrainingDivergedError
from .book.lenet import Digits, LeNetFit, digits
from .core.args import avg_pool2d_args, conv2d_args, conv_output_size, conv_transpose2d_args, pool2d_args
from .core.checks import check_op, names_inputs, same_dtype_tensors
from .porting import Ported, port

__version__ = "0.1.0"
_IMPORTED_FOR_OWN_USE = (
    "annotations", "Any", "cast", "np", "check_op", "names_inputs", "same_dtype_tensors", "bn", "training",
    "avg_pool2d_args", "conv2d_args", "conv_transpose2d_args", "pool2d_args",
)  # fmt: skip

__all__ = [
    "ALIASES",
    "BACKENDS",
    "BackendError",
    "KernelFit",
    "TrainingDivergedError",
    "Conv2D",
    "available_backends",
    "get_backend",
    "load_backend",
    "set_backend",
    "use_backend",
    "tensor",
    "to_numpy",
    "corr2d",
    "corr2d_loop",
    "convolve2d",
    "corr2d_matmul",
    "edge_image",
    "edge_kernel",
    "learn_kernel",
    "conv2d",
    "conv_transpose2d",
    "max_pool2d",
    "avg_pool2d",
    "conv_output_size",
    "vjp",
    "comp_conv2d",
    "corr2d_multi_in",
    "corr2d_multi_in_out",
    "corr2d_multi_in_out_1x1",
    "pool2d",
    "Digits",
    "LeNetFit",
    "LeNet",
    "layer_summary",
    "digits",
    "train_lenet",
    "batch_norm",
    "BatchNorm",
    "AlexNet",
    "VGG11",
    "NiN",
    "GoogLeNet",
    "ResNet18",
    "DenseNet",
    "BNLeNet",
    "train",
    "port",
    "Ported",
]


def tensor(data: Any, dtype: str | None = None) -> Any:
    """A tensor of the active backend from nested lists, NumPy or another tensor: float64 data stays
    float64, anything else becomes float32; ``dtype="float32"`` or ``"float64"`` forces one."""
    return _tab().tensor(data, dtype)


def to_numpy(x: Any) -> np.ndarray:
    """A NumPy array from any backend's tensor (grad-tracking ones too) or an array-like, its dtype kept."""
    return cast(np.ndarray, _tab().to_numpy(x))  # the tab is a module loaded by name: mypy sees Any


@names_inputs("X", "K")
def corr2d(X: Any, K: Any) -> Any:
    """2-D cross-correlation of X with K, 'valid'; vectorised and differentiable."""
    return _tab().corr2d(X, K)


@names_inputs("X", "K")
def corr2d_loop(X: Any, K: Any) -> Any:
    """2-D cross-correlation as the book's double loop, in the active framework's idiom."""
    return _tab().corr2d_loop(X, K)


@names_inputs("X", "K")
def convolve2d(X: Any, K: Any) -> Any:
    """Strict 2-D convolution, 'valid': ``corr2d`` with K flipped on both axes."""
    return _tab().convolve2d(X, K)


@names_inputs("X", "K")
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


def learn_kernel(
    X: Any = None,
    Y: Any = None,
    kernel_size: Any = (1, 2),
    lr: float | None = None,
    epochs: int = 10,
    seed: int = 0,
    layer: str = "builtin",
) -> KernelFit:
    """Learn the kernel that maps X to Y by SGD on the summed squared error, as the book does.

    Defaults reproduce the book: X = edge image, Y = its edge map, the framework's own
    conv layer without bias (``layer="builtin"``) or our ``Conv2D`` (``layer="custom"``).
    ``lr=None`` is the book's 0.03 for the builtin layer and 0.014 for the custom one, whose bias
    makes 0.03 diverge (its stable limit on the edge image is 0.0161).
    Initial weights come from ``seed`` through NumPy, so every backend starts alike.
    """
    return chapter.learn_kernel(_tab(), X, Y, kernel_size, lr, epochs, seed, layer)


@names_inputs("x", "weight", "bias")
def conv2d(
    x: Any,
    weight: Any,
    bias: Any = None,
    stride: Any = 1,
    padding: Any = 0,
    dilation: Any = 1,
    groups: int = 1,
    data_format: str = "NCHW",
) -> Any:
    """Batched multi-channel cross-correlation: NCHW x, OIHW weight; as ``torch.nn.functional.conv2d``.
    ``data_format="NHWC"``: NHWC x, HWIO weight, an NHWC result (as ``tf.nn.conv2d``)."""
    tab = _tab()
    x, weight, bias = same_dtype_tensors(tab.tensor, x, weight, bias)
    args = conv2d_args(x.shape, weight.shape, _shape(bias), stride, padding, dilation, groups, data_format)
    return tab.conv2d(x, weight, bias, args)


@names_inputs("x", "weight", "bias")
def conv_transpose2d(
    x: Any,
    weight: Any,
    bias: Any = None,
    stride: Any = 1,
    padding: Any = 0,
    output_padding: Any = 0,
    dilation: Any = 1,
    groups: int = 1,
    data_format: str = "NCHW",
) -> Any:
    """Transposed convolution: NCHW x, weight (C_in, C_out/groups, kh, kw); as torch's.
    ``data_format="NHWC"``: NHWC x, weight (kh, kw, C_out/groups, C_in) (as ``tf.nn.conv2d_transpose``)."""
    tab = _tab()
    x, weight, bias = same_dtype_tensors(tab.tensor, x, weight, bias)
    args = conv_transpose2d_args(
        x.shape, weight.shape, _shape(bias), stride, padding, output_padding, dilation, groups, data_format
    )
    return tab.conv_transpose2d(x, weight, bias, args)


@names_inputs("x")
def max_pool2d(
    x: Any,
    kernel_size: Any,
    stride: Any = None,
    padding: Any = 0,
    dilation: Any = 1,
    ceil_mode: bool = False,
    data_format: str = "NCHW",
) -> Any:
    """2-D max pooling of NCHW (or ``data_format="NHWC"``) x; padding counts as -inf and may reach
    ``kernel_size - 1``."""
    tab = _tab()
    x = tab.tensor(x)
    return tab.max_pool2d(x, pool2d_args(x.shape, kernel_size, stride, padding, dilation, ceil_mode, data_format))


@names_inputs("x")
def avg_pool2d(
    x: Any,
    kernel_size: Any,
    stride: Any = None,
    padding: Any = 0,
    ceil_mode: bool = False,
    count_include_pad: bool = True,
    data_format: str = "NCHW",
) -> Any:
    """2-D average pooling of NCHW (or ``data_format="NHWC"``) x; ``count_include_pad=False`` leaves padding
    out of the divisor."""
    tab = _tab()
    x = tab.tensor(x)
    args = avg_pool2d_args(x.shape, kernel_size, stride, padding, ceil_mode, count_include_pad, data_format)
    return tab.avg_pool2d(x, args)


def _shape(bias: Any) -> Any:
    return None if bias is None else bias.shape


def __dir__() -> list[str]:
    """``dir(d2lconv)``: the public API and the submodules, not the names d2lconv imports for its own code."""
    return sorted(
        name
        for name in globals()
        if name not in _IMPORTED_FOR_OWN_USE and (name.startswith("__") or not name.startswith("_"))
    )


def comp_conv2d(kernel_size: Any, padding: Any = 0, stride: Any = 1) -> tuple[int, int]:
    """The book's helper (6.3): the output (h, w) of the framework's own conv layer, 1 in and 1 out
    channel, on an 8x8 input; ``padding`` (an int or (ph, pw)) goes on both sides."""
    return cast(tuple[int, int], _tab().comp_conv2d(kernel_size, padding, stride))


def corr2d_multi_in(X: Any, K: Any) -> Any:
    """Cross-correlation of X (c, h, w) with K (c, kh, kw): one ``corr2d`` per channel, summed (6.4)."""
    return _tab().corr2d_multi_in(X, K)


def corr2d_multi_in_out(X: Any, K: Any) -> Any:
    """Cross-correlation of X (c, h, w) with K (co, c, kh, kw): one ``corr2d_multi_in`` per output channel."""
    return _tab().corr2d_multi_in_out(X, K)


def corr2d_multi_in_out_1x1(X: Any, K: Any) -> Any:
    """A 1x1 convolution, K (co, c, 1, 1), as one matrix product: (co, c) @ (c, h * w), shaped (co, h, w)."""
    return _tab().corr2d_multi_in_out_1x1(X, K)


def pool2d(X: Any, pool_size: Any, mode: str = "max") -> Any:
    """The book's pooling loop (6.5) over a 2-D X; ``mode`` is "max" or "avg"; no padding, stride 1."""
    return _tab().pool2d(X, pool_size, mode)


def vjp(op: Any, *inputs: Any, grad_output: Any = None, **kwargs: Any) -> tuple[Any, ...]:
    """The gradient of ``sum(op(*inputs, **kwargs) * grad_output)`` with respect to each input.

    ``op`` is one of ``"corr2d"``, ``"convolve2d"``, ``"conv2d"``, ``"conv_transpose2d"``,
    ``"max_pool2d"``, ``"avg_pool2d"``, ``"batch_norm"`` (the gradient of its Y), or the d2lconv function
    of that name. One native tensor per
    positional input, with its shape and dtype (``None`` for a ``None`` input such as ``bias=None``);
    ``grad_output`` defaults to ones. ``data_format="NHWC"`` among ``kwargs`` takes NHWC inputs (and
    HWIO weights) and gives gradients in those layouts. Frameworks use their own autograd, NumPy its hand-derived
    backward passes.
    """
    name = check_op(op)
    return cast(tuple[Any, ...], _tab().vjp(name, inputs, grad_output, kwargs))


def LeNet(seed: int = 0) -> Any:  # noqa: N802 - the book's name
    """The book's LeNet-5 (sigmoid, average pooling) in the active framework's own layers.

    Xavier-uniform weights and zero biases are drawn from ``seed`` by NumPy and loaded in
    the framework's layouts, so every backend starts from the same network.
    """
    return _tab().LeNet(seed)


def train_lenet(
    data: Any = None,
    epochs: int = lenet.EPOCHS,
    lr: float | None = None,
    batch_size: int | None = None,
    seed: int = 0,
    on_epoch: Any = None,
    on_step: Any = None,
) -> LeNetFit:
    """Train the seeded LeNet by plain minibatch SGD on the cross-entropy, on the active backend.

    ``data``: ``(train_x, train_y, test_x, test_y)`` (images (N, 1, 28, 28), labels 0..9), by
    default ``digits()``; ``lr`` and ``batch_size`` default to 2.0 and 32 (chosen for the digits).
    One ``seed`` gives the same loss curve on every backend. ``on_epoch(epoch, fit)`` is called
    after each epoch, ``on_step(epoch, step, steps, loss)`` after each minibatch (for a progress bar).
    """
    return lenet.train_lenet(_tab(), data, epochs, lr, batch_size, seed, on_epoch, on_step)


def batch_norm(
    X: Any,
    gamma: Any,
    beta: Any,
    moving_mean: Any,
    moving_var: Any,
    eps: float = bn.EPS,
    momentum: float = bn.MOMENTUM,
    training: bool = True,
) -> tuple[Any, Any, Any]:
    """The book's from-scratch batch normalisation: ``(Y, moving_mean, moving_var)``.

    X is (N, C) or (N, C, H, W), normalised per channel. ``momentum`` is the weight of the new
    batch (PyTorch's convention). ``training=True`` uses the batch's mean and biased variance and
    returns the moving statistics updated with them; ``training=False`` uses ``moving_mean`` and
    ``moving_var`` and returns them unchanged. gamma, beta and the statistics hold C values each.
    """
    shapes = (np.shape(X), np.shape(gamma), np.shape(beta), np.shape(moving_mean), np.shape(moving_var))
    options = bn.batch_norm_options(*shapes, eps, momentum, training)
    tab = _tab()
    tensors = same_dtype_tensors(tab.tensor, X, gamma, beta, moving_mean, moving_var)
    return cast(tuple[Any, Any, Any], tab.batch_norm(*tensors, *options))


def BatchNorm(num_features: int, num_dims: int) -> Any:  # noqa: N802 - the book's name
    """The book's ``BatchNorm`` layer as a subclass of the active framework's layer class: ``num_dims`` is
    2 after a dense layer, 4 after a convolution; gamma, beta trained, moving statistics kept (momentum 0.1)."""
    bn.check_layer(num_features, num_dims)
    return _tab().BatchNorm(num_features, num_dims)


def BNLeNet(seed: int = 0, concise: bool = False) -> Any:  # noqa: N802 - the book's name
    """The book's BN-LeNet (d2l-en 8.5.4) in the active framework's own layers, with the tab's from-scratch
    ``BatchNorm``, or with ``concise=True`` the framework's own batch normalisation layer (the book's "Concise
    Implementation": ``nn.BatchNorm2d``/``1d``, Keras's ``BatchNormalization``, Gluon's ``nn.BatchNorm``,
    Paddle's ``BatchNorm2D``/``1D``, Flax's ``nn.BatchNorm``; NumPy's layer library's ``BatchNorm2d``) with
    d2lconv's momentum and epsilon in its own convention.

    Its convolutions pad nothing (the first dense layer takes 256 features); Xavier-uniform weights
    and zero biases are drawn from ``seed`` by NumPy and loaded in the framework's layouts. Both versions
    compute the same outputs and train alike; PyTorch's own layer updates its running variance with the
    unbiased batch variance (n / (n - 1) times the book's), so after training its predictions differ a little.
    """
    return _tab().BNLeNet(seed, bool(concise))


def train(
    net: str = "lenet",
    epochs: int | None = None,
    lr: float | None = None,
    batch_size: int | None = None,
    seed: int = 0,
    data: Any = None,
    on_epoch: Any = None,
    on_step: Any = None,
    dtype: str = "float32",
) -> LeNetFit:
    """Train the seeded ``net`` ("lenet", "bn-lenet" or "resnet") by minibatch SGD on the cross-entropy, on the
    active backend: ``train_lenet``'s loop for every network. ``None`` takes the network's defaults (LeNet: 30
    epochs, lr 2.0; BN-LeNet: 20 epochs, lr 0.5; minibatches of 32; the narrow ResNet of
    ``d2lconv.book.resnet``: 10 epochs, lr 0.1, minibatches of 16). One ``seed`` gives one initial network
    and one minibatch order on every backend. ``.losses`` per minibatch, ``.train_acc`` and ``.test_acc``
    per epoch, ``.model``. ``dtype="float64"`` (LeNet and ResNet) trains the same seeded weights on the same
    images in float64, where the backends' loss curves stay together far longer than in float32 (see
    ``d2lconv.book.resnet``).
    """
    return training.train(_tab(), net, data, epochs, lr, batch_size, seed, on_epoch, on_step, dtype)
