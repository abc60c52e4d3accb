"""DHCPv6 messages: bytes <-> frozen dataclasses (pure, no sockets).

Layouts from RFC 8415: client/server messages section 8, relay messages
section 9, DUIDs section 11 (DUID-UUID from RFC 6355), options section 21.
DNS servers from RFC 3646 section 3; the network boot options 59-62 from
RFC 5970 section 3. Each option is a dataclass whose ``CODE`` and ``RFC``
say where its layout comes from; :data:`OPTIONS` maps codes to them, and
options not in the table are kept raw as :class:`UnknownOption`.

Decoding is strict: an option that runs past its container, a fixed-size
option of the wrong size or a list with a torn last item raises
:class:`Dhcp6DecodeError`, which names the option and the offset.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable
from dataclasses import dataclass
from enum import IntEnum
from ipaddress import IPv6Address
from typing import ClassVar, Self, TypeVar

from pxelab.core.mac import format_mac
from pxelab.core.memo import memoized

__all__ = [
    "ALL_DHCP_RELAY_AGENTS_AND_SERVERS",
    "CLIENT_PORT",
    "ENTERPRISE_PXE",
    "OPTIONS",
    "SERVER_PORT",
    "BootFileParams",
    "BootFileUrl",
    "ClientArch",
    "ClientId",
    "ClientNii",
    "Dhcp6DecodeError",
    "Dhcp6Message",
    "DnsServers",
    "Duid",
    "DuidType",
    "ElapsedTime",
    "IaAddress",
    "IaNa",
    "MessageType",
    "Option",
    "OptionCode",
    "OptionRequest",
    "Preference",
    "RapidCommit",
    "RelayMessage",
    "RelayMessageOption",
    "ServerId",
    "Status",
    "StatusCode",
    "UnknownOption",
    "UserClass",
    "VendorClass",
    "decode",
    "encode",
    "mac_from_link_local",
]

CLIENT_PORT, SERVER_PORT = 546, 547  # RFC 8415 7.2
ALL_DHCP_RELAY_AGENTS_AND_SERVERS = IPv6Address("ff02::1:2")  # RFC 8415 7.1
ENTERPRISE_PXE = 343  # Intel's number; EDK2 and iPXE put PXEClient/HTTPClient under it
MAX_DEPTH = 4  # options inside IA_NA inside ... deeper than this is garbage, not a message

# RFC 8415 8: msg-type (1), transaction-id (3)
_HEADER = struct.Struct("!B3s")
# RFC 8415 9: msg-type (1), hop-count (1), link-address (16), peer-address (16)
_RELAY_HEADER = struct.Struct("!BB16s16s")
_OPTION_HEADER = struct.Struct("!HH")  # RFC 8415 21.1: option-code, option-len
_IA_NA = struct.Struct("!III")  # RFC 8415 21.4: IAID, T1, T2
_IAADDR = struct.Struct("!16sII")  # RFC 8415 21.6: address, preferred, valid lifetime
_U8, _U16, _U32 = struct.Struct("!B"), struct.Struct("!H"), struct.Struct("!I")
_NII = struct.Struct("!BBB")  # RFC 5970 3.4: type, major, minor


class Dhcp6DecodeError(ValueError):
    """The bytes are not a DHCPv6 message we can read; the message says where it broke."""


class MessageType(IntEnum):
    """msg-type values (RFC 8415 7.3)."""

    SOLICIT = 1
    ADVERTISE = 2
    REQUEST = 3
    CONFIRM = 4
    RENEW = 5
    REBIND = 6
    REPLY = 7
    RELEASE = 8
    DECLINE = 9
    RECONFIGURE = 10
    INFORMATION_REQUEST = 11
    RELAY_FORW = 12
    RELAY_REPL = 13

    @property
    def label(self) -> str:
        """``information-request``: the RFC's name, as fault kinds and events use it."""
        return _LABELS[self]

    def is_relay(self) -> bool:
        return self in (MessageType.RELAY_FORW, MessageType.RELAY_REPL)


