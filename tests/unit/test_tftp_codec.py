"""TFTP codec, option negotiation, transfer plans and ACK logic, data-root path safety.

No sockets: a transfer runs against a recording stand-in for its socket.
"""

from __future__ import annotations

import contextlib
import random
import socket
import sys
from pathlib import Path
from typing import Any

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

from pxelab.core.events import EventLog
from pxelab.server.faults import DropPacket, FaultInjector, OackFault, OackMode, TftpFaults
from pxelab.server.tftp import codec
from pxelab.server.tftp.codec import (
    Ack,
    Data,
    Error,
    ErrorCode,
    OptionAck,
    ReadRequest,
    TftpDecodeError,
    WriteRequest,
)
from pxelab.server.tftp.files import DataRoot, FileMissingError, PathDeniedError
from pxelab.server.tftp.plan import Plan, plan_transfer
from pxelab.server.tftp.pump import Pump
from pxelab.server.tftp.server import IP_PKTINFO, Local, TftpSettings, _local_from
from pxelab.server.tftp.transfer import ReadTransfer

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


def test_names_too_long_or_unreadable_are_denied(root: DataRoot) -> None:
    with pytest.raises(PathDeniedError, match="over"):
        root.resolve("a/" * 600)
    with pytest.raises(PathDeniedError, match="too long"):
        root.resolve("a" * 300)


def test_load_refuses_a_symlink_swapped_in_after_resolve(root: DataRoot, tmp_path: Path) -> None:
    path = root.resolve("pxelinux.0")
    path.unlink()
    path.symlink_to(tmp_path / "secret")
    with pytest.raises(PathDeniedError, match="cannot open"):
        root.read(path)
    assert root.load("sub/ldlinux.c32") == b"ld"


# -- netascii and request padding ------------------------------------------------------------

@pytest.mark.parametrize(("text", "wire"), [
    (b"a\nb\n", b"a\r\nb\r\n"),
    (b"bare\rcr", b"bare\r\x00cr"),
    (b"dos\r\n", b"dos\r\x00\r\n"),  # a Unix file holding CR LF: the CR is data
    (b"", b""),
])
def test_netascii(text: bytes, wire: bytes) -> None:
    assert codec.to_netascii(text) == wire


def test_trailing_nul_padding_after_options_is_tolerated() -> None:
    packet = codec.decode(b"\x00\x01f\x00octet\x00tsize\x000\x00\x00")
    assert packet == ReadRequest("f", "octet", (("tsize", "0"),))


# -- plans: negotiation plus faults (pure) ---------------------------------------------------

def plan(options: dict[str, str], faults: TftpFaults | None = None, mode: str = "octet",
         content: bytes = b"x" * 3000) -> Plan:
    request = ReadRequest("f", mode, tuple(options.items()))
    return plan_transfer(request, content, faults or TftpFaults(), max_blksize=1468,
                         max_windowsize=64)


def test_plan_without_faults() -> None:
    made = plan({"tsize": "0", "blksize": "1024"})
    assert made.oack == codec.encode(OptionAck((("tsize", "3000"), ("blksize", "1024"))))
    assert made.negotiated.blksize == 1024 and not made.refuse and made.fault == ""
    assert plan({}).oack is None


def test_plan_netascii_tsize_is_the_size_on_the_wire() -> None:
    made = plan({"tsize": "0"}, mode="netascii", content=b"a\nb\n")
    assert made.data == b"a\r\nb\r\n" and made.negotiated.oack == (("tsize", "6"),)


@pytest.mark.parametrize(("mode", "check"), [
    (OackMode.REFUSE, lambda p: p.refuse and p.oack is None),
    (OackMode.IGNORE, lambda p: p.oack is None and p.negotiated == codec.Negotiated()),
    (OackMode.ADD_OPTION, lambda p: codec.decode(p.oack) == OptionAck(
        (("tsize", "3000"), ("blksize", "1468"), ("windowsize", "64")))),
])
def test_plan_oack_faults(mode: OackMode, check: Any) -> None:
    made = plan({"tsize": "0", "blksize": "1468"}, TftpFaults(oack=OackFault(mode)))
    assert check(made) and made.fault == mode.value


