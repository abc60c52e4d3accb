"""The text report of a boot (pytest's section, `pxelab boot`): what a failed boot shows."""

from __future__ import annotations

from pathlib import Path

import pytest
from report_samples import (
    REPRODUCE,
    RETRIES,
    failed_diagnosis,
    failed_evidence,
    good_evidence,
    not_found_line,
)

from pxelab.analysis.diagnosis import Diagnosis
from pxelab.analysis.evidence import Source
from pxelab.analysis.report.text import RELEVANT, relevant_entries, render_boot, render_causes

pytestmark = pytest.mark.unit

ARTIFACTS = {"serial log": Path("/art/serial.log"), "evidence": Path("/art/evidence.json")}


def test_failed_boot_names_stage_cause_evidence_fix_and_rerun_command():
    evidence = failed_evidence()
    text = render_boot(evidence.timeline, ARTIFACTS, evidence=evidence,
                       diagnosis=failed_diagnosis(evidence))
    assert "FAILED at stage 'config'" in text
    assert "cause: the NBP pxelinux.0 was sent" in text and "[file.not_found]" in text
    assert "fix: put ldlinux.c32 from the same syslinux build" in text
    assert "last console lines:\nPXELINUX 6.04\nFailed to load ldlinux.c32" in text
    assert "  evidence        /art/evidence.json" in text
    assert text.rstrip().endswith(f"reproduce by hand:\n  {REPRODUCE}")


def test_events_before_the_failure_are_the_last_few_without_noise_plus_cited_lines():
    evidence = failed_evidence()
    shown = relevant_entries(evidence, failed_diagnosis(evidence))
    names = [e.name for e in shown]
    texts = " ".join(e.text for e in shown)
    assert len(shown) == RELEVANT + 2 and names.count("tftp.rrq") == RELEVANT
    assert names[0] == "fault.injected", "an injected fault is shown however early"
    assert names.count("fault.injected") == 1, "once per fault, not per firing"
    assert f"retry{RETRIES - 1}.c32" in texts and "retry0.c32" not in texts
    assert "tftp.not_found" in names, "a line a cause cites is shown however early"
    assert not {"arp.request", "ra.sent", "server.ready", "server.stopped"} & set(names)
    assert all(e.source in (Source.SERVER, Source.PACKET) for e in shown)
    assert all(e.seconds <= 30.6 for e in shown), "nothing after the failure"
    assert [e.seconds for e in shown] == sorted(e.seconds for e in shown)


def test_cited_lines_are_marked_in_the_report():
    evidence = failed_evidence()
    text = render_boot(evidence.timeline, ARTIFACTS, evidence=evidence,
                       diagnosis=failed_diagnosis(evidence))
    assert f"\n> {not_found_line(evidence)}" in text
    # Once under the cause, once among the events.
    assert text.count(not_found_line(evidence)) == 2


def test_without_evidence_and_diagnosis_the_report_is_timeline_console_and_artifacts():
    timeline = failed_evidence().timeline
    text = render_boot(timeline, ARTIFACTS)
    assert text.startswith(timeline.render())
    assert "last console lines:" in text and "artifacts:" in text
    assert "cause" not in text and "reproduce" not in text and "server events" not in text


def test_a_passing_boot_shows_its_timeline_and_artifacts_only():
    evidence = good_evidence()
    ok = Diagnosis(evidence.scenario, ok=True)
    text = render_boot(evidence.timeline, ARTIFACTS, evidence=evidence, diagnosis=ok)
    assert "userspace" in text and "artifacts:" in text
    assert "last console lines" not in text and "reproduce" not in text


def test_no_matching_rule_says_so():
    evidence = failed_evidence()
    unknown = Diagnosis(evidence.scenario, ok=False, failed_stage="config", failure="x")
    assert "no diagnosis rule matched" in render_causes(unknown)
    text = render_boot(evidence.timeline, ARTIFACTS, evidence=evidence, diagnosis=unknown)
    assert "no diagnosis rule matched" in text and "reproduce by hand" in text
