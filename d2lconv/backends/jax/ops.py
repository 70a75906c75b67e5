"""The JAX tab: the chapter in JAX and Flax (linen), differentiated by ``jax.grad`` / ``jax.vjp``.

Quirks it works around:

- float64 needs JAX's x64 switch. ``jax.config.update("jax_enable_x64", True)`` is process-wide
  and would make float64 the default of the user's own ``jnp.zeros`` and ``jnp.array`` too, so
  it is never touched: a computation whose inputs are float64 runs inside the thread-local
  ``enable_x64`` context manager instead (``jax.enable_x64`` in newer JAX,
  ``jax.experimental.enable_x64`` in 0.7), and float32 computations run as the user's JAX
  does. Results keep their dtype after the context ends, but JAX's own ``jnp`` operations on
  them outside it compute in float32 unless the user enables x64: d2lconv's functions do not.
  The same holds for the user's own ``jax.grad`` around a float64 call (its backward pass runs
  after the context has ended); ``grads.vjp`` differentiates inside it.
- ``lax.conv_general_dilated`` and ``lax.reduce_window`` take NCHW / OIHW and NHWC / HWIO alike
  through ``dimension_numbers`` (the window's axes) and explicit per-side padding, so nothing is
  transposed in either ``data_format``; padding with
  the init value -inf makes max pooling ignore the padding.
- ``reduce_window`` max pooling has no gradient with window dilation: dilated max pooling is the
  max over the kernel's strided slices.
- Transposed convolution is the convolution of the input dilated by the stride
  (``lhs_dilation``) with the kernel flipped and its in/out axes swapped; negative padding crops.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

try:  # the thread-local x64 switch: ``jax.enable_x64`` from JAX 0.8, ``jax.experimental.enable_x64`` before
    from jax import enable_x64 as _enable_x64
except ImportError:
    from jax.experimental import enable_x64 as _enable_x64

from ...core.args import ConvArgs, ConvTransposeArgs, PoolArgs, avg_pool_divisor
from ...core.checks import as_float_array, check_real_dtype, dtype_name, float_dtype

NAME = "jax"
FRAMEWORK = jax
# What ``native_op`` calls, the baseline ``d2lconv bench --ops`` times this tab against.
NATIVE_CALLS = "lax.conv_general_dilated / reduce_window, jax.vjp (eager)"

_F = TypeVar("_F", bound=Callable[..., Any])
_NCHW = ("NCHW", "OIHW", "NCHW")
_NHWC = ("NHWC", "HWIO", "NHWC")


def _is_float64(value: Any) -> bool:
    if isinstance(value, str):
        return value == "float64"
    if isinstance(value, tuple):  # the inputs of grads.vjp
        return any(_is_float64(v) for v in value)
    return hasattr(value, "dtype") and dtype_name(value.dtype) == "float64"


def _x64_for_float64(function: _F) -> _F:
    """Run ``function`` inside JAX's x64 context when one of its arguments is float64 (or
    ``"float64"``), so float64 stays float64 without changing JAX's float32 default anywhere else."""

    @functools.wraps(function)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if any(_is_float64(v) for v in args) or any(_is_float64(v) for v in kwargs.values()):
            with _enable_x64(True):
                return function(*args, **kwargs)
        return function(*args, **kwargs)

    return wrapper  # type: ignore[return-value]


@_x64_for_float64
def tensor(data: Any, dtype: str | None = None) -> jax.Array:
    """A ``jax.Array``: float64 data stays float64, anything else becomes float32; ``dtype`` forces one.

    A JAX array (or a tracer, inside ``jax.grad``) is cast only if its dtype differs, so
    differentiation follows it; anything else is copied in.
    """
    if isinstance(data, jax.Array):
        name = dtype_name(data.dtype)
        check_real_dtype(name, "data")
        target = float_dtype(name, dtype)
        return data if name == target else data.astype(target)
    return jnp.asarray(as_float_array(data, dtype))


def to_numpy(x: Any) -> np.ndarray:
    """A NumPy array (float64 kept) from a JAX array or an array-like."""
    if isinstance(x, jax.Array):
        return np.asarray(tensor(x))
    return as_float_array(x)


