"""DHCPv4 messages: bytes <-> :class:`DhcpMessage` (pure, no sockets).

Layout from RFC 2131 section 2 (the BOOTP header of RFC 951 plus the magic
cookie), options from RFC 2132, long options split and joined as RFC 3396 says,
option overload (52) as RFC 2132 9.3 says, PXE options from RFC 4578, the user
class of RFC 3004, the PXELINUX options of RFC 5071 and iPXE's private option
175 (ipxe/ipxe src/include/ipxe/dhcp.h). Option 43's PXE sub-options are in
:mod:`pxelab.server.dhcp4.pxe`.

Options are kept as raw ``(code, bytes)`` pairs in wire order; the table
:data:`OPTIONS` says how to turn a value into bytes and back, so a reply is
written as ``option(53, MessageType.OFFER), option(54, server), ...``.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable
from dataclasses import dataclass
from enum import IntEnum, StrEnum
from ipaddress import IPv4Address
from typing import Any

from pxelab.core.frozen import assemble
from pxelab.core.mac import format_mac
from pxelab.core.memo import memoized

__all__ = [
    "BOOTP_MIN_SIZE",
    "MESSAGE_TYPE_NAMES",
    "OPTIONS",
    "ZERO_ADDRESS",
    "DhcpDecodeError",
    "DhcpMessage",
    "Kind",
    "MessageType",
    "Op",
    "OptionSpec",
    "address_text",
    "decode",
    "decode_value",
    "encode",
    "encode_user_classes",
    "is_unset",
    "option",
    "option_problems",
    "user_classes",
]


class DhcpDecodeError(ValueError):
    """The bytes are not a DHCPv4 message we can read; the message says where it broke."""


class Op(IntEnum):
    """BOOTP ``op`` field (RFC 2131 section 2)."""

    BOOTREQUEST = 1
    BOOTREPLY = 2


class MessageType(IntEnum):
    """Option 53 values (RFC 2132 section 9.6)."""

    DISCOVER = 1
    OFFER = 2
    REQUEST = 3
    DECLINE = 4
    ACK = 5
    NAK = 6
    RELEASE = 7
    INFORM = 8


class Kind(StrEnum):
    """How an option value is laid out on the wire."""

    IPV4 = "ipv4"
    IPV4_LIST = "ipv4-list"
    U8 = "u8"
    U16 = "u16"
    U32 = "u32"
    U8_LIST = "u8-list"
    U16_LIST = "u16-list"
    STRING = "string"
    BYTES = "bytes"


@dataclass(frozen=True)
class OptionSpec:
    """One option's layout; ``size`` is an exact length, ``min_size`` a lower bound."""

    code: int
    name: str
    kind: Kind
    rfc: str
    size: int | None = None
    min_size: int = 0


