"""The backend registry: names, aliases, extras, the active backend, lazy loading.

A backend is one sub-package of this package (``d2lconv/backends/<name>/``), the
"tab" of the book for one framework; ``FACTS`` holds what ``port`` must know about it.
Nothing here imports a framework: a tab, and with it its framework, is imported the
first time it is loaded.

The active backend is **process-wide** (one setting shared by all threads), as a
framework's own global state (default device, dtype, seed) is. It starts from the
``D2LCONV_BACKEND`` environment variable, else ``"numpy"``.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import os
import sys
from collections.abc import Iterator
from importlib import metadata
from types import ModuleType

from ..core.facts import CHANNELS_FIRST, BatchNormFacts, FrameworkFacts

# One line per backend: name -> (the module its framework is imported as, the pip extra that installs
# it, its aliases, the modules its models' classes come from). The tab is d2lconv/backends/<name>/.
_REGISTRY: dict[str, tuple[str, str | None, tuple[str, ...], tuple[str, ...]]] = {
    "numpy": ("numpy", None, (), ("d2lconv.backends.numpy",)),
    "torch": ("torch", "torch", ("pytorch",), ("torch",)),
    "tensorflow": ("tensorflow", "tensorflow", ("tf",), ("keras", "tensorflow", "tf_keras")),
    "mxnet": ("mxnet", "mxnet", ("mx",), ("mxnet",)),
    "paddle": ("paddle", "paddle", ("paddlepaddle",), ("paddle",)),
    "jax": ("jax", "jax", (), ("flax",)),
}
BACKENDS: tuple[str, ...] = tuple(_REGISTRY)
"""Every backend's name, NumPy (the reference) first: ``("numpy", "torch", "tensorflow", ...)``."""
ALIASES: dict[str, str] = {alias: name for name, (_, _, aliases, _) in _REGISTRY.items() for alias in aliases}
"""Other names accepted wherever a backend name is: ``{"pytorch": "torch", "tf": "tensorflow", ...}``."""
# What each framework stores and what its own layers express (core/facts.py says what each field means):
# plain data, read by dc.port's rules (core/plan.py, core/conventions.py) without importing a framework.
_NHWC = {"data": "NHWC", "conv2d": "HWIO", "linear": "(in, out)", "flatten": "HWC"}
FACTS: dict[str, FrameworkFacts] = {
    "numpy": FrameworkFacts(
        "numpy", "NumPy (d2lconv's layers)", CHANNELS_FIRST, BatchNormFacts("new", 1e-5, "either"),
        conv_padding="explicit", same_padding="any", pool_padding="any", ceil_mode="drops_overhang",
        adaptive_pooling=True, dilated_pooling=True,
    ),
    "torch": FrameworkFacts(
        "torch", "PyTorch", CHANNELS_FIRST, BatchNormFacts("new", 1e-5, "unbiased"),
        conv_padding="symmetric", same_padding="stride_one", pool_padding="symmetric", ceil_mode="drops_overhang",
        adaptive_pooling=True, same_padding_why="torch accepts padding='same' only with stride 1",
        pool_padding_limit="half_kernel", dilated_pooling=True,
    ),
    "tensorflow": FrameworkFacts(
        "tensorflow", "Keras", {**_NHWC, "conv_transpose2d": "(kh, kw, out, in)"},
        BatchNormFacts("kept", 1e-3, "biased"),
        conv_padding="valid_or_same", same_padding="any", pool_padding="valid_or_same", ceil_mode="none",
        adaptive_pooling=False, grouped_conv_transpose=False, stride_with_dilation=False,
        float32_constants=("leaky_relu", "gelu"),  # the exact GELU's
    ),
    "mxnet": FrameworkFacts(
        "mxnet", "MXNet Gluon", CHANNELS_FIRST, BatchNormFacts("kept", 1e-5, "biased"),
        conv_padding="symmetric", same_padding="none", pool_padding="symmetric", ceil_mode="keeps_overhang",
        adaptive_pooling=False, same_padding_why="Gluon has no 'same'", pool_padding_limit="window_fits",
        float32_constants=("leaky_relu", "elu", "gelu", "hard_sigmoid", "hard_swish"),
    ),
    "paddle": FrameworkFacts(
        "paddle", "PaddlePaddle", {**CHANNELS_FIRST, "linear": "(in, out)"}, BatchNormFacts("kept", 1e-5, "biased"),
        conv_padding="explicit", same_padding="ignores_dilation", pool_padding="explicit", ceil_mode="keeps_overhang",
        adaptive_pooling=True, same_padding_why="Paddle's 'SAME' silently ignores dilation",
        float32_constants=("elu", "hard_sigmoid", "batch_norm"),  # BatchNorm's epsilon
    ),
    "jax": FrameworkFacts(
        "jax", "Flax", {**_NHWC, "conv_transpose2d": "(kh, kw, in, out), spatially flipped"},
        BatchNormFacts("kept", 1e-5, "biased"),
        conv_padding="explicit", same_padding="any", pool_padding="explicit", ceil_mode="none",
        adaptive_pooling=False, grouped_conv_transpose=False,
    ),
}  # fmt: skip
"""Each backend's ``FrameworkFacts``: display name, layouts, BatchNorm conventions, what its layers express."""
ENV_VAR = "D2LCONV_BACKEND"
DEFAULT_BACKEND = "numpy"
# Importing paddle after tensorflow in one process segfaults (the other order works),
# so loading tensorflow imports paddle first when it is installed.
_IMPORT_FIRST: dict[str, tuple[str, ...]] = {"tensorflow": ("paddle",)}
# The environment variable (and value) that makes a backend's compiler spend less time optimising: for a
# process where compiling is nearly all the work. XLA's LLVM level 0 changes no value d2lconv compares.
FAST_COMPILE: dict[str, tuple[str, str]] = {"jax": ("XLA_FLAGS", "--xla_backend_optimization_level=0")}

