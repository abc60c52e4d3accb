"""Benchmark: TFTP download time of pxelab's server against tftpd-hpa and dnsmasq.

Each server runs in a namespace of its own, joined by its own veth pair to
one client namespace (so all can listen on port 69 at once); a random file
(64 MiB by default) in a data root; atftp (C, with RFC 7440 windowsize)
downloads it. For every cell (blksize 512 and 1468 x windowsize 1, 4, 16),
every server in turn, download after download, N times, so that the noise of
a shared machine hits all alike:

  pxelab     pxelab's BootServer, TFTP only, in a process of its own
  tftpd-hpa  Debian's in.tftpd -L -s ROOT -a ADDR:69 (started here, not as a service)
  dnsmasq    dnsmasq --port=0 --enable-tftp --tftp-root=ROOT (TFTP only)
  trivial    a 40-line blocking sender without any checks: the floor of this
             client on this link, to show the client is not what limits the others

A server that does not answer windowsize in its OACK (neither peer does)
gets "n/a" in the windowed cells.

CPU placement decides lock-step speed here more than any server does: on this
kind of VM a wakeup on the other CPU costs tens of microseconds, so a client
and server the scheduler happens to put on different CPUs run several times
slower than on one. By default every server and the client are pinned to one
CPU (``taskset``), the same for all; ``--cpu none`` leaves placement to the
scheduler (noisier, what a shared machine does).
Every download is compared with the file. Prints medians (seconds), the ratio
pxelab / faster peer, and the servers' CPU seconds per download.

    .venv/bin/python bench/tftp_bench.py -n 5 [--size-mib 64] [--json FILE]
"""

from __future__ import annotations

import argparse
import contextlib
import filecmp
import json
import logging
import os
import shlex
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from pyroute2 import NetNS, netns

from pxelab.core.errors import HostCapabilityError, ServerError
from pxelab.core.netns import exec_prefix, thread_in_namespace
from pxelab.core.process import terminate
from pxelab.server.tftp import codec

FILE = "big.bin"
BLKSIZES = (512, 1468)
WINDOWS = (1, 4, 16)
log = logging.getLogger("tftp_bench")

SERVERS = ("pxelab", "tftpd-hpa", "dnsmasq", "trivial")
PEERS = ("tftpd-hpa", "dnsmasq")
CLK_TCK = os.sysconf("SC_CLK_TCK")
# tftpd-hpa forks a child per transfer and lets the kernel reap it (SIGCHLD ignored), so
# the child's CPU time never reaches the parent's counters.
CPU_UNSEEN = frozenset({"tftpd-hpa"})


# -- the network ------------------------------------------------------------------------------

@dataclass(frozen=True)
class Side:
    """One server's namespace, its end of the veth pair and its address."""

    name: str
    namespace: str
    interface: str
    address: str


@dataclass(frozen=True)
class Lab:
    client: str
    servers: dict[str, Side]


@contextlib.contextmanager
def veth_lab(servers: list[str]) -> Iterator[Lab]:
    """A client namespace and one namespace per server, each joined to it by a veth pair.

    Each pair is a /30 of the lab's 192.0.2.0/24, so the client reaches every server."""
    tag = os.getpid()
    # Not "pxl-WORD-NUMBER-NUMBER": pxelab.machine.network sweeps such names as dead labs.
    lab = Lab(f"pxltb-{tag}-c", {
        name: Side(name, f"pxltb-{tag}-{index}", f"tb{index}", f"192.0.2.{4 * index + 1}")
        for index, name in enumerate(servers)})
    created: list[str] = []
    try:
        netns.create(lab.client)
        created.append(lab.client)
        for index, side in enumerate(lab.servers.values()):
            netns.create(side.namespace)
            created.append(side.namespace)
            peer = f"tc{index}"
            with NetNS(side.namespace) as ns:
                ns.link("add", ifname=side.interface, kind="veth",
                        peer={"ifname": peer, "net_ns_fd": lab.client})
                _up(ns, side.interface, side.address)
            with NetNS(lab.client) as ns:
                _up(ns, peer, f"192.0.2.{4 * index + 2}")
        yield lab
    finally:
        for name in created:
            netns.remove(name)


def _up(ns: NetNS, interface: str, address: str) -> None:
    ns.addr("add", index=ns.link_lookup(ifname=interface)[0], address=address, prefixlen=30)
    for name in ("lo", interface):
        ns.link("set", index=ns.link_lookup(ifname=name)[0], state="up")


