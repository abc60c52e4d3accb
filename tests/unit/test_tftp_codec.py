"""TFTP codec, option negotiation and data-root path safety (no sockets)."""

from __future__ import annotations

import contextlib
import random
from pathlib import Path

import pytest
from scapy.layers.tftp import (
    TFTP,
    TFTP_ACK,
    TFTP_DATA,
    TFTP_ERROR,
    TFTP_OACK,
    TFTP_RRQ,
    TFTP_Option,
    TFTP_Options,
)

from pxelab.tftp import codec
from pxelab.tftp.codec import (
    Ack,
    Data,
    Error,
    ErrorCode,
    OptionAck,
    ReadRequest,
    TftpDecodeError,
    WriteRequest,
)
from pxelab.tftp.files import DataRoot, FileMissingError, PathDeniedError

pytestmark = pytest.mark.unit


def ovmf_rrq() -> bytes:
    """OVMF's request: tsize 0 blksize 1468 windowsize 4 (firmware-facts.md)."""
    return (b"\x00\x01pxelinux.0\x00octet\x00tsize\x000\x00blksize\x001468\x00"
            b"windowsize\x004\x00")


def test_decode_scapy_rrq_with_options() -> None:
    raw = bytes(TFTP() / TFTP_RRQ(filename=b"boot/ldlinux.c32", mode=b"octet")
                / TFTP_Options(options=[TFTP_Option(oname=b"BLKSIZE", value=b"1408"),
                                        TFTP_Option(oname=b"tsize", value=b"0")]))
    packet = codec.decode(raw)
    assert packet == ReadRequest("boot/ldlinux.c32", "octet",
                                 (("blksize", "1408"), ("tsize", "0")))


def test_decode_ovmf_rrq() -> None:
    packet = codec.decode(ovmf_rrq())
    assert isinstance(packet, ReadRequest)
    assert dict(packet.options) == {"tsize": "0", "blksize": "1468", "windowsize": "4"}


@pytest.mark.parametrize("packet", [
    ReadRequest("a/b.efi", "octet", (("blksize", "1432"), ("tsize", "0"))),
    WriteRequest("up.bin", "netascii"),
    Data(65535, b"x" * 512),
    Data(0, b""),
    Ack(7),
    Error(ErrorCode.FILE_NOT_FOUND, "file not found"),
    OptionAck((("blksize", "1468"), ("tsize", "12345"))),
])
def test_round_trip(packet: codec.Packet) -> None:
    assert codec.decode(codec.encode(packet)) == packet


def test_encoded_packets_dissected_by_scapy() -> None:
    oack = TFTP(codec.encode(OptionAck((("blksize", "1468"), ("tsize", "99")))))
    assert oack.haslayer(TFTP_OACK)
    assert {o.oname: o.value for o in oack[TFTP_Options].options} == {
        b"blksize": b"1468", b"tsize": b"99"}
    data = TFTP(codec.encode_data(70000, b"payload"))  # block numbers roll over
    assert data[TFTP_DATA].block == 70000 - 65536
    assert bytes(data[TFTP_DATA].payload) == b"payload"
    error = TFTP(codec.encode(Error(ErrorCode.ACCESS_VIOLATION, "access violation")))
    assert error[TFTP_ERROR].errorcode == 2
    assert error[TFTP_ERROR].errormsg == b"access violation"
    assert TFTP(codec.encode(Ack(3)))[TFTP_ACK].block == 3


def test_client_error_8_decodes() -> None:
    raw = bytes(TFTP() / TFTP_ERROR(errorcode=8, errormsg=b"User aborted the transfer"))
    assert codec.decode(raw) == Error(8, "User aborted the transfer")


@pytest.mark.parametrize("raw", [
    b"", b"\x00", b"\x00\x09abc", b"\x00\x01file\x00",  # no mode
    b"\x00\x01file\x00octet",  # mode not NUL-terminated
    b"\x00\x01file\x00octet\x00blksize\x00",  # option without value
    b"\x00\x01\x00octet\x00",  # empty file name
    b"\x00\x04\x01",  # short ACK
], ids=["empty", "one-byte", "opcode-9", "no-mode", "unterminated", "odd-options",
        "empty-name", "short-ack"])
