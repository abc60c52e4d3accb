"""The RNG trap: EDK2 from edk2-stable202405 on offers no network boot without an RNG.

The same case boots without the guest's RNG device: on the host's OVMF. From that
EDK2 on (Debian 13's 2025.02), the firmware stage fails within seconds and the
diagnosis names the missing RNG device; before it (Debian 12's 2022.11), the boot
reaches userspace, which shows the device is the only difference.

    pytest tests/boot/test_rng.py
"""

from __future__ import annotations

from dataclasses import replace

import pytest

from pxelab.machine.edk2 import Edk2Release
from pxelab.machine.firmware import package_version
from pxelab.pytest_plugin import BootFactory
from pxelab.scenarios.matrix import find_case

pytestmark = [pytest.mark.qemu, pytest.mark.slow]


def test_ovmf_without_an_rng_device(boot_scenario: BootFactory) -> None:
    case = find_case("uefi_http_ipv4")
    result = boot_scenario(replace(case, guest=replace(case.guest, rng=False)))
    release = Edk2Release.of(package_version("ovmf"))
    assert release is not None, "Debian's ovmf versions start with the EDK2 tag (YYYY.MM)"
    if not release.needs_rng():
        assert result.ok, f"{result.timeline.failure}\n{result.timeline.console_tail}"
        return
    assert result.timeline.failed_stage == "firmware", result.timeline.render()
    # Ended by what OVMF printed (its shell, or no boot option), not by the stage timeout.
    assert (result.timeline.failure or "").startswith("OVMF "), result.timeline.failure
    assert result.diagnosis is not None
    assert result.diagnosis.codes[0] == "firmware.no_rng_device", result.diagnosis.render()
