"""``port``: the same network, with the same weights, in another framework, explained and checked.

A port is the target tab's writer after the source tab's reader, through d2lconv's
framework-neutral ``Network``: adding a framework adds one reader and one writer, not five
converters. The rules (layouts, padding, pooling, ceil mode, flatten order) live in
``d2lconv.core.plan`` and ``d2lconv.core.conventions``, and take each framework's facts as data
(``FACTS``: the registry's and ONNX's); every rule that applies is listed in ``Ported.steps`` with its
reason, and ``port`` measures the result against the source before returning it.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

from . import backends
from .backends import BACKENDS, canonical_name, load_backend, model_backend
from .core.conventions import layout_steps
from .core.facts import CHANNELS_FIRST, BatchNormFacts, FrameworkFacts
from .core.network import CHAPTER_KINDS, Layer, Network, conv, pool
from .core.plan import plan

SEED = 0
ONNX = "onnx"  # not a backend: a file format with a reader and a writer (``d2lconv.onnx``), run by ONNX Runtime
# ONNX's facts live here, not in d2lconv.onnx, which imports onnx and onnxruntime (an extra) when imported.
ONNX_FACTS = FrameworkFacts(
    ONNX, "ONNX", CHANNELS_FIRST, BatchNormFacts("kept", 1e-5, "biased"),
    conv_padding="explicit", same_padding="any", pool_padding="explicit", ceil_mode="drops_overhang",
    adaptive_pooling=False, dilated_pooling=True,
)  # fmt: skip
FACTS: dict[str, FrameworkFacts] = {**backends.FACTS, ONNX: ONNX_FACTS}
"""What ``port`` knows of every framework it reads and writes: each backend's (the registry's) and ONNX's."""


def source_backend(model: Any) -> str:
    """The backend whose framework ``model`` belongs to, from its class's bases (imports nothing);
    ``"onnx"`` for an ``onnx.ModelProto`` or the path of a file."""
    if type(model).__module__.split(".")[0] == ONNX or isinstance(model, str | Path):
        return ONNX
    name = model_backend(model)
    if name is None:
        raise ValueError(
            f"port needs a network of one of the frameworks of {', '.join(BACKENDS)}; "
            f"got a {type(model).__module__}.{type(model).__name__}"
        )
    return name


class LayerDiffs(list):
    """``[(node name, kind, max abs diff), ...]`` in graph order, and the first node over ``tolerance``
    (``first_over``: its name, or None when every node agrees)."""

    def __init__(self, rows: list[tuple[str, str, float]], tolerance: float, first_over: str | None) -> None:
        super().__init__(rows)
        self.tolerance, self.first_over = tolerance, first_over


