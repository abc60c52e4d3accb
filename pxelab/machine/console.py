"""Watch a serial console for boot milestones, in order, and build a timeline.

Each :class:`Milestone` has a success pattern, failure patterns that end the
wait at once, and its own timeout counted from the previous milestone. The
result is a :class:`Timeline`: each milestone reached with its seconds since
power-on, or the stage that failed, why, and the console text around it.

Patterns are matched on the console text without cursor moves
(:class:`ConsoleSpawn`); the serial log keeps every byte.

Console text is not the only thing that can end a stage: :class:`StageGuard` objects
(live checks over what the boot server saw, ``pxelab.analysis.live``) are asked
between short slices of the wait, so a failure only the server can see ends the stage
within a second instead of after the milestone's timeout. The timeline records when
the symptom appeared (``symptom_at``) and how the stage ended (``ended_by``).
"""

from __future__ import annotations

import bisect
import logging
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

import pexpect
from pexpect.fdpexpect import fdspawn

from pxelab.machine.terminal import TAIL_CHARS, as_displayed, console_tail, strip_ansi, unwrap

log = logging.getLogger(__name__)

# Seconds a failure waits for the rest of its console line, so that the verdict
# quotes the guest's whole line, not the part that had arrived when the pattern hit.
LINE_END_WAIT = 0.5
# A dialog's frame, no text to quote: box-drawing characters (OVMF 2025.02 sends them
# as UTF-8) and bytes that are not UTF-8 (OVMF 2022.11's code page 437 ones).
_FRAME = re.compile("[\u2500-\u257f\ufffd]")
# Seconds of one expect call while a milestone is awaited: the guards are asked
# between slices, so a guard's verdict ends the stage at most this much later.
SLICE = 0.25
# Read chunks whose arrival time a ConsoleSpawn remembers (a few minutes of a busy
# console; a symptom older than that has no arrival time).
ARRIVALS_KEPT = 8192

# Cursor moves (ESC [ row ; col H) that firmware consoles put between the characters
# of a line: SeaBIOS's serial console now and then, when it catches up with text
# written through int 10h, and OVMF's terminal driver for programs that place every
# character. SeaBIOS goes to column 0 with a bare CR ("sercon_lazy_cursor_sync"),
# so a CR right before a move is part of it. Seen: "PXELIN\x1b[25;06H\x1b[25;07HUX",
# "p\r\x1b[25;02Hxelab: pxelinux config loaded". They carry no text, but would
# break any milestone pattern they land in. A move to another row than the move
# before, with no line end between them, is a line end on the screen: shim draws its
# "Verification failed" dialog row by row that way, and a failure quotes its row.
CURSOR_MOVE = re.compile(rb"\r*\x1b\[(?P<row>\d+);\d+H")
# The end of a read that may be the start of a cursor move: held back until the
# next read completes it (or shows it was something else).
_CUT = re.compile(rb"\r*(?:\x1b(?:\[\d*(?:;\d*)?)?)?\Z")


class _CursorMoveFilter:
    """What a console's reads deliver to pexpect: the bytes read less cursor moves.

    Mixed in before a pexpect spawn class; ``logfile_read`` still receives every byte
    as read (serial.log stays raw).
    """

    def _start_filter(self) -> None:
        self._held = b""
        # The row of the last cursor move, None once a line end came after it.
        self._row: bytes | None = None
        # Bytes handed to pexpect so far, and when each read ended: (offset after the
        # read, time.monotonic() of it), so a match can say when its text arrived.
        self.delivered = 0
        self._ends: list[int] = []
        self._times: list[float] = []
        self._forgotten = 0  # offset up to which the reads' times were let go

    def _filtered(self, data: bytes) -> bytes:
        data = self._held + data
        cut = _CUT.search(data)  # always matches, maybe empty
        start = cut.start() if cut else len(data)
        self._held = data[start:]
        text = self._without_moves(data[:start])
        if text:
            self._arrived(len(text))
        return text

    def _without_moves(self, data: bytes) -> bytes:
        """``data`` without cursor moves, a line end for each that changes the row."""
        parts: list[bytes] = []
        end = 0
        for move in CURSOR_MOVE.finditer(data):
            parts.append(data[end:move.start()])
            if b"\n" in parts[-1]:
                self._row = None
            if self._row is not None and move["row"] != self._row:
                parts.append(b"\n")
            self._row, end = move["row"], move.end()
        parts.append(data[end:])
        if b"\n" in parts[-1]:
            self._row = None
        return b"".join(parts)

    def _arrived(self, count: int) -> None:
        self.delivered += count
        self._ends.append(self.delivered)
        self._times.append(time.monotonic())
        if len(self._ends) > 2 * ARRIVALS_KEPT:
            self._forgotten = self._ends[ARRIVALS_KEPT - 1]
            del self._ends[:ARRIVALS_KEPT], self._times[:ARRIVALS_KEPT]

    def arrival(self, offset: int) -> float | None:
        """time.monotonic() of the read that delivered the byte before ``offset`` (a
        count of delivered bytes), or None if that read is forgotten or yet to come."""
        index = bisect.bisect_left(self._ends, offset)
        if offset <= self._forgotten or index == len(self._ends):
            return None
        return self._times[index]