_active: str | None = None


class BackendError(ValueError):
    """An unknown backend name, or a backend whose framework is missing or broken."""


def _valid_names() -> str:
    aliases = ", ".join(f"{alias} -> {name}" for alias, name in ALIASES.items())
    return f"valid names: {', '.join(BACKENDS)} (aliases: {aliases})"


def canonical_name(name: str) -> str:
    """The backend name for ``name`` or one of its aliases, case-insensitive."""
    key = str(name).strip().lower()
    key = ALIASES.get(key, key)
    if key not in BACKENDS:
        raise BackendError(f"unknown backend {name!r}; {_valid_names()}")
    return key


def install_hint(name: str) -> str:
    """The pip command that installs the framework of backend ``name``."""
    extra = _REGISTRY[canonical_name(name)][1]
    return f'pip install "d2lconv[{extra}]"' if extra else "pip install d2lconv"


def is_installed(name: str) -> bool:
    """Whether the framework of ``name`` can be found, without importing it."""
    module = framework_module(name)
    return module in sys.modules or importlib.util.find_spec(module) is not None


def framework_module(name: str) -> str:
    """The top-level module that backend ``name``'s framework is imported as."""
    return _REGISTRY[canonical_name(name)][0]


def model_backend(model: object) -> str | None:
    """The backend whose framework ``model``'s class comes from, or None: the first class of its MRO whose
    module is a framework's, so that a user's own subclass (defined in ``__main__``) is found by its bases.
    Imports nothing."""
    for cls in type(model).__mro__:
        module = cls.__module__ or ""
        for name, (_, _, _, modules) in _REGISTRY.items():
            if any(module == root or module.startswith(root + ".") for root in modules):
                return name
    return None


def framework_version(name: str) -> str | None:
    """The installed version of backend ``name``'s framework, read without importing it."""
    for distribution in metadata.packages_distributions().get(framework_module(name), []):
        return distribution_version(distribution)
    return None


def distribution_version(distribution: str) -> str:
    """The installed version of ``distribution``, or "(not installed)"."""
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return "(not installed)"


def available_backends() -> tuple[str, ...]:
    """The backends whose framework is installed here; imports no framework."""
    return tuple(name for name in BACKENDS if is_installed(name))


def _require_installed(name: str, given: str) -> str:
    if not is_installed(name):
        shown = name if given == name else f"{given!r} ({name})"
        raise BackendError(
            f"backend {shown} is not installed: {install_hint(name)}; installed here: {', '.join(available_backends())}"
        )
    return name


def load_backend(name: str) -> ModuleType:
    """The tab of backend ``name``, importing its framework."""
    loaded = sys.modules.get(f"{__name__}.{name}") if name in _REGISTRY else None
    if loaded is not None and _REGISTRY[name][0] in sys.modules:  # every op call comes here: no look-up
        return loaded
    backend = _require_installed(canonical_name(name), name)
    module_name = f"{__name__}.{backend}"
    if module_name in sys.modules:
        return sys.modules[module_name]
    if backend == "paddle" and "tensorflow" in sys.modules and "paddle" not in sys.modules:
        raise BackendError(
            "backend 'paddle' cannot be loaded: tensorflow is already imported in this "
            "process, and importing paddle after tensorflow crashes (segfault). Use paddle "
            "in a fresh process, or load it before tensorflow."
        )
    if framework_module(backend) not in sys.modules:
        for first in _IMPORT_FIRST.get(backend, ()):
            if is_installed(first) and framework_module(first) not in sys.modules:
                with contextlib.suppress(BackendError):  # a broken paddle must not stop tensorflow
                    load_backend(first)
    try:
        return importlib.import_module(module_name)
    except Exception as error:  # a broken install raises more than ImportError
        raise BackendError(
            f"backend {backend!r} is installed but failed to import "
            f"({type(error).__name__}: {error}); reinstall it with {install_hint(backend)}"
        ) from error


def get_backend() -> str:
    """The active backend's name: the last ``set_backend``, else ``D2LCONV_BACKEND``, else numpy."""
    if _active is not None:
        return _active
    given = os.environ.get(ENV_VAR, "").strip() or DEFAULT_BACKEND
    try:
        return _require_installed(canonical_name(given), given)
    except BackendError as error:
        raise BackendError(f"{ENV_VAR}={given!r}: {error}") from None


def set_backend(name: str) -> None:
    """Make ``name`` (or an alias) the active backend for the whole process."""
    global _active
    _active = _require_installed(canonical_name(name), name)


@contextlib.contextmanager
def use_backend(name: str) -> Iterator[ModuleType]:
    """Use backend ``name`` inside a ``with`` block; the previous one is restored on exit."""
    global _active
    previous = _active
    set_backend(name)
    try:
        yield active_module()
    finally:
        _active = previous


def active_module() -> ModuleType:
    """The tab of the active backend."""
    return load_backend(get_backend())
