"""The NumPy tab's layers for real networks: BatchNorm, merges, global pooling, dropout, more activations, Graph.

Named and laid out as PyTorch's (``BatchNorm2d``, ``Hardswish``, ...), each with a forward and a
hand-derived backward pass, so that the NumPy reference trains ResNets and MobileNets too. The
merges (``Add``, ``Mul``, ``Concat``) take a list of inputs and give back one gradient per input;
``Graph`` runs named nodes in order and back-propagates through them.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Any

import numpy as np

from .layers import Module

INPUT = "input"


class BatchNorm2d(Module):
    """Batch normalisation per channel of (N, C, H, W) or (N, C): PyTorch's ``momentum`` (the weight of the
    new batch); ``variance`` is the estimate the running variance is updated with ("unbiased" as PyTorch,
    "biased" as Keras 3, Flax, Paddle). Training mode normalises with the batch's biased variance."""

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float = 0.1, variance: str = "unbiased") -> None:
        super().__init__()
        self.num_features, self.eps, self.momentum, self.variance = num_features, eps, momentum, variance
        self.params = {"weight": np.ones(num_features, np.float32), "bias": np.zeros(num_features, np.float32)}
        self.buffers = {
            "running_mean": np.zeros(num_features, np.float32),
            "running_var": np.ones(num_features, np.float32),
        }

    def _axes(self, x: np.ndarray) -> tuple[int, ...]:
        return (0, *range(2, x.ndim))

    def _per_channel(self, x: np.ndarray, values: np.ndarray) -> np.ndarray:
        return values.reshape((1, -1) + (1,) * (x.ndim - 2))

    def forward(self, x: Any) -> np.ndarray:
        x = np.asarray(x)
        axes = self._axes(x)
        if self.training:
            mean, var = x.mean(axis=axes), x.var(axis=axes)
            count = x.size // x.shape[1]
            estimate = var * count / max(count - 1, 1) if self.variance == "unbiased" else var
            for name, batch in (("running_mean", mean), ("running_var", estimate)):
                running = self.buffers[name]
                self.buffers[name] = ((1 - self.momentum) * running + self.momentum * batch).astype(running.dtype)
        else:
            mean, var = self.buffers["running_mean"], self.buffers["running_var"]
        self._inv_std = 1 / np.sqrt(self._per_channel(x, var) + self.eps)
        self._normalised = (x - self._per_channel(x, mean)) * self._inv_std
        self._batch_statistics = self.training
        return self._normalised * self._per_channel(x, self.params["weight"]) + self._per_channel(
            x, self.params["bias"]
        )

    def backward(self, grad: np.ndarray) -> np.ndarray:
        axes, xhat = self._axes(grad), self._normalised
        self.grads = {"weight": (grad * xhat).sum(axis=axes), "bias": grad.sum(axis=axes)}
        dxhat = grad * self._per_channel(grad, self.params["weight"])
        if not self._batch_statistics:  # the statistics are constants
            return dxhat * self._inv_std
        # d/dx of (x - mean) / sqrt(var + eps) with mean and var of the batch itself:
        mean_dxhat = dxhat.mean(axis=axes, keepdims=True)
        mean_dxhat_xhat = (dxhat * xhat).mean(axis=axes, keepdims=True)
        return self._inv_std * (dxhat - mean_dxhat - xhat * mean_dxhat_xhat)


