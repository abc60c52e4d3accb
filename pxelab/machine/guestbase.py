"""What every guest backend has in common: the serial console and its ``serial.log``,
OVMF's debug port lines and the moment of power-on.

:class:`ConsoleGuest` is the base of :class:`pxelab.machine.qemu.Guest` (QEMU on
a pty) and :class:`pxelab.machine.libvirt.guest.LibvirtGuest` (a domain's console
socket). A backend starts the machine, sets :attr:`ConsoleGuest._console` and
:attr:`ConsoleGuest._logfile` (the console's ``logfile_read``) and calls
:meth:`ConsoleGuest._power_on`; how the machine ends and what its exit status is
stay the backend's.
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import BinaryIO

import pexpect

from pxelab.core.errors import GuestError, WaitTimeoutError
from pxelab.core.resource import Resource
from pxelab.machine.firmware_log import DebugPortReader, LogLine

SERIAL_LOG = "serial.log"
OVMF_DEBUG_LOG = "ovmf-debug.log"
OVMF_DEBUG_FIFO = "ovmf-debug.fifo"  # QEMU writes the port here; removed after the run
# The console output a timeout error quotes.
TAIL_BYTES = 300


class ConsoleGuest(Resource):
    """A guest whose serial console is read under pexpect and mirrored to serial.log."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.serial_log = workdir / SERIAL_LOG
        self.started_at = math.nan  # time.monotonic() at power-on
        self.started_wall = math.nan  # time.time() at the same moment
        self._console: pexpect.spawn | None = None
        self._logfile: BinaryIO | None = None
        self._debug_port: DebugPortReader | None = None

    @property
    def console(self) -> pexpect.spawn:
        """The serial console (bytes mode); everything read is mirrored to serial.log."""
        if self._console is None:
            raise GuestError("the guest is not running; use it inside its with-block")
        return self._console

    @property
    def firmware_log(self) -> tuple[LogLine, ...]:
        """OVMF's debug port lines so far (none for SeaBIOS, none from a release build)."""
        return self._debug_port.lines if self._debug_port is not None else ()

    def _start_debug_port(self) -> Path:
        """Read OVMF's debug port FIFO into ovmf-debug.log; the FIFO's path.

        Call before QEMU starts: with the reader's end open, QEMU's open of the FIFO
        for writing never waits.
        """
        fifo = self.workdir / OVMF_DEBUG_FIFO
        self._debug_port = DebugPortReader(fifo, self.workdir / OVMF_DEBUG_LOG)
        self._debug_port.start()
        return fifo

    def _power_on(self) -> None:
        """Note power-on, the zero of the boot's timeline, on both clocks."""
        self.started_at, self.started_wall = time.monotonic(), time.time()

    def _wait_eof(self, timeout: float, what: str) -> pexpect.spawn:
        """The console once it reached EOF (the machine ended) within ``timeout``."""
        console = self.console
        try:
            console.expect(pexpect.EOF, timeout=timeout)
        except pexpect.TIMEOUT:
            raise WaitTimeoutError(f"{what} still running after {timeout:.1f}s; "
                                   f"last console output: {self._tail()!r}") from None
        return console

    def _tail(self) -> str:
        """The end of serial.log, with what the console has read so far."""
        if self._logfile is not None:
            self._logfile.flush()
        if not self.serial_log.exists():
            return ""
        return self.serial_log.read_bytes()[-TAIL_BYTES:].decode("utf-8", "replace")

    def _close_outputs(self) -> None:
        """Close serial.log and end the debug port reader; their contents stay readable."""
        if self._logfile is not None:
            self._logfile.close()
            self._logfile = None
        if self._debug_port is not None:
            self._debug_port.stop()
