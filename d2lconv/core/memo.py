"""Memoisation of argument normalisation: every op call normalises its arguments, so each distinct
call (shapes and options) is worked out once and then looked up in microseconds."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, ParamSpec, TypeVar

Result = TypeVar("Result")
Parameters = ParamSpec("Parameters")


def _typed_key(value: Any) -> Any:
    """A hashable key for ``value`` that tells ``1``, ``1.0`` and ``True`` apart (they hash alike):
    an int is its own key, anything else is paired with its type; unhashable values raise TypeError."""
    kind = type(value)
    if kind is int:
        return value
    if kind is tuple or kind is list:
        return kind, tuple(map(_typed_key, value))
    hash(value)  # a TypeError for anything unhashable (an array): not cached
    return kind, value


def memoised(shapes: int) -> Callable[[Callable[Parameters, Result]], Callable[Parameters, Result]]:
    """Keep a function's results for up to 1024 distinct arguments: its first ``shapes`` arguments are
    shapes (any framework's: torch.Size, TensorShape, a Paddle list; None for no tensor), passed on as
    tuples and keyed as they are; the hashable options after them, positional or named, are keyed with
    their types. A call with unhashable options runs uncached. Errors are not kept: a bad call raises its
    error every time."""

    def decorate(function: Callable[Parameters, Result]) -> Callable[Parameters, Result]:
        table: dict[Any, Result] = {}

        @functools.wraps(function)
        def call(*args: Any, **kwargs: Any) -> Result:
            args = (*(None if s is None else tuple(s) for s in args[:shapes]), *args[shapes:])
            try:
                key = (*args[:shapes], *map(_typed_key, args[shapes:]), *map(_typed_key, kwargs.items()))
            except TypeError:
                return function(*args, **kwargs)
            try:
                return table[key]
            except KeyError:
                pass
            result = function(*args, **kwargs)
            if len(table) >= 1024:
                table.clear()
            table[key] = result
            return result

        return call

    return decorate
