"""The TFTP server of a BootServer against crafted packets and real Debian clients.

Layout: tests/netns/nslab.py's two namespaces, with a second address on br0
(192.0.2.2, 2001:db8::2) to check that answers come from the address asked.
Two module-scoped BootServers serve only TFTP: a plain one on port 69 and one
on port 1069 whose policy declares the TFTP faults under test (each bound to
its own file name, so the tests do not disturb one another), with short
retransmission timeouts. Clients: a small Python client (codec, scapy to
craft and dissect), tftp-hpa's ``tftp`` and ``atftp``.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from nslab import CLIENT4, SERVER4, SERVER6, Lab, event, in_client, two_namespaces
from pyroute2 import NetNS
from scapy.layers.tftp import TFTP, TFTP_OACK, TFTP_RRQ, TFTP_Option, TFTP_Options

from pxelab.core.events import EventLog
from pxelab.core.netns import thread_in_namespace
from pxelab.pytest_plugin import pxelab_requires
from pxelab.server.bootserver import BootServer, ServerConfig, TftpConfig
from pxelab.server.faults import (
    DelayPacket,
    DropPacket,
    LieTsize,
    OackFault,
    OackMode,
    TruncateFile,
)
from pxelab.server.policy import RulePolicy
from pxelab.server.tftp import codec as tftp
from pxelab.server.tftp import server as tftp_server

pytestmark = pytest.mark.netns

SECOND4 = "192.0.2.2"
SECOND6 = "2001:db8::2"
FAULT_PORT = 1069
FAULT_TIMEOUT = 0.1  # the faulty server's first retransmission timeout
FAULT_RETRIES = 3
TEXT = b"line one\nline two\r\nbare\rcr\n"
OVMF = {"tsize": "0", "blksize": "1468", "windowsize": "4"}


# -- fixtures --------------------------------------------------------------------------------

@pytest.fixture(scope="module", autouse=True, params=["solo", "pump"])
def transfers_run(request: pytest.FixtureRequest) -> Iterator[str]:
    """Every test twice: the first transfer in a thread of its own (as a lone client's
    is), and every transfer through the pump (as in a storm). The servers below are
    made again for each (their fault counters start again)."""
    with pytest.MonkeyPatch.context() as patch:
        if request.param == "pump":
            patch.setattr(tftp_server, "SOLO_TRANSFERS", 0)
        yield str(request.param)


@pytest.fixture(scope="module")
def lab() -> Iterator[Lab]:
    """Module scope: the namespaces, br0 with a second IPv4 and IPv6 address."""
    with two_namespaces() as made:
        with NetNS(made.server) as ns:
            bridge = ns.link_lookup(ifname="br0")[0]
            ns.addr("add", index=bridge, address=SECOND4, prefixlen=24)
            ns.addr("add", index=bridge, address=SECOND6, prefixlen=64, flags=0x02)  # NODAD
        yield made


@pytest.fixture(scope="module")
def data_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Module scope: boot files, fault targets, a secret beside the root and escapes."""
    base = tmp_path_factory.mktemp("tftp")
    root = base / "root"
    (root / "pxelinux.cfg").mkdir(parents=True)
    (root / "dir").mkdir()
    (root / "pxelinux.0").write_bytes(random_bytes(100_000, 1))
    (root / "exact.bin").write_bytes(random_bytes(512 * 40, 2))  # ends in an empty block
    (root / "rollover.bin").write_bytes(random_bytes(8 * 70_000, 3))  # > 65535 blocks of 8
    (root / "text.cfg").write_bytes(TEXT)
    (root / "pxelinux.cfg" / "default").write_text("DEFAULT linux\n")
    for name in ("refuse.bin", "corrupt.bin", "add.bin", "ignore.bin", "lie.bin",
                 "trunc.bin", "ldlinux.c32", "lost-data.bin", "late.bin", "silent.bin"):
        (root / name).write_bytes(random_bytes(3000, len(name)))
    (root / "\u00e9t\u00e9.bin").write_bytes(b"non-ASCII name")
    (base / "secret").write_text("outside the root\n")
    (root / "escape").symlink_to(base / "secret")
    return root


def random_bytes(size: int, seed: int) -> bytes:
    return bytes((i * 7 + seed * 13 + (i >> 8)) & 0xFF for i in range(size))


def tftp_only(data_root: Path, **changes: Any) -> ServerConfig:
    return ServerConfig.only("tftp", data_root=data_root, **changes)


@pytest.fixture(scope="module")
def server(lab: Lab, data_root: Path, events: EventLog,
           transfers_run: str) -> Iterator[BootServer]:
    """Module scope: TFTP on port 69 with default timeouts; needs lab, data_root."""
    with BootServer(tftp_only(data_root), RulePolicy(), events,
                    namespace=lab.server) as running:
        yield running


