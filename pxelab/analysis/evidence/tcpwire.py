"""TCP connection attempts and ICMP "destination unreachable" in a capture.

Whether a server listened at all shows in the handshake, not in any payload: a SYN
answered by SYN-ACK (RFC 9293 section 3.5), by RST (nothing listens: "Connection
refused"), by an ICMP/ICMPv6 destination unreachable, or by nothing (the host is
down or the packets are lost). One record per attempt, kind "connect":

- fields: port, service ("http", "nfs", "portmap", "mount"), syns (the SYN and its
  retransmissions), outcome ("accepted", "refused", "unreachable", "unanswered"),
  answer_time, first_time, last_time (of the last SYN), closed ("" while open,
  "fin", "server_rst", "client_rst"), bytes_to_server, bytes_from_server.

ICMP (RFC 792: type 3) and ICMPv6 (RFC 4443 section 3.1: type 1) quote the head
of the packet they refuse; the quoted transport header names the port asked for.
One record per message, proto "icmp", kind "unreachable": fields code, reason,
quoted_proto ("udp"/"tcp"), quoted_src, quoted_dst (address:port), port.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass

from pxelab.analysis.evidence.model import PacketRecord

FIN, SYN, RST, ACK = 0x01, 0x02, 0x04, 0x10
IPPROTO_ICMP, IPPROTO_TCP, IPPROTO_UDP, IPPROTO_ICMPV6 = 1, 6, 17, 58
ICMP_UNREACHABLE, ICMPV6_UNREACHABLE = 3, 1
# RFC 792 and RFC 1812 section 5.2.7.1 (codes 9, 10, 13: administratively prohibited).
ICMP_CODES = {0: "network unreachable", 1: "host unreachable", 2: "protocol unreachable",
              3: "port unreachable", 4: "fragmentation needed", 9: "network prohibited",
              10: "host prohibited", 13: "administratively prohibited"}
# RFC 4443 section 3.1.
ICMPV6_CODES = {0: "no route to destination", 1: "administratively prohibited",
                2: "beyond scope of source address", 3: "address unreachable",
                4: "port unreachable", 5: "source address failed ingress/egress policy",
                6: "reject route to destination"}
PORT_UNREACHABLE = {(4, 3), (6, 4)}  # (IP version, code)

Endpoint = tuple[bytes, int]


def address(ip: bytes) -> str:
    return socket.inet_ntop(socket.AF_INET if len(ip) == 4 else socket.AF_INET6, ip)


def where(ip: bytes, port: int) -> str:
    """An endpoint as the records write it: "192.0.2.1:69", "[2001:db8::1]:69"."""
    return f"[{address(ip)}]:{port}" if len(ip) == 16 else f"{address(ip)}:{port}"


@dataclass(frozen=True)
class Unreachable:
    """An ICMP/ICMPv6 destination unreachable and the packet it quotes."""

    version: int  # 4 or 6
    code: int
    quoted_proto: int
    quoted_src: Endpoint
    quoted_dst: Endpoint

    @property
    def reason(self) -> str:
        codes = ICMP_CODES if self.version == 4 else ICMPV6_CODES
        return codes.get(self.code, f"code {self.code}")

    @property
    def port_unreachable(self) -> bool:
        return (self.version, self.code) in PORT_UNREACHABLE

    def fields(self) -> dict[str, object]:
        proto = {IPPROTO_TCP: "tcp", IPPROTO_UDP: "udp"}.get(self.quoted_proto,
                                                             str(self.quoted_proto))
        return {"code": self.code, "reason": self.reason, "quoted_proto": proto,
                "quoted_src": where(*self.quoted_src), "quoted_dst": where(*self.quoted_dst),
                "port": self.quoted_dst[1]}


def unreachable(message: bytes, version: int) -> Unreachable | None:
    """The ICMP (``version`` 4) or ICMPv6 (6) message as an :class:`Unreachable`, if one.

    After type, code, checksum and 4 unused bytes comes the quoted IP header
    and at least the first 8 bytes of its payload: the ports.
    """
    wanted = ICMP_UNREACHABLE if version == 4 else ICMPV6_UNREACHABLE
    if len(message) < 8 or message[0] != wanted:
        return None
    inner = message[8:]
    if version == 4:
        if len(inner) < 20:
            return None
        header = (inner[0] & 0x0F) * 4
        proto, src, dst = inner[9], inner[12:16], inner[16:20]
    else:
        if len(inner) < 40:
            return None
        header, proto, src, dst = 40, inner[6], inner[8:24], inner[24:40]
    if len(inner) < header + 4:
        return None
    ports = inner[header:header + 4]
    return Unreachable(version, message[1], proto, (src, (ports[0] << 8) | ports[1]),
                       (dst, (ports[2] << 8) | ports[3]))


@dataclass
class Attempt:
    """One TCP connection attempt from a client to a server port, and how it went."""

    client: Endpoint
    server: Endpoint
    mac: str
    service: str
    isn: int
    first_time: float
    last_time: float
    syns: int = 1
    outcome: str = "unanswered"
    answer_time: float | None = None
    closed: str = ""
    bytes_to_server: int = 0
    bytes_from_server: int = 0

    def from_client(self, time: float, flags: int, seq: int, size: int) -> bool:
        """A client segment; False if it is a new attempt's SYN (the caller starts one)."""
        if flags & SYN and not flags & ACK:
            if seq != self.isn:
                return False
            self.syns += 1
            self.last_time = time
            return True
        self.bytes_to_server += size
        if flags & RST and not self.closed:
            self.closed = "client_rst"
        elif flags & FIN and not self.closed:
            self.closed = "fin"
        return True

    def from_server(self, time: float, flags: int, size: int) -> None:
        if flags & SYN and flags & ACK and self.outcome == "unanswered":
            self.outcome, self.answer_time = "accepted", time
        elif flags & RST and self.outcome == "unanswered":
            self.outcome, self.answer_time = "refused", time
        elif flags & RST and not self.closed:
            self.closed = "server_rst"
        elif flags & FIN and not self.closed:
            self.closed = "fin"
        self.bytes_from_server += size

    def icmp(self, time: float) -> None:
        if self.outcome == "unanswered":
            self.outcome, self.answer_time = "unreachable", time

    def summary(self) -> str:
        text = (f"TCP connect {where(*self.client)} -> {where(*self.server)} ({self.service}): "
                f"{self.outcome}")
        if self.outcome == "refused":
            text += " (RST)"
        syns = f"{self.syns} SYN" + ("s" if self.syns != 1 else "")
        text += f", {syns} over {self.last_time - self.first_time:.1f}s" \
            if self.syns > 1 else f", {syns}"
        if self.closed:
            text += f", closed by {self.closed.replace('_', ' ')}"
        return text

    def fields(self) -> dict[str, object]:
        return {"port": self.server[1], "service": self.service, "syns": self.syns,
                "outcome": self.outcome, "answer_time": self.answer_time,
                "first_time": self.first_time, "last_time": self.last_time,
                "closed": self.closed, "bytes_to_server": self.bytes_to_server,
                "bytes_from_server": self.bytes_from_server}


