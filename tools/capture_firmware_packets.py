#!/usr/bin/env python3
"""Capture the first boot-time packets of real firmware, as codec test fixtures.

Each *run* boots one firmware mode under QEMU in a fresh lab network
(:class:`pxelab.machine.network.LabNetwork`, tcpdump recording its bridge) with
pxelab's :class:`~pxelab.server.bootserver.BootServer` answering. The tool reads the
growing pcap while it drains the guest console, stops QEMU as soon as every
wanted packet has been seen (or fails after a timeout, saying what is
missing), then cuts just those packets into ``<out>/<name>.pcap`` with scapy,
updates ``<out>/manifest.json`` and rewrites the generated part of
``<out>/README.md`` (the hand-written text above it stays).

    .venv/bin/python tools/capture_firmware_packets.py --out fixtures/packets
    .venv/bin/python tools/capture_firmware_packets.py --out fixtures/packets --only ovmf-pxe6

OVMF modes are selected with fw_cfg switches (``opt/org.tianocore/...``) so
that no run waits out a boot option's 60 s timeout. Needs root, QEMU, OVMF,
SeaBIOS, ipxe-qemu, syslinux (see debian-packages.txt). The full lab pcap,
serial log and server events of each run stay in ``--artifacts``.
"""

from __future__ import annotations

import argparse
import datetime
import json
import logging
import os
import re
import shlex
import signal
import struct
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, closing
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any

import pexpect
from scapy.layers.dhcp6 import DHCP6, DHCP6OptClientArchType, DHCP6OptVendorClass
from scapy.layers.inet import UDP
from scapy.layers.l2 import Ether
from scapy.utils import wrpcap

from pxelab.core.errors import GuestError, PxelabError, WaitTimeoutError
from pxelab.core.events import EventLog
from pxelab.core.paths import REPO_ROOT
from pxelab.machine import firmware
from pxelab.machine.network import LabNetwork
from pxelab.machine.qemu import Firmware, Guest, GuestSpec
from pxelab.server.bootserver import BootServer, ServerConfig
from pxelab.server.dhcp4 import codec as dhcp4
from pxelab.server.policy import RulePolicy
from pxelab.server.tftp import codec as tftp

log = logging.getLogger("capture")

MAC = "52:54:00:12:34:56"
DEFAULT_TIMEOUT_S = 150.0
CONSOLE_POLL_S = 0.25
PXE4_OFF = ("opt/org.tianocore/IPv4PXESupport", "n")
PXE6_OFF = ("opt/org.tianocore/IPv6PXESupport", "n")
NO_ROM = ""  # OVMF then drives the NIC with VirtioNetDxe + NetworkPkg, not iPXE
DEFAULT_ARTIFACTS = Path("/tmp/pxelab-captures")
# Console lines after which the wanted packets can no longer come: fail at once.
GIVE_UP = re.compile(r"UEFI Interactive Shell|EFI Internal Shell|No more network devices|"
                     r"Nothing to boot")
PXELINUX_CFG = "SAY pxelab packet capture: configuration read\nPROMPT 0\n"

# Package versions recorded with every capture.
SEABIOS_PARTS = ("qemu", "seabios", "rom-virtio", "pxelinux.0", "ldlinux.c32")
OVMF_PARTS = ("qemu", "ovmf-code")


# -- what a captured frame is ----------------------------------------------------------------

@dataclass(frozen=True)
class Seen:
    """One frame of the lab capture, decoded as far as the codecs go."""

    time: float
    frame: bytes
    from_guest: bool
    dhcp4: dhcp4.DhcpMessage | None = None
    tftp: tftp.Packet | None = None
    dhcp6: Any = None  # scapy DHCP6 message layer

    def summary(self) -> str:
        if self.dhcp4 is not None:
            return summarize_dhcp4(self.dhcp4)
        if self.tftp is not None:
            return summarize_tftp(self.tftp)
        if self.dhcp6 is not None:
            return summarize_dhcp6(self.dhcp6)
        return Ether(self.frame).summary()


