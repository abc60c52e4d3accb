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

import heapq
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from enum import StrEnum
from ipaddress import IPv6Address

__all__ = ["Binding", "Lease6Pool", "LeaseState"]

Key = tuple[bytes, int]  # (DUID bytes, IAID)


class LeaseState(StrEnum):
    OFFERED = "offered"  # advertised, held for offer_seconds
    BOUND = "bound"
    FREE = "free"  # released or expired; the address is still remembered for this IA


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
        if int(last) < int(first):
            raise ValueError(f"pool end {last} is before pool start {first}")
        self.first, self.last = first, last
        self.valid_seconds = valid_seconds
        self.offer_seconds = offer_seconds
        self._exclude = set(exclude)
        self._clock = clock
        self._bindings: dict[Key, Binding] = {}
        self._owner: dict[IPv6Address, Key] = {}
        self._by_mac: dict[str, IPv6Address] = {}
        # Picking an address scans nothing (see _pick): every range address below
        # _cursor is owned, excluded, or in _returned.
        self._last_number = int(last)
        self._cursor = int(first)
        self._returned: list[int] = []  # min-heap: addresses below the cursor unowned again
        # Min-heap of (expires, address, key), one entry per binding stored; an entry whose
        # key holds another binding now is stale and skipped.
        self._expiry: list[tuple[float, int, Key]] = []

    def __contains__(self, address: IPv6Address) -> bool:
        return (int(self.first) <= int(address) <= int(self.last)
                and address not in self._exclude)

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
        binding = Binding(duid, iaid, address, LeaseState.FREE, self._clock(), current.mac)
        self._bindings[(duid, iaid)] = binding
        self._remember_expiry(binding)
        return True

    def decline(self, duid: bytes, iaid: int, address: IPv6Address) -> bool:
        """The client found ``address`` in use (RFC 8415 18.3.8): never hand it out again.

        Only an address this IA holds is declined; False (NoBinding) otherwise,
        so a confused client cannot shrink the pool with addresses it never had.
        """
        held = self.lookup(duid, iaid)
        if held is None or held.address != address:
            return False
        self._exclude.add(address)
        del self._bindings[(duid, iaid)]
        self._owner.pop(address, None)
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
        previous = self._owner.get(address)
        if previous is not None and previous != key:
            del self._bindings[previous]  # reclaimed: free, or the same machine's old stack
        old = self._bindings.get(key)
        if old is not None and old.address != address:
            self._owner.pop(old.address, None)
            if int(self.first) <= int(old.address) < self._cursor:
                heapq.heappush(self._returned, int(old.address))  # as good as never used
        binding = Binding(key[0], key[1], address, state, self._clock() + seconds, mac)
        self._bindings[key] = binding
        self._owner[address] = key
        if mac:
            self._by_mac[mac] = address
        self._remember_expiry(binding)
        return binding

    def _remember_expiry(self, binding: Binding) -> None:
        heapq.heappush(self._expiry, (binding.expires, int(binding.address),
                                      (binding.duid, binding.iaid)))
        if len(self._expiry) > 2 * len(self._bindings) + 64:  # mostly stale: rebuild
            self._expiry = [(held.expires, int(held.address), key)
                            for key, held in self._bindings.items()]
            heapq.heapify(self._expiry)

    def _pick(self) -> IPv6Address | None:
        """Lowest never-used address, else the one free the longest (lowest address on a tie).

        O(1) amortised, so a /64 pool costs no more than a small one: a cursor
        walks the range once, addresses below it that lose their owner wait in
        a heap, and bindings wait in a heap by expiry.
        """
        address = self._lowest_unused()
        return address if address is not None else self._longest_free()

    def _lowest_unused(self) -> IPv6Address | None:
        returned, owner, exclude = self._returned, self._owner, self._exclude
        while returned:
            address = IPv6Address(returned[0])
            if address not in owner and address not in exclude:
                return address  # it leaves the heap once it is owned (or excluded)
            heapq.heappop(returned)
        while self._cursor <= self._last_number:
            address = IPv6Address(self._cursor)
            if address not in owner and address not in exclude:
                return address  # the cursor moves on once it is owned
            self._cursor += 1
        return None

    def _longest_free(self) -> IPv6Address | None:
        """A free binding's address; bindings end in expiry order, a released one has ended."""
        expiry, now = self._expiry, self._clock()
        while expiry:
            expires, number, key = expiry[0]
            binding = self._bindings.get(key)
            if (binding is not None and binding.expires == expires
                    and int(binding.address) == number):
                if expires > now:
                    return None  # the first binding to end has not ended: none is free
                if binding.address in self and self._owner.get(binding.address) == key:
                    return binding.address
            heapq.heappop(expiry)  # stale, or an address the pool no longer hands out
        return None
