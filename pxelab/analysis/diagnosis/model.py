"""What a diagnosis says: the stage that failed and the likely causes, with evidence."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from enum import StrEnum
from typing import Any

from pxelab.analysis.evidence import Evidence


@dataclass(frozen=True)
class Cause:
    """One explanation of a failed boot.

    ``code`` is stable (tests and the regressions assert on it, e.g.
    "file.not_found"); ``summary`` is one sentence naming the specifics
    (the file, the client, the block number); ``evidence`` the timeline lines
    that show it (rendered :class:`~pxelab.analysis.evidence.Entry` lines, seconds first);
    ``fix`` what to change.
    """

    code: str
    stage: str
    summary: str
    evidence: tuple[str, ...] = ()
    fix: str = ""

    def render(self) -> str:
        lines = [f"cause: {self.summary}  [{self.code}]"]
        lines += [f"    {line}" for line in self.evidence]
        if self.fix:
            lines.append(f"  fix: {self.fix}")
        return "\n".join(lines)


class EvidenceClass(StrEnum):
    """A kind of evidence a diagnosis may have had (rules read each differently)."""

    SERVER_EVENTS = "boot-server events"  # pxelab's own server's decisions
    PACKETS = "packets"  # the lab capture
    CONSOLE = "console"  # the guest's serial console
    DAEMON_LOGS = "daemon logs"  # ganesha's, a third-party daemon's
    FIRMWARE_LOG = "firmware log"  # OVMF's debug port


@dataclass(frozen=True)
class Diagnosis:
    """The verdict on one boot: ok, or the failed stage and its causes (most likely first)."""

    scenario: str
    ok: bool
    failed_stage: str | None = None
    failure: str | None = None  # the console watcher's own words
    causes: tuple[Cause, ...] = ()
    # Without a cause: the evidence the rules lacked ("no packet capture", ...).
    gaps: tuple[str, ...] = ()
    # The evidence classes the rules had (EvidenceClass values), and the third-party
    # daemons that served the lab instead of pxelab's server.
    had: tuple[str, ...] = ()
    daemons: tuple[str, ...] = ()

    @property
    def cause(self) -> Cause | None:
        return self.causes[0] if self.causes else None

    @property
    def codes(self) -> tuple[str, ...]:
        return tuple(c.code for c in self.causes)

    def render(self) -> str:
        if self.ok:
            return f"{self.scenario}: booted"
        head = f"{self.scenario}: FAILED at stage {self.failed_stage!r}: {self.failure}"
        less = [self.evidence_line()] if self.evidence_line() else []
        if not self.causes:
            return "\n".join([head, *less, "  " + self.unknown()])
        return "\n".join([head, *less, *(c.render() for c in self.causes)])

    def evidence_line(self) -> str:
        """"evidence: no boot-server events (...); from packets, console and daemon logs"
        when the rules had less than pxelab's own server gives them, else ""."""
        if not self.had or EvidenceClass.SERVER_EVENTS in self.had:
            return ""
        why = f"external daemons: {', '.join(self.daemons)}" if self.daemons else (
            "a third-party server")
        others = [c for c in self.had if c != EvidenceClass.SERVER_EVENTS]
        said = (", ".join(others[:-1]) + " and " + others[-1]) if len(others) > 1 else (
            others[0] if others else "nothing else")
        return f"evidence: no {EvidenceClass.SERVER_EVENTS} ({why}); from {said}"

    def unknown(self) -> str:
        """What to say when no rule matched: that, and the evidence that was missing."""
        lacking = f"; the evidence lacked: {'; '.join(self.gaps)}" if self.gaps else ""
        return f"no diagnosis rule matched{lacking}; read the timeline and the logs"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# A rule looks at the evidence of a failed boot and names a cause, or stays silent.
DiagnosisRule = Callable[[Evidence], Cause | None]
