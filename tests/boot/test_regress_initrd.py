"""Regression catalog, initrd area: an initramfs without the NIC's driver, reproduced and fixed.

Each test boots the catalogued case with the fault (the kernel and initramfs run,
no network device appears, the console says so and the kernel panics: the
field report's picture) and fixed (it reaches userspace on the NFS root).

    /work/bootslot .venv/bin/pytest tests/boot/test_regress_initrd.py -k no_nic \\
        -p no:cacheprovider --pxelab-artifacts /tmp/art
"""

from __future__ import annotations

from typing import Any

import pytest

from pxelab.catalog import CatalogFault, apply_faults, get_fault
from pxelab.lab import BootResult
from pxelab.matrix import find_case
from pxelab.payload import Initramfs

pytestmark = [pytest.mark.qemu, pytest.mark.netns, pytest.mark.slow]

PANIC = "Kernel panic - not syncing"


def boot_faulted(boot_scenario: Any, entry: CatalogFault, spec: str | None = None) -> BootResult:
    """Boot the entry's case with the fault; check the stage, the panic and the diagnosis."""
    scenario = apply_faults(find_case(entry.scenario), [spec or entry.name])
    result = boot_scenario(scenario)
    timeline = result.timeline
    assert not result.ok
    assert timeline.failed_stage == entry.stage, (
        f"failed at {timeline.failed_stage!r}, not {entry.stage!r}: {timeline.failure}\n"
        f"{timeline.console_tail}")
    assert timeline.seconds("initramfs") is not None, "the initramfs ran"
    assert PANIC in timeline.console_tail, timeline.console_tail
    return result


def check_diagnosis(result: BootResult, entry: CatalogFault) -> None:
    """The diagnosis names the entry's cause (checked last: the fixed boot runs anyway)."""
    assert result.diagnosis is not None, "BootRun diagnoses every boot"
    assert entry.cause in result.diagnosis.codes, result.diagnosis.render()


def boot_fixed(boot_scenario: Any, entry: CatalogFault) -> BootResult:
    result = boot_scenario(entry.fixed_for(find_case(entry.scenario)))
    assert result.ok, (f"stage {result.timeline.failed_stage}: {result.timeline.failure}\n"
                       f"{result.timeline.console_tail}")
    return result


def test_initrd_no_nic_driver(boot_scenario: Any) -> None:
    entry = get_fault("initrd-no-nic-driver")
    result = boot_faulted(boot_scenario, entry)
    tail = result.timeline.console_tail
    assert "pxelab-init: PANIC link: no devices to configure" in tail, tail
    assert "virtio_net" not in tail.split("it has:", 1)[1].split(")", 1)[0], tail
    boot_fixed(boot_scenario, entry)
    check_diagnosis(result, entry)


@pytest.mark.parametrize("modules", ["netboot", "most"])
def test_initramfs_tools_no_nic_driver(boot_scenario: Any, modules: str) -> None:
    entry = get_fault("initramfs-tools-no-nic-driver")
    faulted = apply_faults(find_case(entry.scenario), [f"{entry.name}={modules}"])
    assert faulted.payload.initramfs is Initramfs.INITRAMFS_TOOLS
    result = boot_faulted(boot_scenario, entry, f"{entry.name}={modules}")
    tail = result.timeline.console_tail
    assert "Begin: Mounting root file system" in tail or result.timeline.seconds("initramfs")
    assert "ipconfig: no devices to configure" in tail, tail
    if modules == "netboot":  # one fixed boot serves both: the fix is the same
        boot_fixed(boot_scenario, entry)
    check_diagnosis(result, entry)
