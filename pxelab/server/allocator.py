"""Address picking shared by the DHCPv4 and DHCPv6 lease pools (pure, clock injected).

An :class:`AddressAllocator` owns what both pools need to choose an address
without scanning the range: which key (a MAC, a (DUID, IAID)) owns each
address, the excluded addresses, a cursor that walks the range once, a heap of
addresses below the cursor that became unused again, and a heap of leases by
expiry. The pools keep their own lease records (the mapping ``held``, shared
with the allocator) and decide which address a client may have; the allocator
keeps the bookkeeping of every change consistent and picks a new address in
O(1) amortised time, so a /64 pool costs no more than a /24.
"""

from __future__ import annotations

import heapq
import time
from collections.abc import Callable, Container, Hashable, Iterable, MutableMapping
from enum import StrEnum
from ipaddress import IPv4Address, IPv6Address
from typing import Any, Generic, Protocol, TypeVar

__all__ = ["AddressAllocator", "Held", "LeaseState"]

A = TypeVar("A", IPv4Address, IPv6Address)
A_co = TypeVar("A_co", IPv4Address, IPv6Address, covariant=True)
K = TypeVar("K", bound=Hashable)
L = TypeVar("L", bound="Held[Any]")


class LeaseState(StrEnum):
    """Where a lease of either pool stands."""

    OFFERED = "offered"  # offered (DHCPv4) or advertised (DHCPv6), held for offer_seconds
    BOUND = "bound"
    FREE = "free"  # released or expired; the address is still remembered for its owner


class Held(Protocol[A_co]):
    """What the allocator reads of a pool's lease record."""

    @property
    def address(self) -> A_co: ...

    @property
    def expires(self) -> float: ...


class AddressAllocator(Generic[A, K, L]):
    """Addresses ``first``..``last`` minus ``exclude`` and ``reserved``, owned by keys.

    ``held`` is the pool's own mapping of key to lease record; the allocator
    writes to it only through :meth:`store`, :meth:`remember` and :meth:`decline`.
    ``reserved`` (the DHCPv4 pool's fixed addresses) is never picked; the pool
    may still store a lease on such an address itself.
    """

    def __init__(self, first: A, last: A, held: MutableMapping[K, L], *,
                 exclude: Iterable[A] = (), reserved: Container[A] = frozenset(),
                 clock: Callable[[], float] = time.monotonic) -> None:
        if int(last) < int(first):
            raise ValueError(f"pool end {last} is before pool start {first}")
        self.first: A = first
        self.last: A = last
        self.held = held
        self.exclude: set[A] = set(exclude)
        self.reserved: Container[A] = reserved
        self.owner: dict[A, K] = {}
        self._clock = clock
        self._address: Callable[[int], A] = type(first)
        self._first_number, self._last_number = int(first), int(last)
        # Every range address below _cursor is owned, excluded, reserved or in _returned.
        self._cursor = self._first_number
        self._returned: list[int] = []  # min-heap: addresses below the cursor unused again
        # Min-heap of (expires, address, key), one entry per lease remembered; an entry
        # whose key holds another lease now is stale and skipped.
        self._expiry: list[tuple[float, int, K]] = []

    def __contains__(self, address: A) -> bool:
        """In the range and not excluded (reserved addresses included)."""
        return (self._first_number <= int(address) <= self._last_number
                and address not in self.exclude)

    def store(self, key: K, lease: L) -> None:
        """Give ``lease.address`` to ``key``, taking it from any other key that held it."""
        address: A = lease.address
        previous = self.owner.get(address)
        if previous is not None and previous != key:
            del self.held[previous]  # reclaimed: free, or the same machine's old stack
        old = self.held.get(key)
        if old is not None and old.address != address:
            self.owner.pop(old.address, None)
            number = int(old.address)
            if self._first_number <= number < self._cursor:
                heapq.heappush(self._returned, number)  # as good as never used
        self.owner[address] = key
        self.remember(key, lease)

    def remember(self, key: K, lease: L) -> None:
        """Record ``lease`` as ``key``'s (same address) and when it ends."""
        self.held[key] = lease
        heapq.heappush(self._expiry, (lease.expires, int(lease.address), key))
        if len(self._expiry) > 2 * len(self.held) + 64:  # mostly stale: rebuild
            self._expiry = [(held.expires, int(held.address), owner)
                            for owner, held in self.held.items()]
            heapq.heapify(self._expiry)

    def decline(self, address: A) -> None:
        """Never hand ``address`` out again; forget the lease that held it."""
        self.exclude.add(address)
        owner = self.owner.pop(address, None)
        if owner is not None:
            self.held.pop(owner, None)

    def unused(self, address: A) -> bool:
        return (address not in self.owner and address not in self.exclude
                and address not in self.reserved)

    def pick(self) -> A | None:
        """Lowest never-used address, else the one free the longest (lowest address on a tie).

        O(1) amortised: a cursor walks the range once, addresses below it that
        become unused again wait in a heap, and leases wait in a heap by expiry.
        """
        address = self._lowest_unused()
        return address if address is not None else self._longest_free()

    def _lowest_unused(self) -> A | None:
        returned, unused, make = self._returned, self.unused, self._address
        while returned:
            address = make(returned[0])
            if unused(address):
                return address  # it leaves the heap once it is in use (or excluded)
            heapq.heappop(returned)
        while self._cursor <= self._last_number:
            address = make(self._cursor)
            if unused(address):
                return address  # the cursor moves on once it is in use
            self._cursor += 1
        return None

    def _longest_free(self) -> A | None:
        """A free lease's address; leases end in expiry order and a released one has ended."""
        expiry, now = self._expiry, self._clock()
        while expiry:
            expires, number, key = expiry[0]
            lease = self.held.get(key)
            if lease is not None and lease.expires == expires and int(lease.address) == number:
                if expires > now:
                    return None  # the first lease to end has not ended: none is free
                address: A = lease.address
                if (address in self and address not in self.reserved
                        and self.owner.get(address) == key):
                    return address
            heapq.heappop(expiry)  # stale, or an address the pool never hands out
        return None
