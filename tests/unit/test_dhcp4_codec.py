"""DHCPv4 codec, PXE option 43 and reply building (pure functions, no sockets).

Packets are crafted and dissected with scapy, an independent implementation,
so a symmetric mistake in our encoder and decoder cannot hide. The lease pool
and the protocol objects are in test_dhcp4_protocol.py.
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

from pxelab.server.dhcp4 import codec, pxe
from pxelab.server.dhcp4.codec import DhcpDecodeError, DhcpMessage, MessageType, Op, option
from pxelab.server.dhcp4.replies import (
    Dhcp4Settings,
    build_bootp_reply,
    build_proxy_reply,
    build_reply,
    client_info,
    fit_to_size,
    max_reply_size,
    reply_destination,
)
from pxelab.server.policy import Match, Rule, RulePolicy

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



def test_scapy_sees_a_whole_frame() -> None:
    """Our bytes inside an Ethernet/IP/UDP frame still dissect as DHCP (sanity for captures)."""
    reply = build_reply(codec.decode(ipxe_discover()), MessageType.ACK, SETTINGS,
                        yiaddr=IPv4Address("192.0.2.100"))
    frame = Ether(bytes(Ether() / IP() / UDP(sport=67, dport=68) / codec.encode(reply)))
    assert frame.haslayer(DHCP)
    assert frame[BOOTP].yiaddr == "192.0.2.100"


# -- option layouts: bad lengths, user class, overload, PXELINUX -----------------------------

def request(*options: Any, **fields: Any) -> DhcpMessage:
    """A scapy-built request decoded by our codec."""
    fields.setdefault("chaddr", MAC)
    fields.setdefault("xid", 77)
    return codec.decode(bytes(BOOTP(**fields) / DHCP(options=[*options, "end"])))


def test_option_problems_name_the_option_and_the_rfc() -> None:
    msg = request(("message-type", "discover"), (50, b"\xc0\x00\x02"), (97, b"\x00" * 16),
                  (61, b"\x01"), (93, b"\x00"), (94, b"\x01\x02"))
    problems = dict(codec.option_problems(msg))
    assert problems[50] == ("option 50 (requested_ip): expected 4 bytes, got 3 "
                            "(RFC 2132 9.1)")
    assert problems[97].startswith("option 97 (client_uuid): expected 17 bytes, got 16")
    assert problems[61].startswith("option 61 (client_id): at least 2 bytes, got 1")
    assert "not a multiple of 2" in problems[93]
    assert 94 in problems and 53 not in problems
    assert codec.option_problems(codec.decode(ipxe_discover())) == ()


def test_option_53_of_two_bytes_is_a_problem_and_no_message_type() -> None:
    msg = request((53, b"\x01\x01"))
    assert msg.message_type is None
    assert [code for code, _ in codec.option_problems(msg)] == [53]


@pytest.mark.parametrize(("items", "bare", "wire"), [
    (("iPXE",), True, b"iPXE"),
    (("iPXE",), False, b"\x04iPXE"),
    (("iPXE", "lab-x"), False, b"\x04iPXE\x05lab-x"),
])
def test_user_class_forms_round_trip(items: tuple[str, ...], bare: bool, wire: bytes) -> None:
    assert codec.encode_user_classes(items, bare=bare) == wire
    assert codec.user_classes(wire) == items
    msg = request(("message-type", "discover"), ("user_class", wire))
    assert client_info(msg, SERVER).user_classes == items
    assert client_info(msg, SERVER).is_ipxe


def test_user_class_rejects_what_rfc3004_cannot_carry() -> None:
    with pytest.raises(ValueError, match=r"1\.\.255"):
        codec.encode_user_classes(["", "x"])
    with pytest.raises(ValueError, match="exactly one"):
        codec.encode_user_classes(["a", "b"], bare=True)
    assert codec.user_classes(b"") == ()


def test_overload_sname_and_both_fields_join_in_rfc3396_order() -> None:
    # Option 15 is split over all three areas: options, then file, then sname.
    file_area = bytes((15, 3)) + b"lab" + bytes((67, 4)) + b"boot" + bytes((52, 1, 3)) + b"\xff"
    sname_area = bytes((15, 4)) + b".tst" + b"\xff"
    raw = bytes(BOOTP(chaddr=MAC, xid=5, file=file_area, sname=sname_area)
                / DHCP(options=[("message-type", "offer"), (52, b"\x03"), (15, b"my."), "end"]))
    msg = codec.decode(raw)
    assert msg.text(15) == "my.lab.tst"
    assert msg.text(67) == "boot"
    assert msg.file == "" and msg.sname == ""
    assert msg.raw(52) == b"\x03"  # the stray 52 inside the file area is not joined in
    only_sname = codec.decode(bytes(
        BOOTP(chaddr=MAC, xid=5, file=b"pxelinux.0", sname=bytes((66, 3)) + b"tft" + b"\xff")
        / DHCP(options=[("message-type", "offer"), (52, b"\x02"), "end"])))
    assert only_sname.text(66) == "tft" and only_sname.file == "pxelinux.0"


def test_overload_area_that_overruns_is_a_decode_error() -> None:
    with pytest.raises(DhcpDecodeError, match="file field"):
        codec.decode(bytes(BOOTP(chaddr=MAC, xid=5, file=bytes((67, 200)) + b"x")
                           / DHCP(options=[("message-type", "offer"), (52, b"\x01"), "end"])))


def test_pxelinux_options_209_210_are_strings_scapy_reads() -> None:
    msg = DhcpMessage(op=Op.BOOTREPLY, xid=1, chaddr=MAC, options=(
        option(53, MessageType.ACK), option(209, "pxelinux.cfg/lab"), option(210, "/srv/tftp/"),
        option(211, 30)))
    raw = codec.encode(msg)
    options = scapy_options(raw)
    assert options["pxelinux_configuration_file"] == b"pxelinux.cfg/lab"
    assert options["pxelinux_path_prefix"] == b"/srv/tftp/"
    back = codec.decode(raw)
    assert back.text(209) == "pxelinux.cfg/lab" and back.get(211) == 30


def test_bootp_request_has_no_message_type() -> None:
    msg = codec.decode(bytes(BOOTP(chaddr=MAC, xid=9) / DHCP(options=["end"])))
    assert msg.message_type is None and msg.raw(53) is None
    assert client_info(msg, SERVER).message_type == "BOOTP"


# -- option 43: PXE vendor sub-options -------------------------------------------------------

def test_pxe_use_boot_file_is_dnsmasq_and_pixiecore_bytes() -> None:
    raw = pxe.encode_pxe(pxe.PxeOptions.use_boot_file())
    assert raw == b"\x06\x01\x08\xff"
    assert pxe.decode_pxe(raw).discovery_control is pxe.DiscoveryControl.USE_BOOT_FILE


def test_pxe_menu_servers_prompt_round_trip() -> None:
    options = pxe.PxeOptions(
        discovery_control=pxe.DiscoveryControl.NO_MULTICAST | pxe.DiscoveryControl.NO_BROADCAST,
        boot_servers=(pxe.BootServers(0x8000, (IPv4Address("192.0.2.1"),
                                               IPv4Address("192.0.2.2"))),),
        menu=(pxe.MenuItem(0, "Local boot"), pxe.MenuItem(0x8000, "Install")),
        prompt=pxe.MenuPrompt(10, "Press F8"),
        boot_item=pxe.BootItem(0x8000, 0),
        other=((1, IPv4Address("224.0.1.2").packed),))
    raw = pxe.encode_pxe(options)
    assert pxe.decode_pxe(raw) == options
    # The same bytes as scapy's generic option walker sees them.
    assert raw[:3] == b"\x06\x01\x03"
    assert raw[3:6] == b"\x08\x0b\x80" and raw[-1] == 255


def test_pxe_decode_skips_pads_and_keeps_unknown_suboptions() -> None:
    decoded = pxe.decode_pxe(b"\x00\x00\x06\x01\x0b\x0c\x02\xab\xcd\xff\x09garbage")
    assert decoded.discovery_control == pxe.DiscoveryControl(0x0B)
    assert decoded.other == ((12, b"\xab\xcd"),)


@pytest.mark.parametrize("raw", [
    b"\x06\x02\x08",  # overruns
    b"\x06\x02\x08\x00",  # discovery control of 2 bytes
    b"\x08\x04\x80\x00\x02\x01",  # boot server claims 2 addresses, has none
    b"\x09\x04\x00\x00\x05a",  # menu text shorter than its length
    b"\x0a\x00",  # prompt without timeout
    b"\x47\x03\x00\x00\x00",  # boot item of 3 bytes
], ids=["overrun", "control-size", "servers", "menu", "prompt", "item"])
def test_pxe_malformed_raises(raw: bytes) -> None:
    with pytest.raises(DhcpDecodeError, match="option 43"):
        pxe.decode_pxe(raw)


def test_pxe_suboption_too_long_to_encode() -> None:
    with pytest.raises(ValueError, match="255"):
        pxe.encode_pxe(pxe.PxeOptions(prompt=pxe.MenuPrompt(0, "x" * 300)))


# -- replies ---------------------------------------------------------------------------------

UUID = b"\x00" + bytes(range(16))


def uefi_pxe_discover(**extra: Any) -> DhcpMessage:
    """What OVMF's PXE stack sends: 93=7, 94, 97, PXEClient vendor class, parameter list."""
    return request(("message-type", "discover"), (93, b"\x00\x07"), (94, b"\x01\x03\x00"),
                   (97, UUID), ("vendor_class_id", b"PXEClient:Arch:00007:UNDI:003000"),
                   ("param_req_list", [1, 2, 3, 4, 5, 6, 12, 13, 15, 17, 18, 22, 23, 28, 40, 41,
                                       42, 43, 50, 51, 54, 58, 59, 60, 66, 67, 97]),
                   *extra.items())


