"""summarise_pcap: the firmware fixture captures and a capture crafted with scapy."""

from __future__ import annotations

import struct
import time
from pathlib import Path
from typing import Any

import pytest
from scapy.layers.dhcp import BOOTP, DHCP
from scapy.layers.dhcp6 import (
    DHCP6_Release,
    DHCP6_Reply,
    DHCP6OptClientId,
    DHCP6OptServerId,
    DHCP6OptStatusCode,
)
from scapy.layers.inet import IP, TCP, UDP
from scapy.layers.inet6 import ICMPv6ND_RA, ICMPv6NDOptPrefixInfo, IPv6
from scapy.layers.l2 import Ether
from scapy.layers.tftp import TFTP, TFTP_ERROR, TFTP_OACK, TFTP_RRQ, TFTP_Option, TFTP_Options
from scapy.packet import Packet, Raw
from scapy.utils import wrpcap

from pxelab.analysis.evidence import PacketRecord, packets
from pxelab.analysis.evidence.packets import summarise_pcap
from pxelab.core.paths import fixtures_dir

pytestmark = pytest.mark.unit

MAC = "52:54:00:12:34:56"
SERVER_MAC = "02:00:00:00:00:01"
CLIENT4, SERVER4 = "192.0.2.100", "192.0.2.1"
CLIENT6, SERVER6 = "2001:db8::100", "2001:db8::1"
T0 = 1_800_000_000.0
RESPONSE = b"HTTP/1.1 200 OK\r\nContent-Length: 1234\r\n\r\nMZ"
BODY = b"GET / HTTP/1.1 is body data, not a request"


def fixture(name: str) -> list[PacketRecord]:
    return summarise_pcap(fixtures_dir() / "packets" / f"{name}.pcap", {MAC})


def test_ipxe_dhcp4_discover_and_request() -> None:
    discover, request = fixture("ipxe-bios-dhcp4")
    assert (discover.proto, discover.kind, request.kind) == ("dhcp4", "discover", "request")
    assert discover.summary == f"DISCOVER {MAC} secs=4 arch=0 PXEClient user-class=iPXE"
    assert discover.client == MAC
    fields = discover.fields
    assert fields["secs"] == 4 and request.fields["secs"] == 10
    assert fields["arch"] == 0 and fields["user_class"] == "iPXE"
    assert fields["vendor_class"] == "PXEClient:Arch:00000:UNDI:002001"
    assert fields["options"] == [53, 57, 93, 94, 60, 77, 55, 175, 61, 97]
    assert fields["dport"] == 67 and fields["has_option_43"] is False
    assert fields["xid"] == request.fields["xid"]
    assert discover.time < request.time


@pytest.mark.parametrize(("name", "arch", "vendor"), [
    ("ovmf-pxe4-dhcp4", 7, "PXEClient"), ("ovmf-http4-dhcp4", 16, "HTTPClient")])
def test_ovmf_dhcp4_sends_secs_zero(name: str, arch: int, vendor: str) -> None:
    for record in fixture(name):
        assert record.fields["secs"] == 0
        assert record.fields["arch"] == arch
        assert record.fields["vendor_class"].startswith(vendor)
        assert record.fields["user_class"] == ""


@pytest.mark.parametrize(("name", "arch", "vendor"), [
    ("ovmf-pxe6-solicit", 7, "PXEClient"), ("ovmf-http6-solicit", 16, "HTTPClient")])
def test_ovmf_solicit(name: str, arch: int, vendor: str) -> None:
    (solicit,) = fixture(name)
    assert (solicit.proto, solicit.kind, solicit.client) == ("dhcp6", "solicit", MAC)
    assert solicit.fields["arch"] == arch
    assert solicit.fields["vendor_class"] == f"{vendor}:Arch:{arch:05d}:UNDI:003000"
    assert solicit.fields["elapsed_seconds"] == 0.0
    assert solicit.fields["has_ia_na"] is True
    assert solicit.fields["options"] == [1, 8, 3, 6, 62, 61, 16]
    assert solicit.summary.startswith("SOLICIT xid=0x")