def _reduce_to(grad: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """``grad`` summed over the axes that broadcasting stretched, back to ``shape``."""
    while grad.ndim > len(shape):
        grad = grad.sum(axis=0)
    axes = tuple(axis for axis, n in enumerate(shape) if n == 1 and grad.shape[axis] != 1)
    return grad.sum(axis=axes, keepdims=True) if axes else grad


class Add(Module):
    """The sum of its inputs (a residual connection), broadcast as NumPy does."""

    def forward(self, xs: Sequence[Any]) -> np.ndarray:
        arrays = [np.asarray(x) for x in xs]
        self._shapes = [array.shape for array in arrays]
        total: np.ndarray = sum(arrays[1:], arrays[0])
        return total

    def backward(self, grad: np.ndarray) -> list[np.ndarray]:  # type: ignore[override]
        return [_reduce_to(grad, shape) for shape in self._shapes]


class Mul(Module):
    """The product of its inputs (a squeeze-excite gate (N, C, 1, 1) times (N, C, H, W)), broadcast."""

    def forward(self, xs: Sequence[Any]) -> np.ndarray:
        self._inputs = [np.asarray(x) for x in xs]
        product = self._inputs[0]
        for array in self._inputs[1:]:
            product = product * array
        return product

    def backward(self, grad: np.ndarray) -> list[np.ndarray]:  # type: ignore[override]
        grads = []
        for index, array in enumerate(self._inputs):
            others = grad
            for other, value in enumerate(self._inputs):
                if other != index:
                    others = others * value
            grads.append(_reduce_to(others, array.shape))
        return grads


class Concat(Module):
    """Its inputs joined on axis 1 (channels)."""

    def forward(self, xs: Sequence[Any]) -> np.ndarray:
        arrays = [np.asarray(x) for x in xs]
        self._sizes = [array.shape[1] for array in arrays]
        return np.concatenate(arrays, axis=1)

    def backward(self, grad: np.ndarray) -> list[np.ndarray]:  # type: ignore[override]
        return np.split(grad, np.cumsum(self._sizes)[:-1], axis=1)


class GlobalAvgPool2d(Module):
    """The mean over height and width: (N, C, 1, 1) with ``keepdims``, else (N, C)."""

    def __init__(self, keepdims: bool = False) -> None:
        super().__init__()
        self.keepdims = keepdims

    def forward(self, x: Any) -> np.ndarray:
        x = np.asarray(x)
        self._shape = x.shape
        mean: np.ndarray = x.mean(axis=(2, 3), keepdims=self.keepdims)
        return mean

    def backward(self, grad: np.ndarray) -> np.ndarray:
        n, c, h, w = self._shape
        return np.broadcast_to(grad.reshape(n, c, 1, 1) / (h * w), self._shape).copy()


class AdaptiveAvgPool2d(Module):
    """PyTorch's adaptive average pooling, for output sizes that divide the input's (windows of equal size)."""

    def __init__(self, output_size: Any) -> None:
        super().__init__()
        self.output_size = (output_size, output_size) if np.ndim(output_size) == 0 else tuple(output_size)

    def forward(self, x: Any) -> np.ndarray:
        x = np.asarray(x)
        n, c, h, w = x.shape
        oh, ow = self.output_size
        if h % oh or w % ow:
            raise ValueError(f"AdaptiveAvgPool2d: output size {self.output_size} must divide the input's {(h, w)}")
        self._window = (h // oh, w // ow)
        pooled: np.ndarray = x.reshape(n, c, oh, h // oh, ow, w // ow).mean(axis=(3, 5))
        return pooled

    def backward(self, grad: np.ndarray) -> np.ndarray:
        kh, kw = self._window
        spread: np.ndarray = np.repeat(np.repeat(grad, kh, axis=2), kw, axis=3) / (kh * kw)
        return spread


class Dropout(Module):
    """Zeroes a fraction ``p`` of the values in training mode (scaling the rest by 1 / (1 - p)); identity
    in inference mode."""

    def __init__(self, p: float = 0.5, seed: int = 0) -> None:
        super().__init__()
        self.p = p
        self._rng = np.random.default_rng(seed)

    def forward(self, x: Any) -> np.ndarray:
        x = np.asarray(x)
        if not self.training or self.p == 0:
            self._scale: Any = 1
            return x
        self._scale = (self._rng.random(x.shape) >= self.p) / (1 - self.p)
        return x * self._scale

    def backward(self, grad: np.ndarray) -> np.ndarray:
        return grad * self._scale


class _Elementwise(Module, ABC):
    """An activation given as f(x) and f'(x)."""

    def forward(self, x: Any) -> np.ndarray:
        self._input = x = np.asarray(x)
        return self.f(x)

    def backward(self, grad: np.ndarray) -> np.ndarray:
        return grad * self.df(self._forward_input())

    @abstractmethod
    def f(self, x: np.ndarray) -> np.ndarray:
        """The activation."""

    @abstractmethod
    def df(self, x: np.ndarray) -> np.ndarray:
        """Its derivative at x."""


class ReLU6(_Elementwise):
    """min(max(x, 0), 6)."""

    def f(self, x: np.ndarray) -> np.ndarray:
        return np.clip(x, 0, 6)

    def df(self, x: np.ndarray) -> np.ndarray:
        return ((x > 0) & (x < 6)).astype(x.dtype)


class LeakyReLU(_Elementwise):
    """x where x > 0, else negative_slope * x."""

    def __init__(self, negative_slope: float = 0.01) -> None:
        super().__init__()
        self.negative_slope = negative_slope

    def f(self, x: np.ndarray) -> np.ndarray:
        return np.where(x > 0, x, self.negative_slope * x)

    def df(self, x: np.ndarray) -> np.ndarray:
        return np.where(x > 0, 1, self.negative_slope).astype(x.dtype)


class ELU(_Elementwise):
    """x where x > 0, else alpha * (exp(x) - 1)."""

    def __init__(self, alpha: float = 1.0) -> None:
        super().__init__()
        self.alpha = alpha

    def f(self, x: np.ndarray) -> np.ndarray:
        return np.where(x > 0, x, self.alpha * np.expm1(np.minimum(x, 0)))

    def df(self, x: np.ndarray) -> np.ndarray:
        return np.where(x > 0, 1, self.alpha * np.exp(np.minimum(x, 0))).astype(x.dtype)


def _erf(x: np.ndarray) -> np.ndarray:
    return np.vectorize(math.erf, otypes=[x.dtype])(x) if x.size else x


class GELU(_Elementwise):
    """x * Phi(x) (``approximate="none"``), or its tanh approximation (``"tanh"``)."""

    def __init__(self, approximate: str = "none") -> None:
        super().__init__()
        self.approximate = approximate

    def f(self, x: np.ndarray) -> np.ndarray:
        if self.approximate == "tanh":
            return 0.5 * x * (1 + np.tanh(np.sqrt(2 / np.pi) * (x + 0.044715 * x**3)))
        return 0.5 * x * (1 + _erf(x / np.sqrt(2)))

    def df(self, x: np.ndarray) -> np.ndarray:
        if self.approximate == "tanh":
            inner = np.sqrt(2 / np.pi) * (x + 0.044715 * x**3)
            t = np.tanh(inner)
            return 0.5 * (1 + t) + 0.5 * x * (1 - t**2) * np.sqrt(2 / np.pi) * (1 + 3 * 0.044715 * x**2)
        return 0.5 * (1 + _erf(x / np.sqrt(2))) + x * np.exp(-(x**2) / 2) / np.sqrt(2 * np.pi)


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1 / (1 + np.exp(-x))


class SiLU(_Elementwise):
    """x * sigmoid(x) (swish)."""

    def f(self, x: np.ndarray) -> np.ndarray:
        return x * _sigmoid(x)

    def df(self, x: np.ndarray) -> np.ndarray:
        s = _sigmoid(x)
        return s * (1 + x * (1 - s))


class Hardsigmoid(_Elementwise):
    """clip(alpha * x + beta, 0, 1); PyTorch's is alpha 1/6, beta 1/2 (relu6(x + 3) / 6)."""

    def __init__(self, alpha: float = 1 / 6, beta: float = 0.5) -> None:
        super().__init__()
        self.alpha, self.beta = alpha, beta

    def f(self, x: np.ndarray) -> np.ndarray:
        return np.clip(self.alpha * x + self.beta, 0, 1).astype(x.dtype)

    def df(self, x: np.ndarray) -> np.ndarray:
        inside = (self.alpha * x + self.beta > 0) & (self.alpha * x + self.beta < 1)
        return (inside * self.alpha).astype(x.dtype)


class Hardswish(_Elementwise):
    """x * relu6(x + 3) / 6."""

    def f(self, x: np.ndarray) -> np.ndarray:
        return x * np.clip(x + 3, 0, 6) / 6

    def df(self, x: np.ndarray) -> np.ndarray:
        return np.where(x <= -3, 0, np.where(x >= 3, 1, (2 * x + 3) / 6)).astype(x.dtype)


class Softmax(Module):
    """exp(x) / sum(exp(x)) along ``dim``."""

    def __init__(self, dim: int = 1) -> None:
        super().__init__()
        self.dim = dim

    def forward(self, x: Any) -> np.ndarray:
        x = np.asarray(x)
        shifted = np.exp(x - x.max(axis=self.dim, keepdims=True))
        self._output = shifted / shifted.sum(axis=self.dim, keepdims=True)
        return self._output

    def backward(self, grad: np.ndarray) -> np.ndarray:
        y = self._output
        return y * (grad - (grad * y).sum(axis=self.dim, keepdims=True))


class Graph(Module):
    """Named layers run in order, each on the nodes it names (``"input"``: the network's input); the
    output is the node ``output``. ``backward`` accumulates each node's gradient over its readers."""

    def __init__(self, nodes: Sequence[tuple[str, Module, str | tuple[str, ...]]], output: str) -> None:
        super().__init__()
        self.nodes = {name: module for name, module, _ in nodes}
        self.inputs = {name: (inputs,) if isinstance(inputs, str) else tuple(inputs) for name, _, inputs in nodes}
        self.output = output

    def __getitem__(self, name: str) -> Module:
        return self.nodes[name]

    def children(self) -> list[Module]:
        return list(self.nodes.values())

    def run(self, x: Any) -> dict[str, np.ndarray]:
        """Every node's output (``"input"`` included) on ``x``."""
        values: dict[str, np.ndarray] = {INPUT: np.asarray(x)}
        for name, module in self.nodes.items():
            sources = self.inputs[name]
            values[name] = module.forward(
                [values[source] for source in sources] if len(sources) > 1 else values[sources[0]]
            )
        return values

    def forward(self, x: Any) -> np.ndarray:
        return self.run(x)[self.output]

    def backward(self, grad: np.ndarray) -> np.ndarray:
        grads: dict[str, np.ndarray] = {self.output: grad}
        for name in reversed(list(self.nodes)):
            if name not in grads:
                continue  # the output does not depend on this node
            sources = self.inputs[name]
            given = self.nodes[name].backward(grads.pop(name))
            for source, source_grad in zip(sources, given if len(sources) > 1 else [given], strict=True):
                grads[source] = grads[source] + source_grad if source in grads else source_grad
        return grads[INPUT]

    def parameters(self) -> list[tuple[str, np.ndarray, np.ndarray | None]]:
        """``(name, parameter, its gradient or None)`` for every parameter, named ``"node.name"``."""
        return [
            (f"{node}.{name}", value, module.grads.get(name))
            for node, module in self.nodes.items()
            for name, value in module.params.items()
        ]

    def buffers(self) -> list[tuple[str, np.ndarray]]:
        """``(name, statistic)`` for every running statistic, named ``"node.name"``."""
        return [
            (f"{node}.{name}", value)
            for node, module in self.nodes.items()
            for name, value in getattr(module, "buffers", {}).items()
        ]

    def __repr__(self) -> str:
        inner = "".join(
            f"\n  ({name} <- {', '.join(self.inputs[name])}): {module!r}" for name, module in self.nodes.items()
        )
        return f"Graph({inner}\n  -> {self.output}\n)"