def classify(stamp: float, frame: bytes, guest_mac: str) -> Seen:
    packet = Ether(frame)
    from_guest = packet.src.lower() == guest_mac
    if UDP not in packet:
        return Seen(stamp, frame, from_guest)
    udp = packet[UDP]
    payload = bytes(udp.payload)
    if {udp.sport, udp.dport} <= {67, 68}:
        try:
            return Seen(stamp, frame, from_guest, dhcp4=dhcp4.decode(payload))
        except dhcp4.DhcpDecodeError:
            return Seen(stamp, frame, from_guest)
    if {udp.sport, udp.dport} <= {546, 547}:
        # getlayer(DHCP6) would miss it: each message type is its own DHCP6 subclass.
        message = udp.payload if isinstance(udp.payload, DHCP6) else None
        return Seen(stamp, frame, from_guest, dhcp6=message)
    # Everything else UDP in a lab is TFTP (port 69, then the transfer's own ports).
    try:
        return Seen(stamp, frame, from_guest, tftp=tftp.decode(payload))
    except tftp.TftpDecodeError:
        return Seen(stamp, frame, from_guest)


def summarize_dhcp4(msg: dhcp4.DhcpMessage) -> str:
    mtype = msg.message_type
    parts = [mtype.name if mtype else "BOOTP", f"secs={msg.secs}",
             f"flags=0x{msg.flags:04x}"]
    for code, label in ((93, "arch"), (60, "vendor-class"), (77, "user-class"),
                        (55, "params")):
        value = msg.get(code)
        if value is not None:
            parts.append(f"{label}={_plain(value)}")
    parts.append("options=" + ",".join(str(code) for code, _ in msg.options))
    return " ".join(parts)


def summarize_tftp(packet: tftp.Packet) -> str:
    if isinstance(packet, tftp.ReadRequest):
        options = " ".join(f"{name}={value}" for name, value in packet.options)
        return f"RRQ {packet.filename} {packet.mode} {options}".rstrip()
    if isinstance(packet, tftp.Error):
        return f"ERROR {packet.code} {packet.message!r}"
    return type(packet).__name__


def summarize_dhcp6(message: Any) -> str:
    parts = [type(message).__name__.removeprefix("DHCP6_")]
    arch = message.getlayer(DHCP6OptClientArchType)
    if arch is not None:
        parts.append(f"arch={list(arch.archtypes)}")
    vendor = message.getlayer(DHCP6OptVendorClass)
    if vendor is not None:
        data = b"".join(bytes(item.data) for item in vendor.vcdata)
        parts.append(f"vendor-class={vendor.enterprisenum}:{data.decode('latin-1')}")
    parts.append("options=" + ",".join(str(code) for code in dhcp6_option_codes(message)))
    return " ".join(parts)


def dhcp6_option_codes(message: Any) -> list[int]:
    """Top-level option codes of a scapy DHCPv6 message, in wire order."""
    codes, layer = [], message.payload
    while layer is not None and hasattr(layer, "optcode"):
        codes.append(int(layer.optcode))
        layer = layer.payload if layer.payload else None
    return codes


def _plain(value: object) -> str:
    if isinstance(value, tuple):
        return "[" + ",".join(str(v) for v in value) + "]"
    if isinstance(value, bytes):
        return value.decode("latin-1")
    return str(value)


# -- what a run waits for and keeps ----------------------------------------------------------

Match = Callable[[Seen], bool]


@dataclass(frozen=True)
class Want:
    """Keep the first ``count`` guest frames that ``match``; ``until``: keep up to that one."""

    label: str
    match: Match
    count: int = 1
    until: Match | None = None


@dataclass(frozen=True)
class Output:
    """One fixture pcap: the frames its wants keep, in capture order."""

    name: str
    description: str
    wants: tuple[Want, ...]


@dataclass(frozen=True)
class Run:
    """One guest boot and the fixtures cut out of it."""

    name: str
    description: str
    guest: GuestSpec
    outputs: tuple[Output, ...]
    parts: tuple[str, ...]  # firmware catalog entries whose versions are recorded
    files: tuple[tuple[str, str], ...] = ()  # (data-root name, catalog entry)
    texts: tuple[tuple[str, str], ...] = ()  # (data-root name, content)


