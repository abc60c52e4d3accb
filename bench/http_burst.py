"""Benchmark: N TCP connections opened at once against pxelab's HTTP server.

A boot storm's HTTP clients connect within milliseconds of each other; `curl`
processes started one by one (storm_bench.py) never do. This opens ``N``
non-blocking connections from one thread, then sends one GET on each, against an
:class:`HttpServer` on 127.0.0.1 in its own event loop thread, and reports the
slowest request and the kernel's listen-queue counters over the burst (a
connection the accept queue had no room for waits for its SYN's resend, 1 s).
The counters are the namespace's: run it in one of its own (``unshare -n``).

    unshare -n sh -c 'ip link set lo up; .venv/bin/python bench/http_burst.py 100 200 400'
"""

from __future__ import annotations

import asyncio
import resource
import selectors
import socket
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

import storm

from pxelab.core.events import EventLog
from pxelab.server.http.server import HttpServer, open_tcp_socket
from pxelab.server.tftp.files import DataRoot

REQUEST = b"GET /small HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"


def netstat() -> dict[str, int]:
    with open("/proc/self/net/netstat") as file:
        return storm.parse_snmp(file.read())


class Served:
    """The server in a thread of its own, on 127.0.0.1 and an ephemeral port."""

    def __init__(self, root: Path) -> None:
        self.sock = open_tcp_socket(socket.AF_INET, "127.0.0.1", 0, None)
        self.address = self.sock.getsockname()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=asyncio.run, args=(self._serve(root),))

    async def _serve(self, root: Path) -> None:
        server = await HttpServer(DataRoot(root), EventLog()).serve(self.sock)
        self._stop = asyncio.Event()
        self._loop = asyncio.get_running_loop()
        self._ready.set()
        await self._stop.wait()
        server.close()

    def __enter__(self) -> Served:
        self._thread.start()
        self._ready.wait(10)
        return self

    def __exit__(self, *exc: object) -> None:
        self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(10)


def burst(address: tuple[str, int], n: int) -> list[float]:
    """Seconds from the burst's start to each answer's end."""
    selector = selectors.DefaultSelector()
    start = time.perf_counter()
    for index in range(n):
        sock = socket.socket()
        sock.setblocking(False)
        sock.connect_ex(address)
        selector.register(sock, selectors.EVENT_WRITE, index)
    done: list[float] = []
    while len(done) < n:
        events = selector.select(10)
        if not events:
            raise SystemExit(f"http_burst: {n - len(done)} requests unanswered after 10 s")
        for key, mask in events:
            sock = key.fileobj
            assert isinstance(sock, socket.socket)
            if mask & selectors.EVENT_WRITE:
                sock.send(REQUEST)
                selector.modify(sock, selectors.EVENT_READ, key.data)
            elif not sock.recv(65536):
                done.append(time.perf_counter() - start)
                selector.unregister(sock)
                sock.close()
    return done


def main() -> None:
    counts = [int(arg) for arg in sys.argv[1:]] or [100, 200, 400]
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)  # both ends' sockets in this process
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "small").write_bytes(b"x" * 1024)
        with Served(Path(tmp)) as served:
            for n in counts:
                before = netstat()
                times = burst(served.address, n)
                moved = storm.delta(before, netstat())
                print(f"N={n}: slowest {max(times):.3f} s, over 1 s {sum(t > 1 for t in times)}, "
                      f"ListenOverflows {moved.get('TcpExt.ListenOverflows', 0)}, "
                      f"ListenDrops {moved.get('TcpExt.ListenDrops', 0)}", flush=True)


if __name__ == "__main__":
    main()
