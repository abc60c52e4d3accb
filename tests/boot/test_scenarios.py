"""Every scenario boots to userspace on the lab's NFS root, on real parts.

Select one with ``pytest -k legacy_pxe_ipv4``.
"""

from __future__ import annotations

import pytest

from pxelab.scenarios import SCENARIOS

pytestmark = [pytest.mark.qemu, pytest.mark.netns, pytest.mark.slow]


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_boot(boot_scenario, name):
    scenario = SCENARIOS[name]
    result = boot_scenario(name)
    timeline = result.timeline

    assert timeline.ok, f"stage {timeline.failed_stage} failed: {timeline.failure}"
    assert [h.name for h in timeline.hits] == [m.name for m in scenario.milestones]
    seconds = [h.seconds for h in timeline.hits]
    assert seconds == sorted(seconds), "milestones must be reached in order"
    assert result.marker == {"root": result.nfs_source, "fstype": "nfs4"}
    assert result.ok

    # The server's side of the story: one client, leased twice (firmware and
    # initramfs), and every file of the chain sent in full.
    acks = [e for e in result.events if e.source == "dhcp4" and e.kind == "ack"]
    assert {e.client for e in acks} == {scenario.guest.mac}
    assert len(acks) >= 2
    sent = {e.request.lstrip("/") for e in result.events
            if e.source == "tftp" and e.kind == "sent"}
    sent |= {e.details["path"].lstrip("/") for e in result.events
             if e.source == "http" and e.kind == "get" and e.details.get("status") == 200}
    assert set(scenario.fetched) <= sent
