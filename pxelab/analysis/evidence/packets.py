"""The lab capture (lab.pcap) as :class:`~pxelab.analysis.evidence.PacketRecord` values.

    records = summarise_pcap(artifacts / "lab.pcap", guest_macs={"52:54:00:12:34:56"})

A boot's capture is tens of MB: the DATA blocks of a 14 MB kernel and the NFS
root. Every frame is looked at once, as raw bytes (scapy's ``RawPcapReader``
and a few byte offsets); only the control packets — DHCP, DHCPv6, RS/RA/NS/NA,
TFTP RRQ/WRQ/OACK/ERROR, HTTP request and status lines — are dissected by
scapy. The bulk becomes one record per flow:

- a TFTP transfer (kind "transfer"): DATA and ACK run between the client's
  port of its RRQ and an ephemeral server port, so a flow is the client
  endpoint of the RRQ that started it, bound to the server endpoint of the
  first reply;
- an NFS TCP connection to port 2049 (kind "connection");
- a TCP connection attempt (proto "tcp", kind "connect"): its handshake's outcome.

A record's ``time`` is the wall-clock time of its packet, for a flow record
that of its first packet. ``fields`` by proto (diagnosis rules read these names):

- dhcp4 (kind: message type, "bootp" without one): xid, secs, ciaddr, yiaddr,
  siaddr, file, server_id, vendor_class (60), user_class (77), arch (93 or
  None), has_option_43, options (numbers in wire order), dport, flags, requested (50);
- dhcp6 (solicit, advertise, request, reply, release, ...): xid,
  elapsed_seconds, vendor_class (16, after enterprise number and length),
  arch (61), boot_url (59), user_class (15), has_ia_na, status (status-code
  name, top level first, else inside IA_NA), options;
- ra (rs, ra, ns, na): router_lifetime, managed, other, prefix, target;
- tftp: rrq/wrq (file, mode, options, blksize or None, malformed, answer: what
  the server's first reply was, "oack"/"data"/"error" or "" for none), oack
  (options, file, malformed), error (code, message, file, from_client),
  transfer (file, blksize, blocks, bytes, last_block, complete, retransmits,
  largest_payload, first_time, last_time, acked, error);
- http: request (method, path, headers), response (status, length, path, method
  of the request it answers, reason, body_bytes: body bytes seen on the wire,
  body_acked: body bytes the client acknowledged);
- nfs: connection (packets, bytes, first_time, last_time), error (an RPC reply that
  refused or failed a call on 2049/111/20048: see
  :mod:`pxelab.analysis.evidence.nfswire`);
- tcp: connect (one per connection attempt to any port: whether its SYN was accepted,
  refused by RST, unreachable by ICMP or unanswered; see
  :mod:`pxelab.analysis.evidence.tcpwire`);
- icmp: unreachable (ICMP type 3 / ICMPv6 type 1 with the quoted port);
- arp: request/reply (sender_mac, sender_ip, target_ip).

## Speed (measured)

Median of 5 runs on this 2-core host under a load average of 3.5 (other QEMU
boots running), scapy already imported:

- legacy_pxe_ipv4 (PXELINUX, 14 MB kernel and initrd over TFTP, NFSv4 root):
  19.9 MB, 23 890 frames -> 60 records in 0.15 s;
- uefi_tftp_ipv4 (syslinux.efi, the same files over TFTP): 20.0 MB, 24 007
  frames -> 66 records in 0.16 s;
- uefi_http_ipv6 (kernel over HTTP, NFS over IPv6): 20.5 MB, 19 373 frames ->
  60 records in 0.08 s.

Importing scapy's layers costs another 0.4-0.9 s once per process;
:mod:`pxelab.analysis.evidence.collect` imports this module only when it summarises.
"""

from __future__ import annotations

import logging
import socket
import struct
from collections.abc import Collection, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from scapy.error import Scapy_Exception
from scapy.layers.dhcp import BOOTP, DHCP, DHCPRevOptions
from scapy.layers.dhcp6 import DHCP6
from scapy.layers.inet import UDP
from scapy.layers.inet6 import ICMPv6ND_NA, ICMPv6ND_NS, ICMPv6ND_RA, ICMPv6NDOptPrefixInfo
from scapy.layers.l2 import Ether
from scapy.layers.tftp import TFTP, TFTP_ERROR, TFTP_RRQ, TFTP_WRQ
from scapy.utils import RawPcapReader

from pxelab.analysis.evidence import tcpwire
from pxelab.analysis.evidence.model import PacketRecord
from pxelab.analysis.evidence.nfswire import RpcTracker
from pxelab.core.mac import format_mac

log = logging.getLogger(__name__)

DHCP4_PORTS = (67, 68)
BINL_PORT = 4011  # a PXE client that got PXEClient without option 43 asks here (PXE 2.1)
DHCP6_PORTS = (546, 547)
TFTP_PORT = 69
HTTP_PORTS = (80,)
NFS_PORT = 2049
# NFSv3 asks the port mapper (111) for MOUNT (20048 in the lab) before it mounts.
RPC_PORTS = {NFS_PORT: "nfs", 111: "portmap", 20048: "mount"}
DLT_EN10MB = 1

