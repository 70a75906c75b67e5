"""The TensorFlow tab: the chapter in TensorFlow 2 / Keras 3, eager, with ``GradientTape``.

Quirks it works around:

- The book's ``corr2d`` fills a ``tf.Variable`` with ``assign``, which a ``GradientTape``
  cannot differentiate (the gradient is silently ``None``): it stays as ``corr2d_loop``,
  and ``corr2d`` calls ``tf.nn.conv2d``, differentiable w.r.t. both X and K.
- The book's ``Conv2D(tf.keras.layers.Layer)`` defines ``build(self, kernel_size)``, but Keras
  calls ``build`` with the input's shape, so its kernel gets the image's shape. Ours takes
  ``kernel_size`` in the constructor and creates ``weight`` and ``bias`` there.
- Keras rewrites the message of any error raised in ``call`` and takes only tensors
  positionally, so ``Conv2D.__call__`` converts and checks its input first.
- TensorFlow is NHWC / HWIO: ``data_format="NHWC"`` calls its ops as they are; NCHW data and
  OIHW weights are transposed at the edge, in ``_to_nhwc``, ``_to_nchw`` and ``_to_hwio`` only.
  Without oneDNN (``TF_ENABLE_ONEDNN_OPTS=0``, or CPUs
  where it is off by default) NCHW convolution, dilated transposed convolution and grouped
  transposed convolution fail on CPU, so none of them is used: the transposed-convolution
  kernel is dilated by inserting zeros, and groups are split and concatenated. The gradient
  of a dilated ``conv2d`` is a dilated transposed convolution ("Current CPU implementations
  do not yet support dilation rates larger than 1"), and TF has no CPU gradient of a grouped
  ``conv2d``, so ``conv2d`` dilates its kernel and splits its groups too.
- Pooling has no ceil mode, no ``count_include_pad``, no explicit padding for average pooling,
  and no dilation with a stride: pad explicitly, pool 'VALID', divide by the shared divisor, and
  take dilated max pooling as the max over the kernel's strided slices.
- The kernels are called as ``tf.raw_ops`` with their final attributes: the arguments are
  normalised once, before the tab, and ``tf.nn``'s second pass costs 5-20 us a call. Max pooling
  pads explicitly even where TF's 'SAME' means the same windows, as a TF user writing torch's pads
  does: 'SAME' takes another kernel, 2.5x slower at 1x3x32x32 and 0.7x at 8x64x56x56 (measured).
- ``TF_CPP_MIN_LOG_LEVEL`` defaults to 1 (no C++ INFO lines; warnings and errors show), and
  the oneDNN notice that TensorFlow 2.21 prints at import whatever that level is, is dropped.
"""

from __future__ import annotations

import contextlib
import functools
import os
import tempfile
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

from ...core.args import ConvArgs, ConvTransposeArgs, PoolArgs, avg_pool_divisor, explicit_padding
from ...core.checks import as_float_array, check_real_dtype, float_dtype

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "1")
# The two lines TensorFlow writes to stderr at import whatever TF_CPP_MIN_LOG_LEVEL says.
_IMPORT_NOTICES = ("oneDNN custom operations are on", "All log messages before absl::InitializeLog() is called")


@contextlib.contextmanager
def _stderr_without(notices: tuple[str, ...]) -> Iterator[None]:
    """Hold back what is written to file descriptor 2 in the block, then write it out without
    the lines that contain one of ``notices``: C++ logs bypass Python's ``warnings``."""
    try:
        saved = os.dup(2)
    except OSError:  # no stderr at all: nothing to keep clean
        yield
        return
    with tempfile.TemporaryFile() as held:
        os.dup2(held.fileno(), 2)
        try:
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            held.seek(0)
            kept = [
                line
                for line in held.read().splitlines(keepends=True)
                if not any(notice.encode() in line for notice in notices)
            ]
            os.write(2, b"".join(kept))


with _stderr_without(_IMPORT_NOTICES):
    import tensorflow as tf

