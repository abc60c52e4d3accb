"""The command line of issue 5: `pxelab faults`, `pxelab boot --fault`, `pxelab report`.

No boot happens here: BootRun is replaced by a fake that returns a prepared result.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from report_samples import REPRODUCE, failed_diagnosis, failed_evidence, write_boot

from pxelab import cli
from pxelab.lab import BootResult
from pxelab.scenarios import regressions
from pxelab.scenarios.cases import Scenario
from pxelab.scenarios.regressions import Regression

pytestmark = pytest.mark.unit


def _slower(scenario: Scenario, argument: str | None) -> Scenario:
    return replace(scenario, description=f"{scenario.description} (slowed by {argument})")


FAKE_FAULTS = {
    "zz-slow-dhcp": Regression("zz-slow-dhcp", "DHCP answers late", "legacy_pxe_ipv4",
                                 "rom_dhcp", "dhcp.offer_unused", _slower,
                                 argument="seconds", default="3"),
    "aa-no-ldlinux": Regression("aa-no-ldlinux", "ldlinux.c32 is missing",
                                  "legacy_pxe_ipv4[e1000]", "config",
                                  "file.not_found", lambda s, _a: s),
}


@pytest.fixture(autouse=True)
def quiet_main(monkeypatch: pytest.MonkeyPatch) -> None:
    """main() installs signal handlers for a real boot; the test process keeps its own."""
    monkeypatch.setattr(cli, "_unwind_on_signals", lambda: None)


@pytest.fixture
def fake_regressions(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(regressions, "REGRESSIONS", dict(FAKE_FAULTS))
    monkeypatch.setattr(cli, "REGRESSIONS", regressions.REGRESSIONS)


class FakeRun:
    """Stands in for BootRun: records the scenario, returns a failed result."""

    booted: list[Scenario] = []  # noqa: RUF012  # reset per test by the fixture

    def __init__(self, scenario: Scenario, artifacts: Path, **_: Any) -> None:
        self.scenario, self.artifacts = scenario, artifacts

    def run(self) -> BootResult:
        FakeRun.booted.append(self.scenario)
        evidence = failed_evidence()
        return BootResult(self.scenario.name, evidence.timeline, self.artifacts, (), "nfs",
                          evidence=evidence, diagnosis=failed_diagnosis(evidence))


@pytest.fixture
def fake_boot(monkeypatch: pytest.MonkeyPatch) -> list[Scenario]:
    FakeRun.booted = []
    monkeypatch.setattr(cli, "BootRun", FakeRun)
    return FakeRun.booted


def test_faults_lists_the_regressions_sorted_one_line_each(fake_regressions, capsys):
    assert cli.main(["faults"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["NAME", "SCENARIO", "SUMMARY"]
    assert lines[1].split()[:2] == ["aa-no-ldlinux", "legacy_pxe_ipv4[e1000]"]
    assert lines[2].split()[:2] == ["zz-slow-dhcp[=ARG]", "legacy_pxe_ipv4"]
    assert lines[2].endswith("DHCP answers late (ARG: seconds, default 3)")
    assert lines[1].endswith("ldlinux.c32 is missing") and len(lines) == 3


def test_faults_as_json(fake_regressions, capsys):
    assert cli.main(["faults", "--json"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["name"] for r in rows] == ["aa-no-ldlinux", "zz-slow-dhcp"]
    assert rows[1] | {"summary": ""} == {
        "name": "zz-slow-dhcp", "argument": "seconds", "default": "3",
        "scenario": "legacy_pxe_ipv4", "stage": "rom_dhcp", "cause": "dhcp.offer_unused",
        "summary": ""}


def test_faults_with_an_empty_catalog(monkeypatch, capsys):
    monkeypatch.setattr(cli, "REGRESSIONS", {})
    assert cli.main(["faults"]) == 0
    assert "no faults are catalogued" in capsys.readouterr().out
    assert cli.main(["faults", "--json"]) == 0
    assert capsys.readouterr().out == ""


@pytest.mark.parametrize(("spec", "message"), [
    ("no-such-fault", "unknown fault 'no-such-fault'"),
    ("aa-no-ldlinux=3", "takes no argument"),
    ("=3", "write NAME or NAME=ARGS"),
])
@pytest.mark.usefixtures("fake_regressions")
def test_a_bad_fault_is_a_config_error_before_anything_boots(fake_boot, tmp_path, capsys, spec,
                                                             message):
    argv = ["boot", "legacy_pxe_ipv4", "--fault", spec, "--artifacts", str(tmp_path / "a")]
    assert cli.main(argv) == 2
    assert message in capsys.readouterr().err
    assert fake_boot == [] and not (tmp_path / "a").exists()


def test_faults_are_applied_in_order_and_a_failed_boot_prints_its_diagnosis(
        fake_regressions, fake_boot, tmp_path, capsys):
    out = tmp_path / "result.json"
    argv = ["boot", "legacy_pxe_ipv4[e1000]", "--fault", "aa-no-ldlinux", "--fault",
            "zz-slow-dhcp", "--json", str(out), "--artifacts", str(tmp_path / "a")]
    assert cli.main(argv) == 1
    (booted,) = fake_boot
    assert booted.name == "legacy_pxe_ipv4[e1000]"
    assert booted.applied == ("aa-no-ldlinux", "zz-slow-dhcp")
    assert booted.description.endswith("(slowed by 3)"), "the default argument is used"
    printed = capsys.readouterr().out
    assert "with faults: aa-no-ldlinux, zz-slow-dhcp" in printed
    assert "FAILED: legacy_pxe_ipv4[e1000] at stage 'config'" in printed
    assert "[file.not_found]" in printed and "fix: put ldlinux.c32" in printed
    assert printed.rstrip().endswith(f"reproduce: {REPRODUCE}")
    written = json.loads(out.read_text())
    assert written["diagnosis"]["causes"][0]["code"] == "file.not_found"


def test_report_writes_the_page_and_prints_its_path(tmp_path, capsys):
    evidence = failed_evidence()
    boot = write_boot(tmp_path / "boot", evidence, failed_diagnosis(evidence))
    assert cli.main(["report", str(boot), "-o", str(tmp_path / "page.html")]) == 0
    assert capsys.readouterr().out.strip() == str(tmp_path / "page.html")
    assert "file.not_found" in (tmp_path / "page.html").read_text()


def test_report_on_a_directory_without_boots_exits_2(tmp_path, capsys):
    assert cli.main(["report", str(tmp_path)]) == 2
    assert "no boot found" in capsys.readouterr().err
