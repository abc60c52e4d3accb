"""Per-client decisions of :class:`RulePolicy`; every decision carries its reason."""

from __future__ import annotations

from dataclasses import replace
from ipaddress import IPv4Address

import pytest

from pxelab.core.errors import ConfigError
from pxelab.server.policy import (
    Arch,
    ArchRule,
    BootDecision,
    ClientInfo,
    HostRule,
    Match,
    Rule,
    RulePolicy,
    arch_label,
    default_profile,
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
    policy = RulePolicy(ipxe_script="http://{{ server }}/boot.ipxe")
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
    policy = RulePolicy(arch_rules=(ArchRule(0, "pxelinux.cfg/{{ mac }}/nbp"),),
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


# -- match rules, min_secs, DHCPv6 -------------------------------------------------------------

def test_first_matching_rule_wins_over_arch_rules() -> None:
    policy = RulePolicy(rules=(
        Rule(Match(user_class="iPXE"), "http://{{ server }}/{{ mac_hyphen }}.ipxe", name="per-mac"),
        Rule(Match(arch=(7,)), "grubx64.efi", name="uefi"),
    ))
    ipxe = policy.decide_dhcp4(client(arch=7, user_classes=("iPXE",)))
    assert ipxe.boot_file == "http://192.0.2.1/52-54-00-12-34-56.ipxe"
    assert ipxe.reason == "rule 'per-mac' -> http://192.0.2.1/52-54-00-12-34-56.ipxe"
    assert policy.decide_dhcp4(client(arch=7)).boot_file == "grubx64.efi"
    assert policy.decide_dhcp4(client(arch=0)).boot_file == "pxelinux.0"


def test_rule_can_withhold_and_override_the_vendor_class_echo() -> None:
    policy = RulePolicy(rules=(
        Rule(Match(vendor_class="HTTPClient", family="ipv4"), "http://{{ server }}/x.efi",
             vendor_class=""),
        Rule(Match(mac="52-54-00-12-34-57"), withhold=True),
    ))
    http = policy.decide_dhcp4(client(arch=16, vendor_class="HTTPClient:Arch:00016"))
    assert http.vendor_class is None  # "" turns the echo off: a fault-like configuration
    other = ClientInfo(mac="52:54:00:12:34:57", server_address="192.0.2.1")
    assert policy.decide_dhcp4(other).withhold


def test_min_secs_withholds_until_secs_reaches_it() -> None:
    policy = RulePolicy(min_secs=2)
    early = policy.decide_dhcp4(client(secs=0, message_type="DISCOVER"))
    assert early.withhold
    assert early.reason == "OFFER withheld: secs=0 < min_secs=2"
    assert not policy.decide_dhcp4(client(secs=2)).withhold


def test_dhcp6_turns_file_names_into_tftp_urls() -> None:
    v6 = ClientInfo(mac=MAC, protocol="dhcp6", arch=7, server_address="2001:db8::1")
    decision = RulePolicy().decide_dhcp6(v6)
    assert decision.boot_file == "tftp://[2001:db8::1]/bootx64.efi"
    assert decision.reason.endswith("-> tftp://[2001:db8::1]/bootx64.efi")
    http = replace(v6, arch=16)
    assert RulePolicy().decide_dhcp6(http).boot_file == "http://[2001:db8::1]/bootx64.efi"
    assert RulePolicy().decide_dhcp6(http).vendor_class == "HTTPClient"


def test_family_match_separates_ipv4_and_ipv6() -> None:
    policy = RulePolicy(rules=(Rule(Match(family="ipv6"), "v6.efi"),))
    v6 = ClientInfo(mac=MAC, protocol="dhcp6", arch=7, server_address="2001:db8::1")
    assert policy.decide_dhcp6(v6).boot_file == "tftp://[2001:db8::1]/v6.efi"
    assert policy.decide_dhcp4(client(arch=7)).boot_file == "bootx64.efi"


def test_default_profile_reproduces_the_classic_dhcpd_tree() -> None:
    policy = default_profile()
    cases = {
        (0, None, ()): "undionly.kpxe",
        (6, "PXEClient:Arch:00006", ()): "ipxe32.efi",
        (7, "PXEClient:Arch:00007", ()): "ipxe.efi",
        (15, "HTTPClient:Arch:00015", ()): "http://192.0.2.1/ipxe32.efi",
        (16, "HTTPClient:Arch:00016", ()): "http://192.0.2.1/ipxe.efi",
        (7, None, ("iPXE",)): "http://192.0.2.1/script.ipxe",
    }
    for (arch, vendor, users), expected in cases.items():
        decision = policy.decide_dhcp4(client(arch=arch, vendor_class=vendor,
                                              user_classes=users))
        assert decision.boot_file == expected, (arch, vendor, users)
        assert (decision.vendor_class == "HTTPClient") == (arch in (15, 16))


def test_unknown_template_name_is_a_config_error_when_the_rule_is_made() -> None:
    with pytest.raises(ConfigError, match=r"rule 'x': .*\{\{ hostname \}\} is not a value.*"
                                          r"arch, ip, mac, mac_hyphen, server, server_ip"):
        Rule(Match(), "{{ hostname }}.efi", name="x")
    with pytest.raises(ConfigError, match=r"host 52:54:00:00:00:01: .*\{\{ sever \}\}"):
        HostRule("52:54:00:00:00:01", "http://{{ sever }}/x")
    with pytest.raises(ConfigError, match=r"policy ipxe_script"):
        RulePolicy(ipxe_script="{{ script }}")


def test_old_template_syntax_is_refused() -> None:
    with pytest.raises(ConfigError, match=r"rule \[every client\]: .* has \{server\}, the old "
                                          r"syntax; write \{\{ name \}\}"):
        Rule(Match(), "http://{server}/x.efi")


def test_match_rejects_unknown_family() -> None:
    with pytest.raises(ConfigError, match="ipv4"):
        Match(family="ip4")
