"""The live guard over lab.pcap (pxelab.analysis.livewire), for labs without server events:
frames appended to a pcap file while the guard reads it, as tcpdump -U writes them."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from scapy.layers.dhcp import BOOTP, DHCP
from scapy.layers.dhcp6 import DHCP6_Advertise, DHCP6_Solicit
from scapy.layers.inet import IP, UDP
from scapy.layers.inet6 import IPv6
from scapy.layers.l2 import Ether
from scapy.layers.tftp import TFTP, TFTP_DATA, TFTP_RRQ
from scapy.packet import Packet
from scapy.utils import PcapWriter

from pxelab.analysis.livewire import PcapTail, WireUnansweredGuard, wire_guards

pytestmark = pytest.mark.unit

MAC = "52:54:00:12:34:56"
SERVER_MAC = "02:00:00:00:00:01"
T0 = 1_796_611_841.0
CHADDR = bytes.fromhex(MAC.replace(":", "")) + b"\0" * 10


def discover(secs: int = 0) -> Packet:
    return (Ether(src=MAC, dst="ff:ff:ff:ff:ff:ff") / IP(src="0.0.0.0", dst="255.255.255.255")
            / UDP(sport=68, dport=67) / BOOTP(chaddr=CHADDR, xid=7, secs=secs)
            / DHCP(options=[("message-type", "discover"), "end"]))


def offer() -> Packet:
    return (Ether(src=SERVER_MAC, dst="ff:ff:ff:ff:ff:ff") / IP(src="192.0.2.1",
                                                                dst="255.255.255.255")
            / UDP(sport=67, dport=68) / BOOTP(op=2, chaddr=CHADDR, xid=7, yiaddr="192.0.2.100")
            / DHCP(options=[("message-type", "offer"), "end"]))


class Wire:
    """A pcap file written frame by frame, and a guard reading it on a fake clock."""

    def __init__(self, path: Path) -> None:
        self.writer = PcapWriter(str(path), linktype=1, sync=True)
        self.now = T0
        self.guard = WireUnansweredGuard(path, MAC, clock=lambda: self.now)

    def send(self, at: float, frame: Packet) -> None:
        frame.time = T0 + at
        self.writer.write(frame)

    def check(self, at: float) -> str:
        self.now = T0 + at
        verdict = self.guard.check()
        return verdict.text if verdict else ""


@pytest.fixture
def wire(tmp_path: Path) -> Iterator[Wire]:
    """Function scope: a Wire on tmp_path/lab.pcap, its writer closed after."""
    made = Wire(tmp_path / "lab.pcap")
    yield made
    made.writer.close()


def test_discovers_nobody_answers_end_the_stage_after_4_s(wire: Wire) -> None:
    assert wire.check(0.5) == ""  # tcpdump has not written the header yet: nothing
    for at in (1.0, 2.0):
        wire.send(at, discover())
    assert wire.check(2.5) == ""
    wire.send(3.0, discover())
    assert wire.check(4.5) == ""  # three, but not yet 4 s of silence
    text = wire.check(5.2)
    assert text.startswith(f"3 DHCPv4 DISCOVERs from {MAC} got no answer on the wire in 4.2s")


def test_an_offer_answers_them(wire: Wire) -> None:
    for at in (1.0, 2.0, 3.0):
        wire.send(at, discover())
    wire.send(3.1, offer())
    assert wire.check(9.0) == ""


def test_a_tftp_rrq_answered_by_data_to_its_port(wire: Wire) -> None:
    rrq = (Ether(src=MAC, dst=SERVER_MAC) / IP(src="192.0.2.100", dst="192.0.2.1")
           / UDP(sport=2070, dport=69) / TFTP() / TFTP_RRQ(filename=b"pxelinux.0"))
    for at in (1.0, 2.0, 3.0):
        wire.send(at, rrq.copy())
    assert "3 TFTP RRQ pxelinux.0s" in wire.check(6.0)
    data = (Ether(src=SERVER_MAC, dst=MAC) / IP(src="192.0.2.1", dst="192.0.2.100")
            / UDP(sport=40000, dport=2070) / TFTP() / TFTP_DATA(block=1) / (b"x" * 512))
    wire.send(6.1, data)
    assert wire.check(6.2) == ""


def test_dhcpv6_solicits_and_an_advertise(wire: Wire) -> None:
    solicit = (Ether(src=MAC, dst="33:33:00:01:00:02") / IPv6(src="fe80::5054:ff:fe12:3456",
                                                             dst="ff02::1:2")
               / UDP(sport=546, dport=547) / DHCP6_Solicit(trid=1))
    for at in (1.0, 2.1, 4.3):
        wire.send(at, solicit.copy())
    assert "3 DHCPv6 Solicits" in wire.check(5.5)
    wire.send(5.6, Ether(src=SERVER_MAC, dst=MAC) / IPv6(src="fe80::1",
                                                         dst="fe80::5054:ff:fe12:3456")
              / UDP(sport=547, dport=546) / DHCP6_Advertise(trid=1))
    assert wire.check(5.7) == ""


def test_another_clients_requests_are_not_the_guests(wire: Wire) -> None:
    other = discover()
    other[BOOTP].chaddr = bytes.fromhex("525400000001") + b"\0" * 10
    for at in (1.0, 2.0, 3.0):
        wire.send(at, other.copy())
    assert wire.check(9.0) == ""


def test_a_record_half_written_is_read_once_whole(tmp_path: Path) -> None:
    path = tmp_path / "lab.pcap"
    writer = PcapWriter(str(path), linktype=1, sync=True)
    frame = discover()
    frame.time = T0 + 1
    writer.write(frame)
    writer.close()
    whole = path.read_bytes()
    path.write_bytes(whole[:-10])
    tail = PcapTail(path)
    assert tail.read() == []
    path.write_bytes(whole)
    ((at, data),) = tail.read()
    assert at == pytest.approx(T0 + 1) and data == bytes(frame)


def test_wire_guards_are_stage_guards_on_the_lab_capture(tmp_path: Path) -> None:
    (guard,) = wire_guards(tmp_path / "lab.pcap", MAC.upper())
    assert isinstance(guard, WireUnansweredGuard) and guard.mac == MAC
    assert guard.check() is None  # no capture yet