@dataclass
class Ported:
    """A network ported to another framework: the model, how it was done, and how close it is."""

    model: Any
    layout: str
    steps: list[str]
    code: str
    max_diff: float
    source: str
    target: str
    network: Network = field(repr=False)
    source_model: Any = field(repr=False)
    size_dependent: bool = False

    def _check_size(self, x: np.ndarray) -> None:
        if x.ndim != 1 + len(self.network.input_shape):
            raise ValueError(
                f"x must be a batch of shape (N, {', '.join(map(str, self.network.input_shape))}) "
                f"(NCHW); got shape {x.shape}"
            )
        if self.size_dependent and tuple(x.shape[1:]) != tuple(self.network.input_shape):
            raise ValueError(
                f"this port is exact for inputs of shape {self.network.input_shape} only (a 'same' "
                f"padding or a ceil mode was written out for that size); got {tuple(x.shape[1:])}"
            )

    def compare(self, x: Any, train: bool = False, per_layer: bool = False) -> Any:
        """On the user's NCHW batch ``x``: (max |source - target|, that divided by max |source|).

        ``train=True``: one training-mode forward on both (batch statistics; dropout off), which updates
        both models' BatchNorm running statistics in place: (max abs diff of the outputs, max abs diff of
        the running statistics left behind, compared in PyTorch's momentum convention).
        ``per_layer=True``: a ``LayerDiffs`` of every node's largest difference, in graph order, layouts
        undone, naming the first node over the tolerance (1e-4 x max(1, max |source|) in float32)."""
        x = np.asarray(x, dtype=self.network.dtype)
        self._check_size(x)
        if per_layer:
            return self._per_layer(x)
        if not train:
            return _difference(self.source, self.source_model, self.target, self.model, x)
        expected = _checks(self.source).train_forward(self.source_model, x)
        actual = _checks(self.target).train_forward(self.model, x)
        if expected.shape != actual.shape:
            raise ValueError(f"the ported model gives shape {actual.shape}, the source {expected.shape}")
        statistics = (
            _max_diff(source.weights[name], target.weights[name])
            for source, target in self._matched_layers()
            if source.kind == "batch_norm"
            for name in ("running_mean", "running_var")
        )
        return _max_diff(expected, actual), max(statistics, default=0.0)

    def _matched_layers(self) -> list[tuple[Layer, Layer]]:
        """The nodes of the source and of the target, each read by its own tab, that stand for the same node
        of the description (the target's writer writes the planned description node for node)."""
        shape = tuple(self.network.input_shape)
        source = _tab(self.source).read_network(self.source_model, shape)
        target = _tab(self.target).read_network(self.model, shape)
        return [(source.layer(name), target.layer(other)) for name, other in self._node_names(target).items()]

    def _node_names(self, target: Network) -> dict[str, str]:
        """Description node name -> the target's node name for it."""
        planned = plan(self.network, FACTS[self.target]).network
        if [layer.kind for layer in planned.layers] != [layer.kind for layer in target.layers]:
            known = {layer.name for layer in target.layers}
            return {layer.name: layer.name for layer in self.network.layers if layer.name in known}
        by_position = {mine.name: theirs.name for mine, theirs in zip(planned.layers, target.layers, strict=True)}
        return {layer.name: by_position[layer.name] for layer in self.network.layers if layer.name in by_position}

    def _per_layer(self, x: np.ndarray) -> LayerDiffs:
        source = _checks(self.source).run_nodes(self.source_model, x)
        target_net = _tab(self.target).read_network(self.model, tuple(self.network.input_shape))
        target = _checks(self.target).run_nodes(self.model, x)
        rows, first = [], None
        for layer in self.network.layers:
            other = self._node_names(target_net).get(layer.name)
            if other is None or layer.name not in source or other not in target:
                continue
            expected, actual = source[layer.name], target[other]
            diff = _max_diff(expected, actual) if expected.shape == actual.shape else float("inf")
            rows.append((layer.name, layer.kind, diff))
            if first is None and not diff <= _tolerance(expected):
                first = layer.name
        return LayerDiffs(rows, TOLERANCE, first)

    def compare_train_step(self, x: Any, target: Any = None, lr: float = 0.1) -> tuple[float, float]:
        """One SGD step on the same batch on both models, in place (training mode, dropout off; loss =
        mean((y - target)**2), ``target`` default: a seeded standard normal one): (relative difference of
        the losses, largest relative difference of any updated weight or running statistic)."""
        x = np.asarray(x, dtype=self.network.dtype)
        self._check_size(x)
        if target is None:
            shape = _tab(self.source).run_network(self.source_model, x).shape
            target = np.random.default_rng(SEED).standard_normal(shape).astype(x.dtype)
        losses = [
            _checks(name).train_step(model, x, np.asarray(target, x.dtype), lr)
            for name, model in ((self.source, self.source_model), (self.target, self.model))
        ]
        weights = max(
            (
                _max_diff(mine.weights[name], theirs.weights[name])
                / max(float(np.max(np.abs(mine.weights[name]))), np.finfo(float).tiny)
                for mine, theirs in self._matched_layers()
                for name in mine.weights
            ),
            default=0.0,
        )
        return abs(losses[0] - losses[1]) / max(abs(losses[0]), np.finfo(float).tiny), weights

    def save_weights(self, path: str | Path) -> None:
        """Write the ported model's weights, in the target framework's layouts, to an ``.npz`` that
        ``code`` loads."""
        np.savez(path, **_tab(self.target).native_weights(self.model))