def dhcp4_sent(mtype: dhcp4.MessageType, vendor_prefix: str = "") -> Match:
    def match(seen: Seen) -> bool:
        msg = seen.dhcp4
        return (msg is not None and msg.op is dhcp4.Op.BOOTREQUEST
                and msg.message_type is mtype
                and (msg.text(60) or "").startswith(vendor_prefix))
    return match


def rrq(name: str | None = None, prefix: str | None = None) -> Match:
    def match(seen: Seen) -> bool:
        packet = seen.tftp
        if not isinstance(packet, tftp.ReadRequest):
            return False
        return packet.filename == name if name is not None \
            else packet.filename.startswith(prefix or "")
    return match


def tftp_error(seen: Seen) -> bool:
    return isinstance(seen.tftp, tftp.Error)


def solicit(arch: int) -> Match:
    def match(seen: Seen) -> bool:
        message = seen.dhcp6
        if message is None or type(message).__name__ != "DHCP6_Solicit":
            return False
        layer = message.getlayer(DHCP6OptClientArchType)
        return layer is not None and arch in layer.archtypes
    return match


def _runs() -> tuple[Run, ...]:
    discover, request = dhcp4.MessageType.DISCOVER, dhcp4.MessageType.REQUEST
    return (
        Run("seabios-ipxe", "SeaBIOS + the iPXE ROM QEMU loads for virtio-net-pci, "
            "answered with pxelinux.0", GuestSpec(firmware=Firmware.SEABIOS, mac=MAC),
            outputs=(
                Output("ipxe-bios-dhcp4", "iPXE ROM (BIOS): first DHCPv4 DISCOVER and REQUEST",
                       (Want("iPXE DISCOVER", dhcp4_sent(discover)),
                        Want("iPXE REQUEST", dhcp4_sent(request)))),
                Output("ipxe-bios-tftp-rrq", "iPXE ROM (BIOS): TFTP RRQ of pxelinux.0",
                       (Want("RRQ pxelinux.0", rrq("pxelinux.0")),)),
                Output("pxelinux-tftp-rrq", "PXELINUX 6.04: TFTP RRQs of ldlinux.c32 and of "
                       "every pxelinux.cfg/ name up to 'default'",
                       (Want("RRQ ldlinux.c32", rrq("ldlinux.c32")),
                        Want("RRQs pxelinux.cfg/*", rrq(prefix="pxelinux.cfg/"), count=64,
                             until=rrq("pxelinux.cfg/default")))),
            ),
            parts=SEABIOS_PARTS,
            files=(("pxelinux.0", "pxelinux.0"), ("ldlinux.c32", "ldlinux.c32")),
            texts=(("pxelinux.cfg/default", PXELINUX_CFG),)),
        Run("ovmf-pxe4", "OVMF, EDK2 network stack (NIC romfile= empty), all boot options "
            "on: PXEv4 comes first; bootx64.efi is syslinux.efi",
            GuestSpec(firmware=Firmware.OVMF, mac=MAC, nic_romfile=NO_ROM),
            outputs=(
                Output("ovmf-pxe4-dhcp4", "OVMF PXEv4: first DHCPv4 DISCOVER and REQUEST",
                       (Want("PXEClient DISCOVER", dhcp4_sent(discover, "PXEClient")),
                        Want("PXEClient REQUEST", dhcp4_sent(request, "PXEClient")))),
                Output("ovmf-pxe4-tftp", "OVMF PXEv4: size-probe RRQ of bootx64.efi, the "
                       "client's ERROR that ends the probe, the real RRQ",
                       (Want("RRQs bootx64.efi", rrq("bootx64.efi"), count=2),
                        Want("client ERROR", tftp_error))),
            ),
            parts=(*OVMF_PARTS, "syslinux.efi"), files=(("bootx64.efi", "syslinux.efi"),)),
        Run("ovmf-pxe6", "OVMF, EDK2 network stack, IPv4PXESupport=n: PXEv6 comes first",
            GuestSpec(firmware=Firmware.OVMF, mac=MAC, nic_romfile=NO_ROM, fw_cfg=(PXE4_OFF,)),
            outputs=(
                Output("ovmf-pxe6-solicit", "OVMF PXEv6: the first DHCPv6 Solicit",
                       (Want("PXE Solicit (arch 7)", solicit(7)),)),
            ),
            parts=OVMF_PARTS),
        Run("ovmf-http", "OVMF, EDK2 network stack, IPv4PXESupport=n and IPv6PXESupport=n: "
            "HTTPv4 comes first; its URL answers 404, so HTTPv6 follows at once",
            GuestSpec(firmware=Firmware.OVMF, mac=MAC, nic_romfile=NO_ROM,
                      fw_cfg=(PXE4_OFF, PXE6_OFF)),
            outputs=(
                Output("ovmf-http4-dhcp4", "OVMF HTTPv4: first DHCPv4 DISCOVER and REQUEST",
                       (Want("HTTPClient DISCOVER", dhcp4_sent(discover, "HTTPClient")),
                        Want("HTTPClient REQUEST", dhcp4_sent(request, "HTTPClient")))),
                Output("ovmf-http6-solicit", "OVMF HTTPv6: the first DHCPv6 Solicit",
                       (Want("HTTP Solicit (arch 16)", solicit(16)),)),
            ),
            parts=OVMF_PARTS),
    )


