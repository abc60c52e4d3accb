"""Benchmark: the boot server under a boot storm, N clients at once, against the C daemons.

TFTP and HTTP: one client namespace and one namespace per server, each joined to it by
its own veth pair (tftp_bench.py's set-up), all servers running, measured one after the
other, round by round, so that the noise of a shared machine hits all alike:

  pxelab     pxelab's BootServer, TFTP + HTTP (what `pxelab serve` runs), events in memory
  tftpd-hpa  in.tftpd -L -s ROOT -a ADDR:69 (forks a child per transfer)
  dnsmasq    dnsmasq --port=0 --enable-tftp --tftp-max=1000 (its default of 50 would
             refuse a storm of 64)
  nginx      one worker, sendfile on, tcp_nopush on, access log to a file

A round starts N clients together (atftp for TFTP, curl for HTTP), each fetching the same
file, and waits for all. Per round: aggregate MiB/s (all bytes over the round's wall
time), the slowest client's seconds, clients that failed or timed out, the server's CPU
seconds (its own cgroup, so that tftpd-hpa's reaped children count; else /proc/PID/stat),
retransmissions from the kernel's counters of the server's namespace (UDP datagrams beyond
OACK + one per block; TCP RetransSegs), datagrams dropped for want of buffer (both ends),
and for pxelab what its own events say (retransmits, transfers that timed out).

DHCP: dhcp_bench.py's link, servers (pxelab full DHCPv4 + DHCPv6; dnsmasq --no-ping) and
client; new leases per second with 16..256 clients in flight, each a new MAC / DUID.

    .venv/bin/python bench/storm_bench.py [tftp|http|dhcp ...] [-n 1] [--clients 1,4,16,32,64]
        [--blksizes 512,1468] [--windows 1,4,16] [--files payload|NAME=MIB,...]
        [--cpus split|one|none] [--json FILE] [--profile DIR]
"""

from __future__ import annotations

import argparse
import contextlib
import filecmp
import json
import logging
import os
import random
import select
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import IO, Any

sys.path.insert(0, str(Path(__file__).parent))

import dhcp_bench
import storm
from storm import Cell, ClientRun, LeaseRound, Round
from tftp_bench import Lab, Side, veth_lab

from pxelab.core.errors import HostCapabilityError, ServerError
from pxelab.core.netns import exec_prefix, thread_in_namespace
from pxelab.core.process import terminate
from pxelab.server.tftp import codec

log = logging.getLogger("storm_bench")

PROTOCOLS = ("tftp", "http", "dhcp")
SERVERS = {"tftp": ("pxelab", "tftpd-hpa", "dnsmasq"), "http": ("pxelab", "nginx")}
PEERS = {"tftp": ("tftpd-hpa", "dnsmasq"), "http": ("nginx",)}
TOOLS = {"atftp": "atftp", "curl": "curl", "in.tftpd": "tftpd-hpa", "dnsmasq": "dnsmasq-base",
         "nginx": "nginx-light"}
CLIENT_DEADLINE = 300.0  # a client still running after this is killed and counted failed
CLK_TCK = os.sysconf("SC_CLK_TCK")
MAIN_PID = os.getpid()
NGINX_CONF = """\
daemon off;
user root;
worker_processes 1;
pid {workdir}/nginx.pid;
error_log {workdir}/nginx-error.log;
events {{ worker_connections 1024; }}
http {{
  default_type application/octet-stream;
  sendfile on;
  tcp_nopush on;
  access_log {workdir}/nginx-access.log;
  server {{ listen {address}:80; root {root}; }}
}}
"""


# -- where things run --------------------------------------------------------------------------

@dataclass(frozen=True)
class Placement:
    """CPUs for the servers and for the clients; empty: left to the scheduler."""

    server: frozenset[int]
    clients: frozenset[int]

    @classmethod
    def parse(cls, text: str) -> Placement:
        every = frozenset(os.sched_getaffinity(0))
        if text == "none":
            return cls(every, every)
        if text == "one":
            return cls(frozenset({0}), frozenset({0}))
        if text == "split":  # the server gets a CPU of its own, the clients the rest
            return cls(frozenset({0}), every - {0} or every)
        raise ValueError(f"--cpus {text!r}: give split, one or none")


