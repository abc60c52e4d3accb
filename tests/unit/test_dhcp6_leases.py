"""The DHCPv6 IA_NA pool: bindings per (DUID, IAID), stable per MAC, clock injected."""

from __future__ import annotations

import random
from ipaddress import IPv6Address

import pytest

from pxelab.server.dhcp6.leases import Lease6Pool, LeaseState

pytestmark = pytest.mark.unit

FIRST, LAST = IPv6Address("2001:db8::1:0"), IPv6Address("2001:db8::1:3")
A = [IPv6Address(int(FIRST) + i) for i in range(4)]
OVMF, IPXE = b"\x00\x01ovmf-llt", b"\x00\x04" + bytes(16)
MAC = "52:54:00:12:34:56"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def pool(**kwargs: object) -> tuple[Lease6Pool, Clock]:
    clock = Clock()
    return Lease6Pool(FIRST, LAST, 3600, offer_seconds=60, clock=clock, **kwargs), clock  # type: ignore[arg-type]


def test_offer_then_bind_keeps_the_address() -> None:
    leases, _ = pool()
    offered = leases.offer(OVMF, 1, MAC)
    assert offered is not None and offered.address == A[0]
    assert offered.state is LeaseState.OFFERED
    bound = leases.bind(OVMF, 1, MAC)
    assert bound is not None and bound.address == A[0] and bound.state is LeaseState.BOUND
    assert leases.offer(OVMF, 1, MAC) == bound  # an Advertise never shortens a binding


def test_each_ia_gets_its_own_address() -> None:
    leases, _ = pool()
    first = leases.bind(OVMF, 1, MAC)
    second = leases.bind(OVMF, 2, MAC)  # a second IA of the same client
    other = leases.bind(b"\x00\x03other", 1, "52:54:00:00:00:02")
    assert first and second and other
    assert len({first.address, second.address, other.address}) == 3


def test_same_mac_with_a_new_duid_gets_its_address_back() -> None:
    """OVMF makes a new DUID-LLT and IAID per boot; iPXE chain-loaded after it uses DUID-UUID."""
    leases, _ = pool()
    before = leases.bind(OVMF, 0x11, MAC)
    after = leases.bind(IPXE, 0x22, MAC)
    assert before and after and after.address == before.address
    assert leases.lookup(OVMF, 0x11) is None  # taken over: the old stack is gone
    assert leases.renew(IPXE, 0x22, after.address) is not None


def test_hints_are_honoured_when_usable() -> None:
    leases, _ = pool()
    assert leases.candidate(OVMF, 1, None, [A[2]]) == A[2]
    assert leases.candidate(OVMF, 1, None, [IPv6Address("2001:db9::1"), A[3]]) == A[3]
    leases.bind(IPXE, 1, None, [A[2]])
    assert leases.candidate(OVMF, 1, None, [A[2]]) == A[0]  # taken: lowest free instead


def test_exhaustion_and_reclaim_after_expiry() -> None:
    leases, clock = pool()
    for number in range(4):
        assert leases.bind(bytes((0, 3, number)), 1, f"52:54:00:00:00:{number:02x}")
    assert leases.offer(b"\x00\x03late", 1, "52:54:00:00:00:99") is None
    clock.now += 3601
    reclaimed = leases.offer(b"\x00\x03late", 1, "52:54:00:00:00:99")
    assert reclaimed is not None and reclaimed.address in A
    assert len([b for b in leases.bindings() if b.address == reclaimed.address]) == 1


def test_offer_expires_and_is_reused() -> None:
    leases, clock = pool()
    leases.offer(OVMF, 1)
    clock.now += 61
    binding = leases.lookup(OVMF, 1)
    assert binding is not None and binding.state is LeaseState.FREE
    assert leases.bind(OVMF, 1) is not None  # its own free address comes back


