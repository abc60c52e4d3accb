"""The DHCPv4 server in network namespaces: full and proxy mode, crafted clients and real peers.

Layout from :mod:`nslab`: the server namespace's br0 (192.0.2.1/24) and the
client namespace's eth0 (192.0.2.50/24). Three namespace pairs, made once per
module: one for the full-mode server, one for the proxyDHCP server (ports 67
and 4011), and a spare one where tests start servers of their own (min_secs,
faults), since a DHCP server owns port 67 of its namespace. Servers run
DHCPv4 only. Crafted clients are scapy over a UDP socket on the client's eth0;
real peers are busybox udhcpc and ISC dhclient. Every wait is on the EventLog
or a socket timeout; every process and file a test makes is removed afterwards.
"""

from __future__ import annotations

import contextlib
import subprocess
import time
from collections.abc import Iterator
from ipaddress import IPv4Address
from pathlib import Path
from typing import Any

import pytest
from nslab import (
    CLIENT4,
    SERVER4,
    Lab,
    dhcp4_client_socket,
    event,
    in_client,
    stop_processes_mentioning,
    two_namespaces,
)
from scapy.layers.dhcp import BOOTP, DHCP

from pxelab.core.errors import ConfigError
from pxelab.core.events import EventLog
from pxelab.pytest_plugin import pxelab_requires
from pxelab.server.bootserver import BootServer, Dhcp4Config, Dhcp4Mode, ServerConfig
from pxelab.server.dhcp4 import codec as dhcp
from pxelab.server.dhcp4 import pxe
from pxelab.server.dhcp4.codec import MessageType
from pxelab.server.faults import DelayPacket, DropPacket, Fault
from pxelab.server.policy import HostRule, Match, Rule, RulePolicy

pytestmark = pytest.mark.netns

ROUTER = IPv4Address("192.0.2.254")
DNS = IPv4Address("192.0.2.53")
STATIC_MAC = "52:54:00:00:04:77"
STATIC_ADDRESS = IPv4Address("192.0.2.77")
PXELINUX_MAC = "52:54:00:00:04:09"
UUID = b"\x00" + bytes(range(0x10, 0x20))
EDK2_PARAMS = [1, 2, 3, 4, 5, 6, 12, 13, 15, 17, 18, 22, 23, 28, 40, 41, 42, 43, 50, 51, 54, 58,
               59, 60, 66, 67, 97, 128, 129, 130, 131, 132, 133, 134, 135]
PXE_VENDOR = b"PXEClient:Arch:00000:UNDI:002001"

POLICY = RulePolicy(
    hosts=(HostRule(STATIC_MAC, address=STATIC_ADDRESS),),
    rules=(Rule(Match(mac=PXELINUX_MAC), "pxelinux.0", name="pxelinux-options",
                extra_options=((209, b"pxelinux.cfg/lab"), (210, b"/lab/"))),))


# -- fixtures --------------------------------------------------------------------------------

def dhcp4_config(root: Path, **changes: Any) -> ServerConfig:
    """DHCPv4 only: the other protocols have their own tests."""
    return ServerConfig.only("dhcp4", data_root=root, ipv6=None,
                             dhcp4=Dhcp4Config(router=ROUTER, dns=(DNS,), **changes))


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("dhcp4")


@pytest.fixture(scope="module")
def server(lab: Lab, root: Path, events: EventLog) -> Iterator[BootServer]:
    """Module scope: a full DHCPv4 server (router, DNS, a fixed host); depends on lab."""
    with BootServer(dhcp4_config(root), POLICY, events, namespace=lab.server) as running:
        yield running


@pytest.fixture(scope="module")
def proxy_lab() -> Iterator[Lab]:
    """Module scope: the namespaces of the proxyDHCP server."""
    with two_namespaces() as made:
        yield made


@pytest.fixture(scope="module")
def proxy_events() -> EventLog:
    return EventLog()


