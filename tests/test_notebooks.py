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
from d2lconv.harness import runner  # noqa: E402

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
    "jax": "correct: True",
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
    return [
        f"{cell.get('id')}: {output.text}"
        for cell in nb.cells
        for output in cell.get("outputs", [])
        if output.output_type == "stream" and output.name == "stderr"
    ]


def kernel_plan(config: pytest.Config) -> dict[str, str]:
    """Which backends get a kernel of their own: those chosen with --backend, or every installed one."""
    return runner.plan(config.getoption("backend", default=None) or None, backends.available_backends())


@pytest.mark.parametrize("name", backends.BACKENDS)
def test_conv_layer_runs_the_chapter(name, request):
    decision = kernel_plan(request.config)[name]
    if decision != "run":
        detail = runner.skip_detail(decision, name) or "not chosen with --backend"
        pytest.skip(f"{name} {decision} ({detail})")
    nb = executed(CHAPTER, name)
    text = lambda cell_id: nbrun.cell_text(nb, cell_id)  # noqa: E731

    assert f"backend {name!r}" in text("setup")
    assert numbers(text("figure-6-2-1")).tolist() == [19.0, 25.0, 37.0, 43.0]  # the book's loop, native repr
    assert "[[19.0, 25.0], [37.0, 43.0]]" in text("corr2d")
    np.testing.assert_array_equal(numbers(text("edge-map")).reshape(6, 7), EDGE_MAP)
    assert "layer(X) == corr2d(X, weight) + bias: True" in text("conv2d-layer")
    np.testing.assert_array_equal(numbers(text("transposed")), np.zeros(40))

    learned = text("learn-kernel")
    losses = [float(loss) for loss in re.findall(r"loss (\S+)", learned)]  # "epoch 2, loss 2.302", ...
    assert losses[-1] < losses[0] / 100
    np.testing.assert_allclose(numbers(learned.split("learned kernel")[1]), [1.0, -1.0], atol=0.05)
    assert "lr 0.03: learn_kernel diverged" in text("learn-custom")
    default = re.search(r"default lr 0.014, 10 epochs: loss (\S+) -> (\S+)", text("learn-custom"))
    assert float(default.group(2)) < float(default.group(1)) / 25  # the custom layer's default lr converges

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
        f"the stored outputs of {CHAPTER} are stale: regenerate them with python notebooks/execute.py --write {CHAPTER}"
    )


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


