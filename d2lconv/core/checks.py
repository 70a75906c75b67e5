"""Input validation shared by every backend: one message for one mistake, everywhere.

Adapters call these before touching their framework, so a bad input raises the
same ``ValueError`` or ``TypeError`` on every backend and never a framework's own
exception.
"""

from __future__ import annotations

import functools
import inspect
import numbers
from collections.abc import Callable, Sequence
from typing import Any, TypeVar, cast

import numpy as np

Shape = Sequence[int]
Function = TypeVar("Function", bound=Callable[..., Any])


def to_array(data: Any, name: str = "data") -> np.ndarray:
    """A NumPy array from any framework's tensor (grad-tracking ones too) or an array-like (called ``name``)."""
    # A framework's tensor is typed Any here (no framework is imported); each conversion returns an ndarray.
    if hasattr(data, "asnumpy"):  # mxnet
        return cast(np.ndarray, data.asnumpy())
    if hasattr(data, "detach") and hasattr(data, "cpu"):  # torch, paddle
        return cast(np.ndarray, data.detach().cpu().numpy())
    if hasattr(data, "numpy") and not isinstance(data, np.ndarray):  # tensorflow
        return cast(np.ndarray, data.numpy())
    try:
        return np.asarray(data)
    except ValueError:  # ragged nested lists
        raise ValueError(f"{name} must be rectangular: a nested list whose rows differ in length") from None


def as_float32_array(data: Any, name: str = "data") -> np.ndarray:
    """``data`` as a float32 NumPy array; a ``TypeError`` naming ``name`` if it is not numeric."""
    array = to_array(data, name)
    if array.dtype.kind not in "biuf":
        raise TypeError(f"{name} must hold real numbers, got {array.dtype} data")
    return array.astype(np.float32, copy=False)


def as_float_array(data: Any, dtype: str | None = None, name: str = "data") -> np.ndarray:
    """``data`` as a NumPy array of the float type of the dtype policy (``float_dtype``): float64 only
    from float64 arrays and tensors, as lists and Python floats are float32 data. A ``TypeError``
    naming ``name`` if it is not numeric. No copy when the dtype is already right."""
    array = to_array(data)
    if array.dtype.kind not in "biuf":
        raise TypeError(f"{name} must hold real numbers, got {array.dtype} data")
    source = dtype_name(array.dtype) if hasattr(data, "dtype") else "float32"
    return array.astype(float_dtype(source, dtype), copy=False)


DTYPES = ("float32", "float64")


@functools.lru_cache(maxsize=128)  # every op call names its inputs' dtypes, and NumPy takes microseconds to
def dtype_name(dtype: Any) -> str:  # name one (str(np.dtype) ~7 us): each dtype object is named once
    """A framework's dtype object by its plain name: ``"float32"``, ``"int64"``, ``"bool"``."""
    if isinstance(dtype, type):  # MXNet's legacy arrays give NumPy's scalar types
        return dtype.__name__
    text = str(dtype)
    if text.startswith(("torch.", "paddle.")):
        return text.split(".", 1)[1]
    return str(getattr(dtype, "name", text))  # NumPy (JAX, MXNet) and TensorFlow dtypes have a name


def float_dtype(dtype_name: str, dtype: str | None = None) -> str:
    """The float type d2lconv computes in for data of ``dtype_name``: ``dtype`` when given
    (``"float32"`` or ``"float64"``), else float64 for float64 data and float32 for
    anything else (lists, integers, booleans, float16)."""
    if dtype is not None:
        if dtype not in DTYPES:
            raise ValueError(f"dtype must be one of {DTYPES}, got {dtype!r}")
        return dtype
    return "float64" if "float64" in str(dtype_name).lower() or str(dtype_name).lower() == "double" else "float32"


@functools.lru_cache(maxsize=256)  # called on every op with a few dtype names: worked out once per combination
def common_dtype(*dtype_names: str) -> str:
    """float64 if any input is float64 (float64 wins when float32 and float64 mix), else float32."""
    return "float64" if any(float_dtype(name) == "float64" for name in dtype_names) else "float32"


def result_dtype(*inputs: Any) -> str:
    """The dtype an op computes in: float64 if any input (``None`` skipped) is float64, else float32.

    Reads only ``.dtype`` (lists and scalars count as float32), so it converts nothing.
    """
    return common_dtype(*(dtype_name(x.dtype) if hasattr(x, "dtype") else "float32" for x in inputs if x is not None))


def same_dtype_tensors(tensor: Callable[..., Any], *inputs: Any) -> list[Any]:
    """``inputs`` as one backend's tensors (its ``tensor(data, dtype)``), all in ``result_dtype``; None kept."""
    dtype = result_dtype(*inputs)
    return [None if x is None else tensor(x, dtype) for x in inputs]


# The differentiable ops, and how many of their leading positional arguments are tensors (the rest,
# such as a pooling kernel_size given positionally, get no gradient).
TENSOR_INPUTS: dict[str, int] = {
    "corr2d": 2,
    "convolve2d": 2,
    "conv2d": 3,
    "conv_transpose2d": 3,
    "max_pool2d": 1,
    "avg_pool2d": 1,
    "batch_norm": 5,  # the gradient of its output Y; the moving statistics it returns are not differentiated
}


def check_op(op: Any) -> str:
    """The name of a differentiable op (``dc.vjp``'s ``op``): one of ``TENSOR_INPUTS``, or the function of that name."""
    name = getattr(op, "__name__", op)
    if (
        not isinstance(name, str)
        or name not in TENSOR_INPUTS
        or (callable(op) and getattr(op, "__module__", "") != "d2lconv")
    ):
        raise ValueError(f"op must be one of {', '.join(TENSOR_INPUTS)} (a name or the d2lconv function), got {op!r}")
    return name