@_x64_for_float64
def conv2d(x: jax.Array, weight: jax.Array, bias: jax.Array | None, args: ConvArgs) -> jax.Array:
    """Batched, multi-channel cross-correlation (NCHW data and OIHW weight, or NHWC and HWIO):
    ``lax.conv_general_dilated``."""
    top, bottom, left, right = args.pads
    y = lax.conv_general_dilated(
        x,
        weight,
        args.stride,
        [(top, bottom), (left, right)],
        rhs_dilation=args.dilation,
        dimension_numbers=_NHWC if args.channels_last else _NCHW,
        feature_group_count=args.groups,
    )
    return _add_bias(y, bias, args.channels_last)


@_x64_for_float64
def conv_transpose2d(x: jax.Array, weight: jax.Array, bias: jax.Array | None, args: ConvTransposeArgs) -> jax.Array:
    """Transposed convolution (weight (C_in, C_out/groups, kh, kw), or with NHWC data (kh, kw, C_out/groups,
    C_in)): a convolution of the input dilated by the stride with the flipped kernel, padded to the full
    output and cropped in one go."""
    g = args.groups
    if args.channels_last:  # (kh, kw, C_out/g, C_in) -> HWIO (kh, kw, C_in/g, C_out), flipped on both spatial axes
        kh, kw, c_out_g, c_in = weight.shape
        kernel = weight.reshape(kh, kw, c_out_g, g, c_in // g).transpose(0, 1, 4, 3, 2)
        kernel = kernel.reshape(kh, kw, c_in // g, g * c_out_g)[::-1, ::-1]
    else:  # (C_in, C_out/g, kh, kw) -> OIHW (C_out, C_in/g, kh, kw), flipped on both spatial axes
        c_in, c_out_g, kh, kw = weight.shape
        kernel = weight.reshape(g, c_in // g, c_out_g, kh, kw).transpose(0, 2, 1, 3, 4)
        kernel = kernel.reshape(g * c_out_g, c_in // g, kh, kw)[:, :, ::-1, ::-1]
    top, bottom, left, right = args.crops
    (out_h, out_w), (full_h, full_w) = args.out_hw, args.full_hw
    extent_h, extent_w = (d * (k - 1) for d, k in zip(args.dilation, (kh, kw), strict=True))
    # Full output: pad (extent - 1) on both sides; a crop is a negative pad, output_padding a positive one.
    pads = [(extent_h - top, extent_h - full_h + top + out_h), (extent_w - left, extent_w - full_w + left + out_w)]
    y = lax.conv_general_dilated(
        x,
        kernel,
        (1, 1),
        pads,
        lhs_dilation=args.stride,
        rhs_dilation=args.dilation,
        dimension_numbers=_NHWC if args.channels_last else _NCHW,
        feature_group_count=g,
    )
    return _add_bias(y, bias, args.channels_last)


@_x64_for_float64
def max_pool2d(x: jax.Array, args: PoolArgs) -> jax.Array:
    """Max pooling: ``lax.reduce_window`` with ``lax.max`` from -inf, the padding and the ceil-mode
    overhang filled with -inf."""
    if args.dilation == (1, 1):
        return _reduce_window(x, -jnp.inf, lax.max, args)
    # JAX has no gradient for a dilated reduce_window max: take the max over the kernel's strided
    # slices instead, keeping the first maximum (and a NaN) so the gradient goes where torch sends it.
    top, bottom, left, right = args.padded
    x = jnp.pad(x, _spatial(args, (top, bottom), (left, right), (0, 0)), constant_values=-jnp.inf)
    (kh, kw), (sh, sw), (dh, dw), (out_h, out_w) = args.kernel, args.stride, args.dilation, args.out_hw
    best = None
    for a in range(kh):
        for b in range(kw):
            rows = slice(a * dh, a * dh + (out_h - 1) * sh + 1, sh)
            window = x[_spatial(args, rows, slice(b * dw, b * dw + (out_w - 1) * sw + 1, sw), slice(None))]
            best = window if best is None else jnp.where((window > best) | jnp.isnan(window), window, best)
    return best


@_x64_for_float64
def avg_pool2d(x: jax.Array, args: PoolArgs) -> jax.Array:
    """Average pooling: window sums (``lax.reduce_window`` with ``lax.add``) over the shared divisor."""
    total = _reduce_window(x, 0.0, lax.add, args)
    if args.count_include_pad and args.padded == args.pads:  # every window holds kh * kw elements, padding included
        return total / (args.kernel[0] * args.kernel[1])
    divisor = avg_pool_divisor(args)
    return total / jnp.asarray(divisor[:, :, None] if args.channels_last else divisor, x.dtype)


def _spatial(args: Any, height: Any, width: Any, other: Any) -> tuple[Any, ...]:
    """Per-axis values of an NCHW or NHWC array (``args.channels_last``): ``height`` and ``width`` on its
    spatial axes, ``other`` on the batch and channel axes."""
    return (other, height, width, other) if args.channels_last else (other, other, height, width)


def _reduce_window(x: jax.Array, init: float, reducer: Callable[..., Any], args: Any) -> jax.Array:
    top, bottom, left, right = args.padded
    return lax.reduce_window(
        x,
        np.asarray(init, x.dtype),  # a NumPy scalar: a jnp one would be one more dispatch on the device
        reducer,
        _spatial(args, args.kernel[0], args.kernel[1], 1),
        _spatial(args, args.stride[0], args.stride[1], 1),
        _spatial(args, (top, bottom), (left, right), (0, 0)),
        window_dilation=_spatial(args, args.dilation[0], args.dilation[1], 1),
    )


def _add_bias(y: jax.Array, bias: jax.Array | None, channels_last: bool) -> jax.Array:
    if bias is None:
        return y
    return y + (bias if channels_last else bias.reshape(1, -1, 1, 1))


def native_op(
    op: str, inputs: tuple[Any, ...], kwargs: dict[str, Any], grad_output: Any = None, data_format: str = "NCHW"
) -> Callable[[], Any]:
    """JAX's own call of a batched ``op`` for ``d2lconv bench --ops``, as a zero-argument callable, eager
    (not jitted, as d2lconv's ops are): ``lax.conv_general_dilated``, ``lax.conv_transpose`` (torch's
    kernel layout, ``transpose_kernel=True``), ``lax.reduce_window``; with ``grad_output``, ``jax.vjp``.

    ``inputs`` are NCHW arrays (a weight in d2lconv's NCHW layout), ``kwargs`` int ``stride``/``padding``
    (``kernel_size`` for pooling). With ``data_format="NHWC"`` the call is on NHWC data and HWIO weights,
    converted here, once.
    """
    stride, pad = kwargs.get("stride", 1), kwargs.get("padding", 0)
    nhwc = data_format == "NHWC"
    if nhwc:
        inputs = (inputs[0].transpose(0, 2, 3, 1), *(w.transpose(2, 3, 1, 0) for w in inputs[1:]))
        grad_output = None if grad_output is None else grad_output.transpose(0, 2, 3, 1)
    numbers = _NHWC if nhwc else _NCHW
    if op in ("conv2d", "conv_transpose2d"):
        reach = inputs[1].shape[0 if nhwc else 2] - 1 - pad
        if op == "conv2d":

            def call(*leaves: jax.Array) -> jax.Array:
                x, weight = leaves
                return lax.conv_general_dilated(
                    x, weight, (stride, stride), [(pad, pad)] * 2, dimension_numbers=numbers
                )
        else:

            def call(*leaves: jax.Array) -> jax.Array:
                x, weight = leaves
                return lax.conv_transpose(
                    x, weight, (stride, stride), [(reach, reach)] * 2, dimension_numbers=numbers, transpose_kernel=True
                )
    else:
        size = kwargs["kernel_size"]
        window: tuple[Any, ...] = (1, size, size)
        strides: tuple[Any, ...] = (1, stride, stride)
        pads: tuple[Any, ...] = ((0, 0), (pad, pad), (pad, pad))
        if nhwc:  # the window's last entry is the channels'
            window, strides, pads = (*window, 1), (*strides, 1), (*pads, (0, 0))
        else:
            window, strides, pads = (1, *window), (1, *strides), ((0, 0), *pads)

        def call(*leaves: jax.Array) -> jax.Array:
            x = leaves[0]
            if op == "max_pool2d":
                return lax.reduce_window(x, -jnp.inf, lax.max, window, strides, pads)
            return lax.reduce_window(x, 0.0, lax.add, window, strides, pads) / (size * size)

    if grad_output is None:
        return lambda: call(*inputs)
    return lambda: jax.vjp(call, *inputs)[1](grad_output)