class ConsoleSpawn(_CursorMoveFilter, pexpect.spawn):  # type: ignore[misc]  # untyped pexpect
    """A bytes-mode pexpect spawn whose *matched* text leaves out cursor moves."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        if kwargs.get("encoding") is not None:
            raise ValueError("ConsoleSpawn filters bytes; decode after matching")
        super().__init__(*args, **kwargs)
        self._start_filter()

    def read_nonblocking(self, size: int = 1, timeout: float | None = -1) -> bytes:
        return self._filtered(super().read_nonblocking(size, timeout))


class ConsoleFd(_CursorMoveFilter, fdspawn):  # type: ignore[misc]  # untyped pexpect
    """:class:`ConsoleSpawn` on an open file descriptor (a pty another process owns,
    such as a libvirt domain's serial port); reading past its end (EIO) is EOF."""

    def __init__(self, fd: int, **kwargs: Any) -> None:
        if kwargs.get("encoding") is not None:
            raise ValueError("ConsoleFd filters bytes; decode after matching")
        super().__init__(fd, **kwargs)
        self._start_filter()

    def read_nonblocking(self, size: int = 1, timeout: float | None = -1) -> bytes:
        return self._filtered(super().read_nonblocking(size, timeout))


@dataclass(frozen=True)
class FailurePattern:
    """Console text that proves the boot has failed, and what it means."""

    pattern: str
    cause: str


@dataclass(frozen=True)
class Milestone:
    """A point of the boot path recognised on the console."""

    name: str
    pattern: str
    timeout: float
    failures: tuple[FailurePattern, ...] = ()
    description: str = ""
    # Typed on the console when the milestone is seen, e.g. a key that ends a prompt's
    # countdown instead of waiting it out.
    answer: str = ""
    # A line nothing else prints before this milestone (pxelab's own lines, the kernel
    # banner): seen while an earlier milestone is awaited, it ends that wait at once,
    # because the boot went on without the earlier line. Generic lines ("... ok") are
    # not landmarks: iPXE prints them for the script before the kernel too.
    landmark: bool = False


@dataclass(frozen=True)
class MilestoneHit:
    name: str
    seconds: float
    text: str


@dataclass
class Timeline:
    """What happened on the console: milestones reached and, if any, the failure."""

    scenario: str
    hits: list[MilestoneHit] = field(default_factory=list)
    failed_stage: str | None = None
    failure: str | None = None
    # Seconds since power-on at which the failure was seen or the wait ran out.
    failed_at: float | None = None
    console_tail: str = ""
    properties: dict[str, Any] = field(default_factory=dict)
    # A later milestone whose line came while failed_stage's was awaited: the boot went
    # on, but failed_stage's pattern does not match what this build prints.
    skipped_to: str | None = None
    # What ended the failed stage: "console" (a failure pattern), "guard:<code>" (a
    # StageGuard), "timeout", "landmark" (skipped_to) or "eof" (QEMU exited).
    ended_by: str | None = None
    # Seconds since power-on at which the failure showed: when the console line that
    # ended the stage arrived, or when a guard's evidence established it. None when the
    # stage timed out or the guest exited: nothing said when it went wrong.
    symptom_at: float | None = None

    @property
    def ok(self) -> bool:
        return self.failed_stage is None

    @property
    def verdict_latency(self) -> float | None:
        """Seconds from the symptom to the verdict (``failed_at - symptom_at``)."""
        if self.failed_at is None or self.symptom_at is None:
            return None
        return max(self.failed_at - self.symptom_at, 0.0)

    def seconds(self, name: str) -> float | None:
        return next((h.seconds for h in self.hits if h.name == name), None)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self) | {"ok": self.ok}

    def render(self) -> str:
        lines = [f"{h.seconds:7.2f}s  {h.name:<16} {h.text}" for h in self.hits]
        if self.failed_stage:
            lines.append(f"FAILED at stage {self.failed_stage!r}: {self.failure}")
            if self.ended_by and self.ended_by != "console":
                latency = self.verdict_latency
                lines.append(f"  (ended by {self.ended_by}" + (
                    f", {latency:.1f}s after the symptom)" if latency is not None else ")"))
        return "\n".join(lines)


