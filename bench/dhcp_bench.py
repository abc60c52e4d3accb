"""Benchmark: DHCPv4 DORA and DHCPv6 four-message exchange latency, pxelab against dnsmasq.

Two network namespaces joined by one veth pair: vs0 (198.18.0.1/16,
2001:db8::1/64) on the server side, eth0 (198.18.0.2/16, fe80::50) on the
client side; 198.18.0.0/15 is the RFC 2544 benchmarking range, big enough for
a pool of 65,000 addresses. In one run, interleaved, each server variant is
started in the server namespace in turn:

  pxelab            BootServer in its own process: DHCPv4 full mode + DHCPv6, TFTP,
                    HTTP and RA off, default profile, events kept in memory
  dnsmasq           dnsmasq --no-ping: the same ranges, boot file and fixed host
  pxelab-noevents   (optional) pxelab with an EventLog that records nothing
  pxelab-eventfile  (optional) pxelab writing events to a file, as `pxelab serve --events`
  dnsmasq-ping      (optional) dnsmasq's default, with its ping check (few iterations)

A lean client (this process, its thread moved into the client namespace;
packets built once with scapy, then patched and sent over plain UDP sockets)
measures, after a warm-up, the time from the first request sent to the last
answer received of:

  dhcp4 DORA    DISCOVER -> OFFER, REQUEST -> ACK, broadcast, a new MAC (new lease) each
  dhcp6 SARR    Solicit -> Advertise, Request -> Reply from fe80::50 to ff02::1:2, no
                Rapid Commit, a new DUID-LL (new lease) each
  dhcp4 renew   REQUEST (ciaddr 198.18.0.2, unicast) -> ACK, one client, fixed address
  dhcp6 renew   Renew -> Reply, one client
the server's CPU time per exchange (all its threads, from /proc/PID/task/*/schedstat),
and the throughput of new-lease exchanges with --window clients in flight.

Run as root:

    .venv/bin/python bench/dhcp_bench.py [--iterations 200] [--repeats 3] [--json FILE]
    .venv/bin/python bench/dhcp_bench.py --variants pxelab --profile DIR   # py-spy
    .venv/bin/python bench/dhcp_bench.py --in-process -n 2000   # no root: protocol objects only
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import platform
import random
import select
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Generator, Iterator
from dataclasses import asdict, dataclass, field
from functools import partial
from ipaddress import IPv4Address, IPv4Interface, IPv6Address, IPv6Interface
from pathlib import Path
from typing import IO, Any

sys.path.insert(0, str(Path(__file__).parent))

from peers import DnsmasqDhcp
from scapy.layers.dhcp import BOOTP, DHCP
from scapy.layers.dhcp6 import (
    DUID_LL,
    DHCP6_Renew,
    DHCP6_Request,
    DHCP6_Solicit,
    DHCP6OptClientId,
    DHCP6OptElapsedTime,
    DHCP6OptIA_NA,
    DHCP6OptIAAddress,
    DHCP6OptOptReq,
)

from pxelab.core.events import Event, EventLog
from pxelab.core.netns import exec_prefix, thread_in_namespace
from pxelab.server.bootserver import BootServer, Dhcp4Config, Dhcp6Config, ServerConfig
from pxelab.server.clients import ClientDirectory
from pxelab.server.dhcp4.leases import LeasePool
from pxelab.server.dhcp4.server import Dhcp4Protocol, Dhcp4Settings, reserve_fixed
from pxelab.server.dhcp6.leases import Lease6Pool
from pxelab.server.dhcp6.replies import Dhcp6Settings
from pxelab.server.dhcp6.server import Dhcp6Protocol, server_duid
from pxelab.server.policy import BootPolicy, HostRule, default_profile
from pxelab.server.udp import enlarge_receive_buffer

SERVER_IF, CLIENT_IF = "vs0", "eth0"
SERVER4 = IPv4Interface("198.18.0.1/16")
CLIENT4 = IPv4Interface("198.18.0.2/16")
SERVER6 = IPv6Interface("2001:db8::1/64")
CLIENT_LL = IPv6Address("fe80::50")
POOL4 = (IPv4Address("198.18.1.0"), IPv4Address("198.18.255.254"))
POOL6 = (IPv6Address("2001:db8::1:0"), IPv6Address("2001:db8::1:ffff"))
RENEW_MAC = "02:00:00:00:00:50"  # eth0's own MAC; its fixed address is CLIENT4 on both servers
RENEW_MAC_BYTES = bytes.fromhex(RENEW_MAC.replace(":", ""))
BOOT_FILE = "undionly.kpxe"  # what pxelab's default profile gives a client without option 93
VARIANTS = ("pxelab", "dnsmasq", "pxelab-noevents", "pxelab-eventfile", "dnsmasq-ping")
EXCHANGES = ("dhcp4 DORA", "dhcp6 SARR", "dhcp4 renew", "dhcp6 renew")
PING_ITERATIONS = 5  # dnsmasq's ping check costs seconds per new client

log = logging.getLogger("dhcp_bench")


class BenchError(Exception):
    """A server answered wrongly or not at all, or the lab could not be set up."""


class Refused(Exception):  # noqa: N818 - an outcome, counted, not an error
    """The server said no (DHCPNAK, a status code): counted, the exchange has no latency."""


# -- the link ------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Link:
    server: str
    client: str


def _run(argv: list[str]) -> None:
    log.info("running: %s", shlex.join(argv))
    done = subprocess.run(argv, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise BenchError(f"{' '.join(argv)} failed: {done.stderr.strip()}")


def _wait_carrier(namespace: str, ifname: str, timeout: float = 5.0) -> None:
    """Until the kernel says the veth end is up: sending before fails with ENETUNREACH."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        shown = subprocess.run(["ip", "-n", namespace, "-o", "link", "show", "dev", ifname],
                               capture_output=True, text=True, check=False).stdout
        if "state UP" in shown:
            return
        time.sleep(0.02)
    raise BenchError(f"{ifname} in {namespace} has no carrier after {timeout}s")


