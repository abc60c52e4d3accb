"""summarise_pcap: TCP connection attempts, ICMP unreachable and NFS error replies.

Frames crafted with scapy, shaped like the real boots' (tcpdump of the NFS failure
boots of issue 14: ganesha down, an export path typo, SecType krb5, NFSv3 only).
"""

from __future__ import annotations

import struct
from pathlib import Path
from typing import Any

import pytest
from scapy.layers.inet import ICMP, IP, TCP, UDP
from scapy.layers.inet6 import ICMPv6DestUnreach, IPv6
from scapy.layers.l2 import Ether
from scapy.layers.tftp import TFTP, TFTP_RRQ
from scapy.packet import Packet, Raw
from scapy.utils import wrpcap

from pxelab.analysis.evidence import PacketRecord
from pxelab.analysis.evidence.nfswire import MAX_ERRORS, RpcStream, parse_message
from pxelab.analysis.evidence.packets import summarise_pcap
from pxelab.machine.nfs import auth_sys, compound_lookup_args, rpc_accepted_reply, rpc_call

pytestmark = pytest.mark.unit

MAC, SERVER_MAC = "52:54:00:12:34:56", "02:00:00:00:00:01"
CLIENT4, SERVER4 = "192.0.2.100", "192.0.2.1"
CLIENT6, SERVER6 = "2001:db8::100", "2001:db8::1"
T0 = 1_800_000_000.0


def tcp4(sport: int, dport: int, flags: str, *, seq: int = 0, payload: bytes = b"",
         to_server: bool = True) -> Packet:
    src, dst = (CLIENT4, SERVER4) if to_server else (SERVER4, CLIENT4)
    macs = (MAC, SERVER_MAC) if to_server else (SERVER_MAC, MAC)
    frame = (Ether(src=macs[0], dst=macs[1]) / IP(src=src, dst=dst)
             / TCP(sport=sport, dport=dport, flags=flags, seq=seq))
    return frame / Raw(payload) if payload else frame


def tcp6(sport: int, dport: int, flags: str, *, seq: int = 0, to_server: bool = True
         ) -> Packet:
    src, dst = (CLIENT6, SERVER6) if to_server else (SERVER6, CLIENT6)
    macs = (MAC, SERVER_MAC) if to_server else (SERVER_MAC, MAC)
    return (Ether(src=macs[0], dst=macs[1]) / IPv6(src=src, dst=dst)
            / TCP(sport=sport, dport=dport, flags=flags, seq=seq))


def compound_reply(xid: int, status: int) -> bytes:
    """A COMPOUND4res of one failed op: status, tag "", resarray of one (op, status)."""
    return rpc_accepted_reply(xid, 0, struct.pack(">IIIII", status, 0, 1, 15, status))


def lookup_call(xid: int, path: str, minor: int = 0) -> bytes:
    args = bytearray(compound_lookup_args(path, tag=""))
    args[4:8] = struct.pack(">I", minor)  # after the empty tag: minorversion
    return rpc_call(xid, 1, bytes(args), cred=auth_sys())


def rpc_exchange(port: int, call: bytes, reply: bytes, *, seq: int = 1000) -> list[Packet]:
    return [tcp4(port, 2049, "S", seq=seq - 1), tcp4(2049, port, "SA", to_server=False),
            tcp4(port, 2049, "PA", seq=seq, payload=call),
            tcp4(2049, port, "PA", seq=5000, payload=reply, to_server=False)]