RUNS: dict[str, Run] = {run.name: run for run in _runs()}


class Collector:
    """Hands every guest frame to each want; knows what is kept and what is missing."""

    def __init__(self, run: Run) -> None:
        self.wants = [(output.name, want) for output in run.outputs for want in output.wants]
        self.kept: dict[tuple[str, str], list[Seen]] = {(o, w.label): [] for o, w in self.wants}
        self.done: set[tuple[str, str]] = set()

    def offer(self, seen: Seen) -> None:
        if not seen.from_guest:
            return
        for output, want in self.wants:
            key = (output, want.label)
            if key in self.done or not want.match(seen):
                continue
            self.kept[key].append(seen)
            log.info("kept for %s (%s): %s", output, want.label, seen.summary())
            finished = want.until(seen) if want.until else len(self.kept[key]) >= want.count
            if finished:
                self.done.add(key)

    @property
    def complete(self) -> bool:
        return len(self.done) == len(self.wants)

    def missing(self) -> list[str]:
        return [f"{o}: {w.label}" for o, w in self.wants if (o, w.label) not in self.done]

    def frames(self, output: str) -> list[Seen]:
        found = [s for (o, _), kept in self.kept.items() if o == output for s in kept]
        return sorted(found, key=lambda s: s.time)


# -- reading tcpdump's pcap while it grows ---------------------------------------------------

