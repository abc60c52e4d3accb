"""Failures outside the regression catalog, as users break their own labs.

Each entry breaks one healthy case the way the field does: a typo in a DHCP rule or a
menu, a file missing or cut short in the data root, a policy that withholds, a
server that is down, an NFS export under another path. None goes through a
regression entry, and all but one leave no ``fault.injected`` event (edits, rules,
server settings), so a rule cannot key on the fault: it has to read the guest's
console, the server's events and the packets as it would in a user's lab.

The sources: the field reports pxelab exists for (ISC dhcpd classes, pxelinux
configuration lookups, NFS roots), and what users of PXE tools report most (a boot
file name typo, a missing grub.cfg, a kernel URL with the wrong name, an initrd
copied half way, the HTTP server not running).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

from pxelab.scenarios.cases import PolicyOverrides, Scenario, ServerOverrides
from pxelab.scenarios.edits import CutFile, NoNfsServer, RemoveFile, RenameFile, ReplaceText
from pxelab.scenarios.matrix import find_case
from pxelab.scenarios.regressions.initrd import with_initramfs_tools
from pxelab.server.faults import TruncateFile
from pxelab.server.policy import Arch, ArchRule, Match, Rule
from pxelab.server.settings import HttpConfig, TftpConfig


@dataclass(frozen=True)
class FieldFailure:
    """One way a user's lab breaks: the case it breaks, how, and the verdict it must get."""

    id: str
    case: str
    breaks: Callable[[Scenario], Scenario]
    stage: str  # the stage the boot fails at
    cause: str  # the first cause's code
    # The first cause's code from the packets, the console and the logs alone (no server
    # events), as with a third-party server; None: the same as ``cause``.
    without_events: str | None = None

    def scenario(self) -> Scenario:
        return self.breaks(find_case(self.case))


def _rule_first(rule: Rule) -> Callable[[Scenario], Scenario]:
    return lambda case: replace(case, rules=(rule, *case.rules))


def _edit(*edits: object) -> Callable[[Scenario], Scenario]:
    return lambda case: replace(case, edits=case.edits + edits)  # type: ignore[operator]


def _rules(*rules: Rule, **policy: object) -> Callable[[Scenario], Scenario]:
    return lambda case: replace(case, rules=rules, policy_options=PolicyOverrides(**policy))


def _server(**settings: object) -> Callable[[Scenario], Scenario]:
    return lambda case: replace(case, server=ServerOverrides(**(dict(case.server) | settings)))


def _url(old: str, new: str) -> Callable[[Scenario], Scenario]:
    """The scenario's DHCP rules with ``old`` replaced by ``new`` in their boot file."""
    def change(case: Scenario) -> Scenario:
        rules = tuple(replace(r, boot_file=r.boot_file.replace(old, new)) if r.boot_file
                      else r for r in case.rules)
        return replace(case, rules=rules)
    return change


def _initramfs_tools(*edits: object) -> Callable[[Scenario], Scenario]:
    """The case booting Debian's initramfs-tools initrd, with ``edits``."""
    return lambda case: _edit(*edits)(with_initramfs_tools(case))


def _cut_body(name: str) -> Callable[[Scenario], Scenario]:
    """The server stops sending ``name`` half way (the file in the data root is whole)."""
    return lambda case: replace(case, faults=(TruncateFile(4_000_000, name),))


