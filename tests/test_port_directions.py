"""All 30 directions of dc.port on the three hand-written graphs (residual, MobileNet-style, Inception-style):
each tab's port of the PyTorch class is the source, every other tab the target. Inference against PyTorch's
output; training mode (a forward on batch statistics, one SGD step) against the source. Several frameworks
in one process, so `cross` (tox's `all` environment)."""

from __future__ import annotations

import numpy as np
import pytest

import d2lconv as dc
from d2lconv import backends

if backends.is_installed("paddle"):
    dc.load_backend("paddle")  # before anything imports tensorflow

torch = pytest.importorskip("torch")
from graph_nets import NETS, seeded  # noqa: E402 - needs torch

TOLERANCE = 1e-4  # x max(1, max |reference|), float32


def _installed(name: str) -> None:
    if not backends.is_installed(name):
        pytest.skip(f"{name} is not installed here")


def _source(net: str, source: str) -> tuple[object, object, np.ndarray]:
    """The seeded PyTorch model, its port to ``source`` (itself for torch) and a batch."""
    _installed(source)
    model = seeded(NETS[net])
    x = np.random.default_rng(1).standard_normal((3, *model.input_shape)).astype(np.float32)
    return model, model if source == "torch" else dc.port(model, to=source, input_shape=model.input_shape).model, x


def _targets(source: str) -> list[str]:
    targets = [name for name in backends.BACKENDS if name != source and backends.is_installed(name)]
    if not targets:
        pytest.skip("no other tab is installed")
    return targets


@pytest.mark.cross
@pytest.mark.parametrize("source", backends.BACKENDS)
@pytest.mark.parametrize("net", sorted(NETS))
def test_every_direction_agrees_with_the_pytorch_source(net, source):
    model, origin, x = _source(net, source)
    with torch.no_grad():
        reference = model(torch.from_numpy(x)).numpy()
    limit = TOLERANCE * max(1.0, float(np.max(np.abs(reference))))
    differences = {}
    for target in _targets(source):
        ported = dc.port(origin, to=target, input_shape=model.input_shape)
        differences[target] = float(np.max(np.abs(dc.load_backend(target).run_network(ported.model, x) - reference)))
    assert max(differences.values()) <= limit, {"limit": limit, **differences}


@pytest.mark.cross
@pytest.mark.parametrize("source", backends.BACKENDS)
@pytest.mark.parametrize("net", sorted(NETS))
def test_every_direction_trains_like_its_source(net, source):
    """A training-mode forward gives the same outputs and running statistics, and one SGD step the same loss
    and weights. Where the two tabs update the running variance differently (biased against unbiased), the
    port says so in ``steps`` and the statistics differ by that gap only (momentum / (n - 1) of a batch
    variance, n the values per channel: at most 2e-4 on these batches)."""
    model, origin, x = _source(net, source)
    for target in _targets(source):
        ported = dc.port(origin, to=target, input_shape=model.input_shape)
        variance_gap = any("running variance" in step for step in ported.steps)
        outputs, statistics = ported.compare(x, train=True)
        loss, weights = ported.compare_train_step(x, lr=0.5)
        assert outputs <= TOLERANCE and loss <= 1e-5, (target, outputs, loss)
        assert statistics <= (2e-4 if variance_gap else 1e-5), (target, statistics)
        assert weights <= (5e-4 if variance_gap else 1e-4), (target, weights)