@contextlib.contextmanager
def veth_link() -> Iterator[Link]:
    """Server and client namespaces joined by vs0 <-> eth0; both removed on any exit."""
    link = Link(f"pxb-dhcp-s-{os.getpid()}", f"pxb-dhcp-c-{os.getpid()}")
    created: list[str] = []
    try:
        for ns in (link.server, link.client):
            _run(["ip", "netns", "add", ns])
            created.append(ns)
            # No DAD, set before the interfaces exist: link-local addresses usable at once.
            _run([*exec_prefix(ns), "sysctl", "-qw", "net.ipv6.conf.all.accept_dad=0",
                  "net.ipv6.conf.default.accept_dad=0"])
        _run(["ip", "-n", link.server, "link", "add", SERVER_IF, "type", "veth", "peer",
              "name", CLIENT_IF, "address", RENEW_MAC, "netns", link.client])
        for ns, ifname, v4, v6 in ((link.server, SERVER_IF, SERVER4, str(SERVER6)),
                                   (link.client, CLIENT_IF, CLIENT4, f"{CLIENT_LL}/64")):
            _run(["ip", "-n", ns, "addr", "add", str(v4), "dev", ifname])
            _run(["ip", "-n", ns, "addr", "add", v6, "dev", ifname, "nodad"])
            _run(["ip", "-n", ns, "link", "set", ifname, "up"])
            _run(["ip", "-n", ns, "link", "set", "lo", "up"])
        for ns, ifname in ((link.server, SERVER_IF), (link.client, CLIENT_IF)):
            _wait_carrier(ns, ifname)
        yield link
    finally:
        for ns in reversed(created):
            subprocess.run(["ip", "netns", "del", ns], check=False)


# -- the servers ---------------------------------------------------------------------------------

def bench_policy() -> BootPolicy:
    """pxelab's default profile, with the renewing client's fixed address."""
    return default_profile(hosts=(HostRule(RENEW_MAC, address=CLIENT4.ip),))


class NullEventLog(EventLog):
    """Records nothing: what the server costs without its events."""

    _nothing = Event("bench", "nothing")

    def emit(self, source: str, kind: str, **fields: Any) -> Event:
        return self._nothing