@functools.lru_cache(maxsize=128)  # on every conversion of a native tensor: only accepted dtypes are kept
def check_real_dtype(dtype_name: str, name: str) -> None:
    """Reject a native tensor whose dtype is not a real number type (complex, string, ...)."""
    lowered = dtype_name.lower()
    if not any(kind in lowered for kind in ("float", "int", "bool", "half")) or "complex" in lowered:
        raise TypeError(f"{name} must hold real numbers, got {dtype_name} data")


DATA_FORMATS = {"NCHW": "NCHW", "NHWC": "NHWC", "CHANNELS_FIRST": "NCHW", "CHANNELS_LAST": "NHWC"}


def data_format(value: Any) -> str:
    """``"NCHW"`` or ``"NHWC"`` from a ``data_format`` (Keras's ``"channels_first"`` / ``"channels_last"`` too,
    in any case); a ``ValueError`` naming the argument otherwise."""
    found = DATA_FORMATS.get(value.upper()) if isinstance(value, str) else None  # a dict lookup: no cache needed
    if found is None:
        raise ValueError(f"data_format must be 'NCHW' or 'NHWC' (or 'channels_first', 'channels_last'), got {value!r}")
    return found


def pair(value: Any, name: str, minimum: int = 1) -> tuple[int, int]:
    """``value`` (an int or a pair of ints) as a pair, each at least ``minimum``."""
    values = (value, value) if is_int(value) else value
    if (
        isinstance(values, (str, bytes))
        or not isinstance(values, Sequence | np.ndarray)
        or len(values) != 2
        or not all(is_int(v) for v in values)
    ):
        raise TypeError(f"{name} must be an int or a pair of ints, got {value!r}")
    if min(values) < minimum:
        raise ValueError(f"{name} must be at least {minimum}, got {value!r}")
    return int(values[0]), int(values[1])


def check_groups(groups: Any) -> int:
    """A convolution's ``groups``: an int of at least 1."""
    if not is_int(groups):
        raise TypeError(f"groups must be an int, got {groups!r}")
    if groups < 1:
        raise ValueError(f"groups must be at least 1, got {groups}")
    return int(groups)


def check_bias(bias_shape: Shape | None, channels: int) -> None:
    """A bias, if any, holds one value per output channel."""
    if bias_shape is not None and tuple(bias_shape) != (channels,):
        raise ValueError(f"bias must have shape ({channels},), one value per output channel, got {tuple(bias_shape)}")


def check_corr2d(x_shape: Shape, k_shape: Shape) -> tuple[int, int]:
    """Check that a 2-D kernel fits inside a 2-D input; return the 'valid' output shape."""
    x_shape, k_shape = tuple(x_shape), tuple(k_shape)
    check_2d(x_shape, "X")
    check_2d(k_shape, "K")
    if 0 in x_shape:
        raise ValueError(f"X is empty (shape {x_shape}); an image needs at least one row and one column")
    if 0 in k_shape:
        raise ValueError(f"K is empty (shape {k_shape}); a kernel needs at least one element")
    if k_shape[0] > x_shape[0] or k_shape[1] > x_shape[1]:
        raise ValueError(
            f"K of shape {k_shape} is larger than X of shape {x_shape}; "
            "a 'valid' cross-correlation needs the kernel to fit inside the input"
        )
    return int(x_shape[0] - k_shape[0] + 1), int(x_shape[1] - k_shape[1] + 1)


def check_2d(shape: Shape, name: str) -> None:
    """Check that ``shape`` is that of a matrix (height, width)."""
    shape = tuple(shape)
    if len(shape) != 2:
        raise ValueError(f"{name} must be 2-D (height, width), got {len(shape)}-D shape {shape}")


def check_same_shape(shape: Shape, expected: Shape, name: str) -> None:
    """Check that ``shape`` equals ``expected``."""
    if tuple(shape) != tuple(expected):
        raise ValueError(f"{name} must have shape {tuple(expected)}, got {tuple(shape)}")


def check_seed(seed: Any, name: str = "seed") -> None:
    """Check a seed of NumPy's generator: ``None`` or a non-negative int (NumPy's integers too)."""
    if seed is None:
        return
    if not is_int(seed):
        raise TypeError(f"{name} must be a non-negative int or None, got {seed!r}")
    if seed < 0:
        raise ValueError(f"{name} must be a non-negative int or None, got {seed!r}")


def names_inputs(*names: str) -> Callable[[Function], Function]:
    """Decorate a public function so that a conversion error about "data" names the culprit input.

    The tabs convert every input with ``tensor(data)``, whose message says "data";
    on that failure path only, the inputs ``names`` are checked one by one and the first
    bad one's own error is raised instead ("K must hold real numbers, got <U2 data").
    """

    def decorate(function: Function) -> Function:
        parameters = list(inspect.signature(function).parameters)

        @functools.wraps(function)
        def call(*args: Any, **kwargs: Any) -> Any:
            try:
                return function(*args, **kwargs)
            except (TypeError, ValueError) as error:
                if not str(error).startswith("data "):
                    raise
                given = {**dict(zip(parameters, args, strict=False)), **kwargs}
                for name in names:
                    if given.get(name) is not None:
                        try:
                            as_float32_array(given[name], name)
                        except (TypeError, ValueError) as named:  # this input is the bad one
                            raise named from None
                raise

        return call  # type: ignore[return-value]

    return decorate


def is_int(value: Any) -> bool:
    """Whether ``value`` is an integer (NumPy's included) and not a bool."""
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)
