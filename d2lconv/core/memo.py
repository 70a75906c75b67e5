"""Memoisation of argument normalisation: every op call normalises its arguments, so each distinct
call (shapes and options) is worked out once and then looked up in microseconds."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar

Result = TypeVar("Result")


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


def memoised(function: Callable[..., Result], shapes: int) -> Callable[..., Result]:
    """``function`` with its results kept for up to 1024 distinct arguments: its first ``shapes`` arguments
    are shapes (tuples of ints, or None), keyed as they are; the hashable options after them are keyed with
    their types. A call with unhashable options runs uncached. Errors are not kept: a bad call raises its
    error every time."""
    table: dict[Any, Result] = {}

    @functools.wraps(function)
    def call(*args: Any) -> Result:
        try:
            key = (*args[:shapes], *map(_typed_key, args[shapes:]))
        except TypeError:
            return function(*args)
        try:
            return table[key]
        except KeyError:
            pass
        result = function(*args)
        if len(table) >= 1024:
            table.clear()
        table[key] = result
        return result

    return call