_LABELS = {kind: kind.name.lower().replace("_", "-") for kind in MessageType}


class OptionCode(IntEnum):
    """Option codes this codec knows (RFC 8415 21, RFC 3646, RFC 5970)."""

    CLIENTID = 1
    SERVERID = 2
    IA_NA = 3
    IA_TA = 4
    IAADDR = 5
    ORO = 6
    PREFERENCE = 7
    ELAPSED_TIME = 8
    RELAY_MSG = 9
    STATUS_CODE = 13
    RAPID_COMMIT = 14
    USER_CLASS = 15
    VENDOR_CLASS = 16
    DNS_SERVERS = 23
    BOOTFILE_URL = 59
    BOOTFILE_PARAM = 60
    CLIENT_ARCH_TYPE = 61
    NII = 62


class Status(IntEnum):
    """Status Code values (RFC 8415 21.13 and its IANA registry)."""

    SUCCESS = 0
    UNSPEC_FAIL = 1
    NO_ADDRS_AVAIL = 2
    NO_BINDING = 3
    NOT_ON_LINK = 4
    USE_MULTICAST = 5


class DuidType(IntEnum):
    """DUID types: RFC 8415 11.2 (LLT), 11.3 (EN), 11.4 (LL), RFC 6355 6 (UUID)."""

    LLT = 1
    EN = 2
    LL = 3
    UUID = 4


def mac_from_link_local(address: IPv6Address) -> str | None:
    """The MAC inside a modified EUI-64 interface id (RFC 4291 2.5.1, appendix A), or None.

    OVMF, iPXE and Linux (without privacy extensions) all form their
    link-local address this way, so it names the NIC when the DUID does not.
    """
    if not address.is_link_local:
        return None
    iid = address.packed[8:]
    if iid[3:5] != b"\xff\xfe":
        return None
    return format_mac(bytes((iid[0] ^ 0x02,)) + iid[1:3] + iid[5:8])


# -- DUIDs ---------------------------------------------------------------------------------------

_DUID_MIN: dict[int, int] = {DuidType.LLT: 8, DuidType.EN: 6, DuidType.LL: 4,
                             DuidType.UUID: 18}
_HW_ETHERNET = 1  # IANA hardware type (RFC 826)


