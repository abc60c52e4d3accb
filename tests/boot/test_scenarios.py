"""Every case of the scenario matrix boots to userspace on the lab's NFS root, on real parts.

One test per scenario and NIC model (ids like ``legacy_pxe_ipv4[e1000]``), marked
with its firmware, mode family, transport and IP version. Select by name or mark:

    pytest tests/boot/test_scenarios.py -k uefi_http_ipv6
    pytest tests/boot/test_scenarios.py -k "http and not legacy"
    pytest tests/boot/test_scenarios.py -m "ovmf and ipv6"
    pytest tests/boot/test_scenarios.py --pxelab-nic virtio-net-pci -n 2
"""

from __future__ import annotations

from dataclasses import replace

import pytest

from pxelab.analysis.diagnosis.rules import RULES
from pxelab.analysis.diagnosis.wire import with_wire_events
from pxelab.lab import BootResult
from pxelab.machine.fwsets import load_firmware_set
from pxelab.machine.nvram import IP6_CONFIG_GUID, decode_ip6_config, default_iaid, read_variables
from pxelab.machine.qemu import OVMF_VARS
from pxelab.scenarios.cases import IpVersion, Scenario, for_firmware_set
from pxelab.scenarios.limits import KnownLimit, known_limit

pytestmark = [pytest.mark.qemu, pytest.mark.netns, pytest.mark.slow]


def test_boot(boot_scenario, pxelab_scenario: Scenario, pxelab_cache_dir):
    # The way the set's NIC ROM boots it, with every firmware file from the set.
    fwset = load_firmware_set(pxelab_scenario.firmware_set, pxelab_cache_dir)
    scenario = for_firmware_set(pxelab_scenario, fwset)
    limit = known_limit(scenario, fwset)
    result = boot_scenario(scenario)
    if limit is not None:
        assert_fails_as_limit_says(result, limit)
        pytest.xfail(limit.describe(fwset))
    timeline = result.timeline

    assert timeline.ok, f"stage {timeline.failed_stage} failed: {timeline.failure}"
    assert [h.name for h in timeline.hits] == [m.name for m in scenario.milestones]
    seconds = [h.seconds for h in timeline.hits]
    assert seconds == sorted(seconds), "milestones must be reached in order"
    assert result.marker == {"root": result.nfs_source, "fstype": "nfs4"}
    assert result.ok

    # The server's side of the story: the firmware leased over the scenario's IP
    # version, the initramfs over DHCPv4 or by SLAAC, and every file of the chain
    # sent in full.
    mac = scenario.guest.mac
    acks = [e for e in result.events if e.source == "dhcp4" and e.kind == "ack"]
    assert {e.client for e in acks} <= {mac}
    if scenario.ip is IpVersion.IPV4:
        assert len(acks) >= 2, "firmware and initramfs each lease an address"
    else:
        # IPv4 may be leased on the side (iPXE, OVMF's HTTPv4 attempt), never used to boot.
        assert any(e.source == "dhcp6" and e.kind == "reply" and e.client == mac
                   for e in result.events), "the firmware leased over DHCPv6"
        assert result.nfs_source.startswith("["), "the NFS root is mounted over IPv6"
    sent = {e.request.lstrip("/") for e in result.events
            if e.source == "tftp" and e.kind == "sent"}
    sent |= {e.file.lstrip("/") for e in result.events
             if e.source == "http" and e.kind == "get" and e.details.get("status") == 200}
    assert set(scenario.fetched) <= sent

    # What ran is recorded with the result (timeline.json and junit properties).
    props = timeline.properties
    assert props["case"] == scenario.name and props["nic_model"] == scenario.nic_model
    assert props["accelerator"] in ("kvm", "tcg")
    assert props["seconds_to_userspace"] == timeline.seconds("userspace")
    assert props["kernel_version"].endswith(scenario.payload.kernel_flavour)
    assert props["payload_suite"] == scenario.payload.suite
    assert "qemu-system-x86" in props["packages"]
    assert props["firmware_set"] == fwset.name
    for package, version in fwset.versions(scenario.firmware).items():
        assert props["packages"][package] == version, "the set's versions, not the host's"
    assert props["firmware_settings"] == scenario.guest.firmware_settings()
    if scenario.guest.ip6_settings is not None:
        assert_firmware_kept_ip6_settings(result, scenario)
    assert_no_rule_fires(result)


def assert_fails_as_limit_says(result: BootResult, limit: KnownLimit) -> None:
    """A strict expected failure: where and why the limit says, or the test fails."""
    assert not result.ok, (f"{limit.name} no longer holds: the case booted; drop or narrow "
                           "the limit in pxelab/scenarios/limits.py")
    cause = result.diagnosis.cause if result.diagnosis else None
    found = (result.timeline.failed_stage, cause.code if cause else None)
    assert found == (limit.stage, limit.cause), \
        f"failed otherwise than {limit.name} says: {result.timeline.failure}"


def assert_no_rule_fires(result: BootResult) -> None:
    """A healthy boot is every rule's near miss (the config search's 404s, OVMF's size
    probe, the deliberate HTTPv4 404 of uefi_http_ipv6, keep-alive RSTs, NFS lookups
    of names that do not exist): none may fire on it, with the server's events or
    from the capture alone, and no live guard ended a stage."""
    evidence = result.evidence
    assert evidence is not None
    for events in (evidence.events, ()):
        seen = with_wire_events(replace(evidence, events=events))
        fired = [cause.code for rule in RULES if (cause := rule(seen)) is not None]
        assert fired == [], f"rules fired on a healthy boot ({len(events)} events)"


def assert_firmware_kept_ip6_settings(result: BootResult, scenario: Scenario) -> None:
    """OVMF read the NVRAM settings pxelab wrote: it rewrites the variable during the
    boot (PXE/HTTP boot change the policy) and keeps our IAID and DAD transmit count;
    had it found the variable corrupt, it would have made a new one with a random IAID
    and one DAD transmit."""
    [data] = [v.data for v in read_variables(result.artifacts / OVMF_VARS)
              if v.guid == IP6_CONFIG_GUID]
    records = decode_ip6_config(data)
    assert int.from_bytes(data[:4], "little") == default_iaid(scenario.guest.mac)
    assert int.from_bytes(records[3], "little") == scenario.guest.ip6_settings.dad_transmits
