"""The address allocator both DHCP pools share: cursor, returned heap, expiry order."""

from __future__ import annotations

from dataclasses import dataclass
from ipaddress import IPv4Address, IPv6Address

import pytest

from pxelab.server.allocator import AddressAllocator

pytestmark = pytest.mark.unit


@dataclass(frozen=True)
class Held4:
    address: IPv4Address
    expires: float


@dataclass(frozen=True)
class Held6:
    address: IPv6Address
    expires: float


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_picks_lowest_unused_then_returned_then_longest_expired() -> None:
    clock = Clock()
    held: dict[str, Held4] = {}
    first = IPv4Address("192.0.2.10")
    allocator: AddressAllocator[IPv4Address, str, Held4] = AddressAllocator(
        first, first + 2, held, exclude={first + 1}, clock=clock)
    assert allocator.pick() == first
    allocator.store("a", Held4(first, 110))
    assert allocator.pick() == first + 2  # first + 1 is excluded
    allocator.store("b", Held4(first + 2, 105))
    assert allocator.pick() is None  # full, nothing has ended
    clock.now = 120
    assert allocator.pick() == first + 2  # ended first
    allocator.store("a", Held4(first + 2, 200))  # "a" takes it over: "b" is forgotten
    assert "b" not in held and allocator.owner == {first + 2: "a"}
    assert allocator.pick() == first  # given up below the cursor: as good as new


def test_declined_and_reserved_addresses_are_never_picked() -> None:
    held: dict[tuple[bytes, int], Held6] = {}
    first = IPv6Address("2001:db8::10")
    allocator: AddressAllocator[IPv6Address, tuple[bytes, int], Held6] = AddressAllocator(
        first, first + 3, held, reserved={first + 1}, clock=Clock())
    allocator.store((b"x", 1), Held6(first, 1e9))
    allocator.decline(first)
    assert first not in allocator and held == {}
    assert allocator.pick() == first + 2
    with pytest.raises(ValueError, match="before pool start"):
        AddressAllocator(first + 1, first, held)
