"""Regressions, Secure Boot SBAT: an SbatLevel past Debian 12's GRUB, on real shim and OVMF.

``sb-sbat-revoked`` writes an SbatLevel one GRUB generation past the newest published
one into the guest's VARS (Microsoft's keys enrolled, Secure Boot enforced) and
boots bookworm's shim 16.1 and signed GRUB 2.06 (``grub,5``): shim keeps the newer
level, refuses GRUB with a Security Violation, and the diagnosis names GRUB's
generation and the level. The fixed configuration, Debian 13's signed GRUB 2.12
(``grub,7``) under the same level, boots to userspace. On trixie the entry says it
does not apply. On bookworm a level at GRUB's own generation (grub,5) boots: the
generation is the whole difference. The case without the level is the matrix case.

    pytest tests/boot/test_regress_sbat.py
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
from regress import assert_boots, boot_as_recorded

from pxelab.core.errors import NotApplicableError
from pxelab.machine.fwsets import load_firmware_set
from pxelab.pytest_plugin import BootFactory
from pxelab.scenarios.matrix import find_case
from pxelab.scenarios.regressions import apply_regressions, get_regression
from pxelab.scenarios.regressions.sbat import FIXED_FIRMWARE_SET, REVOKING_LEVEL

# Measured under TCG: shim's refusal at 9.2 s after power-on (PXE 4 s, NBP 8 s, GRUB's
# 3.8 MB over TFTP 0.8 s); the bootloader stage itself would wait 60 s.
FAILS_WITHIN = 30.0
SETTING = "sbat-level=2026010100 shim:4 grub:6"


@pytest.mark.qemu
@pytest.mark.netns
@pytest.mark.slow
def test_sbat_level_revokes_bookworm_grub(boot_scenario: BootFactory,
                                          pxelab_cache_dir: Path) -> None:
    entry = get_regression("sb-sbat-revoked")
    result = boot_as_recorded(boot_scenario, entry, load_firmware_set("bookworm",
                                                                       pxelab_cache_dir))
    timeline = result.timeline
    assert "Security Violation" in (timeline.failure or ""), timeline.failure
    assert timeline.failed_at is not None and timeline.failed_at < FAILS_WITHIN
    assert result.diagnosis is not None and result.diagnosis.cause is not None
    assert result.diagnosis.cause.summary == (
        "shim refused grubx64.efi: the SbatLevel in the machine's NVRAM (2026010100 shim,4 "
        "grub,6) revokes its SBAT generation grub,5 (grub 2.06), needs grub,6")
    # shim kept the level: its own built-in one (2025021800) is older.
    assert result.evidence is not None
    assert result.evidence.facts.sbat_level == REVOKING_LEVEL.text()
    assert SETTING in timeline.properties["firmware_settings"]


@pytest.mark.qemu
@pytest.mark.netns
@pytest.mark.slow
def test_newer_grub_boots_under_the_same_level(boot_scenario: BootFactory) -> None:
    entry = get_regression("sb-sbat-revoked")
    result = boot_scenario(entry.fixed_for(find_case(entry.scenario)))
    assert_boots(result)
    assert result.timeline.properties["firmware_set"] == FIXED_FIRMWARE_SET
    assert SETTING in result.timeline.properties["firmware_settings"]
    assert result.evidence is not None
    assert result.evidence.facts.sbat_level == REVOKING_LEVEL.text()


def test_sbat_revoked_does_not_apply_on_trixie(pxelab_cache_dir: Path) -> None:
    """No boot: trixie's GRUB passes the level, and the entry says so."""
    entry = get_regression("sb-sbat-revoked")
    fwset = load_firmware_set("trixie", pxelab_cache_dir)
    reason = entry.reason_not_applicable(find_case(entry.scenario), fwset)
    assert reason is not None and reason.startswith("its signed GRUB (grub,7 (grub 2.12) "), \
        reason
    with pytest.raises(NotApplicableError, match="passes SbatLevel 2026010100 shim,4 grub,6"):
        apply_regressions(find_case(entry.scenario), [entry.name], fwset)


@pytest.mark.qemu
@pytest.mark.netns
@pytest.mark.slow
def test_bookworm_grub_boots_under_a_level_at_its_generation(boot_scenario: BootFactory) -> None:
    """What the entry rests on: the same set, the same date, grub,5 instead of grub,6 boots.

    The VARS written by pxelab are not what shim refuses; GRUB's generation is.
    """
    case = find_case(get_regression("sb-sbat-revoked").scenario)
    level = replace(REVOKING_LEVEL, minimum=(("shim", 4), ("grub", 5)))
    result = boot_scenario(replace(case, firmware_set="bookworm",
                                   guest=replace(case.guest, sbat_level=level)))
    assert_boots(result)
    assert result.evidence is not None and result.evidence.facts.sbat_level == level.text()