ETH_IPV4, ETH_IPV6, ETH_ARP, ETH_VLAN = 0x0800, 0x86DD, 0x0806, 0x8100
IPPROTO_ICMP, IPPROTO_TCP, IPPROTO_UDP, IPPROTO_ICMPV6 = 1, 6, 17, 58
# IPv6 extension headers with the generic (next header, length in 8-octet units) layout
# (RFC 8200 section 4): hop-by-hop (MLD reports carry one), routing, destination options.
IPV6_EXTENSIONS = (0, 43, 60)
IPV6_FRAGMENT = 44
ND_KINDS = {133: "rs", 134: "ra", 135: "ns", 136: "na"}  # RFC 4861 section 4
# TFTP opcodes (RFC 1350 section 5, RFC 2347 for OACK).
OP_RRQ, OP_WRQ, OP_DATA, OP_ACK, OP_ERROR, OP_OACK = 1, 2, 3, 4, 5, 6
TFTP_DEFAULT_BLKSIZE = 512  # RFC 1350: without a negotiated blksize
HTTP_METHODS = (b"GET ", b"HEAD ", b"POST ", b"PUT ", b"DELETE ", b"OPTIONS ")

Endpoint = tuple[bytes, int]  # (raw IP address, port)


def summarise_pcap(path: Path, guest_macs: Collection[str] = (), *,
                   tftp_port: int = TFTP_PORT,
                   http_ports: Collection[int] = HTTP_PORTS) -> list[PacketRecord]:
    """The records of the capture at ``path``, in time order.

    ``guest_macs`` (lower case) name the guests: packets whose direction does
    not say which side is the client (RA, NS/NA, ARP) are attributed to them.
    A missing, empty or cut-off capture gives the records read so far.
    """
    summariser = _Summariser({m.lower() for m in guest_macs}, tftp_port, frozenset(http_ports))
    if not path.exists() or path.stat().st_size == 0:
        return []
    for when, data in _frames(path):  # a bug in the summariser raises: it must show
        summariser.frame(when, data)
    return summariser.records()


# What reading a cut-off or damaged capture raises (scapy's own error for a cut header).
_CUT_OFF = (Scapy_Exception, EOFError, struct.error, OSError)


def _frames(path: Path) -> Iterator[tuple[float, bytes]]:
    """The time and bytes of each frame of an Ethernet capture, up to where it is cut."""
    with path.open("rb") as file:  # ours to close: scapy leaks it when the header is cut
        try:
            reader = RawPcapReader(file)  # type: ignore[arg-type]  # a file too
        except _CUT_OFF as error:
            log.warning("%s: not read: %s", path, error)
            return
        if reader.linktype != DLT_EN10MB:
            log.warning("%s: link type %s is not Ethernet; no packets summarised",
                        path, reader.linktype)
            return
        scale = 1e9 if getattr(reader, "nano", False) else 1e6
        frames = iter(reader)
        while True:
            try:
                data, meta = next(frames)
            except StopIteration:
                return
            except _CUT_OFF as error:
                log.warning("%s: stopped reading: %s (records so far kept)", path, error)
                return
            yield _timestamp(meta, scale), data


def _timestamp(meta: Any, scale: float) -> float:
    if hasattr(meta, "tshigh"):  # pcapng
        return float(((meta.tshigh << 32) | meta.tslow) / meta.tsresol)
    return float(meta.sec + meta.usec / scale)


def _ip(raw: bytes) -> str:
    return socket.inet_ntop(socket.AF_INET if len(raw) == 4 else socket.AF_INET6, raw)


def _where(ip: bytes, port: int) -> str:
    return f"[{_ip(ip)}]:{port}" if len(ip) == 16 else f"{_ip(ip)}:{port}"


def _text(value: Any) -> str:
    """Option bytes as text a person can read (non-printable bytes dropped)."""
    if isinstance(value, bytes):
        value = value.decode("latin-1")
    text = str(value)
    return "".join(c for c in text if c.isprintable()).strip()


@dataclass(slots=True)
class _Packet:
    """What the raw pass knows of one IP packet: addresses, ports, transport payload."""

    time: float
    data: bytes  # the whole frame, for scapy
    src: bytes
    dst: bytes
    sport: int = 0
    dport: int = 0
    payload: bytes = b""
    seq: int = 0  # TCP
    ack: int = 0  # TCP
    flags: int = 0  # TCP

    @property
    def eth_src(self) -> bytes:
        return self.data[6:12]

    @property
    def eth_dst(self) -> bytes:
        return self.data[0:6]

    def client(self, from_client: bool) -> str:
        """The client's MAC: the sender of a packet to a server, else the receiver."""
        return format_mac(self.data[6:12] if from_client else self.data[0:6])


