"""The porting row of ``d2lconv parity`` (the port itself: ``d2lconv.porting``)."""

from __future__ import annotations

import functools
from collections.abc import Callable

import numpy as np

import d2lconv as dc

from .... import porting
from ....backends import load_backend
from ....book.lenet import lenet_network
from ....book.porting_nets import PORTING_NETWORKS
from ....core.network import Network
from . import ParityCheck


def parity_checks() -> list[ParityCheck]:
    """The porting row of ``d2lconv parity``: on the active backend, the seeded example networks
    (LeNet and the demo) built in its framework and ported to
    NumPy, and NumPy's ported to it, each run on a seeded batch. Every worker is compared with
    the NumPy reference, so each reader and each writer is checked, and with them all 30
    directions (a port A -> B is B's writer after A's reader)."""
    return _port_checks({"lenet": lenet_network, "demo": porting.demo_network})


def graph_parity_checks() -> list[ParityCheck]:
    """The same for the three graphs of ``d2lconv port --net`` (a residual network with a stride-2
    projection, a MobileNet block, an Inception block; BatchNorm statistics drawn at random)."""
    return _port_checks(PORTING_NETWORKS)


def _port_checks(nets: dict[str, Callable[[int], Network]]) -> list[ParityCheck]:
    """One check per network: its port from the active backend to NumPy, and NumPy's port to it."""

    def compute(make: Callable[[int], Network]) -> dict[str, np.ndarray]:
        net, name = make(porting.SEED), dc.get_backend()
        x = porting.seeded_batch(net.input_shape, net.dtype)
        own = load_backend(name).build_network(net)
        from_numpy = porting.port(load_backend("numpy").build_network(net), to=name, input_shape=net.input_shape)
        to_numpy = porting.port(own, to="numpy", input_shape=net.input_shape)
        return {
            "to_numpy": to_numpy.model.forward(x),
            "from_numpy": load_backend(name).run_network(from_numpy.model, x),
        }

    return [ParityCheck(f"port_{key}", functools.partial(compute, make)) for key, make in nets.items()]