# -- servers ----------------------------------------------------------------------------------

def server_command(side: Side, root: Path, workdir: Path) -> list[str]:
    here = [sys.executable, str(Path(__file__).resolve())]
    mine = ["--root", str(root), "--interface", side.interface, "--address", side.address]
    return {
        "pxelab": [*here, "--serve", "pxelab", *mine],
        "trivial": [*here, "--serve", "trivial", *mine],
        "tftpd-hpa": ["in.tftpd", "-L", "-s", str(root), "-a", f"{side.address}:69"],
        "dnsmasq": ["dnsmasq", "--no-daemon", "--port=0", "--conf-file=/dev/null",
                    "--enable-tftp", f"--tftp-root={root}", f"--listen-address={side.address}",
                    "--bind-interfaces", f"--log-facility={workdir / 'dnsmasq.log'}",
                    f"--pid-file={workdir / 'dnsmasq.pid'}"],
    }[side.name]


def pinned(cpu: int | None) -> list[str]:
    return [] if cpu is None else ["taskset", "-c", str(cpu)]


@contextlib.contextmanager
def running(side: Side, lab: Lab, root: Path, workdir: Path,
            cpu: int | None) -> Iterator[subprocess.Popen[bytes]]:
    """Start a server in its namespace; yield once it answers TFTP."""
    argv = [*pinned(cpu), *exec_prefix(side.namespace), *server_command(side, root, workdir)]
    print(f"# {shlex.join(argv)}", flush=True)
    with (workdir / f"{side.name}.stderr").open("ab") as stderr:
        process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=stderr)
    try:
        wait_answering(lab, side, process)
        yield process
    finally:
        terminate(process, 5, log, side.name)


def client_socket(lab: Lab, timeout: float) -> socket.socket:
    with thread_in_namespace(lab.client):
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.settimeout(timeout)
    return sock


def wait_answering(lab: Lab, side: Side, process: subprocess.Popen[bytes]) -> None:
    """Readiness over the protocol: an RRQ for a missing file until an ERROR comes back."""
    deadline = time.monotonic() + 10
    with client_socket(lab, 0.2) as sock:
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise ServerError(f"{side.name} exited at start with {process.returncode}")
            sock.sendto(codec.encode(codec.ReadRequest("pxelab-bench-probe")),
                        (side.address, 69))
            with contextlib.suppress(TimeoutError):
                if isinstance(codec.decode(sock.recvfrom(2048)[0]), codec.Error):
                    return
    raise ServerError(f"{side.name} did not answer TFTP within 10 s")


def answers_windowsize(lab: Lab, side: Side) -> bool:
    """Whether the server acknowledges windowsize (RFC 7440) in its OACK."""
    request = codec.ReadRequest(FILE, "octet", (("blksize", "1468"), ("windowsize", "4")))
    with client_socket(lab, 2.0) as sock:
        sock.sendto(codec.encode(request), (side.address, 69))
        data, source = sock.recvfrom(2048)
        sock.sendto(codec.encode(codec.Error(8, "benchmark probe")), source)
    answer = codec.decode(data)
    return isinstance(answer, codec.OptionAck) and "windowsize" in dict(answer.options)


