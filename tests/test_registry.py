"""The backend switch: names, aliases, the environment variable, errors, laziness."""

from __future__ import annotations

import importlib.util
import inspect
import json
import os
import subprocess
import sys

import pytest

import d2lconv as dc
from d2lconv import backends

FRAMEWORKS = ("torch", "tensorflow", "mxnet", "paddle", "jax")
HEAVY_MODULES = (*FRAMEWORKS, "flax", "keras")


def run_python(code: str, **env: str) -> subprocess.CompletedProcess:
    """Run ``code`` in a fresh interpreter with extra environment variables."""
    full_env = {key: value for key, value in os.environ.items() if key != backends.ENV_VAR}
    full_env.update(env)
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=full_env, timeout=300)


def test_import_imports_no_framework():
    result = run_python(
        "import sys, json, d2lconv as dc; dc.available_backends(); dc.get_backend(); "
        f"print(json.dumps([m for m in {HEAVY_MODULES!r} if m in sys.modules]))"
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == []


def test_port_reads_every_framework_s_facts_without_importing_it():
    result = run_python(
        "import sys, json; from d2lconv.porting import FACTS; "
        "print(json.dumps([list(FACTS), [facts.name for facts in FACTS.values()], "
        f"[m for m in {(*HEAVY_MODULES, 'onnx', 'onnxruntime')!r} if m in sys.modules]]))"
    )
    assert result.returncode == 0, result.stderr
    keys, names, imported = json.loads(result.stdout)
    assert keys == names == [*dc.BACKENDS, "onnx"] and imported == []


def test_backend_names_and_aliases():
    assert dc.BACKENDS == ("numpy", "torch", "tensorflow", "mxnet", "paddle", "jax")
    for alias, name in {
        "pytorch": "torch",
        "tf": "tensorflow",
        "mx": "mxnet",
        "paddlepaddle": "paddle",
        "PyTorch": "torch",
        " numpy ": "numpy",
    }.items():
        assert backends.canonical_name(alias) == name


def test_default_is_numpy():
    result = run_python("import d2lconv as dc; print(dc.get_backend())")
    assert result.stdout.strip() == "numpy"


@pytest.mark.parametrize("given", ["torch", "pytorch", "tf", "mx", "paddlepaddle", "numpy"])
def test_environment_variable_selects_backend(given):
    name = backends.canonical_name(given)
    result = run_python("import d2lconv as dc; print(dc.get_backend())", D2LCONV_BACKEND=given)
    if backends.is_installed(name):
        assert result.returncode == 0, result.stderr
        assert result.stdout.strip() == name
    else:
        assert result.returncode != 0
        assert f'pip install "d2lconv[{name}]"' in result.stderr


def test_environment_variable_unknown_name():
    result = run_python(
        "import d2lconv as dc\ntry:\n    dc.get_backend()\nexcept dc.BackendError as e:\n    print(e)",
        D2LCONV_BACKEND="caffe",
    )
    assert "D2LCONV_BACKEND='caffe'" in result.stdout
    assert "unknown backend 'caffe'" in result.stdout
    for name in dc.BACKENDS:
        assert name in result.stdout


def test_unknown_name_error_is_a_value_error_listing_the_valid_names():
    with pytest.raises(dc.BackendError) as caught:
        dc.set_backend("caffe")
    assert isinstance(caught.value, ValueError)
    message = str(caught.value)
    assert "'caffe'" in message
    assert all(name in message for name in dc.BACKENDS)
    assert all(alias in message for alias in dc.ALIASES)


@pytest.mark.parametrize("name", FRAMEWORKS)
def test_missing_framework_error_names_the_pip_extra(monkeypatch, name):
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda module, *args: None if module == name else real_find_spec(module, *args)
    )
    monkeypatch.delitem(sys.modules, name, raising=False)
    monkeypatch.setattr(sys, "modules", {k: v for k, v in sys.modules.items() if k != name})
    assert name not in dc.available_backends()
    for call in (dc.set_backend, dc.load_backend):
        with pytest.raises(dc.BackendError, match=rf'not installed: pip install "d2lconv\[{name}\]"'):
            call(name)


def test_use_backend_restores_on_exit_and_on_error():
    dc.set_backend("numpy")
    with dc.use_backend("numpy") as tab:
        assert tab.NAME == "numpy"
    installed = [name for name in dc.available_backends() if name != "numpy"]
    inner = installed[0] if installed else "numpy"
    with pytest.raises(ZeroDivisionError):
        with dc.use_backend(inner):
            assert dc.get_backend() == inner
            raise ZeroDivisionError
    assert dc.get_backend() == "numpy"
    with pytest.raises(dc.BackendError):
        with dc.use_backend("nonsense"):
            pass
    assert dc.get_backend() == "numpy"