@contextlib.contextmanager
def on_cpus(cpus: frozenset[int]) -> Iterator[None]:
    """This thread (and what it starts) on ``cpus`` for the block."""
    before = os.sched_getaffinity(0)
    os.sched_setaffinity(0, cpus)
    try:
        yield
    finally:
        os.sched_setaffinity(0, before)


class CpuMeter:
    """CPU seconds of a server and everything it forks: a cpuacct cgroup of its own (cgroup
    v1, as on this host; v2's cpu.stat else); /proc/PID/stat when neither can be made."""

    def __init__(self, name: str) -> None:
        self.pid = 0
        self.group: Path | None = None
        for base, name_file in ((Path("/sys/fs/cgroup/cpuacct"), "cpuacct.usage"),
                                (Path("/sys/fs/cgroup/unified"), "cpu.stat"),
                                (Path("/sys/fs/cgroup"), "cpu.stat")):
            group = base / f"pxelab-storm-{os.getpid()}-{name}"
            with contextlib.suppress(OSError):
                group.mkdir()
                if (group / name_file).exists():
                    self.group, self.usage = group, group / name_file
                    break
                group.rmdir()

    def enter(self) -> None:
        """Move the calling process into the group: Popen's preexec_fn, so that what it
        forks at once (nginx's worker) is inside too."""
        if self.group is not None:
            (self.group / "cgroup.procs").write_text(str(os.getpid()))

    def seconds(self) -> float:
        if self.group is None:
            return storm.proc_cpu_seconds(Path(f"/proc/{self.pid}/stat").read_text(), CLK_TCK)
        text = self.usage.read_text()
        if self.usage.name == "cpuacct.usage":
            return int(text) / 1e9
        return int(text.split()[1]) / 1e6  # "usage_usec N" first

    def close(self) -> None:
        if self.group is not None:
            with contextlib.suppress(OSError):
                self.group.rmdir()


def snmp(namespace: str) -> dict[str, int]:
    """The kernel's IP/UDP/TCP counters of ``namespace``, and its TcpExt ones (listen
    queue overflows, SYNs dropped), which /proc/net/netstat has in the same layout."""
    counters: dict[str, int] = {}
    with thread_in_namespace(namespace):
        for name in ("snmp", "netstat"):
            with open(f"/proc/thread-self/net/{name}") as file:
                counters |= storm.parse_snmp(file.read())
    return counters


# -- servers -----------------------------------------------------------------------------------

@dataclass
class Server:
    """A running server: its process, CPU meter and (pxelab) the pipe its stats come over."""

    side: Side
    process: subprocess.Popen[str]
    meter: CpuMeter

    def said(self) -> dict[str, int]:
        """pxelab's event counters so far; {} for the others."""
        if self.side.name != "pxelab" or self.process.stdin is None:
            return {}
        assert self.process.stdout is not None
        self.process.stdin.write("stats\n")
        self.process.stdin.flush()
        line = "-"
        while line and not line.startswith("{"):  # py-spy's own lines ("... behind in sampling")
            line = self.process.stdout.readline()
        if not line:
            raise ServerError(f"pxelab's server ended; see {self.side.name}.stderr")
        counts: dict[str, int] = json.loads(line)
        return counts


def server_command(side: Side, root: Path, workdir: Path) -> list[str]:
    if side.name == "pxelab":
        return [sys.executable, str(Path(__file__).resolve()), "--serve", str(root),
                side.interface, side.address]
    if side.name == "tftpd-hpa":
        return ["in.tftpd", "-L", "-s", str(root), "-a", f"{side.address}:69"]
    if side.name == "dnsmasq":
        return ["dnsmasq", "--no-daemon", "--port=0", "--conf-file=/dev/null", "--enable-tftp",
                f"--tftp-root={root}", "--tftp-max=1000", f"--listen-address={side.address}",
                "--bind-interfaces", f"--log-facility={workdir / 'dnsmasq.log'}",
                f"--pid-file={workdir / 'dnsmasq.pid'}"]
    conf = workdir / "nginx.conf"
    conf.write_text(NGINX_CONF.format(workdir=workdir, address=side.address, root=root))
    return ["nginx", "-p", str(workdir), "-c", str(conf)]