@pytest.fixture(scope="module")
def faulty(lab: Lab, data_root: Path, events: EventLog,
           transfers_run: str) -> Iterator[BootServer]:
    """Module scope: TFTP on port 1069 with the faults under test, absolute names allowed."""
    faults = (OackFault(OackMode.REFUSE, file="refuse.bin"),
              OackFault(OackMode.CORRUPT, file="corrupt.bin"),
              OackFault(OackMode.ADD_OPTION, file="add.bin", option=("windowsize", "64")),
              OackFault(OackMode.IGNORE, file="ignore.bin"),
              LieTsize(12345, file="lie.bin"),
              TruncateFile(1000, file="trunc.bin"),
              DropPacket("tftp.rrq", count=0, file="ldlinux.c32"),
              DropPacket("tftp.data", nth=2, file="lost-data.bin"),
              DelayPacket("tftp.oack", 0.05, file="late.bin"))
    config = tftp_only(data_root, tftp=TftpConfig(port=FAULT_PORT, timeout=FAULT_TIMEOUT,
                                                  retries=FAULT_RETRIES, allow_absolute=True))
    with BootServer(config, RulePolicy(), events, faults=faults,
                    namespace=lab.server) as running:
        yield running


# -- a small client --------------------------------------------------------------------------

class TftpClientError(Exception):
    def __init__(self, code: int, message: str, source: tuple[Any, ...]) -> None:
        super().__init__(f"ERROR {code} {message} from {source}")
        self.code, self.message, self.source = code, message, source


@dataclass
class Download:
    data: bytes
    oack: dict[str, str]
    source: tuple[Any, ...]  # the address and port the transfer came from
    packets: int = 0  # DATA packets received, duplicates included
    oack_raw: bytes = b""


@dataclass
class Client:
    """One UDP socket in the client namespace talking to a TFTP server."""

    lab: Lab
    host: str = SERVER4
    port: int = 69
    timeout: float = 2.0
    sock: socket.socket = field(init=False)

    def __post_init__(self) -> None:
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        with thread_in_namespace(self.lab.client):
            self.sock = socket.socket(family, socket.SOCK_DGRAM)
        self.sock.settimeout(self.timeout)
        self.sock.bind(("::" if family == socket.AF_INET6 else "0.0.0.0", 0))

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.sock.close()

    def send(self, raw: bytes, to: tuple[Any, ...] | None = None) -> None:
        self.sock.sendto(raw, to or (self.host, self.port))

    def rrq(self, name: str, options: dict[str, str] | None = None, mode: str = "octet") -> None:
        self.send(tftp.encode(tftp.ReadRequest(name, mode, tuple((options or {}).items()))))

    def receive(self) -> tuple[bytes, tuple[Any, ...]]:
        return self.sock.recvfrom(4096)

    def expect_error(self) -> tuple[tftp.Error, tuple[Any, ...]]:
        raw, source = self.receive()
        packet = tftp.decode(raw)
        assert isinstance(packet, tftp.Error), packet
        return packet, source

    def sources(self, seconds: float) -> set[tuple[Any, ...]]:
        """Where the packets arriving within ``seconds`` come from."""
        seen, deadline = set(), time.monotonic() + seconds
        try:
            while (left := deadline - time.monotonic()) > 0:
                self.sock.settimeout(left)
                seen.add(self.receive()[1])
        except TimeoutError:
            pass
        finally:
            self.sock.settimeout(self.timeout)
        return seen

    def silent(self, seconds: float) -> bool:
        """True if nothing arrives within ``seconds`` (a socket timeout, not a sleep)."""
        self.sock.settimeout(seconds)
        try:
            self.receive()
        except TimeoutError:
            return True
        finally:
            self.sock.settimeout(self.timeout)
        return False

    def download(self, name: str, options: dict[str, str] | None = None, mode: str = "octet",
                 *, lose: frozenset[int] = frozenset(), ack_twice: bool = False,
                 sent: bool = True, blksize: int = 512) -> Download:
        """Read ``name`` as an RFC 7440 receiver; ``lose``: absolute block numbers to
        ignore the first time they arrive; ``ack_twice``: send every ACK twice; ``sent``:
        False if the RRQ went out already (``blksize``: what its OACK said)."""
        if sent:
            self.rrq(name, options, mode)
        window, expected, in_window = 1, 1, 0
        got, oack, oack_raw, source, packets = bytearray(), {}, b"", None, 0
        lost: set[int] = set()

        def ack(block: int) -> None:
            for _ in range(2 if ack_twice else 1):
                self.send(tftp.encode(tftp.Ack(block & 0xFFFF)), source)

        while True:
            raw, addr = self.receive()
            source = source or addr
            if addr != source:
                continue
            packet = tftp.decode(raw)
            if isinstance(packet, tftp.Error):
                raise TftpClientError(packet.code, packet.message, addr)
            if isinstance(packet, tftp.OptionAck):
                oack, oack_raw = dict(packet.options), raw
                blksize = int(oack.get("blksize", 512))
                window = int(oack.get("windowsize", 1))
                ack(0)
                continue
            assert isinstance(packet, tftp.Data), packet
            packets += 1
            if expected in lose and expected not in lost and packet.block == expected & 0xFFFF:
                lost.add(expected)
                continue
            if packet.block != expected & 0xFFFF:
                ack(expected - 1)  # a gap or a repeat: say where we are (RFC 7440)
                in_window = 0
                continue
            got += packet.payload
            expected += 1
            in_window += 1
            last = len(packet.payload) < blksize
            if last or in_window == window:
                ack(expected - 1)
                in_window = 0
            if last:
                return Download(bytes(got), oack, source, packets, oack_raw)