NAME = "tensorflow"
FRAMEWORK = tf
# What ``native_op`` calls, the baseline ``d2lconv bench --ops`` times this tab against.
NATIVE_CALLS = "tf.nn.<op> on NHWC data (pooling padded as torch pads), GradientTape"
_FLOATS = (tf.float32, tf.float64)


def tensor(data: Any, dtype: str | None = None) -> tf.Tensor:
    """A float32 (or float64, from float64 data or ``dtype``) ``tf.Tensor`` from nested lists, NumPy,
    any framework's tensor, or a TF tensor or variable (cast, so a ``GradientTape`` still follows it)."""
    if isinstance(data, tf.Tensor) and data.dtype in _FLOATS and dtype in (None, data.dtype.name):
        return data  # the common case: nothing to do (tf.cast would still cost an op dispatch)
    if tf.is_tensor(data):  # tf.Tensor, tf.Variable, Keras variables
        name = tf.as_dtype(data.dtype).name
        check_real_dtype(name, "data")
        return tf.cast(data, float_dtype(name, dtype))
    return tf.constant(as_float_array(data, dtype))


def to_numpy(x: Any) -> np.ndarray:
    """A NumPy array (float64 kept) from a TF tensor or variable (``.numpy()``) or any array-like."""
    return as_float_array(x)


def conv2d(x: tf.Tensor, weight: tf.Tensor, bias: tf.Tensor | None, args: ConvArgs) -> tf.Tensor:
    """Batched, multi-channel cross-correlation (NCHW data, OIHW weight, or NHWC and HWIO), as torch's ``conv2d``.

    Without groups or dilation, ``tf.nn.conv2d`` itself, with 'SAME' or 'VALID' where they mean the
    same pads (TF's explicit padding is slower). Otherwise explicit pads, one call per group, with the
    kernel dilated by inserting zeros: TF's own grouped and dilated ``conv2d`` run forward, but their
    gradients fail on CPU.
    """
    if not args.channels_last:
        x, weight = _to_nhwc(x), _to_hwio(weight)
    if 0 in x.shape:  # every sum is empty: 0; TF's conv rejects this or (oneDNN, empty batch) returns x itself
        y = tf.zeros((x.shape[0], *args.out_hw, weight.shape[3]), x.dtype)
    elif args.groups == 1 and args.dilation == (1, 1):
        padding = _kernel_padding(args.pads, tuple(x.shape)[1:3], tuple(weight.shape)[:2], args.stride)
        y = tf.raw_ops.Conv2D(input=x, filter=weight, strides=_nhwc_pair(args.stride), **padding)
    else:
        top, bottom, left, right = args.pads
        pads = [[0, 0], [top, bottom], [left, right], [0, 0]]
        kernels = tf.split(_dilate(weight, args.dilation), args.groups, axis=3)
        y = tf.concat(
            [
                tf.nn.conv2d(part, kernel, strides=args.stride, padding=pads)
                for part, kernel in zip(tf.split(x, args.groups, axis=3), kernels, strict=True)
            ],
            axis=3,
        )
    return _in_layout(_add_bias(y, bias), args.channels_last)