@pytest.fixture(scope="module")
def proxy_server(proxy_lab: Lab, root: Path, proxy_events: EventLog) -> Iterator[BootServer]:
    """Module scope: a proxyDHCP server on 67 and 4011; depends on proxy_lab."""
    config = dhcp4_config(root, mode=Dhcp4Mode.PROXY)
    with BootServer(config, RulePolicy(), proxy_events, namespace=proxy_lab.server) as running:
        yield running


@pytest.fixture(scope="module")
def spare_lab() -> Iterator[Lab]:
    """Module scope: namespaces for servers that tests start themselves (one config each)."""
    with two_namespaces() as made:
        yield made


@contextlib.contextmanager
def own_server(lab: Lab, root: Path, *faults: Fault, min_secs: int = 0
               ) -> Iterator[tuple[BootServer, EventLog]]:
    """A full server with fresh fault counters; starting one takes a few milliseconds."""
    log = EventLog()
    policy = RulePolicy(min_secs=min_secs)
    with BootServer(dhcp4_config(root), policy, log, namespace=lab.server,
                    faults=faults) as running:
        yield running, log


class Client:
    """Crafted DHCPv4 requests from the client namespace, replies collected by xid."""

    def __init__(self, lab: Lab, port: int = 68, address: str = "0.0.0.0") -> None:
        self.sock = dhcp4_client_socket(lab, port, address)
        self.source: tuple[str, int] = ("", 0)

    def send(self, mac: str, xid: int, *options: Any, to: tuple[str, int] = ("255.255.255.255",
                                                                            67),
             **fields: Any) -> None:
        fields.setdefault("flags", 0x8000)
        packet = BOOTP(chaddr=bytes.fromhex(mac.replace(":", "")), xid=xid, **fields) / DHCP(
            options=[*options, "end"])
        self.sock.sendto(bytes(packet), to)

    def raw(self, data: bytes) -> None:
        self.sock.sendto(data, ("255.255.255.255", 67))

    def reply(self, xid: int, timeout: float = 3) -> dhcp.DhcpMessage:
        """The next reply for ``xid``; its source address is kept in ``self.source``."""
        self.sock.settimeout(timeout)
        while True:
            data, self.source = self.sock.recvfrom(4096)
            message = dhcp.decode(data)
            if message.xid == xid:
                return message

    def nothing(self, xid: int, timeout: float = 0.2) -> None:
        """No reply for ``xid`` within ``timeout`` (call it after the server said why)."""
        self.sock.settimeout(timeout)
        with contextlib.suppress(TimeoutError):
            while True:
                message = dhcp.decode(self.sock.recvfrom(4096)[0])
                assert message.xid != xid, f"unexpected reply {message}"

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def client(lab: Lab, server: BootServer) -> Iterator[Client]:
    made = Client(lab)
    yield made
    made.close()


def discover(mac: str, *extra: Any) -> list[Any]:
    return [("message-type", "discover"), *extra]


def edk2_options(kind: str) -> list[Any]:
    """What OVMF's PXE driver sends: arch 7, NDI, UUID, PXEClient vendor class, option 55."""
    return [("message-type", kind), ("max_dhcp_size", 1472), (93, b"\x00\x07"),
            (94, b"\x01\x03\x00"), (97, UUID),
            ("vendor_class_id", b"PXEClient:Arch:00007:UNDI:003000"),
            ("param_req_list", EDK2_PARAMS)]


# -- full mode: crafted clients --------------------------------------------------------------

def test_dora_with_an_edk2_style_client(client: Client, server: BootServer,
                                        events: EventLog) -> None:
    mac = "52:54:00:00:04:01"
    client.send(mac, 0x401, *edk2_options("discover"))
    offer = client.reply(0x401)
    assert offer.message_type is MessageType.OFFER and offer.yiaddr in server.leases
    assert offer.raw(60) is None and offer.raw(43) is None  # not a PXE10/BINL offer
    assert offer.siaddr == IPv4Address(SERVER4) and offer.file == "bootx64.efi"
    assert offer.raw(97) == UUID
    assert offer.get(3) == (ROUTER,) and offer.get(6) == (DNS,)
    client.send(mac, 0x402, *edk2_options("request"), ("server_id", SERVER4),
                ("requested_addr", str(offer.yiaddr)))
    ack = client.reply(0x402)
    assert ack.message_type is MessageType.ACK and ack.yiaddr == offer.yiaddr
    assert ack.get(51) == 3600 and ack.get(58) == 1800 and ack.get(59) == 3150
    seen = events.wait_for(event("dhcp4", "ack", client=mac), 5, "dhcp4.ack")
    assert seen.reason == "arch 7 (UEFI x64) -> bootx64.efi"
    assert seen.details["yiaddr"] == str(offer.yiaddr)