def cpu_seconds(pid: int) -> float:
    """utime + stime of the process, its threads and its reaped children (tftpd-hpa forks)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return sum(int(value) for value in fields[11:15]) / CLK_TCK


# -- the client -------------------------------------------------------------------------------

def download(lab: Lab, side: Side, blksize: int, window: int, *, out: Path,
             cpu: int | None) -> float:
    """Seconds atftp takes to fetch the file (process start to exit)."""
    options = ["--option", f"blksize {blksize}", "--option", "tsize 0"]
    if window > 1:
        options += ["--option", f"windowsize {window}"]
    argv = [*pinned(cpu), *exec_prefix(lab.client), "atftp", "-g", "-r", FILE, "-l", str(out),
            *options, side.address, "69"]
    started = time.perf_counter()
    result = subprocess.run(argv, capture_output=True, text=True, timeout=600, check=False)
    seconds = time.perf_counter() - started
    if result.returncode != 0:
        raise ServerError(f"{shlex.join(argv)} failed: {result.stdout}{result.stderr}")
    return seconds


# -- the serving side of this script ----------------------------------------------------------

def require_tools(servers: list[str]) -> None:
    needed = {"atftp": "atftp", "in.tftpd": "tftpd-hpa", "dnsmasq": "dnsmasq-base"}
    wanted = ["atftp"] + [{"tftpd-hpa": "in.tftpd", "dnsmasq": "dnsmasq"}[s]
                          for s in servers if s in PEERS]
    missing = [tool for tool in wanted if not shutil.which(tool)]
    if missing:
        raise HostCapabilityError(f"{', '.join(missing)} not found: apt-get install "
                                  + " ".join(needed[tool] for tool in missing))


def wait_for_stop() -> None:
    signal.sigwait({signal.SIGTERM, signal.SIGINT})


def serve_pxelab(root: Path, interface: str, address: str) -> None:
    """pxelab's BootServer with TFTP only, in this (the server's) namespace."""
    from ipaddress import IPv4Interface  # noqa: PLC0415 - only the serving process needs it

    from pxelab.core.events import EventLog  # noqa: PLC0415
    from pxelab.server.bootserver import (  # noqa: PLC0415
        BootServer,
        Dhcp4Config,
        Dhcp4Mode,
        ServerConfig,
    )
    from pxelab.server.policy import RulePolicy  # noqa: PLC0415

    ipv4 = IPv4Interface(f"{address}/24")
    config = ServerConfig.only(
        "tftp", interface=interface, ipv4=ipv4, ipv6=None, data_root=root,
        dhcp4=Dhcp4Config(mode=Dhcp4Mode.OFF, pool=(ipv4.network[100], ipv4.network[199])))
    with BootServer(config, RulePolicy(), EventLog()):
        wait_for_stop()


def serve_trivial(root: Path, interface: str, address: str) -> None:
    """A lock-step/window sender with no checks, no retransmission, no events."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    listener.bind((address, 69))
    threading.Thread(target=_trivial_loop, args=(listener, root, address),
                     daemon=True).start()
    wait_for_stop()


def _trivial_loop(listener: socket.socket, root: Path, address: str) -> None:
    while True:
        raw, peer = listener.recvfrom(2048)
        request = codec.decode(raw)
        assert isinstance(request, codec.ReadRequest)
        threading.Thread(target=_trivial_send, args=(request, peer, root, address),
                         daemon=True).start()


def _trivial_send(request: codec.ReadRequest, peer: tuple[str, int], root: Path,
                  address: str) -> None:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind((address, 0))
    sock.connect(peer)
    path = root / request.filename
    if not path.is_file():
        sock.send(codec.encode(codec.Error(1, "file not found")))
        return
    data = memoryview(path.read_bytes())
    options = dict(request.options)
    size, window = int(options.get("blksize", 512)), int(options.get("windowsize", 1))
    sock.send(codec.encode(codec.OptionAck(tuple((k, str(len(data)) if k == "tsize" else v)
                                                  for k, v in request.options))))
    total, acked, pack = len(data) // size + 1, 0, codec.DATA_HEADER.pack
    with contextlib.suppress(ConnectionRefusedError):
        while acked < total:
            ack = sock.recv(2048)  # ACK 0 first, then the last block of each window
            if ack[1] != codec.Opcode.ACK:
                break
            acked += (((ack[2] << 8 | ack[3]) - acked) & 0xFFFF)
            for block in range(acked + 1, min(acked + window, total) + 1):
                sock.send(pack(3, block & 0xFFFF) + data[(block - 1) * size:block * size])
    sock.close()


# -- measuring and reporting ------------------------------------------------------------------

Cell = tuple[int, int]
Samples = dict[str, dict[str, list[tuple[float, float]]]]  # server -> cell -> (s, cpu)


def cell_key(cell: Cell) -> str:
    return f"{cell[0]}x{cell[1]}"


def measure(lab: Lab, cells: list[Cell], runs: int, *, root: Path, workdir: Path,
            cpu: int | None) -> tuple[Samples, dict[str, bool]]:
    samples: Samples = {s: {cell_key(c): [] for c in cells} for s in lab.servers}
    source = root / FILE
    with contextlib.ExitStack() as stack:
        processes = {name: stack.enter_context(running(side, lab, root, workdir, cpu))
                     for name, side in lab.servers.items()}
        windows = {name: answers_windowsize(lab, side) for name, side in lab.servers.items()}
        for run in range(runs):
            for cell in cells:
                for name, side in lab.servers.items():  # one after the other, alike
                    if cell[1] > 1 and not windows[name]:
                        continue
                    out = workdir / f"out-{name}.bin"
                    before = cpu_seconds(processes[name].pid)
                    seconds = download(lab, side, cell[0], cell[1], out=out, cpu=cpu)
                    used = cpu_seconds(processes[name].pid) - before
                    if not filecmp.cmp(out, source, shallow=False):
                        raise ServerError(f"{name} {cell_key(cell)}: the file differs")
                    out.unlink()
                    samples[name][cell_key(cell)].append((seconds, used))
                    print(f"run {run + 1}/{runs} {name:<10} blksize {cell[0]:>4} "
                          f"window {cell[1]:>2}: {seconds:6.3f} s, server CPU {used:.2f} s",
                          flush=True)
    return samples, windows