def test_malformed_raises(raw: bytes) -> None:
    with pytest.raises(TftpDecodeError):
        codec.decode(raw)


def test_fuzzed_input_only_raises_codec_error() -> None:
    rng = random.Random(1350)
    good = ovmf_rrq()
    for _ in range(3000):
        data = bytearray(good[:rng.randrange(len(good) + 1)])
        for _ in range(rng.randrange(3)):
            if data:
                data[rng.randrange(len(data))] = rng.randrange(256)
        with contextlib.suppress(TftpDecodeError):
            codec.decode(bytes(data))


# -- negotiation -----------------------------------------------------------------------------

def test_negotiate_ovmf_options_in_client_order() -> None:
    options = codec.decode(ovmf_rrq()).options  # type: ignore[union-attr]
    result = codec.negotiate(options, size=42)
    assert result.oack == (("tsize", "42"), ("blksize", "1468"), ("windowsize", "4"))
    assert (result.blksize, result.windowsize) == (1468, 4)


def test_negotiate_never_adds_or_raises() -> None:
    result = codec.negotiate((("blksize", "65464"), ("windowsize", "500"), ("timeout", "3"),
                              ("multicast", ""), ("utimeout", "1000")), size=1,
                             max_blksize=1468, max_windowsize=64)
    assert result.oack == (("blksize", "1468"), ("windowsize", "64"), ("timeout", "3"))
    assert result.timeout == 3.0
    small = codec.negotiate((("blksize", "512"),), size=1)
    assert small.oack == (("blksize", "512"),)


def test_negotiate_ignores_invalid_values() -> None:
    result = codec.negotiate((("blksize", "7"), ("timeout", "0"), ("tsize", "x"),
                              ("windowsize", "0")), size=1)
    assert result.oack == ()
    assert result.blksize == 512 and result.windowsize == 1 and result.timeout is None


# -- data root -------------------------------------------------------------------------------

@pytest.fixture
def root(tmp_path: Path) -> DataRoot:
    """A data root with a file, a subdirectory, an inside and an escaping symlink."""
    base = tmp_path / "root"
    (base / "sub").mkdir(parents=True)
    (base / "pxelinux.0").write_bytes(b"nbp")
    (base / "sub" / "ldlinux.c32").write_bytes(b"ld")
    (tmp_path / "secret").write_text("no")
    (base / "inside").symlink_to("pxelinux.0")
    (base / "escape").symlink_to(tmp_path / "secret")
    return DataRoot(base)


def test_resolves_inside(root: DataRoot) -> None:
    assert root.resolve("pxelinux.0") == root.root / "pxelinux.0"
    assert root.resolve("sub/ldlinux.c32").read_bytes() == b"ld"
    assert root.resolve("inside").name == "pxelinux.0"
    assert root.read(root.resolve("pxelinux.0")) == b"nbp"


@pytest.mark.parametrize("name", ["../secret", "sub/../../secret", "/etc/passwd", "escape",
                                  "a\x00b", ""])
def test_refuses_escapes(root: DataRoot, name: str) -> None:
    with pytest.raises(PathDeniedError):
        root.resolve(name)


def test_missing_and_directories(root: DataRoot) -> None:
    with pytest.raises(FileMissingError):
        root.resolve("nope")
    with pytest.raises(FileMissingError):
        root.resolve("sub")


def test_absolute_names_when_allowed(root: DataRoot) -> None:
    relaxed = DataRoot(root.root, allow_absolute=True)
    assert relaxed.resolve("/sub/ldlinux.c32") == root.root / "sub" / "ldlinux.c32"
    with pytest.raises(PathDeniedError):
        relaxed.resolve("/../secret")


def test_read_cache_follows_changes(root: DataRoot) -> None:
    path = root.resolve("pxelinux.0")
    assert root.read(path) == b"nbp"
    path.write_bytes(b"changed!")
    assert root.read(path) == b"changed!"
