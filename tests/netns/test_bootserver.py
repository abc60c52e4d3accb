"""The boot server end to end in network namespaces, against real and crafted clients.

Layout (made here with pyroute2, not with LabNetwork, so this file tests the
server alone): a "server" namespace with bridge br0 (192.0.2.1/24,
2001:db8::1/64) and a veth port whose peer is eth0 in a "client" namespace
(192.0.2.50/24, 2001:db8::50/64). Clients: scapy-built DHCP over a UDP
socket, busybox udhcpc, a small Python TFTP client (the TFTP server's own
tests are in test_tftp_server.py), urllib, http.client and curl. Every wait is
on the EventLog or a socket timeout.
"""

from __future__ import annotations

import contextlib
import http.client
import os
import socket
import struct
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from ipaddress import IPv4Address
from pathlib import Path
from typing import Any

import pytest
from nslab import SERVER4, SERVER6, Lab, dhcp4_client_socket, event, in_client
from pyroute2 import NetNS
from scapy.layers.dhcp import BOOTP, DHCP
from scapy.layers.inet6 import ICMPv6ND_RS

from pxelab.core.errors import ConfigError, ServerError
from pxelab.core.events import EventLog
from pxelab.core.netns import thread_in_namespace
from pxelab.pytest_plugin import pxelab_requires
from pxelab.server.bootserver import (
    BootServer,
    Dhcp4Config,
    Dhcp4Mode,
    HttpConfig,
    RaConfig,
    ServerConfig,
    TftpConfig,
)
from pxelab.server.dhcp4 import codec as dhcp
from pxelab.server.policy import HostRule, RulePolicy
from pxelab.server.ra import codec as ra
from pxelab.server.tftp import codec as tftp

pytestmark = pytest.mark.netns

WITHHELD_MAC = "52:54:00:00:0b:ad"


# -- fixtures --------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def data_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Module scope: boot files, a secret beside the root and a symlink pointing at it."""
    base = tmp_path_factory.mktemp("bootserver")
    root = base / "root"
    (root / "pxelinux.cfg").mkdir(parents=True)
    (root / "pxelinux.0").write_bytes(os.urandom(100_000))
    (root / "exact.bin").write_bytes(os.urandom(512 * 40))  # ends in an empty DATA block
    (root / "pxelinux.cfg" / "default").write_text("DEFAULT linux\n")
    (root / "boot.ipxe").write_text("#!ipxe\necho hello\n")
    (base / "secret").write_text("outside the root\n")
    (root / "escape").symlink_to(base / "secret")
    return root


@pytest.fixture(scope="module")
def server(lab: Lab, data_root: Path, events: EventLog) -> Iterator[BootServer]:
    """Module scope: a BootServer in the server namespace; depends on lab, data_root."""
    config = ServerConfig(data_root=data_root, tftp=TftpConfig(timeout=0.3),
                          ra=RaConfig(interval=30.0))
    policy = RulePolicy(hosts=(HostRule(WITHHELD_MAC, withhold=True, reason="test: silent"),))
    with BootServer(config, policy, events, namespace=lab.server) as running:
        yield running


# -- DHCPv4 ----------------------------------------------------------------------------------

class DhcpClient:
    """Broadcasts crafted requests from the client namespace and collects replies by xid."""

    def __init__(self, lab: Lab) -> None:
        self.sock = dhcp4_client_socket(lab)
        self.sock.settimeout(5)

    def send(self, mac: str, xid: int, options: list[Any], ciaddr: str = "0.0.0.0") -> None:
        packet = BOOTP(chaddr=bytes.fromhex(mac.replace(":", "")), xid=xid, ciaddr=ciaddr,
                       flags=0x8000) / DHCP(options=[*options, "end"])
        self.sock.sendto(bytes(packet), ("255.255.255.255", 67))

    def reply(self, xid: int) -> dhcp.DhcpMessage:
        while True:
            data, _ = self.sock.recvfrom(4096)
            message = dhcp.decode(data)
            if message.xid == xid:
                return message

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def dhcp_client(lab: Lab, server: BootServer) -> Iterator[DhcpClient]:
    client = DhcpClient(lab)
    yield client
    client.close()


