"""Labs of several guests: MACs, whose evidence is whose, the lab-wide checks, the table."""

from __future__ import annotations

from pathlib import Path

import pytest

from pxelab.analysis.evidence.model import PacketRecord
from pxelab.core.errors import ConfigError
from pxelab.core.events import Event
from pxelab.lab import BootResult
from pxelab.labfile import lab_cases, load_lab_file
from pxelab.machine.console import MilestoneHit, Timeline
from pxelab.multiboot import LabResult, guest_mac, lab_expectation_problem, timeout_factor
from pxelab.multiboot.addresses import host_of
from pxelab.multiboot.attribution import Attribution, eui64_addresses
from pxelab.multiboot.checks import (
    Leases,
    collisions,
    lease_collisions,
    leases,
    merged,
    transfers,
    wire_leases,
)
from pxelab.scenarios.cases import get_scenario, reproduce_command

pytestmark = pytest.mark.unit

A, B = "52:54:00:12:34:56", "52:54:00:12:34:57"


def test_guest_macs_count_up_from_the_scenarios_locally_administered() -> None:
    assert [guest_mac(A, i) for i in range(3)] == [A, B, "52:54:00:12:34:58"]
    # A real vendor MAC stays for guest 1; the others are locally administered.
    assert guest_mac("00:11:22:33:44:55", 0) == "00:11:22:33:44:55"
    assert guest_mac("00:11:22:33:44:55", 1) == "02:11:22:33:44:56"
    assert guest_mac("52:54:00:ff:ff:ff", 1) == "52:54:00:00:00:00"
    with pytest.raises(ConfigError, match="1 to 64"):
        guest_mac(A, 64)


def test_stage_timeouts_grow_with_guests_per_cpu() -> None:
    assert timeout_factor(1, cpus=2) == 1.0
    assert timeout_factor(2, cpus=2) == 1.5
    assert timeout_factor(8, cpus=2) == 6.0


@pytest.mark.parametrize(("text", "address"), [
    ("192.0.2.100", "192.0.2.100"), ("192.0.2.100:1314", "192.0.2.100"),
    ("[fe80::5054:ff:fe12:3456%2]:546", "fe80::5054:ff:fe12:3456"),
    ("2001:db8::1:0", "2001:db8::1:0"), (A, None), ("", None)])
def test_host_of(text: str, address: str | None) -> None:
    assert host_of(text) == address


def test_eui64_addresses() -> None:
    assert eui64_addresses(A) == ("fe80::5054:ff:fe12:3456", "2001:db8::5054:ff:fe12:3456")


def _ack(mac: str, address: str, at: float = 1.0) -> Event:
    return Event("dhcp4", "ack", client=mac, mac=mac, details={"yiaddr": address}, time=at)


def _tftp(kind: str, client: str, port: int, at: float, file: str = "pxelinux.0") -> Event:
    return Event("tftp", kind, client=client, file=file, details={"port": port}, time=at)


def test_events_and_packets_go_to_the_guest_of_their_mac_or_address() -> None:
    events = [Event("server", "ready", time=0.5), _ack(A, "192.0.2.100"),
              _ack(B, "192.0.2.101"), _tftp("rrq", "192.0.2.100", 1000, 2),
              _tftp("rrq", "192.0.2.101", 1000, 2),
              Event("ra", "solicit", client="fe80::5054:ff:fe12:3457", time=3)]
    who = Attribution([A, B])
    who.learn(events)
    assert [who.owner(e) for e in events] == [None, A, B, A, B, B]
    assert [e.kind for e in who.events_of(A, events)] == ["ready", "ack", "rrq"]
    packets = [PacketRecord(1, "tftp", "rrq", "192.0.2.101:1000", "192.0.2.1:69", "", B),
               PacketRecord(1, "arp", "request", "192.0.2.100", "192.0.2.1", ""),
               PacketRecord(1, "ra", "ra", "fe80::1", "ff02::1", "")]
    assert [p.proto for p in who.packets_of(A, packets)] == ["arp", "ra"]
    assert "192.0.2.101" in who.addresses(B)


