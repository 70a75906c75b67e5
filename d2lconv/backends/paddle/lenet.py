"""Section 6.6, LeNet, in the paddle tab: ``paddle.nn.Sequential``, autograd and ``paddle.optimizer.SGD``.

The book's Paddle tab calls ``nn.initializer.XavierUniform(m.weight)``, which builds an
initializer and applies nothing; here the seeded Xavier weights are loaded explicitly.
"""

from __future__ import annotations

import time

import numpy as np
import paddle
from paddle import nn

from ...book.lenet import IMAGE_SHAPE, lenet_network
from .network import build_network

ACTIVATIONS = (nn.Sigmoid, nn.ReLU, nn.Tanh)


def LeNet(seed: int = 0, dtype: str = "float32") -> nn.Sequential:  # noqa: N802 - the book's name
    """The book's LeNet-5 as Paddle's own ``nn.Sequential``; weights drawn from ``seed`` by NumPy, in ``dtype``."""
    return build_network(lenet_network(seed).astype(dtype))


def layer_summary(net: nn.Sequential) -> list[tuple[str, tuple[int, ...]]]:
    """Each layer's name and output shape (C, H, W or features) for one 1x28x28 image; activations left out."""
    X = paddle.zeros((1, *IMAGE_SHAPE), "float32")
    summary = []
    with paddle.no_grad():
        for layer in net:
            X = layer(X)
            if not isinstance(layer, ACTIVATIONS):
                summary.append((type(layer).__name__, tuple(X.shape[1:])))
    return summary


class Trainer:
    """Plain minibatch SGD on the cross-entropy, as the book's ``train_ch6``: autograd and ``optimizer.SGD``, the
    network in training mode (``net.train()``: BatchNorm uses the batch's statistics, updates its running ones)."""

    def __init__(self, net: nn.Layer, lr: float) -> None:
        self.net = net
        net.train()
        self.loss = nn.CrossEntropyLoss()
        self.optimizer = paddle.optimizer.SGD(learning_rate=lr, parameters=net.parameters())

    def step(self, X: np.ndarray, y: np.ndarray) -> tuple[float, int]:
        """One update on a minibatch; returns its mean loss (before the update) and how many it got right."""
        X, y = paddle.to_tensor(X), paddle.to_tensor(y)
        self.optimizer.clear_grad()
        y_hat = self.net(X)
        l = self.loss(y_hat, y)  # noqa: E741 - the book's name
        l.backward()
        self.optimizer.step()
        return float(l), int((y_hat.argmax(1) == y).sum())


def book_train(net: nn.Layer, X: np.ndarray, y: np.ndarray, lr: float, batch_size: int, epochs: int) -> list[float]:
    """The book's own loop (``net.train()``, ``io.DataLoader``, ``optimizer.SGD``, a loss sum per step) for any
    network (BatchNorm in training mode); the seconds of each epoch.

    For ``d2lconv bench``: the framework's idiomatic loop, to time d2lconv's driver against.
    """
    data = paddle.io.DataLoader(
        paddle.io.TensorDataset([paddle.to_tensor(X), paddle.to_tensor(y)]), batch_size=batch_size, shuffle=True
    )
    loss, optimizer = nn.CrossEntropyLoss(), paddle.optimizer.SGD(learning_rate=lr, parameters=net.parameters())
    seconds = []
    for _ in range(epochs):
        net.train()  # as the book's train_ch6: the built networks come in prediction mode
        start, total = time.perf_counter(), 0.0
        for X_batch, y_batch in data:
            optimizer.clear_grad()
            l = loss(net(X_batch), y_batch)  # noqa: E741 - the book's name
            l.backward()
            optimizer.step()
            total += float(l) * len(y_batch)
        seconds.append(time.perf_counter() - start)
    return seconds
