"""dnsmasq as a DHCP-only peer for dhcp_bench.py.

Not part of the product. The boot benchmark's peers are whole stacks of real
daemons run by pxelab.daemons (bench/peer_stacks.py, bench/peers/).
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


def _size(pool: tuple[IPv4Address, IPv4Address] | tuple[IPv6Address, IPv6Address]) -> int:
    return int(pool[1]) - int(pool[0]) + 1


class DnsmasqDhcp:
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
        self.namespace, self.interface, self.address = namespace, interface, address
        self.boot_file = boot_file
        self.log_path = workdir / "dnsmasq.log"
        self.log = logging.getLogger(f"{__name__}.DnsmasqDhcp.{namespace}")
        self._process: subprocess.Popen[bytes] | None = None
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

    def __enter__(self) -> DnsmasqDhcp:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self.log.info("starting: %s", shlex.join(self.command))
        try:
            self._process = subprocess.Popen(self.command, stderr=subprocess.PIPE)
        except FileNotFoundError as missing:
            raise HostCapabilityError(
                "dnsmasq not found: apt-get install dnsmasq-base") from missing
        self._wait_ready(timeout=10.0)
        return self

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