def _tab(name: str) -> ModuleType:
    """The reader, writer and runner of a backend, or of ONNX (imported only when used: an extra)."""
    if name == ONNX:
        from . import onnx as onnx_format

        return onnx_format
    return load_backend(name)


def ports_graphs(name: str) -> bool:
    """Whether tab ``name`` reads and writes graphs and the kinds that came with them (it has the hooks
    of ``port_checks``), found without importing its framework."""
    return (Path(backends.__file__).parent / name / "port_checks.py").is_file()


def _checks(name: str) -> ModuleType:
    """Tab ``name``'s hooks for the per-node and training checks (its ``port_checks`` module)."""
    tab = load_backend(name)
    try:
        return importlib.import_module(f"{tab.__name__}.port_checks")
    except ModuleNotFoundError:
        raise ValueError(
            f"the {name} tab cannot yet run a model node by node or train it one step (no port_checks)"
        ) from None


TOLERANCE = 1e-4  # relative, float32: max |diff| <= TOLERANCE * max(1, max |reference|)
FLOAT64_TOLERANCE = 1e-9  # relative, float64
ROUNDED_TOLERANCE = 1e-6  # relative, float64 through an op that holds its constant as float32


def _tolerance(reference: np.ndarray) -> float:
    scale = max(1.0, float(np.max(np.abs(reference))) if reference.size else 0.0)
    return (FLOAT64_TOLERANCE if reference.dtype == np.float64 else TOLERANCE) * scale


def _max_diff(expected: np.ndarray, actual: np.ndarray) -> float:
    expected, actual = np.asarray(expected), np.asarray(actual)
    if expected.shape != actual.shape:
        return float("inf")
    return float(np.max(np.abs(expected.astype(np.float64) - actual))) if expected.size else 0.0


def _difference(source: str, source_model: Any, target: str, model: Any, x: np.ndarray) -> tuple[float, float]:
    """(max |source - target|, that divided by max |source|) of the two models on the batch ``x``."""
    expected = _tab(source).run_network(source_model, x)
    actual = _tab(target).run_network(model, x)
    if expected.shape != actual.shape:
        raise ValueError(f"the ported model gives shape {actual.shape}, the source {expected.shape}")
    diff = float(np.max(np.abs(expected - actual))) if expected.size else 0.0
    return diff, diff / max(float(np.max(np.abs(expected))) if expected.size else 0.0, np.finfo(float).tiny)


def target_name(to: str) -> str:
    """A backend's canonical name, or ``"onnx"``."""
    return ONNX if isinstance(to, str) and to.strip().lower() == ONNX else canonical_name(to)


def seeded_batch(input_shape: tuple[int, ...], dtype: Any, seed: int = SEED, batch: int = 2) -> np.ndarray:
    """The batch ``port`` measures on: standard normal values (negative ones included, so that a max
    pooling padded with 0 instead of -inf shows), drawn from ``seed``."""
    return np.random.default_rng(seed).standard_normal((batch, *input_shape)).astype(dtype)


