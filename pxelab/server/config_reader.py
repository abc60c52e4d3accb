"""Reading one TOML table at a time, with errors that name the file, the key and the fix.

:mod:`pxelab.server.config` and :mod:`pxelab.server.config_policy` read the lab file through
:class:`Table`: unknown keys are refused when the table is opened (with a
did-you-mean suggestion), and every typed getter refuses a wrong type or an
out-of-range value with a :class:`~pxelab.core.errors.ConfigError` whose message is
``<file>: <key path>: <problem>; <fix>`` — e.g.
``lab.toml: dhcp4.pool[1]: 10.0.0.9 is not inside 192.0.2.0/24; ...``.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv6Address, ip_address
from pathlib import Path
from typing import Any, NoReturn

from pxelab.core.errors import ConfigError

__all__ = ["Origin", "Table", "did_you_mean", "toml_type"]


def toml_type(value: object) -> str:
    """The TOML name of a parsed value's type, for messages."""
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "float"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "table"
    return "date/time"


def did_you_mean(word: str, choices: Iterable[str], what: str) -> str:
    """``did you mean 'x'?`` when a choice is close, else the list of ``what``."""
    options = sorted(choices)
    close = difflib.get_close_matches(word, options, n=1, cutoff=0.6)
    if close:
        return f"did you mean {close[0]!r}?"
    return f"{what}: {', '.join(options) or '(none)'}"


@dataclass(frozen=True)
class Origin:
    """Where the configuration came from: names the file in errors, anchors relative paths."""

    name: str
    base: Path

    def fail(self, where: str, problem: str, fix: str) -> NoReturn:
        raise ConfigError(f"{self.name}: {where}: {problem}; {fix}")


class Table:
    """One TOML table (``[dhcp4]``, ``[[rule]]`` number 2, ...) read key by key.

    ``where`` is the key path of the table itself (``dhcp4``, ``rule[2]``). The
    getters return None for an absent key, so callers keep ServerConfig's
    defaults unless the file says otherwise.
    """

    def __init__(self, origin: Origin, where: str, data: Mapping[str, Any],
                 known: Sequence[str]) -> None:
        self.origin = origin
        self.where = where
        self.data = data
        self.known = tuple(known)
        for key in data:
            if key not in self.known:
                fix = did_you_mean(key, self.known, f"the keys of {where} are")
                self.fail(key, "unknown key", fix)

    def at(self, key: str) -> str:
        """The key path of ``key`` in this table: ``dhcp4.pool``."""
        return f"{self.where}.{key}"

    def has(self, key: str) -> bool:
        return key in self.data

    def fail(self, key: str, problem: str, fix: str) -> NoReturn:
        self.origin.fail(self.at(key), problem, fix)

    def wrong_type(self, key: str, expected: str, example: str, value: object = None,
                   where: str | None = None) -> NoReturn:
        value = self.data[key] if value is None else value
        shown = f" {value!r}" if not isinstance(value, dict | list) else ""
        self.origin.fail(where or self.at(key),
                         f"expected {expected}, got {toml_type(value)}{shown}",
                         f"write it like {example}")

    # -- scalars ------------------------------------------------------------------------------

    def text(self, key: str, example: str | None = None) -> str | None:
        value = self.data.get(key)
        if value is None:
            return None
        if not isinstance(value, str):
            self.wrong_type(key, "a string", example or f'{key} = "..."')
        return value

    def flag(self, key: str) -> bool | None:
        value = self.data.get(key)
        if value is None:
            return None
        if not isinstance(value, bool):
            self.wrong_type(key, "a boolean", f"{key} = true (or false, without quotes)")
        return value

    def integer(self, key: str, low: int, high: int) -> int | None:
        value = self.data.get(key)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int):
            self.wrong_type(key, "an integer", f"{key} = {low}")
        if not low <= value <= high:
            self.fail(key, f"{value} is outside {low}..{high}",
                      f"choose a value from {low} to {high}")
        return value

    def number(self, key: str, low: float, high: float, *,
               zero_ok: bool = False) -> float | None:
        """An integer or float in ``(low, high]`` — durations, where 0 makes no sense
        unless ``zero_ok`` (then ``[low, high]``)."""
        value = self.data.get(key)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int | float):
            self.wrong_type(key, "a number of seconds", f"{key} = {high / 2:g}")
        if zero_ok and value == low:
            return float(value)
        if not math.isfinite(value) or not low < value <= high:
            self.fail(key, f"{value} is outside ({low:g}, {high:g}]",
                      f"choose a number of seconds above {low:g} and at most {high:g}")
        return float(value)

    def choice(self, key: str, choices: Sequence[str]) -> str | None:
        value = self.text(key, f'{key} = "{choices[0]}"')
        if value is not None and value not in choices:
            self.fail(key, f"{value!r} is not one of {', '.join(map(repr, choices))}",
                      did_you_mean(value, choices, "use one of"))
        return value

    # -- arrays -------------------------------------------------------------------------------

    def array(self, key: str, example: str) -> list[Any] | None:
        value = self.data.get(key)
        if value is None:
            return None
        if not isinstance(value, list):
            self.wrong_type(key, "an array", example)
        return value

    def strings(self, key: str, example: str) -> list[tuple[str, str]] | None:
        """An array of strings, each paired with its key path (``dhcp4.dns[1]``)."""
        items = self.array(key, example)
        if items is None:
            return None
        result = []
        for index, item in enumerate(items):
            where = f"{self.at(key)}[{index}]"
            if not isinstance(item, str):
                self.wrong_type(key, "a string", example, item, where)
            result.append((where, item))
        return result

    # -- addresses ----------------------------------------------------------------------------

    def address4(self, where: str, text: str) -> IPv4Address:
        return self._address(where, text, 4)  # type: ignore[return-value]

    def address6(self, where: str, text: str) -> IPv6Address:
        return self._address(where, text, 6)  # type: ignore[return-value]

    def _address(self, where: str, text: str, version: int) -> IPv4Address | IPv6Address:
        example = "192.0.2.10" if version == 4 else "2001:db8::10"
        try:
            address = ip_address(text.strip())
        except ValueError:
            self.origin.fail(where, f"{text!r} is not an IPv{version} address",
                             f"write it like \"{example}\"")
        if address.version != version:
            self.origin.fail(where, f"{text!r} is an IPv{address.version} address, "
                             f"IPv{version} is needed here", f"write it like \"{example}\"")
        return address
