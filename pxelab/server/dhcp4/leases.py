"""The DHCPv4 address pool: one stable address per MAC (pure, clock injected).

A MAC keeps its address across release and expiry for as long as no other
client needs it, so a guest that reboots gets the address it had and console
logs stay comparable between runs. Fixed addresses (``reserve``, ISC dhcpd's
``fixed-address``) belong to one MAC whether or not they lie in the dynamic
range; BOOTP clients get leases that never expire (RFC 1534 section 3).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from ipaddress import IPv4Address

from pxelab.server.allocator import AddressAllocator, LeaseState

__all__ = ["FOREVER", "Lease", "LeasePool", "LeaseState"]

FOREVER = math.inf  # lease seconds of a BOOTP binding


@dataclass(frozen=True)
class Lease:
    mac: str
    address: IPv4Address
    state: LeaseState
    expires: float  # on the pool's clock; math.inf for BOOTP bindings


class LeasePool:
    """Addresses ``first``..``last`` minus ``exclude``, handed out per MAC."""

    def __init__(self, first: IPv4Address, last: IPv4Address, lease_seconds: int, *,
                 offer_seconds: float = 60.0, exclude: frozenset[IPv4Address] = frozenset(),
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._by_mac: dict[str, Lease] = {}
        self._fixed: dict[str, IPv4Address] = {}  # MAC -> its reserved address
        self._fixed_owner: dict[IPv4Address, str] = {}
        self._addresses: AddressAllocator[IPv4Address, str, Lease] = AddressAllocator(
            first, last, self._by_mac, exclude=exclude, reserved=self._fixed_owner,
            clock=clock)
        self.first, self.last = first, last
        self.lease_seconds = lease_seconds
        self.offer_seconds = offer_seconds
        self._clock = clock
        self._exclude = self._addresses.exclude
        self._by_address = self._addresses.owner

    def __contains__(self, address: IPv4Address) -> bool:
        """In the dynamic range and not excluded (fixed addresses aside)."""
        return address in self._addresses

    def knows(self, address: IPv4Address) -> bool:
        """The pool may hand out ``address``: in the range, or some MAC's fixed address."""
        return address in self or address in self._fixed_owner

    def reserve(self, fixed: Mapping[str, IPv4Address]) -> None:
        """Give each MAC in ``fixed`` its own address; raise ValueError on a clash."""
        for mac, address in fixed.items():
            owner = self._fixed_owner.get(address)
            if owner is not None and owner != mac:
                raise ValueError(f"fixed address {address} is given to both {owner} and {mac}")
            if address in self._exclude:
                raise ValueError(f"fixed address {address} for {mac} is excluded "
                                 "(the server's own address?)")
            self._fixed[mac] = address
            self._fixed_owner[address] = mac

    def fixed(self, mac: str) -> IPv4Address | None:
        return self._fixed.get(mac)

    def lookup(self, mac: str) -> Lease | None:
        lease = self._by_mac.get(mac)
        return self._refresh(lease) if lease else None

    def leases(self) -> list[Lease]:
        return [self._refresh(lease) for lease in self._by_mac.values()]

    def offer(self, mac: str, requested: IPv4Address | None = None) -> IPv4Address | None:
        """Reserve an address for ``mac``: its old one, else ``requested``, else any.

        A MAC with a fixed address gets that one. None if the pool is full.
        """
        current = self.lookup(mac)
        fixed = self._fixed.get(mac)
        if fixed is not None:
            if fixed in self._exclude:
                return None  # declined: someone else answers ARP for it
            if current and current.address == fixed and current.state is not LeaseState.FREE:
                return fixed
            self._store(mac, fixed, LeaseState.OFFERED, self.offer_seconds)
            return fixed
        if current and current.state is not LeaseState.FREE:
            return current.address
        if current and self._available(current.address, mac):
            address = current.address
        elif requested is not None and self._available(requested, mac):
            address = requested
        else:
            found = self._pick()
            if found is None:
                return None
            address = found
        self._store(mac, address, LeaseState.OFFERED, self.offer_seconds)
        return address

    def bind(self, mac: str, address: IPv4Address,
             seconds: float | None = None) -> Lease | None:
        """Commit ``address`` to ``mac`` (DHCPREQUEST) for ``seconds``; None means NAK.

        ``seconds`` defaults to the pool's lease time; :data:`FOREVER` is a BOOTP binding.
        """
        fixed = self._fixed.get(mac)
        current = self.lookup(mac)
        if fixed is not None:
            allowed = address == fixed and fixed not in self._exclude
        elif current is not None:
            allowed = current.address == address
        else:
            allowed = self._available(address, mac)
        if not allowed:
            return None
        return self._store(mac, address, LeaseState.BOUND,
                           self.lease_seconds if seconds is None else seconds)

    def release(self, mac: str, address: IPv4Address | None = None) -> bool:
        current = self.lookup(mac)
        if current is None or (address is not None and current.address != address):
            return False
        self._addresses.remember(mac, Lease(mac, current.address, LeaseState.FREE,
                                            self._clock()))
        return True

    def decline(self, mac: str, address: IPv4Address) -> bool:
        """The client found ``address`` in use (RFC 2131 4.3.3): never hand it out again.

        False (nothing done) unless ``address`` is one the pool hands out.
        """
        if not self.knows(address):
            return False
        self._addresses.decline(address)
        return True

    # -- internals -------------------------------------------------------------------------

    def _refresh(self, lease: Lease) -> Lease:
        if lease.state is not LeaseState.FREE and lease.expires <= self._clock():
            lease = Lease(lease.mac, lease.address, LeaseState.FREE, lease.expires)
            self._by_mac[lease.mac] = lease
        return lease

    def _store(self, mac: str, address: IPv4Address, state: LeaseState,
               seconds: float) -> Lease:
        lease = Lease(mac, address, state, self._clock() + seconds)
        self._addresses.store(mac, lease)
        return lease

    def _available(self, address: IPv4Address, mac: str) -> bool:
        """``address`` may go to ``mac``: in the range, free, not someone's fixed address."""
        if address not in self or self._fixed_owner.get(address, mac) != mac:
            return False
        owner = self._by_address.get(address)
        return (owner is None or owner == mac
                or self._refresh(self._by_mac[owner]).state is LeaseState.FREE)

    def _pick(self) -> IPv4Address | None:
        """Lowest never-used address, else the one free the longest (lowest address on a tie)."""
        return self._addresses.pick()