@dataclass
class _Transfer:
    """One TFTP read (or write) flow, from its RRQ to its last DATA/ACK."""

    file: str
    client: str
    client_at: str
    request: dict[str, Any]  # the RRQ record's fields, to note what answered it
    blksize: int = TFTP_DEFAULT_BLKSIZE
    server: Endpoint | None = None
    blocks: set[int] = field(default_factory=set)
    bytes: int = 0
    last_block: int = 0
    acked: int = 0
    short_block: bool = False  # a DATA shorter than blksize: the last one
    retransmits: int = 0
    largest: int = 0
    data_packets: int = 0
    first_time: float = 0.0
    last_time: float = 0.0
    epoch: int = 0  # block numbers wrap at 65535
    prev: int = 0
    error: str = ""

    def unwrap(self, block: int) -> int:
        if block < 16384 and self.prev > 49152:
            self.epoch += 1
        elif block > 49152 and self.prev < 16384 and self.epoch:
            return (self.epoch - 1) * 65536 + block  # a late retransmission from before
        self.prev = block
        return self.epoch * 65536 + block

    def data(self, time: float, block: int, size: int) -> None:
        if not self.data_packets:
            self.first_time = time
        self.data_packets += 1
        self.last_time = time
        number = self.unwrap(block)
        if number in self.blocks:
            self.retransmits += 1
            return
        self.blocks.add(number)
        self.bytes += size
        self.largest = max(self.largest, size)
        self.last_block = max(self.last_block, number)
        if size < self.blksize:
            self.short_block = True

    def record(self) -> PacketRecord:
        complete = self.short_block and not self.error
        fields = {"file": self.file, "blksize": self.blksize, "blocks": len(self.blocks),
                  "bytes": self.bytes, "last_block": self.last_block, "complete": complete,
                  "retransmits": self.retransmits, "largest_payload": self.largest,
                  "first_time": self.first_time, "last_time": self.last_time,
                  "acked": self.acked, "error": self.error}
        if complete:
            blocks = len(self.blocks)
            summary = (f"TFTP {self.file} {self.bytes} bytes in {blocks} "
                       f"block{'s' if blocks != 1 else ''} of {self.blksize}, complete")
        elif self.error:
            summary = (f"TFTP {self.file} ended by {self.error} after block "
                       f"{self.last_block} of blksize {self.blksize}")
        else:
            summary = (f"TFTP {self.file} stalled at block {self.last_block} of blksize "
                       f"{self.blksize}")
        if self.retransmits:
            summary += f" ({self.retransmits} retransmitted)"
        summary += f", {self.last_time - self.first_time:.2f}s"
        server = _where(*self.server) if self.server else ""
        return PacketRecord(self.first_time, "tftp", "transfer", server, self.client_at,
                            summary, self.client, fields)


@dataclass
class _Connection:
    """One TCP connection to the NFS server, counted."""

    client_at: str
    server_at: str
    client: str
    first_time: float
    last_time: float = 0.0
    packets: int = 0
    bytes: int = 0

    def record(self) -> PacketRecord:
        summary = (f"NFS connection {self.client_at} -> {self.server_at}: {self.packets} "
                   f"packets, {self.bytes} bytes, {self.last_time - self.first_time:.2f}s")
        return PacketRecord(self.first_time, "nfs", "connection", self.client_at,
                            self.server_at, summary, self.client,
                            {"packets": self.packets, "bytes": self.bytes,
                             "first_time": self.first_time, "last_time": self.last_time})


