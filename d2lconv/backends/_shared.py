"""Plumbing every tab shares that is not the book's code: how a tab's package gathers its sections, how
``vjp`` picks the op's tensor inputs and calls the tab's op on them, how ``network_code`` writes a pair.
The book's code (each framework's autograd call, its layers, its training loop) stays in the tab."""

from __future__ import annotations

import importlib
import inspect
import sys
from collections.abc import Callable, Sequence
from types import ModuleType
from typing import Any

from ..core.checks import TENSOR_INPUTS

# A tab's sections, one module each, in the book's order: ``ops`` (tensors and the batched operations every
# section builds on; it imports the framework), ``conv_layer`` (6.2), ``grads`` (``vjp``, gradients of every
# op), ``padding_channels_pooling`` (6.3-6.5), ``network`` (a network's reader and writer), ``lenet`` (6.6),
# ``batch_norm`` (d2l-en 8.5, d2l-zh 7.5).
SECTIONS = ("ops", "conv_layer", "grads", "padding_channels_pooling", "network", "lenet", "batch_norm")
# The ops that return several tensors (batch_norm: Y and the moving statistics): vjp differentiates the first.
SEVERAL_OUTPUTS = ("batch_norm",)


def exported_names(*sections: ModuleType) -> list[str]:
    """A tab's ``__all__``: ``NAME``, ``FRAMEWORK``, then the public functions and classes each of its
    section modules defines, section by section in source order (the same in every tab)."""
    return ["NAME", "FRAMEWORK"] + [
        name
        for section in sections
        for name, value in vars(section).items()
        if not name.startswith("_")
        and (inspect.isfunction(value) or inspect.isclass(value))
        and value.__module__ == section.__name__
    ]


def export_sections(package: str) -> list[str]:
    """Import the tab ``package``'s sections in the book's order, put their public names on the package (so
    ``tab.corr2d`` is its ``conv_layer.corr2d``), and return its ``__all__``."""
    tab = sys.modules[package]
    sections = [importlib.import_module(f"{package}.{name}") for name in SECTIONS]
    names = exported_names(*sections)
    for name in names:  # from the section that defines it (another may import a namesake: network's batch_norm)
        setattr(tab, name, next(vars(section)[name] for section in sections if _defines(section, name)))
    return names


def _defines(section: ModuleType, name: str) -> bool:
    value = vars(section).get(name)
    return name in vars(section) and getattr(value, "__module__", section.__name__) == section.__name__


def vjp_leaves(op: str, inputs: Sequence[Any], leaf: Callable[[Any], Any]) -> list[Any]:
    """``op``'s tensor inputs made autograd leaves by ``leaf(x)``; None for an input that is None or not a
    tensor (a pooling ``kernel_size`` given positionally)."""
    tensors = TENSOR_INPUTS[op]
    return [None if x is None or i >= tensors else leaf(x) for i, x in enumerate(inputs)]


def call_op(
    op: str, sections: Sequence[ModuleType], leaves: Sequence[Any], inputs: Sequence[Any], kwargs: dict | None
) -> Any:
    """The tab's ``op`` (the function of that name in its ``sections``) on the leaves, then the rest of the
    inputs as given."""
    tensors = TENSOR_INPUTS[op]
    function = next(getattr(section, op) for section in sections if hasattr(section, op))
    output = function(*leaves[:tensors], *inputs[tensors:], **(kwargs or {}))
    return output[0] if op in SEVERAL_OUTPUTS else output


def pair_source(value: tuple[int, int], sequence: type = tuple) -> str:
    """A (height, width) argument as source code: ``3`` when both are equal, else ``(3, 5)`` (``[3, 5]``
    with ``sequence=list``)."""
    return str(value[0]) if value[0] == value[1] else str(sequence(value))
