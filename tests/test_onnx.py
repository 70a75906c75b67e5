"""ONNX in and out: d2lconv's writer checked by ``onnx.checker`` and run by ONNX Runtime against the NumPy
tab; its reader on files written by d2lconv and by torch's TorchScript exporter, into every backend."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

import d2lconv as dc
from d2lconv.book.lenet import lenet_network
from d2lconv.porting import demo_network, seeded_batch

onnx = pytest.importorskip("onnx", reason='ONNX tests need the onnx extra: pip install "d2lconv[onnx]"')
pytest.importorskip("onnxruntime", reason='ONNX tests need the onnx extra: pip install "d2lconv[onnx]"')
from d2lconv import onnx as d2l_onnx  # noqa: E402

NETWORKS = {"lenet": lenet_network, "demo": demo_network}


def tolerance(reference: np.ndarray) -> float:
    return 1e-4 * max(1.0, float(np.max(np.abs(reference))))


@pytest.mark.parametrize("name", NETWORKS)
def test_written_models_pass_the_full_check_and_onnx_runtime_computes_the_numpy_result(name):
    net = NETWORKS[name](0)
    model = d2l_onnx.build_network(net)
    onnx.checker.check_model(model, full_check=True)
    assert model.opset_import[0].version >= 17
    x = seeded_batch(net.input_shape, np.float32)
    numpy_tab = dc.load_backend("numpy")
    expected = numpy_tab.run_network(numpy_tab.build_network(net), x)
    actual = d2l_onnx.run_network(model, x)
    assert actual.shape == expected.shape
    assert np.max(np.abs(actual - expected)) <= tolerance(expected)


@pytest.mark.parametrize("name", NETWORKS)
def test_round_trip_reads_back_the_same_network(name):
    net = NETWORKS[name](1)
    back = d2l_onnx.read_network(d2l_onnx.build_network(net))
    assert [layer.kind for layer in back.layers] == [layer.kind for layer in net.layers]
    x = seeded_batch(net.input_shape, np.float32, seed=3)
    numpy_tab = dc.load_backend("numpy")
    expected = numpy_tab.run_network(numpy_tab.build_network(net), x)
    assert np.max(np.abs(numpy_tab.run_network(numpy_tab.build_network(back), x) - expected)) <= tolerance(expected)


def _graph(node: onnx.NodeProto, initializers: list[onnx.TensorProto] = ()) -> onnx.ModelProto:
    helper = onnx.helper
    graph = helper.make_graph(
        [node],
        "g",
        [helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [1, 2, 4, 4])],
        [helper.make_tensor_value_info(node.output[0], onnx.TensorProto.FLOAT, None)],
        list(initializers),
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def test_an_unsupported_op_names_the_node_and_its_type():
    k = onnx.numpy_helper.from_array(np.array([2], np.int64), "k")
    model = _graph(onnx.helper.make_node("TopK", ["x", "k"], ["y", "i"], name="top"), [k])
    with pytest.raises(ValueError, match=r"'top' \(TopK\) is not supported; supported ops: Conv"):
        d2l_onnx.read_network(model)


def test_a_reshape_to_a_computed_shape_is_refused():
    nodes = [
        onnx.helper.make_node("Shape", ["x"], ["s"], name="shape"),
        onnx.helper.make_node("Reshape", ["x", "s"], ["y"], name="reshape"),
    ]
    graph = onnx.helper.make_graph(
        nodes,
        "g",
        [onnx.helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [1, 2, 4, 4])],
        [onnx.helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, None)],
    )
    model = onnx.helper.make_model(graph, opset_imports=[onnx.helper.make_opsetid("", 17)])
    with pytest.raises(ValueError, match=r"'shape' \(Shape\) is not supported"):
        d2l_onnx.read_network(model)
    model.graph.node.remove(model.graph.node[0])
    model.graph.initializer.append(onnx.numpy_helper.from_array(np.array([1, -1], np.int64), "other"))
    model.graph.node[0].input[1] = "s"
    with pytest.raises(ValueError, match=r"'reshape' \(Reshape\) takes a computed shape"):
        d2l_onnx.read_network(model)


def test_files_that_are_not_onnx_are_value_errors(tmp_path):
    text = tmp_path / "notes.onnx"
    text.write_text("these are not the weights you are looking for\n" * 20)
    with pytest.raises(ValueError, match="is not an ONNX model"):
        d2l_onnx.read_network(text)
    truncated = tmp_path / "truncated.onnx"
    truncated.write_bytes(d2l_onnx.build_network(lenet_network(0)).SerializeToString()[:5000])
    with pytest.raises(ValueError, match="is not an ONNX model"):
        d2l_onnx.read_network(truncated)
    with pytest.raises(FileNotFoundError, match="no ONNX file"):
        d2l_onnx.read_network(tmp_path / "missing.onnx")


def test_onnxruntime_is_a_parity_reference_that_the_numpy_backend_agrees_with():
    from d2lconv.book import ops as book
    from d2lconv.harness.parity import onnx_reference
    from d2lconv.harness.parity.checks.ops import run_case
    from d2lconv.harness.parity.compare import build_report, entry

    results = onnx_reference.compute_results()
    assert set(results) == {case.key for case in book.CASES}
    with dc.use_backend("numpy"):
        numpy_results = {case.key: dc.to_numpy(run_case(case)).tolist() for case in book.CASES}
    for case in book.CASES:
        np.testing.assert_allclose(numpy_results[case.key], results[case.key], rtol=1e-4, atol=1e-5, err_msg=case.key)
    entries = {"onnxruntime": entry("ok", results=results), "numpy": entry("ok", results=numpy_results)}
    report = build_report(entries, reference="onnxruntime")
    assert report["reference"] == "onnxruntime" and report["exit_code"] == 0
    assert len(report["checks"]) == len(book.CASES)
    numpy_results[book.CASES[0].key] = (np.asarray(numpy_results[book.CASES[0].key]) + 1e-3).tolist()
    assert build_report(entries, reference="onnxruntime")["exit_code"] == 1


def _command(*argv: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "d2lconv.cli", *argv], capture_output=True, text=True, timeout=300)


def test_the_command_writes_an_onnx_file_and_ports_it_back_into_a_folder(tmp_path):
    path = tmp_path / "lenet.onnx"
    written = _command("port", "--from", "numpy", "--to", "onnx", "--net", "lenet", "-o", str(path))
    assert written.returncode == 0, written.stderr
    assert f"wrote {path}" in written.stdout
    model = onnx.load(str(path))
    onnx.checker.check_model(model, full_check=True)
    x = seeded_batch((1, 28, 28), np.float32)
    numpy_tab = dc.load_backend("numpy")
    expected = numpy_tab.run_network(numpy_tab.build_network(lenet_network(0)), x)
    assert np.max(np.abs(d2l_onnx.run_network(model, x) - expected)) <= tolerance(expected)
    back = _command("port", str(path), "--to", "numpy", "-o", str(tmp_path / "out"))
    assert back.returncode == 0, back.stderr
    assert "onnx -> numpy" in back.stdout
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["lenet_numpy.py", "weights.npz"]


def test_the_command_refuses_files_that_are_not_onnx_in_one_line(tmp_path):
    text = tmp_path / "model.onnx"
    text.write_text("not a model\n")
    for argv, message in (
        ((str(text), "--to", "numpy"), "is not an ONNX model"),
        ((str(tmp_path / "missing.onnx"), "--to", "numpy"), "no file"),
        ((str(text), "--from", "numpy", "--to", "torch"), "not both or neither"),
    ):
        result = _command("port", *argv)
        assert result.returncode == 2
        assert result.stderr.count("\n") == 1 and message in result.stderr, result.stderr
        assert "Traceback" not in result.stderr
