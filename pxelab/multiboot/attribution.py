"""Whose is an event or a packet, in a lab of several guests.

The boot server names a client by its MAC where the protocol shows it (DHCP, most
HTTP) and by its address where it does not (TFTP). An :class:`Attribution` learns
each guest's addresses from the server's own answers as they happen (the DHCPv4
``yiaddr`` it offered, the DHCPv6 addresses it gave, the address an HTTP request with
a known MAC came from) plus the EUI-64 addresses SLAAC derives from the MAC, and
then tells, for any event or packet, which guest it is about: its MAC, or None for
what is the whole lab's (the server starting, a router advertisement to all nodes).

It listens to the :class:`~pxelab.core.events.EventLog` while the guests boot (the
live guards use it, :func:`pxelab.analysis.live.live_guards`'s ``mine``) and is
asked again afterwards, for each guest's evidence.
"""

from __future__ import annotations

import ipaddress
import threading
from collections.abc import Callable, Iterable, Sequence

from pxelab.analysis.evidence.model import PacketRecord
from pxelab.core.events import Event
from pxelab.multiboot.addresses import host_of
from pxelab.server.bindings import bound

# The lab's IPv6 prefix (pxelab.machine.network): a SLAAC address lives in it.
_PREFIX = ipaddress.IPv6Network("2001:db8::/64")
_LINK_LOCAL = ipaddress.IPv6Network("fe80::/64")


def eui64_addresses(mac: str) -> tuple[str, str]:
    """The link-local and lab-prefix addresses SLAAC makes from ``mac`` (RFC 4291 2.5.1)."""
    octets = bytearray(int(part, 16) for part in mac.split(":"))
    octets[0] ^= 0x02
    interface = int.from_bytes(bytes(octets[:3]) + b"\xff\xfe" + bytes(octets[3:]), "big")
    return (str(_LINK_LOCAL.network_address + interface),
            str(_PREFIX.network_address + interface))


class Attribution:
    """Which of ``macs`` each event and packet belongs to; thread-safe."""

    def __init__(self, macs: Sequence[str]) -> None:
        self.macs = tuple(macs)
        self._lock = threading.Lock()
        self._owner: dict[str, str] = {}
        for mac in self.macs:
            for address in eui64_addresses(mac):
                self._owner[address] = mac

    def observe(self, event: Event) -> None:
        """Learn the addresses the server bound or saw (an EventLog listener). A lease
        bound later wins (the address went to another guest); an offer binds nothing."""
        if event.mac not in self.macs:
            return
        with self._lock:
            for address in bound(event):
                self._owner[address] = event.mac
            # HTTP names the MAC of the address it saw, if nothing bound that address.
            seen = host_of(event.client) if event.source == "http" else None
            if seen is not None:
                self._owner.setdefault(seen, event.mac)

    def learn(self, events: Iterable[Event]) -> None:
        for event in events:
            self.observe(event)

    def owner(self, event: Event) -> str | None:
        """The guest ``event`` is about, or None if it is the lab's or nobody's known."""
        if event.mac in self.macs:
            return event.mac
        return self._owner_of(event.client)

    def packet_owner(self, record: PacketRecord) -> str | None:
        """The guest a packet record is about (its frame's MAC, else its addresses)."""
        if record.client in self.macs:
            return record.client
        return self._owner_of(record.src) or self._owner_of(record.dst)

    def mine(self, mac: str) -> Callable[[Event], bool]:
        """A predicate: the event is ``mac``'s, or the whole lab's."""
        return lambda event: self.owner(event) in (None, mac)

    def events_of(self, mac: str, events: Iterable[Event]) -> tuple[Event, ...]:
        keep = self.mine(mac)
        return tuple(event for event in events if keep(event))

    def packets_of(self, mac: str, packets: Iterable[PacketRecord]) -> tuple[PacketRecord, ...]:
        return tuple(p for p in packets if self.packet_owner(p) in (None, mac))

    def addresses(self, mac: str) -> tuple[str, ...]:
        """The addresses known to be ``mac``'s, EUI-64 ones included."""
        with self._lock:
            return tuple(sorted(a for a, owner in self._owner.items() if owner == mac))

    def _owner_of(self, text: str) -> str | None:
        address = host_of(text)
        if address is None:
            return None
        with self._lock:
            return self._owner.get(address)