def test_bootp_client_gets_a_permanent_address(client: Client, server: BootServer,
                                               events: EventLog) -> None:
    mac = "52:54:00:00:04:02"
    client.send(mac, 0x403)  # no option 53: BOOTP
    reply = client.reply(0x403)
    assert reply.op is dhcp.Op.BOOTREPLY and reply.message_type is None
    assert reply.yiaddr in server.leases and reply.file == "pxelinux.0"
    assert reply.raw(51) is None and reply.get(1) == IPv4Address("255.255.255.0")
    seen = events.wait_for(event("dhcp4", "bootreply", client=mac), 5, "dhcp4.bootreply")
    assert seen.reason.endswith("BOOTP: permanent lease")
    lease = server.leases.lookup(mac)
    assert lease is not None and lease.expires == float("inf")


def test_inform_is_answered_to_ciaddr_without_a_lease(client: Client, events: EventLog) -> None:
    mac = "52:54:00:00:04:03"
    client.send(mac, 0x404, ("message-type", "inform"), ("param_req_list", [1, 3, 6, 67]),
                ciaddr=CLIENT4, flags=0)
    ack = client.reply(0x404)
    assert ack.message_type is MessageType.ACK and ack.raw(51) is None
    assert ack.yiaddr == IPv4Address(0) and ack.ciaddr == IPv4Address(CLIENT4)
    assert ack.get(6) == (DNS,) and ack.text(67) == "pxelinux.0"
    seen = events.wait_for(event("dhcp4", "inform", client=mac), 5, "dhcp4.inform")
    assert seen.details["destination"] == f"{CLIENT4}:68"


def test_decline_moves_the_client_to_another_address(client: Client, server: BootServer,
                                                     events: EventLog) -> None:
    mac = "52:54:00:00:04:04"
    client.send(mac, 0x405, ("message-type", "discover"))
    first = client.reply(0x405).yiaddr
    client.send(mac, 0x406, ("message-type", "request"), ("server_id", SERVER4),
                ("requested_addr", str(first)))
    assert client.reply(0x406).message_type is MessageType.ACK
    client.send(mac, 0x407, ("message-type", "decline"), ("server_id", SERVER4),
                ("requested_addr", str(first)))
    seen = events.wait_for(event("dhcp4", "decline", client=mac), 5, "dhcp4.decline")
    assert seen.details["address"] == str(first)
    client.send(mac, 0x408, ("message-type", "discover"))
    second = client.reply(0x408).yiaddr
    assert second != first and first not in server.leases


def test_static_host_gets_its_fixed_address(client: Client, events: EventLog) -> None:
    client.send(STATIC_MAC, 0x409, ("message-type", "discover"),
                ("requested_addr", "192.0.2.150"))
    offer = client.reply(0x409)
    assert offer.yiaddr == STATIC_ADDRESS  # outside the dynamic pool, and not what it asked
    client.send(STATIC_MAC, 0x40A, ("message-type", "request"), ("server_id", SERVER4),
                ("requested_addr", "192.0.2.150"))
    nak = client.reply(0x40A)
    assert nak.message_type is MessageType.NAK
    assert nak.text(56) == f"192.0.2.150 is not {STATIC_MAC}'s fixed address {STATIC_ADDRESS}"
    client.send(STATIC_MAC, 0x40B, ("message-type", "request"), ("server_id", SERVER4),
                ("requested_addr", str(STATIC_ADDRESS)))
    assert client.reply(0x40B).yiaddr == STATIC_ADDRESS
    events.wait_for(event("dhcp4", "ack", client=STATIC_MAC), 5, "dhcp4.ack for the host")