def read(lab: Lab, name: str, options: dict[str, str] | None = None, **kwargs: Any) -> Download:
    host, port = kwargs.pop("host", SERVER4), kwargs.pop("port", 69)
    with Client(lab, host, port) as client:
        return client.download(name, options, **kwargs)


def sent_event(events: EventLog, name: str, port: int) -> Any:
    return events.wait_for(event("tftp", "sent", file=name, port=port), 5, f"tftp.sent {name}")


# -- a storm ---------------------------------------------------------------------------------

def test_a_storm_of_clients_at_once_all_get_their_files(lab: Lab, server: BootServer,
                                                        data_root: Path,
                                                        events: EventLog) -> None:
    # Lock-step, windowed and IPv6 clients at once: one may run alone, the rest share the
    # pump; every file must arrive whole and every transfer end with tftp.sent.
    kinds = [({"blksize": "1468"}, SERVER4), (OVMF, SERVER4), ({}, SERVER4),
             ({"blksize": "1024", "windowsize": "8"}, SERVER6)] * 4
    results: dict[int, Download | BaseException] = {}
    ports: dict[int, int] = {}

    def fetch(index: int) -> None:
        options, host = kinds[index]
        try:
            with Client(lab, host) as client:
                ports[index] = client.sock.getsockname()[1]
                results[index] = client.download("pxelinux.0", dict(options))
        except BaseException as exc:  # reported below, with the others
            results[index] = exc

    threads = [threading.Thread(target=fetch, args=(i,)) for i in range(len(kinds))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    expected = (data_root / "pxelinux.0").read_bytes()
    assert len(results) == len(kinds)
    assert [r for r in results.values() if not isinstance(r, Download)] == []
    assert all(isinstance(r, Download) and r.data == expected for r in results.values())
    for port in ports.values():
        assert sent_event(events, "pxelinux.0", port).details["bytes"] == len(expected)


def test_a_lone_transfer_joins_the_pump_when_others_start(lab: Lab, server: BootServer,
                                                        data_root: Path, events: EventLog,
                                                        transfers_run: str) -> None:
    # The first transfer runs in a thread of its own; once a second one runs, it hands
    # itself to the pump at its next 64th block and goes on from there, whole.
    expected = (data_root / "pxelinux.0").read_bytes()  # 195 blocks of 512 and a short one
    with Client(lab) as first, Client(lab) as second:
        first.rrq("pxelinux.0")
        name = f"tftp {CLIENT4}:{first.sock.getsockname()[1]}"
        got, block = bytearray(), 0
        for block in range(1, 61):
            raw, tid = first.receive()
            got += raw[4:]
            first.send(tftp.encode(tftp.Ack(block)), tid)
        alone = [t for t in threading.enumerate() if t.name == name]
        assert len(alone) == (1 if transfers_run == "solo" else 0)
        second.rrq("pxelinux.0")
        other, other_tid = second.receive()  # DATA 1: a second transfer runs
        while len(raw) - 4 == 512:
            raw, tid = first.receive()
            got += raw[4:]
            block += 1
            first.send(tftp.encode(tftp.Ack(block)), tid)
            if block == 70:  # past block 64: the thread has ended, the transfer goes on
                for thread in alone:
                    thread.join(5)
                    assert not thread.is_alive(), f"{name} still runs"
        assert bytes(got) == expected
        assert sent_event(events, "pxelinux.0", first.sock.getsockname()[1]).details[
            "bytes"] == len(expected)
        more, block = bytearray(other[4:]), 1  # the second one was never disturbed
        while True:
            second.send(tftp.encode(tftp.Ack(block)), other_tid)
            if len(other) - 4 < 512:
                break
            other, _ = second.receive()
            more += other[4:]
            block += 1
        assert bytes(more) == expected


# -- negotiation -----------------------------------------------------------------------------

def test_lockstep_with_options(lab: Lab, server: BootServer, data_root: Path,
                               events: EventLog) -> None:
    with Client(lab) as client:
        got = client.download("pxelinux.0", {"blksize": "1408", "tsize": "0"})
        port = client.sock.getsockname()[1]
    assert got.data == (data_root / "pxelinux.0").read_bytes()
    assert got.oack == {"blksize": "1408", "tsize": "100000"}
    assert got.source[0] == SERVER4 and got.source[1] != 69
    sent = sent_event(events, "pxelinux.0", port)
    assert sent.details["bytes"] == 100_000 and sent.details["blocks"] == 72
    assert sent.details["retransmits"] == 0


@pytest.mark.parametrize(("options", "oack"), [
    ({"blksize": "65464", "windowsize": "500"}, {"blksize": "1468", "windowsize": "64"}),
    ({"BlkSize": "1024", "TIMEOUT": "3"}, {"blksize": "1024", "timeout": "3"}),
    ({"tsize": "0", "multicast": "", "rollover": "0"}, {"tsize": "20480"}),
    ({"blksize": "7", "windowsize": "0", "timeout": "256"}, {}),
], ids=["lowered-never-raised", "timeout-echoed", "unknown-left-out", "invalid-left-out"])
def test_oack_only_answers_what_was_asked(lab: Lab, server: BootServer, data_root: Path,
                                          options: dict[str, str], oack: dict[str, str]) -> None:
    request = TFTP() / TFTP_RRQ(filename=b"exact.bin", mode=b"octet") / TFTP_Options(
        options=[TFTP_Option(oname=k.encode(), value=v.encode()) for k, v in options.items()])
    with Client(lab) as client:
        client.send(bytes(request))
        got = client.download("exact.bin", sent=False)
    assert got.data == (data_root / "exact.bin").read_bytes()
    if oack:
        dissected = TFTP(got.oack_raw)
        assert dissected.haslayer(TFTP_OACK)
        assert {o.oname.decode(): o.value.decode()
                for o in dissected[TFTP_Options].options} == oack
    else:  # nothing acceptable: no OACK at all, DATA 1 of 512 bytes (RFC 2347)
        assert got.oack_raw == b"" and got.packets == 41


def test_ovmf_probe_then_windowed_read_from_the_same_port(
        lab: Lab, server: BootServer, data_root: Path, events: EventLog) -> None:
    """OVMF asks tsize, aborts with ERROR 8, then reads (firmware-facts.md "TFTP clients")."""
    with Client(lab) as client:
        client.rrq("exact.bin", OVMF)
        raw, source = client.receive()
        assert tftp.decode(raw) == tftp.OptionAck(
            (("tsize", "20480"), ("blksize", "1468"), ("windowsize", "4")))
        client.send(tftp.encode(tftp.Error(8, "User aborted the transfer")), source)
        got = client.download("exact.bin", OVMF)  # at once, same port
        port = client.sock.getsockname()[1]
    assert got.data == (data_root / "exact.bin").read_bytes()
    aborted = events.wait_for(event("tftp", "aborted", file="exact.bin", port=port), 5,
                              "size probe")
    assert aborted.reason.startswith("size probe")
    sent = sent_event(events, "exact.bin", port)
    assert (sent.details["blksize"], sent.details["windowsize"]) == (1468, 4)


def test_no_options_and_empty_last_block(lab: Lab, server: BootServer,
                                         events: EventLog) -> None:
    with Client(lab) as client:
        got = client.download("exact.bin")
        port = client.sock.getsockname()[1]
    assert got.oack == {} and len(got.data) == 512 * 40
    assert sent_event(events, "exact.bin", port).details["blocks"] == 41


def test_rollover_beyond_65535_blocks(lab: Lab, server: BootServer, data_root: Path,
                                      events: EventLog) -> None:
    """With a window; lock-step rollover (70001 round trips, 3 s here) is unit-tested."""
    with Client(lab) as client:
        got = client.download("rollover.bin", {"blksize": "8", "windowsize": "16"})
        port = client.sock.getsockname()[1]
    assert got.data == (data_root / "rollover.bin").read_bytes()
    assert sent_event(events, "rollover.bin", port).details["blocks"] == 70_001


def test_netascii_converts_line_ends_and_tsize(lab: Lab, server: BootServer,
                                               events: EventLog) -> None:
    wire = b"line one\r\nline two\r\x00\r\nbare\r\x00cr\r\n"
    got = read(lab, "text.cfg", {"tsize": "0"}, mode="NetAscii")
    assert got.data == wire and got.oack == {"tsize": str(len(wire))}
    events.wait_for(event("tftp", "sent", file="text.cfg", mode="netascii"), 5, "netascii")


# -- loss, retransmission, stray packets -----------------------------------------------------

def test_lost_data_is_sent_again(lab: Lab, faulty: BootServer, data_root: Path,
                                 events: EventLog) -> None:
    with Client(lab, port=FAULT_PORT) as client:  # retransmits after 0.1 s
        got = client.download("pxelinux.0", {"blksize": "1024"}, lose=frozenset({1, 50}))
        port = client.sock.getsockname()[1]
    assert got.data == (data_root / "pxelinux.0").read_bytes()
    assert sent_event(events, "pxelinux.0", port).details["retransmits"] >= 2


def test_loss_inside_a_window_restarts_it(lab: Lab, server: BootServer,
                                          data_root: Path, events: EventLog) -> None:
    with Client(lab) as client:
        got = client.download("pxelinux.0", {"blksize": "1024", "windowsize": "8"},
                              lose=frozenset({3, 40}))
        port = client.sock.getsockname()[1]
    assert got.data == (data_root / "pxelinux.0").read_bytes()
    # The ACKs of blocks 2 and 39 start the next windows at once: no 1 s timeout.
    assert sent_event(events, "pxelinux.0", port).details["retransmits"] == 0


def test_duplicate_acks_cause_no_duplicate_data(lab: Lab, server: BootServer,
                                                events: EventLog) -> None:
    """Sorcerer's Apprentice (RFC 1123 4.2.3.1): every ACK twice, every DATA still once."""
    with Client(lab) as client:
        got = client.download("exact.bin", {"blksize": "512"}, ack_twice=True)
        port = client.sock.getsockname()[1]
    # Only a timeout may send a block again (a loaded machine may see one or two).
    assert got.packets == 41 + sent_event(events, "exact.bin", port).details["retransmits"]


def test_ack_for_a_block_not_sent_is_ignored(lab: Lab, server: BootServer,
                                             data_root: Path) -> None:
    with Client(lab) as client:
        client.rrq("exact.bin", {"blksize": "512"})
        _, source = client.receive()
        client.send(tftp.encode(tftp.Ack(0)), source)
        client.receive()  # DATA 1
        client.send(tftp.encode(tftp.Ack(30)), source)  # never sent: ignored
        client.send(tftp.encode(tftp.Ack(1)), source)
        second = tftp.decode(client.receive()[0])
    assert second == tftp.Data(2, (data_root / "exact.bin").read_bytes()[512:1024])


def test_duplicate_rrq_starts_one_transfer(lab: Lab, server: BootServer, data_root: Path,
                                           events: EventLog) -> None:
    with Client(lab) as client:
        client.rrq("pxelinux.cfg/default", {"tsize": "0"})
        client.rrq("pxelinux.cfg/default", {"tsize": "0"})  # a retransmitted request
        got = client.download("pxelinux.cfg/default", sent=False)
        port = client.sock.getsockname()[1]
        assert got.data == b"DEFAULT linux\n"
        # No OACK from a second transfer (a copy from the first one is a retransmission).
        assert client.sources(0.3) <= {got.source}
    events.wait_for(event("tftp", "drop", port=port), 5, "duplicate RRQ dropped")
    assert len(events.matching(event("tftp", "rrq", port=port))) == 1


def test_new_rrq_from_the_same_port_replaces_the_transfer(lab: Lab, server: BootServer,
                                                          events: EventLog) -> None:
    with Client(lab) as client:
        client.rrq("pxelinux.0", {"blksize": "512"})
        client.receive()  # the OACK; never acknowledged
        got = client.download("pxelinux.cfg/default")
        port = client.sock.getsockname()[1]
    assert got.data == b"DEFAULT linux\n"
    replaced = events.wait_for(event("tftp", "aborted", file="pxelinux.0", port=port), 5,
                               "replaced transfer")
    assert "same port" in replaced.reason


def test_wrong_tid_gets_error_5_and_the_transfer_goes_on(
        lab: Lab, server: BootServer, data_root: Path, events: EventLog) -> None:
    with Client(lab) as client, Client(lab) as stranger:
        client.rrq("exact.bin", {"blksize": "1024"})
        _, source = client.receive()
        stranger.send(tftp.encode(tftp.Ack(0)), source)
        error, _ = stranger.expect_error()
        assert error.code == tftp.ErrorCode.UNKNOWN_TID
        client.send(tftp.encode(tftp.Ack(0)), source)
        got = client.download("exact.bin", sent=False, blksize=1024)
    assert got.data == (data_root / "exact.bin").read_bytes()
    events.wait_for(event("tftp", "unknown_tid", tid=source[1]), 5, "unknown_tid")


def test_two_transfers_at_once(lab: Lab, server: BootServer, data_root: Path) -> None:
    with Client(lab) as first, Client(lab) as second:
        first.rrq("pxelinux.0", {"blksize": "1024"})
        _, source = first.receive()
        assert second.download("exact.bin").data == (data_root / "exact.bin").read_bytes()
        first.send(tftp.encode(tftp.Ack(0)), source)
        got = first.download("pxelinux.0", sent=False, blksize=1024)
    assert got.data == (data_root / "pxelinux.0").read_bytes()


def test_gives_up_after_retries_with_backoff(lab: Lab, faulty: BootServer,
                                             events: EventLog) -> None:
    with Client(lab, port=FAULT_PORT) as client:
        client.rrq("silent.bin", {"tsize": "0"})
        arrivals = []
        for _ in range(1 + FAULT_RETRIES):
            client.receive()
            arrivals.append(time.monotonic())
        port = client.sock.getsockname()[1]
        assert client.silent(0.6)  # the server gave up: no copy after the longest wait
    assert len(arrivals) == 1 + FAULT_RETRIES
    # Doubling waits: 0.1, 0.2, 0.4 s at least between the first and the last copy.
    assert arrivals[-1] - arrivals[0] >= FAULT_TIMEOUT * (1 + 2 + 4) - 0.01
    gave_up = events.wait_for(event("tftp", "error", file="silent.bin", port=port), 5,
                              "give up")
    assert "3 retransmissions" in gave_up.reason and "OACK" in gave_up.reason


def test_a_client_gone_away_ends_the_transfer(lab: Lab, faulty: BootServer,
                                              events: EventLog) -> None:
    with Client(lab, port=FAULT_PORT) as client:
        client.rrq("pxelinux.cfg/default", {"tsize": "0"})
        client.receive()  # the OACK
        port = client.sock.getsockname()[1]
    # Closed: the retransmitted OACK meets ICMP port unreachable, no more retries.
    gone = events.wait_for(event("tftp", "error", file="pxelinux.cfg/default", port=port), 5,
                           "transfer ended")
    assert "port is closed" in gone.reason and gone.details["retransmits"] == 1


def test_stopping_the_server_ends_its_transfers(lab: Lab, data_root: Path) -> None:
    log = EventLog()
    config = tftp_only(data_root, tftp=TftpConfig(port=2069), ipv6=None)
    with Client(lab, port=2069) as client:
        with BootServer(config, RulePolicy(), log, namespace=lab.server):
            client.rrq("pxelinux.0", {"tsize": "0"})
            client.receive()  # the OACK; the transfer waits for ACK 0
            log.wait_for(event("tftp", "oack", file="pxelinux.0"), 5, "oack")
        stopped = log.wait_for(event("tftp", "error", file="pxelinux.0"), 5, "ended")
    assert "stopping" in stopped.reason


def test_a_client_error_sent_as_the_server_stops_still_counts(lab: Lab, data_root: Path) -> None:
    # OVMF sends ERROR for a bad OACK and prints PXE-E99 at once; the console ends
    # the boot on that line, so the server stops before the transfer read the ERROR.
    log = EventLog()
    config = tftp_only(data_root, tftp=TftpConfig(port=2069), ipv6=None)
    before = set(threading.enumerate())  # the module's server and its pump stay
    with Client(lab, port=2069) as client:
        with BootServer(config, RulePolicy(), log, namespace=lab.server):
            client.rrq("pxelinux.0", {"tsize": "0"})
            _, tid = client.receive()  # the OACK; the transfer waits for ACK 0
            log.wait_for(event("tftp", "oack", file="pxelinux.0"), 5, "oack")
            client.send(tftp.encode(tftp.Error(tftp.ErrorCode.OPTION_REFUSED, "bad OACK")), tid)
        ended = log.wait_for(event("tftp", "aborted", file="pxelinux.0"), 5, "aborted")
    assert "client sent ERROR 8 'bad OACK'" in ended.reason
    assert not [t for t in set(threading.enumerate()) - before if t.name.startswith("tftp")]


# -- where answers come from -----------------------------------------------------------------

@pytest.mark.parametrize("host", [SECOND4, SECOND6])
def test_answers_come_from_the_address_asked(lab: Lab, server: BootServer, data_root: Path,
                                             host: str) -> None:
    got = read(lab, "pxelinux.0", {"blksize": "1024", "tsize": "0"}, host=host)
    assert got.source[0] == host and got.data == (data_root / "pxelinux.0").read_bytes()
    with Client(lab, host) as client:
        client.rrq("missing.bin")
        error, source = client.expect_error()
    assert error.code == tftp.ErrorCode.FILE_NOT_FOUND and source[0] == host


def test_ipv6_with_ovmf_options(lab: Lab, server: BootServer, data_root: Path) -> None:
    got = read(lab, "pxelinux.0", OVMF, host=SERVER6)
    assert got.data == (data_root / "pxelinux.0").read_bytes()
    # 1500-byte MTU - IPv6 40 - UDP 8 - TFTP 4: lowered, so no DATA is fragmented.
    assert got.oack == {"tsize": "100000", "blksize": "1448", "windowsize": "4"}


# -- refusals and bad input ------------------------------------------------------------------

@pytest.mark.parametrize(("name", "code", "kind"), [
    ("missing.bin", 1, "not_found"),
    ("dir", 1, "not_found"),
    ("../secret", 2, "denied"),
    ("pxelinux.cfg/../../secret", 2, "denied"),
    ("/etc/passwd", 2, "denied"),
    ("/pxelinux.0", 2, "denied"),  # absolute names only with tftp.allow_absolute
    ("escape", 2, "denied"),  # a symlink out of the root
    ("\u00e9t\u00e9.bin", 2, "denied"),  # exists, but not ASCII
    ("a" * 300, 2, "denied"),  # a component over NAME_MAX
    ("b/" * 700, 2, "denied"),  # over MAX_NAME
], ids=["missing", "directory", "dotdot", "dotdot-deep", "absolute", "absolute-inside",
        "symlink-out", "non-ascii", "long-component", "huge-name"])
def test_refusals_answer_with_the_right_error(lab: Lab, server: BootServer, events: EventLog, *,
                                              name: str, code: int, kind: str) -> None:
    with Client(lab) as client:
        client.send(b"\x00\x01" + name.encode("utf-8") + b"\x00octet\x00")
        error, _ = client.expect_error()
        port = client.sock.getsockname()[1]
    assert error.code == code
    answered = events.wait_for(event("tftp", kind, port=port), 5, f"tftp.{kind}")
    assert answered.details["code"] == code
    assert read(lab, "pxelinux.cfg/default").data == b"DEFAULT linux\n"


@pytest.mark.parametrize(("raw", "code"), [
    (b"\x00\x02upload.bin\x00octet\x00", 2),  # WRQ: a read-only server
    (b"\x00\x01pxelinux.0\x00mail\x00", 4),  # mode "mail" (RFC 1350, obsolete)
    (b"\x00\x01pxelinux.0\x00", 4),  # no mode
    (b"\x00\x01pxelinux.0\x00octet", 4),  # mode not NUL-terminated
    (b"\x00\x01\x00octet\x00", 4),  # empty file name
    (b"\x00\x01pxelinux.0\x00octet\x00blksize\x00", 4),  # option without value
    (b"\x00\x09hello", 4),  # unknown opcode
    (b"\x00\x03\x00\x01data", 4),  # DATA to the request port
    (b"\x00\x04\x00\x01", 4),  # ACK to the request port
], ids=["wrq", "mail-mode", "no-mode", "unterminated", "empty-name", "odd-options",
        "opcode-9", "data", "ack"])
def test_bad_requests_get_an_error(lab: Lab, server: BootServer, events: EventLog,
                                   raw: bytes, code: int) -> None:
    with Client(lab) as client:
        client.send(raw)
        error, _ = client.expect_error()
        port = client.sock.getsockname()[1]
    assert error.code == code
    refused = events.wait_for(event("tftp", "refused", port=port), 5, "tftp.refused")
    assert refused.answer.startswith(f"ERROR {code}")
    assert read(lab, "pxelinux.cfg/default").data == b"DEFAULT linux\n"


@pytest.mark.parametrize("raw", [b"", b"\x00", b"\x00\x05\x00\x01oops\x00",
                                 b"\x00\x01" + b"x" * 5000 + b"\x00octet\x00"],
                         ids=["empty", "one-byte", "error", "oversized"])
def test_junk_is_dropped_without_answer(lab: Lab, server: BootServer, events: EventLog,
                                        raw: bytes) -> None:
    with Client(lab) as client:
        client.send(raw)
        port = client.sock.getsockname()[1]
        events.wait_for(event("tftp", "drop", port=port), 5, "tftp.drop")
        assert client.silent(0.1)
    assert read(lab, "pxelinux.cfg/default").data == b"DEFAULT linux\n"


# -- faults ----------------------------------------------------------------------------------

def test_fault_oack_refused(lab: Lab, faulty: BootServer, events: EventLog) -> None:
    with Client(lab, port=FAULT_PORT) as client:
        client.rrq("refuse.bin", OVMF)
        error, _ = client.expect_error()
    assert error.code == tftp.ErrorCode.OPTION_REFUSED
    events.wait_for(event("tftp", "refused", file="refuse.bin"), 5, "refused OACK")
    events.wait_for(event("fault", "injected", request="RRQ refuse.bin"), 5, "fault event")


def test_fault_oack_corrupt(lab: Lab, faulty: BootServer) -> None:
    with Client(lab, port=FAULT_PORT) as client:
        client.rrq("corrupt.bin", OVMF)
        raw, _ = client.receive()
    assert raw[:2] == b"\x00\x06"
    with pytest.raises(tftp.TftpDecodeError, match="has no value"):
        tftp.decode(raw)


def test_fault_oack_adds_an_option(lab: Lab, faulty: BootServer, events: EventLog) -> None:
    with Client(lab, port=FAULT_PORT) as client:
        client.rrq("add.bin", {"tsize": "0"})
        raw, source = client.receive()
        assert tftp.decode(raw) == tftp.OptionAck((("tsize", "3000"), ("windowsize", "64")))
        # What OVMF does with it: "Malformatted OACK packet", ERROR 8.
        client.send(tftp.encode(tftp.Error(8, "Malformatted OACK packet")), source)
    aborted = events.wait_for(event("tftp", "aborted", file="add.bin"), 5, "aborted")
    assert "Malformatted" in aborted.reason


def test_fault_oack_ignored(lab: Lab, faulty: BootServer, data_root: Path) -> None:
    got = read(lab, "ignore.bin", OVMF, port=FAULT_PORT)
    assert got.oack == {} and got.packets == 6  # 512-byte blocks, as RFC 1350
    assert got.data == (data_root / "ignore.bin").read_bytes()


def test_fault_lying_tsize_and_truncation(lab: Lab, faulty: BootServer,
                                          data_root: Path) -> None:
    assert read(lab, "lie.bin", {"tsize": "0"}, port=FAULT_PORT).oack == {"tsize": "12345"}
    cut = read(lab, "trunc.bin", {"tsize": "0"}, port=FAULT_PORT)
    assert cut.oack == {"tsize": "3000"}  # the real size is announced, 1000 bytes come
    assert cut.data == (data_root / "trunc.bin").read_bytes()[:1000]


def test_fault_every_rrq_for_ldlinux_dropped(lab: Lab, faulty: BootServer,
                                             events: EventLog) -> None:
    with Client(lab, port=FAULT_PORT) as client:
        client.rrq("ldlinux.c32", {"tsize": "0"})
        client.rrq("ldlinux.c32")
        assert client.silent(0.3)
    dropped = events.matching(event("fault", "injected"))
    assert sum("ldlinux.c32" in e.request for e in dropped) >= 2
    assert read(lab, "pxelinux.0", port=FAULT_PORT).data  # other files still come


def test_fault_lost_data_and_late_oack(lab: Lab, faulty: BootServer, data_root: Path,
                                       events: EventLog) -> None:
    with Client(lab, port=FAULT_PORT) as client:
        got = client.download("lost-data.bin", {"blksize": "512"})
        port = client.sock.getsockname()[1]
    assert got.data == (data_root / "lost-data.bin").read_bytes()
    assert events.wait_for(event("tftp", "sent", file="lost-data.bin", port=port), 5,
                           "sent").details["retransmits"] >= 1
    with Client(lab, port=FAULT_PORT) as client:
        started = time.monotonic()
        got = client.download("late.bin", {"tsize": "0"})
    assert got.oack == {"tsize": "3000"} and time.monotonic() - started >= 0.05


def test_absolute_names_when_allowed(lab: Lab, faulty: BootServer, data_root: Path) -> None:
    got = read(lab, "/pxelinux.cfg/default", port=FAULT_PORT)
    assert got.data == b"DEFAULT linux\n"


# -- real clients ----------------------------------------------------------------------------

def need(tool: str, package: str) -> None:
    pxelab_requires(tools=[tool], hint=f"apt-get install {package}")


@pytest.mark.parametrize("host", [SERVER4, SERVER6])
def test_tftp_hpa_client(lab: Lab, server: BootServer, data_root: Path, tmp_path: Path,
                         host: str) -> None:
    need("tftp", "tftp-hpa")
    family = "-6" if ":" in host else "-4"
    for name, mode in (("pxelinux.0", "octet"), ("text.cfg", "netascii")):
        out = tmp_path / name
        result = in_client(lab, ["tftp", family, "-m", mode, host, "-c", "get", name,
                                 str(out)])
        assert result.returncode == 0 and not result.stderr, result.stderr
        assert out.read_bytes() == (data_root / name).read_bytes()  # netascii decoded back


def test_busybox_tftp(lab: Lab, server: BootServer, data_root: Path, tmp_path: Path,
                      events: EventLog) -> None:
    need("busybox", "busybox-static")
    out = tmp_path / "pxelinux.0"
    result = in_client(lab, ["busybox", "tftp", "-b", "1024", "-g", "-r", "pxelinux.0",
                             "-l", str(out), SERVER4])
    assert result.returncode == 0, result.stderr
    assert out.read_bytes() == (data_root / "pxelinux.0").read_bytes()
    events.wait_for(event("tftp", "sent", file="pxelinux.0", blksize=1024), 5, "busybox sent")


@pytest.mark.parametrize("host", [SERVER4, SERVER6])
def test_atftp_with_options(lab: Lab, server: BootServer, data_root: Path, tmp_path: Path, *,
                            events: EventLog, host: str) -> None:
    need("atftp", "atftp")
    out = tmp_path / "pxelinux.0"
    result = in_client(lab, ["atftp", "-g", "-r", "pxelinux.0", "-l", str(out),
                             "--option", "blksize 1400", "--option", "tsize 0",
                             "--option", "windowsize 4", host, "69"])
    assert result.returncode == 0, result.stdout + result.stderr
    assert out.read_bytes() == (data_root / "pxelinux.0").read_bytes()
    client = CLIENT4 if ":" not in host else None
    sent = events.wait_for(lambda e: e.source == "tftp" and e.kind == "sent"
                           and e.details.get("windowsize") == 4
                           and e.details.get("blksize") == 1400
                           and e.details.get("local") == host
                           and (client is None or e.client == client), 5, "atftp sent")
    assert sent.details["bytes"] == 100_000
