"""Per-client templates: ``name.tmpl`` files filled in for each request (pure).

The syntax is pxelab's one (:mod:`pxelab.core.template`, docs/templates.md):
``{{ mac }}`` is filled in by the server while an iPXE script keeps its own
``${net0/mac}``. What this adds is per client: a name whose value this client
has not got (no lease seen, no ``?mac=``) is an error saying why, answered 500.
"""

from __future__ import annotations

from collections.abc import Mapping

from pxelab.core import template

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


class TemplateError(ValueError):
    """A placeholder is unknown or has no value for this client (answer 500)."""

    def __init__(self, name: str, why: str) -> None:
        super().__init__(f"placeholder {{{{ {name} }}}}: {why}")
        self.name = name


def placeholders(text: str) -> list[str]:
    """The placeholder names ``text`` uses, in order of first use."""
    return list(dict.fromkeys(m[1] for m in template.PLACEHOLDER.finditer(text)))


def render(text: str, values: Mapping[str, str | None],
           missing: Mapping[str, str] | None = None, *, source: str = "template") -> str:
    """Fill every placeholder of ``text`` from ``values``.

    An unknown name, or a known one whose value is None, raises TemplateError;
    ``missing`` says why a value is None (e.g. "client unknown"). ``source`` names
    the file.
    """
    for name in placeholders(text):
        if name not in PLACEHOLDERS:
            raise TemplateError(name, f"unknown; use one of {', '.join(PLACEHOLDERS)}")
        if values.get(name) is None:
            why = (missing or {}).get(name, "no value for this client")
            raise TemplateError(name, why)
    known = {name: value for name, value in values.items() if value is not None}
    return template.render(text, known, source=source)
