"""The DHCPv6 IA_NA address pool (pure, clock injected).

A binding belongs to one IA of one client: (DUID, IAID), as RFC 8415 section
6 and 13.1 say. Firmware makes both up anew on each boot (OVMF: a random IAID
and a DUID-LLT stamped with the time; iPXE: DUID-UUID), so the pool also
remembers the last address per MAC and gives it back: a guest that reboots,
or chain-loads another firmware on the same NIC, gets the address it had,
and console logs stay comparable between runs. A binding held by another
DUID with the same MAC is taken over for that reason (the old stack is gone).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from ipaddress import IPv6Address

from pxelab.server.allocator import AddressAllocator, LeaseState

__all__ = ["Binding", "Lease6Pool", "LeaseState"]

Key = tuple[bytes, int]  # (DUID bytes, IAID)


@dataclass(frozen=True)
class Binding:
    duid: bytes
    iaid: int
    address: IPv6Address
    state: LeaseState
    expires: float  # on the pool's clock
    mac: str | None = None


class Lease6Pool:
    """Addresses ``first``..``last`` minus ``exclude``, one per (DUID, IAID)."""

    def __init__(self, first: IPv6Address, last: IPv6Address, valid_seconds: int, *,
                 offer_seconds: float = 60.0, exclude: frozenset[IPv6Address] = frozenset(),
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._bindings: dict[Key, Binding] = {}
        self._addresses: AddressAllocator[IPv6Address, Key, Binding] = AddressAllocator(
            first, last, self._bindings, exclude=exclude, clock=clock)
        self.first, self.last = first, last
        self.valid_seconds = valid_seconds
        self.offer_seconds = offer_seconds
        self._clock = clock
        self._exclude = self._addresses.exclude
        self._owner = self._addresses.owner
        self._by_mac: dict[str, IPv6Address] = {}

    def __contains__(self, address: IPv6Address) -> bool:
        return address in self._addresses

    @property
    def size(self) -> int:
        return int(self.last) - int(self.first) + 1

    def lookup(self, duid: bytes, iaid: int) -> Binding | None:
        binding = self._bindings.get((duid, iaid))
        return self._refresh(binding) if binding else None

    def bindings(self) -> list[Binding]:
        return [self._refresh(b) for b in list(self._bindings.values())]

    def candidate(self, duid: bytes, iaid: int, mac: str | None = None,
                  hints: Iterable[IPv6Address] = ()) -> IPv6Address | None:
        """The address :meth:`offer` or :meth:`bind` would give, reserving nothing.

        Its own binding's address, else the MAC's last address, else the first
        usable hint, else the lowest never-used address, else the one free the
        longest; None if the pool is full.
        """
        key = (duid, iaid)
        current = self.lookup(duid, iaid)
        if current is not None and self._usable(current.address, key, mac):
            return current.address
        remembered = self._by_mac.get(mac) if mac else None
        if remembered is not None and self._usable(remembered, key, mac):
            return remembered
        for hint in hints:
            if self._usable(hint, key, mac):
                return hint
        return self._pick()

    def offer(self, duid: bytes, iaid: int, mac: str | None = None,
              hints: Iterable[IPv6Address] = ()) -> Binding | None:
        """Hold the candidate address for this IA (Advertise); None if the pool is full."""
        current = self.lookup(duid, iaid)
        if current is not None and current.state is LeaseState.BOUND:
            return current  # an Advertise never shortens a binding
        address = self.candidate(duid, iaid, mac, hints)
        if address is None:
            return None
        return self._store((duid, iaid), address, LeaseState.OFFERED, self.offer_seconds, mac)

    def bind(self, duid: bytes, iaid: int, mac: str | None = None,
             hints: Iterable[IPv6Address] = ()) -> Binding | None:
        """Commit the candidate address (Request, Rapid Commit); None if the pool is full."""
        address = self.candidate(duid, iaid, mac, hints)
        if address is None:
            return None
        return self._store((duid, iaid), address, LeaseState.BOUND, self.valid_seconds, mac)

    def renew(self, duid: bytes, iaid: int, address: IPv6Address) -> Binding | None:
        """Extend this IA's binding of ``address`` (Renew, Rebind); None means NoBinding."""
        key = (duid, iaid)
        current = self.lookup(duid, iaid)
        if current is None or current.address != address or self._owner.get(address) != key:
            return None
        return self._store(key, address, LeaseState.BOUND, self.valid_seconds, current.mac)

    def release(self, duid: bytes, iaid: int, address: IPv6Address) -> bool:
        """Free ``address`` (Release, RFC 8415 18.3.7); False if this IA does not hold it."""
        current = self.lookup(duid, iaid)
        if current is None or current.address != address:
            return False
        self._addresses.remember((duid, iaid), Binding(duid, iaid, address, LeaseState.FREE,
                                                       self._clock(), current.mac))
        return True

    def decline(self, duid: bytes, iaid: int, address: IPv6Address) -> bool:
        """The client found ``address`` in use (RFC 8415 18.3.8): never hand it out again.

        Only an address this IA holds is declined; False (NoBinding) otherwise,
        so a confused client cannot shrink the pool with addresses it never had.
        """
        held = self.lookup(duid, iaid)
        if held is None or held.address != address:
            return False
        self._addresses.decline(address)
        if held.mac and self._by_mac.get(held.mac) == address:
            del self._by_mac[held.mac]
        return True

    # -- internals ---------------------------------------------------------------------------

    def _refresh(self, binding: Binding) -> Binding:
        if binding.state is not LeaseState.FREE and binding.expires <= self._clock():
            binding = Binding(binding.duid, binding.iaid, binding.address, LeaseState.FREE,
                              binding.expires, binding.mac)
            self._bindings[(binding.duid, binding.iaid)] = binding
        return binding

    def _usable(self, address: IPv6Address, key: Key, mac: str | None) -> bool:
        """In the pool and unowned, owned by ``key``, free, or the same MAC's old binding."""
        if address not in self:
            return False
        owner = self._owner.get(address)
        if owner is None or owner == key:
            return True
        held = self._refresh(self._bindings[owner])
        return held.state is LeaseState.FREE or (
            mac is not None and held.mac == mac and held.duid != key[0])

    def _store(self, key: Key, address: IPv6Address, state: LeaseState, seconds: float,
               mac: str | None) -> Binding:
        binding = Binding(key[0], key[1], address, state, self._clock() + seconds, mac)
        self._addresses.store(key, binding)
        if mac:
            self._by_mac[mac] = address
        return binding

    def _pick(self) -> IPv6Address | None:
        """Lowest never-used address, else the one free the longest (lowest address on a tie)."""
        return self._addresses.pick()