def test_pxelinux_rrqs() -> None:
    records = fixture("pxelinux-tftp-rrq")
    assert [r.kind for r in records] == ["rrq"] * 11
    assert records[0].fields["file"] == "ldlinux.c32"
    assert records[-1].fields["file"] == "pxelinux.cfg/default"
    assert all(r.fields["blksize"] == 1408 and r.fields["options"]["tsize"] == "0"
               for r in records)
    assert records[0].summary == "RRQ ldlinux.c32 tsize=0 blksize=1408"


def test_ovmf_size_probe_error_names_the_file() -> None:
    probe, error, real = fixture("ovmf-pxe4-tftp")
    assert (probe.kind, error.kind, real.kind) == ("rrq", "error", "rrq")
    assert error.fields == {"code": 8, "message": "User aborted the transfer",
                            "file": "bootx64.efi", "from_client": True}
    assert "windowsize" in real.fields["options"] and "tsize" not in real.fields["options"]


# A capture crafted with scapy: each frame is sent at T0 + its index * 10 ms.

def udp4(sport: int, dport: int, payload: Packet | bytes, *, to_server: bool = True) -> Packet:
    src, dst = (CLIENT4, SERVER4) if to_server else (SERVER4, CLIENT4)
    macs = (MAC, SERVER_MAC) if to_server else (SERVER_MAC, MAC)
    return (Ether(src=macs[0], dst=macs[1]) / IP(src=src, dst=dst)
            / UDP(sport=sport, dport=dport) / payload)


def rrq(port: int, name: str, **options: str) -> Packet:
    listed = [TFTP_Option(oname=k.encode(), value=v.encode()) for k, v in options.items()]
    return udp4(port, 69, TFTP() / TFTP_RRQ(filename=name.encode(), mode=b"octet")
                / TFTP_Options(options=listed))


def oack(server_port: int, port: int, **options: str) -> Packet:
    listed = [TFTP_Option(oname=k.encode(), value=v.encode()) for k, v in options.items()]
    return udp4(server_port, port, TFTP() / TFTP_OACK() / TFTP_Options(options=listed),
                to_server=False)


def data(server_port: int, port: int, block: int, size: int) -> Packet:
    return udp4(server_port, port, struct.pack("!HH", 3, block) + b"x" * size, to_server=False)


def ack(port: int, server_port: int, block: int) -> Packet:
    return udp4(port, server_port, struct.pack("!HH", 4, block))


def tftp_frames() -> list[Packet]:
    kernel = [rrq(49163, "vmlinuz", tsize="0", blksize="1408"),
              oack(34904, 49163, tsize="4324", blksize="1408"), ack(49163, 34904, 0)]
    for block, size in ((1, 1408), (2, 1408), (2, 1408), (3, 1408), (4, 100)):
        kernel += [data(34904, 49163, block, size), ack(49163, 34904, block)]
    stalled = [rrq(49170, "big.img", blksize="1468"), oack(40000, 49170, blksize="1468"),
               ack(49170, 40000, 0)] + [data(40000, 49170, 1, 1468)] * 4
    malformed = [rrq(49171, "x.efi", blksize="1468"),
                 udp4(40001, 49171, b"\x00\x06blksize\x001468\x00tsize\x00", to_server=False),
                 udp4(49171, 40001, TFTP() / TFTP_ERROR(errorcode=8, errormsg=b"bad OACK"))]
    missing = [rrq(49172, "pxelinux.cfg/default"),
               udp4(40002, 49172, TFTP() / TFTP_ERROR(errorcode=1,
                                                       errormsg=b"File not found"),
                    to_server=False)]
    return kernel + stalled + malformed + missing


