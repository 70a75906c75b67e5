"""Activations a Gluon forward writes as elementwise expressions, found in its symbol graph (for network_read).

MXNet 1.9 has no op for tanh-GELU (its ``LeakyReLU(act_type='gelu')`` is the exact, erf one) nor for
hard-swish, and Gluon's ``Swish`` is ``x * sigmoid(x)``: Gluon code writes them as expressions, this tab's
writer too (``0.5 * x * (1 + tanh(sqrt(2 / pi) * (x + 0.044715 * x ** 3)))``, ``x * hard_sigmoid(x, 1/6,
0.5)``). In the symbol graph each is a cluster of scalar and elementwise ops (``_npi_multiply_scalar``,
``_power_scalar``, ``elemwise_add``, ...) with one tensor input x. Such a cluster is read as a polynomial in
x and in one "atom" a = f(P(x)), f one of tanh, erf, sigmoid or a clip to [0, 1] (``hard_sigmoid`` and a
``clip`` to [0, hi] are written as one), P a polynomial in x; it is an activation when the polynomial and the
atom's argument equal that activation's coefficient by coefficient (relative 1e-6). So every order and form
MXNet produces is recognised (``x ** 3`` or ``x * x * x``, ``/ 2`` or ``* 0.5``, sqrt(2/pi) multiplied out
or not, legacy ``mx.nd`` or ``mxnet.np`` ops), and an expression with a wrong constant is not (the reader
then refuses its first op, naming it).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

Polynomial = dict[tuple[int, int], float]  # (power of x, power of the atom) -> coefficient
Activation = tuple[str, dict[str, Any]]  # a description's kind and arguments

_X: Polynomial = {(1, 0): 1.0}
_GELU_FORM: Polynomial = {(1, 0): 0.5, (1, 1): 0.5}  # 0.5 * x * (1 + a)
_ROOT_2_OVER_PI = math.sqrt(2 / math.pi)
_ACTIVATIONS: list[tuple[Activation, str, Polynomial, Polynomial]] = [  # kind, f, P(x), the expression in x, a
    (
        ("gelu", {"approximate": "tanh"}),
        "tanh",
        {(1, 0): _ROOT_2_OVER_PI, (3, 0): _ROOT_2_OVER_PI * 0.044715},
        _GELU_FORM,
    ),
    (("gelu", {"approximate": "none"}), "erf", {(1, 0): 1 / math.sqrt(2)}, _GELU_FORM),
    (("hard_swish", {}), "clip01", {(1, 0): 1 / 6, (0, 0): 0.5}, {(1, 1): 1.0}),
    (("silu", {}), "sigmoid", _X, {(1, 1): 1.0}),
]
_ADD = {"elemwise_add", "broadcast_add", "_plus", "_Plus", "_npi_add"}
_SUBTRACT = {"elemwise_sub", "broadcast_sub", "_minus", "_Minus", "_npi_subtract"}
_MULTIPLY = {"elemwise_mul", "broadcast_mul", "_mul", "_Mul", "_npi_multiply"}
_WITH_SCALAR: dict[str, Callable[[Polynomial, float], Polynomial | None]] = {  # op(p, its scalar s)
    "_mul_scalar": lambda p, s: _scale(p, s),
    "_npi_multiply_scalar": lambda p, s: _scale(p, s),
    "_div_scalar": lambda p, s: _scale(p, 1 / s) if s else None,
    "_npi_true_divide_scalar": lambda p, s: _scale(p, 1 / s) if s else None,
    "_plus_scalar": lambda p, s: _add(p, {(0, 0): s}),
    "_npi_add_scalar": lambda p, s: _add(p, {(0, 0): s}),
    "_minus_scalar": lambda p, s: _add(p, {(0, 0): -s}),
    "_npi_subtract_scalar": lambda p, s: _add(p, {(0, 0): -s}),
    "_rminus_scalar": lambda p, s: _add(_scale(p, -1), {(0, 0): s}),
    "_npi_rsubtract_scalar": lambda p, s: _add(_scale(p, -1), {(0, 0): s}),
    "_power_scalar": lambda p, s: _power(p, s),
    "_npi_power_scalar": lambda p, s: _power(p, s),
}
_UNARY: dict[str, Callable[[Polynomial], Polynomial]] = {
    "square": lambda p: _multiply(p, p),
    "_npi_square": lambda p: _multiply(p, p),
    "negative": lambda p: _scale(p, -1),
    "_npi_negative": lambda p: _scale(p, -1),
}
_ATOMS = {"tanh": "tanh", "_npi_tanh": "tanh", "erf": "erf", "sigmoid": "sigmoid", "_npx_sigmoid": "sigmoid"}
_ATOMS |= {"hard_sigmoid": "clip01", "_npx_hard_sigmoid": "clip01", "clip": "clip01", "_npi_clip": "clip01"}
_OPS = _ADD | _SUBTRACT | _MULTIPLY | set(_WITH_SCALAR) | set(_UNARY) | set(_ATOMS)


def _scale(p: Polynomial, s: float) -> Polynomial:
    return {power: c * s for power, c in p.items()}


def _add(p: Polynomial, q: Polynomial) -> Polynomial:
    return {power: p.get(power, 0.0) + q.get(power, 0.0) for power in p.keys() | q.keys()}


def _multiply(p: Polynomial, q: Polynomial) -> Polynomial:
    product: Polynomial = {}
    for (i, j), c in p.items():
        for (k, m), d in q.items():
            product[i + k, j + m] = product.get((i + k, j + m), 0.0) + c * d
    return product


def _power(p: Polynomial, s: float) -> Polynomial | None:
    if s != int(s) or not 0 <= s <= 8:  # a polynomial only for small whole exponents
        return None
    result: Polynomial = {(0, 0): 1.0}
    for _ in range(int(s)):
        result = _multiply(result, p)
    return result


def _equal(p: Polynomial, q: Polynomial) -> bool:
    return all(math.isclose(p.get(k, 0.0), q.get(k, 0.0), rel_tol=1e-6, abs_tol=1e-9) for k in p.keys() | q.keys())


class _NotOne(Exception):
    """The cluster is not one polynomial in one x and one atom."""


def _atom(node: dict, argument: Polynomial) -> tuple[str, Polynomial, float]:
    """An atom op as (f, its argument, the factor the node's value is of f): ``hard_sigmoid(P; alpha, beta)`` is
    clip01(alpha P + beta), ``clip(P, 0, hi)`` is hi * clip01(P / hi)."""
    op, attrs = node["op"], node.get("attrs", {})
    if any(j for _, j in argument):
        raise _NotOne  # an atom of an atom
    function = _ATOMS[op]
    if op in ("clip", "_npi_clip"):
        low, high = float(attrs.get("a_min", "nan")), float(attrs.get("a_max", "nan"))
        if low != 0 or not high > 0:
            raise _NotOne
        return function, _scale(argument, 1 / high), high
    if function == "clip01":
        alpha, beta = float(attrs.get("alpha", 0.2)), float(attrs.get("beta", 0.5))
        return function, _add(_scale(argument, alpha), {(0, 0): beta}), 1.0
    return function, argument, 1.0


def _cluster(nodes: list[dict], root: int, stops: set[int]) -> tuple[Activation, int, set[int]] | None:
    """The activation the elementwise cluster ending at ``root`` computes, its input x and the nodes it holds;
    None when it is no activation. Nodes in ``stops`` (found activations) count as tensors from outside."""
    x: int | None = None
    atom: tuple[str, Polynomial] | None = None
    inside: set[int] = set()
    memo: dict[int, Polynomial] = {}

    def value(index: int, output: int = 0) -> Polynomial:
        nonlocal x, atom
        if index in memo:
            return memo[index]
        node = nodes[index]
        op, inputs = node["op"], [(item[0], item[1]) for item in node["inputs"]]
        if index in stops or op not in _OPS:  # a tensor from outside the cluster: it must be the one x
            if output != 0 or x not in (None, index):
                raise _NotOne
            x, result = index, _X
        else:
            inside.add(index)
            first = value(*inputs[0])
            if op in _ADD:
                result = _add(first, value(*inputs[1]))
            elif op in _SUBTRACT:
                result = _add(first, _scale(value(*inputs[1]), -1))
            elif op in _MULTIPLY:
                result = _multiply(first, value(*inputs[1]))
            elif op in _WITH_SCALAR:
                made = _WITH_SCALAR[op](first, float(node["attrs"]["scalar"]))
                if made is None:
                    raise _NotOne
                result = made
            elif op in _UNARY:
                result = _UNARY[op](first)
            else:
                if atom is not None:
                    raise _NotOne  # a second atom
                function, argument, factor = _atom(node, first)
                atom, result = (function, argument), {(0, 1): factor}
        memo[index] = result
        return result

    try:
        polynomial = value(root)
    except _NotOne:
        return None
    if x is None or atom is None:
        return None
    for activation, function, argument, form in _ACTIVATIONS:
        if atom[0] == function and _equal(atom[1], argument) and _equal(polynomial, form):
            return activation, x, inside
    return None


def _upstream(nodes: list[dict], root: int, limit: int = 64) -> list[int]:
    """The elementwise ops ``root`` reads through elementwise ops, nearest first: the candidates for the x of an
    expression whose input is itself an elementwise op (an addition, a ReLU6's clip, a hard-sigmoid), which the
    cluster would otherwise take in as a second x or a second atom."""
    found: list[int] = []
    queue = [root]
    while queue and len(found) < limit:
        for item in nodes[queue.pop(0)]["inputs"]:
            if nodes[item[0]]["op"] in _OPS and item[0] not in found:
                found.append(item[0])
                queue.append(item[0])
    return found


def written_activations(nodes: list[dict], heads: list[int]) -> tuple[dict[int, tuple[Activation, int]], set[int]]:
    """Every node that ends an activation written as an expression -> (the activation, the index of its input
    x); and the nodes inside those expressions, whose values nothing else reads (the reader skips them)."""
    consumers: dict[int, set[int]] = {index: set() for index in range(len(nodes))}
    for index, node in enumerate(nodes):
        for item in node["inputs"]:
            consumers[item[0]].add(index)
    found: dict[int, tuple[Activation, int]] = {}
    hidden: set[int] = set()
    for root, node in enumerate(nodes):
        if node["op"] not in _OPS:
            continue
        read = _cluster(nodes, root, set(found)) or next(
            filter(None, (_cluster(nodes, root, {*found, x}) for x in _upstream(nodes, root))), None
        )
        if read is None:
            continue
        activation, x, inside = read
        private = inside - {root}
        if all(consumers[index] <= inside for index in private) and not private & set(heads):
            found[root] = (activation, x)
            hidden |= private
    return found, hidden
