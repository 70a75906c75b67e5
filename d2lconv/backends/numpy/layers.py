"""The NumPy backend's own layers: small classes with ``forward`` and a hand-derived ``backward``.

They are to the NumPy tab what ``torch.nn`` is to PyTorch: ``Sequential(Conv2d(1, 6, 5,
padding=2), Sigmoid(), ...)`` builds LeNet. Parameters live in ``params`` in d2lconv's
layouts (OIHW, dense (out, in)); ``backward(grad)`` takes the gradient of the loss with
respect to the layer's output, stores the parameters' gradients in ``grads`` and returns
the gradient with respect to its input. Convolutions and poolings differentiate through
the NumPy tab's ``vjp`` (one hand-derived backward pass per op).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np

from .._shared import op_arguments


def _forward(op: str, tensors: tuple, kwargs: dict[str, Any]) -> np.ndarray:
    """The NumPy tab's ``op`` on ``tensors`` with the options ``kwargs``, made explicit as the public function
    makes them (the tab's ops are imported on first use: its own ``lenet`` imports this module)."""
    from . import ops

    y: np.ndarray = getattr(ops, op)(*op_arguments(op, ops.tensor, tensors, tensors, kwargs))
    return y


def _vjp(
    op: str, inputs: tuple, grad: np.ndarray, kwargs: dict[str, Any], names: tuple[str, ...] = ()
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """The NumPy tab's backward pass: the gradient of the first input, and by name those of the parameters
    that follow it (a parameter left out, such as a missing bias, has none)."""
    from .grads import vjp

    dx, *params = vjp(op, inputs, grad, kwargs)
    return dx, {name: g for name, g in zip(names, params, strict=False) if g is not None}


def _padding(padding: Any) -> Any:
    """Padding as the ops take it: a word, an int, a pair, or (top, bottom, left, right) as a pair of pairs."""
    if isinstance(padding, tuple | list) and len(padding) == 4:
        return ((padding[0], padding[1]), (padding[2], padding[3]))
    return padding


class Module:
    """A layer: ``forward(x)`` (also ``module(x)``), ``backward(grad)``, ``params`` and their ``grads``."""

    def __init__(self) -> None:
        self.params: dict[str, np.ndarray] = {}
        self.grads: dict[str, np.ndarray] = {}
        self._input: np.ndarray | None = None
        self.training = True

    def train(self, mode: bool = True) -> Module:
        """Training mode (``BatchNorm`` uses the batch's statistics, dropout drops), or prediction mode for
        ``mode=False``; for this layer and all it contains."""
        self.training = mode
        for layer in self.children():
            layer.train(mode)
        return self

    def eval(self) -> Module:
        """Prediction mode (``BatchNorm`` uses its moving statistics)."""
        return self.train(False)

    def __call__(self, x: Any) -> np.ndarray:
        return self.forward(x)

    def forward(self, x: Any) -> np.ndarray:
        raise TypeError(f"{type(self).__name__} defines no forward pass")

    def backward(self, grad: np.ndarray) -> np.ndarray:
        raise TypeError(f"{type(self).__name__} defines no backward pass")

    def children(self) -> list[Module]:
        """The layers this one is made of (a container's), for ``train``."""
        return []

    def _forward_input(self) -> np.ndarray:
        """The input of the last forward pass, where ``backward`` differentiates."""
        if self._input is None:
            raise RuntimeError(f"{type(self).__name__}: call forward before backward")
        return self._input

    def __repr__(self) -> str:
        shown = ", ".join(
            f"{key}={value!r}"
            for key, value in vars(self).items()
            if not key.startswith("_") and key not in ("params", "grads", "training", "buffers")
        )
        return f"{type(self).__name__}({shown})"


def _init(shape: tuple[int, ...], fan_in: int, dtype: Any = np.float32) -> np.ndarray:
    bound = 1 / np.sqrt(max(fan_in, 1))  # torch's default uniform(-1/sqrt(fan_in), 1/sqrt(fan_in))
    return np.random.default_rng(0).uniform(-bound, bound, shape).astype(dtype)


class Conv2d(Module):
    """2-D convolution (cross-correlation), weight OIHW, as ``torch.nn.Conv2d``."""

    op = "conv2d"

    def __init__(
        self, in_channels: int, out_channels: int, kernel_size: Any, stride: Any = 1, padding: Any = 0,
        dilation: Any = 1, groups: int = 1, bias: bool = True,
    ) -> None:  # fmt: skip
        super().__init__()
        self.in_channels, self.out_channels, self.kernel_size = in_channels, out_channels, kernel_size
        self.stride, self.padding, self.dilation, self.groups = stride, padding, dilation, groups
        kh, kw = (kernel_size, kernel_size) if np.ndim(kernel_size) == 0 else kernel_size
        fan_in = in_channels // groups * kh * kw
        self.params["weight"] = _init((out_channels, in_channels // groups, kh, kw), fan_in)
        if bias:
            self.params["bias"] = _init((out_channels,), fan_in)

    def _kwargs(self) -> dict[str, Any]:
        return dict(stride=self.stride, padding=_padding(self.padding), dilation=self.dilation, groups=self.groups)

    def forward(self, x: Any) -> np.ndarray:
        self._input = x
        return _forward(self.op, (x, self.params["weight"], self.params.get("bias")), self._kwargs())

    def backward(self, grad: np.ndarray) -> np.ndarray:
        dx, self.grads = _vjp(
            self.op,
            (self._input, self.params["weight"], self.params.get("bias")),
            grad,
            self._kwargs(),
            ("weight", "bias"),
        )
        return dx


class ConvTranspose2d(Conv2d):
    """Transposed convolution, weight (C_in, C_out/groups, kh, kw), as ``torch.nn.ConvTranspose2d``."""

    op = "conv_transpose2d"

    def __init__(
        self, in_channels: int, out_channels: int, kernel_size: Any, stride: Any = 1, padding: Any = 0,
        output_padding: Any = 0, groups: int = 1, bias: bool = True, dilation: Any = 1,
    ) -> None:  # fmt: skip
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, dilation, groups, bias)
        self.output_padding = output_padding
        kh, kw = self.params["weight"].shape[2:]
        self.params["weight"] = _init((in_channels, out_channels // groups, kh, kw), out_channels // groups * kh * kw)

    def _kwargs(self) -> dict[str, Any]:
        return {**super()._kwargs(), "output_padding": self.output_padding}


class MaxPool2d(Module):
    """Max pooling; padding counts as -inf."""

    op = "max_pool2d"
    options = ("kernel_size", "stride", "padding", "dilation", "ceil_mode")  # the op's, in its order

    def __init__(
        self, kernel_size: Any, stride: Any = None, padding: Any = 0, dilation: Any = 1, ceil_mode: bool = False
    ) -> None:
        super().__init__()
        self.kernel_size, self.stride, self.padding = kernel_size, stride, padding
        self.dilation, self.ceil_mode = dilation, ceil_mode

    def _kwargs(self) -> dict[str, Any]:
        return {name: _padding(self.padding) if name == "padding" else getattr(self, name) for name in self.options}

    def forward(self, x: Any) -> np.ndarray:
        self._input = x
        return _forward(self.op, (x,), self._kwargs())

    def backward(self, grad: np.ndarray) -> np.ndarray:
        return _vjp(self.op, (self._input,), grad, self._kwargs())[0]


class AvgPool2d(MaxPool2d):
    """Average pooling; ``count_include_pad`` says whether padding counts in the divisor."""

    op = "avg_pool2d"
    options = ("kernel_size", "stride", "padding", "ceil_mode", "count_include_pad")

    def __init__(
        self,
        kernel_size: Any,
        stride: Any = None,
        padding: Any = 0,
        ceil_mode: bool = False,
        count_include_pad: bool = True,
    ) -> None:
        super().__init__(kernel_size, stride, padding, 1, ceil_mode)
        del self.dilation
        self.count_include_pad = count_include_pad


class ConstantPad2d(Module):
    """Pads height and width with ``value``; padding (top, bottom, left, right)."""

    def __init__(self, padding: tuple[int, int, int, int], value: float = 0.0) -> None:
        super().__init__()
        self.padding, self.value = tuple(padding), value

    def forward(self, x: Any) -> np.ndarray:
        top, bottom, left, right = self.padding
        return np.pad(x, ((0, 0), (0, 0), (top, bottom), (left, right)), constant_values=self.value)

    def backward(self, grad: np.ndarray) -> np.ndarray:
        top, bottom, left, right = self.padding
        return grad[:, :, top : grad.shape[2] - bottom, left : grad.shape[3] - right]


class ZeroPad2d(ConstantPad2d):
    """Pads height and width with zeros; padding (top, bottom, left, right)."""

    def __init__(self, padding: tuple[int, int, int, int]) -> None:
        super().__init__(padding, 0.0)
        del self.value

    def forward(self, x: Any) -> np.ndarray:
        top, bottom, left, right = self.padding
        return np.pad(x, ((0, 0), (0, 0), (top, bottom), (left, right)))


class Flatten(Module):
    """(N, C, H, W) -> (N, C*H*W), in C, H, W order."""

    def forward(self, x: Any) -> np.ndarray:
        self._input = x
        flat: np.ndarray = np.reshape(x, (len(x), -1))
        return flat

    def backward(self, grad: np.ndarray) -> np.ndarray:
        return grad.reshape(np.shape(self._forward_input()))


class Linear(Module):
    """Dense layer ``y = x @ weight.T + bias``, weight (out, in)."""

    def __init__(self, in_features: int, out_features: int, bias: bool = True) -> None:
        super().__init__()
        self.in_features, self.out_features = in_features, out_features
        self.params["weight"] = _init((out_features, in_features), in_features)
        if bias:
            self.params["bias"] = _init((out_features,), in_features)

    def forward(self, x: Any) -> np.ndarray:
        self._input = x = np.asarray(x)
        y: np.ndarray = x @ self.params["weight"].T
        return y + self.params["bias"] if "bias" in self.params else y

    def backward(self, grad: np.ndarray) -> np.ndarray:
        self.grads = {
            "weight": grad.T @ self._forward_input(),
            **({"bias": grad.sum(axis=0)} if "bias" in self.params else {}),
        }
        dx: np.ndarray = grad @ self.params["weight"]
        return dx


class ReLU(Module):
    """max(x, 0); its gradient passes where x > 0."""

    def forward(self, x: Any) -> np.ndarray:
        self._input = x = np.asarray(x)
        y: np.ndarray = np.maximum(x, 0)
        return y

    def backward(self, grad: np.ndarray) -> np.ndarray:
        return grad * (self._forward_input() > 0)


class Sigmoid(Module):
    """1 / (1 + exp(-x)); its derivative is y (1 - y)."""

    def forward(self, x: Any) -> np.ndarray:
        x = np.asarray(x)
        y: np.ndarray = 1 / (1 + np.exp(-x))
        self._output = y
        return y

    def backward(self, grad: np.ndarray) -> np.ndarray:
        dx: np.ndarray = grad * self._output * (1 - self._output)
        return dx


class Tanh(Module):
    """tanh(x); its derivative is 1 - y**2."""

    def forward(self, x: Any) -> np.ndarray:
        y: np.ndarray = np.tanh(np.asarray(x))
        self._output = y
        return y

    def backward(self, grad: np.ndarray) -> np.ndarray:
        dx: np.ndarray = grad * (1 - self._output**2)
        return dx


class Sequential(Module):
    """Layers applied in order; ``backward`` runs them in reverse."""

    def __init__(self, *layers: Module) -> None:
        super().__init__()
        self.layers = list(layers)

    def __getitem__(self, index: int) -> Module:
        return self.layers[index]

    def __len__(self) -> int:
        return len(self.layers)

    def children(self) -> list[Module]:
        return self.layers

    def __iter__(self) -> Iterator[Module]:
        return iter(self.layers)

    def forward(self, x: Any) -> np.ndarray:
        for layer in self.layers:
            x = layer.forward(x)
        return np.asarray(x)  # an array already, unless there are no layers

    def backward(self, grad: np.ndarray) -> np.ndarray:
        for layer in reversed(self.layers):
            grad = layer.backward(grad)
        return grad

    def parameters(self) -> list[tuple[str, np.ndarray, np.ndarray | None]]:
        """``(name, parameter, its gradient or None)`` for every parameter, named ``"index.name"``."""
        return [
            (f"{index}.{name}", value, layer.grads.get(name))
            for index, layer in enumerate(self.layers)
            for name, value in layer.params.items()
        ]

    def buffers(self) -> list[tuple[str, np.ndarray]]:
        """``(name, statistic)`` for every running statistic (BatchNorm's), named ``"index.name"``."""
        return [
            (f"{index}.{name}", value)
            for index, layer in enumerate(self.layers)
            for name, value in getattr(layer, "buffers", {}).items()
        ]

    def __repr__(self) -> str:
        inner = "".join(f"\n  ({index}): {layer!r}" for index, layer in enumerate(self.layers))
        return f"Sequential({inner}\n)"