def test_dora_with_ipxe_style_client(dhcp_client: DhcpClient, events: EventLog) -> None:
    mac = "52:54:00:00:00:01"
    ipxe = [(93, b"\x00\x00"), (77, b"iPXE"), (175, b"\xb1\x05\x01\x10\xec\x10\x00")]
    dhcp_client.send(mac, 101, [("message-type", "discover"), *ipxe])
    offer = dhcp_client.reply(101)
    assert offer.message_type is dhcp.MessageType.OFFER
    assert offer.siaddr == IPv4Address(SERVER4) and offer.file == "pxelinux.0"
    assert offer.raw(175) == b"\xb0\x01\x01"
    dhcp_client.send(mac, 102, [("message-type", "request"), ("server_id", SERVER4),
                                ("requested_addr", str(offer.yiaddr)), *ipxe])
    ack = dhcp_client.reply(102)
    assert ack.message_type is dhcp.MessageType.ACK and ack.yiaddr == offer.yiaddr
    assert ack.ipv4(54) == IPv4Address(SERVER4) and ack.get(51) == 3600
    seen = events.wait_for(event("dhcp4", "ack", client=mac), 5, "dhcp4.ack")
    assert seen.reason == "arch 0 (BIOS) -> pxelinux.0"
    assert seen.details["user_classes"] == ["iPXE"]
    # RELEASE, then a new DISCOVER gets the same address back
    dhcp_client.send(mac, 103, [("message-type", "release"), ("server_id", SERVER4)],
                     ciaddr=str(ack.yiaddr))
    events.wait_for(event("dhcp4", "release", client=mac), 5, "dhcp4.release")
    dhcp_client.send(mac, 104, [("message-type", "discover")])
    assert dhcp_client.reply(104).yiaddr == offer.yiaddr


def test_request_for_unknown_address_is_naked(dhcp_client: DhcpClient, events: EventLog) -> None:
    mac = "52:54:00:00:00:02"
    dhcp_client.send(mac, 201, [("message-type", "discover")])
    offer = dhcp_client.reply(201)
    dhcp_client.send(mac, 202, [("message-type", "request"), ("server_id", SERVER4),
                                ("requested_addr", str(offer.yiaddr + 1))])
    assert dhcp_client.reply(202).message_type is dhcp.MessageType.NAK
    events.wait_for(event("dhcp4", "nak", client=mac), 5, "dhcp4.nak")


def test_withheld_client_gets_nothing(dhcp_client: DhcpClient, events: EventLog) -> None:
    dhcp_client.send(WITHHELD_MAC, 301, [("message-type", "discover")])
    dhcp_client.send("52:54:00:00:00:03", 302, [("message-type", "discover")])
    # Requests are handled in order: once 302 is answered, 301 was decided and not answered.
    assert dhcp_client.reply(302).message_type is dhcp.MessageType.OFFER
    withheld = events.wait_for(event("dhcp4", "withheld", client=WITHHELD_MAC), 5, "withheld")
    assert withheld.reason == "test: silent"
    assert not events.matching(event("dhcp4", "offer", client=WITHHELD_MAC))


def test_garbage_is_dropped_and_server_keeps_serving(dhcp_client: DhcpClient,
                                                     events: EventLog) -> None:
    dhcp_client.sock.sendto(b"\x01\x01\x06\x00junk", ("255.255.255.255", 67))
    events.wait_for(event("dhcp4", "drop"), 5, "dhcp4.drop for junk")
    dhcp_client.send("52:54:00:00:00:04", 401, [("message-type", "discover")])
    assert dhcp_client.reply(401).message_type is dhcp.MessageType.OFFER


def test_busybox_udhcpc_gets_a_lease(lab: Lab, server: BootServer, events: EventLog) -> None:
    pxelab_requires(tools=["busybox"], hint="apt-get install busybox-static")
    result = in_client(lab, ["busybox", "udhcpc", "-i", "eth0", "-n", "-q", "-f",
                             "-s", "/bin/true", "-t", "3", "-T", "1", "-x", "0x5d:0007"])
    assert result.returncode == 0, result.stderr
    assert f"obtained from {SERVER4}" in result.stderr
    ack = events.wait_for(lambda e: e.source == "dhcp4" and e.kind == "ack"
                          and (e.details.get("vendor_class") or "").startswith("udhcp"), 5, "ack")
    assert ack.details["arch"] == 7 and ack.file == "bootx64.efi"


