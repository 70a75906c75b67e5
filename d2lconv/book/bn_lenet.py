"""BN-LeNet (d2l-en 8.5.4, d2l-zh 7.5.4), the framework-neutral half: the network as one description.

The book's LeNet with a batch normalisation after every convolution and dense layer, before the
sigmoid; its convolutions pad nothing (28 -> 24 -> 12 -> 8 -> 4, so the first dense layer takes
16 * 4 * 4 = 256 features), unlike the chapter-6 LeNet. ``bn_lenet_network(seed)`` describes it with
``batch_norm`` nodes (d2lconv's convention: momentum 0.1 of the new batch, the biased variance, eps
1e-5). Each tab builds it with the book's own from-scratch ``BatchNorm`` layer: its writer builds the
layers around them (``split_batch_norms``), in the framework's layouts, and the tab puts its
``BatchNorm(num_features, num_dims)`` at each batch_norm node. Weights come from the same seed as
LeNet's (Xavier uniform, zero biases), so every backend starts from one network.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..core.layer import Layer, batch_norm, conv, pool
from ..core.network import Network
from .batch_norm import EPS, MOMENTUM
from .lenet import IMAGE_SHAPE, NUM_CLASSES, _seeds, xavier_uniform

# Defaults for the bundled digits, from a sweep on NumPy (seed 0, 20 epochs, minibatches of 32): test
# accuracy after the last epoch 96.9 % with lr 0.2, 97.5 % with lr 0.5, 96.7 % with lr 1.0 (it wanders by
# 1-3 points from epoch to epoch: the moving statistics follow batches of 32). The book trains
# Fashion-MNIST with lr 0.1 (d2l-en; its TensorFlow tab 0.5) or 1.0 (d2l-zh) on batches of 128 or 256;
# 1,438 digits give such batches only 6-12 steps an epoch, so minibatches of 32 as LeNet's.
EPOCHS, LR, BATCH_SIZE = 20, 0.5, 32


def bn_lenet_network(seed: int = 0) -> Network:
    """The book's BN-LeNet as a ``Network``: Xavier-uniform weights from ``seed``, zero biases, BN 1 and 0."""
    rng = _seeds(seed)[0]

    def convolution(c_in: int, c_out: int) -> Layer:
        return conv(c_in, c_out, 5, weight=xavier_uniform(rng, (c_out, c_in, 5, 5)), bias=np.zeros(c_out, np.float32))

    def linear(n_in: int, n_out: int) -> Layer:
        return Layer(
            "linear",
            {"in_features": n_in, "out_features": n_out, "bias": True},
            {"weight": xavier_uniform(rng, (n_out, n_in)), "bias": np.zeros(n_out, np.float32)},
        )

    def bn(channels: int) -> Layer:
        return batch_norm(channels, EPS, MOMENTUM, variance="biased")

    return Network(
        IMAGE_SHAPE,
        [
            convolution(1, 6), bn(6), Layer("sigmoid"), pool("avg_pool2d", 2, 2),
            convolution(6, 16), bn(16), Layer("sigmoid"), pool("avg_pool2d", 2, 2),
            Layer("flatten"),
            linear(16 * 4 * 4, 120), bn(120), Layer("sigmoid"),
            linear(120, 84), bn(84), Layer("sigmoid"),
            linear(84, NUM_CLASSES),
        ],
    )  # fmt: skip


def split_batch_norms(net: Network) -> tuple[Network, dict[int, tuple[int, int]]]:
    """A sequential ``net`` without its batch_norm nodes, and where they go: index in the full list ->
    (num_features, num_dims), the arguments of the book's ``BatchNorm`` (4 after a convolution, 2 after
    a dense layer)."""
    shapes = net.shapes()
    kept, places = [], {}
    for index, layer in enumerate(net.layers):
        if layer.kind == "batch_norm":
            places[index] = (layer.args["num_features"], 1 + len(shapes[index]))
        else:
            kept.append(Layer(layer.kind, layer.args, layer.weights))
    return Network(net.input_shape, kept), places


def interleave(layers: list[Any], places: dict[int, tuple[int, int]], make: Any) -> list[Any]:
    """``layers`` (a network's layers without its batch normalisations) with ``make(num_features,
    num_dims)`` put back at each place ``split_batch_norms`` found."""
    rest, full = iter(layers), []
    for index in range(len(layers) + len(places)):
        full.append(make(*places[index]) if index in places else next(rest))
    return full
