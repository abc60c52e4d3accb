"""Regressions, initrd area: an initramfs without the NIC's driver, reproduced and fixed.

Each test boots the recorded case with the fault (the kernel and initramfs run,
no network device appears, the console says so and the kernel panics, or Debian 13's
initramfs-tools retries the NFS mount: the field report's picture) and fixed (it
reaches userspace on the NFS root).

    pytest tests/boot/test_regress_initrd.py -k no_nic \\
        -p no:cacheprovider --pxelab-artifacts /tmp/art
"""

from __future__ import annotations

from typing import Any

import pytest
from regress import FixedBoots, assert_diagnosed, assert_failed_at_stage, faulted_case

from pxelab.lab import BootResult
from pxelab.machine.payload import Initramfs
from pxelab.scenarios.regressions import Regression, get_regression

pytestmark = [pytest.mark.qemu, pytest.mark.netns, pytest.mark.slow]

PANIC = "Kernel panic - not syncing"
# Debian 13's initramfs-tools (the host's mkinitramfs builds that initrd) no longer
# panics when nfsmount fails: it retries the mount, and the stage ends on that line.
NFS_RETRY = "Begin: Retrying nfs mount"
_FIXED = FixedBoots()


def boot_faulted(boot_scenario: Any, entry: Regression, argument: str | None = None,
                 gave_up: tuple[str, ...] = (PANIC,)) -> BootResult:
    """Boot the entry's case with the fault; check the stage and how the initramfs gave up
    (one of ``gave_up`` on the console).

    The diagnosis is checked last (assert_diagnosed): the fixed boot runs anyway.
    """
    result = boot_scenario(faulted_case(entry, argument))
    assert_failed_at_stage(result, entry)
    timeline = result.timeline
    assert timeline.seconds("initramfs") is not None, "the initramfs ran"
    assert any(line in timeline.console_tail for line in gave_up), timeline.console_tail
    return result


def test_initrd_no_nic_driver(boot_scenario: Any) -> None:
    entry = get_regression("initrd-no-nic-driver")
    result = boot_faulted(boot_scenario, entry)
    tail = result.timeline.console_tail
    assert "pxelab-init: PANIC link: no devices to configure" in tail, tail
    assert "virtio_net" not in tail.split("it has:", 1)[1].split(")", 1)[0], tail
    _FIXED.boot(boot_scenario, entry)
    assert_diagnosed(result, entry)


@pytest.mark.parametrize("modules", ["netboot", "most"])
def test_initramfs_tools_no_nic_driver(boot_scenario: Any, modules: str) -> None:
    entry = get_regression("initramfs-tools-no-nic-driver")
    assert faulted_case(entry, modules).payload.initramfs is Initramfs.INITRAMFS_TOOLS
    result = boot_faulted(boot_scenario, entry, modules, gave_up=(PANIC, NFS_RETRY))
    tail = result.timeline.console_tail
    assert "Begin: Mounting root file system" in tail or result.timeline.seconds("initramfs")
    assert "ipconfig: no devices to configure" in tail, tail
    if modules == "netboot":  # one fixed boot serves both: the fix is the same
        _FIXED.boot(boot_scenario, entry)
    assert_diagnosed(result, entry)