def test_set_backend_accepts_aliases_and_env_is_overridden(monkeypatch):
    monkeypatch.setenv(backends.ENV_VAR, "numpy")
    try:
        dc.set_backend("NumPy")
        assert dc.get_backend() == "numpy"
    finally:
        backends._active = None


def test_available_backends_imports_no_framework():
    result = run_python(
        "import sys, d2lconv as dc; names = dc.available_backends(); "
        f"print([m for m in {HEAVY_MODULES!r} if m in sys.modules]); print(','.join(names))"
    )
    imported, names = result.stdout.splitlines()
    assert imported == "[]"
    assert names.split(",")[0] == "numpy"
    assert set(names.split(",")) == {name for name in dc.BACKENDS if importlib.util.find_spec(name)}


def _public_names(module) -> list[str]:
    """Public functions and classes defined in ``module`` itself, in source order."""
    return [
        name
        for name, value in vars(module).items()
        if not name.startswith("_")
        and (inspect.isfunction(value) or inspect.isclass(value))
        and value.__module__ == module.__name__
    ]


def _sections(tab) -> list[str]:
    """The tab's section modules (its submodules), in the order its package imports them. The NumPy tab's
    ``layers`` and ``layers_graph`` are its framework (what ``torch.nn`` is to PyTorch), and a tab's
    ``network_graph``, ``network_read`` (with MXNet's ``network_expressions``, the part of its reader that
    reads elementwise expressions) and ``port_checks`` are the porting section's graph half, its reader and
    its hooks for ``dc.port``'s checks (``d2lconv.core.network``), not sections."""
    return [
        name
        for name, value in vars(tab).items()
        if inspect.ismodule(value) and value.__name__.startswith(tab.__name__) and name not in _NOT_SECTIONS
    ]


_NOT_SECTIONS = ("layers", "layers_graph", "network_graph", "network_read", "network_expressions", "port_checks")


def test_every_tab_defines_the_contract_in_the_same_order(backend, reference):
    assert backend.NAME == dc.get_backend()
    assert _sections(backend) == _sections(reference)
    assert backend.__all__ == reference.__all__
    for section in _sections(reference):
        ours, theirs = getattr(backend, section), getattr(reference, section)
        assert _public_names(ours) == _public_names(theirs), section
        for name in _public_names(theirs):
            if inspect.isfunction(getattr(theirs, name)):
                assert list(inspect.signature(getattr(ours, name)).parameters) == list(
                    inspect.signature(getattr(theirs, name)).parameters
                ), f"{section}.{name}"


def test_load_backend_returns_the_tab(backend):
    assert dc.load_backend(backend.NAME) is backend
    assert backend.FRAMEWORK.__version__


@pytest.mark.cross
@pytest.mark.skipif(
    not (backends.is_installed("paddle") and backends.is_installed("tensorflow")),
    reason="needs both paddle and tensorflow installed",
)
def test_tensorflow_then_paddle_works_in_one_process():
    result = run_python(
        "import d2lconv as dc\nfor name in ('tensorflow', 'paddle'):\n"
        "    dc.set_backend(name)\n    print(dc.to_numpy(dc.corr2d([[0, 1, 2], [3, 4, 5], [6, 7, 8]], "
        "[[0, 1], [2, 3]])).tolist())"
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.split("\n")[:2] == ["[[19.0, 25.0], [37.0, 43.0]]"] * 2


@pytest.mark.cross
@pytest.mark.skipif(
    not (backends.is_installed("paddle") and backends.is_installed("tensorflow")),
    reason="needs both paddle and tensorflow installed",
)
def test_paddle_after_a_users_tensorflow_import_is_refused_not_a_crash():
    result = run_python(
        "import tensorflow, d2lconv as dc\ntry:\n    dc.load_backend('paddle')\n"
        "except dc.BackendError as e:\n    print(e)"
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "importing paddle after tensorflow crashes" in result.stdout


@pytest.mark.skipif(not backends.is_installed("tensorflow"), reason="tensorflow is not installed")
def test_tensorflow_backend_after_a_users_own_tensorflow_import():
    result = run_python(
        "import tensorflow, d2lconv as dc\ndc.set_backend('tf')\n"
        "print(dc.to_numpy(dc.corr2d([[0, 1, 2], [3, 4, 5], [6, 7, 8]], [[0, 1], [2, 3]])).tolist())"
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip() == "[[19.0, 25.0], [37.0, 43.0]]"
