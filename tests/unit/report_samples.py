"""Synthetic boots for the report tests: evidence and diagnosis of a failed and a good boot.

The failed one is PXELINUX missing ldlinux.c32 on an e1000 case with a fault
applied; its console holds markup and control characters, as a real console may.
:func:`in_set` makes either a boot of a firmware set, with that set's versions.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

from pxelab.analysis.diagnosis import Cause, Diagnosis
from pxelab.analysis.evidence import BootFacts, Evidence, LogLine, PacketRecord
from pxelab.core.events import Event
from pxelab.machine.console import MilestoneHit, Timeline

T0 = 1000.0  # the guest's power-on, wall clock
HOSTILE = "<script>alert('x')</script> & \"q\" \x1b[2J\x00 done"
REPRODUCE = ("pxelab boot 'legacy_pxe_ipv4[e1000]' --fault ldlinux-missing "
             "--artifacts pxelab-artifacts")
RETRIES = 20


def hits(*names_seconds: tuple[str, float]) -> list[MilestoneHit]:
    return [MilestoneHit(name, seconds, f"{name} seen") for name, seconds in names_seconds]


def failed_evidence() -> Evidence:
    timeline = Timeline(
        "legacy_pxe_ipv4[e1000]",
        hits(("firmware", 0.1), ("rom", 0.2), ("rom_dhcp", 0.4), ("nbp", 0.5),
             ("bootloader", 0.6)),
        failed_stage="config", failure="no config (pxelinux config) within 30s",
        failed_at=30.6, console_tail=f"PXELINUX 6.04\nFailed to load ldlinux.c32\n{HOSTILE}",
        properties={"accelerator": "tcg", "kernel_version": "6.1.0-test",
                    "packages": {"ipxe-qemu": "1.0+<b>"}})
    events = [
        *(Event("fault", "injected", request=f"tftp.rrq #{n}",
                reason="remove ldlinux.c32 from the data root", time=T0 - 0.2 + n / 100)
          for n in (1, 2, 3)),
        Event("server", "ready", time=T0 - 0.1),
        Event("ra", "sent", client="ff02::1", request="periodic", reason="periodic",
              time=T0 + 0.3),
        Event("dhcp4", "offer", client="52:54:00:12:34:56", answer="192.0.2.100",
              reason="arch 0 (BIOS) -> pxelinux.0", time=T0 + 0.35),
        Event("tftp", "rrq", client="192.0.2.100", request="pxelinux.0", time=T0 + 0.45),
        Event("tftp", "sent", client="192.0.2.100", request="pxelinux.0", time=T0 + 0.48),
        Event("tftp", "not_found", client="192.0.2.100", request="ldlinux.c32",
              reason="'ldlinux.c32': no regular file at /srv/<data>", time=T0 + 0.62),
        *(Event("tftp", "rrq", client="192.0.2.100", request=f"retry{n}.c32",
                time=T0 + 1 + n) for n in range(RETRIES)),
        Event("dhcp4", "discover", client="52:54:00:12:34:56", reason="after the failure",
              time=T0 + 31.5),
        Event("server", "stopped", time=T0 + 32),
    ]
    packets = [
        PacketRecord(T0 + 0.34, "dhcp4", "discover", "0.0.0.0", "255.255.255.255",
                     "DHCP DISCOVER secs=0", client="52:54:00:12:34:56"),
        PacketRecord(T0 + 0.5, "arp", "request", "192.0.2.100", "192.0.2.1", "ARP who-has"),
        PacketRecord(T0 + 0.61, "tftp", "rrq", "192.0.2.100", "192.0.2.1",
                     "TFTP RRQ ldlinux.c32"),
    ]
    facts = BootFacts(scenario="legacy_pxe_ipv4[e1000]", firmware="seabios", nic_model="e1000",
                      faults=("ldlinux-missing",), reproduce=REPRODUCE)
    return Evidence(facts=facts, started_wall=T0, timeline=timeline, events=tuple(events),
                    packets=tuple(packets),
                    firmware_log=(LogLine(T0 + 0.2, "PXE <firmware> line"),))


def not_found_line(evidence: Evidence) -> str:
    return next(e.render() for e in evidence.entries() if e.name == "tftp.not_found")


def failed_diagnosis(evidence: Evidence) -> Diagnosis:
    cause = Cause("file.not_found", "config",
                  "the NBP pxelinux.0 was sent, then ldlinux.c32 was not found in /srv/<data>",
                  evidence=(not_found_line(evidence),),
                  fix="put ldlinux.c32 from the same syslinux build beside pxelinux.0")
    timeline = evidence.timeline
    return Diagnosis(evidence.scenario, ok=False, failed_stage=timeline.failed_stage,
                     failure=timeline.failure, causes=(cause,))


def good_evidence(scenario: str = "legacy_pxe_ipv4", scale: float = 1.0) -> Evidence:
    timeline = Timeline(scenario, hits(*((name, seconds * scale) for name, seconds in (
        ("firmware", 0.1), ("rom", 0.2), ("nbp", 0.5), ("kernel", 4.0), ("userspace", 8.0)))),
        console_tail="PXELAB-USERSPACE root=192.0.2.1:/pxelab fstype=nfs4")
    return Evidence(facts=BootFacts(scenario=scenario), started_wall=T0, timeline=timeline,
                    events=(Event("dhcp4", "offer", client="52:54:00:12:34:56",
                                  time=T0 + 0.3),))


def in_set(evidence: Evidence, fwset: str, packages: dict[str, str],
           started: float = T0) -> Evidence:
    """``evidence`` as a boot of firmware set ``fwset`` records it (timeline properties)."""
    props = {**evidence.timeline.properties, "firmware_set": fwset,
             "firmware_set_origin": f"Debian {fwset}", "packages": packages}
    return replace(evidence, started_wall=started,
                   timeline=replace(evidence.timeline, properties=props))


def write_boot(directory: Path, evidence: Evidence, diagnosis: Diagnosis | None) -> Path:
    """An artifact directory as BootRun leaves it (evidence.json, diagnosis.json, logs)."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "serial.log").write_text("console bytes")
    (directory / "nfs").mkdir(exist_ok=True)
    (directory / "nfs" / "ganesha.log").write_text("ganesha")
    # Paths as the boot recorded them, somewhere the directory no longer is.
    moved = {"serial log": "/elsewhere/run/serial.log",
             "ganesha log": "/elsewhere/run/nfs/ganesha.log"}
    replace(evidence, artifacts=moved).write(directory)
    if diagnosis is not None:
        (directory / "diagnosis.json").write_text(json.dumps(diagnosis.to_dict()))
    return directory
