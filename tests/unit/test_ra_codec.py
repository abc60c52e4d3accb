"""Router solicitation/advertisement codec against scapy's ICMPv6 ND layers."""

from __future__ import annotations

import contextlib
import random
from ipaddress import IPv6Address, IPv6Network

import pytest
from scapy.layers.inet6 import (
    ICMPv6ND_RA,
    ICMPv6ND_RS,
    ICMPv6NDOptMTU,
    ICMPv6NDOptPrefixInfo,
    ICMPv6NDOptRDNSS,
    ICMPv6NDOptSrcLLAddr,
    IPv6,
)

from pxelab.server.ra import codec
from pxelab.server.ra.codec import (
    PrefixInformation,
    RaDecodeError,
    RecursiveDnsServers,
    RouterAdvertisement,
    RouterSolicitation,
)

pytestmark = pytest.mark.unit

LLADDR = bytes.fromhex("525400123456")
SRC = IPv6Address("fe80::5054:ff:fe12:3456")
PREFIX = IPv6Network("2001:db8::/64")


def lab_ra() -> RouterAdvertisement:
    return RouterAdvertisement(source_lladdr=LLADDR, mtu=1500,
                               prefixes=(PrefixInformation(PREFIX),),
                               dns=RecursiveDnsServers((IPv6Address("2001:db8::53"),), 600))


def test_encoded_ra_dissected_by_scapy_with_valid_checksum() -> None:
    dst = IPv6Address("ff02::1")
    payload = codec.encode(lab_ra(), SRC, dst)
    packet = IPv6(bytes(IPv6(src=str(SRC), dst=str(dst), nh=58, hlim=255) / payload))
    ra = packet[ICMPv6ND_RA]
    assert ra.routerlifetime == 0 and ra.M == 0 and ra.O == 0 and ra.chlim == 64
    info = packet[ICMPv6NDOptPrefixInfo]
    assert info.prefix == "2001:db8::" and info.prefixlen == 64
    assert info.L == 1 and info.A == 1
    assert info.validlifetime == 86400 and info.preferredlifetime == 14400
    assert packet[ICMPv6NDOptSrcLLAddr].lladdr == "52:54:00:12:34:56"
    assert packet[ICMPv6NDOptMTU].mtu == 1500
    # scapy recomputes the checksum when rebuilt without one: ours must match it
    rebuilt = IPv6(src=str(SRC), dst=str(dst)) / ICMPv6ND_RA(bytes(ra))
    rebuilt[ICMPv6ND_RA].cksum = None
    assert IPv6(bytes(rebuilt))[ICMPv6ND_RA].cksum == ra.cksum


def test_flags_round_trip() -> None:
    message = RouterAdvertisement(managed=True, other=True, router_lifetime=1800,
                                  prefixes=(PrefixInformation(PREFIX, autonomous=False),))
    decoded = codec.decode(codec.encode(message))
    assert decoded == message
    assert ICMPv6ND_RA(codec.encode(message)).M == 1


def test_decode_scapy_ra_and_rs() -> None:
    ra = bytes(ICMPv6ND_RA(M=1, routerlifetime=0)
               / ICMPv6NDOptSrcLLAddr(lladdr="52:54:00:12:34:56")
               / ICMPv6NDOptPrefixInfo(prefix="2001:db8::", prefixlen=64))
    decoded = codec.decode(ra)
    assert isinstance(decoded, RouterAdvertisement)
    assert decoded.managed and not decoded.other
    assert decoded.source_lladdr == LLADDR
    assert decoded.prefixes[0].prefix == PREFIX
    rs = bytes(ICMPv6ND_RS() / ICMPv6NDOptSrcLLAddr(lladdr="52:54:00:12:34:56"))
    assert codec.decode(rs) == RouterSolicitation(LLADDR)
    assert codec.decode(bytes(ICMPv6ND_RS())) == RouterSolicitation()


def test_unknown_options_are_skipped() -> None:
    raw = codec.encode(RouterSolicitation()) + bytes((99, 1, 0, 0, 0, 0, 0, 0))
    assert codec.decode(raw) == RouterSolicitation()


def test_rdnss_option_dissected_by_scapy_and_round_trips() -> None:
    dns = RecursiveDnsServers((IPv6Address("2001:db8::53"), IPv6Address("2001:db8::54")), 900)
    message = RouterAdvertisement(prefixes=(PrefixInformation(PREFIX),), dns=dns)
    raw = codec.encode(message)
    option = ICMPv6ND_RA(raw)[ICMPv6NDOptRDNSS]
    assert option.len == 5 and option.lifetime == 900  # 1 + 2 units per address (RFC 8106)
    assert option.dns == ["2001:db8::53", "2001:db8::54"]
    assert codec.decode(raw) == message
    scapy_ra = bytes(ICMPv6ND_RA() / ICMPv6NDOptRDNSS(dns=["2001:db8::53"], lifetime=60))
    decoded = codec.decode(scapy_ra)
    assert isinstance(decoded, RouterAdvertisement)
    assert decoded.dns == RecursiveDnsServers((IPv6Address("2001:db8::53"),), 60)


def test_empty_dns_list_adds_no_option() -> None:
    message = RouterAdvertisement(dns=RecursiveDnsServers((), 60))
    assert codec.encode(message) == codec.encode(RouterAdvertisement())


@pytest.mark.parametrize("raw", [
    b"\x86",  # too short
    bytes((135, 0, 0, 0)),  # neighbour solicitation
    bytes((133, 1, 0, 0, 0, 0, 0, 0)),  # code 1
    bytes((134, 0, 0, 0, 64, 0, 0, 0)),  # RA header truncated
    codec.encode(RouterSolicitation()) + bytes((1, 0, 0, 0, 0, 0, 0, 0)),  # zero length
    codec.encode(RouterSolicitation()) + bytes((1, 2, 0, 0)),  # runs past the end
    codec.encode(RouterAdvertisement()) + bytes((3, 1, 0, 0, 0, 0, 0, 0)),  # short prefix
    codec.encode(RouterAdvertisement()) + bytes((25, 1, 0, 0, 0, 0, 0, 60)),  # RDNSS, no server
    codec.encode(RouterAdvertisement()) + bytes((25, 2)) + bytes(14),  # RDNSS, half an address
], ids=["short", "ns", "code", "ra-head", "zero-len", "overrun", "prefix-len", "rdnss-empty",
        "rdnss-half"])
def test_malformed_raises(raw: bytes) -> None:
    with pytest.raises(RaDecodeError):
        codec.decode(raw)


def test_fuzzed_input_only_raises_codec_error() -> None:
    rng = random.Random(4861)
    good = codec.encode(lab_ra())
    for _ in range(3000):
        data = bytearray(good[:rng.randrange(len(good) + 1)])
        for _ in range(rng.randrange(3)):
            if data:
                data[rng.randrange(len(data))] = rng.randrange(256)
        with contextlib.suppress(RaDecodeError):
            codec.decode(bytes(data))