class PcapTail:
    """Reads the complete records tcpdump has written so far (classic pcap, Ethernet)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.offset = 0
        self.endian = ""
        self.nanos = False

    def read(self) -> Iterator[tuple[float, bytes]]:
        try:
            with self.path.open("rb") as pcap:
                pcap.seek(self.offset)
                data = pcap.read()
        except FileNotFoundError:
            return
        position = 0
        if not self.endian:
            if len(data) < 24:
                return
            self._header(data[:24])
            position = 24
        while len(data) - position >= 16:
            sec, frac, caplen, _ = struct.unpack_from(self.endian + "IIII", data, position)
            if len(data) - position - 16 < caplen:
                break  # tcpdump is still writing this record
            frame = data[position + 16:position + 16 + caplen]
            position += 16 + caplen
            yield sec + frac / (1e9 if self.nanos else 1e6), frame
        self.offset += position

    def _header(self, header: bytes) -> None:
        magic = header[:4]
        kinds = {b"\xd4\xc3\xb2\xa1": ("<", False), b"\xa1\xb2\xc3\xd4": (">", False),
                 b"\x4d\x3c\xb2\xa1": ("<", True), b"\xa1\xb2\x3c\x4d": (">", True)}
        if magic not in kinds:
            raise PxelabError(f"{self.path} is not a classic pcap (magic {magic.hex()})")
        self.endian, self.nanos = kinds[magic]
        (linktype,) = struct.unpack_from(self.endian + "I", header, 20)
        if linktype != 1:
            raise PxelabError(f"{self.path} has link type {linktype}, not Ethernet")


# -- one run -----------------------------------------------------------------------------------

_ANSI = re.compile(rb"\x1b\[[0-9;?]*[A-Za-z]|\x1b[()][A-Z0-9]|\r")


class ConsoleLines:
    """Logs the guest console line by line while it is drained."""

    def __init__(self, name: str) -> None:
        self.log = logging.getLogger(f"capture.{name}.console")
        self.partial = b""

    def feed(self, data: bytes) -> list[str]:
        """Log the complete lines in ``data``; return them."""
        lines = (self.partial + _ANSI.sub(b"", data)).split(b"\n")
        self.partial = lines.pop()
        texts = [text for line in lines if (text := line.decode("utf-8", "replace").strip())]
        for text in texts:
            self.log.info("%s", text)
        return texts


def wait_for_wants(guest: Guest, tail: PcapTail, collector: Collector, name: str,
                   timeout: float) -> None:
    """Read the pcap and drain the console until every want is met; WaitTimeoutError if not."""
    console = ConsoleLines(name)
    deadline = time.monotonic() + timeout
    while True:
        for stamp, frame in tail.read():
            collector.offer(classify(stamp, frame, MAC))
        if collector.complete:
            return
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise WaitTimeoutError(f"run {name}: after {timeout:.0f}s still missing "
                                   f"{collector.missing()}; see {guest.serial_log}")
        try:
            # Waiting for console output is the tick; it also keeps the UART flowing.
            data = guest.console.read_nonblocking(65536, min(CONSOLE_POLL_S, remaining))
        except pexpect.TIMEOUT:
            continue
        except pexpect.EOF:
            raise GuestError(f"run {name}: QEMU exited while still waiting for "
                             f"{collector.missing()}; see {guest.serial_log}") from None
        for line in console.feed(data):
            if GIVE_UP.search(line):
                raise GuestError(f"run {name}: the firmware gave up network boot ({line!r}) "
                                 f"while still waiting for {collector.missing()}; see "
                                 f"{guest.serial_log}")


def prepare_data_root(run: Run, root: Path) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    for target, entry in run.files:
        (root / target).write_bytes(firmware.locate(entry).read_bytes())
    for target, text in run.texts:
        (root / target).parent.mkdir(parents=True, exist_ok=True)
        (root / target).write_text(text)
    return root


def capture(run: Run, workdir: Path, timeout: float) -> Collector:
    """Boot ``run``'s guest until its wanted frames are in the lab pcap; what was kept."""
    log.info("run %s: %s (artifacts in %s)", run.name, run.description, workdir)
    collector = Collector(run)
    started = time.monotonic()
    with ExitStack() as stack:
        net = stack.enter_context(LabNetwork(artifacts_dir=workdir))
        events = stack.enter_context(closing(EventLog(workdir / "events.jsonl")))
        config = ServerConfig(interface=net.bridge, ipv4=net.ipv4, ipv6=net.ipv6,
                              data_root=prepare_data_root(run, workdir / "data"))
        stack.enter_context(BootServer(config, RulePolicy(), events, namespace=net.namespace))
        guest = stack.enter_context(Guest(run.guest, net.add_tap(), workdir, net.namespace))
        assert net.pcap_path is not None
        wait_for_wants(guest, PcapTail(net.pcap_path), collector, run.name, timeout)
        log.info("run %s: every wanted packet captured after %.1fs; stopping the guest",
                 run.name, time.monotonic() - started)
    return collector


# -- fixtures, manifest, README ------------------------------------------------------------------

def write_outputs(run: Run, collector: Collector, out: Path, command: str) -> dict[str, Any]:
    versions = firmware.versions_in_use(run.parts)
    entries: dict[str, Any] = {}
    for output in run.outputs:
        frames = collector.frames(output.name)
        packets = []
        for seen in frames:
            packet = Ether(seen.frame)
            packet.time = seen.time
            packets.append(packet)
        path = out / f"{output.name}.pcap"
        wrpcap(str(path), packets)
        log.info("wrote %s: %d packets, %d bytes", path, len(packets), path.stat().st_size)
        entries[output.name] = {
            "file": path.name, "run": run.name, "description": output.description,
            "setup": run.description, "packets": [s.summary() for s in frames],
            "versions": versions, "fw_cfg": [f"{k}={v}" for k, v in run.guest.fw_cfg],
            "captured": datetime.date.today().isoformat(), "command": command,
        }
    return entries