class _Summariser:
    """One pass over the frames of a capture; :meth:`records` when done."""

    def __init__(self, guest_macs: set[str], tftp_port: int, http_ports: frozenset[int]) -> None:
        self.guest_macs = guest_macs
        self.tftp_port = tftp_port
        self.http_ports = http_ports
        self._records: list[PacketRecord] = []
        self._transfers: dict[Endpoint, _Transfer] = {}  # by the client's endpoint
        self._finished: list[_Transfer] = []
        self._nfs: dict[tuple[Endpoint, Endpoint], _Connection] = {}
        self._connections = tcpwire.Connections(
            {port: "http" for port in http_ports} | RPC_PORTS)
        self._rpc = RpcTracker(RPC_PORTS)
        # The last request on a connection: method and path.
        self._http_paths: dict[Endpoint, tuple[str, str]] = {}
        # The last response on a connection: its fields, where its body starts and ends
        # (TCP sequence numbers, so retransmitted segments count once).
        self._http_bodies: dict[Endpoint, tuple[dict[str, Any], int, list[int]]] = {}

    def records(self) -> list[PacketRecord]:
        flows = [t.record() for t in (*self._finished, *self._transfers.values())
                 if t.data_packets]
        flows += [c.record() for c in self._nfs.values()]
        flows += self._connections.records() + self._rpc.records()
        return sorted(self._records + flows, key=lambda r: r.time)

    # The raw pass: Ethernet, IPv4/IPv6, UDP/TCP/ICMPv6 by byte offsets.

    def frame(self, time: float, data: bytes) -> None:
        if len(data) < 14:
            return
        etype = (data[12] << 8) | data[13]
        off = 14
        if etype == ETH_VLAN and len(data) >= 18:
            etype, off = (data[16] << 8) | data[17], 18
        if etype == ETH_IPV4:
            self._ipv4(time, data, off)
        elif etype == ETH_IPV6:
            self._ipv6(time, data, off)
        elif etype == ETH_ARP:
            self._arp(time, data, off)

    def _ipv4(self, time: float, data: bytes, off: int) -> None:
        if len(data) < off + 20:
            return
        if ((data[off + 6] & 0x1F) << 8) | data[off + 7]:
            return  # a later fragment: no transport header
        end = off + ((data[off + 2] << 8) | data[off + 3])
        packet = _Packet(time, data, data[off + 12:off + 16], data[off + 16:off + 20])
        self._transport(packet, data[off + 9], off + (data[off] & 0x0F) * 4, end)

    def _ipv6(self, time: float, data: bytes, off: int) -> None:
        if len(data) < off + 40:
            return
        end = off + 40 + ((data[off + 4] << 8) | data[off + 5])
        nh, l4 = data[off + 6], off + 40
        while nh in IPV6_EXTENSIONS and l4 + 2 <= len(data):
            nh, l4 = data[l4], l4 + (data[l4 + 1] + 1) * 8
        if nh == IPV6_FRAGMENT and l4 + 8 <= len(data):
            if ((data[l4 + 2] << 8) | data[l4 + 3]) & 0xFFF8:
                return  # a later fragment
            nh, l4 = data[l4], l4 + 8
        self._transport(_Packet(time, data, data[off + 8:off + 24], data[off + 24:off + 40]),
                        nh, l4, end)

    def _transport(self, packet: _Packet, proto: int, l4: int, end: int) -> None:
        data = packet.data
        if proto in (IPPROTO_UDP, IPPROTO_TCP) and l4 + 8 <= end:
            packet.sport = (data[l4] << 8) | data[l4 + 1]
            packet.dport = (data[l4 + 2] << 8) | data[l4 + 3]
        if proto == IPPROTO_UDP and l4 + 8 <= end:
            packet.payload = data[l4 + 8:end]
            self._udp(packet)
        elif proto == IPPROTO_TCP and l4 + 20 <= end:
            packet.payload = data[l4 + (data[l4 + 12] >> 4) * 4:end]
            packet.seq = int.from_bytes(data[l4 + 4:l4 + 8], "big")
            packet.ack = int.from_bytes(data[l4 + 8:l4 + 12], "big")
            packet.flags = data[l4 + 13]
            self._tcp(packet)
        elif proto == IPPROTO_ICMPV6 and l4 < end and data[l4] in ND_KINDS:
            self._nd(packet, ND_KINDS[data[l4]])
        elif proto in (IPPROTO_ICMP, IPPROTO_ICMPV6):
            found = tcpwire.unreachable(data[l4:end], 4 if proto == IPPROTO_ICMP else 6)
            if found is not None:
                self._connections.icmp(packet.time, packet.src, packet.dst, found,
                                       self._guest(packet.eth_dst) or packet.client(False))

    def _udp(self, packet: _Packet) -> None:
        src, dst, sport, dport = packet.src, packet.dst, packet.sport, packet.dport
        transfer = self._transfers.get((dst, dport))
        if transfer is not None and transfer.server in (None, (src, sport)):
            self._tftp_from_server(transfer, packet)
        elif (transfer := self._transfers.get((src, sport))) is not None \
                and transfer.server in (None, (dst, dport)) and dport != self.tftp_port:
            # (server None: a capture that lacks the server's side, e.g. a cut fixture)
            self._tftp_from_client(transfer, packet)
        elif dport == self.tftp_port:
            self._tftp_request(packet)
        elif (sport in DHCP4_PORTS and dport in DHCP4_PORTS) or BINL_PORT in (sport, dport):
            self._add(_dhcp4(packet))
        elif sport in DHCP6_PORTS and dport in DHCP6_PORTS:
            self._add(_dhcp6(packet))

    def _tcp(self, packet: _Packet) -> None:
        sport, dport, payload = packet.sport, packet.dport, packet.payload
        source, destination = (packet.src, sport), (packet.dst, dport)
        self._connections.segment(packet.time, source, destination, flags=packet.flags,
                                  seq=packet.seq, size=len(payload),
                                  macs=(format_mac(packet.eth_src), format_mac(packet.eth_dst)))
        if payload and (sport in RPC_PORTS or dport in RPC_PORTS):
            self._rpc.segment(packet.time, source, destination, seq=packet.seq,
                              payload=payload, client=packet.client(dport in RPC_PORTS))
        if NFS_PORT in (dport, sport):
            self._nfs_packet(packet)
        elif payload and dport in self.http_ports and payload.startswith(HTTP_METHODS):
            self._http_request(packet)
        elif payload and sport in self.http_ports and payload.startswith(b"HTTP/"):
            self._http_response(packet)
        elif dport in self.http_ports and packet.flags & tcpwire.ACK:
            self._http_acked(packet)
        elif payload and sport in self.http_ports:
            self._http_body(packet)

    def _nfs_packet(self, packet: _Packet) -> None:
        to_server = packet.dport == NFS_PORT
        ends = (packet.src, packet.sport), (packet.dst, packet.dport)
        key = ends if to_server else (ends[1], ends[0])
        connection = self._nfs.get(key)
        if connection is None:
            connection = self._nfs[key] = _Connection(
                _where(*key[0]), _where(*key[1]), packet.client(to_server), packet.time)
        connection.packets += 1
        connection.bytes += len(packet.payload)
        connection.last_time = packet.time

    def _add(self, record: PacketRecord | None) -> None:
        if record is not None:
            self._records.append(record)

    def _guest(self, *macs: bytes) -> str:
        """The guest (one of guest_macs) among ``macs``, else ""."""
        return next((name for name in map(format_mac, macs) if name in self.guest_macs), "")

    # TFTP: requests start flows; DATA/ACK are counted, OACK/ERROR dissected.

    def _tftp_request(self, packet: _Packet) -> None:
        record = _tftp_control(packet, "")
        if record is None or record.kind not in ("rrq", "wrq"):
            self._add(record)
            return
        record.fields["answer"] = ""  # filled by the first reply on the flow
        key = (packet.src, packet.sport)
        if (old := self._transfers.pop(key, None)) is not None:
            self._finished.append(old)
        # Until an OACK says otherwise, blocks are RFC 1350's 512 bytes.
        self._transfers[key] = _Transfer(str(record.fields["file"]), record.client,
                                         _where(*key), record.fields)
        self._add(record)

    def _tftp_from_server(self, transfer: _Transfer, packet: _Packet) -> None:
        payload = packet.payload
        if transfer.server is None:
            transfer.server = (packet.src, packet.sport)
        opcode = (payload[0] << 8 | payload[1]) if len(payload) >= 2 else 0
        if not transfer.request["answer"]:
            transfer.request["answer"] = {OP_DATA: "data", OP_OACK: "oack",
                                          OP_ERROR: "error"}.get(opcode, "other")
        if opcode == OP_DATA and len(payload) >= 4:
            transfer.data(packet.time, (payload[2] << 8) | payload[3], len(payload) - 4)
            return
        record = _tftp_control(packet, transfer.file, from_client=False)
        if record is None:
            return
        if record.kind == "oack":
            blksize = _int(record.fields["options"].get("blksize"))
            transfer.blksize = blksize or TFTP_DEFAULT_BLKSIZE
        elif record.kind == "error":
            transfer.error = f"server ERROR {record.fields['code']}"
        self._add(record)

    def _tftp_from_client(self, transfer: _Transfer, packet: _Packet) -> None:
        payload = packet.payload
        opcode = (payload[0] << 8 | payload[1]) if len(payload) >= 2 else 0
        if opcode == OP_ACK and len(payload) >= 4:
            transfer.acked = max(transfer.acked, (payload[2] << 8) | payload[3])
            return
        record = _tftp_control(packet, transfer.file, from_client=True)
        if record is not None and record.kind == "error" and transfer.data_packets:
            transfer.error = f"client ERROR {record.fields['code']}"
        self._add(record)

    # HTTP: request lines and status lines; the bodies are not looked at.

    def _http_request(self, packet: _Packet) -> None:
        head = packet.payload.split(b"\r\n\r\n", 1)[0].decode("latin-1").split("\r\n")
        method, _, rest = head[0].partition(" ")
        path = rest.rsplit(" ", 1)[0] if " HTTP/" in rest else rest
        self._http_paths[(packet.src, packet.sport)] = (method, path)
        fields = {"method": method, "path": path, "headers": _headers(head[1:])}
        self._add(PacketRecord(packet.time, "http", "request", _where(packet.src, packet.sport),
                               _where(packet.dst, packet.dport), f"{method} {path}",
                               packet.client(True), fields))

    def _http_response(self, packet: _Packet) -> None:
        head = packet.payload.split(b"\r\n\r\n", 1)[0].decode("latin-1").split("\r\n")
        parts = head[0].split(" ", 2)
        status = _int(parts[1]) if len(parts) > 1 else None
        headers = _headers(head[1:])
        length = _int(headers.get("content-length"))
        method, path = self._http_paths.get((packet.dst, packet.dport), ("", ""))
        summary = f"HTTP {status} {parts[2] if len(parts) > 2 else ''}".rstrip()
        if path:
            summary += f" for {path}"
        if length is not None:
            summary += f" length={length}"
        fields = {"status": status, "length": length, "path": path, "method": method,
                  "reason": parts[2] if len(parts) > 2 else "", "body_bytes": 0}
        self._add(PacketRecord(packet.time, "http", "response",
                               _where(packet.src, packet.sport),
                               _where(packet.dst, packet.dport), summary, packet.client(False),
                               fields))
        header_end = packet.payload.find(b"\r\n\r\n")
        start = packet.seq + (header_end + 4 if header_end >= 0 else len(packet.payload))
        self._http_bodies[(packet.dst, packet.dport)] = (fields, start, [start])
        self._http_body(packet)

    def _http_acked(self, packet: _Packet) -> None:
        """The body bytes the client acknowledged (body_acked): what it got, also when
        the capture lost segments of the response (tcpdump drops under load)."""
        body = self._http_bodies.get((packet.src, packet.sport))
        if body is None:
            return
        fields, start, _ = body
        acked = (packet.ack - start) & 0xFFFFFFFF
        if acked < 0x80000000 and acked > fields.get("body_acked", 0):
            fields["body_acked"] = acked

    def _http_body(self, packet: _Packet) -> None:
        """Count the body bytes of the last response on the connection (body_bytes)."""
        body = self._http_bodies.get((packet.dst, packet.dport))
        if body is None:
            return
        fields, start, end = body
        segment_end = packet.seq + len(packet.payload)
        if 0 < (segment_end - end[0]) & 0xFFFFFFFF < 0x80000000:  # later in sequence space
            end[0] = segment_end
            fields["body_bytes"] = (end[0] - start) & 0xFFFFFFFF

    # Neighbour discovery and ARP.

    def _nd(self, packet: _Packet, kind: str) -> None:
        # Who is the client is clear only for RS (a host asks routers); the rest are
        # attributed to a known guest.
        client = self._guest(packet.eth_src, packet.eth_dst)
        if kind == "rs" and not self.guest_macs:
            client = packet.client(True)
        self._add(_icmp6(packet, kind, client))

    def _arp(self, time: float, data: bytes, off: int) -> None:
        if len(data) < off + 28:
            return
        op = (data[off + 6] << 8) | data[off + 7]
        sha, spa, tpa = data[off + 8:off + 14], data[off + 14:off + 18], data[off + 24:off + 28]
        if op == 1:
            kind, summary = "request", f"ARP who-has {_ip(tpa)} tell {_ip(spa)}"
        elif op == 2:
            kind, summary = "reply", f"ARP {_ip(spa)} is-at {format_mac(sha)}"
        else:
            return
        self._add(PacketRecord(time, "arp", kind, _ip(spa), _ip(tpa), summary,
                               self._guest(data[6:12], data[0:6]),
                               {"sender_mac": format_mac(sha), "sender_ip": _ip(spa),
                                "target_ip": _ip(tpa)}))