def serve_pxelab(namespace: str, workdir: Path, events_mode: str) -> None:
    """The pxelab server process: start, say "ready", serve until stdin closes."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent stops us by closing stdin
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    events = (NullEventLog() if events_mode == "none" else
              EventLog(workdir / "events.jsonl" if events_mode == "file" else None))
    config = ServerConfig.only("dhcp4", "dhcp6", interface=SERVER_IF, ipv4=SERVER4,
                               ipv6=SERVER6, data_root=workdir, dhcp4=Dhcp4Config(pool=POOL4),
                               dhcp6=Dhcp6Config(pool=POOL6))
    with BootServer(config, bench_policy(), events, namespace=namespace):
        print(f"ready {os.getpid()}", flush=True)
        sys.stdin.read()


def _wait_ready(stdout: IO[str], timeout: float) -> int:
    """Until the server process prints "ready PID" (py-spy prints a banner first)."""
    deadline, said = time.monotonic() + timeout, ""
    while (left := deadline - time.monotonic()) > 0 and select.select([stdout], [], [], left)[0]:
        said = stdout.readline()
        if said.startswith("ready "):
            return int(said.split()[1])
        if not said:
            break
    raise BenchError(f"pxelab server did not start (last said {said!r}); see its stderr")


@contextlib.contextmanager
def pxelab_server(link: Link, workdir: Path, events_mode: str,
                  profile: Path | None) -> Iterator[int]:
    command = [sys.executable, __file__, "--serve-pxelab", link.server, "--workdir",
               str(workdir), "--events", events_mode]
    if profile is not None:
        py_spy = str(Path(sys.executable).parent / "py-spy")
        command = [py_spy, "record", "--rate", "250", "--format", "raw",
                   "-o", str(profile), "--", *command]
    log.info("starting: %s", shlex.join(command))
    process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                               text=True)
    assert process.stdin is not None and process.stdout is not None
    try:
        yield _wait_ready(process.stdout, 30.0)
    finally:
        process.stdin.close()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@contextlib.contextmanager
def start_server(variant: str, link: Link, workdir: Path,
                 profile: Path | None) -> Iterator[int]:
    """Run one server variant; yields its process id."""
    workdir.mkdir(parents=True, exist_ok=True)
    if variant.startswith("pxelab"):
        events = {"pxelab": "memory", "pxelab-noevents": "none",
                  "pxelab-eventfile": "file"}[variant]
        with pxelab_server(link, workdir, events, profile) as pid:
            yield pid
        return
    dnsmasq = DnsmasqDhcp(link.server, SERVER_IF, SERVER4, SERVER6, pool=POOL4, pool6=POOL6,
                          boot_file=BOOT_FILE, workdir=workdir, hosts={RENEW_MAC: CLIENT4.ip},
                          ping=variant == "dnsmasq-ping")
    with dnsmasq:
        yield dnsmasq.pid


def cpu_ns(pid: int) -> int:
    """CPU time all threads of ``pid`` have run, in ns (first field of schedstat)."""
    total = 0
    for task in Path(f"/proc/{pid}/task").iterdir():
        with contextlib.suppress(OSError):  # a thread that just ended
            total += int((task / "schedstat").read_text().split()[0])
    return total


# -- packets -------------------------------------------------------------------------------------

class Template:
    """Packet bytes built once with scapy; fields patched in at offsets found once."""

    def __init__(self, raw: bytes, **marks: bytes) -> None:
        self.raw = raw
        self.slots: dict[str, slice] = {}
        for name, mark in marks.items():
            at = raw.find(mark)
            if at < 0 or raw.find(mark, at + 1) >= 0:
                raise BenchError(f"placeholder {name} is not in the template exactly once")
            self.slots[name] = slice(at, at + len(mark))

    def fill(self, **values: bytes) -> bytes:
        packet = bytearray(self.raw)
        for name, value in values.items():
            packet[self.slots[name]] = value
        return bytes(packet)


XID = bytes.fromhex("5ca1ab1e")
MAC = bytes.fromhex("02cafe5ca1ab")
ADDR4 = IPv4Address("203.0.113.77").packed
SID4 = IPv4Address("203.0.113.78").packed
TRID = bytes.fromhex("a5c3e1")
ADDR6 = IPv6Address("2001:db8:ffff::5ca1:ab1e").packed
MAGIC = bytes.fromhex("63825363")
OFFER, ACK, NAK = 2, 5, 6
ADVERTISE, REPLY = 2, 7
PRL = [1, 3, 6, 12, 15, 28, 43, 60, 66, 67]  # what a PXE ROM and udhcpc ask for, roughly
ORO = [23, 59]
Destination = tuple[Any, ...]
Flow = Generator[tuple[bytes, Destination], bytes, None]


def _bootp(options: list[Any], *, ciaddr: str = "0.0.0.0", broadcast: bool = True) -> bytes:
    return bytes(BOOTP(xid=int.from_bytes(XID), chaddr=MAC, ciaddr=ciaddr,
                       flags=0x8000 if broadcast else 0) / DHCP(options=[*options, "end"]))


def parse4(data: bytes) -> tuple[int, bytes, bytes]:
    """(message type, yiaddr, server identifier) of a BOOTREPLY; type 0 if it is none."""
    if len(data) < 241 or data[0] != 2 or data[236:240] != MAGIC:
        return 0, b"", b""
    kind, server, at = 0, b"", 240
    while at < len(data) and data[at] != 255:
        if data[at] == 0:
            at += 1
            continue
        code, size = data[at], data[at + 1]
        if code == 53:
            kind = data[at + 2]
        elif code == 54:
            server = data[at + 2:at + 2 + size]
        at += 2 + size
    return kind, data[16:20], server


def parse6(data: bytes) -> tuple[int, bytes, bytes, int]:
    """(message type, Server Identifier option, first IA_NA address, IA_NA status code)."""
    server, address, status, at = b"", b"", 0, 4
    while at + 4 <= len(data):
        code, size = int.from_bytes(data[at:at + 2]), int.from_bytes(data[at + 2:at + 4])
        if code == 2:
            server = data[at:at + 4 + size]
        elif code == 3:
            inner, end = at + 16, at + 4 + size
            while inner + 4 <= end:
                sub, sub_size = data[inner:inner + 2], int.from_bytes(data[inner + 2:inner + 4])
                if sub == b"\x00\x05" and not address:
                    address = data[inner + 4:inner + 20]
                elif sub == b"\x00\x0d":
                    status = int.from_bytes(data[inner + 4:inner + 6])
                inner += 4 + sub_size
        at += 4 + size
    return data[0] if data else 0, server, address, status


def open_dhcp4_client_socket() -> socket.socket:
    """UDP on 0.0.0.0:68 of eth0, allowed to broadcast; in the client namespace."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, CLIENT_IF.encode())
    # 256 answers in flight outgrow the default buffer when the client's CPU is busy, and
    # an answer dropped here would count as the server's loss.
    enlarge_receive_buffer(sock)
    sock.bind(("0.0.0.0", 68))
    return sock


def open_dhcp6_client_socket() -> socket.socket:
    """UDP on [fe80::50%eth0]:546; in the client namespace."""
    sock = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
    enlarge_receive_buffer(sock)  # as the DHCPv4 client's
    sock.bind((str(CLIENT_LL), 546, 0, socket.if_nametoindex(CLIENT_IF)))
    return sock


