"""DHCPv4 lease pool and protocol objects (full and proxy) with a fake transport.

Requests are crafted with scapy; the protocol runs without sockets, so every
branch (RFC 2131 states, BOOTP, faults, bad input, proxyDHCP) is quick to reach.
"""

from __future__ import annotations

import asyncio
import math
from ipaddress import IPv4Address, IPv4Network
from typing import Any

import pytest
from scapy.layers.dhcp import BOOTP, DHCP

from pxelab.core.errors import ConfigError
from pxelab.core.events import FIELD_KEYS, EventLog
from pxelab.server.dhcp4 import codec, pxe
from pxelab.server.dhcp4.codec import MessageType
from pxelab.server.dhcp4.leases import FOREVER, LeasePool, LeaseState
from pxelab.server.dhcp4.proxy import PXE_PORT, ProxyDhcp4Protocol
from pxelab.server.dhcp4.server import Dhcp4Protocol, Dhcp4Settings, reserve_fixed
from pxelab.server.faults import DelayPacket, DropPacket, Fault, FaultInjector, WithholdOffers
from pxelab.server.policy import BootDecision, BootPolicy, ClientInfo, HostRule, Match, RulePolicy

pytestmark = pytest.mark.unit

MAC = bytes.fromhex("525400123456")
SERVER = IPv4Address("192.0.2.1")
SETTINGS = Dhcp4Settings(SERVER, IPv4Network("192.0.2.0/24"), lease_seconds=3600)
CLIENT = ("0.0.0.0", 68)


def packet(*options: Any, mac: bytes = MAC, **fields: Any) -> bytes:
    fields.setdefault("xid", 0x1234ABCD)
    return bytes(BOOTP(chaddr=mac, **fields) / DHCP(options=[*options, "end"]))


def ipxe_discover(**fields: Any) -> bytes:
    return packet(("message-type", "discover"), (93, b"\x00\x00"), (77, b"iPXE"),
                  ("vendor_class_id", b"PXEClient:Arch:00000:UNDI:002001"),
                  (175, b"\xb1\x05\x01\x10\xec\x10\x00"), **fields)


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
        self.arrived: asyncio.Event | None = None  # set on each send, for delay tests

    def sendto(self, data: bytes, addr: tuple[str, int]) -> None:
        self.sent.append((data, addr))
        if self.arrived is not None:
            self.arrived.set()

    def last(self) -> codec.DhcpMessage:
        return codec.decode(self.sent[-1][0])


def protocol(policy: BootPolicy | None = None, leases: LeasePool | None = None,
             *faults: Fault) -> tuple[Dhcp4Protocol, FakeTransport, EventLog]:
    events = EventLog()
    policy = policy or RulePolicy()
    injector = FaultInjector(tuple(faults), events)
    proto = Dhcp4Protocol(SETTINGS, policy, leases or pool(), events, injector)
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
    assert offer_event.file == "pxelinux.0" and offer_event.mac == "52:54:00:12:34:56"
    assert all(e.mac == e.client and not set(FIELD_KEYS) & e.details.keys() for e in events)


def test_request_for_other_server_is_ignored_and_wrong_address_naked() -> None:
    proto, transport, events = protocol()
    proto.datagram_received(ipxe_discover(), ("0.0.0.0", 68))
    other = bytes(BOOTP(chaddr=MAC, xid=2) / DHCP(options=[
        ("message-type", "request"), ("server_id", "192.0.2.254"),
        ("requested_addr", "192.0.2.100"), "end"]))
    proto.datagram_received(other, ("0.0.0.0", 68))
    assert len(transport.sent) == 1
    assert events.matching(lambda e: e.kind == "ignore")[0].reason.startswith("client chose")
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



# -- fixed addresses and BOOTP leases --------------------------------------------------------

FIXED_MAC = "aa:00:00:00:00:0f"


def test_fixed_address_outside_the_range_is_only_its_macs() -> None:
    leases = pool()
    fixed = IPv4Address("192.0.2.77")
    leases.reserve({FIXED_MAC: fixed})
    assert leases.offer(FIXED_MAC, IPv4Address("192.0.2.101")) == fixed
    assert leases.bind(FIXED_MAC, IPv4Address("192.0.2.101")) is None
    assert leases.bind(FIXED_MAC, fixed) is not None
    assert leases.bind("aa:00:00:00:00:01", fixed) is None
    assert leases.knows(fixed) and fixed not in leases