@dataclass(frozen=True)
class Duid:
    """A DHCP Unique Identifier (RFC 8415 11): opaque bytes with a 2-byte type in front.

    Servers compare DUIDs as opaque values (RFC 8415 11); the accessors only
    read out what a lab wants to show: the link-layer address and the type.
    """

    raw: bytes

    def __post_init__(self) -> None:
        if not 3 <= len(self.raw) <= 130:  # RFC 8415 11.1: type + 1..128 octets
            raise Dhcp6DecodeError(f"DUID of {len(self.raw)} bytes is outside 3..130")
        kind = self.type
        need = _DUID_MIN.get(kind)
        if need is not None and (len(self.raw) < need
                                 or (kind == DuidType.UUID and len(self.raw) != need)):
            raise Dhcp6DecodeError(
                f"{DuidType(kind).name} DUID of {len(self.raw)} bytes; needs "
                f"{'exactly' if kind == DuidType.UUID else 'at least'} {need}")

    @classmethod
    def link_layer(cls, mac: bytes, hardware_type: int = _HW_ETHERNET) -> Duid:
        """DUID-LL (RFC 8415 11.4): type 3, hardware type, link-layer address."""
        return cls(struct.pack("!HH", DuidType.LL, hardware_type) + mac)

    @classmethod
    def link_layer_time(cls, mac: bytes, time: int, hardware_type: int = _HW_ETHERNET) -> Duid:
        """DUID-LLT (RFC 8415 11.2): type 1, hardware type, seconds since 2000, address."""
        return cls(struct.pack("!HHI", DuidType.LLT, hardware_type, time) + mac)

    @classmethod
    def enterprise(cls, number: int, identifier: bytes) -> Duid:
        """DUID-EN (RFC 8415 11.3): type 2, enterprise number, identifier."""
        return cls(struct.pack("!HI", DuidType.EN, number) + identifier)

    @classmethod
    def from_uuid(cls, uuid: bytes) -> Duid:
        """DUID-UUID (RFC 6355 4): type 4 and 16 bytes; iPXE uses the SMBIOS UUID."""
        return cls(struct.pack("!H", DuidType.UUID) + uuid)

    # The accessors are memoised: a server reads them several times per message.

    @memoized
    def type(self) -> int:
        return int(_U16.unpack_from(self.raw)[0])

    @property
    def hardware_type(self) -> int | None:
        if self.type in (DuidType.LLT, DuidType.LL):
            return int(_U16.unpack_from(self.raw, 2)[0])
        return None

    @property
    def link_layer_address(self) -> bytes | None:
        if self.type == DuidType.LLT:
            return self.raw[8:]
        if self.type == DuidType.LL:
            return self.raw[4:]
        return None

    @memoized
    def mac(self) -> str | None:
        """The Ethernet address of a DUID-LL/LLT, else None."""
        lladdr = self.link_layer_address
        if self.hardware_type == _HW_ETHERNET and lladdr is not None and len(lladdr) == 6:
            return format_mac(lladdr)
        return None

    @property
    def uuid(self) -> bytes | None:
        return self.raw[2:] if self.type == DuidType.UUID else None

    def hex(self) -> str:
        return self.raw.hex()

    def describe(self) -> str:
        """``DUID-LLT 52:54:00:12:34:56``, ``DUID-UUID 0011..``, ``DUID type 9 ...``."""
        return self._description

    @memoized
    def _description(self) -> str:
        try:
            name = f"DUID-{DuidType(self.type).name}"
        except ValueError:
            return f"DUID type {self.type} {self.raw[2:].hex()}"
        lladdr = self.link_layer_address
        if lladdr is not None:
            return f"{name} {format_mac(lladdr)}"
        return f"{name} {self.raw[2:].hex()}"


# -- options -------------------------------------------------------------------------------------

def _need(body: bytes, size: int, name: str, *, exact: bool = True) -> None:
    if (len(body) != size) if exact else (len(body) < size):
        what = "exactly" if exact else "at least"
        raise Dhcp6DecodeError(f"{name}: {len(body)} bytes, needs {what} {size}")


def _u16_list(body: bytes, name: str) -> tuple[int, ...]:
    if len(body) % 2:
        raise Dhcp6DecodeError(f"{name}: length {len(body)} is not a multiple of 2")
    return struct.unpack(f"!{len(body) // 2}H", body)


def _length_prefixed(body: bytes, name: str) -> tuple[bytes, ...]:
    """RFC 8415 21.15/21.16 and RFC 5970 3.2: items of a 2-byte length and that many bytes."""
    items: list[bytes] = []
    i = 0
    while i < len(body):
        if i + 2 > len(body):
            raise Dhcp6DecodeError(f"{name}: item at offset {i} has a torn length field")
        (size,) = _U16.unpack_from(body, i)
        if i + 2 + size > len(body):
            raise Dhcp6DecodeError(
                f"{name}: item at offset {i} claims {size} bytes, {len(body) - i - 2} left")
        items.append(body[i + 2:i + 2 + size])
        i += 2 + size
    return tuple(items)


def _join_length_prefixed(items: Iterable[bytes]) -> bytes:
    return b"".join(_U16.pack(len(item)) + item for item in items)


@dataclass(frozen=True)
class Option:
    """Base of every option; ``CODE`` and ``RFC`` name the layout."""

    CODE: ClassVar[int] = 0
    RFC: ClassVar[str] = ""
    NAME: ClassVar[str] = "option"

    @property
    def code(self) -> int:
        return self.CODE

    def body(self) -> bytes:
        raise NotImplementedError

    @classmethod
    def parse(cls, body: bytes, depth: int) -> Self:
        raise NotImplementedError


