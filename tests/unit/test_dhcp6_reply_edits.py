"""DHCPv6 reply faults: OmitOption/AddOption edit Advertise and Reply (no sockets).

The client is OVMF's own HTTPv6 Solicit from fixtures/packets; our replies are
dissected with scapy, and the protocol runs on a fake transport.
"""

from __future__ import annotations

from ipaddress import IPv6Address, IPv6Network
from typing import Any

import pytest
from scapy.layers.dhcp6 import DHCP6_Advertise, DHCP6OptBootFileUrl, DHCP6OptVendorClass
from scapy.layers.inet import UDP
from scapy.utils import rdpcap

from pxelab.core.events import EventLog
from pxelab.core.paths import fixtures_dir
from pxelab.server.dhcp6 import codec
from pxelab.server.dhcp6.codec import (
    BootFileUrl,
    ClientId,
    Dhcp6Message,
    Duid,
    IaAddress,
    IaNa,
    MessageType,
    Preference,
    ServerId,
    UnknownOption,
    VendorClass,
)
from pxelab.server.dhcp6.leases import Lease6Pool
from pxelab.server.dhcp6.replies import Dhcp6Settings, edit_options
from pxelab.server.dhcp6.server import Dhcp6Protocol
from pxelab.server.faults import AddOption, DropPacket, Fault, FaultInjector, OmitOption, ReplyEdits
from pxelab.server.policy import Arch, Match, Rule, RulePolicy

pytestmark = pytest.mark.unit

SERVER = IPv6Address("2001:db8::1")
SETTINGS = Dhcp6Settings(SERVER, IPv6Network("2001:db8::/64"))
SERVER_DUID = Duid.link_layer(bytes.fromhex("02aabbccddee"))
ADDR = ("fe80::5054:ff:fe12:3456", 546, 0, 7)
POLICY = RulePolicy(rules=(Rule(Match(arch=(Arch.EFI_X64_HTTP,)), "http://{{ server }}/grubx64.efi",
                                name="http6"),))
HTTPCLIENT = VendorClass(343, (b"HTTPClient",))


def ovmf_http6_solicit() -> bytes:
    """OVMF's HTTPv6 Solicit as captured (options 1, 8, 3, 6, 62, 61 = 16, 16 HTTPClient)."""
    frames = rdpcap(str(fixtures_dir() / "packets" / "ovmf-http6-solicit.pcap"))
    return bytes(frames[0][UDP].payload)


def decoded(data: bytes) -> Dhcp6Message:
    msg = codec.decode(data)
    assert isinstance(msg, Dhcp6Message)
    return msg


class FakeTransport:
    def __init__(self) -> None:
        self.sent: list[bytes] = []

    def sendto(self, data: bytes, addr: tuple[Any, ...]) -> None:
        self.sent.append(data)

    def is_closing(self) -> bool:
        return False

    def last(self) -> Dhcp6Message:
        return decoded(self.sent[-1])


def protocol(*faults: Fault) -> tuple[Dhcp6Protocol, FakeTransport, EventLog]:
    events = EventLog()
    pool = Lease6Pool(IPv6Address("2001:db8::1:0"), IPv6Address("2001:db8::1:ff"), 3600)
    proto = Dhcp6Protocol(SETTINGS, SERVER_DUID, POLICY, pool, events,
                          faults=FaultInjector(faults, events))
    transport = FakeTransport()
    proto.connection_made(transport)  # type: ignore[arg-type]
    return proto, transport, events


def request_for(advertise: Dhcp6Message, solicit: Dhcp6Message) -> bytes:
    ia = advertise.get(IaNa)
    assert ia is not None
    options = (solicit.get(ClientId), advertise.get(ServerId),
               IaNa(ia.iaid, 0, 0, tuple(IaAddress(a.address) for a in ia.addresses)),
               solicit.get(VendorClass))
    return codec.encode(Dhcp6Message(MessageType.REQUEST, 0x0D0E0F,
                                     tuple(o for o in options if o is not None)))


# -- edit_options, pure ------------------------------------------------------------------------