def _int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _headers(lines: Iterable[str]) -> dict[str, str]:
    pairs = (line.partition(":") for line in lines)
    return {name.strip().lower(): value.strip() for name, sep, value in pairs if sep}


# Control packets, dissected by scapy.

def _tftp_options(raw: bytes) -> tuple[dict[str, str], bool]:
    """RFC 2347 option pairs (names lower case) and whether the list was malformed."""
    parts = raw.split(b"\x00")
    if parts and parts[-1] == b"":
        parts.pop()
    else:
        return _pairs(parts), True  # not NUL-terminated
    return _pairs(parts), len(parts) % 2 == 1


def _pairs(parts: list[bytes]) -> dict[str, str]:
    return {parts[i].decode("latin-1").lower(): parts[i + 1].decode("latin-1")
            for i in range(0, len(parts) - 1, 2)}


def _tftp_control(packet: _Packet, file: str, *, from_client: bool = True
                  ) -> PacketRecord | None:
    """An RRQ/WRQ/OACK/ERROR as a record (DATA/ACK never come here)."""
    payload = packet.payload
    if len(payload) < 2:
        return None
    opcode = (payload[0] << 8) | payload[1]
    src, dst = _where(packet.src, packet.sport), _where(packet.dst, packet.dport)
    client = packet.client(from_client)
    try:
        message = TFTP(payload)
    except Exception:  # whatever the bytes, the record says what they were
        message = None
    if opcode in (OP_RRQ, OP_WRQ) and message is not None and (
            message.haslayer(TFTP_RRQ) or message.haslayer(TFTP_WRQ)):
        layer = message[TFTP_RRQ] if message.haslayer(TFTP_RRQ) else message[TFTP_WRQ]
        name, mode = _text(layer.filename), _text(layer.mode).lower()
        # The options follow filename and mode, each NUL-terminated.
        head = len(layer.filename) + len(layer.mode) + 4
        options, malformed = _tftp_options(payload[head:]) if len(payload) > head else ({}, False)
        kind = "rrq" if opcode == OP_RRQ else "wrq"
        listed = " ".join(f"{k}={v}" for k, v in options.items())
        return PacketRecord(packet.time, "tftp", kind, src, dst,
                            f"{kind.upper()} {name} {listed}".rstrip(), client,
                            {"file": name, "mode": mode, "options": options,
                             "blksize": _int(options.get("blksize")), "malformed": malformed})
    if opcode == OP_OACK:
        options, malformed = _tftp_options(payload[2:])
        listed = " ".join(f"{k}={v}" for k, v in options.items())
        summary = f"OACK {file} {listed}".replace("  ", " ").rstrip()
        if malformed:
            summary += " (malformed option list)"
        return PacketRecord(packet.time, "tftp", "oack", src, dst, summary, client,
                            {"options": options, "file": file, "malformed": malformed})
    if opcode == OP_ERROR and message is not None and message.haslayer(TFTP_ERROR):
        error = message[TFTP_ERROR]
        code, text = int(error.errorcode), _text(error.errormsg)
        who = "client" if from_client else "server"
        summary = f"ERROR {code} {text!r}" + (f" for {file}" if file else "") + f" ({who})"
        return PacketRecord(packet.time, "tftp", "error", src, dst, summary, client,
                            {"code": code, "message": text, "file": file,
                             "from_client": from_client})
    return PacketRecord(packet.time, "tftp", "other", src, dst,
                        f"TFTP opcode {opcode} ({len(payload)} bytes)", client,
                        {"opcode": opcode})


