"""Which addresses a boot-server event hands to its client, and which it takes back.

One reading of the DHCP events for everyone who tracks who holds an address: the
:class:`~pxelab.server.clients.ClientDirectory` (HTTP templates) and the lease check
of a lab of several guests (:mod:`pxelab.multiboot.checks`). Event details are read
tolerantly, also from an ``events.jsonl``: a missing or unreadable value is no address.
"""

from __future__ import annotations

import socket
from collections.abc import Iterable
from ipaddress import ip_address
from typing import Any

from pxelab.core.events import Event

__all__ = ["bound", "canonical", "freed"]

# A client gives its addresses back with these (RFC 2131 4.4.4, 4.4.6; RFC 8415
# 18.2.7, 18.2.8). With a Decline it says another node uses the address.
_FREEING = frozenset({"release", "decline"})
# A DHCPv4 ACK binds yiaddr (RFC 2131 3.1); so does a BOOTP reply: RFC 951 has no
# other step, the client keeps the reply's yiaddr, and our DHCPv4 server binds it for
# good before it answers (Dhcp4Protocol.on_bootp, a FOREVER lease).
_DHCP4_BINDING = frozenset({"ack", "bootreply"})
_UNSET = frozenset({"", "0.0.0.0", "::", "None"})


def canonical(text: str) -> str | None:
    """The address ``text`` in canonical form (a ``%scope`` removed); None if it is
    none, or unset (a proxyDHCP ACK's yiaddr 0.0.0.0)."""
    text = text.split("%", maxsplit=1)[0].strip()
    if text in _UNSET:
        return None
    try:
        # Every DHCPv4 ACK passes here: inet_pton takes what IPv4Address takes (four
        # decimal parts, no leading zeros) at a tenth of its cost.
        return socket.inet_ntop(socket.AF_INET, socket.inet_pton(socket.AF_INET, text))
    except OSError:
        pass
    try:
        return str(ip_address(text))
    except ValueError:
        return None


def bound(event: Event) -> tuple[str, ...]:
    """The addresses ``event`` binds to its client: a DHCPv4 ACK's or BOOTP reply's
    ``yiaddr``, a DHCPv6 Reply's ``addresses`` (else its ``address``), not those of
    the Reply to a Release or Decline (it confirms addresses given back)."""
    details = event.details
    if event.source == "dhcp4" and event.kind in _DHCP4_BINDING:
        found: Iterable[str] = _texts(details.get("yiaddr"))
    elif (event.source == "dhcp6" and event.kind == "reply"
          and details.get("in_reply_to") not in _FREEING):
        # "addresses" lists every leased address (an empty list: none, e.g. the Reply
        # to an Information-request); "address" alone is the first or asked one.
        found = _texts(details["addresses"] if "addresses" in details
                       else details.get("address"))
    else:
        return ()
    return _canonical_all(found)


def freed(event: Event) -> tuple[str, ...]:
    """The addresses ``event`` takes back from its client: a DHCPv4 RELEASE's or
    DECLINE's, a DHCPv6 Release's or Decline's (after a Decline the address is no
    longer the client's: another node uses it)."""
    details = event.details
    if event.source == "dhcp4" and event.kind in _FREEING:
        found = _texts(details.get("address"))
    elif event.source == "dhcp6" and event.kind in _FREEING:
        found = [*_texts(details.get("address")), *_texts(details.get("addresses"))]
    else:
        return ()
    return _canonical_all(found)


def _texts(value: Any) -> list[str]:
    """One address, or a list of them (DHCPv6 may lease several), as text."""
    if type(value) is str:  # the usual case, tested first
        return [value]
    if isinstance(value, list | tuple | set):
        return [str(v) for v in value]
    return [str(value)] if value is not None else []


def _canonical_all(texts: Iterable[str]) -> tuple[str, ...]:
    """``texts`` in canonical form, without the unreadable ones and repeats."""
    if isinstance(texts, list) and len(texts) == 1:  # a DHCPv4 ACK's yiaddr: no set needed
        one = canonical(texts[0])
        return (one,) if one is not None else ()
    return tuple(dict.fromkeys(a for text in texts if (a := canonical(text)) is not None))