def test_pxelinux_options_reach_the_client_unasked(client: Client) -> None:
    client.send(PXELINUX_MAC, 0x40C, ("message-type", "discover"),
                ("param_req_list", [1, 3, 6, 67]))
    offer = client.reply(0x40C)
    assert offer.text(209) == "pxelinux.cfg/lab" and offer.text(210) == "/lab/"


def test_small_max_message_size_trims_the_reply(client: Client, events: EventLog) -> None:
    mac = "52:54:00:00:04:0d"
    # A client that asks for many options but takes only 576-byte datagrams (option 57)
    client.send(mac, 0x40E, ("message-type", "discover"), ("max_dhcp_size", 576),
                ("param_req_list", [1, 3, 6, 67]), ("client_id", b"\x00" + b"x" * 250))
    offer = client.reply(0x40E)
    assert len(dhcp.encode(offer)) <= 548
    assert offer.raw(61) == b"\x00" + b"x" * 250  # RFC 6842 echo kept
    assert offer.raw(6) is None and offer.get(3) == (ROUTER,)  # the last one asked for went
    seen = events.wait_for(event("dhcp4", "offer", client=mac), 5, "trimmed dhcp4.offer")
    assert seen.details["omitted_options"] == [6]


MALFORMED = [
    (b"\x01\x01\x06\x00junk", "malformed: message is 8 bytes"),
    (bytes(BOOTP(chaddr=bytes(6), xid=1) / DHCP(options=[("message-type", "discover"), "end"])),
     "chaddr is all zeros"),
    (bytes(BOOTP(chaddr=b"\x52\x54\x00\x00\x04\x20", xid=2, hlen=10)
           / DHCP(options=[("message-type", "discover"), "end"])), "htype 1 hlen 10"),
    (bytes(BOOTP(chaddr=b"\x52\x54\x00\x00\x04\x21", xid=3)
           / DHCP(options=[(53, b"\x01\x01"), "end"])), "bad option: option 53"),
    (bytes(BOOTP(chaddr=b"\x52\x54\x00\x00\x04\x22", xid=4)) + b"\x63\x82\x53\x63\x35\x09\x01",
     "malformed: options: option 53 at offset 0 claims 9 bytes"),
    (b"\x01" * 5000, "oversized: 5000 bytes"),
]


def test_malformed_packets_are_dropped_and_the_server_keeps_serving(
        client: Client, events: EventLog) -> None:
    before = len(events)
    for data, _ in MALFORMED:
        client.raw(data)
    client.send("52:54:00:00:04:0f", 0x40F, ("message-type", "discover"))
    assert client.reply(0x40F).message_type is MessageType.OFFER
    # Requests are handled in order: every bad one was decided before the good one.
    drops = [e.reason for e in list(events)[before:] if e.kind == "drop"]
    for _, reason in MALFORMED:
        assert any(r.startswith(reason) for r in drops), (reason, drops)


# -- full mode: real peers -------------------------------------------------------------------

UDHCPC_SCRIPT = """#!/bin/sh
[ "$1" = bound ] && echo "$ip $subnet $router $dns $siaddr $boot_file" >> "$0.log"
exit 0
"""


def test_busybox_udhcpc_gets_options(lab: Lab, server: BootServer, events: EventLog,
                                     tmp_path: Path) -> None:
    pxelab_requires(tools=["busybox"], hint="apt-get install busybox-static")
    script = tmp_path / "udhcpc.sh"
    script.write_text(UDHCPC_SCRIPT)
    script.chmod(0o755)
    result = in_client(lab, ["busybox", "udhcpc", "-i", "eth0", "-n", "-q", "-f", "-s",
                             str(script), "-t", "3", "-T", "1", "-x", "0x5d:0000"])
    assert result.returncode == 0, result.stderr
    ip, mask, router, dns, siaddr, boot_file = Path(f"{script}.log").read_text().split()
    assert IPv4Address(ip) in server.leases and mask == "255.255.255.0"
    assert (router, dns, siaddr, boot_file) == (str(ROUTER), str(DNS), SERVER4, "pxelinux.0")
    events.wait_for(lambda e: e.source == "dhcp4" and e.kind == "ack"
                    and e.details.get("yiaddr") == ip, 5, "dhcp4.ack for udhcpc")