def conv_transpose2d(x: tf.Tensor, weight: tf.Tensor, bias: tf.Tensor | None, args: ConvTransposeArgs) -> tf.Tensor:
    """Transposed convolution (weight (C_in, C_out/groups, kh, kw), or with NHWC data (kh, kw, C_out/groups, C_in)
    as ``tf.nn.conv2d_transpose`` takes it), as torch's ``conv_transpose2d``.

    Without groups or dilation, ``tf.nn.conv2d_transpose`` itself, its crop as padding. Otherwise
    the full 'VALID' one, cropped; the kernel is dilated by inserting zeros and the groups are
    split and concatenated, as TF's CPU kernels do neither everywhere.
    """
    if not args.channels_last:
        x, weight = _to_nhwc(x), _to_hwio(weight)
    n, per_group = x.shape[0], weight.shape[2]
    top, bottom, left, right = args.crops
    (out_h, out_w), (full_h, full_w) = args.out_hw, args.full_hw
    # The extra rows of output_padding come off the bottom/right crop: TF's output is (in-1)*s + k - pads.
    pads = (top, bottom - (out_h - (full_h - top - bottom)), left, right - (out_w - (full_w - left - right)))
    if args.groups == 1 and args.dilation == (1, 1) and min(pads) >= 0 and 0 not in x.shape:
        padding = _kernel_padding(pads, args.out_hw, tuple(weight.shape)[:2], args.stride)
        y = tf.raw_ops.Conv2DBackpropInput(
            input_sizes=(n, out_h, out_w, per_group),
            filter=weight,
            out_backprop=x,
            strides=_nhwc_pair(args.stride),
            **padding,
        )
        return _in_layout(_add_bias(y, bias), args.channels_last)
    kernels = tf.split(_dilate(weight, args.dilation), args.groups, axis=3)
    full = tf.concat(
        [
            tf.nn.conv2d_transpose(part, kernel, (n, *args.full_hw, per_group), strides=args.stride, padding="VALID")
            for part, kernel in zip(tf.split(x, args.groups, axis=3), kernels, strict=True)
        ],
        axis=3,
    )
    grow = [[0, 0], [0, max(0, top + out_h - full.shape[1])], [0, max(0, left + out_w - full.shape[2])], [0, 0]]
    y = tf.pad(full, grow)[:, top : top + out_h, left : left + out_w]
    return _in_layout(_add_bias(y, bias), args.channels_last)


def max_pool2d(x: tf.Tensor, args: PoolArgs) -> tf.Tensor:
    """Max pooling; padding and the ceil-mode overhang count as -inf (TF's own padding of max pooling).

    Dilated windows: the max over the kernel's strided slices (TF pools dilated only with stride 1).
    """
    if not args.channels_last:
        x = _to_nhwc(x)
    if args.dilation == (1, 1):
        y = tf.raw_ops.MaxPool(
            input=x, ksize=_nhwc_pair(args.kernel), strides=_nhwc_pair(args.stride), **_explicit(args.padded)
        )
        return _in_layout(y, args.channels_last)
    x = _pad_hw(x, args.padded, -np.inf)
    y = tf.reduce_max(tf.stack(_window_taps(x, args.kernel, args.stride, args.dilation, args.out_hw)), axis=0)
    return _in_layout(y, args.channels_last)


def avg_pool2d(x: tf.Tensor, args: PoolArgs) -> tf.Tensor:
    """Average pooling; the divisor counts real elements (and padding if ``count_include_pad``).

    Over the zero-padded input, TF's 'VALID' mean is the answer when the padding counts and no
    ceil-mode window overhangs it; otherwise that mean times the window size is the window sum.
    """
    if not args.channels_last:
        x = _to_nhwc(x)
    if args.padded == args.pads and (args.count_include_pad or not any(args.pads)):
        return _in_layout(_valid_avg_pool(_pad_hw(x, args.pads, 0.0), args), args.channels_last)
    kh, kw = args.kernel
    total = _valid_avg_pool(_pad_hw(x, args.padded, 0.0), args) * (kh * kw)
    divisor = avg_pool_divisor(args)[:, :, None]
    return _in_layout(total / tf.constant(divisor, x.dtype), args.channels_last)


def _valid_avg_pool(x: tf.Tensor, args: PoolArgs) -> tf.Tensor:
    return tf.raw_ops.AvgPool(value=x, ksize=_nhwc_pair(args.kernel), strides=_nhwc_pair(args.stride), padding="VALID")


@functools.lru_cache(maxsize=256)
def _nhwc_pair(pair: tuple[int, int]) -> list[int]:
    """A (height, width) stride or window as the NHWC kernels' four values."""
    return [1, *pair, 1]


