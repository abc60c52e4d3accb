"""A live guard over the capture, for labs whose boot server sends no events.

A third-party DHCP or TFTP server (pxelab.daemons) that stays silent (min-secs, a
class that leaves the guest out, a server bound elsewhere) tells pxelab nothing; the
guest retries for a minute. The wire shows it as it happens: tcpdump writes each frame
when it arrives (``-U``, pxelab.machine.capture), so the guard reads the frames
appended to ``lab.pcap`` since its last check (four times a second, on the console
watcher's thread) and judges like :class:`pxelab.analysis.live.UnansweredGuard`: the
same request from the guest :attr:`WireUnansweredGuard.REPEATS` times with no answer
on the wire for :attr:`~WireUnansweredGuard.SILENCE` seconds ends the stage.

The frames are dissected by hand (Ethernet, IPv4/IPv6, UDP, the first bytes of BOOTP,
DHCPv6 and TFTP): scapy costs a second to import and far more per frame.
"""

from __future__ import annotations

import logging
import struct
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from pxelab.machine.console import GuardVerdict

log = logging.getLogger(__name__)

# pcap file format (tcpdump's): magic -> (byte order, timestamp fraction per second).
_MAGICS = {b"\xd4\xc3\xb2\xa1": ("<", 1e6), b"\xa1\xb2\xc3\xd4": (">", 1e6),
           b"\x4d\x3c\xb2\xa1": ("<", 1e9), b"\xa1\xb2\x3c\x4d": (">", 1e9)}
_FILE_HEADER = 24
_RECORD_HEADER = 16
_ETHERTYPES = {0x0800: 4, 0x86DD: 6}
_VLAN = 0x8100
# DHCPv4 message types (RFC 2132 9.6) a client sends; DHCPv6 ones (RFC 8415 7.3).
_DHCP4_CLIENT = {1: "DISCOVER", 3: "REQUEST", 8: "INFORM"}
_DHCP6_CLIENT = {1: "Solicit", 3: "Request", 5: "Renew", 6: "Rebind", 8: "Release",
                 11: "Information-request"}
_BOOTP_OPTIONS = 240  # fixed BOOTP header (236) + the magic cookie (RFC 2131 section 3)


class PcapTail:
    """The frames tcpdump appended to a pcap file since the last :meth:`read`."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._offset = 0
        self._form: tuple[str, float] | None = None

    def read(self) -> list[tuple[float, bytes]]:
        try:
            with self.path.open("rb") as file:
                file.seek(self._offset)
                data = file.read()
        except OSError:
            return []  # not there yet: tcpdump opens it when it starts listening
        frames, used = self._records(data)
        self._offset += used
        return frames

    def _records(self, data: bytes) -> tuple[list[tuple[float, bytes]], int]:
        used = 0
        if self._form is None:
            if len(data) < _FILE_HEADER:
                return [], 0
            self._form = _MAGICS.get(data[:4], ("<", 1e6))
            used = _FILE_HEADER
        order, scale = self._form
        frames = []
        while len(data) - used >= _RECORD_HEADER:
            sec, frac, length, _ = struct.unpack_from(f"{order}IIII", data, used)
            end = used + _RECORD_HEADER + length
            if end > len(data):
                break  # a record tcpdump is still writing
            frames.append((sec + frac / scale, data[used + _RECORD_HEADER:end]))
            used = end
        return frames, used


@dataclass(frozen=True)
class Datagram:
    """A UDP datagram of a frame: the MACs, ports and payload rules need."""

    time: float
    src_mac: str
    dst_mac: str
    sport: int
    dport: int
    payload: bytes


def datagram(at: float, frame: bytes) -> Datagram | None:
    """The UDP datagram in an Ethernet frame (IPv4 or IPv6, one VLAN tag), else None."""
    if len(frame) < 14:
        return None
    offset, ethertype = 14, int.from_bytes(frame[12:14], "big")
    if ethertype == _VLAN and len(frame) >= 18:
        offset, ethertype = 18, int.from_bytes(frame[16:18], "big")
    version = _ETHERTYPES.get(ethertype)
    if version == 4 and len(frame) >= offset + 20 and frame[offset + 9] == 17:
        offset += (frame[offset] & 0x0F) * 4
    elif version == 6 and len(frame) >= offset + 40 and frame[offset + 6] == 17:
        offset += 40  # extension headers before UDP are not in DHCPv6 or TFTP traffic
    else:
        return None
    if len(frame) < offset + 8:
        return None
    sport, dport = struct.unpack_from("!HH", frame, offset)
    return Datagram(at, _mac(frame[6:12]), _mac(frame[0:6]), sport, dport, frame[offset + 8:])


def _mac(raw: bytes) -> str:
    return ":".join(f"{byte:02x}" for byte in raw)


@dataclass(frozen=True)
class Ask:
    """A request of the guest's seen on the wire, and who an answer goes to."""

    label: str  # "DHCPv4 DISCOVER", "TFTP RRQ pxelinux.0"
    client: str  # the guest's MAC
    port: int  # the guest's source port: an answer comes back to it


