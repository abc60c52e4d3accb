"""DHCPv4 codec, reply building, lease pool and protocol dispatch (no sockets).

Packets are crafted and dissected with scapy, an independent implementation,
so a symmetric mistake in our encoder and decoder cannot hide.
"""

from __future__ import annotations

import contextlib
import random
from ipaddress import IPv4Address, IPv4Network
from typing import Any

import pytest
from scapy.layers.dhcp import BOOTP, DHCP
from scapy.layers.inet import IP, UDP
from scapy.layers.l2 import Ether

from pxelab.dhcp4 import codec
from pxelab.dhcp4.codec import DhcpDecodeError, DhcpMessage, MessageType, Op, option
from pxelab.dhcp4.leases import LeasePool, LeaseState
from pxelab.dhcp4.server import (
    Dhcp4Protocol,
    Dhcp4Settings,
    build_reply,
    client_info,
    reply_destination,
)
from pxelab.events import EventLog
from pxelab.policy import BootDecision, BootPolicy, ClientInfo, RulePolicy

pytestmark = pytest.mark.unit

MAC = bytes.fromhex("525400123456")
SERVER = IPv4Address("192.0.2.1")
SETTINGS = Dhcp4Settings(SERVER, IPv4Network("192.0.2.0/24"), lease_seconds=3600)


def ipxe_discover(**extra: Any) -> bytes:
    """A DISCOVER shaped like the one iPXE's BIOS ROM sends (options 53 57 93 94 97 60 77 175)."""
    options: list[Any] = [
        ("message-type", "discover"), ("max_dhcp_size", 1472),
        (93, b"\x00\x00"), (94, b"\x01\x02\x01"), (97, b"\x00" + bytes(range(16))),
        ("vendor_class_id", b"PXEClient:Arch:00000:UNDI:002001"),
        (77, b"iPXE"), (175, b"\xb1\x05\x01\x10\xec\x10\x00"),
        ("param_req_list", [1, 3, 6, 7, 12, 15, 17, 26, 43, 60, 66, 67, 119, 128, 175]),
    ]
    options += [(k, v) for k, v in extra.items()]
    packet = BOOTP(chaddr=MAC, xid=0x1234ABCD, secs=4, flags=0) / DHCP(options=[*options, "end"])
    return bytes(packet)


# -- decoding what others encode -------------------------------------------------------------

def test_decode_scapy_ipxe_discover() -> None:
    msg = codec.decode(ipxe_discover())
    assert msg.op is Op.BOOTREQUEST
    assert msg.mac == "52:54:00:12:34:56"
    assert msg.xid == 0x1234ABCD and msg.secs == 4
    assert msg.message_type is MessageType.DISCOVER
    assert msg.get(93) == (0,)
    assert msg.get(57) == 1472
    assert msg.text(60) == "PXEClient:Arch:00000:UNDI:002001"
    assert msg.raw(77) == b"iPXE"
    assert msg.raw(97) == b"\x00" + bytes(range(16))
    assert 175 in msg.get(55)  # type: ignore[operator]


def test_client_info_from_ipxe_discover() -> None:
    client = client_info(codec.decode(ipxe_discover()), SERVER)
    assert client.mac == "52:54:00:12:34:56"
    assert client.arch == 0
    assert client.is_ipxe and client.ipxe_options
    assert client.user_classes == ("iPXE",)
    assert client.message_type == "DISCOVER"
    assert client.server_address == "192.0.2.1"


def test_user_classes_rfc3004_and_bare() -> None:
    assert codec.user_classes(b"iPXE") == ("iPXE",)
    assert codec.user_classes(b"\x04iPXE\x03foo") == ("iPXE", "foo")
    assert codec.user_classes(b"\x09iPXE") == ("\x09iPXE",)  # bad framing: one bare item


def test_decode_long_option_is_joined_rfc3396() -> None:
    head = bytes(BOOTP(chaddr=MAC, xid=1))[:236]
    body = codec.MAGIC_COOKIE + bytes((53, 1, 1, 43, 3)) + b"abc" + bytes((43, 2)) + b"de"
    msg = codec.decode(head + body + b"\xff")
    assert msg.raw(43) == b"abcde"


