"""Diagnosis rule for UEFI firmware that offers no network boot at all: no RNG device.

EDK2 from edk2-stable202405 on (the CVE-2023-45237 fix: TCP sequence numbers and
DHCP transaction ids from a real random source) does not install its network boot
options when the machine has no EFI_RNG_PROTOCOL (edk2 issue 9530). OVMF then boots
whatever else it has: the EFI shell (Debian's 2025.02) or nothing ("No bootable
option or device was found", 2026.08). The guest sends no DHCP at all, which
:func:`pxelab.analysis.diagnosis.dhcp.no_discover` alone would blame on the boot order.
"""

from __future__ import annotations

import re

from pxelab.analysis.diagnosis import query as q
from pxelab.analysis.diagnosis.model import Cause
from pxelab.analysis.evidence import Evidence

# (year, month) of the first EDK2 stable tag that needs an RNG for network boot.
EDK2_NEEDS_RNG = (2024, 5)
# Debian versions the ovmf packages carry: [epoch:]YYYY.MM[+ds]-REVISION (the EDK2 tag).
_EDK2_VERSION = re.compile(r"^(?:\d+:)?(?P<year>\d{4})\.(?P<month>\d{2})\b")
# Debian binary packages built from EDK2 that hold OVMF (sid moved the files to
# ovmf-generic).
OVMF_PACKAGES = ("ovmf", "ovmf-generic")


def edk2_release(version: str) -> tuple[int, int] | None:
    """(year, month) of the EDK2 stable tag a Debian OVMF version is built from."""
    found = _EDK2_VERSION.match(version)
    return (int(found["year"]), int(found["month"])) if found else None


def _rng_era_ovmf(packages: dict[str, str]) -> tuple[str, str] | None:
    """(package, version) of OVMF from edk2-stable202405 on, if that is what ran."""
    for package in OVMF_PACKAGES:
        release = edk2_release(packages.get(package, ""))
        if release is not None and release >= EDK2_NEEDS_RNG:
            return package, packages[package]
    return None


def no_rng_device(evidence: Evidence) -> Cause | None:
    """OVMF >= edk2-stable202405 without an RNG device never started a network boot."""
    facts = evidence.facts
    if facts.firmware != "ovmf" or facts.rng_device:
        return None
    ovmf = _rng_era_ovmf(facts.firmware_packages)
    if ovmf is None or not q.network_boot_never_started(evidence):
        return None
    package, version = ovmf
    return Cause(
        "firmware.no_rng_device", evidence.timeline.failed_stage or "firmware",
        f"no RNG device: EDK2 >= stable202405 ({package} {version}) hides its network boot "
        "options without EFI_RNG_PROTOCOL, so the firmware never started a network boot "
        "(no DHCPv4 DISCOVER, no DHCPv6 Solicit)",
        q.lines(evidence, [*q.events(evidence, "server", "ready")[:1],
                           *evidence.timeline.hits[-2:]]),
        "give the guest an RNG device: QEMU -device virtio-rng-pci (pxelab: GuestSpec.rng, "
        "on by default); on hardware, firmware that provides EFI_RNG_PROTOCOL (RDRAND, TPM)")
