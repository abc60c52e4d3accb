"""TFTP packets and option negotiation (pure, no sockets).

Packets from RFC 1350 section 5, the OACK and option framing from RFC 2347,
blksize from RFC 2348, timeout and tsize from RFC 2349, windowsize from
RFC 7440. :func:`negotiate` decides the OACK: it only ever answers options the
client asked for, never raises blksize/windowsize above the request and echoes
timeout unchanged (OVMF rejects anything else as "Malformatted OACK packet").
:func:`to_netascii` is the RFC 1350/RFC 764 text encoding of the netascii mode.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from enum import IntEnum

__all__ = [
    "DATA_HEADER",
    "Ack",
    "Data",
    "Error",
    "ErrorCode",
    "Negotiated",
    "Opcode",
    "OptionAck",
    "Packet",
    "ReadRequest",
    "TftpDecodeError",
    "WriteRequest",
    "decode",
    "encode",
    "encode_data",
    "negotiate",
    "to_netascii",
]


class TftpDecodeError(ValueError):
    """The bytes are not a TFTP packet we can read."""


class Opcode(IntEnum):
    RRQ = 1
    WRQ = 2
    DATA = 3
    ACK = 4
    ERROR = 5
    OACK = 6  # RFC 2347


class ErrorCode(IntEnum):
    """RFC 1350 appendix, plus 8 from RFC 2347 (option negotiation refused)."""

    NOT_DEFINED = 0
    FILE_NOT_FOUND = 1
    ACCESS_VIOLATION = 2
    DISK_FULL = 3
    ILLEGAL_OPERATION = 4
    UNKNOWN_TID = 5
    FILE_EXISTS = 6
    NO_SUCH_USER = 7
    OPTION_REFUSED = 8


@dataclass(frozen=True)
class ReadRequest:
    filename: str
    mode: str = "octet"
    options: tuple[tuple[str, str], ...] = ()  # names lower-cased, wire order kept


@dataclass(frozen=True)
class WriteRequest:
    filename: str
    mode: str = "octet"
    options: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class Data:
    block: int
    payload: bytes


@dataclass(frozen=True)
class Ack:
    block: int


@dataclass(frozen=True)
class Error:
    code: int
    message: str = ""


@dataclass(frozen=True)
class OptionAck:
    options: tuple[tuple[str, str], ...]


Packet = ReadRequest | WriteRequest | Data | Ack | Error | OptionAck

_HEAD = struct.Struct("!HH")
# Opcode and block number of a DATA packet (RFC 1350 section 5, figure 5-2); the server's
# hot path packs ``DATA_HEADER.pack(3, block & 0xFFFF)`` itself to skip a call per block.
DATA_HEADER = _HEAD


def _strings(body: bytes, what: str) -> list[str]:
    if not body.endswith(b"\x00"):
        raise TftpDecodeError(f"{what}: last string is not NUL-terminated")
    return [part.decode("latin-1") for part in body[:-1].split(b"\x00")]


def _request(body: bytes, opcode: Opcode) -> ReadRequest | WriteRequest:
    fields = _strings(body, opcode.name)
    if len(fields) < 2:
        raise TftpDecodeError(f"{opcode.name}: needs filename and mode, got {len(fields)} field")
    filename, mode, *rest = fields
    if not filename:
        raise TftpDecodeError(f"{opcode.name}: empty filename")
    while len(rest) % 2 and rest[-1] == "":  # trailing NUL padding some PXE ROMs send
        rest.pop()
    if len(rest) % 2:
        raise TftpDecodeError(f"{opcode.name}: option {rest[-1]!r} has no value")
    options = tuple((rest[i].lower(), rest[i + 1]) for i in range(0, len(rest), 2))
    cls = ReadRequest if opcode is Opcode.RRQ else WriteRequest
    return cls(filename, mode.lower(), options)


def decode(data: bytes) -> Packet:
    """Parse one TFTP packet; raise :class:`TftpDecodeError` if malformed."""
    if len(data) < 2:
        raise TftpDecodeError(f"packet of {len(data)} bytes has no opcode")
    number = int.from_bytes(data[:2], "big")
    try:
        opcode = Opcode(number)
    except ValueError:
        raise TftpDecodeError(f"unknown opcode {number}") from None
    body = data[2:]
    if opcode in (Opcode.RRQ, Opcode.WRQ):
        return _request(body, opcode)
    if opcode is Opcode.OACK:
        fields = _strings(body, "OACK") if body else []
        if len(fields) % 2:
            raise TftpDecodeError(f"OACK: option {fields[-1]!r} has no value")
        return OptionAck(tuple((fields[i].lower(), fields[i + 1])
                               for i in range(0, len(fields), 2)))
    if len(data) < 4:
        raise TftpDecodeError(f"{opcode.name} of {len(data)} bytes lacks its 2-byte number")
    number = int.from_bytes(data[2:4], "big")
    if opcode is Opcode.DATA:
        return Data(number, data[4:])
    if opcode is Opcode.ACK:
        return Ack(number)
    # ERROR: RFC 1350 says NUL-terminated; tolerate a missing NUL from sloppy clients.
    return Error(number, data[4:].split(b"\x00", 1)[0].decode("latin-1"))


def _pack_strings(*parts: str) -> bytes:
    return b"".join(part.encode("latin-1") + b"\x00" for part in parts)


def encode_data(block: int, payload: bytes | memoryview) -> bytes:
    """DATA packet; block numbers roll over to 0 after 65535 (as tftpd-hpa and dnsmasq)."""
    return _HEAD.pack(Opcode.DATA, block & 0xFFFF) + payload


def to_netascii(data: bytes) -> bytes:
    """The netascii form of a Unix file (RFC 1350 section 1, RFC 764 page 11).

    A line ends in CR LF and a bare CR is sent as CR NUL: every LF becomes
    CR LF and every CR becomes CR NUL (so "\\r\\n" in the file becomes CR NUL CR LF,
    as tftpd-hpa sends it). CR first, or the CRs added for LFs would be doubled.
    """
    return data.replace(b"\r", b"\r\x00").replace(b"\n", b"\r\n")


def encode(packet: Packet) -> bytes:
    if isinstance(packet, ReadRequest | WriteRequest):
        opcode = Opcode.RRQ if isinstance(packet, ReadRequest) else Opcode.WRQ
        flat = [item for pair in packet.options for item in pair]
        return opcode.to_bytes(2, "big") + _pack_strings(packet.filename, packet.mode, *flat)
    if isinstance(packet, Data):
        return encode_data(packet.block, packet.payload)
    if isinstance(packet, Ack):
        return _HEAD.pack(Opcode.ACK, packet.block & 0xFFFF)
    if isinstance(packet, Error):
        return _HEAD.pack(Opcode.ERROR, packet.code) + _pack_strings(packet.message)
    flat = [item for pair in packet.options for item in pair]
    return Opcode.OACK.to_bytes(2, "big") + _pack_strings(*flat)


# -- option negotiation ----------------------------------------------------------------------

@dataclass(frozen=True)
class Negotiated:
    """Transfer parameters and the OACK options (empty: no OACK, start with DATA 1)."""

    blksize: int = 512
    windowsize: int = 1
    timeout: float | None = None  # None: the server's default
    oack: tuple[tuple[str, str], ...] = ()


def _int(value: str) -> int | None:
    try:
        return int(value, 10)
    except ValueError:
        return None


def negotiate(options: tuple[tuple[str, str], ...], size: int, max_blksize: int = 1468,
              max_windowsize: int = 64) -> Negotiated:
    """Accept what we can of the client's options, in the client's order.

    Unknown or invalid options are left out of the OACK (RFC 2347: the server
    omits options it does not support). blksize 8..65464 (RFC 2348) and
    windowsize 1..65535 (RFC 7440) may be lowered to our maxima, never raised;
    timeout 1..255 (RFC 2349) is echoed as is; tsize answers the file size.
    """
    blksize, windowsize, timeout = 512, 1, None
    accepted: list[tuple[str, str]] = []
    for name, value in options:
        number = _int(value)
        if number is None or any(name == seen for seen, _ in accepted):
            continue
        if name == "blksize" and 8 <= number <= 65464:
            blksize = min(number, max_blksize)
            accepted.append((name, str(blksize)))
        elif name == "windowsize" and 1 <= number <= 65535:
            windowsize = min(number, max_windowsize)
            accepted.append((name, str(windowsize)))
        elif name == "timeout" and 1 <= number <= 255:
            timeout = float(number)
            accepted.append((name, value))
        elif name == "tsize" and number >= 0:
            accepted.append((name, str(size)))
    return Negotiated(blksize, windowsize, timeout, tuple(accepted))