OptionT = TypeVar("OptionT", bound=Option)


@dataclass(frozen=True)
class UnknownOption(Option):
    """An option this codec has no layout for, kept as raw bytes."""

    number: int
    data: bytes

    @property
    def code(self) -> int:
        return self.number

    def body(self) -> bytes:
        return self.data


@dataclass(frozen=True)
class _DuidOption(Option):
    """An option whose whole body is one DUID (client-id, server-id)."""

    duid: Duid

    def body(self) -> bytes:
        return self.duid.raw

    @classmethod
    def parse(cls, body: bytes, depth: int) -> Self:
        return cls(Duid(body))


@dataclass(frozen=True)
class ClientId(_DuidOption):
    CODE, RFC, NAME = OptionCode.CLIENTID, "RFC 8415 21.2", "client-id"


@dataclass(frozen=True)
class ServerId(_DuidOption):
    CODE, RFC, NAME = OptionCode.SERVERID, "RFC 8415 21.3", "server-id"


@dataclass(frozen=True)
class StatusCode(Option):
    """status-code (2) and a UTF-8 status-message."""

    CODE, RFC, NAME = OptionCode.STATUS_CODE, "RFC 8415 21.13", "status-code"
    status: int
    message: str = ""

    def body(self) -> bytes:
        return _U16.pack(self.status) + self.message.encode()

    @classmethod
    def parse(cls, body: bytes, depth: int) -> Self:
        _need(body, 2, cls.NAME, exact=False)
        return cls(_U16.unpack_from(body)[0], body[2:].decode("utf-8", "replace"))


def _status_of(options: tuple[Option, ...]) -> StatusCode | None:
    return next((o for o in options if isinstance(o, StatusCode)), None)


@dataclass(frozen=True)
class IaAddress(Option):
    """address (16), preferred-lifetime (4), valid-lifetime (4), IAaddr-options."""

    CODE, RFC, NAME = OptionCode.IAADDR, "RFC 8415 21.6", "IAADDR"
    address: IPv6Address
    preferred: int = 0
    valid: int = 0
    options: tuple[Option, ...] = ()

    @property
    def status(self) -> StatusCode | None:
        return _status_of(self.options)

    def body(self) -> bytes:
        return (_IAADDR.pack(self.address.packed, self.preferred, self.valid)
                + _encode_options(self.options))

    @classmethod
    def parse(cls, body: bytes, depth: int) -> Self:
        _need(body, _IAADDR.size, cls.NAME, exact=False)
        address, preferred, valid = _IAADDR.unpack_from(body)
        return cls(IPv6Address(address), preferred, valid,
                   _decode_options(body[_IAADDR.size:], cls.NAME, depth + 1))


@dataclass(frozen=True)
class IaNa(Option):
    """IAID (4), T1 (4), T2 (4), IA_NA-options (IAADDR, status code)."""

    CODE, RFC, NAME = OptionCode.IA_NA, "RFC 8415 21.4", "IA_NA"
    iaid: int
    t1: int = 0
    t2: int = 0
    options: tuple[Option, ...] = ()

    @memoized
    def addresses(self) -> tuple[IaAddress, ...]:
        return tuple([o for o in self.options if isinstance(o, IaAddress)])

    @property
    def status(self) -> StatusCode | None:
        return _status_of(self.options)

    def body(self) -> bytes:
        return _IA_NA.pack(self.iaid, self.t1, self.t2) + _encode_options(self.options)

    @classmethod
    def parse(cls, body: bytes, depth: int) -> Self:
        _need(body, _IA_NA.size, cls.NAME, exact=False)
        iaid, t1, t2 = _IA_NA.unpack_from(body)
        return cls(iaid, t1, t2, _decode_options(body[_IA_NA.size:], cls.NAME, depth + 1))