def _dhcp4(packet: _Packet) -> PacketRecord | None:
    """A BOOTP/DHCPv4 message (RFC 2131 section 2, options RFC 2132)."""
    try:
        message = BOOTP(packet.payload)
    except Exception:
        return _malformed(packet, "dhcp4")
    options: dict[int, Any] = {}
    if message.haslayer(DHCP):
        for option in message[DHCP].options:
            if isinstance(option, tuple) and option:
                name = option[0]
                code = name if isinstance(name, int) else DHCPRevOptions.get(name, (None,))[0]
                if isinstance(code, int):
                    options[code] = option[1] if len(option) == 2 else option[1:]
    mtype = options.get(53)
    kind = _DHCP4_TYPES.get(mtype, f"type-{mtype}") if isinstance(mtype, int) else "bootp"
    chaddr = bytes(message.chaddr)[:6]
    from_client = message.op == 1
    arch_raw = options.get(93)
    arch = int.from_bytes(arch_raw[:2], "big") if isinstance(arch_raw, bytes) \
        and len(arch_raw) >= 2 else None
    fields: dict[str, Any] = {
        "xid": int(message.xid), "secs": int(message.secs), "ciaddr": str(message.ciaddr),
        "yiaddr": str(message.yiaddr), "siaddr": str(message.siaddr),
        "file": _text(options.get(67) or bytes(message.file).split(b"\0", 1)[0]),
        "server_id": str(options.get(54, "")), "vendor_class": _text(options.get(60, b"")),
        "user_class": _text(options.get(77, b"")), "arch": arch,
        "has_option_43": 43 in options, "options": list(options), "dport": packet.dport,
        "flags": int(message.flags), "requested": str(options.get(50, "")),
    }
    return PacketRecord(packet.time, "dhcp4", kind, _ip(packet.src), _ip(packet.dst),
                        _dhcp4_summary(kind, format_mac(chaddr), fields, from_client, packet.dport),
                        format_mac(chaddr), fields)