@functools.lru_cache(maxsize=256)
def _explicit(pads: tuple[int, int, int, int]) -> dict[str, Any]:
    """``pads`` (top, bottom, left, right) as a kernel's ``padding`` and ``explicit_paddings`` attributes."""
    if not any(pads):
        return {"padding": "VALID"}
    top, bottom, left, right = pads
    return {"padding": "EXPLICIT", "explicit_paddings": [0, 0, top, bottom, left, right, 0, 0]}


@functools.lru_cache(maxsize=256)
def _kernel_padding(
    pads: tuple[int, int, int, int], in_hw: tuple[int, int], kernel: tuple[int, int], stride: tuple[int, int]
) -> dict[str, Any]:
    """A convolution's padding attributes: 'SAME' where ``pads`` are TF's SAME pads for this input
    (TF's explicit padding is slower for convolutions), else as ``_explicit``."""
    if any(pads) and pads == explicit_padding("same", in_hw, kernel, stride, (1, 1)):
        return {"padding": "SAME"}
    return _explicit(pads)


def _pad_hw(x: tf.Tensor, pads: tuple[int, int, int, int], value: float) -> tf.Tensor:
    if not any(pads):
        return x
    return tf.pad(x, _nhwc_paddings(pads), constant_values=value)


@functools.lru_cache(maxsize=256)
def _nhwc_paddings(pads: tuple[int, int, int, int]) -> tf.Tensor:
    """``tf.pad``'s paddings of an NHWC tensor as a tensor made once: a nested list is converted on
    every call (about 90 us more per pad on this project's machine)."""
    top, bottom, left, right = pads
    return tf.constant([[0, 0], [top, bottom], [left, right], [0, 0]])


def _conv_valid(X: tf.Tensor, K: tf.Tensor) -> tf.Tensor:
    """'valid' cross-correlation of 2-D X and K by ``tf.nn.conv2d`` on one image, one channel."""
    (h, w), (kh, kw) = X.shape, K.shape
    Y = tf.nn.conv2d(tf.reshape(X, (1, h, w, 1)), tf.reshape(K, (kh, kw, 1, 1)), strides=1, padding="VALID")
    return tf.reshape(Y, (h - kh + 1, w - kw + 1))


# The permutations as tensors made once: a Python tuple is converted on every call, which takes
# TF's slow path (about 130 us more per transpose on this project's machine).
_NCHW_TO_NHWC = tf.constant((0, 2, 3, 1))
_NHWC_TO_NCHW = tf.constant((0, 3, 1, 2))
_OIHW_TO_HWIO = tf.constant((2, 3, 1, 0))


def _to_nhwc(x: tf.Tensor) -> tf.Tensor:
    return tf.transpose(x, _NCHW_TO_NHWC)


def _to_nchw(y: tf.Tensor) -> tf.Tensor:
    return tf.transpose(y, _NHWC_TO_NCHW)


def _in_layout(y: tf.Tensor, channels_last: bool) -> tf.Tensor:
    """An NHWC result in the caller's layout."""
    return y if channels_last else _to_nchw(y)


def _to_hwio(weight: tf.Tensor) -> tf.Tensor:
    """OIHW -> HWIO for ``conv2d``; the same transpose turns a transposed-convolution weight
    (C_in, C_out/groups, kh, kw) into ``conv2d_transpose``'s (kh, kw, C_out/groups, C_in)."""
    return tf.transpose(weight, _OIHW_TO_HWIO)


def _dilate(kernel: tf.Tensor, dilation: tuple[int, int]) -> tf.Tensor:
    """A (kh, kw, ...) kernel with ``dilation - 1`` zeros between its taps."""
    if dilation == (1, 1):
        return kernel
    (kh, kw), (dh, dw) = kernel.shape[:2], dilation
    spread = tf.pad(kernel[:, None, :, None], [[0, 0], [0, dh - 1], [0, 0], [0, dw - 1], [0, 0], [0, 0]])
    return tf.reshape(spread, (kh * dh, kw * dw, *kernel.shape[2:]))[: (kh - 1) * dh + 1, : (kw - 1) * dw + 1]


