"""Plumbing every tab shares that is not the book's code: how a tab's package gathers its sections, how
``vjp`` picks the op's tensor inputs and calls the tab's op on them (with the explicit arguments the public
function would pass), how ``network_code`` writes a pair and names a generated forward's variables.
The book's code (each framework's autograd call, its layers, its training loop) stays in the tab."""

from __future__ import annotations

import functools
import importlib
import inspect
import sys
from collections.abc import Callable, Sequence
from types import ModuleType
from typing import Any, TypeVar

from ..book.batch_norm import batch_norm_options
from ..core.args import avg_pool2d_args, conv2d_args, conv_transpose2d_args, pool2d_args
from ..core.checks import TENSOR_INPUTS, same_dtype_tensors
from ..core.network import INPUT, Network

Op = TypeVar("Op", bound=Callable[..., Any])

# A tab's sections, one module each, in the book's order: ``ops`` (tensors and the batched operations every
# section builds on; it imports the framework), ``conv_layer`` (6.2), ``grads`` (``vjp``, gradients of every
# op), ``padding_channels_pooling`` (6.3-6.5), ``network`` (a network's reader and writer), ``lenet`` (6.6),
# ``batch_norm`` (d2l-en 8.5, d2l-zh 7.5), ``resnet`` (d2l-en 8.6, d2l-zh 7.6).
SECTIONS = ("ops", "conv_layer", "grads", "padding_channels_pooling", "network", "lenet", "batch_norm", "resnet")
# The ops that return several tensors (batch_norm: Y and the moving statistics): vjp differentiates the first.
SEVERAL_OUTPUTS = ("batch_norm",)
# The ops whose options are made explicit once, before the tab is called: the tab's op takes its tensors (in
# one dtype) and the explicit arguments these give, and only translates them into its framework's call.
EXPLICIT_ARGUMENTS: dict[str, Callable[..., Any]] = {
    "conv2d": conv2d_args,
    "conv_transpose2d": conv_transpose2d_args,
    "max_pool2d": pool2d_args,
    "avg_pool2d": avg_pool2d_args,
    "batch_norm": batch_norm_options,  # (eps, momentum, training), checked
}


# The attribute a model built from a ``BookNet`` carries its (weightless) description in, for ``layer_summary``.
DESCRIPTION = "_d2lconv_book_net"


def described(model: Any, book_net: Any) -> Any:
    """``model`` carrying ``book_net`` (a ``BookNet`` without weights), set past Keras's and Flax's attribute
    tracking, so that ``layer_summary`` prints the book's block shapes."""
    object.__setattr__(model, DESCRIPTION, book_net)
    return model


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


def op_arguments(
    op: str, tensor: Callable[..., Any], leaves: Sequence[Any], inputs: Sequence[Any], kwargs: dict | None
) -> list[Any]:
    """The positional arguments of the tab's ``op`` for a ``vjp`` call of ``op(*inputs, **kwargs)``, as the
    public function passes them: for an op of ``EXPLICIT_ARGUMENTS``, its tensors (the leaves) in their
    common dtype by the tab's ``tensor`` (a cast that autograd follows) and its explicit arguments (one
    dataclass, or batch_norm's checked ``(eps, momentum, training)``); for the others, the leaves and the rest
    of the inputs (their keyword arguments stay ``kwargs``)."""
    tensors = TENSOR_INPUTS[op]
    if op not in EXPLICIT_ARGUMENTS:
        return [*leaves[:tensors], *inputs[tensors:]]
    given = [*leaves[:tensors], *[None] * (tensors - len(leaves))]  # a missing bias is None
    same = same_dtype_tensors(tensor, *given)
    shapes = (None if x is None else x.shape for x in same)
    explicit = EXPLICIT_ARGUMENTS[op](*shapes, *inputs[tensors:], **(kwargs or {}))
    return [*same, *(explicit if isinstance(explicit, tuple) else (explicit,))]


def call_op(
    op: str, sections: Sequence[ModuleType], leaves: Sequence[Any], inputs: Sequence[Any], kwargs: dict | None
) -> Any:
    """The tab's ``op`` (the function of that name in its ``sections``, the first of which is its ``ops``) on
    the leaves and the rest of the inputs: its first output."""
    function = next(getattr(section, op) for section in sections if hasattr(section, op))
    positional = op_arguments(op, sections[0].tensor, leaves, inputs, kwargs)
    output = function(*positional) if op in EXPLICIT_ARGUMENTS else function(*positional, **(kwargs or {}))
    return output[0] if op in SEVERAL_OUTPUTS else output


def nchw_inside(permute: Callable[[Any, tuple[int, ...]], Any]) -> Callable[[Op], Op]:
    """For a channels-first tab: its op, written for NCHW data and OIHW-ordered weights, given NHWC data
    (``args.channels_last``) too: the data permuted to NCHW, a weight from HWIO (or (kh, kw, C_out/groups,
    C_in)) to OIHW's order, and the result back to NHWC, by the framework's ``permute(tensor, axes)``."""

    def decorate(op: Op) -> Op:
        @functools.wraps(op)
        def call(x: Any, *rest: Any) -> Any:
            *tensors, args = rest
            if not args.channels_last:
                return op(x, *rest)
            weight = [permute(tensors[0], (3, 2, 0, 1))] if tensors else []
            return permute(op(permute(x, (0, 3, 1, 2)), *weight, *tensors[1:], args.channels_first()), (0, 2, 3, 1))

        return call  # type: ignore[return-value]

    return decorate


def pair_source(value: tuple[int, int], sequence: type = tuple) -> str:
    """A (height, width) argument as source code: ``3`` when both are equal, else ``(3, 5)`` (``[3, 5]``
    with ``sequence=list``)."""
    return str(value[0]) if value[0] == value[1] else str(sequence(value))


def forward_variables(net: Network, identifier: Callable[[str], str]) -> dict[str, str]:
    """Node name (``INPUT`` included) -> the variable a generated ``forward`` keeps its value in. A value only
    the next node reads goes into one running variable, as the book writes ``x = layer(x)``, so that the
    framework frees it once it is read and reuses its memory at once; a value read later, or by several nodes,
    keeps its node's name (``identifier(name)``, which must keep clear of ``x`` and ``y``). The input is ``x``;
    the running variable is ``x`` too unless a later node reads the input (then ``y``). Named values for every
    node kept a ported MobileNetV2's 87 MB of activations alive until ``forward`` returned: 1.10-1.18x the time
    of Paddle's own at batch 8 and 1; in PyTorch, 1.8x and 1.7x the time of the same graph run in one variable."""
    readers = {name: list(nodes) for name, nodes in net.consumers().items()}
    for name in net.outputs:
        readers[name].append("return")
    steps = [INPUT, *(layer.name for layer in net.layers), "return"]
    running = "x" if readers[INPUT] == [steps[1]] else "y"
    names = {INPUT: "x"}
    for name, following in zip(steps[1:-1], steps[2:], strict=True):
        names[name] = running if readers[name] == [following] else identifier(name)
    return names
