"""pxelab's one template syntax: ``{{ name }}``, for every file and string it fills in.

Menus, iPXE scripts, daemon configurations and policy boot-file names all take
the lab's values the same way. Double braces because every other syntax is
taken by the files themselves: ``${var}`` is iPXE's and the shell's, ``{`` opens
dhcpd.conf blocks, nginx blocks and Kea's JSON, ``$var`` is GRUB's. Only a
name between the braces is a placeholder, so ``{{"Dhcp4": ...`` in compact JSON
is left alone.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from pxelab.core.errors import ConfigError

PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")


def placeholders(text: str) -> set[str]:
    """The names ``text`` asks for."""
    return {match.group(1) for match in PLACEHOLDER.finditer(text)}


def render(text: str, values: Mapping[str, object], *, source: str = "template") -> str:
    """``text`` with each ``{{ name }}`` replaced by ``values[name]``.

    An unknown name is a :class:`ConfigError` naming ``source``, the line and the
    names there are, so a typo is caught before anything starts.
    """
    def fill(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in values:
            line = text.count("\n", 0, match.start()) + 1
            known = ", ".join(sorted(values)) or "none"
            raise ConfigError(f"{source}:{line}: {{{{ {name} }}}} is not a value pxelab "
                              f"provides here; use one of: {known}")
        return str(values[name])

    return PLACEHOLDER.sub(fill, text)


def is_template(text: str) -> bool:
    """Whether ``text`` has any placeholder (a literal boot file name has none)."""
    return PLACEHOLDER.search(text) is not None
