"""The MXNet tab: Apache MXNet 1.9.1 (the last release) with its NumPy interface and Gluon.

This is the reference tab of the book's Chinese edition. Quirks worked around here:

- ``import mxnet`` needs ``numpy.bool``, which NumPy 1.24 removed: it is restored
  (as ``bool``) before the import, only when missing. MXNet needs numpy < 2.
- ``npx.set_np()`` is called at import: NumPy semantics for Gluon, process-wide.
- Under ``autograd.record()`` MXNet rejects in-place writes, so the book's loop
  (``Y[i, j] = ...``) is not differentiable; ``corr2d`` calls the native convolution.
- Layout stays NCHW everywhere (MXNet's NHWC convolution fails on CPU), so no
  layout conversion is needed.
- ``mxnet.numpy.pad`` ignores ``constant_values`` (it always pads with 0), so
  ``_pad_hw`` adds the border value after padding.
- ``npx.deconvolution`` with ``dilate > 1`` and ``stride > 1`` is wrong when MKLDNN
  is off, and ``npx.pooling`` has no dilation and keeps a ceil-mode window that
  starts in the padding: kernels are dilated by inserting zeros, dilated max
  pooling is a max over strided slices, and pooling always pads explicitly.
"""

from __future__ import annotations

import os
import warnings
from typing import Any

import numpy as onp

# Storage-fallback notices are logged (harmlessly) for every op when MKLDNN is switched off.
os.environ.setdefault("MXNET_STORAGE_FALLBACK_LOG_VERBOSE", "0")
if "bool" not in vars(onp):  # hasattr() would warn: numpy 1.26 plans to reintroduce np.bool
    onp.bool = bool  # type: ignore[attr-defined]  # mxnet 1.9.1 still uses numpy.bool (apache/mxnet#21165)
with warnings.catch_warnings():
    # mxnet.numpy.fallback touches removed NumPy financial functions; distutils' LooseVersion.
    warnings.filterwarnings("ignore", category=DeprecationWarning, module=r"mxnet(\.|$)")
    import mxnet as mx
    from mxnet import autograd, gluon, npx
    from mxnet import np as mnp
    from mxnet.gluon import nn

from ..chapter import patch_index
from ..checks import as_float32_array, check_corr2d, check_real_dtype, check_same_shape, pair
from ..padding import avg_pool_divisor, conv2d_args, conv_transpose2d_args, pool2d_args

npx.set_np()

NAME = "mxnet"
FRAMEWORK = mx


def tensor(data: Any) -> mnp.ndarray:
    """A float32 ``mxnet.np.ndarray``; MXNet arrays (and Gluon parameters) keep their autograd history."""
    if isinstance(data, gluon.Parameter):
        data = data.data()
    if isinstance(data, mx.nd.NDArray):
        check_real_dtype(onp.dtype(data.dtype).name, "data")
        return data.as_np_ndarray().astype("float32", copy=False)
    return mnp.array(as_float32_array(data), dtype="float32")


def to_numpy(x: Any) -> onp.ndarray:
    """A NumPy array from an MXNet array, a Gluon parameter or any array-like."""
    if isinstance(x, gluon.Parameter):
        x = x.data()
    return as_float32_array(x)


def corr2d(X: Any, K: Any) -> mnp.ndarray:
    """2-D cross-correlation, 'valid': MXNet's own convolution on the (1, 1, H, W) reshaped input."""
    X, K = tensor(X), tensor(K)
    check_corr2d(X.shape, K.shape)
    # At 512x512 with a 3x3 kernel a shift-sum takes 3.6x and im2col 1.6x the native convolution's time.
    Y = npx.convolution(X.reshape(1, 1, *X.shape), K.reshape(1, 1, *K.shape), kernel=K.shape, num_filter=1,
                        no_bias=True)
    return Y.reshape(X.shape[0] - K.shape[0] + 1, X.shape[1] - K.shape[1] + 1)


def corr2d_loop(X: Any, K: Any) -> mnp.ndarray:
    """2-D cross-correlation as the book writes it: one output pixel per loop step.

    Not differentiable: under ``autograd.record()`` MXNet raises MXNetError "Inplace
    operations (+=, -=, x[:]=, etc) are not supported when recording with autograd"
    (the chapter's exercise); ``corr2d`` is the differentiable form.
    """
    X, K = tensor(X), tensor(K)
    check_corr2d(X.shape, K.shape)
    h, w = K.shape
    Y = mnp.zeros((X.shape[0] - h + 1, X.shape[1] - w + 1))
    for i in range(Y.shape[0]):
        for j in range(Y.shape[1]):
            Y[i, j] = (X[i:i + h, j:j + w] * K).sum()
    return Y