def test_plan_corrupt_oack_is_not_a_list_of_pairs() -> None:
    made = plan({"tsize": "0"}, TftpFaults(oack=OackFault(OackMode.CORRUPT)))
    assert made.oack is not None
    with pytest.raises(TftpDecodeError, match="no value"):
        codec.decode(made.oack)


def test_plan_lie_and_truncate() -> None:
    made = plan({"tsize": "0"}, TftpFaults(tsize=7, truncate=100))
    assert made.negotiated.oack == (("tsize", "7"),) and len(made.data) == 100
    truncated = plan({"tsize": "0"}, TftpFaults(truncate=100))
    assert truncated.negotiated.oack == (("tsize", "3000"),)  # the real size, cut data


def test_drop_packet_by_file_glob_counts_matching_packets() -> None:
    events = EventLog()
    faults = FaultInjector((DropPacket("tftp.rrq", nth=2, file="ldlinux.*"),), events)
    verdicts = [faults.packet("tftp.rrq", "c", file=name).drop
                for name in ("pxelinux.0", "ldlinux.c32", "pxelinux.0", "ldlinux.c32")]
    assert verdicts == [False, False, False, True]
    assert "ldlinux.c32" in events.matching(lambda e: e.source == "fault")[0].request


# -- the local address of a request ----------------------------------------------------------

def test_local_address_from_pktinfo() -> None:
    order = sys.byteorder
    v4 = (socket.IPPROTO_IP, IP_PKTINFO, (3).to_bytes(4, order)
          + socket.inet_aton("192.0.2.2") + socket.inet_aton("192.0.2.255"))
    assert _local_from(socket.AF_INET, [v4]) == Local(socket.AF_INET, "192.0.2.2", 3)
    v6 = (socket.IPPROTO_IPV6, socket.IPV6_PKTINFO,
          socket.inet_pton(socket.AF_INET6, "fe80::1") + (4).to_bytes(4, order))
    local = _local_from(socket.AF_INET6, [v6])
    assert local == Local(socket.AF_INET6, "fe80::1", 4)
    assert local.bind_address() == ("fe80::1", 0, 0, 4)  # link-local: needs the scope
    multicast = (socket.IPPROTO_IPV6, socket.IPV6_PKTINFO,
                 socket.inet_pton(socket.AF_INET6, "ff02::1") + (4).to_bytes(4, order))
    assert _local_from(socket.AF_INET6, [multicast]).host == "::"
    assert _local_from(socket.AF_INET, []) == Local(socket.AF_INET, "0.0.0.0")


# -- a transfer's ACK logic, without a network -----------------------------------------------

class RecordingSocket:
    """What a ReadTransfer needs of its socket; records what it sends."""

    def __init__(self) -> None:
        self.sent: list[bytes] = []
        self.options: list[bytes] = []

    def setblocking(self, flag: bool) -> None:
        pass

    def setsockopt(self, level: int, name: int, value: bytes) -> None:
        self.options.append(value)

    def getsockname(self) -> tuple[str, int]:
        return ("192.0.2.1", 40000)

    def send(self, data: bytes) -> int:
        self.sent.append(bytes(data))
        return len(data)

    def take(self) -> list[bytes]:
        sent, self.sent = self.sent, []
        return sent

    def shutdown(self, how: int) -> None:
        pass


class FakeServer:
    """The parts of a TftpServer a ReadTransfer uses."""

    def __init__(self, **settings: Any) -> None:
        self.events = EventLog()
        self.faults = FaultInjector((), self.events)
        self.settings = TftpSettings(**settings)
        self.loop = None
        self.sock = RecordingSocket()
        self.with_strangers: set[ReadTransfer] = set()
        self.pump = Pump()  # never started: its timers and calls stay queued

    def forget(self, transfer: ReadTransfer) -> None:
        pass