_DHCP4_TYPES = {1: "discover", 2: "offer", 3: "request", 4: "decline", 5: "ack", 6: "nak",
                7: "release", 8: "inform"}


def _dhcp4_summary(kind: str, mac: str, fields: dict[str, Any], from_client: bool,
                   dport: int) -> str:
    words = [kind.upper()]
    if dport == BINL_PORT:
        words.append("to port 4011")
    vendor = str(fields["vendor_class"])
    if from_client:
        words += [mac, f"secs={fields['secs']}"]
        if fields["arch"] is not None:
            words.append(f"arch={fields['arch']}")
        if vendor:
            words.append(vendor.split(":", 1)[0])
        if fields["user_class"]:
            words.append(f"user-class={fields['user_class']}")
        if fields["requested"]:
            words.append(f"requested={fields['requested']}")
        return " ".join(words)
    words.append(f"yiaddr={fields['yiaddr']}")
    if fields["siaddr"] != "0.0.0.0":
        words.append(f"siaddr={fields['siaddr']}")
    if fields["file"]:
        words.append(f"file={fields['file']}")
    words.append(f"vendor-class={vendor.split(':', 1)[0]}" if vendor else "(no option 60)")
    if fields["has_option_43"]:
        words.append("+ option 43")
    return " ".join(words)


_DHCP6_KINDS = {1: "solicit", 2: "advertise", 3: "request", 4: "confirm", 5: "renew",
                6: "rebind", 7: "reply", 8: "release", 9: "decline", 10: "reconfigure",
                11: "information-request", 12: "relay-forw", 13: "relay-repl"}
_DHCP6_STATUS = {0: "Success", 1: "UnspecFail", 2: "NoAddrsAvail", 3: "NoBinding",
                 4: "NotOnLink", 5: "UseMulticast", 6: "NoPrefixAvail"}  # RFC 8415 21.13


def _dhcp6(packet: _Packet) -> PacketRecord | None:
    """A DHCPv6 message (RFC 8415 section 8; options 15, 16, 59, 61 of RFC 8415/5970)."""
    try:
        message = Ether(packet.data)[UDP].payload
    except Exception:
        return _malformed(packet, "dhcp6")
    if not isinstance(message, DHCP6):
        return _malformed(packet, "dhcp6")
    msgtype = int(message.msgtype)
    kind = _DHCP6_KINDS.get(msgtype, f"type-{msgtype}")
    fields: dict[str, Any] = {"xid": int(getattr(message, "trid", 0)), "elapsed_seconds": None,
                              "vendor_class": "", "arch": None, "boot_url": "",
                              "user_class": "", "has_ia_na": False, "status": "",
                              "options": []}
    for option in _chain(message.payload):
        fields["options"].append(int(option.optcode))
        _dhcp6_option(option, fields)
    from_client = packet.dport == 547
    return PacketRecord(packet.time, "dhcp6", kind, _ip(packet.src), _ip(packet.dst),
                        _dhcp6_summary(kind, fields, from_client), packet.client(from_client),
                        fields)