def test_fixed_address_inside_the_range_is_skipped_for_others() -> None:
    leases = pool(2)
    leases.reserve({FIXED_MAC: IPv4Address("192.0.2.100")})
    assert leases.offer("aa:00:00:00:00:01") == IPv4Address("192.0.2.101")
    assert leases.offer("aa:00:00:00:00:02", IPv4Address("192.0.2.100")) is None  # full
    with pytest.raises(ValueError, match="both"):
        leases.reserve({"aa:00:00:00:00:03": IPv4Address("192.0.2.100")})


def test_declined_fixed_address_leaves_its_mac_without_one() -> None:
    leases = pool()
    leases.reserve({FIXED_MAC: IPv4Address("192.0.2.77")})
    assert leases.decline(FIXED_MAC, IPv4Address("192.0.2.77"))
    assert leases.offer(FIXED_MAC) is None
    assert not leases.decline(FIXED_MAC, IPv4Address("198.51.100.1"))  # not ours: no-op


def test_bootp_binding_never_expires() -> None:
    clock = Clock()
    leases = pool(clock=clock)
    address = leases.offer("aa:00:00:00:00:01")
    assert address is not None
    lease = leases.bind("aa:00:00:00:00:01", address, FOREVER)
    assert lease is not None and math.isinf(lease.expires)
    clock.now += 10 ** 9
    assert leases.lookup("aa:00:00:00:00:01").state is LeaseState.BOUND  # type: ignore[union-attr]


def test_reserve_fixed_checks_the_network() -> None:
    with pytest.raises(ConfigError, match="not a usable host address"):
        reserve_fixed(pool(), {FIXED_MAC: IPv4Address("198.51.100.7")}, SETTINGS)
    with pytest.raises(ConfigError, match="not a usable host address"):
        reserve_fixed(pool(), {FIXED_MAC: SERVER}, SETTINGS)
    leases = pool()
    leases.reserve({"aa:00:00:00:00:01": IPv4Address("192.0.2.9")})
    with pytest.raises(ConfigError, match="its own address"):
        reserve_fixed(leases, {FIXED_MAC: IPv4Address("192.0.2.9")}, SETTINGS)


def test_host_rule_address_reaches_the_offer() -> None:
    policy = RulePolicy(hosts=(HostRule("52:54:00:12:34:56", address=IPv4Address("192.0.2.77")),))
    assert policy.fixed_addresses == {"52:54:00:12:34:56": IPv4Address("192.0.2.77")}
    leases = pool()
    reserve_fixed(leases, policy.fixed_addresses, SETTINGS)
    proto, transport, _events = protocol(policy, leases)
    proto.datagram_received(ipxe_discover(), CLIENT)
    assert transport.last().yiaddr == IPv4Address("192.0.2.77")
    with pytest.raises(ConfigError, match="not an IPv4 address"):
        HostRule("52:54:00:12:34:56", address="nonsense")  # type: ignore[arg-type]


# -- RFC 2131 states, BOOTP, INFORM, DECLINE, RELEASE -----------------------------------------

def dora(proto: Dhcp4Protocol, transport: FakeTransport, mac: bytes = MAC) -> IPv4Address:
    proto.datagram_received(packet(("message-type", "discover"), mac=mac, xid=1), CLIENT)
    offered = transport.last().yiaddr
    proto.datagram_received(packet(("message-type", "request"), ("server_id", str(SERVER)),
                                   ("requested_addr", str(offered)), mac=mac, xid=2), CLIENT)
    assert transport.last().message_type is MessageType.ACK
    return offered


def test_renewing_is_acked_to_ciaddr_and_init_reboot_of_a_stranger_is_silent() -> None:
    proto, transport, events = protocol()
    address = dora(proto, transport)
    proto.datagram_received(packet(("message-type", "request"), ciaddr=str(address)),
                            (str(address), 68))
    assert transport.last().message_type is MessageType.ACK
    assert transport.sent[-1][1] == (str(address), 68)
    sent = len(transport.sent)
    stranger = bytes.fromhex("525400999999")
    proto.datagram_received(packet(("message-type", "request"),
                                   ("requested_addr", "192.0.2.60"), mac=stranger), CLIENT)
    assert len(transport.sent) == sent
    assert "INIT-REBOOT" in events.matching(lambda e: e.kind == "ignore")[-1].reason


