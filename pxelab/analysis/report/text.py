"""Plain-text reports of a boot: what the pytest report and ``pxelab boot`` print.

Pure functions of the data (a :class:`~pxelab.machine.console.Timeline`, and the
:class:`~pxelab.analysis.evidence.Evidence` and :class:`~pxelab.analysis.diagnosis.Diagnosis`
when the boot has them); nothing here boots, reads or writes anything.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from pxelab.analysis.diagnosis.model import Diagnosis
from pxelab.analysis.evidence import Entry, Evidence, Source
from pxelab.analysis.report.boots import reproduce_of
from pxelab.machine.console import Timeline

# How many server events and packets before the failure a report shows.
RELEVANT = 15
# Timeline lines that never explain a failure: the server's own start and stop,
# unsolicited router adverts, neighbour discovery, ARP and undissected packets.
NOISE_NAMES = frozenset({"server.ready", "server.stopped", "ra.waiting", "ra.ra", "ra.ns",
                         "ra.na"})
NOISE_FAMILIES = frozenset({"arp", "other"})
QUIET_REASONS = ("reason=periodic", "reason=startup")


def is_noise(entry: Entry) -> bool:
    """True for lines a failure report leaves out of its events and packets.

    Console milestones are in the timeline above them; firmware debug lines
    are thousands and stay in their log.
    """
    if entry.source in (Source.CONSOLE, Source.FIRMWARE):
        return True
    if entry.name in NOISE_NAMES or entry.name.partition(".")[0] in NOISE_FAMILIES:
        return True
    return entry.name == "ra.sent" and entry.text.endswith(QUIET_REASONS)


def cited_lines(diagnosis: Diagnosis | None) -> set[str]:
    """The rendered timeline lines the causes give as evidence."""
    if diagnosis is None:
        return set()
    return {line for cause in diagnosis.causes for line in cause.evidence}


def relevant_entries(evidence: Evidence, diagnosis: Diagnosis | None = None,
                     limit: int = RELEVANT) -> list[Entry]:
    """The last ``limit`` events and packets up to the failure, plus every line a cause cites.

    In time order; noise (:func:`is_noise`) left out unless a cause cites it.
    Injected faults are always shown: in a faulted boot they are the cause.
    """
    entries = evidence.entries()
    until = evidence.timeline.failed_at
    before = [e for e in entries
              if not is_noise(e) and (until is None or e.seconds <= until)]
    chosen = set(before[-limit:]) if limit > 0 else set()
    cited = cited_lines(diagnosis)
    chosen |= {e for e in entries if e.render() in cited}
    chosen |= _first_of_each_fault(entries)
    return [e for e in entries if e in chosen]


def _first_of_each_fault(entries: list[Entry]) -> set[Entry]:
    """The first ``fault.injected`` line of each fault (a dropping fault fires per packet)."""
    first: dict[str, Entry] = {}
    for entry in entries:
        if entry.name == "fault.injected":
            first.setdefault(entry.text.partition("reason=")[2], entry)
    return set(first.values())


def render_causes(diagnosis: Diagnosis) -> str:
    """Each cause with its evidence lines and fix, most likely first."""
    if diagnosis.ok:
        return f"{diagnosis.scenario}: booted"
    less = [diagnosis.evidence_line()] if diagnosis.evidence_line() else []
    if not diagnosis.causes:
        return "\n".join([*less, f"cause: unknown: {diagnosis.unknown()}"])
    return "\n".join([*less, *(cause.render() for cause in diagnosis.causes)])


def render_relevant(evidence: Evidence, diagnosis: Diagnosis | None = None,
                    limit: int = RELEVANT) -> str:
    """The events and packets around the failure, cited lines marked with '>'."""
    shown = relevant_entries(evidence, diagnosis, limit)
    cited = cited_lines(diagnosis)
    if not shown:
        return "server events and packets before the failure: none recorded"
    head = (f"server events and packets before the failure (the last {limit} without router "
            "adverts, ARP and firmware lines, and each injected fault's first firing; '>' = "
            "cited by a cause):")
    body = [("> " if e.render() in cited else "  ") + e.render() for e in shown]
    return "\n".join([head, *body])


def render_artifacts(artifacts: Mapping[str, Path | str]) -> str:
    return "\n".join(["artifacts:", *(f"  {name:<15} {path}"
                                      for name, path in artifacts.items())])


def render_boot(timeline: Timeline, artifacts: Mapping[str, Path | str], *,
                evidence: Evidence | None = None, diagnosis: Diagnosis | None = None,
                limit: int = RELEVANT) -> str:
    """A boot for a person reading a test report: all of it when the boot failed.

    Timeline; then, for a failed boot, the causes, the events and packets
    before the failure, the last console lines; the artifacts; and the
    command that reproduces the boot. Without evidence or diagnosis (a boot
    run without collection) those parts are left out.
    """
    parts = [timeline.render()]
    failed = not timeline.ok
    if failed and diagnosis is not None:
        parts.append(render_causes(diagnosis))
    if failed and evidence is not None:
        parts.append(render_relevant(evidence, diagnosis, limit))
    if failed:
        parts.append("last console lines:\n" + timeline.console_tail)
    parts.append(render_artifacts(artifacts))
    if failed and evidence is not None:
        parts.append(f"reproduce by hand:\n  {reproduce_of(evidence)}")
    return "\n\n".join(parts)