def test_decode_overloaded_file_field() -> None:
    file_options = bytes((67, 4)) + b"boot" + b"\xff"
    raw = bytes(BOOTP(chaddr=MAC, xid=1, file=file_options)
                / DHCP(options=[("message-type", "offer"), (52, b"\x01"), "end"]))
    msg = codec.decode(raw)
    assert msg.text(67) == "boot"
    assert msg.file == ""


@pytest.mark.parametrize("damage", [
    lambda b: b[:100],  # shorter than the header
    lambda b: b[:236] + b"\x00\x00\x00\x00" + b[240:],  # wrong magic cookie
    lambda b: b[:240] + bytes((60, 200)) + b"short",  # option overruns the packet
    lambda b: b[:240] + bytes((60,)),  # option without length byte
    lambda b: b"\x07" + b[1:],  # op 7
    lambda b: b[:2] + b"\x20" + b[3:],  # hlen 32
], ids=["truncated", "cookie", "overrun", "no-length", "op", "hlen"])
def test_malformed_raises_codec_error(damage: Any) -> None:
    with pytest.raises(DhcpDecodeError):
        codec.decode(damage(ipxe_discover()))


def test_fuzzed_input_only_raises_codec_error() -> None:
    rng = random.Random(4578)
    good = ipxe_discover()
    for _ in range(2000):
        data = bytearray(good[:rng.randrange(len(good) + 1)])
        for _ in range(rng.randrange(4)):
            if data:
                data[rng.randrange(len(data))] = rng.randrange(256)
        with contextlib.suppress(DhcpDecodeError):
            codec.decode(bytes(data))


# -- encoding what others decode -------------------------------------------------------------

def scapy_options(raw: bytes) -> dict[Any, Any]:
    packet = BOOTP(raw)
    return {opt[0]: opt[1] if len(opt) == 2 else opt[1:]
            for opt in packet[DHCP].options if isinstance(opt, tuple)}


def test_offer_dissected_by_scapy() -> None:
    request = codec.decode(ipxe_discover())
    client = client_info(request, SERVER)
    decision = RulePolicy().decide_dhcp4(client)
    reply = build_reply(request, MessageType.OFFER, SETTINGS, yiaddr=IPv4Address("192.0.2.100"),
                        decision=decision, client=client)
    raw = codec.encode(reply)
    assert len(raw) >= codec.BOOTP_MIN_SIZE
    packet = BOOTP(raw)
    assert packet.op == 2 and packet.xid == 0x1234ABCD
    assert packet.yiaddr == "192.0.2.100" and packet.siaddr == "192.0.2.1"
    assert packet.chaddr[:6] == MAC
    assert packet.file.rstrip(b"\x00") == b"pxelinux.0"
    options = scapy_options(raw)
    assert options["message-type"] == 2
    assert options["server_id"] == "192.0.2.1"
    assert options["subnet_mask"] == "255.255.255.0"
    assert options["lease_time"] == 3600
    assert options["boot-file-name"] == b"pxelinux.0"
    assert options[175] == b"\xb0\x01\x01"  # iPXE no-pxedhcp: skip the 2 s proxy wait
    assert "vendor_class_id" not in options  # a plain PXE answer never echoes PXEClient


def test_http_client_gets_httpclient_echo_and_url() -> None:
    raw = bytes(BOOTP(chaddr=MAC, xid=7) / DHCP(options=[
        ("message-type", "discover"), (93, b"\x00\x10"),
        ("vendor_class_id", b"HTTPClient:Arch:00016:UNDI:003000"), "end"]))
    request = codec.decode(raw)
    client = client_info(request, SERVER)
    decision = RulePolicy().decide_dhcp4(client)
    reply = build_reply(request, MessageType.OFFER, SETTINGS, yiaddr=IPv4Address("192.0.2.101"),
                        decision=decision, client=client)
    options = scapy_options(codec.encode(reply))
    assert options["vendor_class_id"] == b"HTTPClient"
    assert options["boot-file-name"] == b"http://192.0.2.1/bootx64.efi"
    assert 175 not in options  # not an iPXE client


