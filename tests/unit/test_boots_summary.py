"""The pytest plugin's end-of-session line per boot (pxelab.pytest_plugin.boot_line) and
the junit properties it is made from (junit_properties)."""

from __future__ import annotations

from pathlib import Path

import pytest

from pxelab.lab import BootResult
from pxelab.machine.console import Timeline
from pxelab.pytest_plugin import boot_line, junit_properties

pytestmark = pytest.mark.unit


def test_a_boot_line_names_case_verdict_seconds_kernel_and_firmware() -> None:
    line = boot_line({"case": "uefi_http_ipv4", "ok": "True", "seconds_to_userspace": "12.34",
                      "kernel_version": "6.1.0-57-cloud-amd64", "payload_suite": "bookworm",
                      "package.ovmf": "2025.02-8+deb13u1", "package.qemu-system-x86": "1:10.0",
                      "package.linux-image-x": "not shown"})
    assert line.startswith("uefi_http_ipv4")
    assert " ok " in line and "12.3s" in line
    assert "kernel 6.1.0-57-cloud-amd64 (bookworm)" in line
    assert "ovmf 2025.02-8+deb13u1" in line and "qemu-system-x86 1:10.0" in line
    assert "not shown" not in line


def test_a_failed_boot_line_says_failed_and_has_no_seconds() -> None:
    line = boot_line({"case": "legacy_pxe_ipv4", "ok": "False", "seconds_to_userspace": ""})
    assert "FAILED" in line and " -  kernel ?" in line


def test_a_faulted_boot_line_names_its_faults_stage_and_cause() -> None:
    line = boot_line({"case": "legacy_pxe_ipv4", "ok": "False", "faults": "ldlinux-missing",
                      "failed_stage": "config", "cause": "file.not_found"})
    assert "--fault ldlinux-missing" in line
    assert "failed at config: file.not_found" in line


def test_junit_properties_carry_the_firmware_set_and_its_versions(tmp_path: Path) -> None:
    timeline = Timeline("uefi_http_ipv6", properties={
        "case": "uefi_http_ipv6", "firmware_set": "trixie", "firmware_set_origin": "Debian trixie",
        "seconds_to_userspace": 16.0, "packages": {"ovmf": "2025.02-8", "ipxe-qemu": "1.21.1"}})
    props = junit_properties(BootResult("uefi_http_ipv6", timeline, tmp_path, (), "nfs"))
    assert props["firmware_set"] == "trixie" and props["firmware_set_origin"] == "Debian trixie"
    assert props["package.ovmf"] == "2025.02-8" and props["package.ipxe-qemu"] == "1.21.1"
    assert "packages" not in props
    line = boot_line(props)  # what the end-of-session summary makes of them
    assert line.startswith("uefi_http_ipv6 @trixie") and "ovmf 2025.02-8" in line
