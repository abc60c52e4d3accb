"""The firmware regressions as scenario transformations, and where they apply (no boots).

The firmware sets here are version tables only: where a fault applies depends on
the set's OVMF version, not on its files, so nothing is fetched.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from pxelab import cli
from pxelab.core.errors import NotApplicableError
from pxelab.machine.fwsets import FirmwareSet, UserFile
from pxelab.scenarios.cases import Scenario
from pxelab.scenarios.matrix import cases, find_case
from pxelab.scenarios.regressions import apply_regressions, get_regression

pytestmark = pytest.mark.unit

NO_RNG = get_regression("no-rng")
BOOKWORM_REASON = ("OVMF 2022.11 predates edk2-stable202405, which made network boot need an "
                   "RNG device; pick a firmware set with a newer OVMF (trixie, sid)")


def debian_set(name: str, **packages: str) -> FirmwareSet:
    renames = {"ovmf": "ovmf-generic"} if "ovmf_generic" in packages else {}
    return FirmwareSet(name, f"Debian {name}", Path("/nonexistent"), renames=renames,
                       packages={p.replace("_", "-"): v for p, v in packages.items()})


BOOKWORM = debian_set("bookworm", ovmf="2022.11-6+deb12u2")
TRIXIE = debian_set("trixie", ovmf="2025.02-8+deb13u1")
SID = debian_set("sid", ovmf_generic="2026.08+ds-2")


@pytest.mark.parametrize("fwset", [TRIXIE, SID], ids=str)
def test_no_rng_takes_the_rng_device_away_on_sets_that_need_it(fwset: FirmwareSet) -> None:
    base = find_case(NO_RNG.scenario)
    assert NO_RNG.reason_not_applicable(base, fwset) is None
    scenario = apply_regressions(base, ["no-rng"], fwset)
    assert not scenario.guest.rng and scenario.guest.rng_device == ""
    assert replace(scenario.guest, rng=True) == base.guest, "the device is the only change"
    assert scenario.applied == ("no-rng",)
    assert NO_RNG.fixed_for(base) == base, "fixed: the case as it is, with its RNG device"


def test_no_rng_does_not_apply_to_ovmf_before_stable202405() -> None:
    base = find_case(NO_RNG.scenario)
    assert NO_RNG.reason_not_applicable(base, BOOKWORM) == BOOKWORM_REASON
    with pytest.raises(NotApplicableError) as refused:
        apply_regressions(base, ["no-rng"], BOOKWORM)
    assert str(refused.value) == (f"fault 'no-rng' does not apply to {base.name} on firmware "
                                  f"set bookworm: {BOOKWORM_REASON}")
    early = debian_set("backports", ovmf="2024.02-2~bpo12+1")
    assert (NO_RNG.reason_not_applicable(base, early) or "").startswith("OVMF 2024.02 predates")


def test_no_rng_does_not_apply_to_seabios() -> None:
    reason = NO_RNG.reason_not_applicable(find_case("legacy_pxe_ipv4"), TRIXIE)
    assert reason is not None and reason.startswith("seabios needs no RNG device")


def test_no_rng_tries_an_ovmf_it_cannot_date(tmp_path: Path) -> None:
    """A user's own build records the user's version: no release in it, no refusal."""
    code, template = tmp_path / "code.fd", tmp_path / "vars.fd"
    own = replace(BOOKWORM, name="mine", files={"ovmf-code": UserFile(code, "ci build 42"),
                                                "ovmf-vars": UserFile(template, "ci build 42")})
    assert NO_RNG.reason_not_applicable(find_case(NO_RNG.scenario), own) is None


def test_no_rng_applies_to_every_ovmf_case() -> None:
    ovmf = [case for case in cases() if case.guest.firmware.is_uefi()]
    assert ovmf
    for case in ovmf:
        assert not apply_regressions(case, ["no-rng"], TRIXIE).guest.rng, case.name


def test_no_rng_is_recorded_where_it_fails() -> None:
    case = find_case(NO_RNG.scenario)
    assert NO_RNG.stage in [m.name for m in case.milestones]
    assert "edk2-stable202405" in NO_RNG.summary


class NoBoot:
    def __init__(self, scenario: Scenario, artifacts: Path, **_: Any) -> None:
        raise AssertionError("a fault that does not apply must not boot")


def test_boot_with_a_fault_that_does_not_apply_exits_2_with_the_reason(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(cli, "_unwind_on_signals", lambda: None)
    monkeypatch.setattr(cli, "load_firmware_set", lambda name: BOOKWORM)
    # The fake set has versions, no files: only the firmware set's name goes on the case.
    monkeypatch.setattr(cli, "for_firmware_set",
                        lambda case, fwset: replace(case, firmware_set=fwset.name))
    monkeypatch.setattr(cli, "BootRun", NoBoot)
    argv = ["boot", "uefi_http_ipv4", "--firmware-set", "bookworm", "--fault", "no-rng",
            "--artifacts", str(tmp_path / "a")]
    assert cli.main(argv) == 2
    assert BOOKWORM_REASON in capsys.readouterr().err
    assert not (tmp_path / "a").exists()


def test_faults_lists_no_rng(capsys: pytest.CaptureFixture[str],
                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cli, "_unwind_on_signals", lambda: None)
    assert cli.main(["faults"]) == 0
    [line] = [line for line in capsys.readouterr().out.splitlines()
              if line.startswith("no-rng ")]
    assert line.split()[1] == "uefi_http_ipv4" and line.endswith(NO_RNG.summary)