def started(server: FakeServer, options: dict[str, str], content: bytes) -> ReadTransfer:
    """A transfer that sent its first packet (no thread: the test plays the client)."""
    request = ReadRequest("f", "octet", tuple(options.items()))
    transfer = ReadTransfer(server, request, ("192.0.2.50", 2000),  # type: ignore[arg-type]
                            Local(socket.AF_INET, "192.0.2.1"))
    plan = plan_transfer(request, content, TftpFaults(), 1468, 64)
    transfer.prepare(plan, server.sock)  # type: ignore[arg-type]
    transfer.send_first()
    return transfer


@pytest.mark.parametrize("window", [1, 4])
def test_block_numbers_roll_over_in_lockstep_and_windows(window: int) -> None:
    content = (bytes(range(256)) * 2200)[:8 * 70_000]  # 70001 blocks of 8, the last empty
    server = FakeServer()
    transfer = started(server, {"blksize": "8", "windowsize": str(window)}, content)
    assert isinstance(codec.decode(server.sock.take()[0]), OptionAck)
    transfer.on_ack(0)
    got, expected = bytearray(), 1
    while not transfer.finished:
        for raw in server.sock.take():
            assert int.from_bytes(raw[2:4], "big") == expected & 0xFFFF
            got += raw[4:]
            expected += 1
        assert transfer.on_ack((expected - 1) & 0xFFFF)
    assert got == content and expected - 1 == 70_001
    [sent] = server.events.matching(lambda e: e.kind == "sent")
    assert sent.details["blocks"] == 70_001 and sent.details["bytes"] == len(content)


def test_duplicate_stray_and_early_acks() -> None:
    server = FakeServer()
    transfer = started(server, {"blksize": "512", "windowsize": "4"}, b"z" * 5000)
    server.sock.take()  # the OACK
    transfer.on_ack(0)
    assert [raw[3] for raw in server.sock.take()] == [1, 2, 3, 4]
    assert not transfer.on_ack(0)  # a duplicate: nothing (Sorcerer's Apprentice)
    assert not transfer.on_ack(9)  # not sent yet: nothing
    assert server.sock.take() == []
    transfer.on_ack(2)  # 3 and 4 were lost: the next window starts at 3 (RFC 7440)
    assert [raw[3] for raw in server.sock.take()] == [3, 4, 5, 6]
    assert not transfer.on_ack(2)
    assert server.sock.take() == []
    transfer.on_ack(6)
    assert [raw[3] for raw in server.sock.take()] == [7, 8, 9, 10]
    transfer.on_ack(10)
    assert transfer.finished and server.events.matching(lambda e: e.kind == "sent")


def test_retransmissions_back_off_then_give_up() -> None:
    server = FakeServer(timeout=1.0, retries=4, max_timeout=3.0)
    transfer = started(server, {"tsize": "0"}, b"z" * 100)
    waits = []
    while not transfer.finished:
        waits.append(transfer._interval)
        transfer.on_timeout()
    copies = [raw for raw in server.sock.take() if raw[:2] == b"\x00\x06"]
    assert len(copies) == 1 + 4  # the OACK and 4 retransmissions
    assert waits == [1, 2, 3, 3, 3]  # 1 s, then doubling up to the 3 s cap
    [error] = server.events.matching(lambda e: e.kind == "error")
    assert "4 retransmissions, no ACK of the OACK" in error.reason


def test_progress_resets_the_backoff() -> None:
    server = FakeServer(timeout=0.5)
    transfer = started(server, {}, b"z" * 2000)  # no options: DATA 1 first
    transfer.on_timeout()
    transfer.on_timeout()
    assert transfer.retransmits == 2
    transfer.on_ack(1)
    assert transfer.retries == 0 and transfer._interval == 0.5
