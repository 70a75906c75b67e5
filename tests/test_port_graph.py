"""dc.port on graphs: residual, MobileNet-style and Inception-style networks written as ordinary PyTorch classes,
from every tab to PyTorch; training-mode comparison, one SGD step, per-node differences, bad input (all 30
directions: test_port_directions.py; drawn graphs: test_port_drawn.py).

A tab takes part once it can run graphs node by node and train them (its ``port_checks`` module, see
``d2lconv.core.network``); until then its directions are expected failures, so that they run as soon as
it lands.
"""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

import d2lconv as dc
from d2lconv import backends
from d2lconv.book.porting_nets import PORTING_NETWORKS
from d2lconv.porting import ports_graphs

if backends.is_installed("paddle"):
    dc.load_backend("paddle")  # before anything imports tensorflow

torch = pytest.importorskip("torch")
nn = torch.nn
from graph_nets import NETS, seeded  # noqa: E402 - needs torch

TARGETS = backends.BACKENDS


def graph_tab(name: str) -> None:
    """Skip a backend that is not installed; expect failure from one whose graph support has not landed."""
    if not backends.is_installed(name):
        pytest.skip(f"{name} is not installed here")
    if not ports_graphs(name):
        pytest.xfail(f"the {name} tab has no graph reader/writer yet (no port_checks module)")


def agree(expected: np.ndarray, actual: np.ndarray, tolerance: float = 1e-4) -> float:
    diff = float(np.max(np.abs(np.asarray(expected, np.float64) - actual)))
    assert diff <= tolerance * max(1.0, float(np.max(np.abs(expected)))), diff
    return diff


def batch(shape: tuple[int, ...], n: int = 4, dtype: type = np.float32, seed: int = 1) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((n, *shape)).astype(dtype)


def torch_output(model: nn.Module, x: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return model(torch.from_numpy(x)).numpy()


@pytest.mark.cross  # the source and PyTorch together
@pytest.mark.parametrize("source", TARGETS)
@pytest.mark.parametrize("net", sorted(PORTING_NETWORKS))
def test_neutral_networks_from_every_backend_to_torch(net, source):
    graph_tab(source)
    description = PORTING_NETWORKS[net](0)
    model = dc.load_backend(source).build_network(description)
    x = batch(description.input_shape)
    ported = dc.port(model, to="torch", input_shape=description.input_shape)
    reference = dc.load_backend("numpy").build_network(description)
    agree(dc.load_backend("numpy").run_network(reference, x), dc.load_backend("torch").run_network(ported.model, x))


def test_float64_is_kept_to_about_1e_10():
    model = seeded(NETS["resnet"], dtype=torch.float64)
    ported = dc.port(model, to="numpy")
    x = batch(model.input_shape, dtype=np.float64)
    expected, actual = torch_output(model, x), ported.model.forward(x)
    assert actual.dtype == np.float64
    assert np.max(np.abs(expected - actual)) <= 1e-10 * max(1.0, np.max(np.abs(expected)))


@pytest.mark.parametrize("net", sorted(NETS))
def test_training_mode_forward_and_running_statistics_agree(net):
    model = seeded(NETS[net])
    ported = dc.port(model, to="numpy")
    before = model.blocks[0].conv1[1].running_var.clone() if net == "resnet" else None
    outputs, statistics = ported.compare(batch(model.input_shape), train=True)
    assert outputs <= 1e-4 and statistics <= 1e-5
    if before is not None:  # the statistics really moved (so that the comparison compares something)
        assert float((model.blocks[0].conv1[1].running_var - before).abs().max()) > 1e-3


def test_the_momentum_trap_shows_in_the_running_statistics():
    model = seeded(NETS["resnet"])
    ported = dc.port(model, to="numpy")
    for module in ported.model.nodes.values():
        if hasattr(module, "momentum"):
            module.momentum = 0.9  # Keras/Paddle's "kept" weight taken as PyTorch's
    assert ported.compare(batch(model.input_shape), train=True)[1] > 1e-2


@pytest.mark.parametrize("net", sorted(NETS))
def test_one_sgd_step_gives_the_same_loss_and_weights(net):
    model = seeded(NETS[net])
    ported = dc.port(model, to="numpy")
    first = {name: p.detach().clone() for name, p in model.named_parameters()}
    loss, weights = ported.compare_train_step(batch(model.input_shape), lr=0.5)
    assert loss <= 1e-5 and weights <= 1e-4
    moved = max(float((p.detach() - first[name]).abs().max()) for name, p in model.named_parameters())
    assert moved > 1e-3  # the step changed the weights


def test_per_layer_names_the_node_with_a_wrong_epsilon():
    model = seeded(NETS["resnet"])
    ported = dc.port(model, to="numpy")
    broken = [name for name, module in ported.model.nodes.items() if hasattr(module, "eps")][2]
    ported.model[broken].eps = 1e-1
    rows = ported.compare(batch(model.input_shape), per_layer=True)
    assert rows.first_over == broken
    names = [name for name, _, _ in rows]
    assert names.index(broken) > 0 and all(diff <= 1e-5 for _, _, diff in rows[: names.index(broken)])
    assert dict((name, kind) for name, kind, _ in rows)[broken] == "batch_norm"


def test_a_users_own_class_is_found_by_its_bases():
    model = seeded(NETS["mobilenet"])
    assert type(model).__module__ == "graph_nets" and dc.port(model, to="numpy").source == "torch"


class WithLSTM(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv, self.lstm = nn.Conv2d(1, 2, 3), nn.LSTM(2, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.lstm(self.conv(x))[0]


class WithSort(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sort(x, dim=1).values


class WithControlFlow(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 2, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x) if x.sum() > 0 else -self.conv(x)


@pytest.mark.parametrize(
    ("model", "message"),
    [
        (WithLSTM(), r"node 'lstm' .*LSTM.*port supports networks of: 2-D convolution"),
        (WithSort(), r"node 'sort' .*sort.*port supports networks of"),
        (WithControlFlow(), r"WithControlFlow cannot be traced by torch.fx"),
    ],
)
def test_what_cannot_be_ported_is_a_value_error_naming_the_node(model, message):
    with pytest.raises(ValueError, match=message):
        dc.port(model, to="numpy", input_shape=(1, 7, 7))


def test_unknown_target_is_a_value_error():
    with pytest.raises(ValueError, match="unknown backend 'caffe'"):
        dc.port(seeded(NETS["resnet"]), to="caffe")


def test_port_command_on_a_graph_prints_its_steps_and_difference():
    result = subprocess.run(
        [sys.executable, "-m", "d2lconv.cli", "port", "--from", "torch", "--to", "numpy", "--net", "resnet"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "a graph of 21 nodes" in result.stdout and "Add(), ('b1_bn2', 'b1_down_bn'))" in result.stdout
    assert "epsilon [1e-05, 0.001]" in result.stdout
    assert float(result.stdout.rsplit("(NCHW): ", 1)[1]) < 1e-5


def test_port_command_names_a_tab_without_graphs_in_one_line():
    without = [name for name in backends.BACKENDS if not ports_graphs(name)]
    if not without:
        pytest.skip("every tab ports graphs")
    result = subprocess.run(
        [sys.executable, "-m", "d2lconv.cli", "port", "--from", "numpy", "--to", without[0], "--net", "inception"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 2 and len(result.stderr.strip().splitlines()) == 1
    assert result.stderr.startswith(f"d2lconv: error: --to {without[0]}: the {without[0]} tab cannot port graphs")
