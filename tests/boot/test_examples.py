"""Each example lab file, broken the way a site breaks it, fails with the right stage
and cause (the working examples themselves are collected from examples/ as tests)."""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import pytest

from pxelab.labfile import lab_cases, load_lab_file
from pxelab.pytest_plugin import BootFactory
from pxelab.scenarios.edits import LabEdit, RemoveFile, ReplaceText

pytestmark = [pytest.mark.qemu, pytest.mark.netns, pytest.mark.slow]

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


@dataclass(frozen=True)
class Broken:
    lab: str  # examples/<lab>/<lab>.pxelab.toml
    case: str
    edit: LabEdit
    stage: str
    cause: str


BROKEN = (
    Broken("pxelinux-menu", "legacy_pxe_ipv4",
           ReplaceText("pxelinux.cfg/default", "/vmlinuz", "/vmlinux"), "kernel",
           "file.not_found"),
    # dnsmasq's own TFTP server says "file not found": the cause from the wire alone.
    Broken("dnsmasq", "legacy_pxe_ipv4",
           ReplaceText("pxelinux.cfg/default", "KERNEL vmlinuz", "KERNEL vmlinux"), "kernel",
           "file.not_found"),
    Broken("debian-installer", "legacy_pxe_ipv4-d-i", RemoveFile("ldlinux.c32"), "menu",
           "file.not_found"),
    Broken("debian-installer", "uefi_tftp_ipv4-d-i",
           RemoveFile("debian-installer/amd64/grubx64.efi"), "bootloader", "file.not_found"),
    # With real daemons: the cause comes from the capture and nginx's log alone.
    Broken("classic-stack", "uefi_http_ipv6", RemoveFile("script.ipxe"), "menu",
           "file.not_found"),
)


@pytest.mark.parametrize("broken", BROKEN, ids=lambda b: f"{b.lab}-{b.case}")
def test_broken_example_names_stage_and_cause(boot_scenario: BootFactory,
                                              broken: Broken) -> None:
    lab = load_lab_file(EXAMPLES / broken.lab / f"{broken.lab}.pxelab.toml")
    case = next(c for c in lab_cases(lab) if c.name == broken.case)
    result = boot_scenario(replace(case, edits=(broken.edit,)))
    assert not result.ok
    assert result.timeline.failed_stage == broken.stage, result.timeline.failure
    assert result.diagnosis is not None and result.diagnosis.cause is not None
    assert result.diagnosis.cause.code == broken.cause, result.diagnosis.cause