def test_edit_options_omits_replaces_and_appends() -> None:
    reply = Dhcp6Message(MessageType.ADVERTISE, 7, (
        ServerId(SERVER_DUID), Preference(255), BootFileUrl("http://[2001:db8::1]/a.efi"),
        HTTPCLIENT))
    assert edit_options(reply, ReplyEdits()) == reply
    omitted = edit_options(reply, ReplyEdits(omit=frozenset({16, 7})))
    assert [o.code for o in omitted.options] == [2, 59]
    swapped = edit_options(reply, ReplyEdits(add=((59, b"http://[2001:db8::1]/b.efi"),)))
    assert swapped.options[2] == BootFileUrl("http://[2001:db8::1]/b.efi")  # in its place
    added = edit_options(reply, ReplyEdits(add=((60, b"\x00\x01"), (16, VendorClass(
        343, (b"PXEClient",)).body()))))
    assert added.options[3] == VendorClass(343, (b"PXEClient",))  # parsed: events see it
    assert added.options[-1] == UnknownOption(60, b"\x00\x01")
    # Bytes that do not fit the option's layout go out raw, as the fault asked.
    raw = edit_options(reply, ReplyEdits(add=((16, b"\x00\x01"),)))
    assert raw.options[3] == UnknownOption(16, b"\x00\x01")
    assert codec.encode(raw).endswith(b"\x00\x10\x00\x02\x00\x01")
    # Omit wins over add for the same code.
    both = edit_options(reply, ReplyEdits(omit=frozenset({16}), add=((16, b"x"),)))
    assert not both.has(16)


# -- the protocol -------------------------------------------------------------------------------

def test_omit_vendor_class_from_advertise_and_reply() -> None:
    proto, transport, events = protocol(OmitOption("dhcp6.*", 16))
    solicit = ovmf_http6_solicit()
    proto.datagram_received(solicit, ADDR)
    advertise = DHCP6_Advertise(transport.sent[-1])  # scapy's reading of what went out
    assert not advertise.haslayer(DHCP6OptVendorClass)
    assert advertise[DHCP6OptBootFileUrl].optdata == b"http://[2001:db8::1]/grubx64.efi"
    proto.datagram_received(request_for(transport.last(), decoded(solicit)), ADDR)
    assert transport.last().msg_type is MessageType.REPLY
    assert transport.last().get(VendorClass) is None
    sent = [e for e in events if e.source == "dhcp6" and e.kind in ("advertise", "reply")]
    assert [e.details["vendor_class_echo"] for e in sent] == [None, None]
    assert all(e.details["omitted_options"] == [16] for e in sent)
    fired = [e for e in events if e.source == "fault"]
    assert [e.request for e in fired] == ["dhcp6.advertise", "dhcp6.reply"]
    assert fired[0].reason == "omit option 16 from dhcp6.*"


def test_without_faults_the_echo_is_there_and_events_have_no_edit_keys() -> None:
    proto, transport, events = protocol()
    proto.datagram_received(ovmf_http6_solicit(), ADDR)
    assert transport.last().get(VendorClass) == HTTPCLIENT
    sent = events.matching(lambda e: e.kind == "advertise")[0]
    assert sent.details["vendor_class_echo"] == "HTTPClient"
    assert "omitted_options" not in sent.details


def test_add_option_only_to_the_kind_and_client_it_names() -> None:
    pxe = VendorClass(343, (b"PXEClient",)).body()
    proto, transport, events = protocol(
        AddOption("dhcp6.reply", 16, pxe),
        AddOption("dhcp6.advertise", 60, b"x", match=Match(mac="52:54:00:99:99:99")))
    solicit = ovmf_http6_solicit()
    proto.datagram_received(solicit, ADDR)
    advertise = transport.last()
    assert advertise.get(VendorClass) == HTTPCLIENT and not advertise.has(60)
    proto.datagram_received(request_for(advertise, decoded(solicit)), ADDR)
    assert transport.last().get(VendorClass) == VendorClass(343, (b"PXEClient",))
    reply = events.matching(lambda e: e.kind == "reply")[0]
    assert reply.details["vendor_class_echo"] == "PXEClient"
    assert reply.details["added_options"] == [16]


def test_dropped_release_gets_no_reply_and_a_fault_event() -> None:
    """The kind a Release is counted under is ``dhcp6.release`` (MessageType.label)."""
    proto, transport, events = protocol(DropPacket("dhcp6.release", count=0))
    solicit = decoded(ovmf_http6_solicit())
    proto.datagram_received(codec.encode(solicit), ADDR)
    advertise = transport.last()
    options = (solicit.get(ClientId), advertise.get(ServerId), advertise.get(IaNa))
    release = Dhcp6Message(MessageType.RELEASE, 9, tuple(o for o in options if o is not None))
    before = len(transport.sent)
    proto.datagram_received(codec.encode(release), ADDR)
    assert len(transport.sent) == before
    fired = events.matching(lambda e: e.source == "fault")
    assert [e.request for e in fired] == ["dhcp6.release #1"]
