"""The notebooks, executed: conv_layer.ipynb on every installed backend, compare_backends.ipynb once.

Each run is a fresh kernel of this Python (``notebooks/execute.py``), with ``D2LCONV_BACKEND``
set for conv_layer.ipynb; an error in any cell fails the test with that cell's traceback.
The stored files are never written: they are checked to be unchanged after each run, and
the stored outputs of conv_layer.ipynb (run on numpy) to equal a fresh run's.
"""

from __future__ import annotations

import hashlib
import importlib.util
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest

NEEDS = 'the notebook tests need the notebooks extra: pip install "d2lconv[notebooks]"'
for _module in ("nbformat", "nbclient", "ipykernel", "matplotlib"):
    pytest.importorskip(_module, reason=f"{_module} is not installed; {NEEDS}")

import nbformat  # noqa: E402

import d2lconv as dc  # noqa: E402
from d2lconv import backends  # noqa: E402

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
_spec = importlib.util.spec_from_file_location("d2lconv_notebooks_execute", NOTEBOOKS / "execute.py")
nbrun = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(nbrun)

pytestmark = pytest.mark.notebooks

CHAPTER, COMPARE = "conv_layer.ipynb", "compare_backends.ipynb"
FLOAT = re.compile(r"-?\d+\.\d*(?:e[-+]?\d+)?")
EDGE_MAP = np.tile([0.0, 1.0, 0.0, 0.0, 0.0, -1.0, 0.0], (6, 1))
# What the book's loop gives under each framework's autograd (conv_layer.ipynb, exercise 3).
LOOP_UNDER_AUTOGRAD = {
    "numpy": "NumPy has no autograd",
    "torch": "correct: True",
    "paddle": "correct: True",
    "tensorflow": "no error, but the gradient is None",
    "mxnet": "Inplace operations (+=, -=, x[:]=, etc) are not supported when recording with autograd",
}

_runs: dict[tuple[str, str | None], Any] = {}


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def executed(name: str, backend: str | None = None) -> Any:
    """The notebook run once per session in a fresh kernel (an error in a cell raises, every time it is asked for)."""
    key = (name, backend)
    if key not in _runs:
        path = NOTEBOOKS / name
        before = digest(path)
        try:
            _runs[key] = nbrun.execute(path, backend)
        except Exception as error:  # nbclient's CellExecutionError carries the failing cell and its traceback
            _runs[key] = error
        assert digest(path) == before, f"executing {name} modified the stored file"
    if isinstance(_runs[key], Exception):
        raise _runs[key]
    return _runs[key]


def numbers(text: str) -> np.ndarray:
    """The decimal numbers in printed output (shapes and other integers without a point are left out)."""
    return np.array([float(value) for value in FLOAT.findall(text)])


def stderr_of(nb: Any) -> list[str]:
    return [f"{cell.get('id')}: {output.text}" for cell in nb.cells for output in cell.get("outputs", [])
            if output.output_type == "stream" and output.name == "stderr"]


def chosen_backends(config: pytest.Config) -> list[str]:
    return [backends.canonical_name(name) for name in config.getoption("backend", default=None) or backends.BACKENDS]


@pytest.mark.parametrize("name", backends.BACKENDS)
def test_conv_layer_runs_the_chapter(name, request):
    if name not in chosen_backends(request.config):
        pytest.skip(f"not chosen with --backend ({', '.join(chosen_backends(request.config))})")
    if not backends.is_installed(name):
        pytest.skip(f"{name} is not installed here ({backends.install_hint(name)})")
    nb = executed(CHAPTER, name)
    text = lambda cell_id: nbrun.cell_text(nb, cell_id)  # noqa: E731

    assert f"backend {name!r}" in text("setup")
    assert numbers(text("figure-7-2-1")).tolist() == [19.0, 25.0, 37.0, 43.0]  # the book's loop, native repr
    assert "[[19.0, 25.0], [37.0, 43.0]]" in text("corr2d")
    np.testing.assert_array_equal(numbers(text("edge-map")).reshape(6, 7), EDGE_MAP)
    assert "layer(X) == corr2d(X, weight) + bias: True" in text("conv2d-layer")
    np.testing.assert_array_equal(numbers(text("transposed")), np.zeros(40))

    learned = text("learn-kernel")
    losses = [float(loss) for loss in re.findall(r"loss (\S+)", learned)]  # "epoch 2, loss 2.302", ...
    assert losses[-1] < losses[0] / 100
    np.testing.assert_allclose(numbers(learned.split("learned kernel")[1]), [1.0, -1.0], atol=0.05)
    assert "lr 0.03: learn_kernel diverged" in text("learn-custom")

    assert "[[1. 2. 1.]\n [2. 4. 2.]\n [1. 2. 1.]]" in text("receptive-field")
    assert "convolve2d(X, K')        [[19.0, 25.0], [37.0, 43.0]]" in text("convolution")
    autograd = text("ex-autograd-code")
    assert LOOP_UNDER_AUTOGRAD[name] in autograd.split("\n")[0]
    assert "ours (dc.corr2d): gradient [[78.0, 90.0], [138.0, 150.0]], correct: True" in autograd
    assert "W.T @ vec(Y) == conv_transpose2d(Y, K): True" in text("ex-matmul-code")

    for cell_id in ("corr2d", "edge-figure", "transposed", "loss-curve", "receptive-field", "ex-diagonal"):
        assert nbrun.images(nb, cell_id), f"cell {cell_id} drew no figure"
    assert not stderr_of(nb), f"framework noise reached the notebook: {stderr_of(nb)}"