@dataclass(frozen=True)
class OptionRequest(Option):
    """A list of 2-byte option codes the client wants."""

    CODE, RFC, NAME = OptionCode.ORO, "RFC 8415 21.7", "ORO"
    codes: tuple[int, ...] = ()

    def body(self) -> bytes:
        return b"".join(_U16.pack(c) for c in self.codes)

    @classmethod
    def parse(cls, body: bytes, depth: int) -> Self:
        return cls(_u16_list(body, cls.NAME))


@dataclass(frozen=True)
class Preference(Option):
    """pref-value (1); 255 makes a client take this Advertise at once (RFC 8415 18.2.1)."""

    CODE, RFC, NAME = OptionCode.PREFERENCE, "RFC 8415 21.8", "preference"
    value: int

    def body(self) -> bytes:
        return _U8.pack(self.value)

    @classmethod
    def parse(cls, body: bytes, depth: int) -> Self:
        _need(body, 1, cls.NAME)
        return cls(body[0])


@dataclass(frozen=True)
class ElapsedTime(Option):
    """elapsed-time (2) in hundredths of a second."""

    CODE, RFC, NAME = OptionCode.ELAPSED_TIME, "RFC 8415 21.9", "elapsed-time"
    hundredths: int

    def body(self) -> bytes:
        return _U16.pack(self.hundredths)

    @classmethod
    def parse(cls, body: bytes, depth: int) -> Self:
        _need(body, 2, cls.NAME)
        return cls(_U16.unpack(body)[0])


@dataclass(frozen=True)
class RelayMessageOption(Option):
    """The relayed DHCP message, kept as bytes (we do not serve through relays)."""

    CODE, RFC, NAME = OptionCode.RELAY_MSG, "RFC 8415 21.10", "relay-message"
    data: bytes

    def body(self) -> bytes:
        return self.data

    @classmethod
    def parse(cls, body: bytes, depth: int) -> Self:
        return cls(body)


@dataclass(frozen=True)
class RapidCommit(Option):
    """Empty; a Solicit with it asks for a Reply at once (RFC 8415 18.3.1)."""

    CODE, RFC, NAME = OptionCode.RAPID_COMMIT, "RFC 8415 21.14", "rapid-commit"

    def body(self) -> bytes:
        return b""

    @classmethod
    def parse(cls, body: bytes, depth: int) -> Self:
        _need(body, 0, cls.NAME)
        return cls()


@dataclass(frozen=True)
class UserClass(Option):
    """user-class-data: items of a 2-byte length and opaque bytes; iPXE sends ``iPXE``."""

    CODE, RFC, NAME = OptionCode.USER_CLASS, "RFC 8415 21.15", "user-class"
    classes: tuple[bytes, ...] = ()

    def body(self) -> bytes:
        return _join_length_prefixed(self.classes)

    @classmethod
    def parse(cls, body: bytes, depth: int) -> Self:
        return cls(_length_prefixed(body, cls.NAME))


@dataclass(frozen=True)
class VendorClass(Option):
    """enterprise-number (4), then vendor-class-data items of a 2-byte length and bytes."""

    CODE, RFC, NAME = OptionCode.VENDOR_CLASS, "RFC 8415 21.16", "vendor-class"
    enterprise: int
    data: tuple[bytes, ...] = ()

    def body(self) -> bytes:
        return _U32.pack(self.enterprise) + _join_length_prefixed(self.data)

    @classmethod
    def parse(cls, body: bytes, depth: int) -> Self:
        _need(body, 4, cls.NAME, exact=False)
        return cls(_U32.unpack_from(body)[0], _length_prefixed(body[4:], cls.NAME))


@dataclass(frozen=True)
class DnsServers(Option):
    """A list of 16-byte IPv6 addresses."""

    CODE, RFC, NAME = OptionCode.DNS_SERVERS, "RFC 3646 3", "dns-servers"
    addresses: tuple[IPv6Address, ...] = ()

    def body(self) -> bytes:
        return b"".join(a.packed for a in self.addresses)

    @classmethod
    def parse(cls, body: bytes, depth: int) -> Self:
        if len(body) % 16:
            raise Dhcp6DecodeError(f"{cls.NAME}: length {len(body)} is not a multiple of 16")
        return cls(tuple(IPv6Address(body[i:i + 16]) for i in range(0, len(body), 16)))