@contextlib.contextmanager
def running(side: Side, lab: Lab, root: Path, workdir: Path, *, cpus: frozenset[int],
            profile: Path | None = None, gil: bool = False) -> Iterator[Server]:
    """Start a server in its namespace, on ``cpus``; yield once it answers. ``profile``:
    under py-spy, its raw stacks to that file (``gil``: only the thread holding the GIL)."""
    argv = [*exec_prefix(side.namespace), *server_command(side, root, workdir)]
    if profile is not None:
        argv = [str(Path(sys.executable).parent / "py-spy"), "record", "--rate", "250",
                "--format", "raw", "--threads", *(["--gil"] if gil else []),
                "-o", str(profile), "--", *argv]
    print(f"# {shlex.join(argv)}", flush=True)
    meter = CpuMeter(side.name)
    pipes = subprocess.PIPE if side.name == "pxelab" else subprocess.DEVNULL
    with (workdir / f"{side.name}.stderr").open("ab") as stderr, on_cpus(cpus):
        process = subprocess.Popen(argv, stdin=pipes, stdout=pipes, stderr=stderr, text=True,
                                   preexec_fn=meter.enter)  # noqa: PLW1509 - no threads yet
    try:
        meter.pid = process.pid
        if process.stdout is not None:
            wait_said_ready(process.stdout, side, workdir / f"{side.name}.stderr")
        wait_answering(lab, side, process)
        yield Server(side, process, meter)
    finally:
        stop(process)
        meter.close()


def stop(process: subprocess.Popen[str]) -> None:
    """pxelab's --serve ends on EOF (and py-spy around it then writes its profile); the
    daemons on SIGTERM."""
    if process.stdin is not None:
        process.stdin.close()
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=20)
    terminate(process, 10, log, f"server {process.args!r:.60}")


def wait_said_ready(stdout: IO[str], side: Side, stderr: Path) -> None:
    """Until the server says "ready PID" (py-spy prints a banner first)."""
    said, deadline = "", time.monotonic() + 30
    while (left := deadline - time.monotonic()) > 0 and select.select([stdout], [], [], left)[0]:
        said = stdout.readline()
        if not said or said.startswith("ready"):
            break
    if not said.startswith("ready"):
        raise ServerError(f"{side.name} did not start (said {said!r}); its stderr ends:\n"
                          + "\n".join(stderr.read_text().splitlines()[-15:]))


def wait_answering(lab: Lab, side: Side, process: subprocess.Popen[str]) -> None:
    """Readiness over the protocol: TFTP ERROR for a missing file, an HTTP status line."""
    probes = {"nginx": (probe_http,), "pxelab": (probe_tftp, probe_http)}.get(
        side.name, (probe_tftp,))
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise ServerError(f"{side.name} exited at start with {process.returncode}")
        with contextlib.suppress(OSError, TimeoutError):
            if all(probe(lab, side) for probe in probes):
                return
        time.sleep(0.05)  # a server still binding: poll its port again
    raise ServerError(f"{side.name} did not answer within 10 s")


def probe_tftp(lab: Lab, side: Side) -> bool:
    with thread_in_namespace(lab.client):
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    with sock:
        sock.settimeout(0.2)
        sock.sendto(codec.encode(codec.ReadRequest("pxelab-storm-probe")), (side.address, 69))
        return isinstance(codec.decode(sock.recvfrom(2048)[0]), codec.Error)