def frames() -> list[Packet]:
    refused = [tcp4(700, 2049, "S", seq=1), tcp4(2049, 700, "RA", to_server=False)]
    # A keep-alive HTTP connection the server closes with RST after its last response.
    keep_alive = [tcp4(40000, 80, "S", seq=9), tcp4(80, 40000, "SA", to_server=False),
                  tcp4(40000, 80, "PA", seq=10, payload=b"GET /x HTTP/1.1\r\n\r\n"),
                  tcp4(80, 40000, "PA", seq=1, payload=b"HTTP/1.1 200 OK\r\n"
                       b"Content-Length: 0\r\n\r\n", to_server=False),
                  tcp4(80, 40000, "R", seq=40, to_server=False)]
    unanswered = [tcp6(41000, 80, "S", seq=77) for _ in range(3)]
    rrq = (Ether(src=MAC, dst=SERVER_MAC) / IP(src=CLIENT4, dst=SERVER4)
           / UDP(sport=49152, dport=69) / TFTP() / TFTP_RRQ(filename=b"pxelinux.0"))
    icmp4 = (Ether(src=SERVER_MAC, dst=MAC) / IP(src=SERVER4, dst=CLIENT4)
             / ICMP(type=3, code=3) / bytes(rrq[IP])[:28])
    syn8080 = tcp6(42000, 8080, "S", seq=5)
    icmp6 = (Ether(src=SERVER_MAC, dst=MAC) / IPv6(src=SERVER6, dst=CLIENT6)
             / ICMPv6DestUnreach(code=4) / bytes(syn8080[IPv6])[:48])
    typo = rpc_exchange(844, lookup_call(0x10, "/pxelab-typo"), compound_reply(0x10, 2))
    wrongsec = rpc_exchange(845, lookup_call(0x11, "/pxelab"), compound_reply(0x11, 10016))
    minor = rpc_exchange(846, lookup_call(0x12, "/pxelab", minor=2),
                         rpc_accepted_reply(0x12, 0, struct.pack(">III", 10021, 0, 0)))
    null_v4 = rpc_exchange(847, rpc_call(0x13, 0), rpc_accepted_reply(
        0x13, 2, struct.pack(">II", 3, 3)))
    ok = rpc_exchange(848, lookup_call(0x14, "/pxelab"), compound_reply(0x14, 0))
    return [*refused, *keep_alive, *unanswered, rrq, icmp4, syn8080, icmp6, *typo,
            *wrongsec, *minor, *null_v4, *ok]


@pytest.fixture(scope="module")
def records(tmp_path_factory: pytest.TempPathFactory) -> list[PacketRecord]:
    """Module: the records of frames(), 10 ms apart."""
    found = frames()
    for index, frame in enumerate(found):
        frame.time = T0 + index * 0.01
    path = tmp_path_factory.mktemp("pcap") / "lab.pcap"
    wrpcap(str(path), found)
    return summarise_pcap(path, {MAC})


def connect(records: list[PacketRecord], dst: str, sport: int) -> PacketRecord:
    (found,) = [r for r in records if r.proto == "tcp" and r.dst == dst
                and r.src.endswith(f":{sport}")]
    return found


def nfs_errors(records: list[PacketRecord], **fields: Any) -> list[PacketRecord]:
    return [r for r in records if (r.proto, r.kind) == ("nfs", "error")
            and all(r.fields.get(k) == v for k, v in fields.items())]


def test_a_syn_answered_by_rst_is_refused(records: list[PacketRecord]) -> None:
    attempt = connect(records, f"{SERVER4}:2049", 700)
    assert (attempt.kind, attempt.src, attempt.client) == ("connect", f"{CLIENT4}:700", MAC)
    assert attempt.fields["outcome"] == "refused" and attempt.fields["service"] == "nfs"
    assert attempt.fields["syns"] == 1 and attempt.fields["answer_time"] > attempt.time
    assert "refused (RST)" in attempt.summary


def test_a_keep_alive_closed_by_the_server_is_accepted_not_refused(
        records: list[PacketRecord]) -> None:
    attempt = connect(records, f"{SERVER4}:80", 40000)
    assert attempt.fields["outcome"] == "accepted"
    assert attempt.fields["closed"] == "server_rst" and attempt.fields["service"] == "http"
    assert attempt.fields["bytes_from_server"] > 0


def test_retransmitted_syns_are_one_unanswered_attempt(records: list[PacketRecord]) -> None:
    attempt = connect(records, f"[{SERVER6}]:80", 41000)
    assert attempt.fields["outcome"] == "unanswered" and attempt.fields["syns"] == 3
    assert "3 SYNs over 0.0" in attempt.summary


def test_icmp_port_unreachable_quotes_the_rrq_port(records: list[PacketRecord]) -> None:
    (icmp,) = [r for r in records if r.proto == "icmp" and r.fields["port"] == 69]
    assert icmp.kind == "unreachable" and icmp.fields["reason"] == "port unreachable"
    assert icmp.fields["quoted_proto"] == "udp"
    assert icmp.fields["quoted_src"] == f"{CLIENT4}:49152"
    assert (icmp.src, icmp.dst, icmp.client) == (SERVER4, CLIENT4, MAC)


def test_icmpv6_port_unreachable_answers_a_syn(records: list[PacketRecord]) -> None:
    (icmp,) = [r for r in records if r.proto == "icmp" and r.fields["port"] == 8080]
    assert icmp.fields["quoted_proto"] == "tcp" and icmp.fields["code"] == 4
    attempt = connect(records, f"[{SERVER6}]:8080", 42000)
    assert attempt.fields["outcome"] == "unreachable" and attempt.fields["service"] == "port 8080"