def offer_for(msg: DhcpMessage, policy: RulePolicy | None = None,
              settings: Dhcp4Settings = SETTINGS) -> DhcpMessage:
    client = client_info(msg, SERVER)
    decision = (policy or RulePolicy()).decide_dhcp4(client)
    return build_reply(msg, MessageType.OFFER, settings, yiaddr=IPv4Address("192.0.2.100"),
                       decision=decision, client=client)


def test_full_mode_uefi_pxe_offer_never_echoes_pxeclient_but_echoes_uuid() -> None:
    offer = offer_for(uefi_pxe_discover())
    assert offer.raw(60) is None and offer.raw(43) is None  # no PXE10/BINL offer
    assert offer.raw(97) == UUID
    assert offer.siaddr == SERVER and offer.file == "bootx64.efi"
    assert offer.text(66) == "192.0.2.1"  # EDK2 lists 66 in option 55


def test_parameter_list_decides_router_dns_and_tftp_server() -> None:
    settings = Dhcp4Settings(SERVER, IPv4Network("192.0.2.0/24"),
                             router=IPv4Address("192.0.2.254"),
                             dns=(IPv4Address("192.0.2.53"), IPv4Address("192.0.2.54")))
    asked = offer_for(request(("message-type", "discover"), ("param_req_list", [1, 3, 6])),
                      settings=settings)
    assert asked.get(3) == (IPv4Address("192.0.2.254"),)
    assert asked.get(6) == (IPv4Address("192.0.2.53"), IPv4Address("192.0.2.54"))
    assert asked.raw(66) is None and asked.text(67) == "pxelinux.0"  # the boot file always
    unasked = offer_for(request(("message-type", "discover"), ("param_req_list", [1, 28])),
                        settings=settings)
    assert unasked.raw(3) is None and unasked.raw(6) is None
    assert unasked.get(1) == IPv4Address("255.255.255.0") and unasked.get(51) == 3600
    no_list = offer_for(request(("message-type", "discover")), settings=settings)
    assert no_list.raw(3) and no_list.raw(6) and no_list.raw(66)


