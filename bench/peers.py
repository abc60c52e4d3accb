"""Reference boot servers from Debian, run in a lab for comparison.

Not part of the product: the benchmarks measure pxelab's own server against
these peers on the same link in the same run.
"""

from __future__ import annotations

import logging
import shlex
import signal
import subprocess
import time
from ipaddress import IPv4Address, IPv4Interface, IPv6Address, IPv6Interface
from pathlib import Path
from types import TracebackType

from pxelab.core.errors import HostCapabilityError, ServerError
from pxelab.core.netns import exec_prefix


class Dnsmasq:
    """dnsmasq as DHCPv4 + TFTP server (+ RA) on the lab bridge, no DNS.

    Configured as a careful admin would for a boot lab: no ping check before an
    offer (it costs every new client 3 s) and router advertisements on, since
    iPXE waits ~15 s for an IPv6 router before it gives up on it.
    """

    def __init__(self, namespace: str, interface: str, address: IPv4Interface, *,
                 data_root: Path, boot_file: str, workdir: Path,
                 router_advertisements: bool = True) -> None:
        self.router_advertisements = router_advertisements
        self.namespace = namespace
        self.interface = interface
        self.address = address
        self.data_root = data_root
        self.boot_file = boot_file
        self.log_path = workdir / "dnsmasq.log"
        self.log = logging.getLogger(f"{__name__}.Dnsmasq.{namespace}")
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def command(self) -> list[str]:
        network = self.address.network
        first, last = network[100], network[199]
        # --keep-in-foreground, not --no-daemon: that debug mode also writes every log line
        # to stderr, which nobody reads once it has started, and after 64 KiB (a few
        # hundred DHCP and TFTP lines) the full pipe stops dnsmasq dead. --user=root keeps
        # what --no-daemon did: no switch to an unprivileged user, so TFTP reads any data
        # root (a mkdtemp directory is 0700).
        return [*exec_prefix(self.namespace), "dnsmasq", "--keep-in-foreground",
                "--user=root", "--port=0",
                "--conf-file=/dev/null", f"--interface={self.interface}", "--bind-interfaces",
                f"--dhcp-range={first},{last},{network.netmask},1h",
                f"--dhcp-boot={self.boot_file},,{self.address.ip}",
                "--enable-tftp", f"--tftp-root={self.data_root}", "--log-dhcp",
                f"--log-facility={self.log_path}", "--dhcp-leasefile=/dev/null",
                f"--pid-file={self.log_path.with_suffix('.pid')}", "--no-ping",
                *self._ra_args()]

    def _ra_args(self) -> list[str]:
        if not self.router_advertisements:
            return []
        return ["--enable-ra", "--dhcp-range=2001:db8::,ra-only,64"]

    def __enter__(self) -> Dnsmasq:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self.log.info("starting: %s", shlex.join(self.command))
        try:
            self._process = subprocess.Popen(self.command, stderr=subprocess.PIPE)
        except FileNotFoundError as missing:
            raise HostCapabilityError(
                "dnsmasq not found: apt-get install dnsmasq-base") from missing
        self._wait_ready(timeout=10.0)
        return self

    #: a log line dnsmasq writes once every socket is bound
    ready_marker = "TFTP root is"

    def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._process is None or self._process.poll() is not None:
                stderr = self._stderr()
                raise ServerError(f"dnsmasq exited at start: {stderr.strip()}")
            if self.log_path.exists() and self.ready_marker in self.log_path.read_text():
                return
            time.sleep(0.05)
        raise ServerError(f"dnsmasq not ready after {timeout}s; see {self.log_path}")

    def _stderr(self) -> str:
        if self._process and self._process.stderr:
            return self._process.stderr.read().decode(errors="replace").strip()
        return ""

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 tb: TracebackType | None) -> None:
        if self._process and self._process.poll() is None:
            self._process.send_signal(signal.SIGTERM)
            try:
                self._process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()


def _size(pool: tuple[IPv4Address, IPv4Address] | tuple[IPv6Address, IPv6Address]) -> int:
    return int(pool[1]) - int(pool[0]) + 1


class DnsmasqDhcp(Dnsmasq):
    """dnsmasq as DHCPv4 + DHCPv6 server only (no DNS, TFTP or RA), for dhcp_bench.py.

    Both ranges, the boot file in both families (option 67 + siaddr, option 59)
    and ``hosts`` as fixed addresses, like pxelab's default profile. ``ping``
    False (the default) adds ``--no-ping``: otherwise dnsmasq pings every
    address before it offers it to a new client and waits for no answer.
    Leases are kept in memory only (``--leasefile-ro``), as pxelab keeps them;
    DHCP transactions are logged (dnsmasq's default, no ``--log-dhcp``) to a file.
    """

    ready_marker = "DHCPv6, IP range"

    def __init__(self, namespace: str, interface: str, address: IPv4Interface,
                 address6: IPv6Interface, *, pool: tuple[IPv4Address, IPv4Address],
                 pool6: tuple[IPv6Address, IPv6Address], boot_file: str, workdir: Path,
                 hosts: dict[str, IPv4Address] | None = None, ping: bool = False) -> None:
        super().__init__(namespace, interface, address, data_root=workdir, boot_file=boot_file,
                         workdir=workdir, router_advertisements=False)
        self.address6 = address6
        self.pool, self.pool6 = pool, pool6
        self.hosts = hosts or {}
        self.ping = ping

    @property
    def pid(self) -> int:
        """dnsmasq's own process id (``ip netns exec`` execs it)."""
        if self._process is None:
            raise ServerError("dnsmasq is not running")
        return self._process.pid

    @property
    def command(self) -> list[str]:
        (first, last), (first6, last6) = self.pool, self.pool6
        server6 = self.address6.ip
        # --keep-in-foreground, not --no-daemon: that debug mode also writes every log line
        # to stderr, and a full stderr pipe stops dnsmasq dead.
        return [*exec_prefix(self.namespace), "dnsmasq", "--keep-in-foreground", "--port=0",
                "--conf-file=/dev/null", f"--interface={self.interface}", "--bind-interfaces",
                f"--dhcp-range={first},{last},{self.address.netmask},1h",
                f"--dhcp-range={first6},{last6},{self.address6.network.prefixlen},1h",
                f"--dhcp-boot={self.boot_file},,{self.address.ip}",
                f"--dhcp-option=option6:bootfile-url,tftp://[{server6}]/{self.boot_file}",
                *(f"--dhcp-host={mac},{ip}" for mac, ip in self.hosts.items()),
                f"--log-facility={self.log_path}", "--leasefile-ro",
                # Its default of 1000 leases (both families) would NAK the rest of the pools.
                f"--dhcp-lease-max={_size(self.pool) + _size(self.pool6)}",
                f"--pid-file={self.log_path.with_suffix('.pid')}",
                *([] if self.ping else ["--no-ping"])]
