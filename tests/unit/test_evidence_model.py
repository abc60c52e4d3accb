"""Evidence: the merged timeline on one clock, and its JSON round trip."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pxelab.analysis.evidence import BootFacts, Evidence, LogLine, PacketRecord, Source
from pxelab.core.events import Event
from pxelab.machine.console import MilestoneHit, Timeline

pytestmark = pytest.mark.unit

POWER_ON = 1_800_000_000.0  # the guest's power-on on the wall clock


def evidence(*, failed: bool = False) -> Evidence:
    timeline = Timeline("legacy_pxe_ipv4", hits=[
        MilestoneHit("firmware", 0.10, "SeaBIOS (version 1.16.2)"),
        MilestoneHit("nbp", 0.50, "pxelinux.0 : 42430 bytes [PXE-NBP]")])
    if failed:
        timeline.failed_stage, timeline.failed_at = "bootloader", 2.5
        timeline.failure = "Failed to load ldlinux.c32"
    return Evidence(
        facts=BootFacts("legacy_pxe_ipv4", firmware="seabios", nbp="pxelinux.0",
                        data_files=("pxelinux.0",), initrd_modules=("virtio_net",),
                        faults=("ldlinux-missing",), notes=("a note",)),
        started_wall=POWER_ON, timeline=timeline,
        events=(Event("server", "ready", time=POWER_ON - 0.2),
                Event("tftp", "sent", client="192.0.2.100", request="pxelinux.0",
                      details={"blocks": 30}, time=POWER_ON + 0.45)),
        packets=(PacketRecord(POWER_ON + 0.30, "dhcp4", "discover", "0.0.0.0",
                              "255.255.255.255", "DISCOVER 52:54:00:12:34:56 secs=4",
                              "52:54:00:12:34:56", {"secs": 4, "options": [53, 93]}),
                 PacketRecord(POWER_ON + 0.40, "tftp", "transfer", "192.0.2.1:34904",
                              "192.0.2.100:49152", "TFTP pxelinux.0 42430 bytes",
                              fields={"complete": True})),
        firmware_log=(LogLine(POWER_ON + 0.05, "BdsDxe: loading Boot0001"),),
        artifacts={"serial log": "/tmp/x/serial.log"})


def test_entries_merge_every_source_on_seconds_since_power_on() -> None:
    entries = evidence().entries()
    assert [(round(e.seconds, 3), e.source, e.name) for e in entries] == [
        (-0.2, Source.SERVER, "server.ready"),
        (0.05, Source.FIRMWARE, "debug"),
        (0.1, Source.CONSOLE, "firmware"),
        (0.3, Source.PACKET, "dhcp4.discover"),
        (0.4, Source.PACKET, "tftp.transfer"),
        (0.45, Source.SERVER, "tftp.sent"),
        (0.5, Source.CONSOLE, "nbp"),
    ]
    assert entries[3].render().startswith("   0.300s  packet   dhcp4.discover")


def test_a_failed_boot_ends_with_its_failure_at_failed_at() -> None:
    last = evidence(failed=True).entries()[-1]
    assert (last.seconds, last.name, last.text) == (
        2.5, "FAILED bootloader", "Failed to load ldlinux.c32")


def test_round_trip_through_evidence_json(tmp_path: Path) -> None:
    original = evidence(failed=True)
    path = original.write(tmp_path)
    assert path == tmp_path / "evidence.json"
    json.loads(path.read_text())  # plain JSON
    loaded = Evidence.load(tmp_path)
    assert loaded == original
    assert loaded.entries() == original.entries()
    assert Evidence.from_dict(original.to_dict()) == original


def test_older_evidence_without_notes_still_loads() -> None:
    data = evidence().to_dict()
    del data["facts"]["notes"]
    assert Evidence.from_dict(data).facts.notes == ()