def test_an_address_bound_to_two_guests_is_a_collision() -> None:
    bound = leases([_ack(A, "192.0.2.100"), _ack(A, "192.0.2.100", 5), _ack(B, "192.0.2.100"),
                    Event("dhcp6", "reply", client=B, mac=B,
                          details={"addresses": ["2001:db8::1:0"]})], [A, B])
    assert bound == (Leases(A, ("192.0.2.100",)), Leases(B, ("192.0.2.100",), ("2001:db8::1:0",)))
    assert collisions(bound) == (f"192.0.2.100 leased to {A}, {B}",)
    assert collisions(leases([_ack(A, "192.0.2.100"), _ack(B, "192.0.2.101")], [A, B])) == ()


def test_an_address_released_may_go_to_another_guest() -> None:
    def reply(mac: str, answers: str, at: float) -> Event:
        return Event("dhcp6", "reply", client=mac, mac=mac, time=at,
                     details={"addresses": ["2001:db8::1:0"], "in_reply_to": answers})

    release = Event("dhcp6", "release", client=A, mac=A, time=2,
                    details={"address": "2001:db8::1:0"})
    assert lease_collisions([reply(A, "request", 1), release, reply(A, "release", 2.1),
                             reply(B, "request", 3)], [A, B]) == ()
    assert lease_collisions([reply(A, "request", 1), reply(B, "request", 3)], [A, B]) == (
        f"2001:db8::1:0 leased to {A}, {B}",)
    dhcp4 = [_ack(A, "192.0.2.100", 1), _ack(A, "192.0.2.100", 4), _ack(B, "192.0.2.100", 5)]
    assert lease_collisions(dhcp4, [A, B]) == (f"192.0.2.100 leased to {A}, {B}",)
    bootp = Event("dhcp4", "bootreply", client=B, mac=B, details={"yiaddr": "192.0.2.100"},
                  time=5)
    assert lease_collisions([_ack(A, "192.0.2.100", 1), bootp], [A, B]) == (
        f"192.0.2.100 leased to {A}, {B}",)


def test_transfers_that_never_ended_or_failed_are_lost() -> None:
    events = [_ack(A, "192.0.2.100"), _ack(B, "192.0.2.101"),
              _tftp("rrq", "192.0.2.100", 1000, 2), _tftp("aborted", "192.0.2.100", 1000, 2.1),
              _tftp("rrq", "192.0.2.100", 1001, 3), _tftp("sent", "192.0.2.100", 1001, 4),
              _tftp("rrq", "192.0.2.101", 1000, 3), _tftp("error", "192.0.2.101", 1000, 9),
              _tftp("rrq", "192.0.2.101", 1002, 10, "ldlinux.c32"),
              Event("http", "get", client="192.0.2.100", mac=A, file="/vmlinuz", time=5,
                    details={"status": 200, "size": 100, "bytes": 40})]
    who = Attribution([A, B])
    who.learn(events)
    a, b = transfers(events, who)
    assert (a.started, a.ended, b.started, b.ended) == (3, 3, 2, 1)
    assert a.lost == ("HTTP /vmlinuz:",)
    assert b.lost[1] == "unfinished: TFTP ldlinux.c32 from 192.0.2.101"


def test_a_kept_alive_connection_left_unused_is_no_lost_transfer() -> None:
    # iPXE keeps the connection of its last fetch for the next one, then starts the kernel
    # and never closes it; the server closes it idle_timeout later. A request that never
    # completed, on the same kind of connection, is a transfer lost.
    def timeout(idle: bool, time: float) -> Event:
        return Event("http", "timeout", client="192.0.2.100", time=time,
                     details={"timeout": 30.0, "idle": idle, "requests": 2})
    get = Event("http", "get", client="192.0.2.100", mac=A, file="/initrd.img", time=5,
                details={"status": 200, "size": 100, "bytes": 100})
    events = [_ack(A, "192.0.2.100"), get, timeout(True, 35)]
    who = Attribution([A])
    who.learn(events)
    (a,) = transfers(events, who)
    assert (a.started, a.ended, a.lost) == (1, 1, ())
    (a,) = transfers([*events[:2], timeout(False, 35)], who)
    assert (a.started, a.ended) == (2, 2) and len(a.lost) == 1


