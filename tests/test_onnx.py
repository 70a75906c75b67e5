"""ONNX in and out: d2lconv's writer checked by ``onnx.checker`` and run by ONNX Runtime against the NumPy
tab; its reader on files written by d2lconv and by torch's TorchScript exporter, into every backend."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import d2lconv as dc
from d2lconv.book.lenet import lenet_network
from d2lconv.book.porting_nets import inception_network, mobilenet_network, resnet_network
from d2lconv.core.network import Layer, Network, batch_norm, conv, pool
from d2lconv.porting import demo_network, ports_graphs, seeded_batch

onnx = pytest.importorskip("onnx", reason='ONNX tests need the onnx extra: pip install "d2lconv[onnx]"')
pytest.importorskip("onnxruntime", reason='ONNX tests need the onnx extra: pip install "d2lconv[onnx]"')
from d2lconv import onnx as d2l_onnx  # noqa: E402


def every_kind(seed: int = 0, dtype: type = np.float32) -> Network:
    """A small graph with every kind the description has: BatchNorm with random statistics, a residual add,
    a squeeze-excite product, a concatenation, a depthwise and a transposed convolution, odd sizes."""
    rng = np.random.default_rng(seed)

    def uniform(*shape: int) -> np.ndarray:
        return rng.uniform(-0.5, 0.5, shape).astype(dtype)

    def bn(channels: int, name: str, source: str) -> Layer:
        return batch_norm(
            channels, 1e-3, 0.1, "unbiased", uniform(channels) + 1, uniform(channels), uniform(channels),
            rng.uniform(0.5, 2.0, channels).astype(dtype), name=name, inputs=(source,),
        )  # fmt: skip

    def named(layer: Layer, name: str, *inputs: str) -> Layer:
        layer.name, layer.inputs = name, tuple(inputs)
        return layer

    layers = [
        named(conv(3, 8, 3, stride=2, padding=1, weight=uniform(8, 3, 3, 3), bias=uniform(8)), "stem", "input"),
        bn(8, "stem_bn", "stem"),
        named(Layer("relu6"), "stem_act", "stem_bn"),
        named(conv(8, 8, 3, padding="same", groups=8, weight=uniform(8, 1, 3, 3)), "depthwise", "stem_act"),
        named(Layer("hard_swish"), "dw_act", "depthwise"),
        named(Layer("global_avg_pool", {"keepdims": True}), "squeeze", "dw_act"),
        named(conv(8, 8, 1, weight=uniform(8, 8, 1, 1), bias=uniform(8)), "excite", "squeeze"),
        named(Layer("hard_sigmoid", {"alpha": 1 / 6, "beta": 0.5}), "gate", "excite"),
        named(Layer("mul"), "scaled", "dw_act", "gate"),
        named(Layer("add"), "residual", "scaled", "stem_act"),
        named(Layer("silu"), "branch_a", "residual"),
        named(Layer("gelu", {"approximate": "tanh"}), "branch_b", "residual"),
        named(Layer("elu", {"alpha": 0.7}), "branch_c", "residual"),
        named(pool("max_pool2d", 3, stride=1, padding=1), "branch_d", "residual"),
        named(Layer("concat"), "joined", "branch_a", "branch_b", "branch_c", "branch_d"),
        named(Layer("leaky_relu", {"negative_slope": 0.2}), "leaky", "joined"),
        named(Layer("zero_pad2d", {"padding": (0, 1, 1, 0)}), "padded", "leaky"),
        named(pool("avg_pool2d", 3, stride=2, ceil_mode=True, count_include_pad=False), "pooled", "padded"),
        named(
            Layer(
                "conv_transpose2d",
                dict(
                    in_channels=32,
                    out_channels=4,
                    kernel_size=(3, 3),
                    stride=(2, 2),
                    padding=(1, 1, 1, 1),
                    output_padding=(1, 1),
                    dilation=(1, 1),
                    groups=1,
                    bias=True,
                ),
                {"weight": uniform(32, 4, 3, 3), "bias": uniform(4)},
            ),
            "upsampled",
            "pooled",
        ),  # fmt: skip
        named(Layer("adaptive_avg_pool", {"output_size": (2, 2)}), "adaptive", "upsampled"),
        named(Layer("dropout", {"rate": 0.25}), "dropped", "adaptive"),
        named(Layer("flatten"), "flat", "dropped"),
        named(
            Layer(
                "linear",
                {"in_features": 16, "out_features": 5, "bias": True},
                {"weight": uniform(5, 16), "bias": uniform(5)},
            ),
            "dense",
            "flat",
        ),  # noqa: E501
        named(Layer("tanh"), "dense_act", "dense"),
        named(Layer("softmax", {"axis": 1}), "probabilities", "dense_act"),
    ]
    return Network((3, 13, 11), layers)


NETWORKS = {"every kind": every_kind, "lenet": lenet_network, "demo": demo_network}


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
    written_as = {"adaptive_avg_pool": "avg_pool2d"}  # ONNX's AveragePool with the window that fits the input
    assert [layer.kind for layer in back.layers] == [written_as.get(layer.kind, layer.kind) for layer in net.layers]
    x = seeded_batch(net.input_shape, np.float32, seed=3)
    numpy_tab = dc.load_backend("numpy")
    expected = numpy_tab.run_network(numpy_tab.build_network(net), x)
    assert np.max(np.abs(numpy_tab.run_network(numpy_tab.build_network(back), x) - expected)) <= tolerance(expected)


def test_batch_norm_stays_a_batch_normalization_node_with_onnx_momentum():
    net = every_kind()
    model = d2l_onnx.build_network(net)
    (node,) = [node for node in model.graph.node if node.op_type == "BatchNormalization"]
    attributes = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
    assert attributes["momentum"] == pytest.approx(1 - net.layer("stem_bn").args["momentum"])
    assert attributes["epsilon"] == pytest.approx(1e-3)


def test_float64_is_written_as_double_and_read_back_exactly():
    """ONNX Runtime's CPU convolutions are float32 only, so a float64 model is checked by reading it back; the
    weights are float64, but ONNX's float attributes (epsilon, HardSigmoid's alpha) are float32."""
    net = every_kind(dtype=np.float64)
    model = d2l_onnx.build_network(net)
    assert model.graph.input[0].type.tensor_type.elem_type == onnx.TensorProto.DOUBLE
    back = d2l_onnx.read_network(model)
    assert back.dtype == np.float64
    x = seeded_batch(net.input_shape, np.float64)
    numpy_tab = dc.load_backend("numpy")
    expected = numpy_tab.run_network(numpy_tab.build_network(net), x)
    actual = numpy_tab.run_network(numpy_tab.build_network(back), x)
    assert np.max(np.abs(actual - expected)) <= 1e-9 * max(1, np.max(np.abs(expected)))


def test_run_nodes_gives_every_node_in_graph_order():
    net = every_kind()
    x = seeded_batch(net.input_shape, np.float32)
    nodes = d2l_onnx.run_nodes(d2l_onnx.build_network(net), x)
    assert list(nodes) == [layer.name for layer in net.layers]
    assert nodes["stem"].shape == (2, 8, 7, 6)


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

    results = onnx_reference.compute_results(["ops"])
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
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["lenet.npz", "lenet_numpy.py", "weights.npz"]


def test_the_command_refuses_files_that_are_not_onnx_in_one_line(tmp_path):
    text = tmp_path / "model.onnx"
    text.write_text("not a model\n")
    for argv, message in (
        ((str(text), "--to", "numpy"), "is not an ONNX model"),
        ((str(tmp_path / "missing.onnx"), "--to", "numpy"), "no file"),
        ((str(text), "--from", "numpy", "--to", "onnx"), "not both or neither"),
    ):
        result = _command("port", *argv)
        assert result.returncode == 2
        assert result.stderr.count("\n") == 1 and message in result.stderr, result.stderr
        assert "Traceback" not in result.stderr


# --- files from torch's two exporters, and every backend's networks, through ONNX -------------------------------

DATA = Path(__file__).resolve().parent / "data" / "onnx"
EXPORTED = sorted(path.name for path in DATA.glob("*.onnx"))
GRAPHS = {"resnet": resnet_network, "mobilenet": mobilenet_network, "inception": inception_network}


def needs_graphs(name: str) -> None:
    """Expect failure from a tab whose graph reader/writer has not landed (as tests/test_port_graph.py does)."""
    if not ports_graphs(name):
        pytest.xfail(f"the {name} tab has no graph reader/writer yet (no port_checks module)")


def test_a_file_with_a_fixed_batch_size_ports_and_runs_any_batch():
    """torch's exporters fix the batch size unless told otherwise: a file that takes batches of 5 still ports
    (``port`` checks on a batch of 2) and runs batches of 2 and 7, the last part filled up and cut off."""
    net = lenet_network(0)
    model = dc.port(dc.load_backend("numpy").build_network(net), to="onnx").model
    fixed = onnx.ModelProto()
    fixed.CopyFrom(model)
    for value in (*fixed.graph.input, *fixed.graph.output):
        value.type.tensor_type.shape.dim[0].dim_value = 5
    onnx.checker.check_model(fixed, full_check=True)
    ported = dc.port(fixed, to="numpy")
    for batch in (2, 7):
        x = seeded_batch(net.input_shape, np.float32, seed=batch, batch=batch)
        expected = d2l_onnx.run_network(model, x)  # the same graph, any batch size
        assert d2l_onnx.run_network(fixed, x).shape == expected.shape == (batch, 10)
        assert np.max(np.abs(d2l_onnx.run_network(fixed, x) - expected)) <= tolerance(expected)
        assert np.max(np.abs(ported.model.forward(x) - expected)) <= tolerance(expected)


@pytest.mark.parametrize("file", EXPORTED)
def test_files_from_both_torch_exporters_port_into_every_backend(backend, file):
    needs_graphs(backend.NAME)
    ported = dc.port(DATA / file, to=backend.NAME)
    x = seeded_batch(ported.network.input_shape, np.float32, seed=5, batch=3)
    expected = d2l_onnx.run_network(DATA / file, x)  # ONNX Runtime on the exporter's own file
    assert np.max(np.abs(backend.run_network(ported.model, x) - expected)) <= tolerance(expected)


@pytest.mark.parametrize("name", ["lenet", *GRAPHS])
def test_every_backends_networks_go_to_onnx_and_back(backend, name):
    if name != "lenet":
        needs_graphs(backend.NAME)
    net = lenet_network(0) if name == "lenet" else GRAPHS[name](0)
    model = backend.build_network(net)
    to_onnx = dc.port(model, to="onnx", input_shape=net.input_shape)
    onnx.checker.check_model(to_onnx.model, full_check=True)
    assert sum(node.op_type == "BatchNormalization" for node in to_onnx.model.graph.node) == sum(
        layer.kind == "batch_norm" for layer in net.layers
    )
    x = seeded_batch(net.input_shape, np.float32, seed=7)
    expected = backend.run_network(model, x)
    assert np.max(np.abs(d2l_onnx.run_network(to_onnx.model, x) - expected)) <= tolerance(expected)
    back = dc.port(to_onnx.model, to=backend.NAME)
    assert np.max(np.abs(backend.run_network(back.model, x) - expected)) <= tolerance(expected)


def test_the_stored_files_are_what_the_torchscript_exporter_writes(tmp_path):
    pytest.importorskip("torch", reason="re-exporting needs PyTorch")
    sys.path.insert(0, str(DATA))
    from export import NETS, export

    for name in NETS:
        fresh = export(name, "torchscript", tmp_path / f"{name}.onnx")
        x = seeded_batch(d2l_onnx.read_network(fresh).input_shape, np.float32)
        stored = DATA / f"{name}.torchscript.onnx"
        np.testing.assert_allclose(d2l_onnx.run_network(fresh, x), d2l_onnx.run_network(stored, x), rtol=0, atol=1e-6)


@pytest.mark.slow
def test_the_stored_files_are_what_the_dynamo_exporter_writes(tmp_path):
    pytest.importorskip("onnxscript", reason="torch's dynamo exporter needs onnxscript")
    sys.path.insert(0, str(DATA))
    from export import NETS, export

    for name in NETS:
        fresh = export(name, "dynamo", tmp_path / f"{name}.onnx")
        x = seeded_batch(d2l_onnx.read_network(fresh).input_shape, np.float32)
        stored = DATA / f"{name}.dynamo.onnx"
        np.testing.assert_allclose(d2l_onnx.run_network(fresh, x), d2l_onnx.run_network(stored, x), rtol=0, atol=1e-6)


def _stored_arrays(name: str, path: Path) -> list[np.ndarray]:
    """Every array a framework's own saved form holds, read back with that framework's own loader."""
    if name == "numpy":
        with np.load(path) as stored:
            return [stored[key] for key in stored.files]
    if name == "torch":
        import torch

        return [value.numpy() for value in torch.load(path).values() if value.is_floating_point()]
    if name == "tensorflow":
        import keras

        return [np.asarray(v) for v in keras.models.load_model(path, safe_mode=False).weights]
    if name == "jax":
        import flax.serialization
        import jax

        return [np.asarray(v) for v in jax.tree_util.tree_leaves(flax.serialization.msgpack_restore(path.read_bytes()))]
    if name == "paddle":
        import paddle

        return [np.asarray(v.numpy()) for v in paddle.load(str(path)).values()]
    import mxnet as mx

    return [v.asnumpy() for v in mx.nd.load(str(path)).values()]


def test_save_model_writes_the_frameworks_own_form_and_it_reads_back(backend, tmp_path):
    needs_graphs(backend.NAME)
    ported = dc.port(DATA / "resnet.torchscript.onnx", to=backend.NAME)
    (path,) = backend.save_model(ported.model, tmp_path, "resnet")
    assert path.stat().st_size > 0
    stored, weights = _stored_arrays(backend.NAME, path), list(backend.native_weights(ported.model).values())
    assert sorted(a.size for a in stored) == sorted(a.size for a in weights)
    total = sum(float(np.sum(a, dtype=np.float64)) for a in weights)
    assert sum(float(np.sum(a, dtype=np.float64)) for a in stored) == pytest.approx(total, rel=1e-6)


def test_onnxruntime_computes_the_porting_sections_networks_as_every_port_must():
    from d2lconv.harness.parity import onnx_reference
    from d2lconv.harness.parity.checks import porting as porting_checks

    results = onnx_reference.compute_results(["porting"])
    assert set(results) == {"port_lenet", "port_demo"}
    with dc.use_backend("numpy"):
        for check in porting_checks.parity_checks():
            ours = check.compute()
            for field in ("to_numpy", "from_numpy"):
                np.testing.assert_allclose(ours[field], results[check.key][field], rtol=1e-4, atol=1e-5)
