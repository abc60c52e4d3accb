"""Regressions, TFTP/syslinux area: each field failure reproduced, named, and fixed.

Each test boots the recorded case with the fault (the boot fails at the
entry's stage, with the console text and server events a person sees in the
field) and fixed (it reaches userspace). Identical fixed boots are booted once
per module ("legacy_pxe_ipv4 as it is" serves three entries).

    pytest tests/boot/test_regress_tftp.py -k ldlinux_missing
"""

from __future__ import annotations

from typing import Any

import pytest
from regress import FixedBoots, boot_as_recorded

from pxelab.core.events import Event
from pxelab.lab import BootResult
from pxelab.scenarios.regressions import get_regression

pytestmark = [pytest.mark.qemu, pytest.mark.netns, pytest.mark.slow]

_FIXED = FixedBoots()


def tftp(result: BootResult, kind: str, file: str | None = None) -> list[Event]:
    return [e for e in result.events if e.source == "tftp" and e.kind == kind
            and (file is None or e.file.lstrip("/") == file)]


def injected(result: BootResult) -> list[Event]:
    return [e for e in result.events if e.source == "fault" and e.kind == "injected"]


def test_ldlinux_missing(boot_scenario: Any) -> None:
    entry = get_regression("ldlinux-missing")
    result = boot_as_recorded(boot_scenario, entry)
    timeline = result.timeline
    assert timeline.seconds("bootloader") is not None, "PXELINUX started"
    assert "Failed to load ldlinux.c32" in timeline.console_tail
    assert tftp(result, "sent", "pxelinux.0")
    missing = [e.file for e in tftp(result, "not_found")]
    assert missing and missing[0] == "ldlinux.c32", missing
    assert [e.reason for e in injected(result)] == ["remove ldlinux.c32 from the data root"]
    _FIXED.boot(boot_scenario, entry)


def test_ldlinux_foreign(boot_scenario: Any) -> None:
    entry = get_regression("ldlinux-foreign")
    result = boot_as_recorded(boot_scenario, entry)
    assert "Failed to load ldlinux.c32" in result.timeline.console_tail
    assert [e.reason for e in injected(result)] == [
        "replace ldlinux.c32 with ldlinux.e64 of the syslinux efi64 build"]
    # PXELINUX read the ELF headers, found them foreign and closed the transfer (ERROR 0),
    # then looked for ldlinux.c32 in its fallback directories.
    (closed,) = tftp(result, "aborted", "ldlinux.c32")
    assert "client sent ERROR 0" in closed.reason
    assert tftp(result, "rrq", "boot/isolinux/ldlinux.c32")
    _FIXED.boot(boot_scenario, entry)


def test_ldlinux_rrq_dropped(boot_scenario: Any) -> None:
    entry = get_regression("ldlinux-rrq-dropped")
    result = boot_as_recorded(boot_scenario, entry)
    timeline = result.timeline
    assert timeline.seconds("bootloader") is not None, "PXELINUX started"
    assert timeline.ended_by == "guard:request.unanswered", "a silent wait, ended live"
    assert tftp(result, "sent", "pxelinux.0")
    # PXELINUX kept asking; the server heard every RRQ and answered none.
    dropped = [e for e in injected(result) if e.request.startswith("tftp.rrq")]
    assert len(dropped) >= 3 and all("ldlinux.c32" in e.request for e in dropped)
    assert not [e for e in result.events if e.source == "tftp"
                and "ldlinux.c32" in e.file]
    _FIXED.boot(boot_scenario, entry)


def test_tftp_blksize_mtu(boot_scenario: Any) -> None:
    entry = get_regression("tftp-blksize-mtu")
    result = boot_as_recorded(boot_scenario, entry)
    assert "Connection timed out" in result.timeline.console_tail
    # The server agreed to iPXE's blksize 1432 (its own link is 1500 bytes) and not one
    # DATA block of pxelinux.0 got across the 1200-byte hop.
    (oack,) = tftp(result, "oack", "pxelinux.0")
    assert oack.details["options"]["blksize"] == "1432"
    assert not tftp(result, "sent", "pxelinux.0")
    if result.evidence is not None:
        assert result.evidence.facts.link_mtu == 1200
    _FIXED.boot(boot_scenario, entry)


def test_oack_malformed(boot_scenario: Any) -> None:
    entry = get_regression("oack-malformed")
    result = boot_as_recorded(boot_scenario, entry)
    assert "PXE-E99" in result.timeline.console_tail
    (oack,) = tftp(result, "oack", "syslinux.efi")
    assert oack.details["fault"] == "corrupt"
    assert not tftp(result, "sent", "syslinux.efi"), "no DATA after a malformed OACK"
    # OVMF queues its ERROR and ends the session at once: in about one boot in fifteen
    # the ERROR never reaches the wire, and the transfer ends when the server stops.
    (ended,) = tftp(result, "aborted", "syslinux.efi") or tftp(result, "error", "syslinux.efi")
    assert "client sent ERROR" in ended.reason or "server is stopping" in ended.reason
    _FIXED.boot(boot_scenario, entry)


def test_oack_extra_option(boot_scenario: Any) -> None:
    entry = get_regression("oack-extra-option")
    result = boot_as_recorded(boot_scenario, entry)
    assert "Failed to load ldlinux.e64" in result.timeline.console_tail
    # OVMF took the NBP's OACK with timeout=5 in it; syslinux refused ldlinux.e64's.
    assert tftp(result, "sent", "syslinux.efi")
    oacks = tftp(result, "oack", "ldlinux.e64")
    assert oacks and all(e.details["fault"] == "add-option" for e in oacks)
    assert "timeout" not in oacks[0].details["requested"]
    (aborted, *_) = tftp(result, "aborted", "ldlinux.e64")
    assert "TFTP protocol error" in aborted.reason
    _FIXED.boot(boot_scenario, entry)