def other_frames() -> list[Packet]:
    def tcp6(sport: int, dport: int, payload: bytes, *, to_server: bool, seq: int = 0
             ) -> Packet:
        src, dst = (CLIENT6, SERVER6) if to_server else (SERVER6, CLIENT6)
        macs = (MAC, SERVER_MAC) if to_server else (SERVER_MAC, MAC)
        return (Ether(src=macs[0], dst=macs[1]) / IPv6(src=src, dst=dst)
                / TCP(sport=sport, dport=dport, flags="PA", seq=seq) / Raw(payload))

    def dhcp6(message: Packet, *, to_server: bool) -> Packet:
        src, dst = ("fe80::5054:ff:fe12:3456", "fe80::1") if to_server else \
            ("fe80::1", "fe80::5054:ff:fe12:3456")
        ports = (546, 547) if to_server else (547, 546)
        return (Ether(src=MAC if to_server else SERVER_MAC, dst=SERVER_MAC if to_server
                      else MAC) / IPv6(src=src, dst=dst) / UDP(sport=ports[0], dport=ports[1])
                / message)

    def offer(*options: Any, dport: int = 68) -> Packet:
        return udp4(67, dport, BOOTP(op=2, yiaddr=CLIENT4, siaddr=SERVER4,
                                     chaddr=bytes.fromhex(MAC.replace(":", "")),
                                     file=b"pxelinux.0")
                    / DHCP(options=[("message-type", "offer"), *options, "end"]),
                    to_server=False)

    return [
        tcp6(50000, 80, b"GET /grubx64.efi HTTP/1.1\r\nHost: [2001:db8::1]\r\n\r\n",
             to_server=True),
        tcp6(80, 50000, RESPONSE, to_server=False, seq=1000),
        tcp6(80, 50000, BODY, to_server=False, seq=1000 + len(RESPONSE)),
        tcp6(80, 50000, BODY, to_server=False, seq=1000 + len(RESPONSE)),  # retransmitted
        dhcp6(DHCP6_Release(trid=0x1234) / DHCP6OptClientId() / DHCP6OptServerId(),
              to_server=True),
        dhcp6(DHCP6_Reply(trid=0x1234) / DHCP6OptClientId() / DHCP6OptServerId()
              / DHCP6OptStatusCode(statuscode=0, statusmsg=b"released"), to_server=False),
        Ether(src=SERVER_MAC, dst="33:33:00:00:00:01") / IPv6(src="fe80::1", dst="ff02::1")
        / ICMPv6ND_RA(M=1, routerlifetime=0)
        / ICMPv6NDOptPrefixInfo(prefix="2001:db8::", prefixlen=64),
        offer(("vendor_class_id", b"PXEClient")),
        offer(("vendor_class_id", b"PXEClient"), ("vendor_specific", b"\x06\x01\x08\xff")),
        udp4(68, 4011, BOOTP(op=1, chaddr=bytes.fromhex(MAC.replace(":", "")))
             / DHCP(options=[("message-type", "request"), "end"])),
        *[(Ether(src=MAC, dst=SERVER_MAC) / IP(src=CLIENT4, dst=SERVER4)
           / TCP(sport=700, dport=2049) / Raw(b"n" * 100)) for _ in range(3)],
        Ether(src=SERVER_MAC, dst=MAC) / IP(src=SERVER4, dst=CLIENT4)
        / TCP(sport=2049, dport=700) / Raw(b"r" * 50),
    ]


@pytest.fixture(scope="module")
def crafted(tmp_path_factory: pytest.TempPathFactory) -> list[PacketRecord]:
    """Module: the records of a capture of tftp_frames() then other_frames()."""
    frames = tftp_frames() + other_frames()
    for index, frame in enumerate(frames):
        frame.time = T0 + index * 0.01
    path = tmp_path_factory.mktemp("pcap") / "lab.pcap"
    wrpcap(str(path), frames)
    return summarise_pcap(path, {MAC})


def find(records: list[PacketRecord], kind: str, **fields: Any) -> PacketRecord:
    return next(r for r in records if r.kind == kind
                and all(r.fields.get(k) == v for k, v in fields.items()))


def test_records_are_in_time_order(crafted: list[PacketRecord]) -> None:
    assert [r.time for r in crafted] == sorted(r.time for r in crafted)
    assert all(T0 <= r.time < T0 + 1 for r in crafted)


