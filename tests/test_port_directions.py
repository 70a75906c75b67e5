"""All 30 directions of dc.port on the three hand-written graphs (residual, MobileNet-style, Inception-style):
each tab's port of the PyTorch class is the source, every other tab the target, PyTorch's output the
reference. Several frameworks in one process, so `cross` (tox's `all` environment)."""

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


@pytest.mark.cross
@pytest.mark.parametrize("source", backends.BACKENDS)
@pytest.mark.parametrize("net", sorted(NETS))
def test_every_direction_agrees_with_the_pytorch_source(net, source):
    _installed(source)
    model = seeded(NETS[net])
    shape = model.input_shape
    x = np.random.default_rng(1).standard_normal((3, *shape)).astype(np.float32)
    with torch.no_grad():
        reference = model(torch.from_numpy(x)).numpy()
    limit = TOLERANCE * max(1.0, float(np.max(np.abs(reference))))
    origin = model if source == "torch" else dc.port(model, to=source, input_shape=shape).model
    differences = {}
    for target in backends.BACKENDS:
        if target == source or not backends.is_installed(target):
            continue
        ported = dc.port(origin, to=target, input_shape=shape)
        output = dc.load_backend(target).run_network(ported.model, x)
        differences[target] = float(np.max(np.abs(output - reference)))
    assert differences, "no other tab is installed"
    assert max(differences.values()) <= limit, {"limit": limit, **differences}
