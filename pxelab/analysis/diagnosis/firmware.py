"""Diagnosis rule for UEFI firmware that offers no network boot at all: no RNG device.

EDK2 from edk2-stable202405 on (the CVE-2023-45237 fix: TCP sequence numbers and
DHCP transaction ids from a real random source) does not install its network boot
options when the machine has no EFI_RNG_PROTOCOL (edk2 issue 9530;
:mod:`pxelab.machine.edk2`). OVMF then boots whatever else it has: the EFI shell
(Debian's 2025.02) or nothing ("No bootable option or device was found", 2026.08).
The guest sends no DHCP at all, which :func:`pxelab.analysis.diagnosis.dhcp.no_discover`
alone would blame on the boot order.
"""

from __future__ import annotations

from pxelab.analysis.diagnosis import query as q
from pxelab.analysis.diagnosis.model import Cause
from pxelab.analysis.evidence import Evidence
from pxelab.machine.edk2 import NEEDS_RNG, Edk2Release, ovmf_release


def _summary(release: Edk2Release) -> str:
    """The cause in one line: ``OVMF 2025.02 shows no network boot option: ...``."""
    return (f"OVMF {release} shows no network boot option: EDK2 from "
            f"{NEEDS_RNG.tag.removeprefix('edk2-')} on needs an RNG device")


def no_rng_device(evidence: Evidence) -> Cause | None:
    """OVMF >= edk2-stable202405 without an RNG device never started a network boot."""
    facts = evidence.facts
    if facts.firmware != "ovmf" or facts.rng_device:
        return None
    release = ovmf_release(facts.firmware_packages)
    if release is None or not release.needs_rng() or not q.network_boot_never_started(evidence):
        return None
    return Cause(
        "firmware.no_rng_device", evidence.timeline.failed_stage or "firmware",
        _summary(release),
        q.lines(evidence, [*q.events(evidence, "server", "ready")[:1],
                           *evidence.timeline.hits[-2:]]),
        "give the guest an RNG device: QEMU -device virtio-rng-pci (pxelab: GuestSpec.rng, "
        "on by default); on hardware, firmware that provides EFI_RNG_PROTOCOL (RDRAND, TPM)")
