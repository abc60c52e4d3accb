"""A lab's guest as a transient libvirt domain, with the QEMU guest's interface.

:class:`LibvirtGuest` is what :class:`pxelab.machine.qemu.Guest` is to the lab
(``console``, ``started_at``, ``started_wall``, ``firmware_log``, ``serial_log``,
``accel``, ``wait_exit``), for a domain whose NIC is on a host bridge
(:class:`pxelab.machine.hostlink.HostBridge`).

The serial console is a unix socket QEMU listens on (no pty: QEMU's private /dev
under libvirt may have no usable devpts). The domain is created paused: QEMU drops
what the guest writes while no one is connected, so the console is connected
before the first instruction runs, and power-on (``started_at``) is the resume. It is created with
``VIR_DOMAIN_START_AUTODESTROY``: libvirtd destroys it when this process's
connection closes, also when the process is killed. Its NVRAM file (OVMF) lives
in libvirt's NVRAM directory while it runs and is moved to the artifacts after;
what a killed run leaves there, the next run removes
(:func:`pxelab.machine.libvirt.connection.reap_domains`).

The artifacts have ``domain.xml`` and ``virsh-commands.txt`` (start the same
domain by hand).
"""

from __future__ import annotations

import contextlib
import logging
import shlex
import shutil
import socket
import time
from pathlib import Path
from typing import Any

import pexpect

from pxelab.core.errors import GuestError
from pxelab.machine.backend import DEFAULT_LIBVIRT_URI
from pxelab.machine.console import ConsoleFd
from pxelab.machine.guestbase import ConsoleGuest
from pxelab.machine.libvirt.connection import (
    console_path,
    current_owner,
    libvirt_module,
    nvram_path,
    open_connection,
    reap_domains,
    versions,
)
from pxelab.machine.libvirt.domain import DomainFiles, domain_xml
from pxelab.machine.qemu import OVMF_VARS, GuestSpec, resolve_accel, write_guest_vars

DOMAIN_FILE = "domain.xml"
VIRSH_FILE = "virsh-commands.txt"
# A domain starts in well under a second. Seen much slower: libvirtd probing QEMU's
# capabilities again on every start (~50 s here), because its probe found KVM usable
# while its check as the libvirt-qemu user finds /dev/kvm closed to that user.
SLOW_CREATE_S = 10.0
SLOW_CREATE_HINT = ("if libvirtd's debug log says 'KVM was enabled when probing ... but it is "
                    "not available now', it probes QEMU anew each time: let libvirt-qemu open "
                    "/dev/kvm (add it to the device's group, then touch /dev/kvm's ctime with "
                    "chmod) or run QEMU as root (user/group \"root\" in "
                    "/etc/libvirt/qemu.conf, restart libvirtd)")