def test_nak_names_the_reason_in_option_56() -> None:
    proto, transport, events = protocol()
    dora(proto, transport)
    proto.datagram_received(packet(("message-type", "request"), ("server_id", str(SERVER)),
                                   ("requested_addr", "192.0.2.102")), CLIENT)
    nak = transport.last()
    assert nak.message_type is MessageType.NAK
    assert nak.text(56) == "192.0.2.102 is not available to 52:54:00:12:34:56 (it holds " \
                           "192.0.2.100)"
    assert events.matching(lambda e: e.kind == "nak")[0].reason == nak.text(56)


def test_decline_excludes_the_address_and_the_next_offer_differs() -> None:
    proto, transport, events = protocol()
    address = dora(proto, transport)
    proto.datagram_received(packet(("message-type", "decline"), ("server_id", str(SERVER)),
                                   ("requested_addr", str(address))), CLIENT)
    declined = events.matching(lambda e: e.kind == "decline")[0]
    assert declined.reason.endswith("excluded from the pool")
    proto.datagram_received(packet(("message-type", "discover")), CLIENT)
    assert transport.last().yiaddr not in (address, IPv4Address(0))


def test_decline_and_release_for_another_server_are_ignored() -> None:
    proto, transport, events = protocol()
    address = dora(proto, transport)
    for kind in ("decline", "release"):
        proto.datagram_received(packet(("message-type", kind), ("server_id", "192.0.2.254"),
                                       ("requested_addr", str(address)),
                                       ciaddr=str(address)), CLIENT)
    assert [e.kind for e in events][-2:] == ["ignore", "ignore"]
    assert proto.leases.lookup("52:54:00:12:34:56").state is LeaseState.BOUND  # type: ignore


def test_release_frees_the_lease() -> None:
    proto, transport, events = protocol()
    address = dora(proto, transport)
    proto.datagram_received(packet(("message-type", "release"), ("server_id", str(SERVER)),
                                   ciaddr=str(address)), CLIENT)
    release = events.matching(lambda e: e.kind == "release")[0]
    assert release.reason == "lease freed" and release.details["address"] == str(address)


def test_inform_is_answered_without_a_lease() -> None:
    proto, transport, events = protocol()
    proto.datagram_received(packet(("message-type", "inform"), ciaddr="192.0.2.50"),
                            ("192.0.2.50", 68))
    ack = transport.last()
    assert ack.message_type is MessageType.ACK and ack.get(51) is None
    assert transport.sent[-1][1] == ("192.0.2.50", 68)
    assert events.matching(lambda e: e.kind == "inform")[0].file == "pxelinux.0"


def test_bootp_client_gets_a_permanent_address_and_the_boot_file() -> None:
    proto, transport, events = protocol()
    proto.datagram_received(packet(), CLIENT)
    reply = transport.last()
    assert reply.message_type is None and reply.yiaddr == IPv4Address("192.0.2.100")
    assert reply.file == "pxelinux.0" and reply.siaddr == SERVER
    lease = proto.leases.lookup("52:54:00:12:34:56")
    assert lease is not None and math.isinf(lease.expires)
    event = events.matching(lambda e: e.kind == "bootreply")[0]
    assert event.reason.endswith("BOOTP: permanent lease")
    assert event.answer.startswith("BOOTREPLY yiaddr=192.0.2.100")


def test_min_secs_event_reads_offer_withheld_until_secs_rises() -> None:
    proto, transport, events = protocol(RulePolicy(min_secs=2))
    for secs in (0, 1):
        proto.datagram_received(packet(("message-type", "discover"), secs=secs), CLIENT)
    assert transport.sent == []
    assert [e.reason for e in events] == ["OFFER withheld: secs=0 < min_secs=2",
                                          "OFFER withheld: secs=1 < min_secs=2"]
    proto.datagram_received(packet(("message-type", "discover"), secs=2), CLIENT)
    assert transport.last().message_type is MessageType.OFFER


# -- bad input -------------------------------------------------------------------------------

