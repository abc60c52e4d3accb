"""Who is who on the lab link: addresses to MACs and architectures, learnt from the DHCP events.

The HTTP server sees only a peer address; per-client templates need the MAC
and architecture behind it. :class:`ClientDirectory` listens to the
:class:`~pxelab.core.events.EventLog` and records every address a DHCP server
handed out (``dhcp4.ack``, ``dhcp4.bootreply``, ``dhcp6.reply``) and forgets released ones, so any
protocol can look a peer up without the DHCP servers knowing about it.
Event details are read tolerantly: a missing key is an unknown value.
"""

from __future__ import annotations

import logging
import socket
import threading
from collections.abc import Iterable
from dataclasses import dataclass, replace
from ipaddress import ip_address
from typing import Any

from pxelab.core.events import Event, EventLog
from pxelab.core.mac import parse_mac

__all__ = ["ClientDirectory", "ClientRecord"]

log = logging.getLogger(__name__)

_UNSET_ADDRESSES = {"", "0.0.0.0", "::", "None"}


@dataclass(frozen=True)
class ClientRecord:
    """What the DHCP exchange told us about one client address."""

    address: str
    mac: str | None = None
    protocol: str = "dhcp4"
    arch: int | None = None
    vendor_class: str | None = None
    user_classes: tuple[str, ...] = ()
    hostname: str | None = None


def _canonical(address: str) -> str | None:
    """``address`` in canonical text form (scope removed), or None if it is none."""
    text = address.split("%", maxsplit=1)[0].strip()
    if text in _UNSET_ADDRESSES:
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


def _mac(value: Any) -> str | None:
    return parse_mac(str(value or ""))


def _int(value: Any) -> int | None:
    try:
        return None if value is None else int(value)
    except (TypeError, ValueError):
        return None


def _addresses(value: Any) -> Iterable[str]:
    """One address, or a list of them (DHCPv6 may lease several)."""
    if isinstance(value, list | tuple | set):
        return [str(v) for v in value]
    return [str(value)] if value is not None else []


class ClientDirectory:
    """Thread-safe address -> :class:`ClientRecord` map fed by the EventLog."""

    def __init__(self, events: EventLog | None = None) -> None:
        self._by_address: dict[str, ClientRecord] = {}
        self._by_mac: dict[str, ClientRecord] = {}
        self._lock = threading.Lock()
        if events is not None:
            events.subscribe(self.observe)

    def observe(self, event: Event) -> None:
        """EventLog listener: learn from DHCP acks/replies, forget on release."""
        try:
            if event.source == "dhcp4" and event.kind in ("ack", "bootreply"):
                self._learn_dhcp4(event)
            elif event.source == "dhcp6" and event.kind == "reply":
                self._learn_dhcp6(event)
            elif event.source in ("dhcp4", "dhcp6") and event.kind == "release":
                self._forget(event)
        except Exception:  # a listener must never break the server that emitted the event
            log.exception("could not learn from %s", event.summary())

    def _learn_dhcp4(self, event: Event) -> None:
        details = event.details
        self._record(details.get("yiaddr"), _mac(event.mac), "dhcp4", details)

    def _learn_dhcp6(self, event: Event) -> None:
        details = event.details
        if details.get("in_reply_to") in ("release", "decline"):
            return  # the reply confirms an address given back, not one handed out
        mac = _mac(event.mac)
        # "addresses" lists every leased address; "address" alone is the first (or asked) one
        leased = details["addresses"] if "addresses" in details else details.get("address")
        for address in _addresses(leased):
            self._record(address, mac, "dhcp6", details)

    def _record(self, address: Any, mac: str | None, protocol: str,
                details: dict[str, Any]) -> None:
        canonical = _canonical(str(address)) if address is not None else None
        if canonical is None:
            return  # e.g. a proxyDHCP ack (yiaddr 0.0.0.0): no address of its own
        record = ClientRecord(
            canonical, mac, protocol, _int(details.get("arch")),
            details.get("vendor_class") or None,
            tuple(str(u) for u in details.get("user_classes") or ()),
            details.get("hostname") or None)
        with self._lock:
            self._by_address[canonical] = record
            if mac is not None:
                self._by_mac[mac] = record
        log.debug("client %s is %s (%s, arch %s)", canonical, mac, protocol, record.arch)

    def _forget(self, event: Event) -> None:
        mac = _mac(event.mac)
        for address in _addresses(event.details.get("address")):
            canonical = _canonical(address)
            with self._lock:
                record = self._by_address.get(canonical or "")
                if record is not None and (mac is None or record.mac == mac):
                    del self._by_address[record.address]

    def add(self, record: ClientRecord) -> None:
        """Record a client by hand (tests, static hosts)."""
        canonical = _canonical(record.address) or record.address
        record = replace(record, address=canonical)
        with self._lock:
            self._by_address[canonical] = record
            if record.mac is not None:
                self._by_mac[record.mac] = record

    def by_address(self, address: str) -> ClientRecord | None:
        canonical = _canonical(address)
        with self._lock:
            return self._by_address.get(canonical or "")

    def by_mac(self, mac: str) -> ClientRecord | None:
        """The latest record for ``mac`` (any family)."""
        key = _mac(mac)
        with self._lock:
            return self._by_mac.get(key or "")

    def __len__(self) -> int:
        with self._lock:
            return len(self._by_address)