FAILURES: tuple[FieldFailure, ...] = (
    # -- a file the guest asked for is not there ------------------------------------------
    FieldFailure("nbp-name-typo", "legacy_pxe_ipv4",
                 _rule_first(Rule(Match(vendor_class="PXEClient"), "pxelinx.0", name="bios")),
                 "nbp", "file.not_found"),
    FieldFailure("http-nbp-url-typo", "uefi_http_ipv4", _url("snponly.efi", "snponly.ef"),
                 "nbp_url", "file.not_found"),
    FieldFailure("pxelinux-config-missing", "legacy_pxe_ipv4",
                 _edit(RemoveFile("pxelinux.cfg/default")), "config", "file.not_found"),
    FieldFailure("syslinux-efi-config-missing", "uefi_tftp_ipv4",
                 _edit(RemoveFile("pxelinux.cfg/default")), "config", "file.not_found"),
    # A copy from a FAT stick: the name in capitals, which a TFTP server on Linux does
    # not find when PXELINUX asks for ldlinux.c32.
    FieldFailure("ldlinux-upper-case", "legacy_pxe_ipv4",
                 _edit(RenameFile("ldlinux.c32", "LDLINUX.C32")), "config", "file.not_found"),
    FieldFailure("pxelinux-kernel-typo", "legacy_pxe_ipv4",
                 _edit(ReplaceText("pxelinux.cfg/default", "/vmlinuz", "/vmlinux")),
                 "kernel_fetch", "file.not_found"),
    FieldFailure("grub-kernel-typo", "uefi_tftp_ipv6",
                 _edit(ReplaceText("grub/grub.cfg", "/vmlinuz", "/vmlinux")),
                 "kernel_fetch", "file.not_found"),
    FieldFailure("grub-cfg-missing", "uefi_tftp_ipv6", _edit(RemoveFile("grub/grub.cfg")),
                 "config", "file.not_found"),
    FieldFailure("ipxe-script-missing-tftp6", "legacy_pxe_ipv6", _edit(RemoveFile("boot.ipxe")),
                 "script", "file.not_found"),
    # -- the guest's own words ----------------------------------------------------------
    # A script written by hand without its first line: iPXE does not know what it is.
    FieldFailure("ipxe-script-no-shebang", "legacy_http_ipv4",
                 _edit(ReplaceText("boot.ipxe", "#!ipxe\n", "")), "script", "ipxe.not_a_script"),
    # A grub.cfg from a distribution whose GRUB has linuxefi, on Debian's, which has not.
    FieldFailure("grub-linuxefi", "uefi_tftp_ipv6",
                 _edit(ReplaceText("grub/grub.cfg", "\nlinux ", "\nlinuxefi ")),
                 "kernel_fetch", "grub.unknown_command"),
    # The initrd line forgotten: the kernel has no initramfs to mount its root with.
    FieldFailure("ipxe-initrd-line-missing", "uefi_ipxe_ipv4",
                 _edit(ReplaceText("boot.ipxe", "\ninitrd ", "\n#initrd ")),
                 "initrd_fetch", "initrd.not_loaded"),
    # -- a transfer that ended short, or a file that arrived cut --------------------------
    FieldFailure("initrd-cut", "legacy_pxe_ipv4", _edit(CutFile("initrd.img")),
                 "initramfs", "initrd.unpack_failed"),
    FieldFailure("initrd-cut-http6", "uefi_http_ipv6", _edit(CutFile("initrd.img")),
                 "initramfs", "initrd.unpack_failed"),
    # The one server fault: nothing in a data root cuts an HTTP body short. Its test
    # diagnoses without the fault's event too.
    FieldFailure("http-kernel-cut-short", "legacy_http_ipv4", _cut_body("vmlinuz"),
                 "kernel_fetch", "transfer.short"),
    FieldFailure("http-kernel-cut-short-pxelinux", "legacy_pxe_ipv4", _cut_body("vmlinuz"),
                 "kernel", "transfer.short"),
    FieldFailure("http-kernel-cut-short-grub6", "uefi_tftp_ipv6", _cut_body("vmlinuz"),
                 "kernel_fetch", "transfer.short"),
    FieldFailure("tftp-kernel-cut-short-ipv6", "legacy_pxe_ipv6", _cut_body("vmlinuz"),
                 "kernel_fetch", "transfer.short"),
    # -- a server decision that withheld or gave nothing to boot --------------------------
    FieldFailure("dhcp-withheld-initramfs", "legacy_pxe_ipv4",
                 _rule_first(Rule(Match(vendor_class="pxelab-init"), withhold=True,
                                  name="pool allows members of pxeclients only")),
                 "initramfs_dhcp", "dhcp.withheld", "request.unanswered"),
    FieldFailure("dhcp6-withheld-http-boot", "uefi_http_ipv6",
                 _rule_first(Rule(Match(vendor_class="HTTPClient", family="ipv6"),
                                  withhold=True, name="known hosts only")),
                 "fw_dhcp", "dhcp6.withheld", "request.unanswered"),
    FieldFailure("no-boot-file-for-uefi", "uefi_tftp_ipv4",
                 _rules(arch_rules=(ArchRule(Arch.BIOS, "pxelinux.0"),)),
                 "fw_dhcp", "dhcp.offer_no_boot_file"),
    FieldFailure("no-boot-file-for-bios", "legacy_pxe_ipv4",
                 _rules(arch_rules=(ArchRule(Arch.EFI_X64, "syslinux.efi"),)),
                 "nbp", "dhcp.offer_no_boot_file"),
    # -- requests nobody answered ---------------------------------------------------------
    FieldFailure("http-server-down", "legacy_http_ipv4",
                 _server(http=HttpConfig(enabled=False)), "script", "request.refused"),
    FieldFailure("tftp-server-down", "uefi_tftp_ipv4",
                 _server(tftp=TftpConfig(enabled=False)), "nbp", "request.refused"),
    # -- NFS -----------------------------------------------------------------------------
    FieldFailure("nfs-export-typo", "legacy_pxe_ipv4",
                 _edit(ReplaceText("pxelinux.cfg/default", ":/pxelab", ":/srv/pxelab")),
                 "nfs_root", "nfs.export_not_found"),
    FieldFailure("nfs-export-typo-ipv6", "uefi_tftp_ipv6",
                 _edit(ReplaceText("grub/grub.cfg", ":/pxelab", ":/export/pxelab")),
                 "nfs_root", "nfs.export_not_found"),
    FieldFailure("nfs-server-down", "uefi_http_ipv4", _edit(NoNfsServer()),
                 "nfs_root", "nfs.no_server"),
    FieldFailure("nfs-server-down-ipv6", "legacy_pxe_ipv6", _edit(NoNfsServer()),
                 "nfs_root", "nfs.no_server"),
    # An NFSv4 root asked of Debian's initramfs-tools, whose klibc nfsmount has v2 and v3.
    FieldFailure("initramfs-tools-nfsv4", "legacy_pxe_ipv4",
                 _initramfs_tools(ReplaceText("pxelinux.cfg/default", "vers=3", "vers=4")),
                 "nfs_root", "nfs.client_version_unsupported"),
)
