"""Shared fixtures: every backend runs the same tests.

``backend`` is parametrised over all of d2lconv's backends (or those named with
``--backend NAME``, repeatable). A backend whose framework is not installed is
skipped with the reason; one that is installed but fails to load fails.
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
