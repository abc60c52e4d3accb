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
from ipaddress import IPv4Interface
from pathlib import Path
from types import TracebackType

from pxelab.errors import HostCapabilityError, ServerError
from pxelab.netns import exec_prefix


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
        return [*exec_prefix(self.namespace), "dnsmasq", "--no-daemon", "--port=0",
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

    def _wait_ready(self, timeout: float) -> None:
        # dnsmasq logs its TFTP root once every socket is bound.
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._process is None or self._process.poll() is not None:
                stderr = self._stderr()
                raise ServerError(f"dnsmasq exited at start: {stderr.strip()}")
            if self.log_path.exists() and "TFTP root is" in self.log_path.read_text():
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
