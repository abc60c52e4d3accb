"""The lab daemons' own logs as evidence: ganesha's ``nfs/ganesha.log``.

ganesha writes one line per message (src/log/log_functions.c, display_log_header):

    <stamp> : epoch <hex> : <host> : <prog>-<pid>[<thread>] <function> :<COMP> :<LEVEL> :<text>

(with ``<file>:<line> :`` before the function when a Format block does not turn them off).

pxelab's config (:data:`pxelab.machine.nfs.LOG_BLOCK`) asks for syslog_usec stamps
("2026-12-07T00:43:58.800355+0000": microseconds and the UTC offset); the lines ganesha
writes before it has read its config, and those of a config without that block, carry
its default stamp ("07/12/2026 00:43:42", day first, local time, whole seconds).

What the evidence keeps is what may explain a failure: every line above EVENT (INFO
refusals, WARN, CRIT, MAJ, FATAL) except the start-up lines every lab's ganesha
writes (:data:`pxelab.machine.nfs.HARMLESS_LOG_LINES`). EVENT lines are its start and
stop; NULL ones its echo of the levels the config set.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from pxelab.machine.firmware_log import LogLine
from pxelab.machine.nfs import HARMLESS_LOG_LINES

GANESHA = "ganesha"
GANESHA_LOG = "nfs/ganesha.log"  # under a boot's artifacts (pxelab.lab: Ganesha's workdir)
# A daemon told to log at DEBUG writes a line per operation: the evidence keeps the last.
MAX_DAEMON_LINES = 2000
_LINE = re.compile(
    r"^(?P<stamp>.+?) : epoch [0-9a-fA-F]+ : \S+ : \S+\[[^\]]*\] (?:\S+:\d+ :)?(?P<function>\S+) "
    r":(?P<component>[^:]+?) ?:(?P<level>[A-Z_]+) ?:(?P<message>.*)$")
_QUIET_LEVELS = frozenset({"EVENT", "NULL"})
_USEC = "%Y-%m-%dT%H:%M:%S.%f%z"  # syslog_usec date and time
_GANESHA_DEFAULT = "%d/%m/%Y %H:%M:%S"  # TD_GANESHA date and time, local


@dataclass(frozen=True)
class GaneshaLine:
    """One parsed line of ganesha's log."""

    time: float
    function: str
    component: str
    level: str
    message: str

    def log_line(self) -> LogLine:
        return LogLine(self.time, f"{self.component} {self.level}: {self.message}", GANESHA)


def parse_stamp(stamp: str) -> float | None:
    """A ganesha time stamp on the wall clock (time.time()); None if not one of its forms."""
    try:
        return datetime.strptime(stamp, _USEC).timestamp()
    except ValueError:
        pass
    try:
        return time.mktime(time.strptime(stamp, _GANESHA_DEFAULT))
    except ValueError:
        return None


def parse_line(text: str) -> GaneshaLine | None:
    """A line of ganesha's log, None for anything else (a message's continuation)."""
    found = _LINE.match(text.rstrip("\r\n"))
    if found is None:
        return None
    stamp = parse_stamp(found["stamp"].strip())
    if stamp is None:
        return None
    return GaneshaLine(stamp, found["function"], found["component"].strip(), found["level"],
                       found["message"].strip())


def worth_keeping(line: GaneshaLine) -> bool:
    """Whether a line may explain a failure (see the module docstring)."""
    if line.level in _QUIET_LEVELS:
        return False
    return HARMLESS_LOG_LINES.search(f"{line.function} {line.message}") is None


def read_ganesha_log(path: Path, notes: list[str] | None = None) -> tuple[LogLine, ...]:
    """The lines of ganesha's log at ``path`` worth keeping; () if it cannot be read."""
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ()
    parsed = (parse_line(raw) for raw in text.splitlines())
    kept = [line.log_line() for line in parsed if line is not None and worth_keeping(line)]
    if len(kept) > MAX_DAEMON_LINES and notes is not None:
        notes.append(f"ganesha log: {len(kept)} lines worth keeping, the evidence keeps the "
                     f"last {MAX_DAEMON_LINES} (all are in {path.name})")
    return tuple(kept[-MAX_DAEMON_LINES:])