def _chain(layer: Any) -> list[Any]:
    """scapy's top-level DHCPv6 options: each is the payload of the one before."""
    options = []
    while hasattr(layer, "optcode"):
        options.append(layer)
        layer = layer.payload
    return options


def _dhcp6_option(option: Any, fields: dict[str, Any], *, nested: bool = False) -> None:
    code = int(option.optcode)
    if code == 13 and (not nested or not fields["status"]):  # a top-level status wins
        status = int(option.statuscode)
        fields["status"] = _DHCP6_STATUS.get(status, str(status))
    elif code in (3, 5):  # IA_NA and its IAADDR options carry their own status codes
        fields["has_ia_na"] = fields["has_ia_na"] or code == 3
        for inner in getattr(option, "ianaopts", None) or getattr(option, "iaaddropts", []):
            for sub in _chain(inner):
                _dhcp6_option(sub, fields, nested=True)
    elif nested:
        return
    elif code == 8:  # Elapsed Time, hundredths of a second (RFC 8415 21.9)
        fields["elapsed_seconds"] = int(option.elapsedtime) / 100
    elif code == 16:  # enterprise number, then length-prefixed data (RFC 8415 21.16)
        fields["vendor_class"] = _text(b" ".join(bytes(d.data) for d in option.vcdata))
    elif code == 15:
        fields["user_class"] = _text(b" ".join(bytes(d.data) for d in option.userclassdata))
    elif code == 61:  # RFC 5970 section 3.3
        fields["arch"] = int(option.archtypes[0]) if option.archtypes else None
    elif code == 59:
        fields["boot_url"] = _text(option.optdata)


def _dhcp6_summary(kind: str, fields: dict[str, Any], from_client: bool) -> str:
    words = [kind.upper(), f"xid=0x{fields['xid']:06x}"]
    if fields["arch"] is not None:
        words.append(f"arch={fields['arch']}")
    vendor = str(fields["vendor_class"])
    if from_client:
        if vendor:
            words.append(vendor.split(":", 1)[0])
        if fields["user_class"]:
            words.append(f"user-class={fields['user_class']}")
        if fields["elapsed_seconds"] is not None:
            words.append(f"elapsed={fields['elapsed_seconds']:.2f}s")
        return " ".join(words)
    if fields["boot_url"]:
        words.append(f"url={fields['boot_url']}")
    if kind == "advertise" or (kind == "reply" and fields["has_ia_na"]):
        words.append(f"vendor-class={vendor.split(':', 1)[0]}" if vendor
                     else "(no option 16)")
    if fields["has_ia_na"]:
        words.append("IA_NA")
    if fields["status"]:
        words.append(f"status={fields['status']}")
    return " ".join(words)


def _icmp6(packet: _Packet, kind: str, client: str) -> PacketRecord:
    """RS/RA/NS/NA (RFC 4861 section 4)."""
    src, dst = _ip(packet.src), _ip(packet.dst)
    fields: dict[str, Any] = {"router_lifetime": None, "managed": None, "other": None,
                              "prefix": "", "target": ""}
    summary = f"{kind.upper()} {src} -> {dst}"
    try:
        frame = Ether(packet.data)
    except Exception:
        return PacketRecord(packet.time, "ra", kind, src, dst, summary, client, fields)
    if kind == "ra" and frame.haslayer(ICMPv6ND_RA):
        ra = frame[ICMPv6ND_RA]
        fields.update(router_lifetime=int(ra.routerlifetime), managed=bool(ra.M),
                      other=bool(ra.O))
        if frame.haslayer(ICMPv6NDOptPrefixInfo):
            info = frame[ICMPv6NDOptPrefixInfo]
            fields["prefix"] = f"{info.prefix}/{info.prefixlen}"
        summary = (f"RA from {src} router_lifetime={fields['router_lifetime']} "
                   f"M={int(fields['managed'])} O={int(fields['other'])}"
                   + (f" prefix={fields['prefix']}" if fields["prefix"] else ""))
    elif kind == "rs":
        summary = f"RS from {src}"
    elif kind == "ns" and frame.haslayer(ICMPv6ND_NS):
        fields["target"] = str(frame[ICMPv6ND_NS].tgt)
        summary = f"NS who-has {fields['target']} from {src}"
    elif kind == "na" and frame.haslayer(ICMPv6ND_NA):
        fields["target"] = str(frame[ICMPv6ND_NA].tgt)
        summary = f"NA {fields['target']} is-at {format_mac(packet.eth_src)}"
    return PacketRecord(packet.time, "ra", kind, src, dst, summary, client, fields)


def _malformed(packet: _Packet, proto: str) -> PacketRecord:
    return PacketRecord(packet.time, proto, "malformed", _ip(packet.src), _ip(packet.dst),
                        f"{proto} packet scapy cannot dissect ({len(packet.payload)} bytes)",
                        format_mac(packet.eth_src), {"length": len(packet.payload)})