DHCLIENT_SCRIPT = """#!/bin/sh
echo "$reason ${new_ip_address:-} ${new_routers:-} ${new_domain_name_servers:-}" >> "$0.log"
"""
DHCLIENT_CONF = "timeout 10;\nretry 1;\ninitial-interval 1;\nrequest subnet-mask, routers, " \
                "domain-name-servers;\n"


@contextlib.contextmanager
def dhclient_files(tmp_path: Path) -> Iterator[dict[str, Path]]:
    """Script, config, lease and pid files; whatever dhclient left running is killed on exit."""
    files = {name: tmp_path / f"dhclient4.{name}" for name in ("script", "conf", "lease", "pid")}
    files["script"].write_text(DHCLIENT_SCRIPT)
    files["script"].chmod(0o755)
    files["conf"].write_text(DHCLIENT_CONF)
    try:
        yield files
    finally:
        # dhclient -1 daemonizes once bound, and writes its pid file only after the fork.
        stop_processes_mentioning(str(files["lease"]))


def run_dhclient(lab: Lab, files: dict[str, Path], *extra: str) -> tuple[int, str, list[str]]:
    """``dhclient -4`` in the client namespace with our script: the host is never touched."""
    argv = ["dhclient", "-4", *extra, "-v", "-cf", str(files["conf"]), "-sf",
            str(files["script"]), "-lf", str(files["lease"]), "-pf", str(files["pid"]), "eth0"]
    try:
        done = in_client(lab, argv, timeout=20)
    except subprocess.TimeoutExpired:
        pytest.fail(f"{' '.join(argv)} did not finish within 20 s")
    log = Path(f"{files['script']}.log")
    return done.returncode, done.stderr, log.read_text().splitlines() if log.exists() else []


def test_isc_dhclient_gets_a_lease_and_releases_it(lab: Lab, server: BootServer,
                                                   events: EventLog, tmp_path: Path) -> None:
    pxelab_requires(tools=["dhclient"], hint="apt-get install isc-dhcp-client")
    with dhclient_files(tmp_path) as files:
        code, stderr, script = run_dhclient(lab, files, "-1")
        assert code == 0, stderr
        bound = [line.split() for line in script if line.startswith("BOUND")]
        assert bound, f"no BOUND in {script}; dhclient said:\n{stderr}"
        _, address, router, dns = bound[0]
        assert IPv4Address(address) in server.leases
        assert (router, dns) == (str(ROUTER), str(DNS))
        ack = events.wait_for(lambda e: e.source == "dhcp4" and e.kind == "ack"
                              and e.details.get("yiaddr") == address, 5, "dhcp4.ack")
        mac = ack.client
        code, stderr, _ = run_dhclient(lab, files, "-r")  # stops the daemon, sends RELEASE
        assert code == 0, stderr
        released = events.wait_for(event("dhcp4", "release", client=mac), 5, "dhcp4.release")
        assert released.details["address"] == address and released.reason == "lease freed"


# -- proxy mode ------------------------------------------------------------------------------

@pytest.fixture
def proxy_client(proxy_lab: Lab, proxy_server: BootServer) -> Iterator[Client]:
    made = Client(proxy_lab)
    yield made
    made.close()