def update_manifest(out: Path, entries: dict[str, Any]) -> dict[str, Any]:
    path = out / "manifest.json"
    manifest: dict[str, Any] = json.loads(path.read_text()) if path.exists() else {}
    manifest.update(entries)
    manifest = dict(sorted(manifest.items()))
    path.write_text(json.dumps(manifest, indent=2) + "\n")
    return manifest


GENERATED_START = "<!-- generated by tools/capture_firmware_packets.py: do not edit below -->"
GENERATED_END = "<!-- end of generated part -->"


def render_generated(manifest: dict[str, Any]) -> str:
    """The README part the tool owns: one section per fixture, from the manifest."""
    lines = [GENERATED_START, "", "## Each capture, as the tool recorded it", ""]
    for entry in manifest.values():
        versions = ", ".join(f"{p} {v}" for p, v in entry["versions"].items())
        lines += [f"### {entry['file']}", "", entry["description"] + ".", "",
                  f"- setup: {entry['setup']}"]
        if entry["fw_cfg"]:
            lines.append(f"- fw_cfg: {', '.join(entry['fw_cfg'])}")
        lines += [f"- packages: {versions}",
                  f"- captured {entry['captured']} by run `{entry['run']}` of "
                  f"`{entry['command']}`", "- packets:"]
        lines += [f"  {i}. `{summary}`" for i, summary in enumerate(entry["packets"], 1)]
        lines.append("")
    return "\n".join([*lines, GENERATED_END])


def update_readme(path: Path, manifest: dict[str, Any]) -> None:
    """Replace the generated part of ``path``, keeping what people wrote above and below."""
    text = path.read_text() if path.exists() else "# fixtures/packets\n\n"
    head, _, rest = text.partition(GENERATED_START)
    _, _, tail = rest.partition(GENERATED_END)
    path.write_text(head + render_generated(manifest) + (tail or "\n"))


def _unwind_on_signals() -> None:
    """SIGINT/SIGTERM unwind the stack (so the lab is torn down), in this process only.

    pyroute2 forks helpers that inherit handlers; one of them unwinding would
    tear the lab down under us (see pxelab.cli).
    """
    owner = os.getpid()

    def interrupt(signum: int, frame: FrameType | None) -> None:
        if os.getpid() != owner:
            os._exit(128 + signum)
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGINT, interrupt)
    signal.signal(signal.SIGTERM, interrupt)


# -- command line ------------------------------------------------------------------------------

def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=REPO_ROOT / "fixtures" / "packets",
                        help="where the fixture pcaps, manifest.json and README.md go")
    parser.add_argument("--only", action="append", choices=sorted(RUNS), metavar="RUN",
                        help=f"run only these (repeatable): {', '.join(RUNS)}")
    parser.add_argument("--artifacts", type=Path, default=DEFAULT_ARTIFACTS,
                        help="per-run lab pcap, serial log, events (default %(default)s)")
    parser.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT_S,
                        help="seconds one run may take to show its packets")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = _parser().parse_args(argv)
    _unwind_on_signals()
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(asctime)s %(name)s %(levelname)s %(message)s")
    command = shlex.join(["tools/capture_firmware_packets.py", *argv])
    args.out.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    failed = []
    for name in args.only or RUNS:
        run = RUNS[name]
        try:
            collector = capture(run, args.artifacts / f"{stamp}-{name}", args.timeout)
        except KeyboardInterrupt:
            log.error("interrupted during run %s; its lab was torn down", name)
            return 130
        except PxelabError as error:
            log.error("run %s failed: %s", name, error)
            failed.append(name)
            continue
        manifest = update_manifest(args.out, write_outputs(run, collector, args.out, command))
        update_readme(args.out / "README.md", manifest)
    log.info("rerun with: %s", shlex.join([sys.executable, *sys.argv]))
    if failed:
        log.error("failed runs: %s (fixtures of the others were written)", ", ".join(failed))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