OnHit = Callable[[MilestoneHit], None]


@dataclass(frozen=True)
class GuardVerdict:
    """A guard's finding that the boot has failed, whatever the console says."""

    code: str  # what was found, e.g. "dhcp.withheld"
    text: str  # the failure as the timeline states it, quoting the evidence
    # Seconds between the evidence that established the failure and this verdict (a
    # guard's evidence has its own clock; an age needs none).
    ago: float = 0.0


class StageGuard(Protocol):
    """Asked between slices of every stage's wait: has the boot failed already?

    ``check`` runs on the watcher's thread, quickly (it is called four times a
    second); a verdict ends the stage being awaited.
    """

    def check(self) -> GuardVerdict | None: ...


class ConsoleWatcher:
    """Runs a milestone list against a pexpect console (str or bytes mode)."""

    def __init__(self, console: pexpect.spawn, started_at: float,
                 failures: Sequence[FailurePattern] = (),
                 guards: Sequence[StageGuard] = ()) -> None:
        self.console = console
        self.started_at = started_at
        self.global_failures = tuple(failures)
        self.guards = tuple(guards)
        self._binary = getattr(console, "encoding", None) is None
        self._seen = ""

    def run(self, scenario: str, milestones: Sequence[Milestone],
            on_hit: OnHit | None = None) -> Timeline:
        timeline = Timeline(scenario)
        for index, milestone in enumerate(milestones):
            if not self._wait(milestone, milestones[index + 1:], timeline, on_hit):
                break
        timeline.console_tail = self._tail()
        return timeline

    def _wait(self, milestone: Milestone, later: Sequence[Milestone], timeline: Timeline,
              on_hit: OnHit | None) -> bool:
        failures = milestone.failures + self.global_failures
        # Watching the later milestones too ends the wait as soon as the boot is seen to
        # have gone past this one, instead of after its timeout.
        ahead = [m for m in later if m.landmark and m.pattern != milestone.pattern]
        patterns = [milestone.pattern, *(f.pattern for f in failures),
                    *(m.pattern for m in ahead)]
        index, verdict = self._expect([self._compile(p) for p in patterns], milestone.timeout)
        self._remember()
        if index == 0:
            hit = MilestoneHit(milestone.name, time.monotonic() - self.started_at,
                               self._text(self.console.after).strip())
            log.info("milestone %s at %.2fs: %s", hit.name, hit.seconds, hit.text)
            timeline.hits.append(hit)
            if milestone.answer:
                self.console.send(milestone.answer)
            if on_hit:
                on_hit(hit)
            return True
        timeline.failed_stage = milestone.name
        timeline.failed_at = time.monotonic() - self.started_at
        index -= 1
        if verdict is not None:
            timeline.ended_by = f"guard:{verdict.code}"
            timeline.symptom_at = max(timeline.failed_at - verdict.ago, 0.0)
            timeline.failure = verdict.text
        elif len(failures) <= index < len(failures) + len(ahead):
            skipped = ahead[index - len(failures)]
            timeline.ended_by = "landmark"
            timeline.skipped_to = skipped.name
            timeline.failure = self._explain_skip(milestone, skipped)
        else:
            if index < len(failures):
                timeline.ended_by = "console"
                timeline.symptom_at = self._match_arrival() - self.started_at
            else:
                index -= len(ahead)
                timeline.ended_by = "eof" if index == len(failures) else "timeout"
            timeline.failure = self._explain(index, failures, milestone)
        if timeline.verdict_latency is not None:
            timeline.properties["verdict_latency"] = round(timeline.verdict_latency, 3)
        log.warning("stage %s failed (%s): %s", milestone.name, timeline.ended_by,
                    timeline.failure)
        return False

    def _expect(self, patterns: list[re.Pattern[Any]], timeout: float
                ) -> tuple[int, GuardVerdict | None]:
        """expect ``patterns``, EOF, TIMEOUT (their index) for up to ``timeout`` seconds,
        in slices with the guards asked between them; a guard's verdict comes back with
        TIMEOUT's index.

        pexpect keeps what it read across calls that time out (``_before`` and
        ``_buffer`` are only reset by a match or EOF) and searches it again in the next
        call, so slicing loses no text and a line split across slices still matches.
        """
        deadline = time.monotonic() + timeout
        timeout_index = len(patterns) + 1
        while True:
            remaining = deadline - time.monotonic()
            last = not self.guards or remaining <= SLICE
            index: int = self.console.expect([*patterns, pexpect.EOF, pexpect.TIMEOUT],
                                             timeout=max(remaining if last else SLICE, 0.0))
            if index != timeout_index:
                return index, None
            for guard in self.guards:
                if (verdict := guard.check()) is not None:
                    return index, verdict
            if last:
                return index, None

    def _match_arrival(self) -> float:
        """time.monotonic() when the last match's final byte was read (now if unknown)."""
        arrival = getattr(self.console, "arrival", None)
        buffer = self.console.buffer
        if arrival is None or not isinstance(buffer, bytes):
            return time.monotonic()
        at: float | None = arrival(self.console.delivered - len(buffer))
        return at if at is not None else time.monotonic()

    def _explain_skip(self, milestone: Milestone, skipped: Milestone) -> str:
        seen = self._text(self.console.after).strip()
        return (f"the console went on to {skipped.name} ({seen!r}) without {milestone.name}'s "
                f"line: {milestone.pattern!r} does not match what this build prints, or the "
                "boot took another path")

    def _explain(self, index: int, failures: Sequence[FailurePattern],
                 milestone: Milestone) -> str:
        if index < len(failures):
            return f"{failures[index].cause} (console: {self._whole_line()!r})"
        if index == len(failures):
            return f"the guest stopped (QEMU exited) before {milestone.name}"
        return (f"no {milestone.name} ({milestone.description or milestone.pattern!r}) "
                f"within {milestone.timeout:.0f}s of the previous milestone")

    def _whole_line(self) -> str:
        """The console line the last match is in, from its start to its end, as shown.

        A pattern like ``Kernel panic[^\\r\\n]*`` matches as much of the line as has
        arrived; the rest follows within :data:`LINE_END_WAIT`.
        """
        start = re.split(r"[\r\n]", self._text(self.console.before))[-1]
        line = start + self._text(self.console.after)
        if not line.endswith(("\r", "\n")):
            self.console.expect([self._compile(r"[\r\n]"), pexpect.EOF, pexpect.TIMEOUT],
                                timeout=LINE_END_WAIT)
            line += self._text(self.console.before)
            self._remember()
        line = _FRAME.sub("", line)
        shown = [text for text in unwrap(as_displayed(strip_ansi(line)).splitlines())
                 if text.strip()]
        return " / ".join(text.strip() for text in shown)

    def _compile(self, pattern: str) -> re.Pattern[Any]:
        return re.compile(pattern.encode() if self._binary else pattern)

    def _text(self, value: object) -> str:
        if isinstance(value, bytes):
            return value.decode("utf-8", "replace")
        return value if isinstance(value, str) else ""

    def _remember(self) -> None:
        self._seen += self._text(self.console.before) + self._text(self.console.after)
        self._seen = self._seen[-TAIL_CHARS:]

    def _tail(self) -> str:
        # After a TIMEOUT, ``before`` was the unmatched buffer itself: it is in _seen.
        unread = "" if self.console.after is pexpect.TIMEOUT else self.console.buffer
        return console_tail(self._seen + self._text(unread))
