"""Regressions, DHCPv4 entries: each fault fails its boot the way the field saw it.

One test per entry of :mod:`pxelab.scenarios.regressions.dhcp4`: the faulted case fails at
the entry's stage, with the server's side of the story in the events and the
entry's cause in the diagnosis; the fixed configuration boots to userspace.
Fixed configurations that are the same boot are booted once per module.

    pytest tests/boot/test_regress_dhcp4.py -k min_secs
"""

from __future__ import annotations

import pytest
from regress import FixedBoots, assert_boots, assert_fails_as_recorded, faulted_case

from pxelab.core.events import Event
from pxelab.lab import BootResult
from pxelab.pytest_plugin import BootFactory
from pxelab.scenarios.cases import Scenario
from pxelab.scenarios.matrix import find_case
from pxelab.scenarios.regressions import apply_regressions, get_regression
from pxelab.scenarios.regressions.dhcp4 import MIN_SECS_STARVING_OVMF, OVMF_DISCOVER_SECS

pytestmark = [pytest.mark.qemu, pytest.mark.netns, pytest.mark.slow]

# Several entries fix to the same configuration: it is booted once.
_FIXED = FixedBoots()


def guest_events(result: BootResult, scenario: Scenario, kind: str,
                 source: str = "dhcp4") -> list[Event]:
    mac = scenario.guest.mac
    return [e for e in result.events if (e.source, e.kind, e.client) == (source, kind, mac)]


# -- min-secs ------------------------------------------------------------------------------------

def secs_answered(result: BootResult, scenario: Scenario,
                  arch: int | None) -> list[tuple[str, int]]:
    """(event kind, secs) of the server's answers to the guest's DISCOVERs with ``arch``."""
    return [(e.kind, e.details["secs"]) for e in result.events
            if e.source == "dhcp4" and e.client == scenario.guest.mac
            and e.kind in ("withheld", "offer") and e.details["arch"] == arch]


def test_min_secs_above_ovmfs_secs_starves_it_and_min_secs_0_boots(
        boot_scenario: BootFactory) -> None:
    entry = get_regression("min-secs")
    scenario = faulted_case(entry)  # min_secs 30: above the 0, 4, 12, 28 OVMF sends
    result = boot_scenario(scenario)
    assert_fails_as_recorded(result, entry)
    # OVMF retried and the server said each time why it stayed silent.
    answered = secs_answered(result, scenario, 7)
    assert [kind for kind, _ in answered] == ["withheld"] * len(answered)
    secs = [s for _, s in answered]
    assert len(secs) >= 2 and secs[0] == 0 and set(secs) <= set(OVMF_DISCOVER_SECS)
    assert all(e.reason.endswith(f"< min_secs={MIN_SECS_STARVING_OVMF}")
               for e in guest_events(result, scenario, "withheld"))

    _FIXED.boot(boot_scenario, entry)


def test_min_secs_2_costs_ovmf_one_retransmission(boot_scenario: BootFactory) -> None:
    """OVMF's first DISCOVER has secs 0, its retransmission 4 s later secs 4: it boots.

    syslinux.efi's DHCP (EDK2's DHCPv4 protocol again, no option 93) and the
    initramfs's udhcpc (which retransmits after 2 s) are each held back once too.
    """
    scenario = apply_regressions(find_case("uefi_tftp_ipv4"), ["min-secs=2"])
    result = boot_scenario(scenario)
    assert_boots(result)
    assert secs_answered(result, scenario, 7) == [("withheld", 0), ("offer", 4)]
    # syslinux.efi's EDK2 DHCP sends secs 0 then 4 like the firmware's; udhcpc counts
    # the seconds since it started, 2 when its retransmission leaves on time and more
    # when the guest runs late (3 seen under a host stall).
    answered = secs_answered(result, scenario, None)
    assert answered[:3] == [("withheld", 0), ("offer", 4), ("withheld", 0)]
    assert len(answered) == 4 and answered[3][0] == "offer" and answered[3][1] >= 2


def test_min_secs_2_lets_ipxe_through_at_once(boot_scenario: BootFactory) -> None:
    """iPXE's secs is a packet counter starting at 4 (fixtures/packets): min_secs 2 passes it."""
    scenario = apply_regressions(find_case("legacy_pxe_ipv4"), ["min-secs=2"])
    result = boot_scenario(scenario)
    assert_boots(result)
    assert secs_answered(result, scenario, 0)[:1] == [("offer", 4)]


# -- http-no-echo --------------------------------------------------------------------------------

def test_http_offer_without_httpclient_echo_is_ignored(boot_scenario: BootFactory) -> None:
    entry = get_regression("http-no-echo")
    scenario = faulted_case(entry)
    result = boot_scenario(scenario)
    assert_fails_as_recorded(result, entry)
    offers = guest_events(result, scenario, "offer")
    assert len(offers) >= 2, "OVMF asked again: it did not take the offer"
    assert all(e.details["vendor_class_echo"] is None and e.details["fault_omitted"] == [60]
               for e in offers)
    assert not guest_events(result, scenario, "ack"), "no REQUEST followed the offers"

    _FIXED.boot(boot_scenario, entry)


# -- binl-no-option-43 ---------------------------------------------------------------------------

def test_pxeclient_echo_without_43_sends_uefi_pxe_to_port_4011(
        boot_scenario: BootFactory) -> None:
    entry = get_regression("binl-no-option-43")
    scenario = faulted_case(entry)
    result = boot_scenario(scenario)
    assert_fails_as_recorded(result, entry)
    acks = guest_events(result, scenario, "ack")
    assert acks and acks[0].details["vendor_class_echo"] == "PXEClient"
    assert 43 not in acks[0].details["options"]
    assert not guest_events(result, scenario, "sent", source="tftp"), "no NBP was fetched"
    # EDK2's PxeBcRetryBinlOffer: REQUESTs from and to UDP 4011, 4 tries, then PXE-E16.
    assert result.evidence is not None
    binl = [p for p in result.evidence.packets
            if (p.proto, p.kind) == ("dhcp4", "request") and p.fields.get("dport") == 4011]
    assert len(binl) >= 2, "the client asked a boot server on UDP 4011, more than once"

    _FIXED.boot(boot_scenario, entry)


# -- ipxe-loop -----------------------------------------------------------------------------------

def test_ipxe_without_its_own_rule_loads_itself_again(boot_scenario: BootFactory) -> None:
    entry = get_regression("ipxe-loop")
    scenario = faulted_case(entry)
    result = boot_scenario(scenario)
    assert_fails_as_recorded(result, entry)
    assert "iPXE started again" in (result.timeline.failure or "")
    ipxe = [e for e in guest_events(result, scenario, "ack")
            if "iPXE" in e.details["user_classes"]]
    assert ipxe and ipxe[0].details["file"].endswith("/snponly.efi")
    assert ipxe[0].details["arch"] == 7  # iPXE's EFI build: PXEClient:Arch:00007
    gets = [e for e in result.events if (e.source, e.kind) == ("http", "get")
            and e.details["path"] == "/snponly.efi" and e.details["status"] == 200]
    assert len(gets) == 2, "OVMF fetched iPXE, then iPXE fetched itself"

    _FIXED.boot(boot_scenario, entry)