@dataclass(frozen=True)
class BootFileUrl(Option):
    """The boot file as a URL (UTF-8, not NUL-terminated): ``tftp://[2001:db8::1]/x``."""

    CODE, RFC, NAME = OptionCode.BOOTFILE_URL, "RFC 5970 3.1", "bootfile-url"
    url: str

    def body(self) -> bytes:
        return self.url.encode()

    @classmethod
    def parse(cls, body: bytes, depth: int) -> Self:
        return cls(body.decode("utf-8", "replace"))


@dataclass(frozen=True)
class BootFileParams(Option):
    """Parameters for the boot file: items of a 2-byte length and UTF-8 text."""

    CODE, RFC, NAME = OptionCode.BOOTFILE_PARAM, "RFC 5970 3.2", "bootfile-param"
    params: tuple[str, ...] = ()

    def body(self) -> bytes:
        return _join_length_prefixed(p.encode() for p in self.params)

    @classmethod
    def parse(cls, body: bytes, depth: int) -> Self:
        return cls(tuple(p.decode("utf-8", "replace")
                         for p in _length_prefixed(body, cls.NAME)))


@dataclass(frozen=True)
class ClientArch(Option):
    """A list of 2-byte architecture types (RFC 4578 2.1 values): 7 PXE, 16 HTTP on x64."""

    CODE, RFC, NAME = OptionCode.CLIENT_ARCH_TYPE, "RFC 5970 3.3", "client-arch-type"
    types: tuple[int, ...] = ()

    def body(self) -> bytes:
        return b"".join(_U16.pack(t) for t in self.types)

    @classmethod
    def parse(cls, body: bytes, depth: int) -> Self:
        if not body:
            raise Dhcp6DecodeError(f"{cls.NAME}: empty, needs at least one type")
        return cls(_u16_list(body, cls.NAME))


@dataclass(frozen=True)
class ClientNii(Option):
    """Network interface identifier: type (1), major (1), minor (1); UNDI 3.0 = 1, 3, 0."""

    CODE, RFC, NAME = OptionCode.NII, "RFC 5970 3.4", "nii"
    type: int
    major: int
    minor: int

    def body(self) -> bytes:
        return _NII.pack(self.type, self.major, self.minor)

    @classmethod
    def parse(cls, body: bytes, depth: int) -> Self:
        _need(body, _NII.size, cls.NAME)
        return cls(*_NII.unpack(body))


OPTIONS: dict[int, type[Option]] = {cls.CODE: cls for cls in (
    ClientId, ServerId, IaNa, IaAddress, OptionRequest, Preference, ElapsedTime,
    RelayMessageOption, StatusCode, RapidCommit, UserClass, VendorClass, DnsServers,
    BootFileUrl, BootFileParams, ClientArch, ClientNii,
)}


def _decode_options(data: bytes, where: str, depth: int = 0) -> tuple[Option, ...]:
    if depth > MAX_DEPTH:
        raise Dhcp6DecodeError(f"{where}: options nested deeper than {MAX_DEPTH} levels")
    if not data:
        return ()  # most IAADDRs carry no options
    options: list[Option] = []
    i = 0
    while i < len(data):
        if i + _OPTION_HEADER.size > len(data):
            raise Dhcp6DecodeError(
                f"{where}: option header at offset {i} is torn ({len(data) - i} bytes left)")
        code, size = _OPTION_HEADER.unpack_from(data, i)
        start = i + _OPTION_HEADER.size
        if start + size > len(data):
            raise Dhcp6DecodeError(
                f"{where}: option {code} at offset {i} claims {size} bytes, "
                f"{len(data) - start} left")
        body = data[start:start + size]
        kind = OPTIONS.get(code)
        if kind is None:
            options.append(UnknownOption(code, body))
        else:
            try:
                options.append(kind.parse(body, depth))
            except Dhcp6DecodeError as exc:
                raise Dhcp6DecodeError(f"{where}: option {code} at offset {i}: {exc}") from None
        i = start + size
    return tuple(options)