def test_complete_transfer_is_one_record(crafted: list[PacketRecord]) -> None:
    transfer = find(crafted, "transfer", file="vmlinuz")
    assert transfer.proto == "tftp" and transfer.client == MAC
    assert {k: transfer.fields[k] for k in ("blksize", "blocks", "bytes", "last_block",
                                            "complete", "retransmits", "largest_payload",
                                            "acked")} == {
        "blksize": 1408, "blocks": 4, "bytes": 3 * 1408 + 100, "last_block": 4,
        "complete": True, "retransmits": 1, "largest_payload": 1408, "acked": 4}
    assert transfer.summary.startswith(
        "TFTP vmlinuz 4324 bytes in 4 blocks of 1408, complete (1 retransmitted)")
    assert transfer.time == transfer.fields["first_time"] < transfer.fields["last_time"]
    assert (transfer.src, transfer.dst) == (f"{SERVER4}:34904", f"{CLIENT4}:49163")
    assert find(crafted, "rrq", file="vmlinuz").fields["answer"] == "oack"


def test_stalled_transfer_names_block_and_blksize(crafted: list[PacketRecord]) -> None:
    transfer = find(crafted, "transfer", file="big.img")
    assert transfer.fields["complete"] is False
    assert transfer.fields["last_block"] == 1 and transfer.fields["retransmits"] == 3
    assert transfer.fields["acked"] == 0
    assert transfer.summary.startswith("TFTP big.img stalled at block 1 of blksize 1468")


def test_malformed_oack_and_the_client_abort(crafted: list[PacketRecord]) -> None:
    oack_record = find(crafted, "oack", file="x.efi")
    assert oack_record.fields["malformed"] is True
    assert oack_record.fields["options"] == {"blksize": "1468"}
    assert "malformed" in oack_record.summary
    error = find(crafted, "error", file="x.efi")
    assert error.fields["code"] == 8 and error.fields["from_client"] is True
    assert not any(r.kind == "transfer" and r.fields["file"] == "x.efi" for r in crafted)


def test_file_not_found(crafted: list[PacketRecord]) -> None:
    error = find(crafted, "error", file="pxelinux.cfg/default")
    assert error.fields == {"code": 1, "message": "File not found",
                            "file": "pxelinux.cfg/default", "from_client": False}
    assert error.summary == "ERROR 1 'File not found' for pxelinux.cfg/default (server)"
    assert error.client == MAC
    assert find(crafted, "rrq", file="pxelinux.cfg/default").fields["answer"] == "error"


def test_http_request_and_status(crafted: list[PacketRecord]) -> None:
    http = [r for r in crafted if r.proto == "http"]
    assert [r.kind for r in http] == ["request", "response"]  # the body is not a request
    request, response = http
    assert request.fields["method"] == "GET" and request.fields["path"] == "/grubx64.efi"
    assert request.summary == "GET /grubx64.efi" and request.client == MAC
    assert request.src == f"[{CLIENT6}]:50000"
    assert (response.fields["status"], response.fields["length"]) == (200, 1234)
    assert response.fields["path"] == "/grubx64.efi" and response.client == MAC
    assert response.fields["body_bytes"] == 2 + len(BODY)  # a retransmission counts once


def test_dhcp6_release_and_its_reply(crafted: list[PacketRecord]) -> None:
    release = find(crafted, "release")
    reply = find(crafted, "reply")
    assert release.proto == reply.proto == "dhcp6"
    assert release.fields["xid"] == reply.fields["xid"] == 0x1234
    assert release.client == reply.client == MAC
    assert reply.fields["status"] == "Success"
    assert reply.summary == "REPLY xid=0x001234 status=Success"


def test_router_advertisement(crafted: list[PacketRecord]) -> None:
    ra = find(crafted, "ra")
    assert ra.proto == "ra"
    assert ra.fields["managed"] is True and ra.fields["other"] is False
    assert ra.fields["router_lifetime"] == 0 and ra.fields["prefix"] == "2001:db8::/64"


def test_offers_with_and_without_option_43(crafted: list[PacketRecord]) -> None:
    plain, with_43 = [r for r in crafted if r.kind == "offer"]
    assert plain.fields["vendor_class"] == "PXEClient" and not plain.fields["has_option_43"]
    assert with_43.fields["has_option_43"] is True
    assert plain.fields["yiaddr"] == CLIENT4 and plain.fields["file"] == "pxelinux.0"
    assert plain.summary == (f"OFFER yiaddr={CLIENT4} siaddr={SERVER4} file=pxelinux.0 "
                             "vendor-class=PXEClient")
    binl = find(crafted, "request", dport=4011)
    assert "port 4011" in binl.summary


