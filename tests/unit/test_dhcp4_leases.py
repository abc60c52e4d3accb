"""The DHCPv4 pool's address picking: a cursor and heaps instead of a scan, same choices."""

from __future__ import annotations

import random
from ipaddress import IPv4Address

import pytest

from pxelab.server.dhcp4.leases import LeasePool, LeaseState

pytestmark = pytest.mark.unit

FIRST = IPv4Address("192.0.2.100")


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def pool(size: int, clock: Clock, **kwargs: object) -> LeasePool:
    return LeasePool(FIRST, FIRST + size - 1, 3600, clock=clock, **kwargs)  # type: ignore[arg-type]


def scanned_pick(leases: LeasePool) -> IPv4Address | None:
    """What ``_pick`` chose when it scanned the range: the specification it must keep."""
    for number in range(int(leases.first), int(leases.last) + 1):
        address = IPv4Address(number)
        if (address not in leases._exclude and address not in leases._by_address
                and address not in leases._fixed_owner):
            return address
    free = [lease for lease in leases.leases() if lease.state is LeaseState.FREE
            and lease.address in leases and lease.address not in leases._fixed_owner]
    return min(free, key=lambda lease: lease.expires).address if free else None


def test_never_used_addresses_first_then_the_one_free_longest() -> None:
    clock = Clock()
    leases = pool(3, clock)
    macs = [f"aa:00:00:00:00:0{n}" for n in range(4)]
    for mac in macs[:3]:
        address = leases.offer(mac)
        assert address is not None and leases.bind(mac, address)
    assert leases.offer(macs[3]) is None  # full
    clock.now += 10
    assert leases.release(macs[1])
    clock.now += 10
    assert leases.release(macs[0])
    assert leases.offer(macs[3]) == FIRST + 1  # released first, so free the longest
    assert leases.lookup(macs[1]) is None  # its remembered address went to another MAC


def test_declined_and_fixed_addresses_are_never_picked() -> None:
    clock = Clock()
    leases = pool(4, clock)
    leases.reserve({"aa:00:00:00:00:ff": FIRST + 1})
    first = leases.offer("aa:00:00:00:00:01")
    assert first == FIRST
    assert leases.decline("aa:00:00:00:00:01", first)
    assert leases.offer("aa:00:00:00:00:02") == FIRST + 2  # skips declined and fixed
    assert leases.offer("aa:00:00:00:00:03") == FIRST + 3
    assert leases.offer("aa:00:00:00:00:04") is None


def test_an_address_given_up_below_the_cursor_is_the_lowest_again() -> None:
    """A MAC that gets a fixed address leaves its pool address: it counts as never used."""
    clock = Clock()
    leases = pool(4, clock)
    mac = "aa:00:00:00:00:01"
    assert leases.offer(mac) == FIRST
    assert leases.offer("aa:00:00:00:00:02") == FIRST + 1
    leases.reserve({mac: IPv4Address("192.0.2.50")})
    assert leases.offer(mac) == IPv4Address("192.0.2.50")
    assert leases.offer("aa:00:00:00:00:03") == FIRST


def test_picking_stays_cheap_in_a_huge_pool() -> None:
    leases = LeasePool(IPv4Address("10.0.0.1"), IPv4Address("10.255.255.254"), 3600)
    picked = [leases.offer(f"aa:00:00:00:{n >> 8:02x}:{n & 255:02x}") for n in range(3000)]
    assert picked == [IPv4Address("10.0.0.1") + n for n in range(3000)]


def test_expired_offers_come_back_in_expiry_order() -> None:
    clock = Clock()
    leases = pool(2, clock)
    a = leases.offer("aa:00:00:00:00:01")
    clock.now += 1
    b = leases.offer("aa:00:00:00:00:02")
    assert leases.offer("aa:00:00:00:00:03") is None
    clock.now += 59.5  # a's offer (60 s) has ended, b's has 0.5 s left
    assert leases.offer("aa:00:00:00:00:03") == a
    assert leases.offer("aa:00:00:00:00:04") is None
    clock.now += 1
    assert leases.offer("aa:00:00:00:00:04") == b


@pytest.mark.parametrize("seed", range(8))
def test_random_operations_pick_what_the_scan_picked(seed: int) -> None:
    rng = random.Random(seed)
    clock = Clock()
    leases = pool(12, clock, exclude=frozenset({FIRST + 5}))
    leases.reserve({"aa:00:00:00:00:f0": FIRST + 3, "aa:00:00:00:00:f1": FIRST - 50})
    macs = [f"aa:00:00:00:00:{n:02x}" for n in range(20)] + ["aa:00:00:00:00:f0"]
    addresses = [FIRST + n for n in range(-1, 14)]
    for _ in range(400):
        clock.now += rng.uniform(0.01, 900)  # never two leases ending at the same time
        mac = rng.choice(macs)
        operation = rng.randrange(5)
        if operation == 0:
            leases.offer(mac, rng.choice([None, *addresses]))
        elif operation == 1:
            held = leases.lookup(mac)
            leases.bind(mac, held.address if held and rng.random() < 0.8
                        else rng.choice(addresses))
        elif operation == 2:
            leases.release(mac)
        elif operation == 3 and rng.random() < 0.2:
            leases.decline(mac, rng.choice(addresses))
        assert leases._pick() == scanned_pick(leases)