def test_round_trip_with_long_option() -> None:
    msg = DhcpMessage(op=Op.BOOTREPLY, xid=99, chaddr=MAC, flags=0x8000,
                      yiaddr=IPv4Address("192.0.2.150"), file="x.efi",
                      options=(option(53, MessageType.ACK), option(67, "u" * 600),
                               option(3, [SERVER]), option(93, [7, 16])))
    raw = codec.encode(msg)
    assert codec.decode(raw) == msg
    assert msg.broadcast
    assert codec.decode(raw).get(93) == (7, 16)


def test_nak_and_destinations() -> None:
    request = codec.decode(ipxe_discover())
    nak = build_reply(request, MessageType.NAK, SETTINGS)
    assert nak.yiaddr == IPv4Address(0) and nak.file == ""
    assert nak.get(51) is None
    assert reply_destination(request, nak) == ("255.255.255.255", 68)
    renewing = DhcpMessage(op=Op.BOOTREQUEST, xid=1, chaddr=MAC,
                           ciaddr=IPv4Address("192.0.2.120"))
    ack = build_reply(renewing, MessageType.ACK, SETTINGS, yiaddr=IPv4Address("192.0.2.120"))
    assert reply_destination(renewing, ack) == ("192.0.2.120", 68)
    relayed = DhcpMessage(op=Op.BOOTREQUEST, xid=1, chaddr=MAC, giaddr=IPv4Address("192.0.2.9"))
    assert reply_destination(relayed, ack) == ("192.0.2.9", 67)


# -- lease pool ------------------------------------------------------------------------------

class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def pool(size: int = 3, clock: Clock | None = None) -> LeasePool:
    first = IPv4Address("192.0.2.100")
    return LeasePool(first, first + size - 1, 3600, clock=clock or Clock())


def test_pool_is_stable_per_mac() -> None:
    leases = pool()
    a = leases.offer("aa:00:00:00:00:01")
    b = leases.offer("aa:00:00:00:00:02")
    assert a != b
    assert leases.bind("aa:00:00:00:00:01", a) is not None  # type: ignore[arg-type]
    assert leases.release("aa:00:00:00:00:01")
    assert leases.offer("aa:00:00:00:00:01") == a  # same address after release


def test_pool_honours_requested_and_refuses_others() -> None:
    leases = pool()
    wanted = IPv4Address("192.0.2.102")
    assert leases.offer("aa:00:00:00:00:01", wanted) == wanted
    assert leases.bind("aa:00:00:00:00:02", wanted) is None  # held by another MAC
    assert leases.bind("aa:00:00:00:00:01", IPv4Address("192.0.2.100")) is None  # not its own
    assert leases.bind("aa:00:00:00:00:03", IPv4Address("192.0.2.50")) is None  # outside pool


def test_pool_exhaustion_and_reclaim_after_expiry() -> None:
    clock = Clock()
    leases = pool(2, clock)
    for n in (1, 2):
        mac = f"aa:00:00:00:00:0{n}"
        address = leases.offer(mac)
        assert address is not None
        leases.bind(mac, address)
    assert leases.offer("aa:00:00:00:00:03") is None
    clock.now += 4000  # both leases expired
    reclaimed = leases.offer("aa:00:00:00:00:03")
    assert reclaimed is not None
    assert leases.lookup("aa:00:00:00:00:03").state is LeaseState.OFFERED  # type: ignore[union-attr]


def test_pool_decline_excludes_address() -> None:
    leases = pool(2)
    bad = leases.offer("aa:00:00:00:00:01")
    assert bad is not None
    leases.decline("aa:00:00:00:00:01", bad)
    assert bad not in leases
    assert leases.offer("aa:00:00:00:00:01") != bad


# -- protocol dispatch with a fake transport -------------------------------------------------

class FakeTransport:
    def __init__(self) -> None:
        self.sent: list[tuple[bytes, tuple[str, int]]] = []

    def sendto(self, data: bytes, addr: tuple[str, int]) -> None:
        self.sent.append((data, addr))


def protocol(policy: BootPolicy | None = None) -> tuple[Dhcp4Protocol, FakeTransport, EventLog]:
    events = EventLog()
    proto = Dhcp4Protocol(SETTINGS, policy or RulePolicy(), pool(), events)
    transport = FakeTransport()
    proto.connection_made(transport)  # type: ignore[arg-type]
    return proto, transport, events