def test_noent_names_the_lookup(records: list[PacketRecord]) -> None:
    (error,) = nfs_errors(records, status=2)
    assert error.fields["error"] == "NFS4ERR_NOENT" and error.fields["lookups"] == ["pxelab-typo"]
    assert error.fields["ops"] == ["PUTROOTFH", "LOOKUP"] and error.fields["minorversion"] == 0
    assert error.summary == (f"{SERVER4}:2049 answered NFSv4.0 COMPOUND PUTROOTFH LOOKUP "
                             "pxelab-typo: NFS4ERR_NOENT")
    assert (error.src, error.dst) == (f"{SERVER4}:2049", f"{CLIENT4}:844")


def test_wrongsec_minor_version_and_program_mismatch(records: list[PacketRecord]) -> None:
    assert nfs_errors(records, status=10016)[0].fields["error"] == "NFS4ERR_WRONGSEC"
    (minor,) = nfs_errors(records, status=10021)
    assert minor.fields["minorversion"] == 2
    assert minor.fields["error"] == "NFS4ERR_MINOR_VERS_MISMATCH"
    (mismatch,) = nfs_errors(records, accept_stat=2)
    assert mismatch.fields["mismatch"] == [3, 3] and mismatch.fields["version"] == 4
    assert "PROG_MISMATCH (the server has versions 3..3)" in mismatch.summary


def test_ok_replies_leave_no_record(records: list[PacketRecord]) -> None:
    assert len(nfs_errors(records)) == 4
    assert not nfs_errors(records, xid=0x14)


def test_only_segments_that_begin_a_record_are_read() -> None:
    # A READ reply of 3000 bytes in three segments; its middle looks like a record mark
    # and an error reply, and must not be read as one.
    body = rpc_accepted_reply(0x20, 0, b"\0" * 2972)
    stream = RpcStream()
    assert len(stream.segment(100, body[:1000])) == 1
    fake = compound_reply(0x21, 2)
    assert stream.segment(1100, fake + body[1000 + len(fake):2000]) == []
    assert stream.segment(1100, body[1000:2000]) == []  # a retransmission
    assert stream.segment(2100, body[2000:]) == []
    (reply,) = stream.segment(100 + len(body), fake)
    message = parse_message(reply)
    assert message.xid == 0x21


def test_error_records_are_capped(tmp_path: Path) -> None:
    found: list[Packet] = []
    for n in range(MAX_ERRORS + 5):
        found += rpc_exchange(900 + n, lookup_call(n, "/missing"), compound_reply(n, 2))
    for index, frame in enumerate(found):
        frame.time = T0 + index * 0.01
    wrpcap(str(tmp_path / "many.pcap"), found)
    assert len(nfs_errors(summarise_pcap(tmp_path / "many.pcap", {MAC}))) == MAX_ERRORS


def test_http_bytes_the_client_acknowledged_count_when_the_capture_lost_some(
        tmp_path: Path) -> None:
    # tcpdump lost the second half of the body; the client's ACK shows it got it all.
    head = b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n"
    found = [tcp4(40000, 80, "PA", seq=10, payload=b"GET /initrd.img HTTP/1.1\r\n\r\n"),
             tcp4(80, 40000, "PA", seq=1, payload=head + b"x" * 500, to_server=False),
             tcp4(40000, 80, "A", seq=39) / Raw(b""),
             tcp4(40000, 80, "PA", seq=39, payload=b"HEAD /x HTTP/1.1\r\n\r\n"),
             tcp4(80, 40000, "PA", seq=1 + len(head) + 1000, to_server=False,
                  payload=b"HTTP/1.1 200 OK\r\nContent-Length: 77\r\n\r\n")]
    found[2][TCP].ack = 1 + len(head) + 1000
    for index, frame in enumerate(found):
        frame.time = T0 + index * 0.01
    wrpcap(str(tmp_path / "http.pcap"), found)
    get, head_response = [r for r in summarise_pcap(tmp_path / "http.pcap", {MAC})
                          if r.kind == "response"]
    assert get.fields["method"] == "GET" and get.fields["body_bytes"] == 500
    assert get.fields["body_acked"] == 1000
    assert head_response.fields["method"] == "HEAD" and head_response.fields["body_bytes"] == 0
