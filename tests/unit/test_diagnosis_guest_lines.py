"""Guest lines whose meaning is known (diagnosis.guest.KNOWN_LINES), on real console text."""

from __future__ import annotations

import pytest
from test_diagnosis import NORMAL_BOOTS, Boot, only

from pxelab.analysis.diagnosis import guest

pytestmark = pytest.mark.unit

CASES = [
    ("uefi_ipxe_ipv4", "initrd_fetch",
     "http://192.0.2.1/vmlinuz... ok\nEFI stub: ERROR: Failed to open file: initrd.img\n"
     "EFI stub: ERROR: Failed to load initrd: 0x800000000000000e\n"
     "Could not boot: Error 0x7f04828e (http://ipxe.org/7f04828e)",
     "initrd.not_loaded", "initrd.img"),
    ("uefi_tftp_ipv6", "kernel_fetch",
     "pxelab: grub config loaded from (tftp,2001:db8::1)/grub\n"
     "error: can't find command `linuxefi'.\nerror: can't find command `initrdefi'.",
     "grub.unknown_command", "linuxefi"),
    ("legacy_http_ipv4", "script",
     "http://192.0.2.1/boot.ipxe... ok\nboot.ipxe : 428 bytes [PXE-NBP]",
     "ipxe.not_a_script", "boot.ipxe for a PXE-NBP image"),
    ("legacy_pxe_ipv4", "initramfs",
     "[    1.245840] Initramfs unpacking failed: read error\nKernel panic - not syncing",
     "initrd.unpack_failed", "read error"),
    # Debian's initramfs-tools with nfsroot=...,vers=4 (a pxelab boot, bookworm's klibc).
    ("legacy_pxe_ipv4", "nfs_root",
     "IP-Config: ens2 complete (dhcp from 192.0.2.1):\n filename  : pxelinux.0\n"
     "nfsmount: bad NFS version '4'\nBegin: Retrying nfs mount ... ",
     "nfs.client_version_unsupported", "refused vers=4"),
    ("legacy_pxe_ipv4", "nfs_root",
     "nfsmount: bad option 'proto'\nBegin: Retrying nfs mount ... ",
     "nfs.client_option_unsupported", "the option proto"),
    ("legacy_pxe_ipv4", "nfs_root",
     "4.2: invalid value for nfsvers\nBegin: Retrying nfs mount ... ",
     "nfs.client_option_unsupported", "nfsvers=4.2"),
]


@pytest.mark.parametrize("scenario, stage, tail, code, said", CASES,
                         ids=[c[3] for c in CASES])
def test_a_known_line_names_its_cause(scenario: str, stage: str, tail: str, code: str,
                                      said: str) -> None:
    evidence = Boot(scenario).evidence(stage, "stage failed", 10.0, tail)
    cause = only(guest.known_line, evidence, code)
    assert said in cause.summary and cause.stage == stage


def test_a_pxe_nbp_line_outside_the_script_stage_is_normal() -> None:
    # The BIOS iPXE ROM loads pxelinux.0 as a PXE NBP on every legacy PXE boot.
    evidence = Boot().evidence("config", "timeout", 30.0, "pxelinux.0 : 42 bytes [PXE-NBP]")
    assert guest.known_line(evidence) is None


@pytest.mark.parametrize("name", sorted(NORMAL_BOOTS))
def test_quiet_on_normal_boots(name: str) -> None:
    assert guest.known_line(NORMAL_BOOTS[name]().evidence("userspace", "timeout", 90.0)) is None
