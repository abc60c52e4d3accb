"""A user's own firmware build: a set file that names their OVMF over a Debian base set.

The "own build" here is Debian 13's OVMF 2025.02 put over the bookworm set, as an
EDK2 CI's output would be: the guest must boot with exactly those files, and the
result must record the user's version for OVMF and the base set's for the rest.

    pytest tests/boot/test_firmware_sets.py
"""

from __future__ import annotations

import shutil
from dataclasses import replace
from pathlib import Path

import pytest

from pxelab.machine.fwsets import load_firmware_set
from pxelab.pytest_plugin import BootFactory
from pxelab.scenarios.matrix import find_case

pytestmark = [pytest.mark.qemu, pytest.mark.netns, pytest.mark.slow]

SET_FILE = """\
name = "edk2-ci"
base = "bookworm"
[files.ovmf-code]
path = "build/OVMF_CODE_4M.fd"
version = "edk2 ci build 42"
[files.ovmf-vars]
path = "build/OVMF_VARS_4M.fd"
version = "edk2 ci build 42"
"""


def test_a_user_ovmf_over_a_debian_set(boot_scenario: BootFactory, tmp_path: Path,
                                       pxelab_cache_dir: Path) -> None:
    donor = load_firmware_set("trixie", pxelab_cache_dir).ovmf()
    (tmp_path / "build").mkdir()
    shutil.copyfile(donor.code, tmp_path / "build/OVMF_CODE_4M.fd")
    shutil.copyfile(donor.vars_template, tmp_path / "build/OVMF_VARS_4M.fd")
    set_file = tmp_path / "edk2-ci.toml"
    set_file.write_text(SET_FILE)

    result = boot_scenario(replace(find_case("uefi_http_ipv4"), firmware_set=str(set_file)))

    assert result.ok, result.timeline.render()
    command = (result.artifacts / "qemu-cmdline.txt").read_text()
    assert f"file={tmp_path}/build/OVMF_CODE_4M.fd" in command
    props = result.timeline.properties
    assert props["firmware_set"] == "edk2-ci"
    assert props["firmware_set_origin"] == str(set_file)
    assert props["packages"]["ovmf"] == f"edk2 ci build 42 ({set_file})"
    bookworm = load_firmware_set("bookworm", pxelab_cache_dir)
    assert props["packages"]["qemu-system-x86"]  # the host's: QEMU is never a set's
    assert result.evidence is not None
    assert result.evidence.facts.firmware_set == "edk2-ci"
    assert f"--firmware-set {set_file}" in result.evidence.facts.reproduce
    assert bookworm.version_of("ovmf") not in props["packages"].values()
