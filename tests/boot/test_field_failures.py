"""Failures outside the regression catalog get their cause, at once (failures.py).

Each test boots one broken lab and checks the verdict a user would read:
- the stage the boot failed at and the first cause's code;
- no ``unknown`` anywhere in the verdict;
- the same cause from the evidence without the server's events (a third-party
  server's lab has none) or with the one the table gives, and never one keyed on a
  fault's event;
- the verdict came within 5 s of the symptom (``verdict_latency``: from the console
  line or the server-side evidence that showed the boot was lost, to the end of the
  stage); bench/README.md has the table.

    pytest tests/boot/test_field_failures.py -k nfs
"""

from __future__ import annotations

from dataclasses import replace

import pytest
from failures import FAILURES, FieldFailure

from pxelab.analysis.diagnosis import diagnose
from pxelab.analysis.evidence import Evidence
from pxelab.pytest_plugin import BootFactory

pytestmark = [pytest.mark.qemu, pytest.mark.netns, pytest.mark.slow]

# Seconds from the symptom to the verdict (the target).
MAX_LATENCY = 5.0


def _without(evidence: Evidence, *sources: str) -> Evidence:
    kept = tuple(e for e in evidence.events if e.source not in sources) if sources else ()
    return replace(evidence, events=kept)


@pytest.mark.parametrize("failure", FAILURES, ids=[f.id for f in FAILURES])
def test_field_failure_is_diagnosed_at_once(boot_scenario: BootFactory,
                                            failure: FieldFailure) -> None:
    result = boot_scenario(failure.scenario())
    timeline, diagnosis, evidence = result.timeline, result.diagnosis, result.evidence
    assert not result.ok
    assert diagnosis is not None and evidence is not None, "BootRun diagnoses every boot"
    verdict = diagnosis.render()
    assert timeline.failed_stage == failure.stage, verdict
    assert diagnosis.cause is not None and diagnosis.cause.code == failure.cause, verdict
    assert "cause: unknown" not in verdict and diagnosis.causes, verdict
    # No rule keys on a fault's event, and the packets alone tell the same story.
    assert diagnose(_without(evidence, "fault")).codes[:1] == (failure.cause,), verdict
    alone = diagnose(_without(evidence)).codes[:1]
    assert alone == (failure.without_events or failure.cause,), diagnose(
        _without(evidence)).render()
    latency = timeline.properties.get("verdict_latency")
    assert latency is not None and latency <= MAX_LATENCY, (
        f"verdict {latency} s after the symptom\n{timeline.render()}")
