"""The address in a client's text in the boot server's events (which addresses an
event binds or frees, :mod:`pxelab.server.bindings` says)."""

from __future__ import annotations

import ipaddress


def host_of(text: str) -> str | None:
    """The IP address in ``text`` ("192.0.2.100", "192.0.2.100:1314",
    "[fe80::1%2]:546", "2001:db8::1:0"), normalised; None if it holds none."""
    text = text.strip()
    if text.startswith("["):
        text = text[1:].partition("]")[0]
    elif text.count(":") == 1:  # IPv4 with a port
        text = text.partition(":")[0]
    text = text.partition("%")[0]
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        return None
