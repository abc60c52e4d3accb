"""Which addresses a DHCP event binds to its client or frees (pxelab.server.bindings)."""

from __future__ import annotations

from typing import Any

import pytest

from pxelab.core.events import Event
from pxelab.server.bindings import bound, canonical, freed

pytestmark = pytest.mark.unit

MAC = "52:54:00:12:34:56"


def event(source: str, kind: str, **details: Any) -> Event:
    return Event(source, kind, client=MAC, mac=MAC, details=details)


@pytest.mark.parametrize(("text", "address"), [
    ("192.0.2.100", "192.0.2.100"), (" 2001:DB8:0::1:5 ", "2001:db8::1:5"),
    ("fe80::1%2", "fe80::1"), ("0.0.0.0", None), ("::", None), ("None", None), ("", None),
    ("192.0.2.100:1314", None), ("192.0.2.010", None), ("not-an-address", None)])
def test_canonical(text: str, address: str | None) -> None:
    assert canonical(text) == address


@pytest.mark.parametrize(("happened", "addresses"), [
    (event("dhcp4", "ack", yiaddr="192.0.2.100"), ("192.0.2.100",)),
    (event("dhcp4", "bootreply", yiaddr="192.0.2.101"), ("192.0.2.101",)),  # RFC 951
    (event("dhcp4", "ack", yiaddr="0.0.0.0"), ()),  # proxyDHCP: no address of its own
    (event("dhcp4", "ack"), ()),
    (event("dhcp4", "offer", yiaddr="192.0.2.100"), ()),  # offered is not bound
    (event("dhcp4", "inform", yiaddr="192.0.2.100"), ()),
    (event("dhcp6", "reply", address="2001:db8::1:0",
           addresses=["2001:db8::1:0", "2001:DB8::1:9", "2001:db8::1:0"]),
     ("2001:db8::1:0", "2001:db8::1:9")),
    (event("dhcp6", "reply", address="2001:db8::1:5"), ("2001:db8::1:5",)),  # no list
    (event("dhcp6", "reply", address="2001:db8::1:8", addresses=[],
           in_reply_to="information-request"), ()),  # stateless: nothing leased
    (event("dhcp6", "reply", addresses=["2001:db8::1:0"], in_reply_to="release"), ()),
    (event("dhcp6", "reply", addresses=["2001:db8::1:0"], in_reply_to="decline"), ()),
    (event("dhcp6", "reply", address="not-an-address"), ()),
    (event("dhcp6", "advertise", addresses=["2001:db8::1:0"]), ()),
    (event("dhcp6", "release", address="2001:db8::1:0"), ()),
])
def test_bound(happened: Event, addresses: tuple[str, ...]) -> None:
    assert bound(happened) == addresses


@pytest.mark.parametrize(("happened", "addresses"), [
    (event("dhcp4", "release", address="192.0.2.100"), ("192.0.2.100",)),
    (event("dhcp6", "release", address="2001:db8::1:0"), ("2001:db8::1:0",)),
    (event("dhcp6", "decline", address="2001:db8::1:0",
           addresses=["2001:db8::1:0", "2001:db8::1:9"]), ("2001:db8::1:0", "2001:db8::1:9")),
    (event("dhcp6", "release"), ()),
    (event("dhcp4", "decline", address="192.0.2.100"), ("192.0.2.100",)),
    (event("dhcp4", "ack", yiaddr="192.0.2.100"), ()),
    (event("dhcp6", "reply", addresses=["2001:db8::1:0"], in_reply_to="release"), ()),
])
def test_freed(happened: Event, addresses: tuple[str, ...]) -> None:
    assert freed(happened) == addresses