@pytest.mark.parametrize(("data", "reason"), [
    (packet(("message-type", "discover"), hlen=16), "htype 1 hlen 16: only Ethernet"),
    (packet(("message-type", "discover"), htype=6), "htype 6 hlen 6: only Ethernet"),
    (packet(("message-type", "discover"), mac=bytes(6)), "chaddr is all zeros"),
    (packet(("message-type", "discover"), mac=b"\xff" * 6), "chaddr ff:ff:ff:ff:ff:ff is a multi"),
    (packet(("message-type", "discover"), op=2), "BOOTREPLY sent to the server port"),
    (packet(("message-type", "discover"), giaddr="198.51.100.1"), "relayed from 198.51.100.1"),
    (packet(("message-type", "discover")) + b"\x00" * 5000, "oversized: 5"),
    (packet(("message-type", "discover"))[:200], "malformed: message is 200 bytes"),
    (packet(("message-type", "discover"), (50, b"\x01\x02")),
     "bad option: option 50 (requested_ip): expected 4 bytes, got 2"),
    (packet((53, b"\x01\x01")), "bad option: option 53 (message_type)"),
    (packet((53, b"\x09")), "message type 9 (unknown) is not a message a DHCP server answers"),
    (packet(("message-type", "offer")), "OFFER is not a message a DHCP server answers"),
], ids=["hlen", "htype", "zero-mac", "broadcast-mac", "bootreply", "relay", "oversized",
        "truncated", "option-50", "option-53-length", "type-9", "offer"])
def test_bad_input_is_a_named_drop(data: bytes, reason: str) -> None:
    proto, transport, events = protocol()
    proto.datagram_received(data, CLIENT)
    assert transport.sent == []
    (event,) = list(events)
    assert (event.source, event.kind) == ("dhcp4", "drop")
    assert event.reason.startswith(reason), event.reason
    proto.datagram_received(ipxe_discover(), CLIENT)  # and the server keeps serving
    assert transport.last().message_type is MessageType.OFFER


def test_unreadable_optional_option_is_left_out_not_fatal() -> None:
    proto, transport, events = protocol()
    proto.datagram_received(packet(("message-type", "discover"), (97, b"\x00" * 16),
                                   ("vendor_class_id", b"PXEClient:Arch:00000:UNDI:002001")),
                            CLIENT)
    offer = transport.last()
    assert offer.message_type is MessageType.OFFER and offer.raw(97) is None
    (bad,) = events.matching(lambda e: e.kind == "bad_option")
    assert bad.reason.startswith("served without option 97 (client_uuid): expected 17 bytes")


# -- faults ----------------------------------------------------------------------------------

def test_dropped_offer_then_the_next_discover_is_answered() -> None:
    proto, transport, events = protocol(None, None, DropPacket("dhcp4.offer"))
    proto.datagram_received(ipxe_discover(), CLIENT)
    assert transport.sent == []
    assert [(e.source, e.kind) for e in events] == [("fault", "injected")]
    proto.datagram_received(ipxe_discover(), CLIENT)
    assert transport.last().message_type is MessageType.OFFER


def test_dropped_request_is_not_handled() -> None:
    proto, transport, events = protocol(None, None, DropPacket("dhcp4.discover", count=2))
    for _ in range(2):
        proto.datagram_received(ipxe_discover(), CLIENT)
    assert transport.sent == []
    assert [e.request for e in events] == ["dhcp4.discover #1", "dhcp4.discover #2"]


def test_withhold_fault_is_a_withheld_event() -> None:
    fault = WithholdOffers(Match(user_class="iPXE"), reason="no iPXE today")
    proto, transport, events = protocol(None, None, fault)
    proto.datagram_received(ipxe_discover(), CLIENT)
    assert transport.sent == []
    assert events.matching(lambda e: e.kind == "withheld")[0].reason == "fault: no iPXE today"


@pytest.mark.parametrize("kind", ["dhcp4.discover", "dhcp4.offer"])
def test_delayed_packet_is_answered_later(kind: str) -> None:
    async def run() -> tuple[float, FakeTransport, EventLog]:
        proto, transport, events = protocol(None, None, DelayPacket(kind, 0.05))
        transport.arrived = asyncio.Event()
        loop = asyncio.get_running_loop()
        start = loop.time()
        proto.datagram_received(ipxe_discover(), CLIENT)
        assert transport.sent == []
        await asyncio.wait_for(transport.arrived.wait(), 2)
        return loop.time() - start, transport, events

    elapsed, transport, events = asyncio.run(run())
    assert elapsed >= 0.05
    assert transport.last().message_type is MessageType.OFFER
    offer = events.matching(lambda e: e.kind == "offer")[0]
    assert offer.details.get("delayed") == (0.05 if kind == "dhcp4.offer" else None)


# -- proxyDHCP -------------------------------------------------------------------------------

