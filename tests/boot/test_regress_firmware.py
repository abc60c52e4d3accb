"""Regressions, firmware area: a firmware release's trap, on the sets that have it.

``no-rng`` boots its case without an RNG device on each firmware set whose OVMF is
edk2-stable202405 or later: the firmware stage fails within seconds, before any
DHCP, and the diagnosis names the OVMF release. On bookworm's OVMF (2022.11) the
entry says it does not apply, and the same machine without an RNG device boots to
userspace: the device is the whole difference. The fixed configuration, the case
with its RNG device, is the matrix case itself (test_scenarios.py with
``--pxelab-firmware-set trixie,sid`` boots it), so it is not booted again here.

    pytest tests/boot/test_regress_firmware.py -k sid
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
from regress import assert_boots, boot_as_recorded

from pxelab.core.errors import NotApplicableError
from pxelab.machine.edk2 import ovmf_release
from pxelab.machine.fwsets import load_firmware_set
from pxelab.pytest_plugin import BootFactory
from pxelab.scenarios.matrix import find_case
from pxelab.scenarios.regressions import apply_regressions, get_regression

# Measured under TCG on 2 busy cores: trixie's OVMF was in its shell 2.0 s after
# power-on, sid's said "No bootable option" at 1.7 s. The firmware stage itself would
# wait 60 s for ">>Start HTTP Boot over IPv4".
FAILS_WITHIN = 15.0


@pytest.mark.qemu
@pytest.mark.netns
@pytest.mark.slow
@pytest.mark.parametrize("set_name", ["trixie", "sid"])
def test_no_rng_hides_network_boot(boot_scenario: BootFactory, pxelab_cache_dir: Path,
                                   set_name: str) -> None:
    entry = get_regression("no-rng")
    fwset = load_firmware_set(set_name, pxelab_cache_dir)
    release = ovmf_release(fwset.versions(["ovmf-code"]))
    assert release is not None and release.needs_rng(), f"{set_name}'s OVMF is {release}"
    result = boot_as_recorded(boot_scenario, entry, fwset)
    timeline = result.timeline
    # Ended by what OVMF printed (its shell, or no boot option), not by the stage's wait.
    assert (timeline.failure or "").startswith("OVMF "), timeline.failure
    assert timeline.failed_at is not None and timeline.failed_at < FAILS_WITHIN, timeline.render()
    assert not [e for e in result.events if e.source in ("dhcp4", "dhcp6") and e.client], \
        "the firmware never started a network boot"
    assert result.diagnosis is not None and result.diagnosis.cause is not None
    assert result.diagnosis.cause.code == entry.cause, result.diagnosis.render()
    assert result.diagnosis.cause.summary == (
        f"OVMF {release} shows no network boot option: EDK2 from stable202405 on needs an "
        "RNG device")
    assert timeline.properties["firmware_set"] == set_name
    assert timeline.properties["firmware_settings"].endswith("rng=none")


def test_no_rng_does_not_apply_on_bookworm(pxelab_cache_dir: Path) -> None:
    """No boot: the entry refuses bookworm's OVMF and says why."""
    entry = get_regression("no-rng")
    fwset = load_firmware_set("bookworm", pxelab_cache_dir)
    case = find_case(entry.scenario)
    reason = ("OVMF 2022.11 predates edk2-stable202405, which made network boot need an RNG "
              "device; pick a firmware set with a newer OVMF (trixie, sid)")
    assert entry.reason_not_applicable(case, fwset) == reason
    with pytest.raises(NotApplicableError) as refused:
        apply_regressions(case, [entry.name], fwset)
    assert str(refused.value) == (f"fault 'no-rng' does not apply to {case.name} on "
                                  f"firmware set bookworm: {reason}")


@pytest.mark.qemu
@pytest.mark.netns
@pytest.mark.slow
def test_bookworm_ovmf_boots_without_an_rng_device(boot_scenario: BootFactory) -> None:
    """What the entry's refusal rests on: 2022.11 boots the machine without the device."""
    case = find_case(get_regression("no-rng").scenario)
    result = boot_scenario(replace(case, firmware_set="bookworm",
                                   guest=replace(case.guest, rng=False)))
    assert_boots(result)
    assert result.timeline.properties["firmware_settings"].endswith("rng=none")
