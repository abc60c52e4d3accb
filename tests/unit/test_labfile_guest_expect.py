"""Lab files that boot the user's own system: a guest's own ``expect``, initramfs-tools'
milestone table up to the root mount, the kernel version the guest printed."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from pxelab.core.errors import ConfigError
from pxelab.lab import booted_kernel
from pxelab.labfile.expand import lab_cases
from pxelab.labfile.parse import load_lab_file
from pxelab.machine.console import MilestoneHit, Timeline

pytestmark = pytest.mark.unit

LAB = """
[[guest]]
mode = "legacy_pxe"
nic_models = ["virtio-net-pci"]

[[guest]]
mode = "legacy_pxe"
name = "no-driver"
nic_models = ["e1000"]
{expect}

[nfs]
root = "root"
nfsv3 = true

[success]
stages = ["firmware", "initramfs_tools"]
console = "live: up"
"""


def _lab(tmp_path: Path, expect: str) -> Path:
    (tmp_path / "root").mkdir()
    path = tmp_path / "live.pxelab.toml"
    path.write_text(LAB.format(expect=expect), encoding="utf-8")
    return path


def test_guest_expect_applies_to_that_guest_only(tmp_path: Path) -> None:
    path = _lab(tmp_path, 'expect = { stage = "initramfs_dhcp", '
                          'cause = "initrd.no_network_driver" }')
    virtio, e1000 = lab_cases(load_lab_file(path))
    assert virtio.system is not None and e1000.system is not None
    assert (virtio.system.expect_stage, virtio.system.expect_cause) == (None, None)
    assert (e1000.system.expect_stage, e1000.system.expect_cause) == (
        "initramfs_dhcp", "initrd.no_network_driver")
    assert "no-driver" in e1000.name


@pytest.mark.parametrize(("expect", "words"), [
    ('expect = "initramfs_dhcp"', "guest[2].expect"),
    ('expect = { stag = "initramfs_dhcp" }', "guest[2].expect.stag: unknown key; did you "
                                              "mean 'stage'"),
])
def test_guest_expect_mistakes_name_the_key(tmp_path: Path, expect: str, words: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(words)):
        load_lab_file(_lab(tmp_path, expect))


def test_initramfs_tools_table_ends_at_the_root_mount(tmp_path: Path) -> None:
    """The root is the user's: their success pattern, not pxelab's marker, ends the boot."""
    case = lab_cases(load_lab_file(_lab(tmp_path, "")))[0]
    names = [milestone.name for milestone in case.milestones]
    assert names[-3:] == ["initramfs_dhcp", "nfs_root", "success"]
    assert "userspace" not in names


def test_a_lab_files_own_kernel_is_recorded_as_it_printed_it() -> None:
    timeline = Timeline("live", hits=[
        MilestoneHit("firmware", 0.1, "SeaBIOS (version 1.16.2)"),
        MilestoneHit("kernel", 3.3, "Linux version 6.1.0-57-cloud-amd64 (debian-kernel@...)")])
    assert booted_kernel(timeline) == "6.1.0-57-cloud-amd64"
    assert booted_kernel(Timeline("live")) is None