def _encode_options(options: Iterable[Option]) -> bytes:
    out = bytearray()
    for opt in options:
        body = opt.body()
        if len(body) > 0xFFFF:
            raise ValueError(f"option {opt.code} body of {len(body)} bytes exceeds 65535")
        out += _OPTION_HEADER.pack(opt.code, len(body)) + body
    return bytes(out)


# -- messages ------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Dhcp6Message:
    """A client/server message (RFC 8415 8): type, 24-bit transaction id, options in order."""

    msg_type: MessageType
    xid: int
    options: tuple[Option, ...] = ()

    # A message has a handful of options: a plain loop finds one faster than any index
    # costs to build. What a server reads several times per message is memoised below.

    def get(self, kind: type[OptionT]) -> OptionT | None:
        """The first option of class ``kind``, or None."""
        for opt in self.options:
            if isinstance(opt, kind):
                return opt
        return None

    def all(self, kind: type[OptionT]) -> tuple[OptionT, ...]:
        return tuple([o for o in self.options if isinstance(o, kind)])

    def has(self, code: int) -> bool:
        return any(opt.code == code for opt in self.options)

    @memoized
    def client_duid(self) -> Duid | None:
        opt = self.get(ClientId)
        return opt.duid if opt else None

    @memoized
    def server_duid(self) -> Duid | None:
        opt = self.get(ServerId)
        return opt.duid if opt else None

    @memoized
    def requested(self) -> tuple[int, ...]:
        """Codes from the ORO (RFC 8415 21.7); () when the client sent none."""
        opt = self.get(OptionRequest)
        return opt.codes if opt else ()

    @property
    def status(self) -> StatusCode | None:
        return self.get(StatusCode)


@dataclass(frozen=True)
class RelayMessage:
    """Relay-forward or Relay-reply (RFC 8415 9); the inner message stays in option 9."""

    msg_type: MessageType
    hop_count: int
    link_address: IPv6Address
    peer_address: IPv6Address
    options: tuple[Option, ...] = ()


def decode(data: bytes) -> Dhcp6Message | RelayMessage:
    """Parse one DHCPv6 message; raise :class:`Dhcp6DecodeError` if it is malformed."""
    if len(data) < _HEADER.size:
        raise Dhcp6DecodeError(f"message is {len(data)} bytes, shorter than the 4-byte header")
    try:
        msg_type = MessageType(data[0])
    except ValueError:
        raise Dhcp6DecodeError(f"message type {data[0]} is not defined in RFC 8415 7.3") from None
    if msg_type.is_relay():
        if len(data) < _RELAY_HEADER.size:
            raise Dhcp6DecodeError(f"{msg_type.label} is {len(data)} bytes, shorter than "
                                   f"its {_RELAY_HEADER.size}-byte header")
        _, hops, link, peer = _RELAY_HEADER.unpack_from(data)
        return RelayMessage(msg_type, hops, IPv6Address(link), IPv6Address(peer),
                            _decode_options(data[_RELAY_HEADER.size:], msg_type.label))
    _, xid = _HEADER.unpack_from(data)
    return Dhcp6Message(msg_type, int.from_bytes(xid, "big"),
                        _decode_options(data[_HEADER.size:], msg_type.label))


def encode(msg: Dhcp6Message | RelayMessage) -> bytes:
    """Serialize ``msg``; options keep their order."""
    if isinstance(msg, RelayMessage):
        head = _RELAY_HEADER.pack(msg.msg_type, msg.hop_count, msg.link_address.packed,
                                  msg.peer_address.packed)
        return head + _encode_options(msg.options)
    if not 0 <= msg.xid <= 0xFFFFFF:
        raise ValueError(f"transaction id {msg.xid:#x} does not fit 24 bits")
    return _HEADER.pack(msg.msg_type, msg.xid.to_bytes(3, "big")) + _encode_options(msg.options)
