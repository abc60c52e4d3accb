"""The DHCPv4 regressions as scenario transformations (no boots; those are tests/boot)."""

from __future__ import annotations

import time

import pexpect
import pytest

from pxelab.core.errors import ConfigError
from pxelab.machine.console import ConsoleWatcher
from pxelab.scenarios.cases import Scenario
from pxelab.scenarios.matrix import find_case
from pxelab.scenarios.regressions import apply_regressions, get_regression
from pxelab.scenarios.regressions.dhcp4 import FW_DHCP_WAIT, IPXE_BANNER, MIN_SECS_STARVING_OVMF
from pxelab.server.bootserver import Dhcp4Mode
from pxelab.server.faults import AddOption, OmitOption
from pxelab.server.policy import Arch, ClientInfo, RulePolicy

pytestmark = pytest.mark.unit


def timeout(scenario: Scenario, stage: str) -> float:
    return next(m.timeout for m in scenario.milestones if m.name == stage)


def test_min_secs_default_starves_ovmf_and_cuts_its_silent_wait() -> None:
    scenario = apply_regressions(find_case("uefi_tftp_ipv4"), ["min-secs"])
    assert scenario.policy_options == {"min_secs": MIN_SECS_STARVING_OVMF}
    assert timeout(scenario, "fw_dhcp") == FW_DHCP_WAIT and scenario.applied == ("min-secs",)
    policy = scenario.policy()
    assert isinstance(policy, RulePolicy) and policy.min_secs == MIN_SECS_STARVING_OVMF
    ovmf = ClientInfo(mac="52:54:00:12:34:56", protocol="dhcp4", message_type="DISCOVER",
                      arch=Arch.EFI_X64, secs=28)
    assert policy.decide_dhcp4(ovmf).withhold  # its last DISCOVER, too


def test_min_secs_below_ovmfs_last_secs_keeps_the_full_wait() -> None:
    base = find_case("uefi_tftp_ipv4")
    scenario = apply_regressions(base, ["min-secs=2"])
    assert scenario.policy_options == {"min_secs": 2}
    assert timeout(scenario, "fw_dhcp") == timeout(base, "fw_dhcp")
    assert get_regression("min-secs").fixed_for(scenario).policy_options == {}


@pytest.mark.parametrize("argument", ["", "two", "-1", "65536"])
def test_min_secs_argument_is_checked(argument: str) -> None:
    with pytest.raises(ConfigError, match="whole number"):
        apply_regressions(find_case("uefi_tftp_ipv4"), [f"min-secs={argument}"])


def test_http_no_echo_omits_option_60_for_http_clients() -> None:
    scenario = apply_regressions(find_case("uefi_http_ipv4"), ["http-no-echo"])
    (fault,) = scenario.faults
    assert isinstance(fault, OmitOption) and (fault.kind, fault.option) == ("dhcp4.*", 60)
    assert fault.match is not None and fault.match.vendor_class == "HTTPClient"
    assert timeout(scenario, "fw_dhcp") == FW_DHCP_WAIT


def test_binl_echoes_pxeclient_without_43_in_full_mode() -> None:
    scenario = apply_regressions(find_case("uefi_tftp_ipv4"), ["binl-no-option-43"])
    add, omit = scenario.faults
    assert isinstance(add, AddOption) and (add.option, add.value) == (60, b"PXEClient")
    assert isinstance(omit, OmitOption) and omit.option == 43
    assert scenario.server["dhcp4"].mode is Dhcp4Mode.FULL  # nothing listens on 4011


def test_ipxe_loop_drops_the_ipxe_rule_and_serves_ipxe_its_nbp() -> None:
    base = find_case("uefi_http_ipv4")
    scenario = apply_regressions(base, ["ipxe-loop"])
    assert all(rule.match.user_class != "iPXE" for rule in scenario.rules)
    ipxe = ClientInfo(mac="52:54:00:12:34:56", protocol="dhcp4", message_type="DISCOVER",
                      arch=Arch.EFI_X64, vendor_class="PXEClient:Arch:00007:UNDI:003010",
                      user_classes=("iPXE",), server_address="192.0.2.1")
    assert scenario.policy().decide_dhcp4(ipxe).boot_file == "http://192.0.2.1/snponly.efi"
    script = next(m for m in scenario.milestones if m.name == "script")
    assert IPXE_BANNER in script.failures[0].pattern
    fixed = get_regression("ipxe-loop").fixed_for(base)
    assert fixed.policy().decide_dhcp4(ipxe).boot_file == "http://192.0.2.1/boot.ipxe"
    assert fixed.milestones == base.milestones


# What iPXE 1.21.1 (Debian 13) printed when it was handed itself again: the autoexec.ipxe
# lookup of the second start, an error, comes before its banner.
IPXE_121_AGAIN = ("Configuring (net0 52:54:00:12:34:56)... ok\r\n"
                  "http://192.0.2.1/snponly.efi... ok\r\n"
                  "iPXE initialising devices...\r\n"
                  "file:autoexec.ipxe... Not found (https://ipxe.org/7f4de18e)\r\n")


def test_ipxe_loop_ends_on_ipxe_121s_second_start_not_on_its_autoexec_error() -> None:
    scenario = apply_regressions(find_case("uefi_http_ipv4"), ["ipxe-loop"])
    script = next(m for m in scenario.milestones if m.name == "script")
    console = pexpect.spawn("printf", ["%s", IPXE_121_AGAIN], encoding="utf-8", timeout=5)
    try:
        timeline = ConsoleWatcher(console, time.monotonic()).run("t", (script,))
    finally:
        console.close(force=True)
    assert timeline.failed_stage == "script"
    assert (timeline.failure or "").startswith("iPXE started again"), timeline.failure


def test_ipxe_loop_needs_an_ipxe_nbp() -> None:
    with pytest.raises(ConfigError, match="NBP is iPXE"):
        apply_regressions(find_case("uefi_tftp_ipv4"), ["ipxe-loop"])
