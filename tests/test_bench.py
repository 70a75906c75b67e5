"""``d2lconv bench``: the report's structure, the ratios and targets, the plot; and pytest-benchmark timings.

No test asserts a time: machines differ. The ``benchmark`` tests run once as plain
tests (``--benchmark-disable`` in the pytest options); ``pytest --benchmark-enable
tests/test_bench.py`` times them.
"""

from __future__ import annotations

import json
import sys

import numpy as np
import pytest

import d2lconv as dc
from d2lconv import backends, cli
from d2lconv.backends import FACTS
from d2lconv.book import resnet
from d2lconv.harness import runner
from d2lconv.harness.bench import corr2d as bench
from d2lconv.harness.bench import targets, timing

TINY = ["--backends", "numpy", "--size", "4", "8", "--loop-max", "4", "--repeat", "1"]


def test_bench_json_structure_and_plot(tmp_path, capsys):
    plot = tmp_path / "bench.png"
    assert cli.main(["bench", *TINY, "--json", "--plot", str(plot)]) == 0
    report = json.loads(capsys.readouterr().out)
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert set(report) == {"config", "import_d2lconv", "backends", "targets", "exit_code"}
    assert report["config"] == {"sizes": [4, 8], "kernel": [3, 3], "loop_max_size": 4, "repeat": 1}
    assert list(report["backends"]) == list(dc.BACKENDS) and report["exit_code"] == 0
    numpy = report["backends"]["numpy"]
    assert set(numpy) == {"status", "detail", "version", "seconds", "import_ms", "timings", "errors"}
    assert (numpy["status"], numpy["errors"]) == ("ok", {}) and numpy["version"] == np.__version__
    assert [row["size"] for row in numpy["timings"]] == [4, 8]
    small, large = numpy["timings"]
    for row in numpy["timings"]:
        assert set(row) == {
            "size",
            "corr2d_loop_ms",
            "corr2d_ms",
            "native_corr2d_ms",
            "corr2d_over_native",
            "loop_over_corr2d",
        }
        assert row["corr2d_ms"] > 0 and row["native_corr2d_ms"] > 0
        assert row["corr2d_over_native"] == pytest.approx(row["corr2d_ms"] / row["native_corr2d_ms"])
    assert small["loop_over_corr2d"] == pytest.approx(small["corr2d_loop_ms"] / small["corr2d_ms"])
    assert large["corr2d_loop_ms"] is None and large["loop_over_corr2d"] is None  # above --loop-max
    for name, entry in report["backends"].items():
        if name != "numpy":
            assert entry["status"] in ("not requested", "not installed") and entry["timings"] == []
    assert report["targets"] == []  # neither 512 nor 64 was measured
    probe = report["import_d2lconv"]
    assert set(probe) == {"ms", "numpy_ms", "heavy_modules", "target_ms", "met"}
    assert probe["ms"] > 0 and probe["heavy_modules"] == [] and probe["target_ms"] == 150.0


def test_bench_table(capsys):
    assert cli.main(["bench", *TINY]) == 0
    out = capsys.readouterr().out
    assert "corr2d/native" in out and "loop/corr2d" in out
    assert "import d2lconv:" in out and "no framework imported" in out


def test_bench_a_requested_backend_that_is_missing_fails_at_once_in_one_line(monkeypatch, capsys):
    monkeypatch.setattr(backends, "available_backends", lambda: ("numpy",))
    monkeypatch.setattr(runner, "run_worker", lambda *a, **k: pytest.fail("a worker ran"))
    for extra in ([], ["--ops"], ["--train"], ["--lenet"]):
        assert cli.main(["bench", "--backends", "mxnet", "--size", "4", "--json", *extra]) == 2
        captured = capsys.readouterr()
        assert captured.out == "" and captured.err == (
            "d2lconv: error: argument --backends: backend 'mxnet' is not installed here: "
            'pip install "d2lconv[mxnet]"\n'
        )


def test_bench_rejects_a_size_smaller_than_the_kernel(capsys):
    assert cli.main(["bench", "--backends", "numpy", "--size", "2", "--json"]) == 2
    assert capsys.readouterr().err == (
        "d2lconv: error: argument --size: must be an integer >= 3, the kernel's "
        "size, got '2' (see: d2lconv bench --help)\n"
    )


