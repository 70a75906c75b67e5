"""Section 6.6, LeNet, in the numpy tab: d2lconv's own layers, trained by their hand-derived backward passes.

No autograd: the gradient of the mean cross-entropy with respect to the logits is
``(softmax(logits) - one_hot(y)) / batch``; ``Sequential.backward`` carries it back through
every layer (convolutions and poolings by the NumPy tab's ``vjp``), and the update is
``param -= lr * grad``, in place.
"""

from __future__ import annotations

import time
from typing import cast

import numpy as np

from ...book.lenet import IMAGE_SHAPE, lenet_network
from . import layers, layers_graph
from .network import build_network

ACTIVATIONS = (layers.Sigmoid, layers.ReLU, layers.Tanh)


def LeNet(seed: int = 0, dtype: str = "float32") -> layers.Sequential:  # noqa: N802 - the book's name
    """The book's LeNet-5 in d2lconv's NumPy layers; weights drawn from ``seed`` by NumPy, in ``dtype``."""
    return cast(layers.Sequential, build_network(lenet_network(seed).astype(dtype)))


def layer_summary(net: layers.Sequential) -> list[tuple[str, tuple[int, ...]]]:
    """Each layer's name and output shape (C, H, W or features) for one 1x28x28 image; activations left out."""
    X = np.zeros((1, *IMAGE_SHAPE), np.float32)
    summary = []
    for layer in net:
        X = layer(X)
        if not isinstance(layer, ACTIVATIONS):
            summary.append((type(layer).__name__, tuple(X.shape[1:])))
    return summary


def _cross_entropy(y_hat: np.ndarray, y: np.ndarray) -> tuple[float, np.ndarray]:
    """The mean cross-entropy of logits ``y_hat`` against labels ``y``, and its gradient for ``y_hat``."""
    shifted = y_hat - y_hat.max(axis=1, keepdims=True)
    log_probs = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    rows = np.arange(len(y))
    grad = np.exp(log_probs)
    grad[rows, y] -= 1
    return float(-log_probs[rows, y].mean()), grad / len(y)


class Trainer:
    """Plain minibatch SGD on the cross-entropy: forward, hand-derived backward, ``param -= lr * grad``; the
    network in training mode (BatchNorm normalises with the batch's statistics and updates its running ones)."""

    def __init__(self, net: layers.Sequential | layers_graph.Graph, lr: float) -> None:
        self.net, self.lr = net, lr
        net.train()

    def step(self, X: np.ndarray, y: np.ndarray) -> tuple[float, int]:
        """One update on a minibatch; returns its mean loss (before the update) and how many it got right."""
        y_hat = self.net.forward(X)
        l, grad = _cross_entropy(y_hat, y)  # noqa: E741 - the book's name
        self.net.backward(grad)
        for layer in self.net.children():  # a Sequential's layers, a Graph's nodes
            for name, param in layer.params.items():
                param -= self.lr * layer.grads[name]
        return l, int((y_hat.argmax(1) == y).sum())


def book_train(
    net: layers.Sequential, X: np.ndarray, y: np.ndarray, lr: float, batch_size: int, epochs: int
) -> list[float]:
    """A plain NumPy loop (``net.train()``, shuffled slices, forward, backward, update, a loss sum per step) for
    any network of d2lconv's NumPy layers (BatchNorm in training mode); seconds per epoch.

    For ``d2lconv bench``: the loop one writes by hand, to time d2lconv's driver against.
    """
    rng, trainer, seconds = np.random.default_rng(0), Trainer(net, lr), []
    net.train()  # the built networks come in prediction mode
    for _ in range(epochs):
        start, total = time.perf_counter(), 0.0
        order = rng.permutation(len(y))
        for first in range(0, len(y), batch_size):
            index = order[first : first + batch_size]
            l, _ = trainer.step(X[index], y[index])  # noqa: E741 - the book's name
            total += l * len(index)
        seconds.append(time.perf_counter() - start)
    return seconds