OPTIONS: dict[int, OptionSpec] = {spec.code: spec for spec in (
    OptionSpec(1, "subnet_mask", Kind.IPV4, "RFC 2132 3.3"),
    OptionSpec(3, "router", Kind.IPV4_LIST, "RFC 2132 3.5"),
    OptionSpec(6, "dns_server", Kind.IPV4_LIST, "RFC 2132 3.8"),
    OptionSpec(12, "hostname", Kind.STRING, "RFC 2132 3.14", min_size=1),
    OptionSpec(15, "domain_name", Kind.STRING, "RFC 2132 3.17"),
    OptionSpec(17, "root_path", Kind.STRING, "RFC 2132 3.19"),
    OptionSpec(43, "vendor_specific", Kind.BYTES, "RFC 2132 8.4 (PXE: pxelab.server.dhcp4.pxe)"),
    OptionSpec(50, "requested_ip", Kind.IPV4, "RFC 2132 9.1"),
    OptionSpec(51, "lease_time", Kind.U32, "RFC 2132 9.2"),
    OptionSpec(52, "overload", Kind.U8, "RFC 2132 9.3"),
    OptionSpec(53, "message_type", Kind.U8, "RFC 2132 9.6"),
    OptionSpec(54, "server_id", Kind.IPV4, "RFC 2132 9.7"),
    OptionSpec(55, "parameter_list", Kind.U8_LIST, "RFC 2132 9.8", min_size=1),
    OptionSpec(56, "message", Kind.STRING, "RFC 2132 9.9"),
    OptionSpec(57, "max_message_size", Kind.U16, "RFC 2132 9.10"),
    OptionSpec(58, "renewal_time", Kind.U32, "RFC 2132 9.11"),
    OptionSpec(59, "rebinding_time", Kind.U32, "RFC 2132 9.12"),
    OptionSpec(60, "vendor_class", Kind.STRING, "RFC 2132 9.13", min_size=1),
    OptionSpec(61, "client_id", Kind.BYTES, "RFC 2132 9.14", min_size=2),
    OptionSpec(66, "tftp_server", Kind.STRING, "RFC 2132 9.4"),
    OptionSpec(67, "bootfile", Kind.STRING, "RFC 2132 9.5"),
    OptionSpec(77, "user_class", Kind.BYTES, "RFC 3004 (iPXE sends the bare string)"),
    OptionSpec(82, "relay_agent_info", Kind.BYTES, "RFC 3046"),
    OptionSpec(93, "client_arch", Kind.U16_LIST, "RFC 4578 2.1"),
    OptionSpec(94, "client_ndi", Kind.BYTES, "RFC 4578 2.2", size=3),
    OptionSpec(97, "client_uuid", Kind.BYTES, "RFC 4578 2.3", size=17),
    OptionSpec(175, "ipxe", Kind.BYTES, "iPXE encapsulated options (src/include/ipxe/dhcp.h)"),
    OptionSpec(208, "pxelinux_magic", Kind.BYTES, "RFC 5071 3", size=4),
    OptionSpec(209, "pxelinux_configfile", Kind.STRING, "RFC 5071 4"),
    OptionSpec(210, "pxelinux_pathprefix", Kind.STRING, "RFC 5071 5"),
    OptionSpec(211, "pxelinux_reboottime", Kind.U32, "RFC 5071 6"),
)}

PAD, END = 0, 255
_MESSAGE_TYPES = {int(kind): kind for kind in MessageType}
# Names read per message; an enum's .name is a Python-level property (Python 3.11).
MESSAGE_TYPE_NAMES = {kind: kind.name for kind in MessageType}
_OPS = {int(op): op for op in Op}
MAGIC_COOKIE = b"\x63\x82\x53\x63"
# op htype hlen hops xid secs flags ciaddr yiaddr siaddr giaddr chaddr sname file
_HEADER = struct.Struct("!BBBBIHH4s4s4s4s16s64s128s")
BOOTP_MIN_SIZE = 300  # RFC 1542 2.1: some relays and old clients drop shorter BOOTP frames
BROADCAST_FLAG = 0x8000
_ZERO = ZERO_ADDRESS = IPv4Address(0)  # one object: "is" tells 0.0.0.0 cheaply
_ZERO_PACKED = bytes(4)
_ZERO_TEXT = "0.0.0.0"


def is_unset(address: IPv4Address) -> bool:
    """Whether ``address`` is 0.0.0.0 (a header field left empty); ``is`` first, as
    decode() and the replies share one 0.0.0.0 and IPv4Address's ``==`` is Python code."""
    return address is _ZERO or address == _ZERO


def address_text(address: IPv4Address) -> str:
    """``str(address)`` at half its cost; several per message go into an event."""
    if address is _ZERO:  # decode() and the replies share this one
        return _ZERO_TEXT
    return "%d.%d.%d.%d" % tuple(address.packed)  # noqa: UP031 - faster than the f-string


def _packed(address: IPv4Address) -> bytes:
    return _ZERO_PACKED if address is _ZERO else address.packed