def test_client_id_and_relay_agent_info_are_echoed() -> None:
    msg = request(("message-type", "discover"), ("client_id", b"\x01" + MAC),
                  (82, b"\x01\x04port"), giaddr="192.0.2.9")
    offer = offer_for(msg)
    assert offer.raw(61) == b"\x01" + MAC  # RFC 6842
    assert offer.options[-1] == (82, b"\x01\x04port")  # RFC 3046 2.2
    assert reply_destination(msg, offer) == ("192.0.2.9", 67)


def test_rule_extra_options_are_sent_even_when_not_requested() -> None:
    """PXELINUX reads 209/210 from the cached ACK; no PXE ROM lists them in option 55."""
    extra = ((209, b"pxelinux.cfg/lab"), (210, b"/lab/"))
    policy = RulePolicy(rules=(Rule(Match(), "pxelinux.0", extra_options=extra),))
    msg = request(("message-type", "discover"), ("param_req_list", [1, 3, 67]))
    offer = offer_for(msg, policy)
    assert offer.text(209) == "pxelinux.cfg/lab" and offer.text(210) == "/lab/"
    assert scapy_options(codec.encode(offer))["pxelinux_path_prefix"] == b"/lab/"


def test_extra_option_replaces_ours_of_the_same_code() -> None:
    policy = RulePolicy(rules=(Rule(Match(), "x.efi", extra_options=((67, b"other.efi"),)),))
    offer = offer_for(request(("message-type", "discover")), policy)
    assert [code for code, _ in offer.options].count(67) == 1
    assert offer.text(67) == "other.efi"