# Sections 6.3 to 6.5: what each notebook must print on every backend (cell id -> lines), and its figures.
SECTION_PRINTS = {
    "padding_and_strides.ipynb": {
        "comp-conv2d": [
            "kernel 3, padding 1: (8, 8)  (formula: (8, 8))",
            "kernel (5, 3), padding (2, 1): (8, 8)  (formula: (8, 8))",
        ],
        "stride-figure": ["output: [[0.0, 8.0], [6.0, 8.0]]"],
        "strided-shapes": [
            "kernel 3, padding 1, stride 2: (4, 4)  (formula: (4, 4))",
            "kernel (3, 5), padding (0, 1), stride (3, 4): (2, 2)  (formula: (2, 2))",
        ],
        "tabs-differ": [
            "(1, 1, 1, 1)                (4, 4)   'same'   (0, 1, 0, 1)   (4, 4)   False",
            "(0, 0, 1, 1)                (2, 2)   'valid'  (0, 0, 0, 0)   (2, 1)   False",
        ],
        "ex-formula": [
            "exercise 1: 2 2 -> (2, 2)",
            "formula == dc.conv_output_size in all 824 cases: True",
            "formula == the framework's own layer (dc.comp_conv2d) in all 12 sampled cases: True",
        ],
        "ex-mirror": ["scipy correlate2d(boundary='symm'): True"],
        "ex-half-code": ["== np.kron(X, ones(2, 2)): True"],
    },
    "channels.ipynb": {
        "multi-in": ["56", "72", "104", "120"],
        "multi-out": ["K.shape = (3, 2, 2, 2)", "76", "100", "148", "172", "96", "128", "192", "224"],
        "one-by-one": ["Y1 == Y2 within float32 rounding: True; shape (2, 3, 3)"],
        "dense": ["1x1 convolution == a dense layer on each pixel: True"],
        "ex-compose": ["== one kernel of shape (4, 4): True"],
        "ex-cost-code": [
            "im2col matmul == dc.conv2d: True",
            "multiply-adds: formula 442,368, matmul 442,368",
            "doubling c_i and c_o: 4.0 x",
        ],
        "ex-exact-code": ["both within float32 rounding of the float64 answer: True"],
        "ex-blocks-code": ["block-diagonal matrix product: True"],
    },
    "pooling.ipynb": {
        "pool-check": [
            "'max') == dc.max_pool2d(X, (2, 3), stride=1): True",
            "'avg') == dc.avg_pool2d(X, (2, 3), stride=1): True",
        ],
        "padding-k3": ["10."],
        "tabs-differ": [
            "padding=1 (torch, MXNet, Paddle tabs)     [[5.0, 7.0], [13.0, 15.0]]",
            "tf.pad zeros [1, 0], 'valid' (TF tab)     [[5.0, 7.0], [13.0, 15.0]]",
            "padding=1 (torch, MXNet, Paddle tabs)     [[-1.0, -2.0], [-5.0, -6.0]]",
            "tf.pad zeros [1, 0], 'valid' (TF tab)     [[0.0, 0.0], [0.0, -6.0]]",
            "Keras padding='same'                      [[10.0, 11.0], [14.0, 15.0]]",
        ],
        "ex-avg-conv": [
            "window 2, stride 2, padding 0: conv2d == avg_pool2d: True",
            "window 3, stride 1, padding 1: conv2d == avg_pool2d: True",
            "window (2, 3), stride (2, 1), padding (1, 0): conv2d == avg_pool2d: True",
        ],
        "ex-max-relu-code": ["convolution + two ReLU layers == max_pool2d(X, 2): True"],
        "ex-min-code": ["min pooling == -max_pool2d(-X): True"],
        "ex-gradient": ["== the winner-takes-the-gradient rule: True"],
    },
}
# Chapter 7: each tab disagreement, computed (BN-LeNet's epoch is replayed on NumPy, so these numbers are NumPy's
# on every backend; the active backend's own epoch must match the replay).
SECTION_PRINTS |= {
    "batch_norm.ipynb": {
        "function": ["moving statistics = 0.9 * old + 0.1 * the batch's mean and biased variance: True"],
        "inference": ["statistics unchanged: True"],
        "layer": ["output shape: 6 x 24 x 24", "output shape: 16 x 4 x 4", "output shape: 256\n"],
        "train": ["45 minibatches"],
        "record": ["recorded 45 batches", "the replay is the epoch trained above (within 1e-3): True"],
        "conventions": [
            "| 0.10 | 0.009 | 3.5e-22 | 20.4% | 0.836 |",
            "| d2l-en concise: TensorFlow (Keras), JAX (Flax) | 0.01 | 0.636 | 9.0e-03 | 57.8% | 0.097 |",
            "| d2l-zh concise: Paddle | 0.90 | 0.000 | 0.0e+00 | 18.4% | 0.877 |",
        ],
        "eps": ["output std 0.031", "output std 1.000"],
        "jax-axes": [
            "statistics of shape (1, 6, 1, 1) (one per row)",
            "after one update: (1, 6, 1, 3)",
            "(1, 28, 1, 6)",
        ],
        "paddle-var": ["zeros (the Paddle tab): prediction-mode output / input = 316.2", "off by 1.1%"],
        "paddle-mean": ["per feature:    output means 0.00 at most, stds 1.000 .. 1.000"],
        "flax-same": [
            "256 features, first dense layer 30,720 weights",
            "784 features, first dense layer 94,080 weights",
        ],
        "lr": ["lr 0.1: ", "lr 0.5: ", "lr 1.0: "],
    },
    "resnet.ipynb": {
        "residual": ["(4, 3, 6, 6) -> (4, 3, 6, 6)", "(4, 3, 6, 6) -> (4, 6, 3, 3)"],
        "resnet18": ["on 224x224: 64 x 56 x 56, 64 x 56 x 56, 128 x 28 x 28, 256 x 14 x 14, 512 x 7 x 7, 10"],
        "stem": [
            "'same' = at (2i + 1, 2j + 1): True",
            "padding 1 (1, 64, 24, 24), 'same' (1, 64, 24, 24); windows one pixel apart: True",
        ],
        "network": ["b1_conv, b1_pool, b3_residual1_conv1, b4_residual1_conv1, b5_residual1_conv1"],
        "resnext": [
            "groups=2 : 2 groups of 16 channels, weight (32, 16, 3, 3), 4,608 weights",
            "groups=16: 16 groups of 2 channels, weight (32, 2, 3, 3), 576 weights",
            "== 16 separate convolutions: True",
        ],
    },
    "modern_cnns.ipynb": {
        "shapes": ["MaxPool2d 256x5x5, Flatten 6400", "Sequential 512x7x7, Flatten 25088", "Sequential 832x3x3"],
        "alexnet": ["padding 1: (1, 96, 54, 54), padding 0: (1, 96, 54, 54); windows one pixel apart: True"],
        "same": [
            "GoogLeNet: made 'same': b1_conv, b1_pool, b2_pool, b3_pool, b4_pool",
            "DenseNet: made 'same': b1_conv",
        ],
        "densenet": ["last feature map: (248, 3, 3)"],
    },
}
SECTION_NUMBERS = {  # cells whose printed decimals are the book's numbers
    ("channels.ipynb", "multi-in"): [56.0, 72.0, 104.0, 120.0],
    ("pooling.ipynb", "pool-max"): [4.0, 5.0, 7.0, 8.0],
    ("pooling.ipynb", "pool-avg"): [2.0, 3.0, 5.0, 6.0],
    ("pooling.ipynb", "padding-p1-s2"): [5.0, 7.0, 13.0, 15.0],
    ("pooling.ipynb", "padding-rect"): [5.0, 7.0, 13.0, 15.0],
    ("pooling.ipynb", "channels"): [5.0, 7.0, 13.0, 15.0, 6.0, 8.0, 14.0, 16.0],
}
SECTION_FIGURES = {
    "padding_and_strides.ipynb": ("padding-figure", "stride-figure", "ex-mirror"),
    "channels.ipynb": ("multi-in-figure", "dense"),
    "pooling.ipynb": ("pool-figure", "padding-figure", "ex-gradient"),
    "batch_norm.ipynb": ("conventions-figure", "lr"),
    "resnet.ipynb": ("stem-figure",),
    "modern_cnns.ipynb": ("densenet",),
}


