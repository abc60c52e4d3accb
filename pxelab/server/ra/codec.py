"""ICMPv6 router solicitations and advertisements (pure, no sockets).

Message formats from RFC 4861: Router Solicitation 4.1, Router Advertisement
4.2, options 4.6 (source link-layer address 4.6.1, prefix information 4.6.2,
MTU 4.6.4), and the Recursive DNS Server option of RFC 8106 5.1. Option
lengths count 8-octet units; a zero length is invalid (RFC 4861 4.6).
The checksum (RFC 4443 2.3) is computed only when both addresses are given:
a raw ICMPv6 socket has the kernel fill it in (RFC 3542 3.1).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from ipaddress import IPv6Address, IPv6Network

__all__ = [
    "ICMPV6_RA",
    "ICMPV6_RS",
    "PrefixInformation",
    "RaDecodeError",
    "RecursiveDnsServers",
    "RouterAdvertisement",
    "RouterSolicitation",
    "checksum",
    "decode",
    "encode",
]

ICMPV6_RS, ICMPV6_RA = 133, 134
OPT_SOURCE_LLADDR, OPT_PREFIX, OPT_MTU, OPT_RDNSS = 1, 3, 5, 25
_RA_HEAD = struct.Struct("!BBHBBHII")  # type code checksum hoplimit flags lifetime reach retrans
_RS_HEAD = struct.Struct("!BBHI")  # type code checksum reserved
_PREFIX = struct.Struct("!BBBBIII16s")  # type len prefixlen flags valid preferred reserved prefix
_RDNSS_HEAD = struct.Struct("!BBHI")  # type len reserved lifetime, then 16-byte addresses
_MANAGED, _OTHER = 0x80, 0x40
_ON_LINK, _AUTONOMOUS = 0x80, 0x40


class RaDecodeError(ValueError):
    """The bytes are not a router solicitation or advertisement we can read."""


@dataclass(frozen=True)
class PrefixInformation:
    prefix: IPv6Network
    on_link: bool = True
    autonomous: bool = True
    valid_lifetime: int = 86400
    preferred_lifetime: int = 14400


@dataclass(frozen=True)
class RecursiveDnsServers:
    """RFC 8106 5.1: DNS servers and how long (seconds) the host may use them."""

    addresses: tuple[IPv6Address, ...]
    lifetime: int


@dataclass(frozen=True)
class RouterAdvertisement:
    """Defaults: not a default router (lifetime 0), no M/O flags, i.e. SLAAC only."""

    cur_hop_limit: int = 64
    managed: bool = False
    other: bool = False
    router_lifetime: int = 0
    reachable_time: int = 0
    retrans_timer: int = 0
    source_lladdr: bytes | None = None
    mtu: int | None = None
    prefixes: tuple[PrefixInformation, ...] = ()
    dns: RecursiveDnsServers | None = None


@dataclass(frozen=True)
class RouterSolicitation:
    source_lladdr: bytes | None = None


def _lladdr_option(lladdr: bytes) -> bytes:
    body = bytes((OPT_SOURCE_LLADDR, 0)) + lladdr
    body += b"\x00" * (-len(body) % 8)
    return bytes((OPT_SOURCE_LLADDR, len(body) // 8)) + body[2:]


def _rdnss_option(dns: RecursiveDnsServers) -> bytes:
    # Length: 1 unit of header plus 2 units per address (RFC 8106 5.1).
    head = _RDNSS_HEAD.pack(OPT_RDNSS, 1 + 2 * len(dns.addresses), 0, dns.lifetime)
    return head + b"".join(a.packed for a in dns.addresses)


def _decode_rdnss(raw: bytes) -> RecursiveDnsServers:
    if len(raw) < 24 or (len(raw) - 8) % 16:
        raise RaDecodeError(f"RDNSS option of {len(raw)} bytes (must be 8 + 16*N, N >= 1)")
    _, _, _, lifetime = _RDNSS_HEAD.unpack_from(raw)
    addresses = tuple(IPv6Address(raw[i:i + 16]) for i in range(8, len(raw), 16))
    return RecursiveDnsServers(addresses, lifetime)


def checksum(src: IPv6Address, dst: IPv6Address, message: bytes) -> int:
    """ICMPv6 checksum over the pseudo-header (RFC 8200 8.1) and ``message``."""
    data = src.packed + dst.packed + struct.pack("!I3xB", len(message), 58) + message
    if len(data) % 2:
        data += b"\x00"
    total: int = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def encode(message: RouterAdvertisement | RouterSolicitation, src: IPv6Address | None = None,
           dst: IPv6Address | None = None) -> bytes:
    if isinstance(message, RouterSolicitation):
        out = _RS_HEAD.pack(ICMPV6_RS, 0, 0, 0)
        if message.source_lladdr:
            out += _lladdr_option(message.source_lladdr)
    else:
        flags = (_MANAGED if message.managed else 0) | (_OTHER if message.other else 0)
        out = _RA_HEAD.pack(ICMPV6_RA, 0, 0, message.cur_hop_limit, flags,
                            message.router_lifetime, message.reachable_time,
                            message.retrans_timer)
        if message.source_lladdr:
            out += _lladdr_option(message.source_lladdr)
        if message.mtu is not None:
            out += struct.pack("!BBHI", OPT_MTU, 1, 0, message.mtu)
        for info in message.prefixes:
            pflags = (_ON_LINK if info.on_link else 0) | (_AUTONOMOUS if info.autonomous else 0)
            out += _PREFIX.pack(OPT_PREFIX, 4, info.prefix.prefixlen, pflags,
                                info.valid_lifetime, info.preferred_lifetime, 0,
                                info.prefix.network_address.packed)
        if message.dns is not None and message.dns.addresses:
            out += _rdnss_option(message.dns)
    if src is not None and dst is not None:
        out = out[:2] + checksum(src, dst, out).to_bytes(2, "big") + out[4:]
    return out


def _options(data: bytes) -> list[tuple[int, bytes]]:
    """``(type, whole option)`` pairs; unknown types are kept for the caller to skip."""
    found: list[tuple[int, bytes]] = []
    offset = 0
    while offset < len(data):
        if len(data) - offset < 2:
            raise RaDecodeError(f"option header truncated at offset {offset}")
        kind, units = data[offset], data[offset + 1]
        if units == 0:
            raise RaDecodeError(f"option {kind} at offset {offset} has length 0")
        end = offset + units * 8
        if end > len(data):
            raise RaDecodeError(f"option {kind} at offset {offset} runs past the message")
        found.append((kind, data[offset:end]))
        offset = end
    return found


def decode(data: bytes) -> RouterAdvertisement | RouterSolicitation:
    """Parse an ICMPv6 RS or RA (the ICMPv6 message, no IPv6 header)."""
    if len(data) < 4:
        raise RaDecodeError(f"{len(data)} bytes is no ICMPv6 message")
    kind, code = data[0], data[1]
    if code != 0:
        raise RaDecodeError(f"ICMPv6 type {kind} with code {code} (must be 0)")
    if kind == ICMPV6_RS:
        return _decode_rs(data)
    if kind == ICMPV6_RA:
        return _decode_ra(data)
    raise RaDecodeError(f"ICMPv6 type {kind} is neither RS (133) nor RA (134)")


def _decode_rs(data: bytes) -> RouterSolicitation:
    if len(data) < _RS_HEAD.size:
        raise RaDecodeError(f"router solicitation of {len(data)} bytes is truncated")
    lladdr = None
    for opt_kind, raw in _options(data[_RS_HEAD.size:]):
        if opt_kind == OPT_SOURCE_LLADDR:
            lladdr = raw[2:8]
    return RouterSolicitation(lladdr)


def _decode_prefix(raw: bytes) -> PrefixInformation:
    if len(raw) != _PREFIX.size:
        raise RaDecodeError(f"prefix option of {len(raw)} bytes (must be 32)")
    _, _, plen, pflags, valid, preferred, _, prefix = _PREFIX.unpack(raw)
    if plen > 128:
        raise RaDecodeError(f"prefix length {plen} exceeds 128")
    return PrefixInformation(IPv6Network((IPv6Address(prefix), plen), strict=False),
                             bool(pflags & _ON_LINK), bool(pflags & _AUTONOMOUS), valid,
                             preferred)


def _decode_ra(data: bytes) -> RouterAdvertisement:
    if len(data) < _RA_HEAD.size:
        raise RaDecodeError(f"router advertisement of {len(data)} bytes is truncated")
    _, _, _, hop_limit, flags, lifetime, reachable, retrans = _RA_HEAD.unpack_from(data)
    lladdr, mtu, prefixes, dns = None, None, [], None
    for opt_kind, raw in _options(data[_RA_HEAD.size:]):
        if opt_kind == OPT_SOURCE_LLADDR:
            lladdr = raw[2:8]
        elif opt_kind == OPT_MTU:
            if len(raw) != 8:
                raise RaDecodeError(f"MTU option of {len(raw)} bytes (must be 8)")
            mtu = int.from_bytes(raw[4:8], "big")
        elif opt_kind == OPT_PREFIX:
            prefixes.append(_decode_prefix(raw))
        elif opt_kind == OPT_RDNSS:
            dns = _decode_rdnss(raw)
    return RouterAdvertisement(hop_limit, bool(flags & _MANAGED), bool(flags & _OTHER),
                               lifetime, reachable, retrans, lladdr, mtu, tuple(prefixes), dns)