def test_proxy_offer_then_request_on_4011(proxy_client: Client, proxy_lab: Lab,
                                          proxy_events: EventLog) -> None:
    """A BIOS PXE client: DISCOVER on 67, proxy offer, REQUEST to the boot server on 4011."""
    mac = "52:54:00:00:05:01"
    pxe_options = [(93, b"\x00\x00"), (94, b"\x01\x02\x01"), (97, UUID),
                   ("vendor_class_id", PXE_VENDOR)]
    proxy_client.send(mac, 0x501, ("message-type", "discover"), *pxe_options)
    offer = proxy_client.reply(0x501)
    assert offer.message_type is MessageType.OFFER and offer.yiaddr == IPv4Address(0)
    assert offer.text(60) == "PXEClient" and offer.raw(97) == UUID
    assert pxe.decode_pxe(offer.raw(43) or b"").discovery_control == 8
    assert offer.siaddr == IPv4Address(SERVER4) and offer.file == "pxelinux.0"
    assert {1, 3, 6, 51}.isdisjoint(code for code, _ in offer.options)
    seen = proxy_events.wait_for(event("dhcp4", "offer", client=mac), 5, "proxy offer")
    assert seen.answer.startswith("proxy OFFER yiaddr=0.0.0.0")
    # The other DHCP server gave the client 192.0.2.50; it asks the boot server directly.
    boot = Client(proxy_lab, port=0, address=CLIENT4)
    try:
        boot.send(mac, 0x502, ("message-type", "request"), *pxe_options,
                  to=(SERVER4, 4011), ciaddr=CLIENT4, flags=0)
        ack = boot.reply(0x502)
        assert boot.source == (SERVER4, 4011)  # iPXE takes ProxyDHCP ACKs only from 4011
    finally:
        boot.close()
    assert ack.message_type is MessageType.ACK and ack.yiaddr == IPv4Address(0)
    assert ack.file == "pxelinux.0" and ack.text(60) == "PXEClient"
    acked = proxy_events.wait_for(event("dhcp4", "ack", client=mac), 5, "boot server ACK")
    assert acked.answer.startswith("proxy ACK") and acked.details["proxy"] is True


def test_proxy_answers_uefi_http_with_a_url(proxy_client: Client) -> None:
    proxy_client.send("52:54:00:00:05:02", 0x503, ("message-type", "discover"),
                      (93, b"\x00\x10"), ("vendor_class_id", b"HTTPClient:Arch:00016:UNDI:003000"))
    offer = proxy_client.reply(0x503)
    assert offer.yiaddr == IPv4Address(0) and offer.text(60) == "HTTPClient"
    assert offer.text(67) == f"http://{SERVER4}/bootx64.efi" and offer.raw(43) is None


def test_proxy_ignores_non_pxe_clients_and_address_requests(proxy_client: Client,
                                                            proxy_events: EventLog) -> None:
    plain = "52:54:00:00:05:03"
    proxy_client.send(plain, 0x504, ("message-type", "discover"),
                      ("vendor_class_id", b"udhcp 1.36.1"))
    proxy_client.send(plain, 0x505, ("message-type", "request"), ("server_id", "192.0.2.254"),
                      ("requested_addr", "192.0.2.60"), ("vendor_class_id", PXE_VENDOR))
    proxy_client.send("52:54:00:00:05:04", 0x506, ("message-type", "discover"),
                      ("vendor_class_id", PXE_VENDOR))
    assert proxy_client.reply(0x506).yiaddr == IPv4Address(0)
    proxy_client.nothing(0x504, 0.05)
    proxy_client.nothing(0x505, 0.05)
    ignored = [e.reason for e in proxy_events if e.kind == "ignore" and e.client == plain]
    assert ignored == [
        "proxy mode answers PXE clients only (option 60 PXEClient or HTTPClient); "
        "this one sent udhcp 1.36.1",
        "proxy mode: REQUEST is for the DHCP server that hands out addresses"]
    assert not proxy_events.matching(lambda e: e.kind in ("offer", "ack")
                                     and e.details.get("yiaddr") != "0.0.0.0")


# -- min_secs and faults (servers of their own) ----------------------------------------------

@pytest.fixture
def spare_client(spare_lab: Lab) -> Iterator[Client]:
    made = Client(spare_lab)
    yield made
    made.close()