def median(values: list[tuple[float, float]], index: int) -> float | None:
    return statistics.median(v[index] for v in values) if values else None


def report(samples: Samples, cells: list[Cell], runs: int, size_mib: int, cpu: str) -> None:
    servers = list(samples)
    where = "all on one CPU" if cpu != "none" else "CPUs left to the scheduler"
    print(f"\nTFTP download of a {size_mib} MiB file over a veth pair, atftp client, {where}, "
          f"median of {runs} run(s): seconds (MiB/s)\n")
    peers = [p for p in PEERS if p in servers]
    print("| blksize | window | " + " | ".join(servers)
          + (" | pxelab / faster peer |" if "pxelab" in servers and peers else " |"))
    print("|---:|---:|" + "---:|" * len(servers) + ("---:|" if peers else ""))
    for cell in cells:
        medians = {s: median(samples[s][cell_key(cell)], 0) for s in servers}
        row = [f"{m:.2f} ({size_mib / m:.0f})" if m else "n/a" for m in medians.values()]
        best = [medians[p] for p in peers if medians[p]]
        ratio = medians.get("pxelab")
        if peers and "pxelab" in servers:
            row.append(f"{ratio / min(best):.2f}" if ratio and best else "n/a")
        print(f"| {cell[0]} | {cell[1]} | " + " | ".join(row) + " |")
    print("\nServer CPU seconds per download (user + system, median):\n")
    print("| blksize | window | " + " | ".join(servers) + " |")
    print("|---:|---:|" + "---:|" * len(servers))
    for cell in cells:
        cpus = [None if s in CPU_UNSEEN else median(samples[s][cell_key(cell)], 1)
                for s in servers]
        print(f"| {cell[0]} | {cell[1]} | "
              + " | ".join(f"{c:.2f}" if c is not None else "n/a" for c in cpus) + " |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-n", "--runs", type=int, default=5)
    parser.add_argument("--size-mib", type=int, default=64)
    parser.add_argument("--servers", default=",".join(SERVERS))
    parser.add_argument("--blksizes", default=",".join(map(str, BLKSIZES)))
    parser.add_argument("--windows", default=",".join(map(str, WINDOWS)))
    parser.add_argument("--cpu", default="0",
                        help="CPU to pin the servers and the client to, or 'none'")
    parser.add_argument("--json", type=Path, help="write the raw samples here")
    parser.add_argument("--serve", choices=("pxelab", "trivial"), help=argparse.SUPPRESS)
    parser.add_argument("--root", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--interface", help=argparse.SUPPRESS)
    parser.add_argument("--address", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:  # the server side, started by the benchmark inside the namespace
        # Blocked before any thread starts, so that wait_for_stop() receives them.
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM, signal.SIGINT})
        serve = serve_pxelab if args.serve == "pxelab" else serve_trivial
        serve(args.root, args.interface, args.address)
        return
    servers = args.servers.split(",")
    require_tools(servers)
    cells = [(int(b), int(w)) for b in args.blksizes.split(",") for w in args.windows.split(",")]
    with tempfile.TemporaryDirectory(prefix="pxelab-tftp-bench-") as tmp:
        workdir = Path(tmp)
        workdir.chmod(0o755)  # dnsmasq reads the root as its own unprivileged user
        root = workdir / "root"
        root.mkdir()
        (root / FILE).write_bytes(os.urandom(args.size_mib << 20))
        with veth_lab(servers) as lab:
            samples, windows = measure(lab, cells, args.runs, root=root, workdir=workdir,
                                       cpu=None if args.cpu == "none" else int(args.cpu))
    print("\nwindowsize answered: " + ", ".join(f"{s} {'yes' if w else 'no'}"
                                                for s, w in windows.items()))
    report(samples, cells, args.runs, args.size_mib, args.cpu)
    if args.json:
        args.json.write_text(json.dumps(samples, indent=2))


if __name__ == "__main__":
    main()