def probe_http(lab: Lab, side: Side) -> bool:
    with thread_in_namespace(lab.client):
        sock = socket.create_connection((side.address, 80), timeout=0.5)
    with sock:
        sock.sendall(b"HEAD /pxelab-storm-probe HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        return sock.recv(64).startswith(b"HTTP/1.1")


def answers_windowsize(lab: Lab, side: Side, file: str) -> bool:
    """Whether the server acknowledges windowsize (RFC 7440) in its OACK."""
    request = codec.ReadRequest(file, "octet", (("blksize", "1468"), ("windowsize", "4")))
    with thread_in_namespace(lab.client):
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    with sock:
        sock.settimeout(2.0)
        sock.sendto(codec.encode(request), (side.address, 69))
        data, source = sock.recvfrom(2048)
        sock.sendto(codec.encode(codec.Error(8, "benchmark probe")), source)
    answer = codec.decode(data)
    return isinstance(answer, codec.OptionAck) and "windowsize" in dict(answer.options)


# -- clients -----------------------------------------------------------------------------------

def client_argv(cell: Cell, side: Side, out: Path) -> list[str]:
    if cell.protocol == "http":
        return ["curl", "-s", "-o", str(out), "--max-time", str(int(CLIENT_DEADLINE)),
                "-w", "%{http_code} %{size_download} %{time_total}",
                f"http://{side.address}/{cell.file}"]
    options = ["--option", f"blksize {cell.blksize}", "--option", "tsize 0"]
    if cell.window > 1:
        options += ["--option", f"windowsize {cell.window}"]
    return ["atftp", "-g", "-r", cell.file, "-l", str(out), *options, side.address, "69"]


@dataclass
class _Client:
    process: subprocess.Popen[str]
    pidfd: int
    started: float
    out: Path
    seconds: float = 0.0


def storm_round(lab: Lab, side: Side, cell: Cell, n: int, *, source: Path, outdir: Path,
                cpus: frozenset[int]) -> tuple[tuple[ClientRun, ...], float]:
    """Start ``n`` clients together; each client's run and the round's wall seconds."""
    clients: list[_Client] = []
    with thread_in_namespace(lab.client), on_cpus(cpus):
        for index in range(n):
            out = outdir / f"out-{index}"
            started = time.perf_counter()
            process = subprocess.Popen(client_argv(cell, side, out), stdout=subprocess.PIPE,
                                       stderr=subprocess.STDOUT, text=True)
            clients.append(_Client(process, os.pidfd_open(process.pid), started, out))
    first = clients[0].started
    wait_all(clients)
    wall = max(c.started + c.seconds for c in clients) - first
    return tuple(judge(c, cell, source) for c in clients), wall


def wait_all(clients: list[_Client]) -> None:
    """Until every client exits (its exit time taken as its pidfd turns readable); kill
    those still running at the deadline."""
    waiting = {c.pidfd: c for c in clients}
    deadline = time.perf_counter() + CLIENT_DEADLINE
    while waiting:
        ready = select.select(list(waiting), [], [], max(0.0, deadline - time.perf_counter()))[0]
        now = time.perf_counter()
        if not ready:
            for client in waiting.values():
                client.process.kill()
                client.seconds = now - client.started
            ready = list(waiting)
        for fd in ready:
            client = waiting.pop(fd)
            client.seconds = client.seconds or now - client.started
            os.close(fd)


def judge(client: _Client, cell: Cell, source: Path) -> ClientRun:
    """Whether the client got the whole file, byte for byte; its output file is removed."""
    said = (client.process.communicate()[0] or "").strip()
    note = ""
    if client.process.returncode != 0:
        note = f"exit {client.process.returncode}: {said[-200:]}"
    elif cell.protocol == "http" and storm.parse_curl(said)[0] != 200:
        note = f"HTTP {said}"
    elif not filecmp.cmp(client.out, source, shallow=False):
        note = "the file differs"
    size = client.out.stat().st_size if client.out.exists() else 0
    client.out.unlink(missing_ok=True)
    return ClientRun(round(client.seconds, 6), size, not note, note)


def measure_round(lab: Lab, server: Server, cell: Cell, n: int, *, root: Path, outdir: Path,
                  cpus: frozenset[int]) -> Round:
    namespaces = (server.side.namespace, lab.client)
    before = [snmp(ns) for ns in namespaces]
    said, cpu = server.said(), server.meter.seconds()
    runs, wall = storm_round(lab, server.side, cell, n, source=root / cell.file, outdir=outdir,
                             cpus=cpus)
    cpu = server.meter.seconds() - cpu
    said = {k: v for k, v in storm.delta(said, server.said()).items() if v}
    theirs, ours = (storm.delta(b, snmp(ns)) for b, ns in zip(before, namespaces, strict=True))
    if cell.protocol == "tftp":
        expected = storm.tftp_server_datagrams(cell.size, cell.blksize, n)
        resent = max(0, theirs.get("Udp.OutDatagrams", 0) - expected)
        drops = theirs.get("Udp.RcvbufErrors", 0) + ours.get("Udp.RcvbufErrors", 0)
    else:  # connections the listener had no room for: its accept queue full, or its SYN queue
        resent = theirs.get("Tcp.RetransSegs", 0)
        drops = theirs.get("TcpExt.ListenDrops", 0) + theirs.get("TcpExt.TCPReqQFullDrop", 0)
    unseen = server.side.name == "tftpd-hpa" and server.meter.group is None
    return Round(server.side.name, cell, runs, round(wall, 6), None if unseen else cpu,
                 resent, drops, said)


# -- TFTP and HTTP -----------------------------------------------------------------------------

def cells_of(protocol: str, files: dict[str, int], blksizes: list[int],
             windows: list[int]) -> list[Cell]:
    if protocol == "http":
        return [Cell("http", name, size) for name, size in files.items()]
    return [Cell("tftp", name, size, b, w) for name, size in files.items()
            for b in blksizes for w in windows]


def bench_transfers(protocol: str, options: argparse.Namespace, root: Path, workdir: Path,
                    files: dict[str, int]) -> list[Round]:
    servers = [s for s in SERVERS[protocol] if s in options.servers]
    cells = cells_of(protocol, files, options.blksizes, options.windows)
    rounds: list[Round] = []
    outdir = Path(tempfile.mkdtemp(prefix="pxelab-storm-out-", dir="/dev/shm"))
    try:
        with veth_lab(servers) as lab, contextlib.ExitStack() as stack:
            running_ = {name: stack.enter_context(running(
                side, lab, root, workdir, cpus=options.placement.server))
                for name, side in lab.servers.items()}
            windowed = {name: protocol == "tftp" and answers_windowsize(
                lab, side, next(iter(files))) for name, side in lab.servers.items()}
            for run in range(options.runs):
                for cell in cells:
                    for n in options.clients:
                        order = servers if (run + n) % 2 == 0 else servers[::-1]
                        for name in order:
                            if cell.window > 1 and not windowed[name]:
                                continue
                            one = measure_round(lab, running_[name], cell, n, root=root,
                                                outdir=outdir, cpus=options.placement.clients)
                            print_round(one, run, options.runs)
                            rounds.append(one)
    finally:
        shutil.rmtree(outdir, ignore_errors=True)
    return rounds


def print_round(one: Round, run: int, runs: int) -> None:
    cpu = f"{one.server_cpu:.2f}" if one.server_cpu is not None else "n/a"
    text = (f"run {run + 1}/{runs} {one.server:<9} {one.cell.label:<28} N={one.n:<3} "
            f"{one.aggregate:7.1f} MiB/s, slowest {one.slowest:6.2f} s, CPU {cpu} s, "
            f"resent {one.retransmits}, drops {one.drops}, failed {one.failed}")
    if one.server_said:
        text += " " + json.dumps(one.server_said, separators=(",", ":"))
    print(text, flush=True)
    for client in one.clients:
        if not client.ok:
            print(f"    failed: {client.note}", flush=True)


def profile_tftp(options: argparse.Namespace, root: Path, workdir: Path,
                 files: dict[str, int]) -> None:
    """py-spy on pxelab's TFTP server while ``--clients``' largest storm fetches each file."""
    options.profile.mkdir(parents=True, exist_ok=True)
    n = max(options.clients)
    outdir = Path(tempfile.mkdtemp(prefix="pxelab-storm-out-", dir="/dev/shm"))
    try:
        for cell in cells_of("tftp", files, options.blksizes, options.windows):
            gil = "-gil" if options.profile_gil else ""
            raw = options.profile / (f"tftp-{cell.file}-{cell.blksize}x{cell.window}-n{n}"
                                     f"{gil}.txt")
            with veth_lab(["pxelab"]) as lab, running(
                    lab.servers["pxelab"], lab, root, workdir, cpus=options.placement.server,
                    profile=raw, gil=options.profile_gil) as server:
                one = measure_round(lab, server, cell, n, root=root, outdir=outdir,
                                    cpus=options.placement.clients)
                print_round(one, 0, 1)
            wait_written(raw)
            summary = storm.summarize_stacks(raw.read_text())
            raw.with_suffix(".summary.txt").write_text(f"{cell.label}, N={n}\n{summary}\n")
            print(f"{raw}:\n{summary}", flush=True)
    finally:
        shutil.rmtree(outdir, ignore_errors=True)


def wait_written(path: Path, timeout: float = 30.0) -> None:
    """py-spy writes its file after its child has exited."""
    deadline = time.monotonic() + timeout
    while not (path.exists() and path.stat().st_size) and time.monotonic() < deadline:
        time.sleep(0.1)  # py-spy is not our child: nothing to wait on


# -- DHCP --------------------------------------------------------------------------------------

def bench_leases(options: argparse.Namespace, workdir: Path) -> list[LeaseRound]:
    rounds: list[LeaseRound] = []
    variants = [v for v in ("pxelab", "dnsmasq") if v in options.servers]
    with dhcp_bench.veth_link() as link:
        for run in range(options.runs):
            for variant in variants if run % 2 == 0 else variants[::-1]:
                where = workdir / f"dhcp-{variant}-{run}"
                with contextlib.ExitStack() as stack:
                    with on_cpus(options.placement.server):
                        pid = stack.enter_context(
                            dhcp_bench.start_server(variant, link, where, None))
                    with thread_in_namespace(link.client), on_cpus(options.placement.clients):
                        these = lease_rounds(variant, pid, link.server, options)
                for one in these:
                    print(f"run {run + 1}/{options.runs} {one.server:<8} {one.exchange} "
                          f"{one.in_flight:>3} in flight: {one.per_second:6.0f}/s, slowest "
                          f"{one.slowest_ms:.1f} ms, lost {one.lost}, refused {one.refused}, "
                          f"drops {one.drops}, CPU {one.server_cpu_us:.0f} µs", flush=True)
                rounds += these
    return rounds


def lease_rounds(variant: str, pid: int, namespace: str,
                 options: argparse.Namespace) -> list[LeaseRound]:
    """Warm-up, then ``--leases`` new leases at each ``--in-flight``; in the client's
    namespace. Drops: datagrams the server's receive buffers had no room for."""
    ids = dhcp_bench.Identities()
    v4 = dhcp_bench.Dhcp4Client(dhcp_bench.open_dhcp4_client_socket())
    v6 = dhcp_bench.Dhcp6Client(dhcp_bench.open_dhcp6_client_socket(),
                                socket.if_nametoindex(dhcp_bench.CLIENT_IF))
    rounds = []
    with contextlib.closing(v4), contextlib.closing(v6):
        for exchange, client in (("dhcp4 DORA", v4), ("dhcp6 SARR", v6)):
            assert client.sock is not None
            dhcp_bench.run_flows(client.sock, client.key, client.new_leases(ids, 20))  # warm-up
            for window in options.in_flight:
                before, counters = dhcp_bench.cpu_ns(pid), snmp(namespace)
                run = dhcp_bench.run_flows(client.sock, client.key,
                                           client.new_leases(ids, options.leases),
                                           window=window, timeout=options.dhcp_timeout)
                cpu = dhcp_bench.cpu_ns(pid) - before
                drops = storm.delta(counters, snmp(namespace)).get("Udp.RcvbufErrors", 0)
                done = len(run.latencies_ns)
                rounds.append(LeaseRound(
                    variant, exchange, window, done, done / (run.elapsed_ns / 1e9),
                    max(run.latencies_ns, default=0) / 1e6, run.lost, run.refused,
                    cpu / max(done, 1) / 1000, drops))
    return rounds


# -- the pxelab server process -----------------------------------------------------------------

def serve(root: Path, interface: str, address: str) -> None:
    """pxelab's BootServer with TFTP and HTTP; "stats" on stdin -> its event counters."""
    from ipaddress import IPv4Interface  # noqa: PLC0415 - only the serving process needs these

    from pxelab.core.events import Event, EventLog  # noqa: PLC0415
    from pxelab.server.bootserver import (  # noqa: PLC0415
        BootServer,
        Dhcp4Config,
        Dhcp4Mode,
        ServerConfig,
    )
    from pxelab.server.policy import RulePolicy  # noqa: PLC0415

    counts: dict[str, int] = {}
    lock = threading.Lock()

    def count(event: Event) -> None:
        if event.source not in ("tftp", "http"):
            return
        with lock:
            key = f"{event.source}.{event.kind}"
            counts[key] = counts.get(key, 0) + 1
            resent = event.details.get("retransmits", 0)
            if resent:
                counts["tftp.retransmits"] = counts.get("tftp.retransmits", 0) + resent
            if event.reason.startswith("timed out"):
                counts[f"{event.source}.timed_out"] = counts.get(
                    f"{event.source}.timed_out", 0) + 1

    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the benchmark stops us by closing stdin
    ipv4 = IPv4Interface(f"{address}/24")  # the server's view; DHCP is off, so the pool is unused
    config = ServerConfig.only(
        "tftp", "http", interface=interface, ipv4=ipv4, ipv6=None, data_root=root,
        dhcp4=Dhcp4Config(mode=Dhcp4Mode.OFF, pool=(ipv4.network[100], ipv4.network[199])))
    events = EventLog()
    events.subscribe(count)
    with BootServer(config, RulePolicy(), events):
        print(f"ready {os.getpid()}", flush=True)
        for line in sys.stdin:
            if line.strip() == "stats":
                with lock:
                    print(json.dumps(counts), flush=True)


# -- files, options, report --------------------------------------------------------------------

def fill_root(root: Path, spec: str) -> dict[str, int]:
    """The files every client fetches: the real payload's kernel and initrd, or random files
    ``NAME=MIB,...``."""
    if spec == "payload":
        from pxelab.machine.payload.builder import build_payload  # noqa: PLC0415 - slow import

        payload = build_payload()
        for path, name in ((payload.kernel, "vmlinuz"), (payload.initrd, "initrd.img")):
            shutil.copyfile(path, root / name)
        return {name: (root / name).stat().st_size for name in ("vmlinuz", "initrd.img")}
    files = {}
    generator = random.Random(18)
    for item in spec.split(","):
        name, _, mib = item.partition("=")
        size = int(float(mib) * storm.MIB)
        (root / name).write_bytes(generator.randbytes(size))
        files[name] = size
    return files


def require_tools(protocols: Sequence[str], servers: Sequence[str]) -> None:
    wanted = {"atftp"} if "tftp" in protocols else set()
    wanted |= {"curl"} if "http" in protocols else set()
    wanted |= {tool for tool, server in (("in.tftpd", "tftpd-hpa"), ("nginx", "nginx"),
                                         ("dnsmasq", "dnsmasq")) if server in servers}
    missing = sorted(tool for tool in wanted if not shutil.which(tool))
    if missing:
        raise HostCapabilityError(f"{', '.join(missing)} not found: apt-get install "
                                  + " ".join(TOOLS[tool] for tool in missing))


def ints(text: str) -> list[int]:
    return [int(word) for word in text.split(",")]


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("protocols", nargs="*", metavar="tftp|http|dhcp",
                        help="what to run (default: all three)")
    parser.add_argument("-n", "--runs", type=int, default=1)
    parser.add_argument("--clients", type=ints, default=[1, 4, 16, 32, 64])
    parser.add_argument("--blksizes", type=ints, default=[512, 1468])
    parser.add_argument("--windows", type=ints, default=[1, 4, 16])
    parser.add_argument("--files", default="payload",
                        help="'payload' (kernel and initrd) or NAME=MIB,... random files")
    parser.add_argument("--servers", type=lambda s: s.split(","),
                        default=["pxelab", "tftpd-hpa", "dnsmasq", "nginx"])
    parser.add_argument("--cpus", default="split",
                        help="split: servers on CPU 0, clients on the others; one: all on "
                             "CPU 0; none: left to the scheduler")
    parser.add_argument("--in-flight", type=ints, default=[16, 64, 256])
    parser.add_argument("--leases", type=int, default=2000, help="new leases per DHCP round")
    parser.add_argument("--dhcp-timeout", type=float, default=1.0)
    parser.add_argument("--profile", type=Path, metavar="DIR",
                        help="only profile pxelab's TFTP server with py-spy (largest --clients)")
    parser.add_argument("--profile-gil", action="store_true",
                        help="with --profile: sample only the thread holding the GIL")
    parser.add_argument("--json", type=Path, help="write every round here")
    parser.add_argument("--serve", nargs=3, metavar=("ROOT", "INTERFACE", "ADDRESS"),
                        help=argparse.SUPPRESS)
    options = parser.parse_args()
    options.placement = Placement.parse(options.cpus)
    options.protocols = options.protocols or list(PROTOCOLS)
    if set(options.protocols) - set(PROTOCOLS):
        parser.error(f"protocols: choose from {', '.join(PROTOCOLS)}")
    return options


def main() -> None:
    options = parse_args()
    if options.serve:
        root, interface, address = options.serve
        serve(Path(root), interface, address)
        return
    require_tools(options.protocols, options.servers)
    signal.signal(signal.SIGTERM, _terminated)
    with tempfile.TemporaryDirectory(prefix="pxelab-storm-", dir="/dev/shm") as tmp:
        workdir = Path(tmp)
        workdir.chmod(0o755)  # dnsmasq reads the root as its own unprivileged user
        root = workdir / "root"
        root.mkdir()
        files = fill_root(root, options.files)
        if options.profile:
            profile_tftp(options, root, workdir, files)
            return
        report(options, files, root, workdir)


def _terminated(signum: int, frame: object) -> None:
    """Unwind (namespaces, servers and cgroups removed); pyroute2's NetNS helper processes,
    forked from us, die as SIGTERM's default would have them."""
    if os.getpid() != MAIN_PID:
        os._exit(128 + signum)
    raise SystemExit(f"storm_bench: signal {signum}; namespaces and servers removed")


def report(options: argparse.Namespace, files: dict[str, int], root: Path,
           workdir: Path) -> None:
    everything: dict[str, Any] = {"files": files, "cpus": options.cpus,
                                  "load_start": os.getloadavg()}
    tables = []
    for protocol in [p for p in options.protocols if p != "dhcp"]:
        rounds = bench_transfers(protocol, options, root, workdir, files)
        servers = [s for s in SERVERS[protocol] if s in options.servers]
        tables.append(f"{protocol.upper()}: aggregate MiB/s (slowest client, s), median of "
                      f"{options.runs} run(s), --cpus {options.cpus}\n\n"
                      + storm.render_transfers(rounds, servers, PEERS[protocol]))
        everything[protocol] = [asdict(r) for r in rounds]
    if "dhcp" in options.protocols:
        leases = bench_leases(options, workdir)
        tables.append(f"DHCP: new leases per second, {options.leases} per round\n\n"
                      + storm.render_leases(leases, [s for s in ("pxelab", "dnsmasq")
                                                     if s in options.servers]))
        everything["dhcp"] = [asdict(r) for r in leases]
    everything["load_end"] = os.getloadavg()
    print("\n" + "\n\n".join(tables))
    print(f"\nload average at start {everything['load_start']}, at end {everything['load_end']}")
    if options.json:
        options.json.write_text(json.dumps(everything, indent=1))


if __name__ == "__main__":
    main()
