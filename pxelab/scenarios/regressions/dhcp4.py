"""Regressions of DHCPv4: the server answers, but not in a way the client can use.

- ``min-secs``: ISC dhcpd's ``min-secs`` above every ``secs`` the client sends.
- ``http-no-echo``: a UEFI HTTP boot offer without the option 60 ``HTTPClient`` echo.
- ``binl-no-option-43``: a full-DHCP offer that echoes ``PXEClient`` without option 43.
- ``ipxe-loop``: iPXE handed the iPXE NBP again because the server ignores user class iPXE.

OVMF shows nothing on the console while it waits for a usable offer, and
gives up only after its four DISCOVERs (4 + 8 + 16 + 32 s, PXE 2.1 and
EDK2's ``mPxeDhcpTimeout``). The entries whose failure is that silence shorten
the faulted scenario's ``fw_dhcp`` wait to :data:`FW_DHCP_WAIT` seconds: enough
for three DISCOVERs and the server's answers to them, not a minute of nothing.
"""

from __future__ import annotations

from dataclasses import replace

from pxelab.core.errors import ConfigError
from pxelab.machine.console import FailurePattern
from pxelab.scenarios.cases import BootLoader, Scenario
from pxelab.scenarios.regressions.registry import (
    Regression,
    register,
    with_faults,
    with_stage_timeout,
)
from pxelab.server.faults import AddOption, OmitOption
from pxelab.server.policy import Arch, Match, Rule
from pxelab.server.settings import Dhcp4Config, Dhcp4Mode

__all__ = ["FW_DHCP_WAIT", "IPXE_BANNER", "MIN_SECS_STARVING_OVMF", "OVMF_DISCOVER_SECS"]

# Seconds the faulted scenarios wait for OVMF's lease: DISCOVERs go out at about
# 0, 4 and 12 s, so three of them and the server's answers are in the evidence.
FW_DHCP_WAIT = 15.0
# What every iPXE build prints when it starts (pxelab.scenarios.milestones has the same pattern).
IPXE_BANNER = r"iPXE \S+ -- Open Source Network Boot Firmware"
_PXE_CLIENTS = Match(vendor_class="PXEClient")
_HTTP_CLIENTS = Match(vendor_class="HTTPClient")


def _with_policy(scenario: Scenario, **options: object) -> Scenario:
    return replace(scenario, policy_options=scenario.policy_options.with_values(**options))


# -- min-secs ------------------------------------------------------------------------------------

# What OVMF's DHCPv4 client (EDK2 Dhcp4Dxe, PXE and HTTP boot alike) puts in secs:
# 0 in the first DISCOVER, then the seconds since it started in each retransmission,
# which come after 4, 8 and 16 s; it gives up 32 s after the last (run). So a min_secs
# of 1..28 only costs OVMF retransmissions; above 28 it never gets an offer, as a
# client whose secs stays 0 (Etherboot 5.4) never gets one with any min_secs >= 1.
OVMF_DISCOVER_SECS = (0, 4, 12, 28)
MIN_SECS_STARVING_OVMF = OVMF_DISCOVER_SECS[-1] + 2


def _min_secs(scenario: Scenario, argument: str | None) -> Scenario:
    try:
        value = int(argument or "")
    except ValueError:
        value = -1
    if not 0 <= value <= 0xFFFF:
        raise ConfigError(f"--fault min-secs={argument}: give the seconds as a whole number "
                          "0..65535, e.g. --fault min-secs=2")
    changed = _with_policy(scenario, min_secs=value)
    if value > OVMF_DISCOVER_SECS[-1]:
        # Every DISCOVER OVMF will send is withheld: end its ~60 s of silence sooner.
        # (A smaller min_secs only delays OVMF, so its stage keeps its full wait.)
        changed = with_stage_timeout(changed, "fw_dhcp", FW_DHCP_WAIT)
    return changed


def _no_min_secs(scenario: Scenario) -> Scenario:
    """dhcpd's fix, ``min-secs 0``: RulePolicy's default, so the option goes."""
    return replace(scenario, policy_options=scenario.policy_options.without("min_secs"))


MIN_SECS = Regression(
    name="min-secs",
    summary="the DHCP server ignores DISCOVERs whose secs is below N (ISC dhcpd min-secs); "
            f"OVMF's secs reads 0, 4, 12, 28: N >= {MIN_SECS_STARVING_OVMF} starves it",
    scenario="uefi_tftp_ipv4",
    stage="fw_dhcp",
    cause="dhcp.withheld_min_secs",
    apply=_min_secs,
    fixed=_no_min_secs,
    argument="seconds",
    default=str(MIN_SECS_STARVING_OVMF),
    report="DHCP server never answers one PXE client (Etherboot) while other machines get "
           "leases; dhcpd: \"configured min-secs value is greater than secs field\"",
)


# -- http-no-echo --------------------------------------------------------------------------------

def _http_no_echo(scenario: Scenario, argument: str | None) -> Scenario:
    # The offer keeps its address and URL; only the HTTPClient echo goes. EDK2's
    # HttpBootDxe does not take an offer without it and keeps asking (~60 s).
    fault = OmitOption("dhcp4.*", 60, match=_HTTP_CLIENTS)
    return with_stage_timeout(with_faults(scenario, fault), "fw_dhcp", FW_DHCP_WAIT)