def test_min_secs_withholds_etherboot_and_serves_a_patient_client(
        spare_lab: Lab, root: Path, spare_client: Client) -> None:
    with own_server(spare_lab, root, min_secs=2) as (_, log):
        etherboot = "52:54:00:00:06:01"  # Etherboot 5.4 keeps secs at 0 on every retry
        for xid in (0x601, 0x602, 0x603):
            spare_client.send(etherboot, xid, ("message-type", "discover"),
                              ("vendor_class_id", b"Etherboot-5.4"), secs=0)
        patient = "52:54:00:00:06:02"  # iPXE, EDK2: secs grows with each retry
        for secs, xid in ((0, 0x611), (1, 0x612), (2, 0x613)):
            spare_client.send(patient, xid, ("message-type", "discover"), secs=secs)
        offer = spare_client.reply(0x613)
        assert offer.message_type is MessageType.OFFER
        withheld = [e for e in log if e.kind == "withheld"]
        assert [e.client for e in withheld] == [etherboot] * 3 + [patient] * 2
        assert withheld[0].reason == "OFFER withheld: secs=0 < min_secs=2"
        assert withheld[-1].reason == "OFFER withheld: secs=1 < min_secs=2"
        spare_client.send(patient, 0x614, ("message-type", "request"), ("server_id", SERVER4),
                          ("requested_addr", str(offer.yiaddr)), secs=3)
        assert spare_client.reply(0x614).message_type is MessageType.ACK
        spare_client.nothing(0x601, 0.05)


def test_dropped_first_offer_then_the_retry_is_answered(spare_lab: Lab, root: Path,
                                                        spare_client: Client) -> None:
    with own_server(spare_lab, root, DropPacket("dhcp4.offer")) as (_, log):
        mac = "52:54:00:00:06:03"
        spare_client.send(mac, 0x621, ("message-type", "discover"))
        fired = log.wait_for(event("fault", "injected"), 5, "the dropped offer")
        assert fired.reason == "drop dhcp4.offer x1 from #1"
        spare_client.nothing(0x621, 0.05)
        spare_client.send(mac, 0x622, ("message-type", "discover"), secs=4)
        assert spare_client.reply(0x622).message_type is MessageType.OFFER
        log.wait_for(event("dhcp4", "offer", xid=0x622), 5, "dhcp4.offer for the retry")
        assert [e.details["xid"] for e in log if e.source == "dhcp4"] == [0x622]


def test_dropped_request_then_the_retry_is_acked(spare_lab: Lab, root: Path,
                                                 spare_client: Client) -> None:
    with own_server(spare_lab, root, DropPacket("dhcp4.request")) as (_, log):
        mac = "52:54:00:00:06:04"
        spare_client.send(mac, 0x631, ("message-type", "discover"))
        offered = spare_client.reply(0x631).yiaddr
        request = [("message-type", "request"), ("server_id", SERVER4),
                   ("requested_addr", str(offered))]
        spare_client.send(mac, 0x632, *request)
        log.wait_for(event("fault", "injected", request="dhcp4.request #1"), 5, "dropped REQUEST")
        spare_client.send(mac, 0x633, *request)
        assert spare_client.reply(0x633).message_type is MessageType.ACK


def test_delayed_offer_arrives_late(spare_lab: Lab, root: Path, spare_client: Client) -> None:
    delay = 0.3
    with own_server(spare_lab, root, DelayPacket("dhcp4.offer", delay)) as (_, log):
        start = time.monotonic()
        spare_client.send("52:54:00:00:06:05", 0x641, ("message-type", "discover"))
        offer = spare_client.reply(0x641)
        assert time.monotonic() - start >= delay
        assert offer.message_type is MessageType.OFFER
        seen = log.wait_for(event("dhcp4", "offer"), 5, "delayed dhcp4.offer")
        assert seen.details["delayed"] == delay


def test_fixed_address_outside_the_subnet_stops_the_start(spare_lab: Lab, root: Path) -> None:
    policy = RulePolicy(hosts=(HostRule(STATIC_MAC, address=IPv4Address("198.51.100.7")),))
    bad = BootServer(dhcp4_config(root), policy, EventLog(), namespace=spare_lab.server)
    with pytest.raises(ConfigError, match=r"198\.51\.100\.7 is not a usable host address"):
        bad.start()
