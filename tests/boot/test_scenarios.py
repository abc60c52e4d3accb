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


@pytest.mark.parametrize("name", ["legacy_pxe_ipv4"])
def test_boot_server_saw_the_whole_chain(boot_scenario, name):
    result = boot_scenario(name)
    assert result.ok, result.timeline.failure
    events = result.events

    acks = [e for e in events if e.source == "dhcp4" and e.kind == "ack"]
    # One lease for the firmware (iPXE ROM), one for the initramfs (udhcpc).
    assert len({e.client for e in acks}) == 1 and len(acks) >= 2
    sent = {e.request for e in events if e.source == "tftp" and e.kind == "sent"}
    assert {"pxelinux.0", "ldlinux.c32", "pxelinux.cfg/default", "vmlinuz",
            "initrd.img"} <= sent