def test_nfs_connection_is_one_record(crafted: list[PacketRecord]) -> None:
    (nfs,) = [r for r in crafted if r.proto == "nfs"]
    assert nfs.kind == "connection" and nfs.client == MAC
    assert nfs.fields["packets"] == 4 and nfs.fields["bytes"] == 350
    assert (nfs.src, nfs.dst) == (f"{CLIENT4}:700", f"{SERVER4}:2049")


def test_block_numbers_wrap(tmp_path: Path) -> None:
    frames = [rrq(50000, "huge"), data(40000, 50000, 65535, 512), data(40000, 50000, 0, 512),
              data(40000, 50000, 65535, 512), data(40000, 50000, 1, 10)]
    for index, frame in enumerate(frames):
        frame.time = T0 + index
    wrpcap(str(tmp_path / "wrap.pcap"), frames)
    transfer = find(summarise_pcap(tmp_path / "wrap.pcap"), "transfer")
    assert transfer.fields["blocks"] == 3 and transfer.fields["retransmits"] == 1
    assert transfer.fields["last_block"] == 65537 and transfer.fields["complete"] is True


def test_missing_or_empty_capture_has_no_records(tmp_path: Path) -> None:
    assert summarise_pcap(tmp_path / "none.pcap") == []
    (tmp_path / "empty.pcap").write_bytes(b"")
    assert summarise_pcap(tmp_path / "empty.pcap") == []


def test_cut_capture_keeps_what_was_read(tmp_path: Path) -> None:
    path = tmp_path / "cut.pcap"
    wrpcap(str(path), tftp_frames())
    path.write_bytes(path.read_bytes()[:-20])  # tcpdump killed mid-write
    assert find(summarise_pcap(path), "rrq", file="vmlinuz")


def write_bulk_pcap(path: Path, blocks: int) -> None:
    """A classic pcap of one RRQ and ``blocks`` DATA frames, written without scapy (fast)."""
    frames = [bytes(rrq(49200, "vmlinuz", blksize="1408"))]
    template = bytes(data(40000, 49200, 0, 1408))
    offset = len(template) - 1408 - 2  # the block number sits right before the payload
    for block in range(1, blocks + 1):
        frames.append(template[:offset] + struct.pack("!H", block & 0xFFFF)
                      + template[offset + 2:])
    header = struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1)
    records = [struct.pack("<IIII", int(T0) + i // 1000, i % 1000, len(f), len(f)) + f
               for i, f in enumerate(frames)]
    path.write_bytes(header + b"".join(records))


def test_bulk_transfer_is_summarised_quickly(tmp_path: Path) -> None:
    # 20 000 DATA blocks, the size of a kernel: a per-packet scapy dissection would
    # take tens of seconds; the raw pass takes a fraction of one.
    path = tmp_path / "bulk.pcap"
    write_bulk_pcap(path, 20_000)
    summarise_pcap(path)  # scapy's lazy imports, once
    started = time.perf_counter()
    records = summarise_pcap(path)
    elapsed = time.perf_counter() - started
    transfer = find(records, "transfer")
    assert transfer.fields["blocks"] == 20_000 and transfer.fields["bytes"] == 20_000 * 1408
    assert elapsed < 3.0, f"summarising 20 000 frames took {elapsed:.2f}s"


def test_a_bug_in_the_summariser_raises(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Only the reading of a cut capture may end the records early; a bug of ours must show.
    path = tmp_path / "whole.pcap"
    wrpcap(str(path), tftp_frames())

    def broken(self: Any, when: float, data: bytes) -> None:
        raise KeyError("a bug in the summariser")

    monkeypatch.setattr(packets._Summariser, "frame", broken)
    with pytest.raises(KeyError, match="a bug in the summariser"):
        summarise_pcap(path)


@pytest.mark.parametrize("keep", [10, 23, 30])
def test_capture_cut_in_its_header_has_no_records(tmp_path: Path, keep: int) -> None:
    path = tmp_path / "cut.pcap"
    wrpcap(str(path), tftp_frames())
    path.write_bytes(path.read_bytes()[:keep])
    assert summarise_pcap(path) == []