def port(model: Any, to: str, input_shape: tuple[int, ...] | None = None, seed: int = SEED) -> Ported:
    """``model`` (a network of any backend's framework, an ``onnx.ModelProto`` or an ``.onnx`` path) in
    framework ``to`` (a backend, or ``"onnx"``: an ``onnx.ModelProto`` checked by ONNX Runtime), weights loaded.

    ``input_shape`` (C, H, W), or (features,) for a network that starts dense, fixes the size the port
    is exact for where a rule depends on it (default: the source's own, else the size the first dense
    layer implies, else 17x17).
    """
    source, target = source_backend(model), target_name(to)
    net = _tab(source).read_network(model, None if input_shape is None else tuple(int(v) for v in input_shape))
    try:
        net.shapes()
    except ValueError as error:
        raise ValueError(f"{error} (on inputs of shape {net.input_shape}; pass input_shape=(C, H, W))") from None
    if not (net.is_sequential and {layer.kind for layer in net.layers} <= set(CHAPTER_KINDS)):
        for name in (source, target):
            if name != ONNX and not ports_graphs(name):
                raise ValueError(
                    f"the {name} tab cannot port graphs or the layer kinds that came with them yet "
                    f"({', '.join(sorted({layer.kind for layer in net.layers} - set(CHAPTER_KINDS)))}): "
                    f"no graph reader/writer (port_checks); tabs that can: "
                    f"{', '.join(n for n in BACKENDS if ports_graphs(n))}"
                )
    planned = plan(net, FACTS[target])
    steps = layout_steps(FACTS[source], FACTS[target], net) + planned.steps
    rounded: list[str] = []
    if net.dtype == np.float64:
        steps.append(f"dtype: the weights are float64, and so is the {FACTS[target].display} network")
        rounded = _float32_constants(net, FACTS[source], FACTS[target])
        steps += rounded
    writer = _tab(target)
    built = writer.build_network(net)
    max_diff, relative = _difference(source, model, target, built, seeded_batch(net.input_shape, net.dtype, seed))
    ported = Ported(
        model=built,
        layout=FACTS[target].layouts["data"],
        steps=steps,
        code=writer.network_code(net),
        max_diff=max_diff,
        source=source,
        target=target,
        network=net,
        source_model=model,
        size_dependent=planned.size_dependent,
    )
    tolerance = (ROUNDED_TOLERANCE if rounded else FLOAT64_TOLERANCE) if net.dtype == np.float64 else TOLERANCE
    if not relative <= tolerance:
        raise RuntimeError(
            f"the {target} port of this {source} network differs from it by {ported.max_diff:.3g} "
            f"({relative:.3g} relative) on a random batch: a porting rule is missing (a bug)"
        )
    return ported


def _float32_constants(net: Network, *sides: FrameworkFacts) -> list[str]:
    """A step per framework whose op for a kind in ``net`` takes its constant as float32: in float64 those
    nodes differ from the description by that rounding (1e-10 to 4e-8 relative, measured), which ``port``'s
    check allows (1e-6 instead of 1e-9)."""
    kinds = {layer.kind for layer in net.layers}
    return [
        f"dtype: {facts.display}'s {', '.join(sorted(kinds & set(facts.float32_constants)))} take their constant "
        "(slope, alpha, epsilon) as float32: in float64 these nodes compute with it rounded to float32"
        for facts in sides
        if kinds & set(facts.float32_constants)
    ]


def demo_network(seed: int = SEED) -> Network:
    """Every classic porting trap in one network, on 3x16x16 inputs (weights drawn from ``seed``):
    a stride-2 convolution with symmetric padding 1 (not Keras's 'same' on an even input), a max
    pooling padded by 1 (the padding must count as -inf), a grouped and a dilated convolution,
    average pooling in ceil mode whose overhang stays out of the divisor, flatten and dense."""
    rng = np.random.default_rng(seed)

    def weights(*shape: int) -> tuple[np.ndarray, np.ndarray]:
        bound = 1 / np.sqrt(np.prod(shape[1:]))
        return (
            rng.uniform(-bound, bound, shape).astype(np.float32),
            rng.uniform(-bound, bound, shape[0]).astype(np.float32),
        )

    def conv3x3(c_in: int, c_out: int, **options: Any) -> Layer:
        weight, bias = weights(c_out, c_in // options.get("groups", 1), 3, 3)
        return conv(c_in, c_out, 3, weight=weight, bias=bias, **options)

    layers = [
        conv3x3(3, 8, stride=2, padding=1),
        pool("max_pool2d", 3, stride=2, padding=1),
        Layer("relu"),
        conv3x3(8, 8, padding=1, groups=2),
        Layer("tanh"),
        conv3x3(8, 16, padding=2, dilation=2),
        Layer("sigmoid"),
        pool("avg_pool2d", 3, stride=2, ceil_mode=True, count_include_pad=False),
        Layer("flatten"),
    ]
    weight, bias = weights(10, 16 * 2 * 2)
    layers.append(
        Layer("linear", {"in_features": 64, "out_features": 10, "bias": True}, {"weight": weight, "bias": bias})
    )
    return Network((3, 16, 16), layers)