def convolve2d(X: Any, K: Any) -> mnp.ndarray:
    """Strict 2-D convolution, 'valid': cross-correlation with K flipped on both axes."""
    X, K = tensor(X), tensor(K)
    check_corr2d(X.shape, K.shape)
    return corr2d(X, K[::-1, ::-1])


def corr2d_matmul(X: Any, K: Any) -> mnp.ndarray:
    """2-D cross-correlation as one matrix product: the patches of X (gathered, one per row) times vec(K)."""
    X, K = tensor(X), tensor(K)
    check_corr2d(X.shape, K.shape)
    patches = X.reshape(-1)[mnp.array(patch_index(X.shape, K.shape))]
    return (patches @ K.reshape(-1)).reshape(X.shape[0] - K.shape[0] + 1, X.shape[1] - K.shape[1] + 1)


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
        self.weight = self.params.get("weight", shape=kernel_size,
                                      init=mx.init.Constant(mnp.random.uniform(size=kernel_size)))
        self.bias = self.params.get("bias", shape=(1,), init=mx.init.Zero())
        self.initialize()

    def forward(self, x: Any) -> mnp.ndarray:
        """``corr2d(x, weight) + bias`` on a 2-D input."""
        return corr2d(x, self.weight.data()) + self.bias.data()


def corr2d_grads(X: Any, K: Any, grad_output: Any) -> tuple[onp.ndarray, onp.ndarray]:
    """Gradients (dX, dK) of ``sum(corr2d(X, K) * grad_output)``, by MXNet's autograd."""
    X, K, dY = tensor(X).copy(), tensor(K).copy(), tensor(grad_output)
    check_corr2d(X.shape, K.shape)
    check_same_shape(dY.shape, (X.shape[0] - K.shape[0] + 1, X.shape[1] - K.shape[1] + 1), "grad_output")
    X.attach_grad()
    K.attach_grad()
    with autograd.record():
        loss = (corr2d(X, K) * dY).sum()
    loss.backward()
    return X.grad.asnumpy(), K.grad.asnumpy()


def learn_kernel(X: onp.ndarray, Y: onp.ndarray, layer: str, kernel_size: tuple[int, int],
                 weight: onp.ndarray | None, bias: float | None, lr: float,
                 epochs: int) -> tuple[list[float], onp.ndarray, float | None]:
    """The book's training loop: squared error, ``autograd.record()``, plain SGD by the Gluon Trainer.

    ``weight`` (and ``bias``) are loaded into the layer; ``weight=None`` keeps its own initialisation.
    """
    if layer == "builtin":
        # in_channels=1 initialises the weight now (not at the first call), so it can be loaded.
        net = nn.Conv2D(1, kernel_size=kernel_size, in_channels=1, use_bias=False)
        net.initialize()
        if weight is not None:
            net.weight.set_data(mnp.array(weight).reshape(1, 1, *kernel_size))
        X, Y = mnp.array(X).reshape(1, 1, *X.shape), mnp.array(Y).reshape(1, 1, *Y.shape)
    else:
        net = Conv2D(kernel_size)
        if weight is not None:
            net.weight.set_data(mnp.array(weight))
        net.bias.set_data(mnp.array([bias]))
        X, Y = mnp.array(X), mnp.array(Y)
    trainer = gluon.Trainer(net.collect_params(), "sgd", {"learning_rate": lr})
    losses = []
    for _ in range(epochs):
        with autograd.record():
            l = (net(X) - Y) ** 2  # noqa: E741 - the book's name
        losses.append(float(l.sum()))
        l.backward()  # as the book: a non-scalar head gets gradient ones, the gradient of l.sum()
        trainer.step(1)  # sgd: weight -= lr * grad (no momentum, no weight decay)
    kernel = net.weight.data().asnumpy().reshape(kernel_size)
    return losses, kernel, None if layer == "builtin" else float(net.bias.data()[0])


def conv2d(x: Any, weight: Any, bias: Any = None, stride: Any = 1, padding: Any = 0, dilation: Any = 1,
           groups: int = 1) -> mnp.ndarray:
    """Batched, multi-channel cross-correlation (NCHW data, OIHW weight), as torch's ``conv2d``."""
    x, weight = tensor(x), tensor(weight)
    bias = None if bias is None else tensor(bias)
    args = conv2d_args(x.shape, weight.shape, None if bias is None else bias.shape, stride, padding, dilation, groups)
    if x.size == 0:  # MXNet's convolution fails on an empty input; every output is the bias alone
        return _add_bias(mnp.zeros((x.shape[0], weight.shape[0], *args.out_hw)), bias)
    y = npx.convolution(_pad_hw(x, args.pads), weight, kernel=weight.shape[2:], stride=args.stride,
                        dilate=args.dilation, num_filter=weight.shape[0], num_group=args.groups, no_bias=True)
    return _add_bias(y, bias)