def ask(packet: Datagram) -> Ask | None:
    """The request ``packet`` is, if a client sent one (DHCPv4, DHCPv6, TFTP RRQ)."""
    body = packet.payload
    if packet.dport == 67 and len(body) > _BOOTP_OPTIONS and body[0] == 1:
        kind = _DHCP4_CLIENT.get(_dhcp4_type(body))
        return Ask(f"DHCPv4 {kind}", _mac(body[28:34]), packet.sport) if kind else None
    if packet.dport == 547 and body and body[0] in _DHCP6_CLIENT:
        return Ask(f"DHCPv6 {_DHCP6_CLIENT[body[0]]}", packet.src_mac, packet.sport)
    if packet.dport == 69 and body[:2] == b"\x00\x01":
        name = body[2:].split(b"\0", 1)[0].decode("ascii", "replace")
        return Ask(f"TFTP RRQ {name}", packet.src_mac, packet.sport)
    return None


def _dhcp4_type(body: bytes) -> int:
    """Option 53 of a BOOTP message (0: none)."""
    index = _BOOTP_OPTIONS
    while index + 1 < len(body) and body[index] != 255:
        code = body[index]
        if code == 0:
            index += 1
            continue
        if code == 53 and index + 2 < len(body):
            return body[index + 2]
        index += 2 + body[index + 1]
    return 0


def answered_mac(packet: Datagram) -> str:
    """The guest an answer in ``packet`` goes to ("" if it is none): a DHCPv4 reply names
    it in chaddr; DHCPv6 and TFTP answers go to its MAC."""
    body = packet.payload
    if packet.sport == 67 and len(body) > 34 and body[0] == 2:
        return _mac(body[28:34])
    if packet.sport == 547 or packet.dport not in (67, 69, 547):
        return packet.dst_mac
    return ""


Clock = Callable[[], float]


class WireUnansweredGuard:
    """A :class:`~pxelab.machine.console.StageGuard` over ``lab.pcap``: the guest sent the
    same request :attr:`REPEATS` times and nothing answered it on the wire for
    :attr:`SILENCE` seconds (the thresholds of pxelab.analysis.live.UnansweredGuard)."""

    code = "request.unanswered"
    REPEATS = 3
    SILENCE = 4.0

    def __init__(self, pcap: Path, mac: str, clock: Clock = time.time) -> None:
        self.tail = PcapTail(pcap)
        self.mac = mac.lower()
        self.clock = clock
        self._pending: dict[str, list[float]] = {}
        self._ports: dict[str, int] = {}

    def check(self) -> GuardVerdict | None:
        for at, frame in self.tail.read():
            packet = datagram(at, frame)
            if packet is not None:
                self.see(packet)
        return self.judge(self.clock())

    def see(self, packet: Datagram) -> None:
        request = ask(packet)
        if request is not None and request.client == self.mac:
            self._pending.setdefault(request.label, []).append(packet.time)
            self._ports[request.label] = request.port
        elif answered_mac(packet) == self.mac:
            # An answer to the guest: to its DHCP client or to the port a request came from.
            self._pending = {label: times for label, times in self._pending.items()
                             if not self._answers(packet, label)}

    def _answers(self, packet: Datagram, label: str) -> bool:
        if label.startswith("DHCPv4"):
            return packet.sport == 67
        if label.startswith("DHCPv6"):
            return packet.sport == 547
        return packet.dport == self._ports.get(label)

    def judge(self, now: float) -> GuardVerdict | None:
        for label, times in self._pending.items():
            first = times[0]
            if len(times) < self.REPEATS or now - first < self.SILENCE:
                continue
            established = max(times[self.REPEATS - 1], first + self.SILENCE)
            text = (f"{len(times)} {label}s from {self.mac} got no answer on the wire in "
                    f"{now - first:.1f}s (read from the capture: no boot-server events)")
            log.info("%s: %s", self.code, text)
            return GuardVerdict(self.code, text, max(now - established, 0.0))
        return None


def wire_guards(pcap: Path, mac: str) -> tuple[WireUnansweredGuard, ...]:
    """The capture's guards for one boot of the guest with ``mac`` (for a lab whose
    servers send no events; pxelab's own server has pxelab.analysis.live.live_guards)."""
    return (WireUnansweredGuard(pcap, mac),)