def proxy(port: int = 67, policy: BootPolicy | None = None
          ) -> tuple[ProxyDhcp4Protocol, FakeTransport, EventLog]:
    events = EventLog()
    proto = ProxyDhcp4Protocol(SETTINGS, policy or RulePolicy(), events, port=port)
    transport = FakeTransport()
    proto.connection_made(transport)  # type: ignore[arg-type]
    return proto, transport, events


def pxe_packet(kind: str, *options: Any, **fields: Any) -> bytes:
    return packet(("message-type", kind), (93, b"\x00\x07"), (97, b"\x00" + bytes(16)),
                  ("vendor_class_id", b"PXEClient:Arch:00007:UNDI:003000"), *options, **fields)


def test_proxy_offer_on_67_and_ack_on_4011() -> None:
    proto, transport, events = proxy()
    proto.datagram_received(pxe_packet("discover"), CLIENT)
    offer = transport.last()
    assert offer.yiaddr == IPv4Address(0) and offer.file == "bootx64.efi"
    assert pxe.decode_pxe(offer.raw(43) or b"").discovery_control == 8
    (event,) = list(events)
    assert event.kind == "offer" and event.answer.startswith("proxy OFFER yiaddr=0.0.0.0")
    assert event.details["proxy"] is True
    boot, transport, events = proxy(PXE_PORT)
    boot.datagram_received(pxe_packet("request", ciaddr="192.0.2.50"), ("192.0.2.50", 4011))
    ack = transport.last()
    assert ack.message_type is MessageType.ACK and ack.yiaddr == IPv4Address(0)
    assert transport.sent[-1][1] == ("192.0.2.50", 4011)
    assert next(iter(events)).answer.startswith("proxy ACK")


def test_proxy_ignores_non_pxe_clients_and_requests_on_67() -> None:
    proto, transport, events = proxy()
    proto.datagram_received(packet(("message-type", "discover"),
                                   ("vendor_class_id", b"udhcp 1.36.1")), CLIENT)
    proto.datagram_received(pxe_packet("request", ("server_id", "192.0.2.254")), CLIENT)
    proto.datagram_received(packet(), CLIENT)  # BOOTP
    assert transport.sent == []
    reasons = [e.reason for e in events if e.kind == "ignore"]
    assert reasons[0] == ("proxy mode answers PXE clients only (option 60 PXEClient or "
                          "HTTPClient); this one sent udhcp 1.36.1")
    assert reasons[1].startswith("proxy mode: REQUEST is for the DHCP server")
    assert reasons[2].startswith("proxy mode: BOOTP is for the DHCP server")


def test_pxe_boot_server_accepts_guid_chaddr_and_refuses_discover() -> None:
    boot, transport, events = proxy(PXE_PORT)
    guid = bytes(range(1, 17))
    boot.datagram_received(pxe_packet("request", ciaddr="192.0.2.50", mac=guid, hlen=16),
                           ("192.0.2.50", 4011))
    assert transport.last().chaddr == guid
    boot.datagram_received(pxe_packet("discover"), CLIENT)
    assert list(events)[-1].reason == "DISCOVER is not a message a PXE boot server answers"


def test_proxy_min_secs_and_address_only_policies_withhold() -> None:
    proto, transport, events = proxy(policy=RulePolicy(min_secs=3))
    proto.datagram_received(pxe_packet("discover", secs=1), CLIENT)
    assert [e.reason for e in events] == ["OFFER withheld: secs=1 < min_secs=3"]
    proto, transport, events = proxy(policy=RulePolicy(arch_rules=()))
    proto.datagram_received(pxe_packet("discover"), CLIENT)
    assert transport.sent == []
    assert next(iter(events)).reason.startswith("proxy mode: no boot file for this client")


def test_proxy_rejects_other_ports() -> None:
    with pytest.raises(ValueError, match="67 or 4011"):
        ProxyDhcp4Protocol(SETTINGS, RulePolicy(), EventLog(), port=68)


def test_decision_type_is_used_unchanged() -> None:
    """A policy may echo PXEClient in full mode on purpose (a BINL fault scenario)."""
    class Binl(BootPolicy):
        def decide_dhcp4(self, client: ClientInfo) -> BootDecision:
            return BootDecision(boot_file="x.efi", vendor_class="PXEClient", reason="binl")

    proto, transport, _ = protocol(Binl())
    proto.datagram_received(ipxe_discover(), CLIENT)
    assert transport.last().text(60) == "PXEClient"