class Dhcp4Client:
    """DORA and renew flows, sent over ``sock`` (none: driven in process)."""

    broadcast: Destination = ("255.255.255.255", 67)

    def __init__(self, sock: socket.socket | None = None) -> None:
        self.sock = sock
        prl = ("param_req_list", PRL)
        self.discover = Template(_bootp([("message-type", "discover"), prl]), xid=XID, mac=MAC)
        selecting = [("message-type", "request"), ("server_id", str(IPv4Address(SID4))),
                     ("requested_addr", str(IPv4Address(ADDR4))), prl]
        self.request = Template(_bootp(selecting),
                                xid=XID, mac=MAC, address=ADDR4, server=SID4)
        self.renewal = Template(_bootp([("message-type", "request"), prl], broadcast=False,
                                       ciaddr=str(CLIENT4.ip)), xid=XID, mac=MAC)

    @staticmethod
    def key(data: bytes) -> bytes:
        return data[4:8]

    def dora(self, mac: bytes, xid: bytes) -> Flow:
        kind, address, server = parse4((yield self.discover.fill(xid=xid, mac=mac),
                                        self.broadcast))
        if kind != OFFER or len(server) != 4:
            raise BenchError(f"DISCOVER answered with message type {kind}, not OFFER")
        kind, _, _ = parse4((yield self.request.fill(xid=xid, mac=mac, address=address,
                                                     server=server), self.broadcast))
        if kind == NAK:
            raise Refused(f"REQUEST for {IPv4Address(address)} answered with NAK")
        if kind != ACK:
            raise BenchError(f"REQUEST answered with message type {kind}, not ACK")

    def renew(self, xid: bytes) -> Flow:
        kind, address, _ = parse4((yield self.renewal.fill(xid=xid, mac=RENEW_MAC_BYTES),
                                   (str(SERVER4.ip), 67)))
        if kind != ACK or address != CLIENT4.ip.packed:
            raise BenchError(f"renewing REQUEST answered with type {kind}, {address.hex()}")

    def new_leases(self, ids: Identities, count: int) -> Iterator[tuple[bytes, Flow]]:
        for _ in range(count):
            mac, xid = ids.next()
            yield xid, self.dora(mac, xid)

    def first_lease(self, ids: Identities) -> Iterator[tuple[bytes, Flow]]:
        """The renewing client's own DORA (its fixed address)."""
        xid = ids.next()[1]
        yield xid, self.dora(RENEW_MAC_BYTES, xid)

    def renewals(self, ids: Identities, count: int) -> Iterator[tuple[bytes, Flow]]:
        for _ in range(count):
            xid = ids.next()[1]
            yield xid, self.renew(xid)

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()


class Dhcp6Client:
    """Solicit/Advertise/Request/Reply and Renew/Reply to ff02::1:2 over ``sock``."""

    def __init__(self, sock: socket.socket | None = None, index: int = 0) -> None:
        self.sock = sock
        self.servers: Destination = ("ff02::1:2", 547, 0, index)
        ia = DHCP6OptIA_NA(iaid=1, T1=0, T2=0, ianaopts=[DHCP6OptIAAddress(addr=str(
            IPv6Address(ADDR6)), preflft=0, validlft=0)])
        client_id = DHCP6OptClientId(duid=DUID_LL(lladdr=MAC))
        tail = DHCP6OptElapsedTime() / ia / DHCP6OptOptReq(reqopts=ORO)
        self.solicit = Template(bytes(
            DHCP6_Solicit(trid=int.from_bytes(TRID)) / client_id / DHCP6OptElapsedTime()
            / DHCP6OptIA_NA(iaid=1, T1=0, T2=0) / DHCP6OptOptReq(reqopts=ORO)),
            trid=TRID, mac=MAC)
        # Request and Renew: head + the server's own Server Identifier option + tail.
        self.request_head = Template(bytes(DHCP6_Request(trid=int.from_bytes(TRID))
                                           / client_id), trid=TRID, mac=MAC)
        self.renew_head = Template(bytes(DHCP6_Renew(trid=int.from_bytes(TRID)) / client_id),
                                   trid=TRID, mac=MAC)
        self.tail = Template(bytes(tail), address=ADDR6)
        self.renewing: tuple[bytes, bytes] | None = None  # server id option, address

    @staticmethod
    def key(data: bytes) -> bytes:
        return data[1:4]

    def sarr(self, mac: bytes, trid: bytes) -> Flow:
        kind, server, address, status = parse6((yield self.solicit.fill(trid=trid, mac=mac),
                                                self.servers))
        if kind != ADVERTISE or not server or not address:
            raise BenchError(f"Solicit answered with type {kind}, status {status}, no address")
        request = (self.request_head.fill(trid=trid, mac=mac) + server
                   + self.tail.fill(address=address))
        kind, _, leased, status = parse6((yield request, self.servers))
        if kind == REPLY and status:
            raise Refused(f"Request answered with status {status}")
        if kind != REPLY or leased != address:
            raise BenchError(f"Request answered with type {kind}, status {status}")
        if mac == RENEW_MAC_BYTES:
            self.renewing = server, address

    def renew(self, trid: bytes) -> Flow:
        assert self.renewing is not None, "renew after first_lease()"
        server, address = self.renewing
        packet = self.renew_head.fill(trid=trid, mac=RENEW_MAC_BYTES) + server + self.tail.fill(
            address=address)
        kind, _, leased, status = parse6((yield packet, self.servers))
        if kind != REPLY or leased != address or status:
            raise BenchError(f"Renew answered with type {kind}, status {status}")

    def new_leases(self, ids: Identities, count: int) -> Iterator[tuple[bytes, Flow]]:
        for _ in range(count):
            mac, xid = ids.next()
            yield xid[1:], self.sarr(mac, xid[1:])

    def first_lease(self, ids: Identities) -> Iterator[tuple[bytes, Flow]]:
        """The renewing client's own exchange: server id and address for its Renews."""
        trid = ids.next()[1][1:]
        yield trid, self.sarr(RENEW_MAC_BYTES, trid)

    def renewals(self, ids: Identities, count: int) -> Iterator[tuple[bytes, Flow]]:
        for _ in range(count):
            trid = ids.next()[1][1:]
            yield trid, self.renew(trid)

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()


