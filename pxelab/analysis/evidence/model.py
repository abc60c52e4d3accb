"""The evidence of one boot, as data: what the console, the server, the wire and
the firmware's debug port each saw, and the facts of the lab it ran in.

Everything is put on one clock: seconds since the guest was powered on
(:attr:`Evidence.started_wall` is that moment on the wall clock; server events,
packets and firmware log lines carry wall-clock times, console milestones
carry seconds already). :meth:`Evidence.entries` is the merged timeline.

This module is data only: :mod:`pxelab.analysis.evidence.collect` fills it after a boot,
:mod:`pxelab.analysis.diagnosis` reads it, :mod:`pxelab.analysis.report` renders it, and
``evidence.json`` in a boot's artifact directory is its serialised form
(:meth:`Evidence.to_dict` / :meth:`Evidence.from_dict`).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

from pxelab.core.events import Event
from pxelab.machine.console import MilestoneHit, Timeline
from pxelab.machine.firmware_log import LogLine

EVIDENCE_FILE = "evidence.json"


class Source(StrEnum):
    """Where a timeline entry comes from."""

    CONSOLE = "console"  # a milestone (or the failure) seen on the serial console
    SERVER = "server"  # a boot server event (pxelab.core.events)
    PACKET = "packet"  # a packet (or a summarised transfer) in the lab capture
    FIRMWARE = "firmware"  # a line OVMF wrote to its debug port (isa-debugcon)
    DAEMON = "daemon"  # a line a lab daemon wrote to its own log (ganesha.log)


@dataclass(frozen=True)
class PacketRecord:
    """One packet of the lab capture, or one summarised bulk transfer, dissected.

    ``proto``: "dhcp4", "dhcp6", "ra" (RS/RA/NS/NA), "tftp", "http", "nfs", "arp",
    "tcp" (connection attempts), "icmp" (destination unreachable), "other".
    ``kind``: the message in lower case ("discover", "offer", "solicit",
    "advertise", "release", "rs", "ra", "rrq", "oack", "error", "transfer",
    "request", "response", "connection", "connect", "unreachable", ...). A TFTP
    transfer's DATA/ACK packets are one record of kind "transfer" whose ``fields``
    say file, blksize, blocks, bytes, last_block, complete, retransmits; NFS traffic
    is one "connection" record per TCP connection, plus an "error" record per
    refused or failed RPC reply. ``client`` is the guest's MAC when the packet
    shows it. ``fields`` hold the decoded values rules look at (DHCP options by
    name: "vendor_class", "arch", "user_class", "secs", "xid", "file",
    "yiaddr", "has_option_43", "boot_url", "vendor_class_echo", ...).
    """

    time: float
    proto: str
    kind: str
    src: str
    dst: str
    summary: str
    client: str = ""
    fields: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class BootFacts:
    """What the lab was: the things a diagnosis needs besides what happened."""

    scenario: str
    firmware: str = ""  # "seabios" / "ovmf"
    mode: str = ""  # BootMode value
    ip: str = ""  # "ipv4" / "ipv6"
    nic_model: str = ""
    loader: str = ""  # BootLoader value
    nbp: str = ""  # the first file the firmware fetches
    link_mtu: int = 1500  # of the lab link the guest is on
    data_root: str = ""  # the directory TFTP and HTTP serve
    data_files: tuple[str, ...] = ()  # its files, relative paths
    initrd_modules: tuple[str, ...] = ()  # kernel module names packed in the initramfs
    nic_driver: str = ""  # the guest kernel module the NIC needs
    faults: tuple[str, ...] = ()  # regressions applied, as NAME[=ARGS]
    reproduce: str = ""  # one shell command that boots this case again by hand
    rng_device: str = ""  # the guest's RNG device model ("" for none: EDK2 needs one)
    firmware_set: str = "host"  # the firmware set the guest booted (pxelab.machine.fwsets)
    # Debian package -> version of the firmware the guest ran ("ovmf": "2022.11-6+deb12u2").
    firmware_packages: dict[str, str] = field(default_factory=dict)
    # What the lab's NFS server exports, as a client mounts it ("192.0.2.1:/pxelab"; ""
    # when unknown: no server config was written).
    nfs_export: str = ""
    # The third-party daemons that served the lab instead of pxelab's server
    # (pxelab.daemons types: "dhcpd", "tftpd-hpa", ...; () for pxelab's own server), and
    # the settings of their configurations rules read ("dhcpd.min-secs": "2";
    # pxelab.analysis.evidence.daemons.SETTINGS).
    daemons: tuple[str, ...] = ()
    daemon_settings: dict[str, str] = field(default_factory=dict)
    # Secure Boot: shim's SbatLevel in the guest's NVRAM after the boot ("" none or
    # unknown), and the .sbat section of each EFI binary in the data root, by its path
    # there ("grubx64.efi": "sbat,1,...\ngrub,5,...").
    sbat_level: str = ""
    efi_sbat: dict[str, str] = field(default_factory=dict)
    # What the evidence lacks and why, for people ("firmware debug port: no output
    # (release build)", "no packet capture").
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class Entry:
    """One line of the merged timeline."""

    seconds: float
    source: Source
    name: str  # milestone name, "<source>.<kind>" of an event, "<proto>.<kind>" of a packet
    text: str

    def render(self) -> str:
        return f"{self.seconds:8.3f}s  {self.source:<8} {self.name:<22} {self.text}"


def log_entry(seconds: float, line: LogLine) -> Entry:
    """The timeline entry of a firmware debug line or a daemon's line (named by its daemon)."""
    if line.source:
        return Entry(seconds, Source.DAEMON, line.source, line.text)
    return Entry(seconds, Source.FIRMWARE, "debug", line.text)