def test_dora_through_protocol() -> None:
    proto, transport, events = protocol()
    proto.datagram_received(ipxe_discover(), ("0.0.0.0", 68))
    offer = codec.decode(transport.sent[-1][0])
    assert transport.sent[-1][1] == ("255.255.255.255", 68)
    assert offer.message_type is MessageType.OFFER
    request = bytes(BOOTP(chaddr=MAC, xid=0x1234ABCD) / DHCP(options=[
        ("message-type", "request"), ("server_id", "192.0.2.1"),
        ("requested_addr", str(offer.yiaddr)), (77, b"iPXE"), "end"]))
    proto.datagram_received(request, ("0.0.0.0", 68))
    ack = codec.decode(transport.sent[-1][0])
    assert ack.message_type is MessageType.ACK and ack.yiaddr == offer.yiaddr
    kinds = [e.kind for e in events]
    assert kinds == ["offer", "ack"]
    offer_event = events.matching(lambda e: e.kind == "offer")[0]
    assert offer_event.client == "52:54:00:12:34:56"
    assert offer_event.reason == "arch 0 (BIOS) -> pxelinux.0"
    assert offer_event.details["file"] == "pxelinux.0"


def test_request_for_other_server_is_dropped_and_wrong_address_naked() -> None:
    proto, transport, events = protocol()
    proto.datagram_received(ipxe_discover(), ("0.0.0.0", 68))
    other = bytes(BOOTP(chaddr=MAC, xid=2) / DHCP(options=[
        ("message-type", "request"), ("server_id", "192.0.2.254"),
        ("requested_addr", "192.0.2.100"), "end"]))
    proto.datagram_received(other, ("0.0.0.0", 68))
    assert len(transport.sent) == 1
    assert events.matching(lambda e: e.kind == "drop")[0].reason.startswith("client chose")
    wrong = bytes(BOOTP(chaddr=MAC, xid=3) / DHCP(options=[
        ("message-type", "request"), ("requested_addr", "198.51.100.7"), "end"]))
    proto.datagram_received(wrong, ("0.0.0.0", 68))
    assert codec.decode(transport.sent[-1][0]).message_type is MessageType.NAK


def test_malformed_packet_is_a_drop_event_not_a_crash() -> None:
    proto, transport, events = protocol()
    proto.datagram_received(b"\x01\x02garbage", ("192.0.2.77", 68))
    assert transport.sent == []
    (event,) = list(events)
    assert (event.source, event.kind) == ("dhcp4", "drop")
    assert "malformed" in event.reason


def test_withheld_and_failing_policy() -> None:
    class Withhold(BootPolicy):
        def decide_dhcp4(self, client: ClientInfo) -> BootDecision:
            return BootDecision.withheld(f"test withholds {client.mac}")

    class Broken(BootPolicy):
        def decide_dhcp4(self, client: ClientInfo) -> BootDecision:
            raise RuntimeError("policy bug")

    proto, transport, events = protocol(Withhold())
    proto.datagram_received(ipxe_discover(), ("0.0.0.0", 68))
    assert transport.sent == []
    assert [e.kind for e in events] == ["withheld"]
    proto, transport, events = protocol(Broken())
    proto.datagram_received(ipxe_discover(), ("0.0.0.0", 68))
    assert transport.sent == []
    assert [e.kind for e in events] == ["error"]
    assert "policy bug" in events.matching(lambda e: True)[0].reason


def test_scapy_sees_a_whole_frame() -> None:
    """Our bytes inside an Ethernet/IP/UDP frame still dissect as DHCP (sanity for captures)."""
    reply = build_reply(codec.decode(ipxe_discover()), MessageType.ACK, SETTINGS,
                        yiaddr=IPv4Address("192.0.2.100"))
    frame = Ether(bytes(Ether() / IP() / UDP(sport=67, dport=68) / codec.encode(reply)))
    assert frame.haslayer(DHCP)
    assert frame[BOOTP].yiaddr == "192.0.2.100"