def printed(nb: Any, cell_id: str) -> str:
    """What a cell printed and displayed; stream pieces joined as printed (the kernel may split one print)."""
    cell = next(cell for cell in nb.cells if cell.get("id") == cell_id)
    return "".join(
        output.text
        if output.output_type == "stream"
        else "\n".join(output.get("data", {}).get(kind, "") for kind in ("text/plain", "text/markdown"))
        for output in cell.get("outputs", [])
    )


@pytest.mark.parametrize("notebook", nbrun.SECTION_NOTEBOOKS)
@pytest.mark.parametrize("name", backends.BACKENDS)
def test_section_notebook_runs_the_section(name, notebook, request):
    decision = kernel_plan(request.config)[name]
    if decision != "run":
        detail = runner.skip_detail(decision, name) or "not chosen with --backend"
        pytest.skip(f"{name} {decision} ({detail})")
    nb = executed(notebook, name)
    assert f"backend {name!r}" in printed(nb, "setup")
    for cell_id, lines in SECTION_PRINTS[notebook].items():
        text = printed(nb, cell_id)
        for line in lines:
            assert line in text, f"{notebook} cell {cell_id} on {name}: {line!r} not in {text!r}"
    for (book, cell_id), expected in SECTION_NUMBERS.items():
        if book == notebook:
            assert numbers(printed(nb, cell_id)).tolist() == expected, cell_id
    for cell_id in SECTION_FIGURES[notebook]:
        assert nbrun.images(nb, cell_id), f"cell {cell_id} drew no figure"
    assert not stderr_of(nb), f"framework noise reached the notebook: {stderr_of(nb)}"


