"""Per-client decisions of :class:`RulePolicy`; every decision carries its reason."""

from __future__ import annotations

from ipaddress import IPv4Address

import pytest

from pxelab.errors import ConfigError
from pxelab.policy import (
    Arch,
    ArchRule,
    BootDecision,
    ClientInfo,
    HostRule,
    RulePolicy,
    arch_label,
    normalize_mac,
)

pytestmark = pytest.mark.unit

MAC = "52:54:00:12:34:56"


def client(**fields: object) -> ClientInfo:
    return ClientInfo(mac=MAC, server_address="192.0.2.1", **fields)  # type: ignore[arg-type]


def test_bios_gets_pxelinux_with_reason() -> None:
    decision = RulePolicy().decide_dhcp4(client(arch=0))
    assert decision == BootDecision(boot_file="pxelinux.0", reason="arch 0 (BIOS) -> pxelinux.0")


def test_missing_arch_is_assumed_bios() -> None:
    decision = RulePolicy().decide_dhcp4(client())
    assert decision.boot_file == "pxelinux.0"
    assert "assumed BIOS" in decision.reason


@pytest.mark.parametrize(("arch", "expected"), [
    (Arch.EFI_X64, "bootx64.efi"), (Arch.EFI_X64_ALT, "bootx64.efi"),
    (Arch.EFI_IA32, "bootia32.efi"), (Arch.EFI_ARM64, "bootaa64.efi")])
def test_uefi_arches(arch: int, expected: str) -> None:
    decision = RulePolicy().decide_dhcp4(client(arch=arch))
    assert decision.boot_file == expected
    assert decision.vendor_class is None  # a PXE client must not get PXEClient echoed


def test_http_boot_gets_url_and_httpclient_echo() -> None:
    decision = RulePolicy().decide_dhcp4(client(
        arch=16, vendor_class="HTTPClient:Arch:00016:UNDI:003000"))
    assert decision.boot_file == "http://192.0.2.1/bootx64.efi"
    assert decision.vendor_class == "HTTPClient"
    assert decision.reason == "arch 16 (UEFI x64 HTTP) -> http://192.0.2.1/bootx64.efi"


def test_ipxe_script_only_when_configured() -> None:
    ipxe = client(arch=0, user_classes=("iPXE",))
    # legacy_pxe_ipv4: the SeaBIOS iPXE ROM is the PXE firmware and gets pxelinux.0
    assert RulePolicy().decide_dhcp4(ipxe).boot_file == "pxelinux.0"
    policy = RulePolicy(ipxe_script="http://{server}/boot.ipxe")
    decision = policy.decide_dhcp4(ipxe)
    assert decision.boot_file == "http://192.0.2.1/boot.ipxe"
    assert "iPXE" in decision.reason
    # not iPXE -> still the NBP, so iPXE is not chain-loaded forever
    assert policy.decide_dhcp4(client(arch=0)).boot_file == "pxelinux.0"


def test_host_rules_override_and_withhold() -> None:
    policy = RulePolicy(hosts=(HostRule("52-54-00-12-34-56", boot_file="special.0"),
                               HostRule("52:54:00:00:00:99", withhold=True,
                                        reason="simulate a silent server")))
    assert policy.decide_dhcp4(client(arch=0)).boot_file == "special.0"
    silent = policy.decide_dhcp4(ClientInfo(mac="52:54:00:00:00:99"))
    assert silent.withhold and silent.reason == "simulate a silent server"


def test_templates_and_unknown_arch() -> None:
    policy = RulePolicy(arch_rules=(ArchRule(0, "pxelinux.cfg/{mac}/nbp"),),
                        next_server=IPv4Address("192.0.2.5"))
    decision = policy.decide_dhcp4(client(arch=0))
    assert decision.boot_file == f"pxelinux.cfg/{MAC}/nbp"
    assert decision.next_server == IPv4Address("192.0.2.5")
    address_only = policy.decide_dhcp4(client(arch=11))
    assert address_only.boot_file is None and not address_only.withhold
    assert "no rule" in address_only.reason
    fallback = RulePolicy(arch_rules=(), default_file="any.efi").decide_dhcp4(client(arch=11))
    assert fallback.boot_file == "any.efi"


def test_with_hosts_returns_new_policy() -> None:
    base = RulePolicy()
    extended = base.with_hosts(HostRule(MAC, withhold=True))
    assert base.hosts == () and extended.decide_dhcp4(client(arch=0)).withhold


def test_labels_and_macs() -> None:
    assert arch_label(7) == "arch 7 (UEFI x64)"
    assert arch_label(99) == "arch 99"
    assert arch_label(None).startswith("no arch")
    assert Arch(16).is_http() and Arch(7).is_uefi() and not Arch(0).is_uefi()
    assert normalize_mac("52-54-00-AB-CD-EF") == "52:54:00:ab:cd:ef"
    with pytest.raises(ConfigError):
        normalize_mac("not-a-mac")
    with pytest.raises(ConfigError):
        HostRule("52:54:00")


def test_client_summary() -> None:
    info = client(message_type="DISCOVER", arch=7, user_classes=("iPXE",), secs=3)
    assert info.summary() == "DISCOVER arch 7 (UEFI x64) user-class=iPXE secs=3"
    assert info.is_ipxe and not info.is_http_client
