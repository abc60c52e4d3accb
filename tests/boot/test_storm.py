"""A boot storm: several guests powered on together in one lab, against one boot server.

Each guest is judged on its own evidence (its MAC's and addresses' events and
packets), and the lab as a whole must hold: every guest its own address, every
transfer a guest started ended whole. Under TCG on two cores the 8-guest lab takes
about 32 s of both CPUs (36 s beside another boot), so the other labs here have two
guests: one where a guest fails alone, one booting Debian's initramfs-tools initrd
(NFSv3 root, about 13 s).

    pytest tests/boot/test_storm.py            # or -m storm
"""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from pxelab.multiboot import guest_mac
from pxelab.scenarios.matrix import find_case
from pxelab.scenarios.regressions.initrd import with_initramfs_tools
from pxelab.server.faults import WithholdOffers
from pxelab.server.match import Match

pytestmark = [pytest.mark.qemu, pytest.mark.netns, pytest.mark.slow, pytest.mark.storm]

# The cheapest case to userspace under TCG (SeaBIOS, the iPXE ROM, PXELINUX; about 7 s
# alone, 27 s with 8 guests on 2 cores; bench/README.md).
CASE = "legacy_pxe_ipv4"
GUESTS = 8


def assert_every_guest_booted(lab, guests, fstype):
    """Every guest reached userspace on the lab's NFS root (``fstype``), on an address of
    its own, with every transfer whole and only its own MAC in its evidence."""
    assert lab.passed, lab.table()
    assert len(lab.guests) == guests and len(set(lab.macs)) == guests
    for mac, guest, lease, moved in zip(lab.macs, lab.guests, lab.leases, lab.transfers,
                                        strict=True):
        assert guest.ok and guest.marker == {"root": guest.nfs_source, "fstype": fstype}
        assert lease.ipv4, f"{mac} got no DHCPv4 lease"
        # Firmware, PXELINUX's files and the kernel and initrd: all of them, all whole.
        assert moved.started >= 5 and moved.ended == moved.started and not moved.lost
        # Its own timeline and evidence: no other guest's MAC in its events or packets.
        timeline = json.loads((guest.artifacts / "timeline.json").read_text())
        assert timeline["timeline"]["hits"][-1]["name"] == "userspace"
        others = set(lab.macs) - {mac}
        assert not others & {event.mac for event in guest.events}
        assert guest.evidence is not None
        assert not others & {packet.client for packet in guest.evidence.packets}
        assert guest.timeline.properties["mac"] == mac
    addresses = [lease.ipv4[-1] for lease in lab.leases]
    assert len(set(addresses)) == guests, f"leases collide: {addresses}"
    assert lab.collisions == () and lab.lost_transfers == ()
    assert (lab.artifacts / "lab-result.txt").read_text().startswith("#  guest (MAC)")


def test_eight_guests_boot_at_once_against_one_server(boot_scenario):
    lab = boot_scenario(CASE, guests=GUESTS)
    # pxelab's initramfs mounts NFSv4, each guest under a client name of its own.
    assert_every_guest_booted(lab, GUESTS, "nfs4")


def test_two_guests_boot_debian_initramfs_tools_at_once(boot_scenario):
    # Debian's initramfs-tools (boot=nfs) mounts with klibc nfsmount: NFSv3 with nolock,
    # which leaves no per-client state at the server, so the guests' identical host
    # names do not matter as they do for NFSv4 client names (4 guests booted too).
    lab = boot_scenario(with_initramfs_tools(find_case(CASE)), guests=2)
    assert_every_guest_booted(lab, 2, "nfs")
    for mac, guest in zip(lab.macs, lab.guests, strict=True):
        # Debian's table, not pxelab's: klibc ipconfig's lease, then nfsmount's root.
        assert guest.timeline.seconds("initramfs_dhcp") and guest.timeline.seconds("nfs_root")
        klibc = [e for e in guest.events if e.source == "dhcp4" and e.kind == "ack"
                 and e.details.get("vendor_class") == "Linux ipconfig"]
        assert klibc and all(e.mac == mac for e in klibc), f"{mac}: no ipconfig lease"


def test_a_guest_that_fails_is_diagnosed_alone(boot_scenario):
    scenario = find_case(CASE)
    refused = guest_mac(scenario.guest.mac, 1)
    fault = WithholdOffers(Match(mac=refused), reason=f"no boot for {refused} today")
    lab = boot_scenario(replace(scenario, faults=(fault,)), guests=2)

    first, second = lab.guests
    assert first.ok, lab.table()
    assert not second.ok
    assert second.timeline.failed_stage == "rom_dhcp"
    assert second.diagnosis is not None and second.diagnosis.cause is not None
    assert second.diagnosis.cause.code == "dhcp.withheld"
    assert refused in str(second.diagnosis.to_dict())
    # The first guest's verdict is not touched by the second's refusals.
    assert first.diagnosis is not None and first.diagnosis.ok
    assert not {e.mac for e in first.events} & {refused}
    assert not lab.passed and lab.collisions == () and lab.lost_transfers == ()
    assert "failed at rom_dhcp: dhcp.withheld" in lab.table()