@dataclass(frozen=True)
class DhcpMessage:
    """One DHCPv4 message; ``options`` are raw ``(code, value)`` pairs in wire order."""

    op: Op
    xid: int
    chaddr: bytes
    htype: int = 1
    hops: int = 0
    secs: int = 0
    flags: int = 0
    ciaddr: IPv4Address = _ZERO
    yiaddr: IPv4Address = _ZERO
    siaddr: IPv4Address = _ZERO
    giaddr: IPv4Address = _ZERO
    sname: str = ""
    file: str = ""
    options: tuple[tuple[int, bytes], ...] = ()

    # Read many times per message, so indexed and memoised on first use (pxelab.core.memo: the
    # instance stays immutable, the caches are outside its fields, equality and hashing).

    @memoized
    def mac(self) -> str:
        return format_mac(self.chaddr)

    @property
    def broadcast(self) -> bool:
        return bool(self.flags & BROADCAST_FLAG)

    @memoized
    def _by_code(self) -> dict[int, bytes]:
        index: dict[int, bytes] = {}
        for code, value in self.options:
            index.setdefault(code, value)  # the first of a repeated code, as raw() always gave
        return index

    @memoized
    def _decoded(self) -> dict[int, object | None]:
        return {}

    def raw(self, code: int) -> bytes | None:
        """The value of option ``code`` (already joined per RFC 3396), or None."""
        return self._by_code.get(code)

    def get(self, code: int) -> object | None:
        """Option ``code`` decoded per :data:`OPTIONS`; None if absent or malformed."""
        decoded = self._decoded
        if code in decoded:
            return decoded[code]
        value = self._by_code.get(code)
        result: object | None = None
        if value is not None:
            try:
                result = decode_value(code, value)
            except DhcpDecodeError:
                result = None
        decoded[code] = result
        return result

    @memoized
    def message_type(self) -> MessageType | None:
        value = self._by_code.get(53)
        if value is None or len(value) != 1:
            return None
        return _MESSAGE_TYPES.get(value[0])

    def ipv4(self, code: int) -> IPv4Address | None:
        value = self.get(code)
        return value if isinstance(value, IPv4Address) else None

    def text(self, code: int) -> str | None:
        value = self.get(code)
        return value if isinstance(value, str) else None


def user_classes(raw: bytes) -> tuple[str, ...]:
    """Option 77 as strings: RFC 3004 length-prefixed items, else the whole value.

    iPXE sends the bare string ``iPXE`` (not RFC 3004 framing), which fails the
    framing check (``i`` = 105 > remaining length) and is taken as one item.
    """
    items: list[str] = []
    rest = raw
    while rest:
        size = rest[0]
        if size == 0 or size > len(rest) - 1:
            return (raw.decode("latin-1"),) if raw else ()
        items.append(rest[1:1 + size].decode("latin-1"))
        rest = rest[1 + size:]
    return tuple(items)


def encode_user_classes(items: Iterable[str], *, bare: bool = False) -> bytes:
    """Option 77 value: RFC 3004 length-prefixed items, or (``bare``) iPXE's plain string."""
    raw = [item.encode("latin-1") for item in items]
    if bare:
        if len(raw) != 1:
            raise ValueError("the bare (iPXE) form carries exactly one user class")
        return raw[0]
    for item in raw:
        if not 1 <= len(item) <= 255:
            raise ValueError(f"user class {item!r}: RFC 3004 items are 1..255 bytes")
    return b"".join(bytes((len(item),)) + item for item in raw)


def option_problems(msg: DhcpMessage) -> tuple[tuple[int, str], ...]:
    """Known options whose value does not fit their layout: ``(code, sentence)`` pairs."""
    problems: list[tuple[int, str]] = []
    decoded = msg._decoded  # what decodes here need not be decoded again by get()
    for code, value in msg.options:
        spec = OPTIONS.get(code)
        if spec is None:
            continue
        if spec.size is not None and len(value) != spec.size:
            problem = f"expected {spec.size} bytes, got {len(value)}"
        elif len(value) < spec.min_size:
            problem = f"at least {spec.min_size} bytes, got {len(value)}"
        else:
            try:
                result = decode_value(code, value)
            except DhcpDecodeError as exc:
                problem = str(exc).split(": ", 1)[-1]
            else:
                if code not in decoded and msg.raw(code) is value:
                    decoded[code] = result
                continue
        problems.append((code, f"option {code} ({spec.name}): {problem} ({spec.rfc})"))
    return tuple(problems)


# -- option values ---------------------------------------------------------------------------