def test_ratios_and_targets_from_recorded_timings():
    rows = bench.with_ratios(
        [
            {"size": 64, "corr2d_loop_ms": 50.0, "corr2d_ms": 0.25, "native_corr2d_ms": 0.2},
            {"size": 512, "corr2d_loop_ms": None, "corr2d_ms": 3.0, "native_corr2d_ms": 4.0},
        ]
    )
    assert [(row["corr2d_over_native"], row["loop_over_corr2d"]) for row in rows] == [(1.25, 200.0), (0.75, None)]
    found = targets.corr2d_targets({"numpy": {"timings": rows}, "torch": {"timings": rows}, "mxnet": {"timings": []}})
    assert {(t["backend"], t["ratio"], t["size"], t["limit"], t["met"]) for t in found} == {
        ("numpy", "corr2d_over_native", 512, 0.5, False),
        ("numpy", "loop_over_corr2d", 64, 100.0, True),
        ("torch", "corr2d_over_native", 512, 1.5, True),
        ("torch", "loop_over_corr2d", 64, 100.0, True),
    }


def test_bench_train_json_ratios_come_from_the_measured_times(capsys):
    """``bench --train --json`` on NumPy: the seconds per epoch of both loops, measured, and their ratio."""
    argv = ["bench", "--train", "--backends", "numpy", "--net", "bn-lenet", "lenet", "--epochs", "2", "--json"]
    assert cli.main(argv) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["config"] == {
        "epochs": 2,
        "rounds": 2,
        "nets": {"bn-lenet": {"lr": 0.5, "batch_size": 32}, "lenet": {"lr": 2.0, "batch_size": 32}},
    }
    assert list(report["backends"]) == list(dc.BACKENDS) and report["exit_code"] == 0
    numpy = report["backends"]["numpy"]
    assert (numpy["status"], numpy["version"]) == ("ok", np.__version__) and list(numpy["nets"]) == [
        "bn-lenet",
        "lenet",
    ]
    for net, row in numpy["nets"].items():
        assert row["ours_s"] > 0 and row["book_s"] > 0
        assert row["ours_over_book"] == pytest.approx(row["ours_s"] / row["book_s"])
        (target,) = [t for t in report["targets"] if t["net"] == net]
        assert target == {
            "backend": "numpy",
            "ratio": "ours_over_book",
            "net": net,
            "value": row["ours_over_book"],
            "limit": 1.2,
            "met": row["ours_over_book"] <= 1.2,
        }
    for name, entry in report["backends"].items():
        if name != "numpy":
            assert entry["status"] in ("not requested", "not installed") and entry["nets"] == {}


def test_train_targets_from_recorded_times():
    """Each network's ours/book per backend, and NumPy's epoch over torch's for the networks both ran."""
    entries = {
        "numpy": {"nets": {"bn-lenet": {"ours_s": 3.0, "book_s": 2.0, "ours_over_book": 1.5}}},
        "torch": {
            "nets": {
                "bn-lenet": {"ours_s": 0.5, "book_s": 0.5, "ours_over_book": 1.0},
                "lenet": {"ours_s": 1.0, "book_s": 2.0, "ours_over_book": 0.5},
            }
        },
        "jax": {"status": "crashed", "nets": {}},
    }
    found = targets.train_targets(entries)
    assert {(t["backend"], t["net"], t["ratio"], t["value"], t["limit"], t["met"]) for t in found} == {
        ("numpy", "bn-lenet", "ours_over_book", 1.5, 1.2, False),
        ("torch", "bn-lenet", "ours_over_book", 1.0, 1.2, True),
        ("torch", "lenet", "ours_over_book", 0.5, 1.2, True),
        ("numpy", "bn-lenet", "numpy_over_torch", 6.0, 5.0, False),
    }


