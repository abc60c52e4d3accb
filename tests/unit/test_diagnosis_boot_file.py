"""dhcp.offer_no_boot_file: the server gave a network-boot client an address only."""

from __future__ import annotations

import pytest
from test_diagnosis import MAC, NORMAL_BOOTS, UEFI_CLASS, Boot, only

from pxelab.analysis.diagnosis import decisions, diagnose

pytestmark = pytest.mark.unit

NO_RULE = "arch 7 (UEFI x64) has no rule: address only"


def _address_only(boot: Boot, at: float) -> None:
    for n in range(3):  # OVMF's PXE client ignores offers without a file and retries
        boot.packet(at + 4 * n - 0.01, "dhcp4", "discover", "0.0.0.0:68", "255.255.255.255:67",
                    client=MAC, vendor_class=UEFI_CLASS, arch=7)
        boot.dhcp4(at + 4 * n, "offer", "DISCOVER", file=None, vendor_class=UEFI_CLASS,
                   arch=7, reason=NO_RULE)


def test_an_address_only_offer_to_a_pxe_client_names_the_policy() -> None:
    boot = Boot("uefi_tftp_ipv4")
    _address_only(boot, 1.0)
    evidence = boot.evidence("fw_dhcp", "PXE-E16: No valid offer received.", 20.0)
    cause = only(decisions.offer_no_boot_file, evidence, "dhcp.offer_no_boot_file")
    assert "3 DHCPv4 answers to " + MAC in cause.summary
    assert NO_RULE in cause.summary and "arch 7" in cause.summary
    assert diagnose(evidence).codes[0] == "dhcp.offer_no_boot_file"


def test_it_works_from_the_wire_alone() -> None:
    boot = Boot("uefi_tftp_ipv4")
    boot.packet(1.0, "dhcp4", "discover", "0.0.0.0:68", "255.255.255.255:67", client=MAC,
                vendor_class=UEFI_CLASS, arch=7, xid=7)
    boot.packet(1.1, "dhcp4", "offer", "192.0.2.1:67", "255.255.255.255:68", client=MAC,
                xid=7, file="", options=[53, 54, 51])
    evidence = boot.evidence("fw_dhcp", "PXE-E16", 20.0)
    assert only(decisions.offer_no_boot_file, evidence, "dhcp.offer_no_boot_file")


def test_quiet_when_the_client_fetched_a_file_or_another_answer_named_one() -> None:
    boot = Boot("uefi_tftp_ipv4")
    _address_only(boot, 1.0)
    boot.dhcp4_round(14.0, file="syslinux.efi", vendor_class=UEFI_CLASS, arch=7)
    assert decisions.offer_no_boot_file(boot.evidence("config", "timeout", 30.0)) is None


def test_quiet_for_the_initramfs_which_asks_for_an_address_only() -> None:
    boot = NORMAL_BOOTS["legacy"]()
    boot.dhcp4(30.0, "offer", "DISCOVER", file=None, vendor_class="pxelab-init", arch=None)
    assert decisions.offer_no_boot_file(boot.evidence("nfs_root", "timeout", 40.0)) is None
