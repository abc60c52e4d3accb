"""Area ``secureboot``: shim and the signed GRUB refusing what they are given, or not finding it.

The field reports behind the entries, on machines with Secure Boot enforced that
network-boot shim -> GRUB -> kernel:

- ``sb-unsigned-grub``: a self-built GRUB (``grub-mkimage``) put where shim fetches
  its second stage. shim loads it, finds no signature it trusts and says "Verification
  failed: (0x1A) Security Violation".
- ``sb-unsigned-kernel``: a kernel without a signature (a custom build, or one whose
  signature a packaging step lost) behind the signed GRUB, which asks shim to verify
  it and stops with "bad shim signature".
- ``sb-second-stage-path``: shim under a directory of the TFTP root, its second stage
  only at the root. shim asks for grubx64.efi in its own directory (the directory
  of the boot file DHCP named), gets "file not found" and gives up.

The fixed configurations: the distribution's signed GRUB and kernel (the scenario as it
is), and shim with grubx64.efi beside it in its directory.
"""

from __future__ import annotations

import posixpath
from dataclasses import replace

from pxelab.core.errors import ConfigError
from pxelab.machine import nbp
from pxelab.machine.fwsets import load_firmware_set
from pxelab.scenarios.cases import BootLoader, BootMode, Scenario
from pxelab.scenarios.edits import RenameFile
from pxelab.scenarios.regressions.registry import Regression, register, with_faults
from pxelab.server.faults import RemoveFile, ReplaceFile, StripSignature

SHIM = BootLoader.SHIM_GRUB.nbp
SECOND_STAGE = "grubx64.efi"  # shim's DEFAULT_LOADER in Debian's build
KERNEL = "vmlinuz"
# Where the path entry puts shim: the removable-media path, as a copy of an ESP's tree.
SHIM_DIRECTORY = "efi/boot"


def _check_shim(scenario: Scenario, fault: str) -> None:
    if scenario.loader is not BootLoader.SHIM_GRUB:
        raise ConfigError(f"fault {fault!r} needs a case that boots shim and the signed GRUB "
                          f"(a ..._secureboot case), not {scenario.name} ({scenario.loader})")


# -- pxelab's own unsigned GRUB as shim's second stage ---------------------------------------

def _unsigned_grub(scenario: Scenario, argument: str | None) -> Scenario:
    _check_shim(scenario, "sb-unsigned-grub")
    fwset = load_firmware_set(scenario.firmware_set)
    image = nbp.build_grub_image(fwset=fwset)
    return with_faults(scenario, ReplaceFile(
        SECOND_STAGE, image.path, origin="pxelab's unsigned grub-mkimage build"))


# -- the kernel without its signature -------------------------------------------------------

def _unsigned_kernel(scenario: Scenario, argument: str | None) -> Scenario:
    _check_shim(scenario, "sb-unsigned-kernel")
    return with_faults(scenario, StripSignature(KERNEL))


# -- the second stage where shim does not look ------------------------------------------------

def _shim_in_directory(scenario: Scenario) -> Scenario:
    """``scenario`` whose DHCP answers name shim under :data:`SHIM_DIRECTORY`."""
    if scenario.mode is not BootMode.UEFI_TFTP:
        raise ConfigError(f"fault 'sb-second-stage-path' moves shim within the TFTP root; "
                          f"{scenario.name} boots over {scenario.mode}: pick "
                          "uefi_tftp_ipv4_secureboot")
    rules = tuple(replace(rule, boot_file=posixpath.join(SHIM_DIRECTORY, SHIM))
                  if rule.boot_file == SHIM else rule for rule in scenario.rules)
    if rules == scenario.rules:
        raise ConfigError(f"scenario {scenario.name} has no rule naming {SHIM} as the boot "
                          "file to move")
    return replace(scenario, rules=rules)


def _second_stage_elsewhere(scenario: Scenario, argument: str | None) -> Scenario:
    _check_shim(scenario, "sb-second-stage-path")
    moved = _shim_in_directory(scenario)
    shim = load_firmware_set(scenario.firmware_set).locate("shimx64.efi")
    return with_faults(moved, ReplaceFile(posixpath.join(SHIM_DIRECTORY, SHIM), shim,
                                          origin="shim-signed's shimx64.efi"),
                       RemoveFile(SHIM))


def _second_stage_beside(scenario: Scenario) -> Scenario:
    """The fix: shim in its directory with grubx64.efi beside it."""
    moved = _shim_in_directory(scenario)
    return replace(moved, edits=(
        *moved.edits, *(RenameFile(name, posixpath.join(SHIM_DIRECTORY, name))
                        for name in (SHIM, SECOND_STAGE))))


register(
    Regression(
        name="sb-unsigned-grub",
        summary="shim's second stage grubx64.efi is pxelab's own unsigned grub-mkimage "
                "build, not the distribution's signed GRUB",
        scenario="uefi_tftp_ipv4_secureboot", stage="bootloader",
        cause="secureboot.unsigned_second_stage",
        apply=_unsigned_grub,
        report="Secure Boot network boot stops right after shim: 'Verification failed: "
               "(0x1A) Security Violation' (a self-built GRUB behind shim)"),
    Regression(
        name="sb-unsigned-kernel",
        summary="the kernel GRUB loads is the payload kernel with its Authenticode "
                "signature taken off",
        scenario="uefi_tftp_ipv4_secureboot", stage="kernel_fetch",
        cause="secureboot.unsigned_kernel",
        apply=_unsigned_kernel,
        report="GRUB under Secure Boot: 'error: bad shim signature.' then 'you need to "
               "load the kernel first' (an unsigned or self-built kernel)"),
    Regression(
        name="sb-second-stage-path",
        summary=f"shim is under {SHIM_DIRECTORY}/ in the TFTP root, grubx64.efi only at "
                "the root, where shim does not look",
        scenario="uefi_tftp_ipv4_secureboot", stage="bootloader",
        cause="file.not_found",
        apply=_second_stage_elsewhere,
        fixed=_second_stage_beside,
        report="shim loads over PXE, then 'Unable to fetch TFTP image' / 'Failed to load "
               "image': it asks for grubx64.efi in its own directory"),
)