def test_renew_release_and_decline() -> None:
    leases, _ = pool()
    bound = leases.bind(OVMF, 1, MAC)
    assert bound is not None
    assert leases.renew(OVMF, 1, A[3]) is None  # not its address: NoBinding
    assert leases.renew(OVMF, 9, bound.address) is None  # not its IA
    assert not leases.release(OVMF, 1, A[3])
    assert leases.release(OVMF, 1, bound.address)
    assert leases.lookup(OVMF, 1).state is LeaseState.FREE  # type: ignore[union-attr]
    again = leases.bind(OVMF, 1, MAC)
    assert again is not None and again.address == bound.address
    assert not leases.decline(OVMF, 1, A[3])  # never held: the pool stays whole
    assert A[3] in leases
    assert leases.decline(OVMF, 1, again.address)
    assert again.address not in leases and leases.lookup(OVMF, 1) is None
    fresh = leases.bind(OVMF, 1, MAC)
    assert fresh is not None and fresh.address != again.address


def test_huge_pool_picks_fast_and_excludes() -> None:
    server = IPv6Address("2001:db8::")
    leases = Lease6Pool(server, IPv6Address("2001:db8::ffff:ffff:ffff:ffff"), 3600,
                        exclude=frozenset({server}))
    assert leases.size == 1 << 64
    picked = [leases.bind(bytes((0, 3, i)), 1) for i in range(50)]
    assert [b.address for b in picked if b] == [IPv6Address(int(server) + 1 + i)
                                               for i in range(50)]
    with pytest.raises(ValueError, match="before pool start"):
        Lease6Pool(LAST, FIRST, 3600)


def scanned_pick(leases: Lease6Pool) -> IPv6Address | None:
    """What ``_pick`` chose when it scanned the range: the specification it must keep."""
    start, end = int(leases.first), int(leases.last)
    for number in range(start, min(end, start + len(leases._owner) + len(leases._exclude)) + 1):
        address = IPv6Address(number)
        if address not in leases._exclude and address not in leases._owner:
            return address
    free = [b for b in leases.bindings() if b.state is LeaseState.FREE and b.address in leases
            and leases._owner.get(b.address) == (b.duid, b.iaid)]
    return min(free, key=lambda b: b.expires).address if free else None


def test_released_addresses_wait_until_the_never_used_run_out() -> None:
    leases, clock = pool()
    first = leases.bind(OVMF, 1, MAC)
    assert first is not None and leases.release(OVMF, 1, first.address)
    clock.now += 1
    others = [leases.bind(bytes((0, 3, n)), 1, f"52:54:00:00:00:{n:02x}") for n in range(3)]
    assert [b.address for b in others if b] == A[1:]
    late = leases.bind(b"\x00\x03late", 1, "52:54:00:00:00:99")
    assert late is not None and late.address == A[0]  # the released one, reclaimed
    assert leases.lookup(OVMF, 1) is None


@pytest.mark.parametrize("seed", range(8))
def test_random_operations_pick_what_the_scan_picked(seed: int) -> None:
    rng = random.Random(seed)
    leases, clock = pool(exclude=frozenset({A[1]}))
    duids = [bytes((0, 3, n)) for n in range(6)]
    macs = [None, MAC, "52:54:00:00:00:02", "52:54:00:00:00:03"]
    hints = [*A, IPv6Address("2001:db8::1:4"), IPv6Address("2001:db9::1")]
    for _ in range(400):
        clock.now += rng.uniform(0.01, 900)  # never two bindings ending at the same time
        duid, iaid, mac = rng.choice(duids), rng.randrange(2), rng.choice(macs)
        asked = rng.sample(hints, rng.randrange(2))
        operation = rng.randrange(6)
        if operation == 0:
            leases.offer(duid, iaid, mac, asked)
        elif operation == 1:
            leases.bind(duid, iaid, mac, asked)
        elif operation == 2:
            held = leases.lookup(duid, iaid)
            leases.renew(duid, iaid, held.address if held else rng.choice(hints))
        elif operation == 3:
            held = leases.lookup(duid, iaid)
            leases.release(duid, iaid, held.address if held else rng.choice(hints))
        elif operation == 4 and rng.random() < 0.1:
            held = leases.lookup(duid, iaid)
            if held is not None:
                leases.decline(duid, iaid, held.address)
        assert leases._pick() == scanned_pick(leases)
