"""Two namespaces joined by a bridge, for boot-server tests against real and crafted clients.

A "server" namespace holds bridge br0 (192.0.2.1/24, 2001:db8::1/64) and a
veth port whose peer is eth0 in a "client" namespace (192.0.2.50/24,
2001:db8::50/64). Made with pyroute2 directly, not LabNetwork, so that tests
using it exercise the server alone. Names are unique per process and xdist worker.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import select
import signal
import socket
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pyroute2 import NetNS, netns

from pxelab.core.events import Event
from pxelab.core.netns import thread_in_namespace
from pxelab.pytest_plugin import pxelab_requires

SERVER4 = "192.0.2.1"
SERVER6 = "2001:db8::1"
CLIENT4 = "192.0.2.50"
CLIENT6 = "2001:db8::50"
IFA_F_NODAD = 0x02

_serial = itertools.count()


@dataclass(frozen=True)
class Lab:
    server: str
    client: str


def _unique(prefix: str) -> str:
    worker = os.environ.get("PYTEST_XDIST_WORKER", "m")
    return f"{prefix}-{os.getpid()}-{worker}-{next(_serial)}"


@contextlib.contextmanager
def two_namespaces() -> Iterator[Lab]:
    """Server and client namespaces joined by br0 <- veth -> eth0; removed on exit."""
    pxelab_requires(root=True)
    lab = Lab(_unique("pxl-bs"), _unique("pxl-bc"))
    created: list[str] = []
    try:
        for name in (lab.server, lab.client):
            netns.create(name)
            created.append(name)
        with NetNS(lab.server) as ns:
            ns.link("add", ifname="br0", kind="bridge")
            bridge = ns.link_lookup(ifname="br0")[0]
            ns.link("add", ifname="vs0", kind="veth",
                    peer={"ifname": "eth0", "net_ns_fd": lab.client})
            port = ns.link_lookup(ifname="vs0")[0]
            ns.link("set", index=port, master=bridge, state="up")
            ns.link("set", index=bridge, state="up")
            ns.addr("add", index=bridge, address=SERVER4, prefixlen=24)
            # The global address skips DAD; the link-local one does not, so the RA
            # server meets a tentative address at start, as it will in a fresh lab.
            ns.addr("add", index=bridge, address=SERVER6, prefixlen=64, flags=IFA_F_NODAD)
        with NetNS(lab.client) as ns:
            for name in ("lo", "eth0"):
                ns.link("set", index=ns.link_lookup(ifname=name)[0], state="up")
            eth0 = ns.link_lookup(ifname="eth0")[0]
            ns.addr("add", index=eth0, address=CLIENT4, prefixlen=24)
            ns.addr("add", index=eth0, address=CLIENT6, prefixlen=64, flags=IFA_F_NODAD)
        yield lab
    finally:
        for name in created:
            netns.remove(name)


def in_client(lab: Lab, argv: list[str], timeout: float = 30) -> subprocess.CompletedProcess[str]:
    """Run ``argv`` in the client namespace and capture its output."""
    return subprocess.run(["ip", "netns", "exec", lab.client, *argv], capture_output=True,
                          text=True, timeout=timeout, check=False)


def dhcp4_client_socket(lab: Lab, port: int = 68, address: str = "0.0.0.0") -> socket.socket:
    """A UDP socket in the client namespace, bound to eth0 and ``address``:``port``, that may
    broadcast: where crafted DHCPv4 clients send from and read replies."""
    with thread_in_namespace(lab.client):
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, b"eth0")
    sock.bind((address, port))
    return sock


def event(source: str, kind: str, **match: Any) -> Callable[[Event], bool]:
    """Predicate: this source and kind, and each given field (or details key) equal."""
    def predicate(e: Event) -> bool:
        if (e.source, e.kind) != (source, kind):
            return False
        return all(getattr(e, k, e.details.get(k)) == v for k, v in match.items())
    return predicate


def stop_process(pid: int, timeout: float = 5) -> None:
    """SIGTERM ``pid`` and wait (on a pidfd, no polling) until it is gone; then SIGKILL."""
    try:
        fd = os.pidfd_open(pid)
    except ProcessLookupError:
        return
    try:
        os.kill(pid, signal.SIGTERM)
        if not select.select([fd], [], [], timeout)[0]:
            os.kill(pid, signal.SIGKILL)
            select.select([fd], [], [], timeout)
    except ProcessLookupError:
        pass
    finally:
        os.close(fd)


def stop_processes_mentioning(text: str) -> None:
    """Stop every process whose command line contains ``text`` (e.g. a per-test file path).

    Daemonizing clients such as ``dhclient -1`` write their pid file after the fork;
    a cleanup that reads it can come too early. A unique path in the command line
    cannot be missed.
    """
    wanted = text.encode()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if wanted in cmdline:
            stop_process(int(entry.name))
