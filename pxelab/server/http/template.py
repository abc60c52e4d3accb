"""Per-client templates: ``{{ name }}`` placeholders filled in for each request (pure).

The double braces do not collide with iPXE's own ``${var}`` expansion, so an
iPXE script keeps its ``${net0/mac}`` untouched while ``{{ mac }}`` is filled
in by the server. Text that is not a well-formed placeholder (``{{ x``, a lone
``{``) stays as it is.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

__all__ = ["PLACEHOLDERS", "TemplateError", "placeholders", "render"]

PLACEHOLDERS = {
    "mac": "the client's MAC, aa:bb:cc:dd:ee:ff",
    "mac_hyphen": "the MAC as aa-bb-cc-dd-ee-ff (PXELINUX style)",
    "mac_hex": "the MAC as aabbccddeeff",
    "ip": "the address the request came from",
    "arch": "the client architecture number (RFC 4578; 0 if the client sent none)",
    "server": "this server as a URL authority: 192.0.2.1, [2001:db8::1], with :port if not 80",
    "server_ip": "this server's address, no brackets",
    "hostname": "the client's host name (DHCP, ?hostname=, or 'pxe-' and the MAC's hex)",
    "protocol": "dhcp4 or dhcp6: how the client got its address",
}

_PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")


class TemplateError(ValueError):
    """A placeholder is unknown or has no value for this client (answer 500)."""

    def __init__(self, name: str, why: str) -> None:
        super().__init__(f"placeholder {{{{ {name} }}}}: {why}")
        self.name = name


def placeholders(text: str) -> list[str]:
    """The placeholder names ``text`` uses, in order of first use."""
    return list(dict.fromkeys(m[1] for m in _PLACEHOLDER.finditer(text)))


def render(text: str, values: Mapping[str, str | None],
           missing: Mapping[str, str] | None = None) -> str:
    """Fill every placeholder of ``text`` from ``values``.

    An unknown name, or a known one whose value is None, raises TemplateError;
    ``missing`` says why a value is None (e.g. "client unknown").
    """
    for name in placeholders(text):
        if name not in PLACEHOLDERS:
            raise TemplateError(name, f"unknown; use one of {', '.join(PLACEHOLDERS)}")
        if values.get(name) is None:
            why = (missing or {}).get(name, "no value for this client")
            raise TemplateError(name, why)
    return _PLACEHOLDER.sub(lambda m: str(values[m[1]]), text)
