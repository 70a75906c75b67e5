"""Section 6.6, LeNet, in the torch tab: ``nn.Sequential``, autograd and ``torch.optim.SGD``."""

from __future__ import annotations

import time

import numpy as np
import torch
from torch import nn

from ...book.lenet import IMAGE_SHAPE, lenet_network
from .network import build_network

ACTIVATIONS = (nn.Sigmoid, nn.ReLU, nn.Tanh)


def LeNet(seed: int = 0, dtype: str = "float32") -> nn.Sequential:  # noqa: N802 - the book's name
    """The book's LeNet-5 as torch's own ``nn.Sequential``; weights drawn from ``seed`` by NumPy, in ``dtype``."""
    return build_network(lenet_network(seed).astype(dtype))


def layer_summary(net: nn.Sequential) -> list[tuple[str, tuple[int, ...]]]:
    """Each layer's name and output shape (C, H, W or features) for one 1x28x28 image; activations left out."""
    X = torch.zeros((1, *IMAGE_SHAPE))
    summary = []
    with torch.no_grad():
        for layer in net:
            X = layer(X)
            if not isinstance(layer, ACTIVATIONS):
                summary.append((type(layer).__name__, tuple(X.shape[1:])))
    return summary


class Trainer:
    """Plain minibatch SGD on the cross-entropy, as the book's ``train_ch6``: autograd and ``optim.SGD``, the
    network in training mode (``net.train()``: BatchNorm uses the batch's statistics, updates its running ones)."""

    def __init__(self, net: nn.Module, lr: float) -> None:
        self.net = net.train()
        self.loss = nn.CrossEntropyLoss()
        self.optimizer = torch.optim.SGD(net.parameters(), lr=lr)

    def step(self, X: np.ndarray, y: np.ndarray) -> tuple[float, int]:
        """One update on a minibatch; returns its mean loss (before the update) and how many it got right."""
        X, y = torch.from_numpy(X), torch.from_numpy(y)
        self.optimizer.zero_grad()
        y_hat = self.net(X)
        l = self.loss(y_hat, y)  # noqa: E741 - the book's name
        l.backward()
        self.optimizer.step()
        return l.item(), int((y_hat.argmax(1) == y).sum())


def book_train(net: nn.Module, X: np.ndarray, y: np.ndarray, lr: float, batch_size: int, epochs: int) -> list[float]:
    """The book's own loop (``net.train()``, ``DataLoader``, ``optim.SGD``, a loss sum per step) for any network
    (BatchNorm in training mode); the seconds of each epoch.

    For ``d2lconv bench``: the framework's idiomatic loop, to time d2lconv's driver against.
    """
    data = torch.utils.data.DataLoader(
        torch.utils.data.TensorDataset(torch.from_numpy(X), torch.from_numpy(y)), batch_size=batch_size, shuffle=True
    )
    loss, optimizer = nn.CrossEntropyLoss(), torch.optim.SGD(net.parameters(), lr=lr)
    seconds = []
    for _ in range(epochs):
        net.train()  # as the book's train_ch6: the built networks come in prediction mode
        start, total = time.perf_counter(), 0.0
        for X_batch, y_batch in data:
            optimizer.zero_grad()
            l = loss(net(X_batch), y_batch)  # noqa: E741 - the book's name
            l.backward()
            optimizer.step()
            total += l.item() * len(y_batch)
        seconds.append(time.perf_counter() - start)
    return seconds