def test_book_train_runs_batch_norm_in_training_mode(backend, reference):
    """The tab's own loop on BN-LeNet, one step on one minibatch of 64: the running statistics are those of
    NumPy's training-mode step (the batch's order within the minibatch does not change its mean and variance)."""
    if backend.NAME == "jax":
        pytest.skip("the flax loop updates its own copy of the variables; the bound network it gets stays as it was")
    data = dc.digits()
    X, y = data.train_x[:64], data.train_y[:64]
    net, numpy_net = backend.BNLeNet(0), reference.BNLeNet(0)
    assert len(backend.book_train(net, X, y, 0.5, 64, 1)) == 1
    reference.book_train(numpy_net, X, y, 0.5, 64, 1)
    got, want = backend.running_statistics(net).values(), reference.running_statistics(numpy_net).values()
    for index, ((mean, var), (want_mean, want_var)) in enumerate(zip(got, want, strict=True)):
        assert np.abs(want_mean).max() > 1e-3 and np.abs(want_var - 1).max() > 1e-3  # moved from zeros and ones
        np.testing.assert_allclose(mean, want_mean, rtol=1e-4, atol=1e-5, err_msg=f"batch norm {index}: mean")
        np.testing.assert_allclose(var, want_var, rtol=1e-4, atol=1e-5, err_msg=f"batch norm {index}: variance")


def test_book_train_runs_the_resnets_batch_norm_in_training_mode(backend, reference):
    """As BN-LeNet's: the framework's own BatchNorm layers of the ResNet after one step on one minibatch of 64,
    against NumPy's step on the description with the same running-variance estimate (PyTorch's is unbiased)."""
    if backend.NAME == "jax":
        pytest.skip("the flax loop updates its own copy of the variables; the bound network it gets stays as it was")
    data = dc.digits()
    X, y = data.train_x[:64], data.train_y[:64]
    net = backend.ResNet(0)
    variance = FACTS[backend.NAME].batch_norm.variance
    numpy_net = reference.build_network(resnet.resnet_network(0, "biased" if variance == "either" else variance))
    assert len(backend.book_train(net, X, y, 0.1, 64, 1)) == 1
    reference.book_train(numpy_net, X, y, 0.1, 64, 1)
    got, want = backend.running_statistics(net), reference.running_statistics(numpy_net)
    assert list(got) == list(want)
    for name, (mean, var) in got.items():
        assert np.abs(want[name][0]).max() > 1e-4 and np.abs(want[name][1] - 1).max() > 1e-3
        np.testing.assert_allclose(mean, want[name][0], rtol=1e-4, atol=1e-5, err_msg=f"{name}: running mean")
        np.testing.assert_allclose(var, want[name][1], rtol=1e-4, atol=1e-5, err_msg=f"{name}: running variance")


def test_median_ms_warms_up_and_waits_for_asynchronous_results():
    class Lazy:
        waited = 0

        def wait_to_read(self) -> None:
            Lazy.waited += 1

    calls = []
    assert timing.median_ms(lambda: calls.append(1) or Lazy(), repeat=3) > 0
    assert len(calls) >= 5 and Lazy.waited == len(calls)  # warm-up, calibration, 3 samples


@pytest.mark.parametrize("method", ["corr2d", "native_corr2d"])
def test_benchmark_corr2d_vs_native_at_512(benchmark, backend, method):
    """Our corr2d and the framework's own convolution at 512x512 with a 3x3 kernel."""
    rng = np.random.default_rng(0)
    X, K = rng.random((512, 512), dtype=np.float32), rng.random((3, 3), dtype=np.float32)
    function = getattr(backend, method)
    x, k = backend.tensor(X), backend.tensor(K)
    benchmark.group = f"corr2d 512x512, {backend.NAME}"
    result = benchmark(lambda: timing.block(function(x, k)))
    np.testing.assert_allclose(backend.to_numpy(result), dc.load_backend("numpy").corr2d(X, K), rtol=1e-4, atol=1e-4)


def test_without_scipy_numpy_is_measured_and_the_native_column_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "scipy.signal", None)  # as if SciPy were not installed
    measured = bench.measure("numpy", [4], loop_max_size=4, repeat=1)
    assert measured["errors"] == {"native_corr2d": 'needs scipy: pip install "d2lconv[bench]"'}
    row = measured["timings"][0]
    assert row["corr2d_ms"] > 0 and row["corr2d_loop_ms"] > 0 and row["native_corr2d_ms"] is None


def test_bench_plot_without_a_suffix_gets_png(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    assert cli.main(["bench", *TINY, "--json", "--plot", str(tmp_path / "timings")]) == 0
    assert (tmp_path / "timings.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert capsys.readouterr().err.strip().endswith(f"wrote {tmp_path / 'timings.png'}")
