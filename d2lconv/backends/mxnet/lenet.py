"""Section 6.6, LeNet, in the mxnet tab: a Gluon ``nn.Sequential``, ``autograd.record()`` and the Gluon Trainer."""

from __future__ import annotations

import time

import numpy as onp
from mxnet import autograd, gluon
from mxnet import np as mnp
from mxnet.gluon import nn

from ...book.lenet import IMAGE_SHAPE, lenet_network
from .network import build_network

ACTIVATIONS = (nn.Activation,)


def LeNet(seed: int = 0, dtype: str = "float32") -> nn.Sequential:  # noqa: N802 - the book's name
    """The book's LeNet-5 as Gluon's own ``nn.Sequential``; weights drawn from ``seed`` by NumPy, in ``dtype``."""
    return build_network(lenet_network(seed).astype(dtype))


def layer_summary(net: nn.Sequential) -> list[tuple[str, tuple[int, ...]]]:
    """Each layer's name and output shape (C, H, W or features) for one 1x28x28 image; activations left out."""
    X = mnp.zeros((1, *IMAGE_SHAPE))
    summary = []
    for layer in net:
        X = layer(X)
        if not isinstance(layer, ACTIVATIONS):
            summary.append((type(layer).__name__, tuple(X.shape[1:])))
    return summary


class Trainer:
    """Plain minibatch SGD on the cross-entropy, as the book's ``train_ch6``: ``autograd`` and ``gluon.Trainer``."""

    def __init__(self, net: nn.Sequential, lr: float) -> None:
        self.net = net
        self.loss = gluon.loss.SoftmaxCrossEntropyLoss()
        self.trainer = gluon.Trainer(net.collect_params(), "sgd", {"learning_rate": lr})

    def step(self, X: onp.ndarray, y: onp.ndarray) -> tuple[float, int]:
        """One update on a minibatch; returns its mean loss (before the update) and how many it got right."""
        X, y = mnp.array(X, dtype=X.dtype), mnp.array(y)  # mnp.array makes float32 unless told: float64 stays
        with autograd.record():
            y_hat = self.net(X)
            l = self.loss(y_hat, y)  # noqa: E741 - the book's name
        l.backward()
        self.trainer.step(X.shape[0])  # the summed gradient over the batch, divided by its size
        return float(l.mean()), int((y_hat.argmax(1) == y).sum())


def book_train(
    net: gluon.Block, X: onp.ndarray, y: onp.ndarray, lr: float, batch_size: int, epochs: int
) -> list[float]:
    """The book's own loop (``gluon.data.DataLoader``, the Gluon Trainer, a loss sum per step) for any network
    (``autograd.record()`` runs BatchNorm in training mode); seconds per epoch.

    For ``d2lconv bench``: the framework's idiomatic loop, to time d2lconv's driver against.
    """
    data = gluon.data.DataLoader(
        gluon.data.ArrayDataset(mnp.array(X), mnp.array(y)), batch_size=batch_size, shuffle=True
    )
    loss = gluon.loss.SoftmaxCrossEntropyLoss()
    trainer = gluon.Trainer(net.collect_params(), "sgd", {"learning_rate": lr})
    seconds = []
    for _ in range(epochs):
        start, total = time.perf_counter(), 0.0
        for X_batch, y_batch in data:
            with autograd.record():
                l = loss(net(X_batch), y_batch)  # noqa: E741 - the book's name
            l.backward()
            trainer.step(X_batch.shape[0])
            total += float(l.sum())
        seconds.append(time.perf_counter() - start)
    return seconds