def _window_taps(
    x: tf.Tensor, kernel: tuple[int, int], stride: tuple[int, int], dilation: tuple[int, int], out_hw: tuple[int, int]
) -> list[tf.Tensor]:
    """One strided slice (N, out_h, out_w, C) of a padded NHWC tensor per kernel element."""
    (sh, sw), (dh, dw), (oh, ow) = stride, dilation, out_hw
    return [
        x[:, a * dh : a * dh + (oh - 1) * sh + 1 : sh, b * dw : b * dw + (ow - 1) * sw + 1 : sw]
        for a in range(kernel[0])
        for b in range(kernel[1])
    ]


def _add_bias(y: tf.Tensor, bias: tf.Tensor | None) -> tf.Tensor:
    return y if bias is None else tf.raw_ops.BiasAdd(value=y, bias=bias)


def native_op(
    op: str, inputs: tuple[Any, ...], kwargs: dict[str, Any], grad_output: Any = None, data_format: str = "NCHW"
) -> Callable[[], Any]:
    """TensorFlow's own call of a batched ``op`` for ``d2lconv bench --ops``, as a TF user writes it:
    ``tf.nn`` on NHWC data and an HWIO filter, ``'SAME'`` / ``'VALID'`` padding; with ``grad_output``
    its gradients by ``GradientTape``. A zero-argument callable; the layouts are converted here, once.

    ``inputs`` are NCHW tensors (a weight in d2lconv's layout), ``kwargs`` int ``stride``/``padding``
    (``kernel_size`` for pooling); a convolution's padding of half the kernel is 'SAME', zero 'VALID';
    pooling pads as torch does (the same windows as d2lconv's): max pooling with TF's explicit padding,
    average pooling by ``tf.pad`` then 'VALID', the padding counted in the mean.
    """
    stride, pad = kwargs.get("stride", 1), kwargs.get("padding", 0)
    x = _to_nhwc(inputs[0])
    if op in ("conv2d", "conv_transpose2d"):
        weight = _to_hwio(inputs[1])
        padding = "VALID" if pad == 0 else "SAME"
        if op == "conv2d":

            def call(*leaves: tf.Tensor) -> tf.Tensor:
                x, weight = leaves
                return tf.nn.conv2d(x, weight, stride, padding)
        else:
            n, h, w, _ = x.shape
            shape = (
                n,
                (h - 1) * stride + weight.shape[0] - 2 * pad,
                (w - 1) * stride + weight.shape[1] - 2 * pad,
                weight.shape[2],
            )

            def call(*leaves: tf.Tensor) -> tf.Tensor:
                x, weight = leaves
                return tf.nn.conv2d_transpose(x, weight, shape, stride, padding)

        leaves: tuple[tf.Tensor, ...] = (x, weight)
    else:
        size, paddings = kwargs["kernel_size"], [[0, 0], [pad, pad], [pad, pad], [0, 0]]
        if op == "max_pool2d":  # explicit padding: TF's 'SAME' puts the odd row at the bottom, torch's p at both ends

            def call(*leaves: tf.Tensor) -> tf.Tensor:
                return tf.nn.max_pool2d(leaves[0], size, stride or size, paddings if pad else "VALID")
        else:  # TF's average pooling has no explicit padding, and 'SAME' leaves the padding out of the mean
            padded = tf.constant(paddings)

            def call(*leaves: tf.Tensor) -> tf.Tensor:
                return tf.nn.avg_pool2d(tf.pad(leaves[0], padded), size, stride or size, "VALID")

        leaves = (x,)
    if grad_output is None:
        return lambda: call(*leaves)
    grad_nhwc = _to_nhwc(grad_output)

    def gradients() -> list[tf.Tensor]:
        with tf.GradientTape() as tape:
            tape.watch(leaves)
            y = call(*leaves)
        return tape.gradient(y, leaves, output_gradients=grad_nhwc)

    return gradients
