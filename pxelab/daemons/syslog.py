"""A /dev/log of one daemon's own: its syslog lines go to its log file, not the host's.

in.tftpd logs only through syslog(3), dhcpd and dnsmasq partly. The daemon's
private mount namespace gets this socket bind-mounted over /dev/log
(:mod:`pxelab.daemons.base`), so what it logs there lands in its artifact and
two labs never mix their lines in the host journal.
"""

from __future__ import annotations

import logging
import re
import shutil
import socket
import tempfile
import threading
from pathlib import Path
from typing import BinaryIO

_PRIORITY = re.compile(rb"^<\d{1,3}>")
MAX_DATAGRAM = 65536


class SyslogCatcher:
    """A datagram socket in a short temporary directory (AF_UNIX paths are limited to
    108 bytes, artifact paths are not) whose messages a thread appends to ``log``."""

    def __init__(self, log: BinaryIO, name: str) -> None:
        self._out = log
        self._dir = Path(tempfile.mkdtemp(prefix="pxelab-syslog-"))
        self.path = self._dir / "log"
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self._sock.bind(str(self.path))
        self._stopping = False
        self._thread = threading.Thread(target=self._read, name=f"syslog-{name}", daemon=True)
        self.log = logging.getLogger(f"{__name__}.{name}")

    def start(self) -> None:
        self._thread.start()

    def _read(self) -> None:
        while True:
            data = self._sock.recv(MAX_DATAGRAM)
            if self._stopping:
                return
            line = _PRIORITY.sub(b"", data.rstrip(b"\0\n"))
            self._out.write(line + b"\n")
            self._out.flush()

    def stop(self) -> None:
        """Wake the reader with a datagram of our own and remove the socket; idempotent."""
        if self._stopping:
            return
        self._stopping = True
        if self._thread.is_alive():
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as waker:
                waker.sendto(b"", str(self.path))
            self._thread.join(timeout=5)
            if self._thread.is_alive():
                self.log.warning("syslog reader did not stop")
        self._sock.close()
        shutil.rmtree(self._dir, ignore_errors=True)
