"""Soak `pxelab serve`: a flood of valid and malformed requests, and its memory meanwhile.

    .venv/bin/python bench/serve_soak.py [--requests 300000] [--events-in-memory N]

Runs the real `pxelab serve` command in a lab namespace (veth to a client namespace,
as dhcp_bench.py builds it), sends it DHCPv4, TFTP and HTTP requests from the client
side, about half of them malformed, and prints the server's resident memory (VmRSS)
before the load, at every tenth of it and at the end. A server left running for weeks
must stay flat: memory keeps only the last events (`--events-in-memory`); the events
file gets them all. `--events-in-memory 100000000` shows what keeping them all costs.

Measured, never asserted; not part of the test suite.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import random
import shlex
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from dhcp_bench import CLIENT_IF, SERVER4, SERVER_IF, Dhcp4Client, Link, veth_link

from pxelab.core.netns import exec_prefix, thread_in_namespace

SMALL = b"pxelab soak\n" * 20  # one TFTP block
MACS = [bytes.fromhex(f"02aa{n:08x}") for n in range(200)]  # a lab's worth of clients
TFTP_RRQ = b"\x00\x01small.bin\x00octet\x00"
DHCP_JUNK = [b"\x01", b"\x01\x01\x06\x00" + b"\xff" * 40, b"\x02" * 300,
             b"\x01\x01\x06\x00" + b"\x00" * 232 + b"\xde\xad\xbe\xef"]  # bad magic cookie
TFTP_JUNK = [b"\x00\x01no-terminator", b"\x00\x09whatever\x00", b"\x00\x05\x00\x01err\x00",
             b"\x00\x01missing.bin\x00octet\x00", b"\x00\x01small.bin\x00mail\x00", b"\x07"]
HTTP_JUNK = [b"BLAH / HTTP/1.1\r\n\r\n", b"GET /../../etc/passwd HTTP/1.1\r\nHost: x\r\n\r\n",
             b"\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03\r\n\r\n",
             b"GET /missing HTTP/1.1\r\nHost: x\r\n\r\n"]
GET = b"GET /small.bin HTTP/1.1\r\nHost: soak\r\n\r\n"


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for process {pid}")


@contextlib.contextmanager
def pxelab_serve(link: Link, data_root: Path, workdir: Path, window: int) -> Iterator[int]:
    """`pxelab serve` in the server namespace; yields its pid once it says it is ready."""
    pxelab = shutil.which("pxelab", path=str(Path(sys.executable).parent)) or "pxelab"
    command = [*exec_prefix(link.server), pxelab, "serve", "--interface", SERVER_IF,
               "--data-root", str(data_root), "--json", "--events",
               str(workdir / "events.jsonl"), "--events-in-memory", str(window)]
    print("starting:", shlex.join(command), flush=True)
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                               text=True)
    assert process.stderr is not None
    try:
        for line in process.stderr:  # the notes; events go to stdout (discarded)
            if line.startswith("pxelab serve: ready:"):
                break
        else:
            raise RuntimeError(f"pxelab serve ended before it was ready ({process.wait()})")
        yield process.pid  # ip netns exec execs the command: the same process
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        print("server:", process.stderr.read().strip().splitlines()[-1:], flush=True)


class Client:
    """The requests of one round, sent from the client namespace."""

    def __init__(self, link: Link) -> None:
        with thread_in_namespace(link.client):
            self.dhcp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            self.dhcp.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
            self.dhcp.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, CLIENT_IF.encode())
            self.dhcp.bind(("0.0.0.0", 68))
            self.tftp = [socket.socket(socket.AF_INET, socket.SOCK_DGRAM) for _ in range(4)]
            self.junk = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            self.http = socket.create_connection((str(SERVER4.ip), 80), timeout=5)
            self.link = link
        self.dhcp.settimeout(0.5)
        for sock in self.tftp:
            sock.settimeout(2)
        self.template = Dhcp4Client().discover
        self.server = str(SERVER4.ip)
        self.random = random.Random(7)

    def round(self) -> int:
        """One round; returns how many requests it sent."""
        sent = 0
        for mac in self.random.sample(MACS, 8):  # 8 DISCOVERs, 8 malformed datagrams
            xid = self.random.randbytes(4)
            self.dhcp.sendto(self.template.fill(xid=xid, mac=mac), ("255.255.255.255", 67))
            self.junk.sendto(self.random.choice(DHCP_JUNK), (self.server, 67))
            sent += 2
        with contextlib.suppress(TimeoutError):
            for _ in range(8):
                self.dhcp.recv(2048)
        for sock in self.tftp:  # 4 whole transfers, 4 malformed requests
            sock.sendto(TFTP_RRQ, (self.server, 69))
            self.junk.sendto(self.random.choice(TFTP_JUNK), (self.server, 69))
            sent += 2
        for sock in self.tftp:
            with contextlib.suppress(TimeoutError):
                data, tid = sock.recvfrom(2048)
                sock.sendto(b"\x00\x04" + data[2:4], tid)  # ACK the one block
        self.http.sendall(GET * 4)  # 4 pipelined GETs on a keep-alive connection
        self._read_responses(4)
        sent += 4
        with thread_in_namespace(self.link.client), socket.create_connection(
                (self.server, 80), timeout=5) as bad:  # one malformed request
            bad.sendall(self.random.choice(HTTP_JUNK))
            bad.shutdown(socket.SHUT_WR)  # nothing more: the server closes after its answer
            with contextlib.suppress(OSError):
                while bad.recv(65536):
                    pass
        return sent + 1

    def _read_responses(self, count: int) -> None:
        buffer = b""
        for _ in range(count):
            while b"\r\n\r\n" not in buffer:
                buffer += self.http.recv(65536)
            head, buffer = buffer.split(b"\r\n\r\n", 1)
            length = next(int(line.split(b":")[1]) for line in head.split(b"\r\n")
                          if line.lower().startswith(b"content-length:"))
            while len(buffer) < length:
                buffer += self.http.recv(65536)
            buffer = buffer[length:]

    def close(self) -> None:
        for sock in (self.dhcp, self.junk, self.http, *self.tftp):
            sock.close()


def soak(requests: int, window: int) -> list[tuple[int, int, float]]:
    """(requests so far, RSS KiB, seconds) before the load, every tenth of it, at the end."""
    with tempfile.TemporaryDirectory(prefix="pxelab-soak-") as tmp, veth_link() as link:
        workdir = Path(tmp)
        data_root = workdir / "root"
        data_root.mkdir()
        (data_root / "small.bin").write_bytes(SMALL)
        with pxelab_serve(link, data_root, workdir, window) as pid:
            client = Client(link)
            started = time.monotonic()
            samples = [(0, rss_kib(pid), 0.0)]
            done, next_sample = 0, requests // 10
            try:
                while done < requests:
                    done += client.round()
                    if done >= next_sample:
                        samples.append((done, rss_kib(pid), time.monotonic() - started))
                        print(f"{done:>8} requests  RSS {samples[-1][1] / 1024:6.1f} MiB  "
                              f"{samples[-1][2]:6.1f}s", flush=True)
                        next_sample += requests // 10
            finally:
                client.close()
            events = workdir / "events.jsonl"
            with events.open("rb") as file:
                lines = sum(chunk.count(b"\n") for chunk in iter(lambda: file.read(1 << 20), b""))
            print(f"events file so far: {lines} events, "
                  f"{events.stat().st_size / 2**20:.0f} MiB", flush=True)
    return samples


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=300_000)
    parser.add_argument("--events-in-memory", type=int, default=10_000)
    options = parser.parse_args()
    if os.geteuid() != 0:
        sys.exit("serve_soak.py needs root (network namespaces)")
    samples = soak(options.requests, options.events_in_memory)
    start, middle, end = samples[0], samples[len(samples) // 2], samples[-1]
    print(f"\nevents in memory: {options.events_in_memory}; requests: {end[0]}; "
          f"{end[2]:.0f}s")
    for name, (count, kib, _) in (("start", start), ("middle", middle), ("end", end)):
        print(f"{name:>6}: {count:>8} requests  RSS {kib / 1024:6.1f} MiB")


if __name__ == "__main__":
    main()
