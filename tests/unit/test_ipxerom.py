"""Which way uefi_ipxe_ipv4 boots, from the kind of the NIC ROM's EFI driver."""

from __future__ import annotations

import pytest

from pxelab.core.errors import ConfigError
from pxelab.machine.ipxerom import (
    RomKind,
    kind_of_debian_version,
    parse_override,
)
from pxelab.scenarios import milestones as ms
from pxelab.scenarios.cases import SCENARIOS, BootLoader
from pxelab.scenarios.matrix import find_case
from pxelab.server.policy import Arch

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(("version", "kind"), [
    ("1.0.0+git-20190125.36a4c85-5.1", RomKind.IPXE),  # Debian 12
    ("1.21.1+git20220113.fbbdc3926+dfsg-4", RomKind.IPXE),
    ("1.21.1+git20250224.12ea8c40+dfsg-2", RomKind.IPXE),  # the last with the stack
    ("1.21.1+git20250317.42a29d56+dfsg-1", RomKind.SNP_ONLY),  # reduce_efirom_size.patch
    ("1.21.1+git20250501.dad20602+dfsg-1", RomKind.SNP_ONLY),  # Debian 13
    ("1.21.1+git20260101.0123abcd+dfsg-1~bpo13+1", RomKind.SNP_ONLY),
    ("1.21.1-1", None),
    ("", None),
])
def test_the_debian_version_tells_the_rom_kind(version: str, kind: RomKind | None) -> None:
    assert kind_of_debian_version(version) is kind


def test_an_unknown_override_lists_the_choices() -> None:
    assert parse_override(" snp-only\n") is RomKind.SNP_ONLY
    with pytest.raises(ConfigError, match="ipxe, snp-only"):
        parse_override("full")


def test_a_rom_with_the_stack_boots_ipxe_from_the_rom() -> None:
    base = SCENARIOS["uefi_ipxe_ipv4"]
    assert base.on_rom(RomKind.IPXE) is base
    assert base.milestones == ms.IPXE_EFI_ROM + ms.IPXE_SCRIPT + ms.LINUX_NFSROOT
    assert "snponly.efi" not in base.fetched


@pytest.mark.parametrize("name", ["uefi_ipxe_ipv4", "uefi_ipxe_ipv4[e1000]"])
def test_an_snp_only_rom_chain_loads_snponly_through_ovmf_pxe(name: str) -> None:
    base = find_case(name)
    case = base.on_rom(RomKind.SNP_ONLY)
    assert case.name == base.name and case.guest == base.guest
    assert case.milestones == (ms.OVMF_PXE4 + ms.IPXE_EFI_NBP + ms.IPXE_SCRIPT
                               + ms.LINUX_NFSROOT)
    assert case.loader is BootLoader.IPXE_EFI
    assert case.fetched[0] == "snponly.efi" and set(base.fetched) <= set(case.fetched)
    # the NIC's own ROM is still recorded, snponly.efi beside it
    assert set(base.firmware) | {"snponly.efi"} == set(case.firmware)
    # iPXE's own DHCP gets the script; OVMF's PXEv4 gets snponly.efi
    ipxe, pxe = case.rules
    assert ipxe.match.user_class == "iPXE" and (ipxe.boot_file or "").endswith("/boot.ipxe")
    assert pxe.match.arch == (Arch.EFI_X64,) and pxe.boot_file == "snponly.efi"
    assert case.on_rom(RomKind.SNP_ONLY) == case, "deciding again changes nothing"


def test_scenarios_without_an_snp_only_way_ignore_the_rom() -> None:
    for scenario in SCENARIOS.values():
        if scenario.name != "uefi_ipxe_ipv4":
            assert scenario.snp_only is None
            assert scenario.on_rom(RomKind.SNP_ONLY) is scenario