def test_nak_carries_a_message_and_nothing_of_a_lease() -> None:
    msg = request(("message-type", "request"), ("client_id", b"\x01" + MAC))
    nak = build_reply(msg, MessageType.NAK, SETTINGS, message="192.0.2.7 is not yours")
    assert nak.text(56) == "192.0.2.7 is not yours" and nak.raw(61) == b"\x01" + MAC
    assert nak.yiaddr == IPv4Address(0) and nak.siaddr == IPv4Address(0)
    assert {code for code, _ in nak.options} == {53, 54, 56, 61}


def test_inform_ack_has_no_lease_and_goes_to_ciaddr() -> None:
    msg = request(("message-type", "inform"), ciaddr="192.0.2.50")
    client = client_info(msg, SERVER)
    ack = build_reply(msg, MessageType.ACK, SETTINGS, decision=RulePolicy().decide_dhcp4(client),
                      client=client)
    assert ack.get(51) is None and ack.get(58) is None
    assert ack.yiaddr == IPv4Address(0) and ack.ciaddr == IPv4Address("192.0.2.50")
    assert ack.text(67) == "pxelinux.0"
    assert reply_destination(msg, ack) == ("192.0.2.50", 68)


def test_bootp_reply_has_address_boot_file_and_no_dhcp_options() -> None:
    msg = codec.decode(bytes(BOOTP(chaddr=MAC, xid=9) / DHCP(options=["end"])))
    client = client_info(msg, SERVER)
    reply = build_bootp_reply(msg, SETTINGS, IPv4Address("192.0.2.100"),
                              RulePolicy().decide_dhcp4(client), client)
    assert reply.message_type is None
    assert {51, 53, 54}.isdisjoint(code for code, _ in reply.options)
    packet = BOOTP(codec.encode(reply))
    assert packet.op == 2 and packet.yiaddr == "192.0.2.100" and packet.siaddr == "192.0.2.1"
    assert packet.file.rstrip(b"\x00") == b"pxelinux.0"
    assert len(codec.encode(reply)) >= 300  # RFC 1542 2.1


def proxy_reply(msg: DhcpMessage, mtype: MessageType = MessageType.OFFER) -> DhcpMessage:
    client = client_info(msg, SERVER)
    return build_proxy_reply(msg, mtype, SETTINGS, RulePolicy().decide_dhcp4(client), client)