def conv_transpose2d(x: Any, weight: Any, bias: Any = None, stride: Any = 1, padding: Any = 0,
                     output_padding: Any = 0, dilation: Any = 1, groups: int = 1) -> mnp.ndarray:
    """Transposed convolution (weight (C_in, C_out/groups, kh, kw)): the full ``npx.deconvolution``, cropped."""
    x, weight = tensor(x), tensor(weight)
    bias = None if bias is None else tensor(bias)
    args = conv_transpose2d_args(x.shape, weight.shape, None if bias is None else bias.shape, stride, padding,
                                 output_padding, dilation, groups)
    if x.size == 0:  # MXNet's deconvolution fails on an empty input; the full output is zeros
        full = mnp.zeros((x.shape[0], args.out_channels, *args.full_hw))
    else:  # deconvolution's own dilate is wrong with stride > 1 when MKLDNN is off: dilate the kernel instead
        weight = _dilate(weight, args.dilation)
        full = npx.deconvolution(x, weight, kernel=weight.shape[2:], stride=args.stride,
                                 num_filter=args.out_channels, num_group=args.groups, no_bias=True)
    top, _, left, _ = args.crops
    out_h, out_w = args.out_hw
    grow = (0, max(0, top + out_h - full.shape[2]), 0, max(0, left + out_w - full.shape[3]))
    return _add_bias(_pad_hw(full, grow)[:, :, top:top + out_h, left:left + out_w], bias)


def max_pool2d(x: Any, kernel_size: Any, stride: Any = None, padding: Any = 0, dilation: Any = 1,
               ceil_mode: bool = False) -> mnp.ndarray:
    """Max pooling: the largest of the strided slices, one per window element, of the -inf padded input.

    Not ``npx.pooling``: it has no dilation, skips NaN and turns an all -inf window into -3.4e38.
    """
    x = tensor(x)
    args = pool2d_args(x.shape, kernel_size, stride, padding, dilation, ceil_mode)
    x = _pad_hw(x, args.padded, -onp.inf)
    (kh, kw), (sh, sw), (dh, dw), (out_h, out_w) = args.kernel, args.stride, args.dilation, args.out_hw
    return mnp.stack([x[:, :, a * dh:a * dh + (out_h - 1) * sh + 1:sh, b * dw:b * dw + (out_w - 1) * sw + 1:sw]
                      for a in range(kh) for b in range(kw)]).max(axis=0)


def avg_pool2d(x: Any, kernel_size: Any, stride: Any = None, padding: Any = 0, ceil_mode: bool = False,
               count_include_pad: bool = True) -> mnp.ndarray:
    """Average pooling: MXNet's window sum over the zero-padded input, divided by the shared divisor."""
    x = tensor(x)
    args = pool2d_args(x.shape, kernel_size, stride, padding, 1, ceil_mode)
    total = npx.pooling(_pad_hw(x, args.padded), kernel=args.kernel, stride=args.stride, pool_type="sum",
                        pooling_convention="valid")[:, :, :args.out_hw[0], :args.out_hw[1]]
    return total / mnp.array(avg_pool_divisor(args, x.shape[2:], count_include_pad))


def _pad_hw(x: mnp.ndarray, pads: tuple[int, int, int, int], value: float = 0.0) -> mnp.ndarray:
    """Pad H and W of an NCHW array by (top, bottom, left, right) with ``value``.

    ``mnp.pad`` ignores ``constant_values`` in MXNet 1.9.1, so pad with 0, then add the value on the border.
    """
    if not any(pads):
        return x
    top, bottom, left, right = pads
    widths = ((top, bottom), (left, right))
    padded = mnp.pad(x, ((0, 0), (0, 0), *widths))
    if value == 0:
        return padded
    border = onp.pad(onp.zeros(x.shape[2:], onp.float32), widths, constant_values=value)
    return padded + mnp.array(border)


def _dilate(weight: mnp.ndarray, dilation: tuple[int, int]) -> mnp.ndarray:
    """The kernel with ``dilation - 1`` zeros between neighbouring taps: an undilated kernel of the dilated extent."""
    (c, o, kh, kw), (dh, dw) = weight.shape, dilation
    spread = weight.reshape(c, o, kh, 1, kw, 1)
    spread = mnp.concatenate([spread, mnp.zeros((c, o, kh, dh - 1, kw, 1))], axis=3)
    spread = mnp.concatenate([spread, mnp.zeros((c, o, kh, dh, kw, dw - 1))], axis=5)
    return spread.reshape(c, o, kh * dh, kw * dw)[:, :, :(kh - 1) * dh + 1, :(kw - 1) * dw + 1]


def _add_bias(y: mnp.ndarray, bias: mnp.ndarray | None) -> mnp.ndarray:
    return y if bias is None else y + bias.reshape(1, -1, 1, 1)
