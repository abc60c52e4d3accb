"""The DHCPv4 address pool: one stable address per MAC (pure, clock injected).

A MAC keeps its address across release and expiry for as long as no other
client needs it, so a guest that reboots gets the address it had and console
logs stay comparable between runs.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from ipaddress import IPv4Address

__all__ = ["Lease", "LeasePool", "LeaseState"]


class LeaseState(StrEnum):
    OFFERED = "offered"
    BOUND = "bound"
    FREE = "free"  # released or expired; the address is still remembered for this MAC


@dataclass(frozen=True)
class Lease:
    mac: str
    address: IPv4Address
    state: LeaseState
    expires: float  # on the pool's clock


class LeasePool:
    """Addresses ``first``..``last`` minus ``exclude``, handed out per MAC."""

    def __init__(self, first: IPv4Address, last: IPv4Address, lease_seconds: int, *,
                 offer_seconds: float = 60.0, exclude: frozenset[IPv4Address] = frozenset(),
                 clock: Callable[[], float] = time.monotonic) -> None:
        if int(last) < int(first):
            raise ValueError(f"pool end {last} is before pool start {first}")
        self.first, self.last = first, last
        self.lease_seconds = lease_seconds
        self.offer_seconds = offer_seconds
        self._exclude = set(exclude)
        self._clock = clock
        self._by_mac: dict[str, Lease] = {}
        self._by_address: dict[IPv4Address, str] = {}

    def __contains__(self, address: IPv4Address) -> bool:
        return (int(self.first) <= int(address) <= int(self.last)
                and address not in self._exclude)

    def lookup(self, mac: str) -> Lease | None:
        lease = self._by_mac.get(mac)
        return self._refresh(lease) if lease else None

    def leases(self) -> list[Lease]:
        return [self._refresh(lease) for lease in self._by_mac.values()]

    def offer(self, mac: str, requested: IPv4Address | None = None) -> IPv4Address | None:
        """Reserve an address for ``mac``: its old one, else ``requested``, else any.

        None if the pool is full.
        """
        current = self.lookup(mac)
        if current and current.state is not LeaseState.FREE:
            return current.address
        if current:
            address = current.address
        elif requested is not None and self._available(requested):
            address = requested
        else:
            found = self._pick()
            if found is None:
                return None
            address = found
        self._store(mac, address, LeaseState.OFFERED, self.offer_seconds)
        return address

    def bind(self, mac: str, address: IPv4Address) -> Lease | None:
        """Commit ``address`` to ``mac`` (DHCPREQUEST); None means NAK."""
        current = self.lookup(mac)
        if current and current.address != address:
            return None
        if current is None and not self._available(address):
            return None
        return self._store(mac, address, LeaseState.BOUND, self.lease_seconds)

    def release(self, mac: str, address: IPv4Address | None = None) -> bool:
        current = self.lookup(mac)
        if current is None or (address is not None and current.address != address):
            return False
        self._by_mac[mac] = Lease(mac, current.address, LeaseState.FREE, self._clock())
        return True

    def decline(self, mac: str, address: IPv4Address) -> None:
        """The client found ``address`` in use (RFC 2131 4.3.3): never hand it out again."""
        self._exclude.add(address)
        owner = self._by_address.pop(address, None)
        if owner is not None:
            self._by_mac.pop(owner, None)

    # -- internals -------------------------------------------------------------------------

    def _refresh(self, lease: Lease) -> Lease:
        if lease.state is not LeaseState.FREE and lease.expires <= self._clock():
            lease = Lease(lease.mac, lease.address, LeaseState.FREE, lease.expires)
            self._by_mac[lease.mac] = lease
        return lease

    def _store(self, mac: str, address: IPv4Address, state: LeaseState,
               seconds: float) -> Lease:
        previous = self._by_address.get(address)
        if previous is not None and previous != mac:
            del self._by_mac[previous]  # reclaiming a free address remembered for another MAC
        old = self._by_mac.get(mac)
        if old is not None and old.address != address:
            self._by_address.pop(old.address, None)
        lease = Lease(mac, address, state, self._clock() + seconds)
        self._by_mac[mac] = lease
        self._by_address[address] = mac
        return lease

    def _available(self, address: IPv4Address) -> bool:
        if address not in self:
            return False
        owner = self._by_address.get(address)
        return owner is None or self._refresh(self._by_mac[owner]).state is LeaseState.FREE

    def _pick(self) -> IPv4Address | None:
        """Lowest never-used address, else the one free the longest."""
        for number in range(int(self.first), int(self.last) + 1):
            address = IPv4Address(number)
            if address not in self._exclude and address not in self._by_address:
                return address
        free = [lease for lease in self.leases() if lease.state is LeaseState.FREE
                and lease.address in self]
        return min(free, key=lambda lease: lease.expires).address if free else None
