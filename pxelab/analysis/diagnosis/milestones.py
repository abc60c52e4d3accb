"""Diagnosis rule for a boot that went on past a milestone the console never showed.

The console watcher ends a stage's wait when a later landmark line comes first
(:attr:`pxelab.machine.console.Timeline.skipped_to`): the guest got further, so what failed is
the milestone's pattern against this build's output (a loader that prints another
banner, GRUB 2.12 without "Welcome to GRUB!"), or the boot took another path to the
same place. Either way the stage's own rules have nothing to find.
"""

from __future__ import annotations

from pxelab.analysis.diagnosis import query as q
from pxelab.analysis.diagnosis.model import Cause
from pxelab.analysis.evidence import Evidence


def milestone_unmatched(evidence: Evidence) -> Cause | None:
    """A later landmark milestone came while an earlier one was still awaited."""
    timeline = evidence.timeline
    if timeline.skipped_to is None or timeline.failed_stage is None:
        return None
    versions = ", ".join(f"{name} {version}"
                         for name, version in sorted(evidence.facts.firmware_packages.items()))
    built = f" (this boot ran {versions})" if versions else ""
    return Cause(
        "console.milestone_unmatched", timeline.failed_stage,
        f"the boot went on to {timeline.skipped_to} without the console line that marks "
        f"{timeline.failed_stage}{built}: that milestone's pattern does not match what this "
        "build prints, or the boot took another path to the same place",
        q.lines(evidence, timeline.hits[-2:]),
        f"read serial.log around {timeline.skipped_to}: if the boot path is right, change "
        f"the {timeline.failed_stage} milestone's pattern (pxelab/scenarios/milestones.py) to a "
        "line every build prints; otherwise the scenario's boot path changed")
