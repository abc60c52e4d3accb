"""`pxelab serve` as a user runs it: a subprocess in the server namespace, real clients.

The server namespace of :mod:`nslab` has br0 (192.0.2.1/24, 2001:db8::1/64);
``pxelab serve --config fixtures/labs/minimal.toml`` finds those addresses on
br0 by itself. Clients in the client namespace: busybox udhcpc and curl.
stdout is read by a thread into a queue, so every wait is a queue timeout.
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from nslab import SERVER4, Lab, in_client

from pxelab.core.netns import thread_in_namespace
from pxelab.pytest_plugin import pxelab_requires

pytestmark = pytest.mark.netns

MINIMAL = Path(__file__).parents[2] / "fixtures" / "labs" / "minimal.toml"
READY = "pxelab serve: ready"
# (family, type, port): what the minimal lab binds, and must leave free after a stop
PORTS = [(socket.AF_INET, socket.SOCK_DGRAM, 67), (socket.AF_INET, socket.SOCK_DGRAM, 69),
         (socket.AF_INET, socket.SOCK_STREAM, 80), (socket.AF_INET6, socket.SOCK_DGRAM, 69),
         (socket.AF_INET6, socket.SOCK_STREAM, 80), (socket.AF_INET6, socket.SOCK_DGRAM, 547)]


class Serve:
    """One `pxelab serve` process in a namespace; stdout lines arrive through a queue."""

    def __init__(self, namespace: str, args: list[str]) -> None:
        self.argv = ["ip", "netns", "exec", namespace, sys.executable, "-m", "pxelab.cli",
                     "serve", *args]
        self.proc = subprocess.Popen(self.argv, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True, bufsize=1)
        self.lines: list[str] = []
        self._queue: queue.Queue[str | None] = queue.Queue()
        self._stderr: list[str] = []
        self._readers = [threading.Thread(target=self._read, daemon=True),
                         threading.Thread(target=self._read_stderr, daemon=True)]
        for reader in self._readers:
            reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        with self.proc.stdout:
            for line in self.proc.stdout:
                self._queue.put(line.rstrip("\n"))
        self._queue.put(None)

    def _read_stderr(self) -> None:
        assert self.proc.stderr is not None
        with self.proc.stderr:
            self._stderr.extend(self.proc.stderr)

    @property
    def stderr(self) -> str:
        return "".join(self._stderr)

    def wait_line(self, wanted: Callable[[str], bool], timeout: float, what: str) -> str:
        """The first stdout line ``wanted`` accepts; fail with the output seen so far."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                line = self._queue.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                line = None
                ended = False
            else:
                ended = line is None
            if line is not None:
                self.lines.append(line)
                if wanted(line):
                    return line
                continue
            self.finish(1.0)
            pytest.fail(f"no {what} within {timeout}s ({'stdout closed' if ended else 'timeout'}"
                        f", exit {self.proc.returncode}); stdout: {self.lines}; stderr: "
                        f"{self.stderr}")

    def finish(self, timeout: float) -> int | None:
        """Wait for the exit and for both readers; the exit status, or None if still running."""
        try:
            status = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            return None
        for reader in self._readers:
            reader.join(timeout)
        while (line := self._queue.get_nowait() if not self._queue.empty() else None):
            self.lines.append(line)
        return status

    def stop(self, signum: int, timeout: float = 5.0) -> int:
        self.proc.send_signal(signum)
        status = self.finish(timeout)
        assert status is not None, f"pxelab serve ignored signal {signum} for {timeout}s"
        return status

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.finish(5.0)


@contextlib.contextmanager
def serve(lab: Lab, *args: str, ready: bool = True) -> Iterator[Serve]:
    """Run `pxelab serve ARGS` in the server namespace; wait for "ready"; always kill it."""
    process = Serve(lab.server, list(args))
    try:
        if ready:
            process.wait_line(lambda line: READY in line or '"ready"' in line, 10, "ready line")
        yield process
    finally:
        process.kill()


def ports_free(namespace: str) -> list[str]:
    """Bind every port the lab used, in ``namespace``; return the ones still taken."""
    busy = []
    with thread_in_namespace(namespace):
        for family, kind, port in PORTS:
            with socket.socket(family, kind) as sock:
                try:
                    sock.bind(("::" if family == socket.AF_INET6 else "0.0.0.0", port))
                except OSError as exc:
                    busy.append(f"{family.name}/{kind.name}/{port}: {exc}")
    return busy


# -- fixtures --------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def data_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("serve")
    (root / "hello.txt").write_text("hello from pxelab serve\n")
    return root