def test_proxy_offer_is_a_pxe10_offer_without_address() -> None:
    bios = request(("message-type", "discover"), (93, b"\x00\x00"), (97, UUID),
                   ("vendor_class_id", b"PXEClient:Arch:00000:UNDI:002001"))
    offer = proxy_reply(bios)
    assert offer.yiaddr == IPv4Address(0) and offer.ciaddr == IPv4Address(0)
    assert offer.siaddr == SERVER and offer.file == "pxelinux.0"
    assert offer.text(60) == "PXEClient" and offer.ipv4(54) == SERVER
    assert pxe.decode_pxe(offer.raw(43) or b"") == pxe.PxeOptions.use_boot_file()
    assert offer.raw(97) == UUID
    assert offer.broadcast
    assert {1, 3, 6, 51, 58, 59}.isdisjoint(code for code, _ in offer.options)
    packet = BOOTP(codec.encode(offer))  # and scapy agrees
    assert scapy_options(bytes(packet))["vendor_class_id"] == b"PXEClient"


def test_proxy_ack_echoes_the_boot_item_and_keeps_ciaddr() -> None:
    item = pxe.encode_pxe(pxe.PxeOptions(boot_item=pxe.BootItem(0, 0)))
    msg = request(("message-type", "request"), (93, b"\x00\x07"), (43, item),
                  ("vendor_class_id", b"PXEClient:Arch:00007:UNDI:003000"), ciaddr="192.0.2.50")
    ack = proxy_reply(msg, MessageType.ACK)
    assert ack.message_type is MessageType.ACK and ack.yiaddr == IPv4Address(0)
    assert ack.ciaddr == IPv4Address("192.0.2.50") and ack.file == "bootx64.efi"
    assert pxe.decode_pxe(ack.raw(43) or b"").boot_item == pxe.BootItem(0, 0)


def test_proxy_offer_for_uefi_http_has_url_and_no_pxe_options() -> None:
    msg = request(("message-type", "discover"), (93, b"\x00\x10"),
                  ("vendor_class_id", b"HTTPClient:Arch:00016:UNDI:003000"))
    offer = proxy_reply(msg)
    assert offer.text(60) == "HTTPClient" and offer.raw(43) is None
    assert offer.text(67) == "http://192.0.2.1/bootx64.efi" and offer.raw(66) is None


# -- message size ----------------------------------------------------------------------------

def test_max_reply_size_reads_option_57_with_a_576_floor() -> None:
    assert max_reply_size(request(("message-type", "discover"))) == 548
    assert max_reply_size(request(("message-type", "discover"), ("max_dhcp_size", 1500))) == 1472
    assert max_reply_size(request(("message-type", "discover"), ("max_dhcp_size", 300))) == 548


def test_oversized_reply_loses_unrequested_options_first() -> None:
    big = ((224, b"a" * 250), (225, b"b" * 250))  # site-specific options nobody asked for
    policy = RulePolicy(rules=(Rule(Match(), "pxelinux.0", extra_options=big),))
    msg = request(("message-type", "discover"), ("param_req_list", [1, 67, 225]))
    offer = offer_for(msg, policy)
    assert len(codec.encode(offer)) > 548
    fitted, dropped = fit_to_size(offer, max_reply_size(msg), (1, 67, 225))
    assert dropped == (224,)
    assert len(codec.encode(fitted)) <= 548
    assert fitted.text(67) == "pxelinux.0" and fitted.raw(225) == b"b" * 250
    small, dropped = fit_to_size(offer, 400, (1, 67, 225))
    assert dropped[:2] == (224, 225) and small.raw(53) and small.raw(54)
    assert fit_to_size(small, 548) == (small, ())


def test_is_unset_tells_zero_by_identity_and_by_value() -> None:
    decoded = codec.decode(codec.encode(codec.DhcpMessage(op=codec.Op.BOOTREQUEST, xid=1,
                                                          chaddr=bytes(range(1, 7)))))
    assert decoded.ciaddr is codec.ZERO_ADDRESS and codec.is_unset(decoded.ciaddr)
    assert codec.is_unset(IPv4Address("0.0.0.0"))  # another 0.0.0.0 object
    assert not codec.is_unset(IPv4Address("192.0.2.1"))
