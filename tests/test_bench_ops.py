"""``d2lconv bench --ops``: the report's structure, the ratios and targets, the plot. No test asserts a time."""

from __future__ import annotations

import json

import numpy as np
import pytest

import d2lconv as dc
from d2lconv import backends, cli
from d2lconv.harness.bench import ops as bench_ops
from d2lconv.harness.bench import targets, timing

LAYER = "1x2x6x6:3:3:1"
ROW_KEYS = {"layer", "data_format", "op", "mode", "ours_ms", "native_ms", "ratio", "overhead_us", "error"}


@pytest.mark.skipif(
    not backends.is_installed("torch"),
    reason="torch is not installed (numpy's baseline and the framework measured here)",
)
def test_ops_bench_json_structure_and_plot(tmp_path, capsys):
    plot = tmp_path / "ops.png"
    assert (
        cli.main(
            [
                "bench",
                "--ops",
                "--backends",
                "numpy,torch",
                "--layer",
                LAYER,
                "--repeat",
                "1",
                "--data-format",
                "NCHW",
                "channels_last",
                "--json",
                "--plot",
                str(plot),
            ]
        )
        == 0
    )
    report = json.loads(capsys.readouterr().out)
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert set(report) == {"config", "backends", "targets", "exit_code"} and report["exit_code"] == 0
    config = report["config"]
    assert config["layers"] == [{"spec": LAYER, "x_shape": [1, 2, 6, 6], "out_channels": 3, "kernel": 3, "padding": 1}]
    assert (config["ops"], config["modes"], config["repeat"]) == (list(targets.OPS), ["forward", "gradient"], 1)
    assert config["data_formats"] == ["NCHW", "NHWC"]
    assert len(config["load_average"]) == 3
    assert list(report["backends"]) == list(dc.BACKENDS)
    for name, entry in report["backends"].items():
        assert set(entry) == {"status", "detail", "version", "seconds", "baseline", "rows"}
        if name not in ("numpy", "torch"):
            assert entry["status"] in ("not requested", "not installed") and entry["rows"] == []
            continue
        assert entry["status"] == "ok" and entry["baseline"] == dc.load_backend(name).ops.NATIVE_CALLS
        assert [(row["data_format"], row["op"], row["mode"]) for row in entry["rows"]] == [
            (layout, op, mode) for layout in ("NCHW", "NHWC") for op in targets.OPS for mode in ("forward", "gradient")
        ]
        for row in entry["rows"]:
            assert set(row) == ROW_KEYS and row["layer"] == LAYER and row["error"] is None, row
            assert row["ours_ms"] > 0 and row["native_ms"] > 0
            # one interleaved pair: the median ratio is that pair's ratio
            assert row["ratio"] == pytest.approx(row["ours_ms"] / row["native_ms"])
            assert row["overhead_us"] == pytest.approx((row["ours_ms"] - row["native_ms"]) * 1e3)
    assert "torch" in report["backends"]["numpy"]["version"]
    assert report["targets"] == []  # no layer with a target was measured


def test_ops_bench_table_names_every_op(capsys):
    assert cli.main(["bench", "--ops", "--backends", "numpy", "--layer", LAYER, "--repeat", "1"]) == 0
    out = capsys.readouterr().out
    assert all(op in out for op in targets.OPS) and "targets met: 0 of 0" in out


@pytest.mark.parametrize("spec", ["8x64x56x56:64:3", "8x64x56:64:3:1", "1x1x2x2:1:3:1", "1x1x8x8:1:3:2", "a:b:c:d"])
def test_ops_bench_rejects_a_bad_layer(capsys, spec):
    assert cli.main(["bench", "--ops", "--backends", "numpy", "--layer", spec, "--json"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("d2lconv: error: argument --layer: ") and f"got {spec!r}" in err


def test_ops_bench_rejects_a_bad_data_format(capsys):
    assert cli.main(["bench", "--ops", "--backends", "numpy", "--data-format", "NCWH", "--json"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("d2lconv: error: argument --data-format: data_format must be 'NCHW' or 'NHWC'")
    assert len(err.strip().splitlines()) == 1


@pytest.mark.parametrize("data_format", ["NCHW", "NHWC"])
def test_native_baseline_computes_the_same_op(backend, data_format):
    """Each tab's ``native_op`` runs the framework's own call of the op, forward and gradient: the same numbers
    as d2lconv's op and ``dc.vjp``. TensorFlow's works on NHWC data and an HWIO filter, and so does JAX's with
    ``data_format="NHWC"`` (transposed back here)."""
    if backend.NAME == "numpy":
        pytest.skip("the NumPy tab has no call of its own: bench --ops times it against torch's")
    rng = np.random.default_rng(0)
    layer = bench_ops.Layer.parse("2x3x7x7:4:3:1")
    for op in targets.OPS:
        arrays, kwargs = layer.arguments(op, rng)
        inputs = tuple(backend.tensor(a) for a in arrays)
        grad = rng.standard_normal(backend.to_numpy(getattr(dc, op)(*inputs, **kwargs)).shape, dtype=np.float32)
        expected = (
            getattr(dc, op)(*inputs, **kwargs),
            *dc.vjp(op, *inputs, grad_output=backend.tensor(grad), **kwargs),
        )
        native = (
            backend.native_op(op, inputs, kwargs, None, data_format)(),
            *backend.native_op(op, inputs, kwargs, backend.tensor(grad), data_format)(),
        )
        for index, (got, want) in enumerate(zip(native, expected, strict=True)):
            got, want = backend.to_numpy(timing.block(got)), backend.to_numpy(want)
            if backend.NAME == "tensorflow" or (backend.NAME == "jax" and data_format == "NHWC"):
                got = got.transpose((0, 3, 1, 2) if index < 2 else (3, 2, 0, 1))
            assert got.shape == want.shape, (op, index)
            np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4, err_msg=f"{op} {index}")


def test_targets_from_recorded_rows():
    rows = [
        {"layer": "8x64x56x56:64:3:1", "op": "conv2d", "mode": "forward", "ratio": 1.05},
        {"layer": "1x3x32x32:8:3:1", "op": "conv2d", "mode": "gradient", "ratio": 1.4},
        {"layer": "256x1x28x28:6:5:2", "op": "max_pool2d", "mode": "forward", "ratio": 3.0},
        {"layer": "8x64x56x56:64:3:1", "op": "avg_pool2d", "mode": "gradient", "ratio": None},
    ]
    found = targets.ops_targets({"torch": {"rows": rows}, "numpy": {"rows": rows}})
    assert [(t["backend"], t["layer"], t["limit"], t["met"]) for t in found] == [
        ("torch", "8x64x56x56:64:3:1", 1.10, True),
        ("torch", "1x3x32x32:8:3:1", 1.3, False),
        ("numpy", "8x64x56x56:64:3:1", 5.0, True),
    ]


def test_interleaved_alternates_and_waits_for_asynchronous_results():
    class Lazy:
        waited = 0

        def block_until_ready(self) -> None:
            Lazy.waited += 1

    calls: list[str] = []
    measured = timing.interleaved(
        lambda: calls.append("ours") or Lazy(), lambda: calls.append("native") or (Lazy(), Lazy()), repeat=4
    )
    assert set(measured) == {"ours_ms", "native_ms", "ratio", "overhead_us"} and measured["ratio"] > 0
    assert Lazy.waited == calls.count("ours") + 2 * calls.count("native")
    # warm-up and calibration, then samples in ABBA order: ours first on even repetitions, native first on odd
    samples = [name for index, name in enumerate(calls) if index >= 4]
    assert samples[0] == "ours" and "native" in samples and samples[-1] == "ours"