def _boot(tmp_path: Path, ok: bool) -> BootResult:
    hits = [MilestoneHit("rom_dhcp", 0.4, "Configuring ... ok"),
            MilestoneHit("nbp", 0.5, "pxelinux.0 : 42430 bytes [PXE-NBP]"),
            MilestoneHit("kernel", 3.4, "Linux version 6.1.0")]
    if ok:
        hits.append(MilestoneHit("userspace", 7.0,
                                 "PXELAB-USERSPACE root=192.0.2.1:/pxelab fstype=nfs4"))
    timeline = Timeline("legacy_pxe_ipv4", hits=hits,
                        failed_stage=None if ok else "initramfs",
                        failure=None if ok else "timed out")
    return BootResult("legacy_pxe_ipv4", timeline, tmp_path, (), "192.0.2.1:/pxelab")


def test_the_table_shows_the_guests_side_by_side(tmp_path: Path) -> None:
    lab = LabResult("legacy_pxe_ipv4", tmp_path, (_boot(tmp_path, True), _boot(tmp_path, False)),
                    (A, B), (Leases(A, ("192.0.2.100",)), Leases(B, ("192.0.2.101",))),
                    transfers([], Attribution([A, B])), 1.5)
    assert not lab.passed and lab.all_booted is False and lab.failed() == (lab.guests[1],)
    lines = lab.table().splitlines()
    assert lines[0].split()[:4] == ["#", "guest", "(MAC)", "IPv4"]
    assert lines[1].split() == ["1", A, "192.0.2.100", "-", "userspace", "0.4", "0.5", "3.4",
                                "7.0", "0/0", "ok"]
    assert lines[2].split()[:10] == ["2", B, "192.0.2.101", "-", "kernel", "0.4", "0.5", "3.4",
                                     "-", "0/0"]
    assert lines[2].endswith("failed at initramfs: timed out")
    assert "1 of 2 guests booted" in lines[3]
    lab.write()
    assert (tmp_path / "lab-result.json").read_text().count('"mac"') == 2


def test_a_lab_file_says_how_many_guests(tmp_path: Path) -> None:
    path = tmp_path / "storm.pxelab.toml"
    path.write_text('[[guest]]\nmode = "legacy_pxe"\nnic_models = ["virtio-net-pci"]\n'
                    'guests = 8\n\n[data_root]\npath = "."\npayload = true\n')
    (case,) = lab_cases(load_lab_file(path))
    assert case.guests == 8
    assert "--guests 8" in reproduce_command(case)
    path.write_text(path.read_text().replace("guests = 8", "guests = 65"))
    with pytest.raises(ConfigError, match="guests"):
        load_lab_file(path)
    assert "--guests" not in reproduce_command(get_scenario("legacy_pxe_ipv4"))


def test_leases_seen_on_the_wire_join_the_servers() -> None:
    ack = PacketRecord(1, "dhcp4", "ack", "192.0.2.1", "255.255.255.255", "", B,
                       {"yiaddr": "192.0.2.101"})
    other = PacketRecord(1, "dhcp4", "offer", "192.0.2.1", "255.255.255.255", "", B,
                         {"yiaddr": "192.0.2.102"})
    seen = wire_leases([[], [ack, other]], [A, B])
    assert seen == (Leases(A), Leases(B, ("192.0.2.101",)))
    assert merged((Leases(A, ("192.0.2.100",)), Leases(B)), seen) == (
        Leases(A, ("192.0.2.100",)), Leases(B, ("192.0.2.101",)))


def test_a_lab_meets_its_files_expectations_guest_by_guest(tmp_path: Path) -> None:
    scenario = get_scenario("legacy_pxe_ipv4")
    both = (Leases(A, ("192.0.2.100",)), Leases(B, ("192.0.2.100",)))
    lab = LabResult("legacy_pxe_ipv4", tmp_path, (_boot(tmp_path, True), _boot(tmp_path, False)),
                    (A, B), both, transfers([], Attribution([A, B])),
                    collisions=collisions(both))
    problem = lab_expectation_problem(scenario, lab)
    assert problem is not None
    assert problem.startswith(f"guest 2 ({B}): legacy_pxe_ipv4 failed at initramfs")
    assert f"lease collision: 192.0.2.100 leased to {A}, {B}" in problem
