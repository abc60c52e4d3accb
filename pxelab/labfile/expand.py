"""A lab file's tests: each guest on each NIC model and firmware set, as scenarios.

A guest takes its machine (firmware, fw_cfg switches, NVRAM settings, NIC ROM) from
the built-in scenario of its mode and IP version, so ``mode = "uefi_http"`` with
``ip = "ipv6"`` boots as ``uefi_http_ipv6`` does; the data root, NFS root, boot
server and success pattern are the file's (:class:`~pxelab.scenarios.system.SystemUnderTest`).
"""

from __future__ import annotations

from dataclasses import replace

from pxelab.machine.console import Milestone
from pxelab.machine.fwsets import HOST
from pxelab.scenarios import milestones as ms
from pxelab.scenarios.cases import BootMode, IpVersion, Scenario, get_scenario

from .parse import GuestEntry, LabFile

# QEMU's NIC ROM is iPXE, and it says so (DHCP user class "iPXE"). A site's DHCP
# configuration that answers iPXE with its script, so that a chain-loaded iPXE does not
# load itself again, gives the ROM the script at once instead of an NBP.
ROM_FIRST_FILE = replace(
    ms.IPXE_ROM[-1], pattern=r"\S+ : \d+ bytes \[(?:PXE-NBP|script)\]",
    description="iPXE downloaded the network boot program (or, as iPXE, its script)")


def lab_cases(lab: LabFile, firmware_sets: tuple[str, ...] = ()) -> list[Scenario]:
    """Every test of ``lab``; ``firmware_sets`` (from the command line) replaces the
    guests' own lists when given."""
    found = []
    for guest in lab.guests:
        base = _guest_scenario(lab, guest)
        models = guest.nic_models or (base.nic_model, *get_scenario(guest.case).nic_variants)
        sets = firmware_sets or guest.firmware_sets or (HOST,)
        found += [replace(base.with_nic(model) if len(models) > 1 or model != base.nic_model
                          else base, firmware_set=name)
                  for model in models for name in sets]
    return found


def _guest_scenario(lab: LabFile, guest: GuestEntry) -> Scenario:
    builtin = get_scenario(guest.case)
    spec = builtin.guest
    if guest.memory_mib is not None:
        spec = replace(spec, memory_mib=guest.memory_mib)
    if guest.qemu_args:
        spec = replace(spec, extra_args=guest.qemu_args)
    if guest.mac is not None:
        spec = replace(spec, mac=guest.mac)
    name = guest.case + (f"-{guest.name}" if guest.name else "")
    system = lab.system
    if guest.expect is not None:
        stage, cause = guest.expect
        system = replace(system, expect_stage=stage, expect_cause=cause)
    return replace(builtin, name=name, description=lab.description or f"lab file {lab.path}",
                   guest=spec, milestones=lab_milestones(lab, guest),
                   rules=(), fetched=(), faults=(), edits=(), nic_variants=(), snp_only=None,
                   system=system, lab_name=lab.name, guests=guest.guests)


def lab_milestones(lab: LabFile, guest: GuestEntry) -> tuple[Milestone, ...]:
    """The firmware's table, the file's own milestones, the other built-in tables the
    file names (the OS's), then its success pattern."""
    ipv6 = guest.ip is IpVersion.IPV6
    # initramfs-tools' table up to the root mount: the root is the user's, so the file's
    # success pattern says what its userspace prints, not pxelab's marker.
    itools = tuple(m for m in ms.LINUX_INITRAMFS_TOOLS_NFSROOT if m.name != "userspace")
    tables = {"firmware": firmware_milestones(guest.mode, guest.ip),
              "pxelab_payload": ms.LINUX_NFSROOT_IPV6 if ipv6 else ms.LINUX_NFSROOT,
              "initramfs_tools": itools}
    first = tables["firmware"] if "firmware" in lab.stages else ()
    later = [m for stage in lab.stages if stage != "firmware" for m in tables[stage]]
    # From the NBP to the kernel the user's boot programs run: watch for their errors.
    own = [_watching(m) for m in (*lab.milestones, *guest.milestones)]
    if later:
        later[0] = _watching(later[0])
    success = [lab.success if later or own else _watching(lab.success)] \
        if lab.success else []
    return (*first, *own, *later, *success)


def _watching(milestone: Milestone) -> Milestone:
    return replace(milestone, failures=milestone.failures + ms.BOOT_PROGRAM_FAILURES)


def firmware_milestones(mode: BootMode, ip: IpVersion) -> tuple[Milestone, ...]:
    """What the firmware prints up to starting the first program it fetched."""
    ipv6 = ip is IpVersion.IPV6
    if mode is BootMode.LEGACY_PXE:
        return ms.SEABIOS + ms.IPXE_ROM_DHCP + (() if ipv6 else (ROM_FIRST_FILE,))
    if mode is BootMode.LEGACY_HTTP:
        return ms.SEABIOS + ms.IPXE_ROM_DHCP
    if mode is BootMode.UEFI_TFTP:
        return ms.OVMF_PXE6 if ipv6 else ms.OVMF_PXE4
    if mode is BootMode.UEFI_HTTP:
        return ms.OVMF_HTTP6 if ipv6 else ms.OVMF_HTTP4
    return ms.IPXE_EFI_ROM
