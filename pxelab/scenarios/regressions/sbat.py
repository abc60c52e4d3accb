"""Area ``secureboot``, SBAT: an update raised the machine's SbatLevel past its GRUB.

- ``sb-sbat-revoked``: the guest's NVRAM holds an SbatLevel one GRUB generation past
  the newest published level (rhboot/shim SbatLevel_Variable.txt: ``grub,5`` since
  2025021800), as a firmware, shim or Windows update for later GRUB CVEs leaves it.
  shim 16.1 keeps it (its date is newer than shim's built-in level) and refuses
  Debian 12's signed GRUB 2.06, whose ``.sbat`` says ``grub,5``: "Verification
  failed: (0x1A) Security Violation". Debian 13's signed GRUB 2.12 says ``grub,7``
  and boots under the same level: that is the fixed configuration.

The entry applies where the firmware set's signed GRUB is revoked by the level
(bookworm's, sid's 2.14-4 with ``grub,5``); on trixie it says so instead of booting
a case that would pass.
"""

from __future__ import annotations

from dataclasses import replace

from pxelab.machine.fwsets import FirmwareSet
from pxelab.machine.sbat import SbatLevel, parse_sbat_section, read_sbat
from pxelab.scenarios.cases import BootLoader, Scenario
from pxelab.scenarios.regressions.registry import Regression, register

__all__ = ["REVOKING_LEVEL", "SBAT_REVOKED"]

# Newer than shim 16.1's built-in levels (automatic 2025021800, latest 2025051000), so
# shim keeps it; shim,4 as every published level since 2024010900 (shim 16.1 is shim,4).
REVOKING_LEVEL = SbatLevel("2026010100", (("shim", 4), ("grub", 6)))
# A signed GRUB the level lets through, for the fixed configuration.
FIXED_FIRMWARE_SET = "trixie"


def _with_level(scenario: Scenario, argument: str | None = None) -> Scenario:
    return replace(scenario, guest=replace(scenario.guest, sbat_level=REVOKING_LEVEL))


def _newer_grub(scenario: Scenario) -> Scenario:
    """The same SbatLevel, booting Debian 13's signed GRUB (grub,7)."""
    return replace(_with_level(scenario), firmware_set=FIXED_FIRMWARE_SET)


def _grub_revoked(scenario: Scenario, fwset: FirmwareSet) -> str | None:
    """Why the level would let ``scenario``'s GRUB on ``fwset`` through, or None."""
    if not scenario.guest.secure_boot or scenario.loader is not BootLoader.SHIM_GRUB:
        return ("SBAT is shim's check of the GRUB it loads under Secure Boot: pick a "
                "..._secureboot case")
    grub = fwset.locate("grubnetx64.efi")
    entries = parse_sbat_section(read_sbat(grub))
    if REVOKING_LEVEL.revokes(entries):
        return None
    carried = " ".join(e.describe() for e in entries) or "no .sbat section"
    return (f"its signed GRUB ({carried}) passes SbatLevel {REVOKING_LEVEL.describe()}; "
            "pick a firmware set with an older GRUB (bookworm)")


SBAT_REVOKED = Regression(
    name="sb-sbat-revoked",
    summary=f"the NVRAM's SbatLevel ({REVOKING_LEVEL.describe()}) revokes Debian 12's "
            "signed GRUB (grub,5): shim refuses it with a Security Violation",
    scenario="uefi_tftp_ipv4_secureboot",
    stage="bootloader",
    cause="secureboot.sbat_revoked",
    apply=_with_level,
    fixed=_newer_grub,
    precondition=_grub_revoked,
    report="network boot stops after a firmware/BIOS or Windows update with Secure Boot on: "
           "shim prints 'Verification failed: (0x1A) Security Violation' for grubx64.efi "
           "although it is the distribution's signed GRUB (SBAT revocation)",
)

register(SBAT_REVOKED)
