"""OmitOption / AddOption in DHCPv4 replies: full offers and ACKs, proxy offers, BOOTP.

The protocol objects run with a fake transport (as in test_dhcp4_protocol.py);
requests are what OVMF's HTTP and PXE clients send (fixtures/packets/README.md).
"""

from __future__ import annotations

from ipaddress import IPv4Address, IPv4Network
from typing import Any

import pytest
from scapy.layers.dhcp import BOOTP, DHCP

from pxelab.core.events import EventLog
from pxelab.server.dhcp4 import codec
from pxelab.server.dhcp4.codec import DhcpMessage, MessageType, Op
from pxelab.server.dhcp4.leases import LeasePool
from pxelab.server.dhcp4.proxy import ProxyDhcp4Protocol
from pxelab.server.dhcp4.replies import apply_edits
from pxelab.server.dhcp4.server import BaseDhcp4Protocol, Dhcp4Protocol, Dhcp4Settings
from pxelab.server.faults import AddOption, Fault, FaultInjector, OmitOption, ReplyEdits
from pxelab.server.policy import Arch, Match, Rule, RulePolicy

pytestmark = pytest.mark.unit

MAC = bytes.fromhex("525400123456")
SETTINGS = Dhcp4Settings(IPv4Address("192.0.2.1"), IPv4Network("192.0.2.0/24"))
CLIENT = ("0.0.0.0", 68)
HTTP_VENDOR = b"HTTPClient:Arch:00016:UNDI:003000"
PXE_VENDOR = b"PXEClient:Arch:00007:UNDI:003000"
HTTP_POLICY = RulePolicy(rules=(Rule(Match(arch=(Arch.EFI_X64_HTTP,)),
                                     "http://{{ server }}/snponly.efi"),))


class Transport:
    def __init__(self) -> None:
        self.sent: list[bytes] = []

    def sendto(self, data: bytes, addr: tuple[str, int]) -> None:
        self.sent.append(data)

    def replies(self) -> list[DhcpMessage]:
        return [codec.decode(data) for data in self.sent]


def request(kind: str | None, vendor: bytes, arch: int, *extra: Any, **fields: Any) -> bytes:
    options: list[Any] = [("message-type", kind)] if kind else []
    options += [*extra, (93, arch.to_bytes(2, "big")), ("vendor_class_id", vendor), "end"]
    return bytes(BOOTP(chaddr=MAC, xid=0x5EC5, flags=0x8000, **fields) / DHCP(options=options))


def run(proto: BaseDhcp4Protocol, *datagrams: bytes) -> Transport:
    transport = Transport()
    proto.connection_made(transport)  # type: ignore[arg-type]
    for data in datagrams:
        proto.datagram_received(data, CLIENT)
    return transport


def full(*faults: Fault, policy: RulePolicy = HTTP_POLICY) -> tuple[Dhcp4Protocol, EventLog]:
    events = EventLog()
    pool = LeasePool(IPv4Address("192.0.2.100"), IPv4Address("192.0.2.199"), 3600)
    return Dhcp4Protocol(SETTINGS, policy, pool, events, FaultInjector(faults, events)), events


def test_apply_edits_omits_adds_and_replaces() -> None:
    reply = DhcpMessage(op=Op.BOOTREPLY, xid=1, chaddr=MAC,
                        options=((53, b"\x02"), (60, b"HTTPClient"), (67, b"x")))
    edited = apply_edits(reply, ReplyEdits(frozenset({60, 43}), ((67, b"y"), (60, b"PXEClient"))))
    assert edited.options == ((53, b"\x02"), (67, b"y"), (60, b"PXEClient"))
    assert apply_edits(reply, ReplyEdits()) is reply


def test_omitted_httpclient_echo_leaves_offer_and_ack_without_option_60() -> None:
    proto, events = full(OmitOption("dhcp4.*", 60))
    transport = run(proto, request("discover", HTTP_VENDOR, 16))
    offer = transport.replies()[0]
    assert offer.message_type is MessageType.OFFER and offer.raw(60) is None
    assert offer.text(67) == "http://192.0.2.1/snponly.efi"  # the rest as the policy decided
    seen = events.matching(lambda e: e.kind == "offer")[0]
    assert seen.details["fault_omitted"] == [60] and seen.details["vendor_class_echo"] is None
    assert 60 not in seen.details["options"]
    fired = events.matching(lambda e: e.source == "fault")
    assert [(e.request, e.reason) for e in fired] == [
        ("dhcp4.offer", "omit option 60 from dhcp4.*")]
    proto.datagram_received(request("request", HTTP_VENDOR, 16, ("server_id", "192.0.2.1"),
                                    ("requested_addr", str(offer.yiaddr))), CLIENT)
    ack = transport.replies()[-1]
    assert ack.message_type is MessageType.ACK and ack.raw(60) is None


def test_pxeclient_echo_without_43_makes_a_binl_offer() -> None:
    faults = (AddOption("dhcp4.*", 60, b"PXEClient", match=Match(vendor_class="PXEClient")),
              OmitOption("dhcp4.*", 43))
    proto, events = full(*faults, policy=RulePolicy())
    offer = run(proto, request("discover", PXE_VENDOR, 7)).replies()[0]
    # EDK2 PxeBcParseDhcp4Packet: PXEClient, yiaddr set, no discovery sub-options: DhcpBinl.
    assert offer.text(60) == "PXEClient" and offer.raw(43) is None
    assert offer.yiaddr != IPv4Address(0) and offer.file == "bootx64.efi"
    seen = events.matching(lambda e: e.kind == "offer")[0]
    assert seen.details["fault_added"] == [60] and seen.details["fault_omitted"] == []
    assert seen.details["vendor_class_echo"] == "PXEClient"


def test_match_limits_the_edit_to_the_clients_it_selects() -> None:
    fault = AddOption("dhcp4.offer", 60, b"PXEClient", match=Match(vendor_class="PXEClient"))
    proto, events = full(fault, policy=RulePolicy())
    plain = bytes(BOOTP(chaddr=MAC, xid=7) / DHCP(options=[("message-type", "discover"), "end"]))
    offer = run(proto, plain).replies()[0]
    assert offer.raw(60) is None and "fault_added" not in events.matching(
        lambda e: e.kind == "offer")[0].details
    assert not events.matching(lambda e: e.source == "fault")


def test_kind_glob_selects_offers_not_acks() -> None:
    proto, _ = full(OmitOption("dhcp4.offer", 67))
    transport = run(proto, request("discover", HTTP_VENDOR, 16))
    offer = transport.replies()[0]
    assert offer.raw(67) is None and offer.text(60) == "HTTPClient"


def test_bootp_reply_is_edited_as_dhcp4_bootreply() -> None:
    proto, events = full(AddOption("dhcp4.bootreply", 66, b"192.0.2.9"), policy=RulePolicy())
    reply = run(proto, request(None, PXE_VENDOR, 0)).replies()[0]
    assert reply.message_type is None and reply.text(66) == "192.0.2.9"
    assert events.matching(lambda e: e.kind == "bootreply")[0].details["fault_added"] == [66]


def test_proxy_offer_is_edited_too() -> None:
    events = EventLog()
    proto = ProxyDhcp4Protocol(SETTINGS, RulePolicy(), events,
                               FaultInjector((OmitOption("dhcp4.offer", 43),), events))
    offer = run(proto, request("discover", PXE_VENDOR, 7)).replies()[0]
    assert offer.yiaddr == IPv4Address(0) and offer.text(60) == "PXEClient"
    assert offer.raw(43) is None
    assert events.matching(lambda e: e.kind == "offer")[0].details["fault_omitted"] == [43]