def _fixed(value: bytes, size: int, code: int) -> bytes:
    if len(value) != size:
        raise DhcpDecodeError(f"option {code}: expected {size} bytes, got {len(value)}")
    return value


def decode_value(code: int, value: bytes) -> object:
    """Decode an option value according to :data:`OPTIONS` (unknown codes stay bytes)."""
    spec = OPTIONS.get(code)
    kind = spec.kind if spec else Kind.BYTES
    if kind is Kind.IPV4:
        return IPv4Address(_fixed(value, 4, code))
    if kind is Kind.IPV4_LIST:
        if not value or len(value) % 4:
            raise DhcpDecodeError(f"option {code}: length {len(value)} is not a multiple of 4")
        return tuple(IPv4Address(value[i:i + 4]) for i in range(0, len(value), 4))
    if kind is Kind.U8:
        return _fixed(value, 1, code)[0]
    if kind is Kind.U16:
        return int.from_bytes(_fixed(value, 2, code), "big")
    if kind is Kind.U32:
        return int.from_bytes(_fixed(value, 4, code), "big")
    if kind is Kind.U8_LIST:
        return tuple(value)
    if kind is Kind.U16_LIST:
        if not value or len(value) % 2:
            raise DhcpDecodeError(f"option {code}: length {len(value)} is not a multiple of 2")
        return tuple(int.from_bytes(value[i:i + 2], "big") for i in range(0, len(value), 2))
    if kind is Kind.STRING:
        return value.rstrip(b"\x00").decode("latin-1")
    return value


def _encode_value(kind: Kind, value: Any) -> bytes:
    if kind is Kind.IPV4:
        return _packed_value(value)
    if kind is Kind.IPV4_LIST:
        return b"".join(_packed_value(v) for v in value)
    if kind is Kind.U8:
        return int(value).to_bytes(1, "big")
    if kind is Kind.U16:
        return int(value).to_bytes(2, "big")
    if kind is Kind.U32:
        return int(value).to_bytes(4, "big")
    if kind is Kind.U8_LIST:
        return bytes(value)
    if kind is Kind.U16_LIST:
        return b"".join(int(v).to_bytes(2, "big") for v in value)
    if kind is Kind.STRING:
        return str(value).encode("latin-1")
    if isinstance(value, bytes | bytearray):
        return bytes(value)
    raise TypeError(f"bytes option needs bytes, got {type(value).__name__}")


def _packed_value(value: Any) -> bytes:
    # IPv4Address(an IPv4Address) formats and parses it again: several µs per option.
    return value.packed if isinstance(value, IPv4Address) else IPv4Address(value).packed


def option(code: int, value: Any) -> tuple[int, bytes]:
    """``(code, bytes)`` for a reply, encoding ``value`` as the table says."""
    spec = OPTIONS.get(code)
    return code, _encode_value(spec.kind if spec else Kind.BYTES, value)


# -- whole messages --------------------------------------------------------------------------

def _cstring(field: bytes) -> str:
    if not field or not field[0]:  # empty, as sname and file of nearly every request are
        return ""
    return field.split(b"\x00", 1)[0].decode("latin-1")


def _walk_options(area: bytes, where: str) -> list[tuple[int, bytes]]:
    pairs: list[tuple[int, bytes]] = []
    i, end = 0, len(area)
    while i < end:
        code = area[i]
        if code == PAD:
            i += 1
            continue
        if code == END:
            break
        if i + 1 >= end:
            raise DhcpDecodeError(f"{where}: option {code} at offset {i} has no length byte")
        size = area[i + 1]
        if i + 2 + size > end:
            raise DhcpDecodeError(
                f"{where}: option {code} at offset {i} claims {size} bytes, "
                f"{end - i - 2} left")
        pairs.append((code, area[i + 2:i + 2 + size]))
        i += 2 + size
    # A missing END is tolerated: several firmware builds omit it.
    return pairs