# -- TFTP ------------------------------------------------------------------------------------

class TftpClientError(Exception):
    def __init__(self, code: int, message: str) -> None:
        super().__init__(f"ERROR {code} {message}")
        self.code = code


@dataclass
class Download:
    data: bytes
    oack: dict[str, str]
    port: int


def tftp_read(lab: Lab, name: str, options: dict[str, str] | None = None, *,
              host: str = SERVER4, ignore_first_data: bool = False,
              abort_after_oack: bool = False) -> Download:
    """A minimal RFC 1350/2347/7440 client (lock-step or windowed)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with thread_in_namespace(lab.client):
        sock = socket.socket(family, socket.SOCK_DGRAM)
    sock.settimeout(5)
    request = tftp.ReadRequest(name, "octet", tuple((options or {}).items()))
    sock.sendto(tftp.encode(request), (host, 69))
    blksize, window, expected, in_window = 512, 1, 1, 0
    received, oack, peer = bytearray(), {}, None
    try:
        while True:
            data, addr = sock.recvfrom(70000)
            peer = peer or addr
            packet = tftp.decode(data)
            if isinstance(packet, tftp.Error):
                raise TftpClientError(packet.code, packet.message)
            if isinstance(packet, tftp.OptionAck):
                oack = dict(packet.options)
                if abort_after_oack:
                    sock.sendto(tftp.encode(tftp.Error(8, "User aborted the transfer")), peer)
                    return Download(b"", oack, peer[1])
                blksize = int(oack.get("blksize", 512))
                window = int(oack.get("windowsize", 1))
                sock.sendto(tftp.encode(tftp.Ack(0)), peer)
                continue
            assert isinstance(packet, tftp.Data)
            if ignore_first_data:
                ignore_first_data = False
                continue
            if packet.block != expected & 0xFFFF:
                sock.sendto(tftp.encode(tftp.Ack((expected - 1) & 0xFFFF)), peer)
                in_window = 0
                continue
            received += packet.payload
            expected += 1
            in_window += 1
            last = len(packet.payload) < blksize
            if last or in_window == window:
                sock.sendto(tftp.encode(tftp.Ack((expected - 1) & 0xFFFF)), peer)
                in_window = 0
            if last:
                return Download(bytes(received), oack, peer[1])
    finally:
        sock.close()


def test_tftp_lockstep_with_options(lab: Lab, server: BootServer, data_root: Path,
                                    events: EventLog) -> None:
    got = tftp_read(lab, "pxelinux.0", {"blksize": "1408", "tsize": "0"})
    assert got.data == (data_root / "pxelinux.0").read_bytes()
    assert got.oack == {"blksize": "1408", "tsize": "100000"}
    assert got.port != 69
    sent = events.wait_for(event("tftp", "sent", file="pxelinux.0", blksize=1408), 5, "sent")
    assert sent.details["bytes"] == 100_000 and sent.details["blocks"] == 72
    assert events.matching(event("tftp", "rrq", file="pxelinux.0"))


def test_tftp_over_ipv6(lab: Lab, server: BootServer, data_root: Path) -> None:
    got = tftp_read(lab, "pxelinux.0", {"blksize": "1432", "tsize": "0"}, host=SERVER6)
    assert got.data == (data_root / "pxelinux.0").read_bytes()


# -- HTTP ------------------------------------------------------------------------------------

def http_request(lab: Lab, method: str, path: str, headers: dict[str, str] | None = None,
                 host: str = SERVER4) -> tuple[int, dict[str, str], bytes]:
    with thread_in_namespace(lab.client):
        conn = http.client.HTTPConnection(host, 80, timeout=5)
        conn.connect()
    try:
        conn.request(method, path, headers=headers or {})
        response = conn.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        conn.close()


def test_http_get_head_and_keep_alive(lab: Lab, server: BootServer, data_root: Path,
                                      events: EventLog) -> None:
    body = (data_root / "pxelinux.0").read_bytes()
    with thread_in_namespace(lab.client):
        conn = http.client.HTTPConnection(SERVER4, 80, timeout=5)
        conn.connect()
    with contextlib.closing(conn):
        conn.request("HEAD", "/pxelinux.0")
        head = conn.getresponse()
        head.read()
        assert head.status == 200 and head.getheader("Content-Length") == str(len(body))
        conn.request("GET", "/pxelinux.0")  # same connection: keep-alive
        get = conn.getresponse()
        assert get.status == 200 and get.read() == body
    got = events.wait_for(event("http", "get", file="/pxelinux.0"), 5, "http.get")
    assert got.details["status"] == 200 and got.details["bytes"] == len(body)
    events.wait_for(event("http", "head", file="/pxelinux.0"), 5, "http.head")


def test_http_ranges(lab: Lab, server: BootServer, data_root: Path) -> None:
    body = (data_root / "pxelinux.0").read_bytes()
    status, headers, part = http_request(lab, "GET", "/pxelinux.0", {"Range": "bytes=10-19"})
    assert status == 206 and part == body[10:20]
    assert headers["Content-Range"] == f"bytes 10-19/{len(body)}"
    status, _, part = http_request(lab, "GET", "/pxelinux.0", {"Range": "bytes=-5"})
    assert status == 206 and part == body[-5:]
    status, headers, _ = http_request(lab, "GET", "/pxelinux.0", {"Range": "bytes=999999-"})
    assert status == 416 and headers["Content-Range"] == f"bytes */{len(body)}"


def test_http_errors(lab: Lab, server: BootServer, events: EventLog) -> None:
    assert http_request(lab, "GET", "/missing.efi")[0] == 404
    assert http_request(lab, "GET", "/../secret")[0] == 403
    assert http_request(lab, "GET", "/%2e%2e/secret")[0] == 403
    assert http_request(lab, "GET", "/escape")[0] == 403
    assert http_request(lab, "POST", "/pxelinux.0")[0] == 405
    denied = events.wait_for(event("http", "get", file="/escape"), 5, "http.get /escape")
    assert denied.details["status"] == 403
    with thread_in_namespace(lab.client):
        raw = socket.create_connection((SERVER4, 80), timeout=5)
    with raw:
        raw.sendall(b"\x16\x03\x01 not http at all\r\n\r\n")
        assert raw.recv(100).startswith(b"HTTP/1.1 400")
    events.wait_for(event("http", "error", status=400), 5, "http.error 400")
    assert http_request(lab, "GET", "/boot.ipxe")[2].startswith(b"#!ipxe")


def test_http_over_ipv6_and_curl(lab: Lab, server: BootServer, data_root: Path) -> None:
    assert http_request(lab, "GET", "/boot.ipxe", host=SERVER6)[0] == 200
    pxelab_requires(tools=["curl"], hint="apt-get install curl")
    result = in_client(lab, ["curl", "-sS", "-o", "/dev/null",
                             "-w", "%{http_code} %{size_download}", f"http://{SERVER4}/pxelinux.0"])
    assert result.stdout == "200 100000", result.stderr


def test_urllib_get(lab: Lab, server: BootServer) -> None:
    with thread_in_namespace(lab.client), urllib.request.urlopen(
            f"http://{SERVER4}/pxelinux.cfg/default", timeout=5) as response:
        assert response.read() == b"DEFAULT linux\n"
    with thread_in_namespace(lab.client), pytest.raises(urllib.error.HTTPError) as missing:
        urllib.request.urlopen(f"http://{SERVER4}/nope", timeout=5)
    assert missing.value.code == 404
    missing.value.close()


# -- router advertisements -------------------------------------------------------------------

def test_router_solicitation_is_answered(lab: Lab, server: BootServer,
                                         events: EventLog) -> None:
    with thread_in_namespace(lab.client):
        sock = socket.socket(socket.AF_INET6, socket.SOCK_RAW, socket.IPPROTO_ICMPV6)
    with sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, b"eth0")
        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_HOPS, 255)
        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_RECVHOPLIMIT, 1)
        sock.settimeout(10)
        with thread_in_namespace(lab.client):
            eth0 = socket.if_nametoindex("eth0")
        sock.sendto(bytes(ICMPv6ND_RS()), ("ff02::2", 0, 0, eth0))
        events.wait_for(event("ra", "solicit"), 10, "ra.solicit")
        sent = events.wait_for(lambda e: e.source == "ra" and e.kind == "sent"
                               and "solicited" in e.reason, 10, "solicited ra.sent")
        while True:  # the kernel also delivers NS/NA and our own RS; look for the RA
            data, ancillary, _, source = sock.recvmsg(2048, socket.CMSG_SPACE(4))
            if data[0] == ra.ICMPV6_RA:
                break
    advert = ra.decode(data)
    assert isinstance(advert, ra.RouterAdvertisement)
    assert advert.router_lifetime == 0 and not advert.managed and not advert.other
    assert [str(p.prefix) for p in advert.prefixes] == ["2001:db8::/64"]
    assert source[0].startswith("fe80::") and source[0].split("%")[0] == sent.details["source"]
    hop_limits = [struct.unpack("=i", d)[0] for lvl, kind, d in ancillary
                  if lvl == socket.IPPROTO_IPV6 and kind == socket.IPV6_HOPLIMIT]
    assert hop_limits == [255]


def test_client_kernel_autoconfigures_from_ra(lab: Lab, server: BootServer,
                                              events: EventLog) -> None:
    """Linux accepts our RA (link-local source, hop limit 255) and makes a SLAAC address."""
    events.wait_for(event("ra", "sent"), 10, "ra.sent")

    def slaac(address: Any) -> bool:
        text = address.get("IFA_ADDRESS") or ""
        return text.startswith("2001:db8::") and text != "2001:db8::50"

    with NetNS(lab.client) as ns:
        try:
            found = ns.poll(ns.addr, "dump", timeout=10, family=socket.AF_INET6, match=slaac)
        except TimeoutError:
            seen = [a.get("IFA_ADDRESS") for a in ns.addr("dump", family=socket.AF_INET6)]
            pytest.fail(f"no SLAAC address on eth0 within 10 s; addresses: {seen}")
    assert found


# -- lifecycle -------------------------------------------------------------------------------

def test_second_server_in_same_namespace_explains_port_in_use(
        lab: Lab, server: BootServer, data_root: Path, events: EventLog) -> None:
    second = BootServer(ServerConfig(data_root=data_root), RulePolicy(), EventLog(),
                        namespace=lab.server)
    with pytest.raises(ServerError, match=r"DHCPv4 .* port 67 .*stop it"):
        second.start()
    # the first one still answers
    assert tftp_read(lab, "pxelinux.cfg/default").data == b"DEFAULT linux\n"


def test_missing_interface_and_data_root(lab: Lab, data_root: Path, tmp_path: Path) -> None:
    bad = BootServer(ServerConfig(interface="nosuch0", data_root=data_root), RulePolicy(),
                     EventLog(), namespace=lab.client)
    with pytest.raises(ServerError, match=r"nosuch0.*does not exist"):
        bad.start()
    with pytest.raises(ConfigError, match="not a directory"):
        BootServer(ServerConfig(data_root=tmp_path / "absent"), RulePolicy(), EventLog(),
                   namespace=lab.client).start()


def test_restart_in_same_namespace(lab: Lab, data_root: Path) -> None:
    """A stopped server frees its ports at once (TFTP only, on the client side's eth0)."""
    config = ServerConfig(interface="eth0", ipv4=ServerConfig().ipv4, data_root=data_root,
                          ipv6=None, dhcp4=Dhcp4Config(mode=Dhcp4Mode.OFF),
                          http=HttpConfig(enabled=False))
    for _ in range(2):
        log = EventLog()
        with BootServer(config, RulePolicy(), log, namespace=lab.client):
            log.wait_for(event("server", "ready"), 5, "server.ready")
        log.wait_for(event("server", "stopped"), 5, "server.stopped")
