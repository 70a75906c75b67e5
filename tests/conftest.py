"""Shared fixtures: every backend runs the same tests.

``backend`` is parametrised over all of d2lconv's backends (or those named with
``--backend NAME``, repeatable). A backend whose framework is not installed is
skipped with the reason; one that is installed but fails to load fails.

Each test is sorted for tox (``pytest_collection_modifyitems``): ``single`` when it runs one backend
(its ``backend``, beside NumPy), so that backend's own environment runs it; ``cross`` when it needs
frameworks that no single environment has together (two frameworks besides NumPy, the parity run, the
notebooks), so only ``all`` runs it. A backend's environment deselects ``cross``; ``all`` deselects
``single``; a test that is neither (framework-free, or one framework without a ``backend``) runs in both.
"""

from __future__ import annotations

import importlib

import numpy as np
import pytest

import d2lconv as dc
from d2lconv import backends

# The type of a native tensor and of a layer, per backend, as "module:attribute".
NATIVE_TENSOR = {
    "numpy": "numpy:ndarray",
    "torch": "torch:Tensor",
    "tensorflow": "tensorflow:Tensor",
    "mxnet": "mxnet.numpy:ndarray",
    "paddle": "paddle:Tensor",
    "jax": "jax:Array",
}
LAYER_BASE = {
    "torch": "torch.nn:Module",
    "tensorflow": "keras.layers:Layer",
    "mxnet": "mxnet.gluon.nn:Block",
    "paddle": "paddle.nn:Layer",
    "jax": "flax.linen:Module",
}


def resolve(path: str) -> type:
    """The class named ``module:attribute``."""
    module, attribute = path.split(":")
    return getattr(importlib.import_module(module), attribute)


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--backend",
        action="append",
        default=[],
        metavar="NAME",
        help="run the backend tests on this backend only (repeatable; default: all)",
    )


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "backend" in metafunc.fixturenames:
        chosen = metafunc.config.getoption("backend") or backends.BACKENDS
        metafunc.parametrize("backend", [backends.canonical_name(name) for name in chosen], indirect=True)


def frameworks(item: pytest.Item) -> set[str]:
    """The frameworks besides NumPy a test needs: its ``backend`` and ``target`` parameters, torch's
    functional reference (the ``torch_functional`` fixture)."""
    params = getattr(item, "callspec", None)
    values = params.params if params is not None else {}
    needed = {values[key] for key in ("backend", "target") if values.get(key) in backends.BACKENDS}
    if "torch_functional" in getattr(item, "fixturenames", ()):
        needed.add("torch")
    return needed - {"numpy"}


@pytest.hookimpl(tryfirst=True)  # before -m deselects by these markers
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        params = getattr(item, "callspec", None)
        backend = params.params.get("backend") if params is not None else None
        needed = frameworks(item)
        if (
            item.get_closest_marker("cross")
            or item.get_closest_marker("parity")
            or item.get_closest_marker("notebooks")
            or (needed - {backend} if backend is not None else len(needed) > 1)
        ):
            item.add_marker(pytest.mark.cross)
        elif backend is not None:
            item.add_marker(pytest.mark.single)


@pytest.fixture
def backend(request: pytest.FixtureRequest):
    """The tab of one backend, made the active backend for the test."""
    name = request.param
    if not backends.is_installed(name):
        pytest.skip(f"{name} is not installed here ({backends.install_hint(name)})")
    with dc.use_backend(name) as tab:
        yield tab


@pytest.fixture
def reference():
    """The NumPy tab, the reference every backend is compared with."""
    return dc.load_backend("numpy")


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(20240607)