# -- tests -----------------------------------------------------------------------------------

def test_minimal_config_leases_serves_and_stops_on_sigterm(lab: Lab, data_root: Path) -> None:
    pxelab_requires(tools=["busybox", "curl"], hint="see debian-packages.txt")
    with serve(lab, "--config", str(MINIMAL), "--data-root", str(data_root)) as server:
        startup = "\n".join(server.lines)
        # read from br0 itself: the file names neither address
        assert "interface br0: IPv4 192.0.2.1/24, IPv6 2001:db8::1/64" in startup
        assert "pool 192.0.2.128-192.0.2.254" in startup
        lease = in_client(lab, ["busybox", "udhcpc", "-i", "eth0", "-n", "-q", "-f",
                                "-s", "/bin/true", "-t", "3", "-T", "1"])
        assert lease.returncode == 0, lease.stderr
        assert f"obtained from {SERVER4}" in lease.stderr
        server.wait_line(lambda line: "dhcp4.ack" in line, 5, "dhcp4.ack event line")
        fetch = in_client(lab, ["curl", "-sS", "--max-time", "5",
                                f"http://{SERVER4}/hello.txt"])
        assert fetch.stdout == "hello from pxelab serve\n", fetch.stderr
        server.wait_line(lambda line: "http." in line and "hello.txt" in line, 5,
                         "http event line")
        started = time.monotonic()
        assert server.stop(signal.SIGTERM) == 0, server.stderr
        assert time.monotonic() - started < 3
    assert server.lines[-1].startswith("pxelab serve: stopped on SIGTERM"), server.lines
    assert "Traceback" not in server.stderr
    assert ports_free(lab.server) == []


def test_sigint_with_json_lines_and_events_file(lab: Lab, data_root: Path,
                                                tmp_path: Path) -> None:
    events = tmp_path / "events.jsonl"
    with serve(lab, "--interface", "br0", "--data-root", str(data_root), "--json",
               "--events", str(events)) as server:
        assert server.stop(signal.SIGINT) == 0, server.stderr
    records = [json.loads(line) for line in server.lines]  # stdout is JSON only
    kinds = [(r["source"], r["kind"]) for r in records]
    assert kinds[0] == ("server", "ready") and kinds[-1] == ("server", "stopped")
    assert "pxelab serve: stopped on SIGINT" in server.stderr
    assert [json.loads(line) for line in events.read_text().splitlines()] == records
    assert ports_free(lab.server) == []


def test_busy_port_exits_2_and_the_first_server_keeps_serving(lab: Lab,
                                                                data_root: Path) -> None:
    args = ("--interface", "br0", "--data-root", str(data_root))
    with serve(lab, *args) as first, serve(lab, *args, ready=False) as second:
        assert second.finish(10) == 2
        assert "already uses port" in second.stderr and "Traceback" not in second.stderr
        assert first.proc.poll() is None
        assert first.stop(signal.SIGTERM) == 0


BAD = {  # id: (lab file or None, more arguments, what stderr must say)
    "pool": ('[server]\ninterface = "br0"\n[dhcp4]\npool = ["192.0.2.10", "10.0.0.1"]\n', [],
             "dhcp4.pool[1]: 10.0.0.1 is not inside 192.0.2.0/24"),
    "interface": ('[server]\ninterface = "nosuch0"\n', [], "there is no interface 'nosuch0'"),
    "unknown-key": ("[tftp]\nport = 69\nblksize = 1468\n", ["--interface", "br0"],
                    "tftp.blksize: unknown key; did you mean 'max_blksize'?"),
    "no-config": (None, ["--interface", "br0"], "nothing to serve"),
}


@pytest.mark.parametrize("case", BAD.values(), ids=BAD.keys())
def test_bad_config_exits_2_with_the_message(lab: Lab, data_root: Path, tmp_path: Path,
                                              case: tuple[str | None, list[str], str]) -> None:
    config, args, message = case
    if config is not None:
        path = tmp_path / "lab.toml"
        path.write_text(config)
        args = ["--config", str(path), "--data-root", str(data_root), *args]
    with serve(lab, *args, ready=False) as server:
        assert server.finish(10) == 2
    assert message in server.stderr, server.stderr
    assert server.stderr.startswith("pxelab: error: ") and "Traceback" not in server.stderr
    assert server.lines == []  # nothing was served, so nothing claims it was


def test_console_script_exists() -> None:
    script = Path(sys.executable).parent / "pxelab"
    assert script.exists() and os.access(script, os.X_OK), script
