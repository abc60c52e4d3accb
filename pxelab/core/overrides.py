"""Typed, immutable overrides of a frozen settings dataclass's fields.

A scenario changes a few of the boot server's or the policy's settings. A plain dict
of them lets a misspelt key or a wrong type through until the settings are built,
which is after the lab is up; and a dict inside a frozen dataclass can still be
changed. :class:`Overrides` checks every key and value against the target's fields
when it is made, cannot be changed afterwards, and is hashable like the scenario
that holds it. Subclasses name the target and the fields the caller sets itself::

    class ServerOverrides(Overrides):
        target = ServerConfig
        reserved = frozenset({"interface"})

    ServerOverrides(ready_timeout=5.0)        # ok
    ServerOverrides(ready_timout=5.0)         # ConfigError: did you mean ready_timeout?
"""

from __future__ import annotations

import dataclasses
import difflib
import types
import typing
from collections.abc import Iterator, Mapping
from typing import Any, ClassVar, Self

from pxelab.core.errors import ConfigError

__all__ = ["Overrides"]


class Overrides(Mapping[str, Any]):
    """Field name -> value for :attr:`target`, checked once, never mutated.

    A :class:`~collections.abc.Mapping`, so ``target(**fixed, **overrides)`` builds the
    settings; :meth:`with_values` and :meth:`without` make changed copies.
    """

    target: ClassVar[type]
    # Fields the code applying the overrides sets itself: overriding them is an error.
    reserved: ClassVar[frozenset[str]] = frozenset()

    __slots__ = ("_values",)
    _values: Mapping[str, Any]

    def __init__(self, **values: Any) -> None:
        hints = self.settable()
        for key, value in values.items():
            if key not in hints:
                raise ConfigError(self._unknown(key, hints))
            if not _fits(value, hints[key]):
                raise ConfigError(
                    f"{type(self).__name__}: {key}={value!r} (of type {type(value).__name__}): "
                    f"{self.target.__name__}.{key} takes {_show(hints[key])}")
        object.__setattr__(self, "_values", types.MappingProxyType(dict(values)))

    @classmethod
    def settable(cls) -> dict[str, Any]:
        """The target's overridable fields and their resolved types."""
        hints = typing.get_type_hints(cls.target)
        return {f.name: hints[f.name] for f in dataclasses.fields(cls.target)
                if f.init and not f.name.startswith("_") and f.name not in cls.reserved}

    def _unknown(self, key: str, hints: Mapping[str, Any]) -> str:
        near = difflib.get_close_matches(key, list(hints), n=1)
        hint = f"did you mean {near[0]!r}? " if near else ""
        if key in self.reserved:
            return (f"{type(self).__name__}: {key!r} is set by the lab itself and cannot be "
                    f"overridden; valid keys: {', '.join(sorted(hints))}")
        return (f"{type(self).__name__}: {key!r} is not a {self.target.__name__} field; "
                f"{hint}valid keys: {', '.join(sorted(hints))}")

    def with_values(self, **values: Any) -> Self:
        """A copy with ``values`` added or replacing these."""
        return type(self)(**{**self._values, **values})

    def without(self, *keys: str) -> Self:
        """A copy without ``keys`` (their settings go back to the target's defaults)."""
        return type(self)(**{k: v for k, v in self._values.items() if k not in keys})

    def __getitem__(self, key: str) -> Any:
        return self._values[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Mapping):
            return dict(self._values) == dict(other)
        return NotImplemented

    def __hash__(self) -> int:
        return hash((type(self), frozenset(self._values.items())))

    def __repr__(self) -> str:
        inner = ", ".join(f"{k}={v!r}" for k, v in self._values.items())
        return f"{type(self).__name__}({inner})"

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"{type(self).__name__} is immutable; use with_values() "
                             "or without() for a changed copy")

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"{type(self).__name__} is immutable")

    def __reduce__(self) -> tuple[Any, ...]:  # pickle (xdist, multiprocessing) by keywords
        return (_rebuild, (type(self), dict(self._values)))


def _rebuild(cls: type[Overrides], values: dict[str, Any]) -> Overrides:
    return cls(**values)


def _fits(value: object, hint: Any) -> bool:
    """Whether ``value`` is of the annotated type ``hint`` (the forms settings use)."""
    if hint is Any:
        return True
    if hint is type(None):
        return value is None
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        return any(_fits(value, arg) for arg in args)
    if origin is typing.Literal:
        return value in args
    if origin is tuple:
        if not isinstance(value, tuple):
            return False
        if len(args) == 2 and args[1] is Ellipsis:
            return all(_fits(item, args[0]) for item in value)
        return len(args) == len(value) and all(map(_fits, value, args))
    if origin is not None:
        return isinstance(origin, type) and isinstance(value, origin)
    if hint is float:  # as mypy: an int is a float
        return isinstance(value, int | float) and not isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if isinstance(hint, type):
        return isinstance(value, hint)
    return True  # a form not checked here; the target's own checks still run


def _show(hint: Any) -> str:
    return hint.__name__ if isinstance(hint, type) else str(hint).replace("typing.", "")