class Connections:
    """Every TCP connection attempt and the ICMP errors seen; ``services`` names the
    server ports the lab knows (port -> "http", "nfs", ...; others are "port N")."""

    def __init__(self, services: dict[int, str]) -> None:
        self.services = services
        self._open: dict[tuple[Endpoint, Endpoint], Attempt] = {}
        self._done: list[Attempt] = []
        self._records: list[PacketRecord] = []

    def segment(self, time: float, src: Endpoint, dst: Endpoint, *, flags: int, seq: int,
                size: int, macs: tuple[str, str]) -> None:
        """One TCP segment (``macs``: its Ethernet source and destination)."""
        attempt = self._open.get((src, dst))
        if attempt is not None and attempt.from_client(time, flags, seq, size):
            return
        if flags & SYN and not flags & ACK:  # whoever sends the SYN is the client
            if attempt is not None:
                self._done.append(attempt)
            service = self.services.get(dst[1], f"port {dst[1]}")
            self._open[(src, dst)] = Attempt(src, dst, macs[0], service, seq, time, time)
        elif (attempt := self._open.get((dst, src))) is not None:
            attempt.from_server(time, flags, size)

    def icmp(self, time: float, src: bytes, dst: bytes, message: Unreachable,
             client: str) -> None:
        """An unreachable from ``src`` to ``dst``; a quoted SYN's attempt is answered."""
        attempt = self._open.get((message.quoted_src, message.quoted_dst))
        if attempt is not None and message.quoted_proto == IPPROTO_TCP:
            attempt.icmp(time)
        fields = message.fields()
        text = (f"ICMP{'v6' if message.version == 6 else ''} {message.reason} from "
                f"{address(src)} for {fields['quoted_proto']} {fields['quoted_src']} -> "
                f"{fields['quoted_dst']}")
        self._records.append(PacketRecord(time, "icmp", "unreachable", address(src),
                                          address(dst), text, client, fields))

    def records(self) -> list[PacketRecord]:
        attempts = [*self._done, *self._open.values()]
        return self._records + [
            PacketRecord(a.first_time, "tcp", "connect", where(*a.client), where(*a.server),
                         a.summary(), a.mac, a.fields()) for a in attempts]