HTTP_NO_ECHO = Regression(
    name="http-no-echo",
    summary="UEFI HTTP boot offers over DHCPv4 lack option 60 HTTPClient: OVMF ignores them",
    scenario="uefi_http_ipv4",
    stage="fw_dhcp",
    cause="dhcp.offer_no_httpclient_echo",
    apply=_http_no_echo,
    report="UEFI HTTP boot: \"Error: Server response timeout.\" although the DHCP server "
           "sends offers with the boot URL",
)


# -- binl-no-option-43 ---------------------------------------------------------------------------

def _binl(scenario: Scenario, argument: str | None) -> Scenario:
    # PXEClient in option 60 and no PXE sub-options in 43 is a "BINL" offer to EDK2
    # (PxeBcParseDhcp4Packet: PxeOfferTypeDhcpBinl): after the ACK it asks siaddr on
    # UDP 4011 for the boot file (PxeBcRetryBinlOffer). Full DHCP mode keeps 4011
    # closed: proxy mode's boot service would answer and hide the trap.
    faults = (AddOption("dhcp4.*", 60, b"PXEClient", match=_PXE_CLIENTS),
              OmitOption("dhcp4.*", 43, match=_PXE_CLIENTS))
    return replace(with_faults(scenario, *faults),
                   server=scenario.server.with_values(dhcp4=replace(
                       scenario.server.get("dhcp4", Dhcp4Config()), mode=Dhcp4Mode.FULL)))


BINL_NO_OPTION_43 = Regression(
    name="binl-no-option-43",
    summary="full-DHCP offers echo option 60 PXEClient without option 43: UEFI PXE then asks "
            "a boot server on UDP 4011 that is not there",
    scenario="uefi_tftp_ipv4",
    stage="nbp",
    cause="dhcp.pxeclient_without_43",
    apply=_binl,
    report="UEFI PXE gets an IP address, then \"PXE-E16: No valid offer received\"; "
           "dhcpd config has option vendor-class-identifier \"PXEClient\"",
)


# -- ipxe-loop -----------------------------------------------------------------------------------

def _hands_out(rule: Rule, nbp: str) -> bool:
    return rule.boot_file is not None and rule.boot_file.rsplit("/", 1)[-1] == nbp


def _ipxe_loop(scenario: Scenario, argument: str | None) -> Scenario:
    if scenario.loader is not BootLoader.IPXE_EFI:
        raise ConfigError(f"--fault ipxe-loop needs a scenario whose NBP is iPXE "
                          f"(uefi_http_ipv4), not {scenario.name} ({scenario.loader.nbp})")
    nbp = scenario.loader.nbp
    rules: list[Rule] = []
    for rule in scenario.rules:
        if rule.match.user_class == "iPXE":
            continue  # the rule the broken configuration lacks
        if _hands_out(rule, nbp) and rule.match.arch:
            # A chain-loading config serves the iPXE NBP to x64 UEFI clients by arch;
            # iPXE's EFI build itself sends arch 7 (PXEClient:Arch:00007).
            widened = replace(rule.match, arch=(*rule.match.arch, Arch.EFI_X64))
            rules.append(replace(rule, match=widened))
        else:
            rules.append(rule)
    # The boot script never comes: iPXE loads itself again. Its start a second time
    # ends the boot at once instead of letting it go round until the stage times out.
    # iPXE 1.21 looks for autoexec.ipxe before its banner, and reports that file
    # missing as an error: its first line, "iPXE initialising devices", comes earlier.
    loop = FailurePattern(rf"iPXE initialising devices|{IPXE_BANNER}", "iPXE started again: "
                          "it was handed the iPXE NBP instead of its script (chain-load "
                          "loop; match user class iPXE)")
    milestones = tuple(replace(m, failures=(loop, *m.failures)) if m.name == "script" else m
                       for m in scenario.milestones)
    return replace(scenario, rules=tuple(rules), milestones=milestones)


def _ipxe_rule_first(scenario: Scenario) -> Scenario:
    """The broken configuration plus the rule that sends iPXE its script, consulted first."""
    broken = _ipxe_loop(scenario, None)
    script = next((r for r in scenario.rules if r.match.user_class == "iPXE"), None)
    if script is None:
        raise ConfigError(f"{scenario.name} has no user-class iPXE rule to restore")
    return replace(broken, rules=(script, *broken.rules), milestones=scenario.milestones)


IPXE_LOOP = Regression(
    name="ipxe-loop",
    summary="the DHCP server ignores user class iPXE and hands iPXE the iPXE NBP again: "
            "it loads itself in a loop",
    scenario="uefi_http_ipv4",
    stage="script",
    cause="ipxe.chainload_loop",
    apply=_ipxe_loop,
    fixed=_ipxe_rule_first,
    report="iPXE chainloading loop: iPXE starts, gets a DHCP lease, downloads snponly.efi / "
           "undionly.kpxe again and starts over",
)

register(MIN_SECS, HTTP_NO_ECHO, BINL_NO_OPTION_43, IPXE_LOOP)
