"""OVMF's debug port (isa-debugcon on I/O port 0x402), read live, each line with its time.

QEMU writes what the firmware sends to the port into a FIFO
(``-chardev file,path=<fifo>``, see :mod:`pxelab.machine.qemu`); a
:class:`DebugPortReader` thread reads it while the guest runs, stamps every
line with the wall-clock time its first byte arrived (the clock server events
and packets carry, so the lines merge into the boot's timeline) and writes
``ovmf-debug.log`` as ``<unix time> <text>`` lines.

Debian's OVMF is a release build: it prints nothing on that port, so an empty
log is the normal case there, and :mod:`pxelab.analysis.evidence.collect` says so in the
evidence. A debug build prints thousands of lines.

The reader opens the FIFO before QEMU starts (so QEMU's open for writing
never waits) and ends on EOF, which comes when QEMU exits however it exits,
or on :meth:`DebugPortReader.stop`. It must keep reading as long as QEMU runs:
QEMU writes the port synchronously, so a full FIFO would stall the guest.
"""

from __future__ import annotations

import contextlib
import logging
import os
import select
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from pxelab.core.errors import GuestError
from pxelab.core.resource import Resource

log = logging.getLogger(__name__)

READ_SIZE = 65536
JOIN_TIMEOUT_S = 5.0


@dataclass(frozen=True)
class LogLine:
    """A line of a secondary log (the firmware debug port, a daemon's log), with its
    wall-clock time.

    The evidence of a boot carries these (:class:`~pxelab.analysis.evidence.Evidence`);
    ``source`` names the daemon that wrote a daemon's line ("ganesha"), "" is the
    firmware's.
    """

    time: float
    text: str
    source: str = ""


class DebugPortReader(Resource):
    """Reads the FIFO at ``fifo`` (made by :meth:`start`) into ``log_path`` and :attr:`lines`."""

    def __init__(self, fifo: Path, log_path: Path) -> None:
        self.fifo = fifo
        self.log_path = log_path
        self._lines: list[LogLine] = []
        self._lock = threading.Lock()
        self._fd: int | None = None
        self._stop_r: int | None = None
        self._stop_w: int | None = None
        self._thread: threading.Thread | None = None
        self.ended = threading.Event()  # EOF seen: every writer (QEMU) closed the FIFO

    @property
    def lines(self) -> tuple[LogLine, ...]:
        with self._lock:
            return tuple(self._lines)

    def start(self) -> None:
        if self._thread is not None:
            raise GuestError(f"debug port reader on {self.fifo} already started")
        with contextlib.suppress(FileNotFoundError):
            self.fifo.unlink()
        try:
            os.mkfifo(self.fifo, 0o600)
            # Non-blocking: opening a FIFO for reading would otherwise wait for the writer.
            self._fd = os.open(self.fifo, os.O_RDONLY | os.O_NONBLOCK)
            output = self.log_path.open("w", encoding="utf-8")
        except OSError as error:
            self._close()
            raise GuestError(f"cannot make the firmware debug port FIFO {self.fifo}: {error}; "
                             "the artifact directory must be on a local file system") from error
        self._stop_r, self._stop_w = os.pipe()
        self._thread = threading.Thread(target=self._run, args=(self._fd, self._stop_r, output),
                                        name=f"debugcon-{self.fifo.parent.name}", daemon=True)
        self._thread.start()
        log.debug("reading the firmware debug port from %s into %s", self.fifo, self.log_path)

    def stop(self) -> None:
        """End the reader (after QEMU has exited, so nothing it wrote is lost) and clean up."""
        thread, self._thread = self._thread, None
        if thread is not None:
            if self._stop_w is not None:
                os.write(self._stop_w, b"x")
            thread.join(JOIN_TIMEOUT_S)
            if thread.is_alive():
                log.warning("firmware debug port reader on %s did not end within %.0fs",
                            self.fifo, JOIN_TIMEOUT_S)
        self._close()
        with contextlib.suppress(FileNotFoundError):
            self.fifo.unlink()

    def _close(self) -> None:
        for name in ("_fd", "_stop_r", "_stop_w"):
            fd = getattr(self, name)
            setattr(self, name, None)
            if fd is not None:
                with contextlib.suppress(OSError):
                    os.close(fd)

    def _run(self, fd: int, stop_r: int, output: TextIO) -> None:
        splitter = LineSplitter()
        try:
            while True:
                readable, _, _ = select.select([fd, stop_r], [], [])
                if fd in readable:
                    chunk = _read(fd)
                    if chunk:
                        self._keep(splitter.feed(chunk, _now()), output)
                        continue
                    if chunk is not None:  # b"": every writer has closed the FIFO
                        self.ended.set()
                        break
                if stop_r in readable:
                    # Drain what QEMU wrote before it ended, then stop.
                    while chunk := _read(fd):
                        self._keep(splitter.feed(chunk, _now()), output)
                    break
        except OSError as error:
            log.warning("firmware debug port reader on %s failed: %s", self.fifo, error)
        finally:
            self._keep(splitter.flush(), output)
            output.close()

    def _keep(self, lines: list[LogLine], output: TextIO) -> None:
        if not lines:
            return
        with self._lock:
            self._lines.extend(lines)
        output.write("".join(format_line(line) for line in lines))
        output.flush()


def _now() -> float:
    """The wall clock to the microsecond: what ovmf-debug.log keeps, so both agree."""
    return round(time.time(), 6)


def _read(fd: int) -> bytes | None:
    """A chunk, b"" at EOF, None when nothing is there now."""
    try:
        return os.read(fd, READ_SIZE)
    except BlockingIOError:
        return None


class LineSplitter:
    """Bytes in, lines out, each stamped with the time its first byte arrived."""

    def __init__(self) -> None:
        self._partial = b""
        self._since = 0.0

    def feed(self, chunk: bytes, now: float) -> list[LogLine]:
        if not self._partial:
            self._since = now
        *complete, self._partial = (self._partial + chunk).split(b"\n")
        lines = [LogLine(self._since if i == 0 else now, _decode(raw))
                 for i, raw in enumerate(complete)]
        if complete and self._partial:
            self._since = now
        return lines

    def flush(self) -> list[LogLine]:
        rest, self._partial = self._partial, b""
        return [LogLine(self._since, _decode(rest))] if rest.strip() else []


def _decode(raw: bytes) -> str:
    return raw.decode("utf-8", "replace").rstrip("\r")


def format_line(line: LogLine) -> str:
    """One line of ovmf-debug.log: the wall-clock time, a space, the text."""
    return f"{line.time:.6f} {line.text}\n"


def read_log(path: Path) -> tuple[LogLine, ...]:
    """The lines of an ``ovmf-debug.log`` written by :class:`DebugPortReader`.

    A line without a time column (a log QEMU wrote itself, before the reader
    existed) gets the time of the line before it (0.0 for the first).
    """
    if not path.exists():
        return ()
    lines: list[LogLine] = []
    last = 0.0
    for text in path.read_text(encoding="utf-8", errors="replace").splitlines():
        stamp, _, rest = text.partition(" ")
        try:
            last = float(stamp)
        except ValueError:
            lines.append(LogLine(last, text))
            continue
        lines.append(LogLine(last, rest))
    return tuple(lines)
