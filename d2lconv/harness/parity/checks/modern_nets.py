"""Sections 7.1 to 7.7's parity checks, the modern CNNs' shapes (the book's half: ``d2lconv.book.modern_nets``).

The book prints each network's shapes by running its blocks one after another on one image
(``for layer in net: X = layer(X); print(X.shape)``). Here each block is the part of the network's
description between two of the book's printed blocks, built by the active tab's writer in the
framework's own layers and run by the framework on the previous block's output: the shapes every
backend's layers really produce, compared with NumPy's. Weights come from ``seed=None`` (zeros, as
shapes need no more), yet the framework still allocates its own: VGG-11's 129 million weights and
its 7 GMAC forward on 224x224 take seconds on every backend and more than a gigabyte on NumPy's.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from dataclasses import replace

import numpy as np

import d2lconv as dc

from ....backends import load_backend
from ....book import modern_nets
from ....core.network import INPUT, Network
from . import ParityCheck


def blocks(book_net: modern_nets.BookNet) -> Iterator[tuple[str, Network]]:
    """The book's printed blocks of ``book_net`` as networks of their own: (label, the nodes after the previous
    block's end up to this block's end, reading that end as their input)."""
    net = book_net.network
    shapes, position = net.node_shapes(), {layer.name: index for index, layer in enumerate(net.layers)}
    start, previous = 0, INPUT
    for label, end in book_net.stages:
        stop = position[end] + 1
        layers = [
            replace(layer, inputs=tuple(INPUT if source == previous else source for source in layer.inputs))
            for layer in net.layers[start:stop]
        ]
        yield label, Network(shapes[previous], layers, (end,))
        start, previous = stop, end


def block_shapes(name: str) -> dict[str, np.ndarray]:
    """The output shape of each of the book's blocks of network ``name`` on its book input (one image), as the
    active framework computes them block by block; fields ``"<index> <label>"``."""
    tab = load_backend(dc.get_backend())
    book_net = modern_nets.NETWORKS[name](None)
    x = np.zeros((1, *book_net.book_input), np.float32)
    shapes = {}
    for index, (label, block) in enumerate(blocks(book_net), 1):
        x = np.asarray(dc.to_numpy(tab.run_network(tab.build_network(block), x)))
        shapes[f"{index} {label}"] = np.array(x.shape[1:], np.float64)
    return shapes


def parity_checks() -> list[ParityCheck]:
    """Every modern CNN's block shapes on the book's input (AlexNet, VGG-11, NiN on 224x224, GoogLeNet,
    ResNet-18, DenseNet on 96x96), exact."""
    return [
        ParityCheck(f"shapes/{name}", functools.partial(block_shapes, name), rtol=0.0, atol=0.0)
        for name in modern_nets.NETWORKS
    ]
