"""Who is who on the lab link: addresses to MACs and architectures, learnt from the DHCP events.

The HTTP server sees only a peer address; per-client templates need the MAC
and architecture behind it. :class:`ClientDirectory` listens to the
:class:`~pxelab.core.events.EventLog` and records every address a DHCP server
handed out and forgets those given back (which those are, :mod:`pxelab.server.bindings`
says), so any protocol can look a peer up without the DHCP servers knowing about it.
Event details are read tolerantly: a missing key is an unknown value.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, replace
from typing import Any

from pxelab.core.events import Event, EventLog
from pxelab.core.mac import parse_mac
from pxelab.server.bindings import bound, canonical, freed

__all__ = ["ClientDirectory", "ClientRecord"]

log = logging.getLogger(__name__)


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


def _mac(value: Any) -> str | None:
    return parse_mac(str(value or ""))


def _int(value: Any) -> int | None:
    try:
        return None if value is None else int(value)
    except (TypeError, ValueError):
        return None


class ClientDirectory:
    """Thread-safe address -> :class:`ClientRecord` map fed by the EventLog."""

    def __init__(self, events: EventLog | None = None) -> None:
        self._by_address: dict[str, ClientRecord] = {}
        self._by_mac: dict[str, ClientRecord] = {}
        self._lock = threading.Lock()
        if events is not None:
            events.subscribe(self.observe)

    def observe(self, event: Event) -> None:
        """EventLog listener: learn the addresses an event binds, forget those it frees."""
        try:
            if addresses := bound(event):
                self._record(addresses, event)
            elif addresses := freed(event):
                self._forget(addresses, _mac(event.mac))
        except Exception:  # a listener must never break the server that emitted the event
            log.exception("could not learn from %s", event.summary())

    def _record(self, addresses: tuple[str, ...], event: Event) -> None:
        # Every DHCP ACK passes here: what the addresses share is read once.
        details, mac = event.details, _mac(event.mac)
        arch, vendor_class = _int(details.get("arch")), details.get("vendor_class") or None
        users = details.get("user_classes")
        user_classes = tuple(map(str, users)) if users else ()
        hostname = details.get("hostname") or None
        debug = log.isEnabledFor(logging.DEBUG)
        for address in addresses:
            record = ClientRecord(address, mac, event.source, arch, vendor_class,
                                  user_classes, hostname)
            with self._lock:
                self._by_address[address] = record
                if mac is not None:
                    self._by_mac[mac] = record
            if debug:
                log.debug("client %s is %s (%s, arch %s)", address, mac, event.source, arch)

    def _forget(self, addresses: tuple[str, ...], mac: str | None) -> None:
        """Forget ``addresses``, each only if ``mac`` (when known) is its holder's."""
        with self._lock:
            for address in addresses:
                record = self._by_address.get(address)
                if record is not None and (mac is None or record.mac == mac):
                    del self._by_address[address]

    def add(self, record: ClientRecord) -> None:
        """Record a client by hand (tests, static hosts)."""
        record = replace(record, address=canonical(record.address) or record.address)
        with self._lock:
            self._by_address[record.address] = record
            if record.mac is not None:
                self._by_mac[record.mac] = record

    def by_address(self, address: str) -> ClientRecord | None:
        with self._lock:
            return self._by_address.get(canonical(address) or "")

    def by_mac(self, mac: str) -> ClientRecord | None:
        """The latest record for ``mac`` (any family)."""
        key = _mac(mac)
        with self._lock:
            return self._by_mac.get(key or "")

    def __len__(self) -> int:
        with self._lock:
            return len(self._by_address)
