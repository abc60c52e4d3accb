"""Turn a failed boot's evidence into the failed stage and its likely cause.

:func:`diagnose` runs every rule of :data:`pxelab.analysis.diagnosis.rules.RULES` over
the :class:`~pxelab.analysis.evidence.Evidence` of a boot; each rule that recognises
its pattern names a :class:`Cause` with the timeline lines that show it.
"""

from __future__ import annotations

from collections.abc import Sequence

from pxelab.analysis.diagnosis.model import Cause, Diagnosis, DiagnosisRule, EvidenceClass
from pxelab.analysis.diagnosis.rules import RULES
from pxelab.analysis.diagnosis.wire import derived, with_wire_events
from pxelab.analysis.evidence import Evidence

__all__ = ["Cause", "Diagnosis", "DiagnosisRule", "EvidenceClass", "diagnose", "evidence_classes",
           "gaps"]


# Causes that only stand when no rule names a better one: quoting the guest's line.
LAST_RESORT = frozenset({"guest.error_line"})


def diagnose(evidence: Evidence, rules: Sequence[DiagnosisRule] = RULES) -> Diagnosis:
    """The verdict on ``evidence``: ok, or the failed stage with every cause a rule found."""
    timeline = evidence.timeline
    had, daemons = evidence_classes(evidence), evidence.facts.daemons
    if timeline.ok:
        return Diagnosis(evidence.scenario, ok=True, had=had, daemons=daemons)
    evidence = with_wire_events(evidence)  # a third-party server's answers, from the wire
    causes = tuple(cause for rule in rules if (cause := rule(evidence)) is not None)
    if any(c.code not in LAST_RESORT for c in causes):
        causes = tuple(c for c in causes if c.code not in LAST_RESORT)
    return Diagnosis(evidence.scenario, ok=False, failed_stage=timeline.failed_stage,
                     failure=timeline.failure, causes=causes,
                     gaps=() if causes else gaps(evidence), had=had, daemons=daemons)


def evidence_classes(evidence: Evidence) -> tuple[str, ...]:
    """The kinds of evidence ``evidence`` holds (:class:`EvidenceClass` values, in order)."""
    timeline = evidence.timeline
    present = {
        EvidenceClass.SERVER_EVENTS: any(not derived(e) for e in evidence.events),
        EvidenceClass.PACKETS: bool(evidence.packets),
        EvidenceClass.CONSOLE: bool(timeline.hits or timeline.console_tail),
        EvidenceClass.DAEMON_LOGS: bool(evidence.daemon_log or evidence.facts.daemons),
        EvidenceClass.FIRMWARE_LOG: bool(evidence.firmware_log),
    }
    return tuple(str(kind) for kind, there in present.items() if there)


def gaps(evidence: Evidence) -> tuple[str, ...]:
    """The evidence a failed boot lacks that rules read: why none of them could match."""
    found = []
    if not any(not derived(e) for e in evidence.events):
        found.append("no boot server events (a third-party server: rules read packets, the "
                     "console and the daemons' logs)")
    if not evidence.packets:
        found.append("no packet capture")
    if "(console: " not in (evidence.timeline.failure or ""):
        found.append(f"no guest line: stage {evidence.timeline.failed_stage} ended on its "
                     "timeout, as no failure pattern of it matched")
    if evidence.facts.firmware == "ovmf" and not evidence.firmware_log:
        found.append("no OVMF debug log")
    return tuple(found)
