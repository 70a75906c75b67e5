"""The command line: demo and info on every backend, one clear line for a bad name."""

from __future__ import annotations

import argparse
import importlib.util
import re
import subprocess
import sys

import numpy as np
import pytest

import d2lconv as dc
from d2lconv import cli
from d2lconv.book.lenet import lenet_network


def test_demo_prints_the_books_numbers(backend, capsys):
    assert cli.main(["demo", "--backend", backend.NAME]) == 0
    out = capsys.readouterr().out
    assert f"backend '{backend.NAME}'" in out
    assert "[[19. 25.]\n [37. 43.]]" in out
    assert " [ 0.  1.  0.  0.  0. -1.  0.]" in out  # a row of the edge map
    assert out.count("[0. 0. 0. 0. 0.]") == 8  # the transposed image: 8x5 zeros
    assert "epoch 10, loss" in out
    learned = out.split("learned kernel ")[1].split(" (")[0]
    np.testing.assert_allclose([float(v) for v in re.findall(r"-?\d+\.\d*", learned)], [1.0, -1.0], atol=0.05)


def test_demo_plot_writes_a_png(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    path = tmp_path / "demo.png"
    assert cli.main(["demo", "--plot", str(path)]) == 0
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_bad_backend_is_one_line_and_exit_2():
    result = subprocess.run(
        [sys.executable, "-m", "d2lconv.cli", "demo", "--backend", "theano"], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    assert "unknown backend 'theano'" in result.stderr and "numpy, torch" in result.stderr


def test_info_lists_every_backend(capsys):
    assert cli.main(["info"]) == 0
    out = capsys.readouterr().out
    for name in dc.BACKENDS:
        line = next(line for line in out.splitlines() if line.split() and line.split()[0] == name)
        assert ("installed," in line) == (name in dc.available_backends())
        assert ("not installed" in line) == (name not in dc.available_backends())


# --- every failure is one line and an exit code, never a traceback ------------------------------------------------


def one_line_error(capsys, argv: list[str], code: int) -> str:
    """Run ``d2lconv argv`` in-process; check the exit code and that stderr is one line; return that line."""
    assert cli.main(argv) == code
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    return err.strip()


@pytest.mark.parametrize(
    "argv, expected",
    [
        (["demo", "--lr", "-1"], "argument --lr: must be a positive number, got '-1'"),
        (["demo", "--lr", "nan"], "argument --lr: must be a positive number, got 'nan'"),
        (["demo", "--lr", "fast"], "argument --lr: must be a positive number, got 'fast'"),
        (["demo", "--seed", "-1"], "argument --seed: must be a non-negative integer, got '-1'"),
        (["demo", "--epochs", "-3"], "argument --epochs: must be a positive integer, got '-3'"),
        (
            ["demo", "--plot", "/nonexistent/dir/x.png"],
            "argument --plot: folder '/nonexistent/dir' does not exist, got '/nonexistent/dir/x.png'",
        ),
        (["demo", "--plot", "figure.docx"], "argument --plot: must end in one of .png, .pdf"),
        (
            ["bench", "--plot", "/nonexistent/dir/x.png"],
            "argument --plot: folder '/nonexistent/dir' does not exist, got '/nonexistent/dir/x.png'",
        ),
        (["bench", "--repeat", "0"], "argument --repeat: must be a positive integer, got '0'"),
        (["bench", "--loop-max", "-1"], "argument --loop-max: must be a non-negative integer, got '-1'"),
        (["bench", "--timeout", "0"], "argument --timeout: must be a positive number, got '0'"),
        (["parity", "--timeout", "-1"], "argument --timeout: must be a positive number, got '-1'"),
        (["parity", "--backends", "numpy,theano"], "argument --backends/--backend: unknown backend 'theano'"),
        (["demo", "--backend", "theano"], "argument --backend: unknown backend 'theano'"),
        (["demo", "--epochs", "0"], "argument --epochs: must be a positive integer, got '0'"),
        (["port", "--from", "torch", "--to", "caffe"], "argument --to: unknown backend 'caffe'"),
        (["demo", "--colour"], "unrecognized arguments: --colour"),
        (["train", "--net", "vgg"], "argument --net: invalid choice: 'vgg' (choose from 'lenet', 'bn-lenet'"),
        (["train", "--net", "bn-lenet", "--epochs", "0"], "argument --epochs: must be a positive integer, got '0'"),
        (["train", "--batch-size", "-32"], "argument --batch-size: must be a positive integer, got '-32'"),
        (["lenet", "--net", "bn-lenet"], "unrecognized arguments: --net bn-lenet"),
        (
            ["bench", "--train", "--net", "vgg"],
            "argument --net: invalid choice: 'vgg' (choose from 'lenet', 'bn-lenet'",
        ),
        (["bench", "--train", "--epochs", "1"], "argument --epochs: must be an integer >= 2 (the first epoch of each"),
        ([], "the following arguments are required: COMMAND"),
    ],
)
def test_a_bad_argument_is_one_line_and_exit_2_before_any_work(capsys, monkeypatch, argv, expected):
    monkeypatch.setattr(dc, "learn_kernel", lambda *a, **k: pytest.fail("the demo ran"))
    monkeypatch.setattr(dc, "train", lambda *a, **k: pytest.fail("the training ran"))
    line = one_line_error(capsys, argv, 2)
    assert line.startswith(f"d2lconv: error: {expected}") and line.endswith("--help)")
    assert capsys.readouterr().out == ""


def test_a_diverging_demo_is_one_line_with_advice_and_exit_1(capsys):
    assert cli.main(["demo", "--lr", "1"]) == 1
    captured = capsys.readouterr()
    assert captured.err.count("\n") == 1 and "Traceback" not in captured.err
    assert captured.err.startswith("d2lconv: learn_kernel diverged: the loss became")
    assert "stable only for lr < 0.0333" in captured.err and captured.err.strip().endswith("try lr=0.027")
    assert "1. Cross-correlation" in captured.out  # the demo ran up to the training


@pytest.mark.parametrize(
    "argv",
    [
        ["demo", "--lr", "1"],
        ["demo", "--seed", "-1"],
        ["parity", "--timeout", "-1"],
        ["bench", "--repeat", "0"],
        ["demo", "--plot", "/nonexistent/dir/x.png"],
    ],
)
def test_the_installed_command_prints_no_traceback(argv):
    done = subprocess.run([sys.executable, "-m", "d2lconv.cli", *argv], capture_output=True, text=True, timeout=120)
    assert done.returncode == (1 if "--lr" in argv else 2)
    assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr, done.stderr
    assert done.stderr.startswith("d2lconv: ")


def test_an_unexpected_failure_is_one_line_and_exit_1(capsys, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("the framework fell over\nwith a second line")

    monkeypatch.setattr(dc, "learn_kernel", broken)
    line = one_line_error(capsys, ["demo"], 1)
    assert line == "d2lconv: demo failed: RuntimeError: the framework fell over with a second line"


def test_plot_without_a_suffix_gets_png_and_says_where(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    assert cli.main(["demo", "--plot", str(tmp_path / "noext")]) == 0
    written = tmp_path / "noext.png"
    assert written.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and not (tmp_path / "noext").exists()
    assert f"wrote {written}" in capsys.readouterr().out


def test_plot_without_matplotlib_fails_before_the_demo(capsys, monkeypatch, tmp_path):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "matplotlib" else real(name, *a))
    line = one_line_error(capsys, ["demo", "--plot", str(tmp_path / "x.png")], 2)
    assert line.startswith('d2lconv: error: argument --plot: needs matplotlib: pip install "d2lconv[plot]"')


def test_version_and_help(capsys):
    assert cli.main(["--version"]) == 0
    assert capsys.readouterr().out == f"d2lconv {dc.__version__}\n"
    parser = cli.build_parser()
    commands = next(action for action in parser._actions if isinstance(action, argparse._SubParsersAction))
    assert {"demo", "info", "parity", "bench"} <= set(commands.choices)
    for name, subparser in commands.choices.items():
        assert subparser.description, f"d2lconv {name} has no description"
    assert cli.main(["parity", "--help"]) == 0
    text = " ".join(capsys.readouterr().out.split())
    assert (
        "exit codes: 0 every compared backend agrees with the reference; 1 a value differs; 2 a requested backend"
        in text
    )
    assert cli.main(["bench", "--help"]) == 0
    assert "3x3 kernel" in " ".join(capsys.readouterr().out.split())


@pytest.mark.parametrize("option", ["--backend", "--backends"])
def test_backend_and_backends_are_one_option(capsys, option):
    assert cli.main(["demo", option, "numpy", "--epochs", "1"]) == 0
    assert "backend 'numpy'" in capsys.readouterr().out
    args = cli.build_parser().parse_args(["parity", option, "numpy,torch", option, "tf"])
    assert args.backends == ["numpy", "torch", "tensorflow"]
    assert cli.build_parser().parse_args(["bench", option, "pytorch"]).backends == ["torch"]


# --- what a new user meets first: backends that are missing, help, port's output ----------------------------------


@pytest.mark.parametrize(
    "argv, option",
    [
        (["demo", "--backend", "mxnet"], "--backend"),
        (["lenet", "--backend", "mx"], "--backend"),
        (["train", "--net", "bn-lenet", "--backend", "mx"], "--backend"),
        (["parity", "--backends", "numpy,mxnet"], "--backends"),
        (["bench", "--backend", "mxnet"], "--backends"),
        (["port", "--from", "numpy", "--to", "mxnet"], "--to"),
        (["port", "--from", "mxnet", "--to", "numpy"], "--from"),
    ],
)
def test_a_missing_backend_fails_at_once_in_one_line_before_any_work(capsys, monkeypatch, argv, option):
    from d2lconv.harness import runner

    monkeypatch.setattr(dc.backends, "available_backends", lambda: ("numpy",))
    monkeypatch.setattr(runner, "run_worker", lambda *a, **k: pytest.fail("a worker ran"))
    monkeypatch.setattr(dc.backends, "load_backend", lambda *a, **k: pytest.fail("a backend was loaded"))
    line = one_line_error(capsys, argv, 2)
    assert line == (
        f"d2lconv: error: argument {option}: backend 'mxnet' is not installed here: pip install \"d2lconv[mxnet]\""
    )
    assert capsys.readouterr().out == ""


NAMES = "names: numpy, torch, tensorflow, mxnet, paddle, jax"


@pytest.mark.parametrize("command", ["demo", "info", "parity", "bench", "lenet", "train", "port"])
def test_every_commands_help_lists_its_exit_codes_and_the_backend_names(capsys, command):
    assert cli.main([command, "--help"]) == 0
    text = " ".join(capsys.readouterr().out.split())
    assert re.search(r"exit codes: 0 .*; 2 .*a bad argument", text), text
    assert (NAMES in text) == (command != "info"), text
    if command in ("demo", "lenet", "train"):  # one backend: one option shown
        assert "--backend NAME" in text and "--backends" not in text


def test_the_top_level_help_names_the_six_frameworks_and_the_edition(capsys):
    assert cli.main(["--help"]) == 0
    text = " ".join(capsys.readouterr().out.split())
    assert "NumPy, PyTorch, TensorFlow, MXNet, Paddle and JAX" in text and "d2l-zh: 6.2 to 6.6" in text


@pytest.mark.parametrize("pair", [("torch", "torch"), ("torch", "pytorch"), ("tf", "tensorflow"), ("numpy", "numpy")])
def test_port_refuses_the_same_framework_on_both_sides(capsys, pair):
    source, target = pair
    if not dc.backends.is_installed(source):
        pytest.skip(f"{source} is not installed here")
    line = one_line_error(capsys, ["port", "--from", source, "--to", target], 2)
    name = dc.backends.canonical_name(source)
    assert line == f"d2lconv: error: --from and --to name the same framework, {name!r}: nothing to port"


def test_port_output_writes_the_weights_and_the_code_that_loads_them(capsys, tmp_path):
    if not dc.backends.is_installed("torch"):
        pytest.skip(f"the port's target, torch, is not installed here ({dc.backends.install_hint('torch')})")
    folder = tmp_path / "ported"
    assert cli.main(["port", "--from", "numpy", "--to", "torch", "--net", "lenet", "-o", str(folder)]) == 0
    out = capsys.readouterr().out
    weights, code = folder / "weights.npz", folder / "lenet_torch.py"
    assert f"wrote {weights}" in out and f"wrote {code}" in out
    net = dc.load_backend("numpy").build_network(lenet_network(0))
    ported = dc.port(net, to="torch", input_shape=(1, 28, 28), seed=0)
    assert code.read_text() == ported.code
    with np.load(weights) as stored:
        expected = dc.load_backend("torch").native_weights(ported.model)
        assert sorted(stored.files) == sorted(expected)
        for key in expected:
            np.testing.assert_array_equal(stored[key], expected[key])
    # the written code, run in its folder, rebuilds the network: the same outputs as the port's model
    x = np.random.default_rng(1).standard_normal((2, 1, 28, 28)).astype(np.float32)
    np.save(folder / "x.npy", x)
    script = code.read_text() + (
        "\nimport numpy\nfrom d2lconv.backends.torch.network import run_network\n"
        "numpy.save('y.npy', run_network(net, numpy.load('x.npy')))\n"
    )
    done = subprocess.run([sys.executable, "-c", script], cwd=folder, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    expected = dc.load_backend("torch").run_network(ported.model, x)
    np.testing.assert_allclose(np.load(folder / "y.npy"), expected, rtol=1e-6, atol=1e-6)


def test_port_output_needs_an_existing_parent_folder(capsys, tmp_path):
    line = one_line_error(capsys, ["port", "--from", "numpy", "--to", "torch", "-o", str(tmp_path / "a" / "b")], 2)
    assert line.startswith(f"d2lconv: error: argument -o/--output: folder '{tmp_path / 'a'}' does not exist")


# --- d2lconv train: every network of dc.train, with lenet's progress bar ---------------------------------------------

EPOCH_LINE = r"epoch (\d+)/2: loss (\S+), train acc (\S+), test acc (\S+)"


# Each network's summary as the command prints it: BN-LeNet layer by layer (the book's, padding nothing), the
# ResNet block by block.
SUMMARIES = {
    "bn-lenet": ("BNLeNet", "lr 0.5", ["6 x 24 x 24", "16 x 4 x 4", "256", "120", "84"]),
    "resnet": ("ResNet", "lr 0.1", ["16 x 7 x 7", "32 x 4 x 4", "64 x 2 x 2", "10"]),
}


@pytest.mark.parametrize("net", SUMMARIES)
def test_train_prints_the_curve_dc_train_computes(backend, capsys, tmp_path, net):
    """``train --net NAME``: the summary, and per epoch the mean loss and accuracies of ``dc.train``'s run
    with the same seed, lr and batch; the final line and the plot; no plateau note (LeNet's alone)."""
    plot = tmp_path / "curves"
    argv = ["train", "--net", net, "--backend", backend.NAME, "--epochs", "2", "--batch-size", "128"]
    assert cli.main([*argv, "--seed", "3", "--plot", str(plot)]) == 0
    captured = capsys.readouterr()
    out = " ".join(captured.out.split())
    fit = dc.train(net, epochs=2, batch_size=128, seed=3)
    steps = len(fit.losses) // 2  # 1,438 images in minibatches of 128
    want = [
        (str(epoch), f"{np.mean(fit.losses[(epoch - 1) * steps : epoch * steps]):.3f}", f"{train:.3f}", f"{test:.3f}")
        for epoch, train, test in zip((1, 2), fit.train_acc, fit.test_acc, strict=True)
    ]
    assert re.findall(EPOCH_LINE, out) == want
    title, lr, rows = SUMMARIES[net]
    assert f"{title} on backend '{backend.NAME}'" in out and f"{lr}, batch 128, seed 3" in out
    for row in rows:
        assert f"│ {row} " in out
    assert f"step {2 * steps}/{2 * steps}" in out and f"test acc {fit.test_acc[-1]:.3f}, " in out
    assert "sigmoid LeNet" not in out and "plateau" not in out
    if importlib.util.find_spec("matplotlib") is not None:
        assert plot.with_suffix(".png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert captured.err == f"wrote {plot.with_suffix('.png')}\n"


def test_lenet_is_train_with_net_lenet(capsys):
    """``d2lconv lenet`` runs the same command as ``train --net lenet``: the same lines, the plateau note."""
    outputs = []
    for argv in (["lenet"], ["train", "--net", "lenet"], ["train"]):
        assert cli.main([*argv, "--backend", "numpy", "--epochs", "2", "--batch-size", "256"]) == 0
        out = " ".join(capsys.readouterr().out.split())
        assert "LeNet on backend 'numpy'" in out and "sits at chance for about the first" in out
        outputs.append(re.findall(EPOCH_LINE, out))
    assert len(outputs[0]) == 2 and outputs[0] == outputs[1] == outputs[2]


def test_a_diverging_train_is_one_line_and_exit_1(capsys):
    with np.errstate(over="ignore", invalid="ignore"):
        line = one_line_error(capsys, ["train", "--net", "bn-lenet", "--backend", "numpy", "--lr", "1e6"], 1)
    assert line.startswith("d2lconv: training BNLeNet diverged: the loss reached") and "in epoch 1" in line
