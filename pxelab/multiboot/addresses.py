"""The addresses in the boot server's events: what a client's text names, what an
event binds to its client and what it frees."""

from __future__ import annotations

import ipaddress

from pxelab.core.events import Event

# A DHCPv6 client gives its addresses back with these (RFC 8415 18.2.7, 18.2.8).
_FREEING = frozenset({"release", "decline"})


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


def bound(event: Event) -> tuple[str, ...]:
    """The addresses ``event`` binds to its client: a DHCPv4 ACK's, a DHCPv6 Reply's
    (not the Reply to a Release or Decline)."""
    if event.source == "dhcp4" and event.kind == "ack":
        found = [event.details.get("yiaddr")]
    elif (event.source == "dhcp6" and event.kind == "reply"
          and event.details.get("in_reply_to") not in _FREEING):
        found = list(event.details.get("addresses") or ())
    else:
        return ()
    return tuple(a for text in found
                 if (a := host_of(str(text or ""))) is not None and a != "0.0.0.0")


def freed(event: Event) -> tuple[str, ...]:
    """The addresses ``event`` frees: a DHCPv4 RELEASE's, a DHCPv6 Release's or Decline's."""
    if event.source == "dhcp4" and event.kind == "release":
        found = [event.details.get("address")]
    elif event.source == "dhcp6" and event.kind in _FREEING:
        found = [event.details.get("address"), *(event.details.get("addresses") or ())]
    else:
        return ()
    return tuple(a for text in found if (a := host_of(str(text or ""))) is not None)