# -- running flows -------------------------------------------------------------------------------

@dataclass
class Run:
    """What one batch of exchanges measured."""

    latencies_ns: list[int] = field(default_factory=list)
    lost: int = 0
    refused: int = 0
    stray: int = 0
    elapsed_ns: int = 0
    client_cpu_ns: int = 0
    server_cpu_ns: int = 0


@dataclass
class _Pending:
    flow: Flow
    start: int
    deadline: int


def run_flows(sock: socket.socket, key: Callable[[bytes], bytes],
              flows: Iterator[tuple[bytes, Flow]], *, window: int = 1,
              timeout: float = 1.0) -> Run:
    """Drive ``flows`` (key, generator) with up to ``window`` in flight; time each one."""
    run, pending = Run(), dict[bytes, _Pending]()
    timeout_ns = int(timeout * 1e9)
    cpu, begin = time.thread_time_ns(), time.perf_counter_ns()
    more = True
    while more or pending:
        while more and len(pending) < window:
            try:
                ident, flow = next(flows)
            except StopIteration:
                more = False
                break
            packet, destination = next(flow)
            now = time.perf_counter_ns()
            sock.sendto(packet, destination)
            pending[ident] = _Pending(flow, now, now + timeout_ns)
        if not pending:
            break
        # Never 0: that would make the socket non-blocking instead of timing out at once.
        sock.settimeout(max(1e-6, (min(p.deadline for p in pending.values())
                                   - time.perf_counter_ns()) / 1e9))
        try:
            data = sock.recv(4096)
        except TimeoutError:
            now = time.perf_counter_ns()
            for ident in [i for i, p in pending.items() if p.deadline <= now]:
                del pending[ident]
                run.lost += 1
            continue
        now = time.perf_counter_ns()
        entry = pending.get(key(data))
        if entry is None:
            run.stray += 1
            continue
        try:
            packet, destination = entry.flow.send(data)
        except StopIteration:
            run.latencies_ns.append(now - entry.start)
            del pending[key(data)]
            continue
        except Refused:
            run.refused += 1
            del pending[key(data)]
            continue
        sock.sendto(packet, destination)
        entry.deadline = time.perf_counter_ns() + timeout_ns
    run.elapsed_ns = time.perf_counter_ns() - begin
    run.client_cpu_ns = time.thread_time_ns() - cpu
    return run


class Identities:
    """A new MAC and transaction id for every new client (02:..: locally administered).

    Seeded random, not sequential: dnsmasq picks an address from a hash of the MAC
    (DUID), and sequential MACs in flight together make it offer one address twice.
    """

    def __init__(self) -> None:
        self.random = random.Random(2544)
        self.seen: set[bytes] = set()

    def next(self) -> tuple[bytes, bytes]:
        while (serial := self.random.randbytes(4)) in self.seen:
            pass
        self.seen.add(serial)
        return b"\x02\x00" + serial, serial


def measure(options: argparse.Namespace, variant: str, server_pid: int) -> dict[str, Run]:
    """Every exchange against the server now running; call in the client namespace."""
    ids = Identities()
    ping = variant == "dnsmasq-ping"
    n = min(options.iterations, PING_ITERATIONS) if ping else options.iterations
    warm = 1 if ping else options.warmup
    timeout = 10.0 if ping else 1.0
    results: dict[str, Run] = {}
    v4 = Dhcp4Client(open_dhcp4_client_socket())
    v6 = Dhcp6Client(open_dhcp6_client_socket(), socket.if_nametoindex(CLIENT_IF))
    with contextlib.closing(v4), contextlib.closing(v6):
        def timed(client: Dhcp4Client | Dhcp6Client, flows: Iterator[tuple[bytes, Flow]],
                  window: int = 1) -> Run:
            before = cpu_ns(server_pid)
            assert client.sock is not None
            run = run_flows(client.sock, client.key, flows, window=window, timeout=timeout)
            run.server_cpu_ns = cpu_ns(server_pid) - before
            return run

        for name, client in (("dhcp4 DORA", v4), ("dhcp6 SARR", v6)):
            timed(client, client.new_leases(ids, warm))
            results[name] = timed(client, client.new_leases(ids, n))
        for name, client in (("dhcp4 renew", v4), ("dhcp6 renew", v6)):
            timed(client, client.first_lease(ids))
            timed(client, client.renewals(ids, warm))
            results[name] = timed(client, client.renewals(ids, n))
        if options.throughput and not ping:
            for name, client in (("dhcp4 DORA", v4), ("dhcp6 SARR", v6)):
                results[f"{name} x{options.window}"] = timed(
                    client, client.new_leases(ids, options.throughput), options.window)
    return results


