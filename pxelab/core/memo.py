"""``memoized``: :func:`functools.cached_property` without the lock Python 3.11 takes.

Up to Python 3.11, cached_property holds one lock per attribute, shared by
every instance, around each first computation: ~1 µs per miss, which the
DHCP codecs pay several times per message. Codec values are immutable and a
race computes the same value twice at worst, so they need no lock. Like
cached_property it stores the value in the instance's ``__dict__`` (so it works
on frozen dataclasses without slots) and is not a field: equality, hashing
and ``dataclasses.replace`` do not see it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Generic, Self, TypeVar, overload

__all__ = ["memoized"]

T = TypeVar("T")


class memoized(Generic[T]):  # noqa: N801 - used like the property it replaces
    """Compute an attribute on first access and keep it in the instance."""

    def __init__(self, func: Callable[[Any], T]) -> None:
        self.func = func
        self.name = func.__name__
        self.__doc__ = func.__doc__

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    @overload
    def __get__(self, instance: None, owner: type | None = None) -> Self: ...

    @overload
    def __get__(self, instance: object, owner: type | None = None) -> T: ...

    def __get__(self, instance: object | None, owner: type | None = None) -> T | Self:
        if instance is None:
            return self
        # A non-data descriptor: once the value is in __dict__, Python finds it there first.
        value = instance.__dict__[self.name] = self.func(instance)
        return value