@pytest.mark.parametrize("notebook", nbrun.SECTION_NOTEBOOKS)
def test_section_notebook_stored_outputs_are_current(notebook):
    stored = nbformat.read(NOTEBOOKS / notebook, as_version=4)
    fresh = nbrun.normalise(executed(notebook, nbrun.STORED_BACKEND))
    assert nbrun.comparable(stored) == nbrun.comparable(fresh), (
        f"the stored outputs of {notebook} are stale: regenerate them with "
        f"python notebooks/execute.py --write {notebook}"
    )


def test_check_says_what_it_checked_and_what_not():
    """``execute.py --check``'s verdict, on the stored notebooks standing in for fresh runs (no kernel)."""
    for name in (CHAPTER, COMPARE):
        stored = nbformat.read(NOTEBOOKS / name, as_version=4)
        assert nbrun.check_stored(NOTEBOOKS / name, nbrun.normalise(stored)) == []
    chapter = " ".join(nbrun.checked_lines(CHAPTER, stored, "numpy"))
    assert "run without error in a fresh kernel on numpy" in chapter and "stored outputs of all" in chapter
    compare = nbrun.checked_lines(COMPARE, nbformat.read(NOTEBOOKS / COMPARE, as_version=4), None)
    assert any(line.startswith("NOT checked: the stored outputs") for line in compare)
    assert f"installed here: {', '.join(dc.available_backends())}" in " ".join(compare)
    changed = nbrun.normalise(nbformat.read(NOTEBOOKS / CHAPTER, as_version=4))
    cell = next(cell for cell in changed.cells if cell.get("id") == "learn-custom")
    cell.outputs[0]["text"] = "a different number\n"
    assert nbrun.check_stored(NOTEBOOKS / CHAPTER, changed) == [
        "stored outputs differ from a fresh run in cells: learn-custom"
    ]


def test_porting_notebook_shows_each_trap_and_the_port_agreeing():
    for name in ("torch", "tensorflow", "jax"):
        if not backends.is_installed(name):
            pytest.skip(f"porting.ipynb needs {name} ({backends.install_hint(name)})")
    nb = executed("porting.ipynb")
    text = "\n".join(output.get("text", "") for cell in nb.cells if cell.cell_type == "code" for output in cell.outputs)
    for trap in (
        "without the flatten permutation",
        "instead of ZeroPadding2D",
        "zero padding instead of -inf",
        "overhang counted in the divisor",
    ):
        value = float(FLOAT.findall(text.split(trap, 1)[1])[0])
        assert value > 1e-3, trap
    assert "without ceil mode: (1, 1) instead of (2, 2)" in text
    keras_diff, flax_diff = (float(FLOAT.findall(text.split(label, 1)[1])[0]) for label in ("Keras: (", "Flax:  ("))
    assert keras_diff < 1e-5 and flax_diff < 1e-5


@pytest.mark.parametrize("name", backends.BACKENDS)
def test_lenet_notebook_trains_and_compares(name, request):
    decision = kernel_plan(request.config)[name]
    if decision != "run":
        detail = runner.skip_detail(decision, name) or "not chosen with --backend"
        pytest.skip(f"{name} {decision} ({detail})")
    nb = executed(nbrun.LENET_NOTEBOOK, name)
    text = lambda cell_id: nbrun.cell_text(nb, cell_id)  # noqa: E731

    assert f"backend {name!r}" in text("setup")
    shapes = [line.split("output shape: ")[1] for line in text("summary").splitlines() if "output shape" in line]
    assert shapes == ["6 x 28 x 28", "6 x 14 x 14", "16 x 10 x 10", "16 x 5 x 5", "400", "120", "84", "10"]
    assert "(at least 0.95: True)" in text("train")
    assert "(at most 1e-3: True)" in text("parity")
    right, wrong = (float(value) for value in re.findall(r"test accuracy (\S+)", text("flatten")))
    assert right >= 0.95 and wrong < right - 0.3  # the unpermuted dense layer computes another function
    for cell_id in ("data", "train", "parity"):
        assert nbrun.images(nb, cell_id), f"cell {cell_id} drew no figure"
    assert not stderr_of(nb), f"framework noise reached the notebook: {stderr_of(nb)}"
