"""Area ``firmware``: the firmware itself offers no network boot.

- ``no-rng``: a machine without an RNG device. EDK2 from edk2-stable202405 on
  (the CVE-2023-45237 fix) starts no network stack without EFI_RNG_PROTOCOL, so
  OVMF has no PXE or HTTP boot option at all (tianocore/edk2 issue 9530) and boots
  what else it has: Debian 13's 2025.02 the UEFI shell, sid's 2026.08 nothing ("No
  bootable option or device was found"). Not a DHCP fault: the guest sends no DHCP.

The failure is a firmware release's, so the entry applies only where that release
runs (:data:`~pxelab.scenarios.regressions.registry.Precondition`): on an older
OVMF (Debian 12's 2022.11) the same machine boots, and the entry says so instead
of booting a case that would pass.
"""

from __future__ import annotations

from dataclasses import replace

from pxelab.machine.edk2 import NEEDS_RNG, ovmf_release
from pxelab.machine.fwsets import FirmwareSet
from pxelab.scenarios.cases import Scenario
from pxelab.scenarios.regressions.registry import Regression, register

__all__ = ["NO_RNG"]


def _without_rng(scenario: Scenario, argument: str | None) -> Scenario:
    return replace(scenario, guest=replace(scenario.guest, rng=False))


def _needs_rng(scenario: Scenario, fwset: FirmwareSet) -> str | None:
    """Why a machine without an RNG device would boot ``scenario`` on ``fwset`` anyway."""
    firmware = scenario.guest.firmware
    if not firmware.is_uefi():
        return (f"{firmware} needs no RNG device for network boot; the trap is OVMF's "
                "(EDK2): pick a uefi_... case")
    release = ovmf_release(fwset.versions(["ovmf-code"]))
    if release is None or release.needs_rng():
        return None  # that release has the trap, or a build we cannot date: try it
    return (f"OVMF {release} predates {NEEDS_RNG.tag}, which made network boot need an "
            "RNG device; pick a firmware set with a newer OVMF (trixie, sid)")


NO_RNG = Regression(
    name="no-rng",
    summary=f"the machine has no RNG device: OVMF from {NEEDS_RNG.tag} on (firmware sets "
            "trixie, sid) offers no network boot at all (edk2 issue 9530)",
    scenario="uefi_http_ipv4",
    stage="firmware",
    cause="firmware.no_rng_device",
    apply=_without_rng,
    precondition=_needs_rng,
    report="PXE and HTTP boot options gone from the UEFI boot menu after a firmware "
           "update: OVMF boots straight into the EFI shell (or 'No bootable option or "
           "device was found') and sends no DHCP; QEMU VM without -device virtio-rng-pci",
)

register(NO_RNG)