def test_conv_layer_stored_outputs_are_current():
    stored = nbformat.read(NOTEBOOKS / CHAPTER, as_version=4)
    fresh = nbrun.normalise(executed(CHAPTER, nbrun.STORED_BACKEND))
    assert nbrun.comparable(stored) == nbrun.comparable(fresh), (
        f"the stored outputs of {CHAPTER} are stale: regenerate them with "
        f"python notebooks/execute.py --write {CHAPTER}")


@pytest.mark.parametrize("name", nbrun.NOTEBOOKS)
def test_stored_notebooks_have_outputs_in_normal_form(name):
    stored = nbformat.read(NOTEBOOKS / name, as_version=4)
    nbformat.validate(stored)
    assert nbrun.normalise(stored) == stored, f"regenerate with python notebooks/execute.py --write {name}"
    code = [cell for cell in stored.cells if cell.cell_type == "code"]
    assert [cell.execution_count for cell in code] == list(range(1, len(code) + 1))
    assert nbrun.images(stored), "stored without its figures"
    outputs = [output for cell in code for output in cell.outputs]
    assert not [output for output in outputs if output.output_type == "error"]
    assert not re.search(r" at 0x[0-9a-f]{6,}", str(outputs)), "an object address makes the output change every run"
    assert stored.cells[0].cell_type == "markdown"
    if name == CHAPTER:
        assert "D2LCONV_BACKEND" in stored.cells[0].source  # the first cell says how to change the backend
        assert f"backend {nbrun.STORED_BACKEND!r}" in nbrun.cell_text(stored, "setup")


@pytest.mark.parity
def test_compare_backends_shows_every_backend_agreeing():
    nb = executed(COMPARE)
    installed = [name for name in dc.available_backends() if name != "numpy"]
    text = lambda cell_id: nbrun.cell_text(nb, cell_id)  # noqa: E731

    assert f"parity: agree=True; compared with numpy: {', '.join(installed) or 'no other backend'}" in text("checks")
    for row in ("| figure_6_2_1 |", "| edge_map |", "| learn_builtin |", "| conv2d (", "| avg_pool2d ("):
        assert row in text("checks")
    spreads = [float(value) for value in re.findall(r"between backends (\S+)", text("loss-curves"))]
    assert len(spreads) == 2 and max(spreads) < 1e-4
    for name in installed:  # the frameworks' own initialisations, one row each
        assert f"| {name} | " in text("book-defaults")
        assert f"| {name} | " in text("bench")
    for cell_id in ("edge-maps", "loss-curves", "kernels", "book-defaults", "bench"):
        assert nbrun.images(nb, cell_id), f"cell {cell_id} drew no figure"
    assert "frameworks imported in this kernel: none" in text("isolation")


def test_porting_notebook_shows_each_trap_and_the_port_agreeing():
    for name in ("torch", "tensorflow", "jax"):
        if not backends.is_installed(name):
            pytest.skip(f"porting.ipynb needs {name} ({backends.install_hint(name)})")
    nb = executed("porting.ipynb")
    text = "\n".join(output.get("text", "") for cell in nb.cells if cell.cell_type == "code"
                     for output in cell.outputs)
    for trap in ("without the flatten permutation", "instead of ZeroPadding2D", "zero padding instead of -inf",
                 "overhang counted in the divisor"):
        value = float(FLOAT.findall(text.split(trap, 1)[1])[0])
        assert value > 1e-3, trap
    assert "without ceil mode: (1, 1) instead of (2, 2)" in text
    keras_diff, flax_diff = (float(FLOAT.findall(text.split(label, 1)[1])[0]) for label in ("Keras: (", "Flax:  ("))
    assert keras_diff < 1e-5 and flax_diff < 1e-5
