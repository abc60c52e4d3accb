"""Regressions, Secure Boot area: shim and the signed GRUB refusing, or not finding, what
they are given; each reproduced, named, and fixed.

Each test boots uefi_tftp_ipv4_secureboot with the fault (the stage ends on shim's or
GRUB's own line at once, not on a timeout) and fixed (it reaches userspace with Secure
Boot enforced). The fixed boots of the two unsigned-binary entries are one boot: the
scenario as it is.

    pytest tests/boot/test_regress_secureboot.py -p no:cacheprovider
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from regress import FixedBoots, boot_as_recorded

from pxelab.core.events import Event
from pxelab.lab import BootResult
from pxelab.machine import pe
from pxelab.machine.payload import build_payload
from pxelab.scenarios.matrix import find_case
from pxelab.scenarios.regressions import get_regression

pytestmark = [pytest.mark.qemu, pytest.mark.netns, pytest.mark.slow]

_FIXED = FixedBoots()
# The console line ends the stage: the verdict comes within a second or two of it.
PROMPT = 5.0


def tftp(result: BootResult, kind: str, file: str | None = None) -> list[Event]:
    return [e for e in result.events if e.source == "tftp" and e.kind == kind
            and (file is None or e.file.lstrip("/") == file)]


def served(result: BootResult, name: str) -> bytes:
    return (result.artifacts / "data" / name).read_bytes()


def ended_on_the_console(result: BootResult, line: str) -> None:
    timeline = result.timeline
    assert line in (timeline.failure or ""), timeline.failure
    assert timeline.ended_by == "console"
    assert timeline.verdict_latency is not None and timeline.verdict_latency < PROMPT


def test_sb_unsigned_grub(boot_scenario: Any) -> None:
    entry = get_regression("sb-unsigned-grub")
    result = boot_as_recorded(boot_scenario, entry)
    # The quote is the dialog's row, without its frame.
    ended_on_the_console(result, "(console: 'Verification failed: (0x1A) Security Violation')")
    assert tftp(result, "sent", "shimx64.efi") and tftp(result, "sent", "grubx64.efi")
    assert not pe.is_signed(served(result, "grubx64.efi"))
    assert result.diagnosis is not None and result.diagnosis.cause is not None
    cause = result.diagnosis.cause
    assert "refused grubx64.efi" in cause.summary and "no Authenticode" in cause.summary
    fixed = _FIXED.boot(boot_scenario, entry)
    assert fixed.timeline.seconds("secure_boot") is not None


def test_sb_unsigned_kernel(boot_scenario: Any, pxelab_cache_dir: Path) -> None:
    entry = get_regression("sb-unsigned-kernel")
    result = boot_as_recorded(boot_scenario, entry)
    ended_on_the_console(result, "error: bad shim signature")
    assert result.timeline.seconds("bootloader") is not None, "shim started the signed GRUB"
    assert tftp(result, "sent", "vmlinuz")
    assert result.diagnosis is not None and result.diagnosis.cause is not None
    assert "GRUB loaded vmlinuz" in result.diagnosis.cause.summary
    # The payload kernel is Debian's signed one; the fault served it without its table.
    payload = build_payload(find_case(entry.scenario).payload, pxelab_cache_dir)  # cached
    signed = payload.kernel.read_bytes()
    assert pe.is_signed(signed)
    assert served(result, "vmlinuz") == pe.strip_signature(signed)
    _FIXED.boot(boot_scenario, entry)


def test_sb_second_stage_path(boot_scenario: Any) -> None:
    entry = get_regression("sb-second-stage-path")
    result = boot_as_recorded(boot_scenario, entry)
    ended_on_the_console(result, "Unable to fetch TFTP image")
    assert tftp(result, "sent", "efi/boot/shimx64.efi")
    # shim 16.1 asks beside itself, not at the root where grubx64.efi is.
    assert tftp(result, "not_found", "efi/boot/grubx64.efi")
    assert not tftp(result, "rrq", "grubx64.efi")
    assert result.diagnosis is not None and result.diagnosis.cause is not None
    summary = result.diagnosis.cause.summary
    assert "efi/boot/grubx64.efi was not found" in summary and "only as grubx64.efi" in summary
    fixed = _FIXED.boot(boot_scenario, entry)
    assert tftp(fixed, "sent", "efi/boot/grubx64.efi")