@dataclass(frozen=True)
class Evidence:
    """Everything known about one boot, on one clock."""

    facts: BootFacts
    started_wall: float  # guest power-on, wall clock (time.time())
    timeline: Timeline
    events: tuple[Event, ...] = ()
    packets: tuple[PacketRecord, ...] = ()
    firmware_log: tuple[LogLine, ...] = ()
    # The lab daemons' log lines that may explain a failure (ganesha's refusals), not
    # their start-up chatter: see pxelab.analysis.evidence.daemonlog.
    daemon_log: tuple[LogLine, ...] = ()
    # Artifact name -> path ("serial log", "packet capture", ...), as in BootResult.
    artifacts: dict[str, str] = field(default_factory=dict)

    @property
    def scenario(self) -> str:
        return self.facts.scenario

    def seconds(self, wall: float) -> float:
        """A wall-clock time as seconds since power-on."""
        return wall - self.started_wall

    def entries(self) -> list[Entry]:
        """Console milestones, server events, packets, firmware and daemon lines, in time
        order."""
        found = [Entry(hit.seconds, Source.CONSOLE, hit.name, hit.text)
                 for hit in self.timeline.hits]
        # An event's summary starts with its "source.kind", which is the entry's name.
        found += [Entry(self.seconds(e.time), Source.SERVER, f"{e.source}.{e.kind}",
                        e.summary().partition(" ")[2]) for e in self.events]
        found += [Entry(self.seconds(p.time), Source.PACKET, f"{p.proto}.{p.kind}", p.summary)
                  for p in self.packets]
        found += [log_entry(self.seconds(line.time), line)
                  for line in (*self.firmware_log, *self.daemon_log)]
        if self.timeline.failed_stage:
            end = max((e.seconds for e in found), default=0.0)
            at = self.timeline.failed_at
            found.append(Entry(at if at is not None else end,
                               Source.CONSOLE, f"FAILED {self.timeline.failed_stage}",
                               self.timeline.failure or ""))
        return sorted(found, key=lambda entry: entry.seconds)

    def to_dict(self) -> dict[str, Any]:
        return {"facts": asdict(self.facts), "started_wall": self.started_wall,
                "timeline": self.timeline.to_dict(),
                "events": [json.loads(e.to_json()) for e in self.events],
                "packets": [asdict(p) for p in self.packets],
                "firmware_log": [asdict(line) for line in self.firmware_log],
                "daemon_log": [asdict(line) for line in self.daemon_log],
                "artifacts": dict(self.artifacts)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Evidence:
        facts = dict(data["facts"])
        for key in ("data_files", "initrd_modules", "faults", "notes", "daemons"):
            facts[key] = tuple(facts.get(key, ()))
        raw = dict(data["timeline"])
        raw.pop("ok", None)
        timeline = Timeline(**{**raw, "hits": [MilestoneHit(**h) for h in raw["hits"]]})
        return cls(
            facts=BootFacts(**facts), started_wall=float(data["started_wall"]),
            timeline=timeline,
            events=tuple(Event.from_dict(e) for e in data.get("events", ())),
            packets=tuple(PacketRecord(**p) for p in data.get("packets", ())),
            firmware_log=tuple(LogLine(**line) for line in data.get("firmware_log", ())),
            daemon_log=tuple(LogLine(**line) for line in data.get("daemon_log", ())),
            artifacts=dict(data.get("artifacts", {})))

    def write(self, directory: Path) -> Path:
        path = directory / EVIDENCE_FILE
        path.write_text(json.dumps(self.to_dict(), indent=1, default=str))
        return path

    @classmethod
    def load(cls, directory: Path) -> Evidence:
        """The evidence a boot left in its artifact directory (``evidence.json``)."""
        return cls.from_dict(json.loads((directory / EVIDENCE_FILE).read_text()))
