"""`pxelab report` pages: structure, escaping, self-containment, bars per stage, rows per case."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest
from html_page import Page, assert_self_contained
from report_samples import (
    REPRODUCE,
    failed_diagnosis,
    failed_evidence,
    good_evidence,
    write_boot,
)

from pxelab.analysis.diagnosis import Diagnosis
from pxelab.analysis.report.boots import load_boot, stages
from pxelab.analysis.report.charts import nice_step
from pxelab.analysis.report.html import write_report
from pxelab.core.errors import ConfigError

pytestmark = pytest.mark.unit


@pytest.fixture
def failed_boot(tmp_path: Path) -> Path:
    evidence = failed_evidence()
    return write_boot(tmp_path / "boot", evidence, failed_diagnosis(evidence))


def test_one_boot_page_has_verdict_cause_reproduce_and_is_self_contained(failed_boot: Path):
    out = write_report(failed_boot)
    assert out == failed_boot / "report.html"
    page = Page(out.read_text())
    assert_self_contained(page, out.parent)
    header = "".join(page.find("header")[0].text)
    assert "FAILED" in header and "config" in header and "[file.not_found]" in header
    assert REPRODUCE in header and "ldlinux-missing" in header
    assert "tcg" in header and "ipxe-qemu" in header  # versions from the properties
    causes = page.text_of("causes")
    assert "fix: put ldlinux.c32" in causes and "tftp.not_found" in causes


def test_console_text_is_escaped_not_markup(failed_boot: Path):
    text = write_report(failed_boot).read_text()
    page = Page(text)
    assert not page.find("script")
    console = page.text_of("console")
    assert "<script>alert('x')</script> & \"q\"" in console  # shown as text
    assert "\\x1b[2J\\x00 done" in console  # control characters made visible
    assert "\x00" not in text and "\x1b" not in text
    assert "/srv/<data>" in page.text_of("timeline")


def test_stage_chart_has_one_bar_per_stage_the_failed_one_red(failed_boot: Path):
    page = Page(write_report(failed_boot).read_text())
    bars = page.find("rect", inside="stage-chart", cls="bar")
    timeline = failed_evidence().timeline
    assert [b.attrs["data-stage"] for b in bars] == [*(h.name for h in timeline.hits), "config"]
    (failed,) = page.find("rect", inside="stage-chart", cls="failed")
    assert failed.attrs["data-stage"] == "config"
    widths = [float(b.attrs["width"]) for b in bars]
    assert max(widths) == widths[-1], "the 30 s the failed stage waited is the longest bar"


def test_timeline_table_has_every_entry_and_a_filter_per_source(failed_boot: Path):
    page = Page(write_report(failed_boot).read_text())
    rows = page.find("tr", inside="timeline")[1:]  # less the head row
    assert len(rows) == len(failed_evidence().entries())
    sources = {c for r in rows for c in r.classes if c.startswith("src-")}
    assert sources == {"src-console", "src-server", "src-packet", "src-firmware"}
    boxes = {b.attrs["id"]: "checked" in b.attrs for b in page.find("input", inside="timeline")}
    assert boxes == {"show-console": True, "show-server": True, "show-packet": True,
                     "show-firmware": False, "show-daemon": True}
    assert len([r for r in rows if "cited" in r.classes]) == 1
    assert len([r for r in rows if "failed" in r.classes]) == 1


def test_artifact_links_point_at_the_files_where_they_are_now(failed_boot: Path):
    out = write_report(failed_boot, failed_boot.parent / "pages" / "one.html")
    page = Page(out.read_text())
    links = {"".join(a.text): a.attrs["href"] for a in page.find("a", inside="artifacts")}
    assert links["serial log"] == "../boot/serial.log"
    assert links["ganesha log"] == "../boot/nfs/ganesha.log"
    assert {"evidence", "diagnosis"} <= set(links)
    assert_self_contained(page, out.parent)


def test_matrix_page_has_a_row_and_a_chart_row_per_case(tmp_path: Path):
    evidence = failed_evidence()
    write_boot(tmp_path / "run" / "test_a-0", evidence, failed_diagnosis(evidence))
    for name, scale in (("legacy_pxe_ipv4", 1.0), ("uefi_http_ipv6", 2.5)):
        good = good_evidence(name, scale)
        write_boot(tmp_path / "run" / f"test_{name}-0", good, Diagnosis(name, ok=True))
    out = write_report(tmp_path / "run")
    page = Page(out.read_text())
    assert_self_contained(page, out.parent)
    rows = page.find("tr", inside="case-rows")
    assert len(rows) == 3
    cells = ["".join(r.text) for r in rows]
    assert "file.not_found" in cells[1] and "FAILED" in cells[1]
    assert "20.0" in cells[2]  # uefi_http_ipv6: 8 s x 2.5 to userspace
    chart_rows = page.find("g", inside="matrix-chart", cls="row")
    assert [r.attrs["data-case"] for r in chart_rows] == [
        "legacy_pxe_ipv4", "legacy_pxe_ipv4[e1000] --fault ldlinux-missing", "uefi_http_ipv6"]
    assert len(page.find("rect", inside="matrix-chart", cls="bar")) == 5 + 6 + 5
    legend = "".join(page.find("ul", cls="legend")[0].text)
    assert "rom_dhcp" in legend and "failed stage" in legend
    for boot in ("test_a-0", "test_legacy_pxe_ipv4-0", "test_uefi_http_ipv6-0"):
        own = tmp_path / "run" / boot / "report.html"
        sub = Page(own.read_text())
        assert_self_contained(sub, own.parent)  # links back to the overview


def test_a_boot_with_only_timeline_json_still_renders(tmp_path: Path):
    evidence = failed_evidence()
    saved = {"scenario": evidence.scenario, "ok": False, "marker": None,
             "timeline": evidence.timeline.to_dict(), "artifacts": {},
             "events": [json.loads(e.to_json()) for e in evidence.events]}
    (tmp_path / "timeline.json").write_text(json.dumps(saved))
    record = load_boot(tmp_path)
    assert not record.exact_clock and record.diagnosis is None
    page = Page(write_report(tmp_path).read_text())
    assert "Rebuilt from timeline.json" in page.text_of("timeline")
    assert "not diagnosed" in page.text_of("causes").lower()
    assert len(page.find("rect", inside="stage-chart", cls="bar")) == len(
        stages(evidence.timeline))


def test_no_boot_under_the_directory_is_a_config_error(tmp_path: Path):
    with pytest.raises(ConfigError, match="no boot found"):
        write_report(tmp_path)


@pytest.mark.parametrize(("total", "step"), [(8.1, 1.0), (33.0, 5.0), (0.4, 0.05),
                                             (120.0, 20.0)])
def test_axis_ticks_are_round(total: float, step: float):
    assert nice_step(total) == pytest.approx(step)


IPXE_PROMPT = "Press Ctrl-B for the iPXE command line..."
IPXE_ERASED = IPXE_PROMPT + "\b \b" * len(IPXE_PROMPT) + "net0: 52:54:00:12:34:56 using virtio-net"


def test_console_shows_what_a_terminal_showed(tmp_path: Path):
    # iPXE erases its Ctrl-B prompt with backspaces, then writes over it.
    evidence = failed_evidence()
    timeline = replace(evidence.timeline,
                       console_tail=f"iPXE initialising devices...ok\n{IPXE_ERASED}\n"
                                    "old line\rnew\nabcdef\b\bXY\n")
    boot = write_boot(tmp_path / "boot", replace(evidence, timeline=timeline), None)
    console = Page(write_report(boot).read_text()).text_of("console")
    assert "\\x08" not in console and "\\r" not in console
    assert "Press Ctrl-B" not in console
    assert console.rstrip().splitlines()[-4:] == ["iPXE initialising devices...ok",
                                         "net0: 52:54:00:12:34:56 using virtio-net",
                                         "new line", "abcdXY"]