class LibvirtGuest(ConsoleGuest):
    """A running transient domain ``name``; a context manager that leaves nothing behind."""

    def __init__(self, spec: GuestSpec, bridge: str, workdir: Path,
                 uri: str = DEFAULT_LIBVIRT_URI, *, name: str) -> None:
        super().__init__(workdir)  # started_at is the resume (power-on)
        self.spec = spec
        self.bridge = bridge
        self.uri = uri
        self.name = name
        self.log = logging.getLogger(f"{__name__}.{name}")
        self.accel = resolve_accel(spec.accel)
        # Filled at start: backend, libvirt's and QEMU's versions.
        self.properties: dict[str, str] = {"backend": "libvirt"}
        self._conn: Any = None
        self._domain: Any = None
        self._nvram: Path | None = None
        self._socket_path = console_path(name)

    def start(self) -> None:
        if self._conn is not None:
            raise GuestError(f"domain {self.name} already started")
        self._conn = open_connection(self.uri)
        try:
            self._start()
        except BaseException:
            self.stop()
            raise

    def _start(self) -> None:
        libvirt = libvirt_module()
        self.properties |= versions(self._conn)
        reap_domains(self._conn, self.log)
        self.workdir.mkdir(parents=True, exist_ok=True)
        files = self._prepare_files()
        xml = domain_xml(self.spec, name=self.name, bridge=self.bridge, accel=self.accel,
                         files=files, owner=current_owner())
        (self.workdir / DOMAIN_FILE).write_text(xml, encoding="utf-8")
        (self.workdir / VIRSH_FILE).write_text(self.virsh_commands(), encoding="utf-8")
        self.log.info("creating %s domain %s (%s) on host bridge %s through %s: %s",
                      self.spec.firmware, self.name, self.accel, self.bridge, self.uri,
                      self.workdir / DOMAIN_FILE)
        flags = libvirt.VIR_DOMAIN_START_PAUSED | libvirt.VIR_DOMAIN_START_AUTODESTROY
        asked = time.monotonic()
        try:
            self._domain = self._conn.createXML(xml, flags)
        except libvirt.libvirtError as error:
            raise GuestError(f"libvirt ({self.uri}) cannot start domain {self.name}: {error} "
                             f"(domain XML: {self.workdir / DOMAIN_FILE}; QEMU's log: "
                             f"/var/log/libvirt/qemu/{self.name}.log)") from error
        if (took := time.monotonic() - asked) > SLOW_CREATE_S:
            self.log.warning("libvirtd took %.0fs to start domain %s; %s", took, self.name,
                             SLOW_CREATE_HINT)
        console = self._open_console()
        self._logfile = self.serial_log.open("wb")
        console.logfile_read = self._logfile  # set before anything is read
        self._power_on()
        self._domain.resume()

    def _prepare_files(self) -> DomainFiles:
        """The NVRAM copy and the debug port's FIFO (reader open before QEMU starts, so
        QEMU's open of the FIFO for writing never waits)."""
        self._socket_path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        self._socket_path.unlink(missing_ok=True)
        ovmf = self.spec.ovmf
        if not self.spec.firmware.is_uefi() or ovmf is None:
            return DomainFiles(console=self._socket_path)
        self._nvram = nvram_path(self.name)
        self._nvram.parent.mkdir(parents=True, exist_ok=True)
        write_guest_vars(self.spec, ovmf, self._nvram)
        fifo = self._start_debug_port()
        return DomainFiles(nvram=self._nvram, debug_fifo=fifo, console=self._socket_path)

    def _open_console(self) -> ConsoleFd:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            try:
                sock.connect(str(self._socket_path))
            except OSError as error:
                raise GuestError(f"cannot connect to domain {self.name}'s console socket "
                                 f"{self._socket_path}: {error.strerror}; QEMU's log: "
                                 f"/var/log/libvirt/qemu/{self.name}.log") from error
            # The console owns the descriptor from here and closes it.
            self._console = console = ConsoleFd(sock.detach(), timeout=30, maxread=65536)
        self.log.debug("console on %s", self._socket_path)
        return console

    def virsh_commands(self) -> str:
        """Shell lines that start the same domain by hand, its console attached."""
        virsh = ["virsh", "-c", self.uri]
        lines = [f"# The domain {self.name} of this boot. Its NIC is on host bridge "
                 f"{self.bridge}, which pxelab made for the lab; make one of that name (or "
                 f"edit <source bridge=...> in {DOMAIN_FILE}) before creating it."]
        if self._nvram is not None:
            lines.append(shlex.join(["cp", str(self.workdir / OVMF_VARS), str(self._nvram)])
                         + "  # OVMF's NVRAM as pxelab wrote it (after the boot: as left)")
        lines.append(shlex.join([*virsh, "create", str(self.workdir / DOMAIN_FILE),
                                 "--paused"]))
        lines.append(f"socat -,raw,echo=0 UNIX-CONNECT:{shlex.quote(str(self._socket_path))} & "
                     + shlex.join([*virsh, "resume", self.name])
                     + "  # the serial console, connected before the guest runs")
        lines.append(shlex.join([*virsh, "destroy", self.name]) + "  # when done")
        return "\n".join(lines) + "\n"

    def wait_exit(self, timeout: float) -> int:
        """Wait for the guest to power off (the domain ends, its pty closes); 0."""
        self._wait_eof(timeout, f"domain {self.name}")
        self.log.info("domain %s ended after %.1fs", self.name,
                      time.monotonic() - self.started_at)
        return 0

    def stop(self) -> None:
        """Destroy the domain, keep its output and NVRAM, close the connection; idempotent."""
        libvirt = libvirt_module()
        domain, self._domain = self._domain, None
        if domain is not None:
            with contextlib.suppress(libvirt.libvirtError):  # already gone: powered off
                domain.destroy()
                self.log.debug("domain %s destroyed", self.name)
        console, self._console = self._console, None
        if console is not None:
            with contextlib.suppress(pexpect.TIMEOUT, pexpect.EOF, OSError):
                console.expect(pexpect.EOF, timeout=1)  # what it printed before it ended
            console.close()
        self._close_outputs()
        self._socket_path.unlink(missing_ok=True)
        if self._nvram is not None and self._nvram.exists():
            shutil.move(self._nvram, self.workdir / OVMF_VARS)
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(libvirt.libvirtError):
                conn.close()