# -- in process ----------------------------------------------------------------------------------

class _Captured:
    """Stands in for the datagram transport: keeps what the protocol sent last."""

    def __init__(self) -> None:
        self.last = b""

    def sendto(self, data: bytes, addr: Any = None) -> None:
        self.last = data

    def is_closing(self) -> bool:
        return False


def _drive(protocol: Dhcp4Protocol | Dhcp6Protocol, source: tuple[Any, ...],
           flows: Iterator[tuple[bytes, Flow]]) -> None:
    sent = protocol.transport
    assert isinstance(sent, _Captured)
    for _, flow in flows:
        packet, _ = next(flow)
        while True:
            protocol.datagram_received(packet, source)
            try:
                packet, _ = flow.send(sent.last)
            except StopIteration:
                break


def in_process(options: argparse.Namespace) -> None:
    """CPU per exchange of pxelab's DHCP protocol objects alone: no socket, loop or kernel.

    Built as BootServer builds them; the N exchanges are timed in quarters, so
    that a cost growing with the number of leases shows.
    """
    for variant in [v for v in options.variants if v in ("pxelab", "pxelab-noevents")]:
        print(f"{variant}: CPU µs per exchange (server and client Python) in each quarter "
              f"of {options.iterations} after {options.warmup} warm-up")
        for name, cells in _in_process_variant(variant, options):
            print(f"  {name:<12}" + " ".join(f"{cell:6.0f}" for cell in cells))