def _join(pairs: list[tuple[int, bytes]]) -> tuple[tuple[int, bytes], ...]:
    """Concatenate repeated options (RFC 3396 section 7), keeping first-seen order."""
    if len({code for code, _ in pairs}) == len(pairs):  # nothing repeated: the usual case
        return tuple(pairs)
    joined: dict[int, bytes] = {}
    for code, value in pairs:
        joined[code] = joined.get(code, b"") + value
    return tuple(joined.items())


def decode(data: bytes) -> DhcpMessage:
    """Parse a DHCPv4 message; raise :class:`DhcpDecodeError` if it is malformed."""
    if len(data) < _HEADER.size + len(MAGIC_COOKIE):
        raise DhcpDecodeError(
            f"message is {len(data)} bytes, shorter than the "
            f"{_HEADER.size + len(MAGIC_COOKIE)}-byte header and cookie")
    (op, htype, hlen, hops, xid, secs, flags, ciaddr, yiaddr, siaddr, giaddr,
     chaddr, sname, file) = _HEADER.unpack_from(data)
    op_value = _OPS.get(op)
    if op_value is None:
        raise DhcpDecodeError(f"op {op} is neither BOOTREQUEST nor BOOTREPLY")
    if hlen > len(chaddr):
        raise DhcpDecodeError(f"hlen {hlen} exceeds the 16-byte chaddr field")
    cookie = data[_HEADER.size:_HEADER.size + 4]
    if cookie != MAGIC_COOKIE:
        raise DhcpDecodeError(f"magic cookie is {cookie.hex()}, not 63825363 (plain BOOTP?)")
    pairs = _walk_options(data[_HEADER.size + 4:], "options")
    overload = next((v for c, v in pairs if c == 52), None)
    if overload is not None:
        # RFC 2132 9.3: option 52 moves more options into the file and/or sname fields,
        # read in that order (RFC 3396 7); 52 itself may only sit in the options field.
        mode = overload[0] if len(overload) == 1 else 0
        if mode & 1:
            pairs += [p for p in _walk_options(file, "file field (overload)") if p[0] != 52]
            file = b""
        if mode & 2:
            pairs += [p for p in _walk_options(sname, "sname field (overload)") if p[0] != 52]
            sname = b""
    return assemble(
        DhcpMessage, op=op_value, xid=xid, chaddr=chaddr[:hlen], htype=htype, hops=hops, secs=secs,
        flags=flags, ciaddr=_address(ciaddr), yiaddr=_address(yiaddr),
        siaddr=_address(siaddr), giaddr=_address(giaddr),
        sname=_cstring(sname), file=_cstring(file), options=_join(pairs))


def _address(packed: bytes) -> IPv4Address:
    return _ZERO if packed == _ZERO_PACKED else IPv4Address(packed)  # mostly 0.0.0.0


def _field(text: str, size: int, name: str) -> bytes:
    if not text:  # sname always, file of most replies
        return b""
    raw = text.encode("latin-1")
    if len(raw) >= size:
        raise ValueError(f"{name} {text!r} does not fit the {size}-byte field")
    return raw


def encode(msg: DhcpMessage) -> bytes:
    """Serialize ``msg``; long options are split (RFC 3396), the frame padded to 300 bytes."""
    if len(msg.chaddr) > 16:
        raise ValueError(f"chaddr of {len(msg.chaddr)} bytes exceeds 16")
    head = _HEADER.pack(
        msg.op, msg.htype, len(msg.chaddr), msg.hops, msg.xid, msg.secs, msg.flags,
        _packed(msg.ciaddr), _packed(msg.yiaddr), _packed(msg.siaddr), _packed(msg.giaddr),
        msg.chaddr, _field(msg.sname, 64, "sname"), _field(msg.file, 128, "file"))
    body = bytearray(MAGIC_COOKIE)
    for code, value in msg.options:
        if code in (PAD, END):
            raise ValueError(f"option code {code} is reserved for padding/end")
        if len(value) <= 255:
            body.append(code)
            body.append(len(value))
            body += value
            continue
        for i in range(0, len(value), 255):
            chunk = value[i:i + 255]
            body += bytes((code, len(chunk)))
            body += chunk
    body.append(END)
    out = head + bytes(body)
    return out + b"\x00" * max(0, BOOTP_MIN_SIZE - len(out))