def _in_process_variant(variant: str, options: argparse.Namespace) -> Iterator[
        tuple[str, list[float]]]:
    events = NullEventLog() if variant == "pxelab-noevents" else EventLog()
    ClientDirectory(events)  # BootServer's listener for HTTP templates
    policy = bench_policy()
    settings4 = Dhcp4Settings(SERVER4.ip, SERVER4.network, 3600)
    leases4 = LeasePool(*POOL4, 3600, exclude=frozenset({SERVER4.ip}))
    reserve_fixed(leases4, policy.fixed_addresses, settings4)
    dhcp4 = Dhcp4Protocol(settings4, policy, leases4, events)
    leases6 = Lease6Pool(*POOL6, 3600, exclude=frozenset({SERVER6.ip}))
    dhcp6 = Dhcp6Protocol(Dhcp6Settings(SERVER6.ip, SERVER6.network, 3600, 1800),
                          server_duid(bytes.fromhex("020000000001"), SERVER_IF), policy,
                          leases6, events)
    for protocol in (dhcp4, dhcp6):
        protocol.connection_made(_Captured())  # type: ignore[arg-type]
    ids, v4, v6 = Identities(), Dhcp4Client(), Dhcp6Client()
    source4, source6 = (str(CLIENT4.ip), 68), (str(CLIENT_LL), 546, 0, 2)
    _drive(dhcp4, source4, v4.first_lease(ids))
    _drive(dhcp6, source6, v6.first_lease(ids))
    cases: list[tuple[str, Dhcp4Protocol | Dhcp6Protocol, tuple[Any, ...],
                      Callable[[int], Iterator[tuple[bytes, Flow]]]]] = [
        ("dhcp4 DORA", dhcp4, source4, partial(v4.new_leases, ids)),
        ("dhcp6 SARR", dhcp6, source6, partial(v6.new_leases, ids)),
        ("dhcp4 renew", dhcp4, source4, partial(v4.renewals, ids)),
        ("dhcp6 renew", dhcp6, source6, partial(v6.renewals, ids))]
    for name, protocol, source, flows in cases:
        _drive(protocol, source, flows(options.warmup))
        quarter, cells = max(1, options.iterations // 4), []
        for _ in range(4):
            begin = time.thread_time_ns()
            _drive(protocol, source, flows(quarter))
            cells.append((time.thread_time_ns() - begin) / quarter / 1000)
        yield name, cells


# -- statistics and report -----------------------------------------------------------------------

def percentile(values: list[int], fraction: float) -> float:
    """Nearest-rank percentile, in microseconds."""
    ordered = sorted(values)
    rank = max(1, -(-len(ordered) * fraction // 1))
    return ordered[int(rank) - 1] / 1000


@dataclass(frozen=True)
class Summary:
    """One run of one exchange: latency percentiles (µs), rate, CPU per exchange (µs)."""

    n: int
    median_us: float
    p90_us: float
    lost: int
    refused: int
    per_second: float
    client_cpu_us: float
    server_cpu_us: float

    @classmethod
    def of(cls, run: Run) -> Summary:
        done = len(run.latencies_ns)
        if not done:
            nan = float("nan")
            return cls(0, nan, nan, run.lost, run.refused, 0.0, nan, nan)
        return cls(done, percentile(run.latencies_ns, 0.5), percentile(run.latencies_ns, 0.9),
                   run.lost, run.refused, done / (run.elapsed_ns / 1e9),
                   run.client_cpu_ns / done / 1000, run.server_cpu_ns / done / 1000)

    def line(self) -> str:
        text = f"{self.median_us:.0f}/{self.p90_us:.0f}µs cpu {self.server_cpu_us:.0f}µs"
        if self.lost or self.refused:
            text += f" lost={self.lost} refused={self.refused}"
        return text


Results = dict[str, dict[str, list[Summary]]]  # variant -> exchange -> one Summary per run


def _median(values: list[float]) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    middle = len(ordered) // 2
    return ordered[middle] if len(ordered) % 2 else (ordered[middle - 1] + ordered[middle]) / 2


def _over_runs(runs: list[Summary], name: str) -> float:
    return _median([getattr(run, name) for run in runs])


def _latency_cell(runs: list[Summary]) -> str:
    medians = [run.median_us for run in runs]
    spread = f" ({min(medians):.0f}-{max(medians):.0f})" if len(runs) > 1 else ""
    return (f"{_over_runs(runs, 'median_us'):.0f} / {_over_runs(runs, 'p90_us'):.0f}"
            f"{spread}")


def machine() -> dict[str, str]:
    model = next((line.split(":", 1)[1].strip() for line in
                  Path("/proc/cpuinfo").read_text().splitlines()
                  if line.startswith("model name")), platform.machine())
    dnsmasq = subprocess.run(["dnsmasq", "--version"], capture_output=True, text=True,
                             check=False).stdout.split("  ", 1)[0]
    return {"cpu": model, "cores": str(os.cpu_count()), "kernel": platform.release(),
            "python": platform.python_version(), "dnsmasq": dnsmasq}


def report(results: Results, variants: list[str], info: dict[str, Any]) -> str:
    """Markdown tables: medians over the runs of each run's median, p90 and CPU."""
    base = "pxelab" if "pxelab" in variants else variants[0]
    peer = "dnsmasq" if "dnsmasq" in variants else variants[-1]
    if base == peer:  # one variant: nothing to compare with
        return "\n".join([f"| exchange | {base} median / p90 | server CPU |", "|---|---|---|"] + [
            f"| {e} | {_latency_cell(results[base][e])} | "
            f"{_over_runs(results[base][e], 'server_cpu_us'):.0f} |" for e in EXCHANGES])
    one, two = results[base], results[peer]
    lines = [f"| exchange | {base} median / p90 | {peer} median / p90 | ratio median / p90 | "
             f"server CPU {base} / {peer} |", "|---|---|---|---|---|"]
    for exchange in EXCHANGES:
        ratio = [_over_runs(one[exchange], k) / _over_runs(two[exchange], k)
                 for k in ("median_us", "p90_us", "server_cpu_us")]
        lines.append(f"| {exchange} | {_latency_cell(one[exchange])} | "
                     f"{_latency_cell(two[exchange])} | {ratio[0]:.2f} / {ratio[1]:.2f} | "
                     f"{_over_runs(one[exchange], 'server_cpu_us'):.0f} / "
                     f"{_over_runs(two[exchange], 'server_cpu_us'):.0f} ({ratio[2]:.2f}) |")
    rates = [name for name in one if " x" in name and name in two]
    if rates:
        lines += ["", f"| new leases, {info['window']} clients in flight | {base} /s | "
                  f"{peer} /s | ratio | client CPU per lease |", "|---|---|---|---|---|"]
        for name in rates:
            a, b = _over_runs(one[name], "per_second"), _over_runs(two[name], "per_second")
            cpu = max(_over_runs(one[name], "client_cpu_us"),
                      _over_runs(two[name], "client_cpu_us"))
            lines.append(f"| {name.split(' x')[0]} ({info['throughput']}) | {a:.0f} | {b:.0f} | "
                         f"{a / b:.2f} | {cpu:.0f} µs |")
    others = [v for v in variants if v not in (base, peer)]
    if others:
        lines += ["", "| exchange | " + " | ".join(f"{v} median / p90, server CPU"
                                                   for v in others) + " |",
                  "|---|" + "---|" * len(others)]
        for exchange in EXCHANGES:
            lines.append(f"| {exchange} | " + " | ".join(
                f"{_latency_cell(results[v][exchange])}, "
                f"{_over_runs(results[v][exchange], 'server_cpu_us'):.0f} "
                f"(N={results[v][exchange][0].n})" for v in others) + " |")
    lost = {v: sum(s.lost for runs in results[v].values() for s in runs) for v in variants}
    refused = {v: sum(s.refused for runs in results[v].values() for s in runs)
               for v in variants}
    cpu = max(_over_runs(results[v][e], "client_cpu_us") for v in (base, peer)
              for e in EXCHANGES)
    m = info["machine"]
    lines += ["", f"µs; N = {info['iterations']} exchanges per run after {info['warmup']} "
              f"warm-up, {info['repeats']} run(s) per variant, interleaved; each cell is the "
              "median over the runs (range of the run medians in brackets). Server CPU: "
              "per exchange, all threads. "
              f"Client CPU per sequential exchange at most {cpu:.0f} µs. Lost: {lost}; "
              f"refused (NAK, NoAddrsAvail): {refused}.",
              f"Machine: {m['cpu']}, {m['cores']} cores, Linux {m['kernel']}, Python "
              f"{m['python']}, {m['dnsmasq']}; no QEMU/TCG involved. Load average at start "
              f"{info['load_start']}, at end {info['load_end']}."]
    return "\n".join(lines)


def print_run(variant: str, index: int, results: dict[str, Run]) -> None:
    parts = []
    for name, run in results.items():
        summary = Summary.of(run)
        if " x" in name:
            parts.append(f"{name} {summary.per_second:.0f}/s")
        else:
            parts.append(f"{name} {summary.line()}")
    print(f"run {index} {variant:<17} " + ", ".join(parts), flush=True)


def summarize_profile(path: Path, top: int = 15) -> str:
    """The frames py-spy saw most in the server's event loop, own time and inclusive."""
    own: dict[str, int] = {}
    inclusive: dict[str, int] = {}
    total = 0
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        frames = stack.split(";")
        # The loop's thread only; a sample in epoll is idle time (or waiting for a CPU).
        if not any("_run_once" in f for f in frames) or "select (selectors.py" in frames[-1]:
            continue
        total += int(count)
        own[frames[-1]] = own.get(frames[-1], 0) + int(count)
        for frame in set(frames):
            inclusive[frame] = inclusive.get(frame, 0) + int(count)
    lines = [f"{path}: {total} busy samples"]
    for title, table in (("own time", own), ("inclusive, pxelab frames", {
            k: v for k, v in inclusive.items() if "pxelab/" in k})):
        lines.append(f"  {title}:")
        lines += [f"    {100 * n / max(total, 1):5.1f}%  {frame}" for frame, n in
                  sorted(table.items(), key=lambda item: -item[1])[:top]]
    return "\n".join(lines)


def _load() -> str:
    return " ".join(f"{value:.2f}" for value in os.getloadavg())


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def bench(options: argparse.Namespace) -> None:
    variants: list[str] = options.variants
    results: Results = {v: {} for v in variants}
    load_start = _load()
    workdir = Path(tempfile.mkdtemp(prefix="pxelab-dhcp-bench-"))
    try:
        with veth_link() as link:
            for index in range(options.repeats):
                # Alternate the order so that drift does not favour one variant.
                order = variants if index % 2 == 0 else variants[::-1]
                for variant in order:
                    profile = None
                    if options.profile and variant.startswith("pxelab"):
                        options.profile.mkdir(parents=True, exist_ok=True)
                        profile = options.profile / f"{variant}-{index}.txt"
                    with start_server(variant, link, workdir / f"{variant}-{index}",
                                      profile) as pid, thread_in_namespace(link.client):
                        runs = measure(options, variant, pid)
                    print_run(variant, index, runs)
                    if profile is not None:
                        print(summarize_profile(profile))
                    for name, run in runs.items():
                        results[variant].setdefault(name, []).append(Summary.of(run))
    finally:
        if options.keep:
            print(f"artifacts kept in {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    info = {"iterations": options.iterations, "warmup": options.warmup,
            "repeats": options.repeats, "throughput": options.throughput,
            "window": options.window, "machine": machine(), "load_start": load_start,
            "load_end": _load()}
    print()
    print(report(results, variants, info))
    if options.json:
        options.json.write_text(json.dumps(
            {"info": info, "results": {v: {k: [asdict(s) for s in runs] for k, runs in r.items()}
                                       for v, r in results.items()}}, indent=1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-n", "--iterations", type=int, default=200)
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("-r", "--repeats", type=int, default=3)
    parser.add_argument("--variants", type=lambda s: s.split(","), default=["pxelab", "dnsmasq"],
                        help=f"comma-separated, of {', '.join(VARIANTS)}")
    parser.add_argument("--throughput", type=int, default=1000, metavar="COUNT",
                        help="new-lease exchanges for the throughput test (0: skip)")
    parser.add_argument("--window", type=int, default=16, help="clients in flight")
    parser.add_argument("--profile", type=Path, metavar="DIR",
                        help="record the pxelab server with py-spy (raw stacks) into DIR")
    parser.add_argument("--json", type=Path, help="write the summaries here")
    parser.add_argument("--keep", action="store_true", help="keep server logs and events")
    parser.add_argument("--in-process", action="store_true",
                        help="time pxelab's protocol objects alone, in this process")
    parser.add_argument("-v", "--verbose", action="store_true",
                        help="log every command (namespaces, servers) to stderr")
    parser.add_argument("--serve-pxelab", metavar="NAMESPACE", help=argparse.SUPPRESS)
    parser.add_argument("--workdir", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--events", default="memory", help=argparse.SUPPRESS)
    options = parser.parse_args()
    logging.basicConfig(level=logging.INFO if options.verbose else logging.WARNING,
                        format="%(name)s: %(message)s")
    if options.serve_pxelab:
        serve_pxelab(options.serve_pxelab, options.workdir, options.events)
        return
    unknown = set(options.variants) - set(VARIANTS)
    if unknown:
        parser.error(f"unknown variants {sorted(unknown)}; choose from {', '.join(VARIANTS)}")
    if options.in_process:
        in_process(options)
        return
    if os.geteuid() != 0:
        parser.error("network namespaces need root: run with sudo or as root")
    signal.signal(signal.SIGTERM, _interrupt)
    signal.signal(signal.SIGINT, signal.default_int_handler)  # also when started with & (ignored)
    try:
        bench(options)
    except BenchError as error:
        raise SystemExit(f"dhcp_bench: {error}") from None
    except KeyboardInterrupt:
        raise SystemExit("dhcp_bench: interrupted; namespaces and servers removed") from None


if __name__ == "__main__":
    main()
