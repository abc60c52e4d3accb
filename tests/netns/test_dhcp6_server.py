"""The DHCPv6 server in network namespaces, against crafted clients and ISC dhclient.

Layout from :mod:`nslab`: the server namespace's br0 (2001:db8::1/64) and the
client namespace's eth0. Crafted clients (scapy's DHCPv6 layers) each get
their own EUI-64 link-local address on eth0, added without DAD, so the
server sees a firmware-like source and derives the MAC from it when the DUID
carries none (iPXE's DUID-UUID). Every wait is on the EventLog or a socket
timeout; every address, process and file a test makes is removed afterwards.
"""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
from collections.abc import Callable, Iterator
from ipaddress import IPv6Address
from pathlib import Path
from typing import Any

import pytest
from dhcp6_client import (
    DNS,
    Client6,
    dhcp6_config,
    edk2_solicit,
    follow_up,
    ia_status,
    vendor_data,
)
from nslab import Lab, event, in_client, stop_processes_mentioning, two_namespaces
from pyroute2 import NetNS
from scapy.layers.dhcp6 import (
    DUID_LLT,
    DUID_UUID,
    USER_CLASS_DATA,
    VENDOR_CLASS_DATA,
    DHCP6_Advertise,
    DHCP6_Confirm,
    DHCP6_Decline,
    DHCP6_InfoRequest,
    DHCP6_RelayForward,
    DHCP6_Release,
    DHCP6_Renew,
    DHCP6_Reply,
    DHCP6_Request,
    DHCP6_Solicit,
    DHCP6OptBootFileUrl,
    DHCP6OptClientArchType,
    DHCP6OptClientId,
    DHCP6OptDNSServers,
    DHCP6OptElapsedTime,
    DHCP6OptIA_NA,
    DHCP6OptIAAddress,
    DHCP6OptOptReq,
    DHCP6OptPref,
    DHCP6OptRapidCommit,
    DHCP6OptRelayMsg,
    DHCP6OptServerId,
    DHCP6OptStatusCode,
    DHCP6OptUserClass,
    DHCP6OptVendorClass,
)

from pxelab.core.errors import WaitTimeoutError
from pxelab.core.events import EventLog
from pxelab.pytest_plugin import pxelab_requires
from pxelab.server.bootserver import BootServer
from pxelab.server.dhcp6.leases import LeaseState
from pxelab.server.faults import DelayPacket, DropPacket, WithholdOffers
from pxelab.server.policy import HostRule, Match, RulePolicy

pytestmark = pytest.mark.netns

WITHHELD_MAC = "52:54:00:00:06:bd"
FAULT_WITHHOLD_MAC = "52:54:00:00:06:fa"
DROP_MAC = "52:54:00:00:06:d0"
DELAY_MAC = "52:54:00:00:06:de"
DELAY = 0.4
IFA_F_TENTATIVE = 0x40


# -- fixtures ------------------------------------------------------------------------------------

def wait_link_local_ready(lab: Lab, timeout: float = 10) -> None:
    """Poll (netlink) until eth0's kernel-made link-local address has finished DAD.

    dhclient -6 will not send from a tentative address; crafted clients use
    their own nodad addresses and need not wait.
    """
    def ready(address: Any) -> bool:
        text = address.get("IFA_ADDRESS") or ""
        flags = address.get("IFA_FLAGS") or address["flags"]
        return text.startswith("fe80::") and not flags & IFA_F_TENTATIVE

    with NetNS(lab.client) as ns:
        try:
            ns.poll(ns.addr, "dump", timeout=timeout, family=socket.AF_INET6, match=ready)
        except TimeoutError:
            seen = [(a.get("IFA_ADDRESS"), a.get("IFA_FLAGS")) for a in
                    ns.addr("dump", family=socket.AF_INET6)]
            pytest.fail(f"eth0 link-local still tentative after {timeout}s: {seen}")


@pytest.fixture(scope="module")
def lab() -> Iterator[Lab]:
    """Module scope: the two namespaces, with eth0's link-local past DAD."""
    with two_namespaces() as made:
        wait_link_local_ready(made)
        yield made


POLICY = RulePolicy(
    ipxe_script="http://{{ server }}/boot.ipxe",
    hosts=(HostRule(WITHHELD_MAC, withhold=True, reason="test: silent"),))
FAULTS = (
    WithholdOffers(Match(mac=FAULT_WITHHOLD_MAC), reason="test fault: withhold"),
    DropPacket("dhcp6.solicit", count=0, match=Match(mac=DROP_MAC)),
    DelayPacket("dhcp6.advertise", DELAY, count=0, match=Match(mac=DELAY_MAC)),
)


@pytest.fixture(scope="module")
def server(lab: Lab, events: EventLog,
           tmp_path_factory: pytest.TempPathFactory) -> Iterator[BootServer]:
    """Module scope: a DHCPv6-only BootServer (rapid commit on) in the server namespace."""
    config = dhcp6_config(tmp_path_factory.mktemp("dhcp6"))
    with BootServer(config, POLICY, events, namespace=lab.server,
                    faults=FAULTS) as running:
        yield running






# -- four-message exchanges ------------------------------------------------------------------------

def test_ovmf_pxe_exchange_and_release(client_factory: Callable[[str], Client6],
                                       server: BootServer, events: EventLog) -> None:
    mac = "52:54:00:00:06:01"
    client = client_factory(mac)
    solicit = edk2_solicit(mac, 0x600101, 0x1001, 7, "PXEClient:Arch:00007:UNDI:003000")
    client.send(solicit)
    advertise = client.receive(0x600101)
    assert isinstance(advertise, DHCP6_Advertise)
    address = advertise[DHCP6OptIAAddress].addr
    assert IPv6Address(address) in server.leases6  # type: ignore[operator]
    # No Status Code in an assigned IA (Success implied): see dhcp6.replies.assigned_ia.
    assert advertise[DHCP6OptIA_NA].iaid == 0x1001 and ia_status(advertise) is None
    assert advertise[DHCP6OptIAAddress].validlft >= advertise[DHCP6OptIAAddress].preflft
    assert advertise[DHCP6OptPref].prefval == 255
    assert advertise[DHCP6OptBootFileUrl].optdata == b"tftp://[2001:db8::1]/bootx64.efi"
    assert vendor_data(advertise) is None  # PXEClient echoed would mean "BINL" to OVMF
    assert advertise[DHCP6OptDNSServers].dnsservers == [str(DNS)]
    assert bytes(advertise[DHCP6OptClientId].duid) == bytes(solicit[DHCP6OptClientId].duid)
    client.send(follow_up(DHCP6_Request, solicit, advertise, 0x600102))
    reply = client.receive(0x600102)
    assert isinstance(reply, DHCP6_Reply) and reply[DHCP6OptIAAddress].addr == address
    assert reply[DHCP6OptBootFileUrl].optdata == b"tftp://[2001:db8::1]/bootx64.efi"
    assert not reply.haslayer(DHCP6OptRapidCommit)
    seen = events.wait_for(event("dhcp6", "reply", client=mac, xid=0x600102), 5, "reply")
    assert seen.details["address"] == address and seen.details["iaid"] == 0x1001
    assert seen.details["arch"] == 7 and seen.mac == mac
    assert seen.file == "tftp://[2001:db8::1]/bootx64.efi"
    assert seen.details["vendor_class"] == "PXEClient:Arch:00007:UNDI:003000"
    assert seen.details["duid"] == bytes(solicit[DHCP6OptClientId].duid).hex()
    # OVMF stalls ~60 s unless its Release is answered
    client.send(follow_up(DHCP6_Release, solicit, reply, 0x600103))
    released = client.receive(0x600103)
    assert isinstance(released, DHCP6_Reply)
    assert released[DHCP6OptStatusCode].statuscode == 0
    assert not released.haslayer(DHCP6OptIA_NA)
    events.wait_for(event("dhcp6", "release", client=mac), 5, "dhcp6.release")
    binding = server.leases6.lookup(bytes(solicit[DHCP6OptClientId].duid), 0x1001)  # type: ignore[union-attr]
    assert binding is not None and binding.state is LeaseState.FREE


def test_ovmf_http_gets_url_and_httpclient_echo(client_factory: Callable[[str], Client6],
                                                events: EventLog) -> None:
    mac = "52:54:00:00:06:02"
    client = client_factory(mac)
    solicit = edk2_solicit(mac, 0x600201, 0x2001, 16, "HTTPClient:Arch:00016:UNDI:003000")
    client.send(solicit)
    advertise = client.receive(0x600201)
    assert advertise[DHCP6OptBootFileUrl].optdata == b"http://[2001:db8::1]/bootx64.efi"
    # HttpBootDhcp6.c: option 16 with "HTTPClient" after enterprise (4) and length (2)
    assert advertise[DHCP6OptVendorClass].enterprisenum == 343
    assert vendor_data(advertise) == b"HTTPClient"
    client.send(follow_up(DHCP6_Request, solicit, advertise, 0x600202))
    reply = client.receive(0x600202)
    assert reply[DHCP6OptIAAddress].addr == advertise[DHCP6OptIAAddress].addr
    assert vendor_data(reply) == b"HTTPClient"
    seen = events.wait_for(event("dhcp6", "reply", client=mac), 5, "dhcp6.reply")
    assert seen.details["vendor_class_echo"] == "HTTPClient"


def test_ipxe_gets_its_script_and_is_known_by_link_local_mac(
        client_factory: Callable[[str], Client6], events: EventLog) -> None:
    mac = "52:54:00:00:06:03"
    client = client_factory(mac)
    solicit = (DHCP6_Solicit(trid=0x600301)
               / DHCP6OptClientId(duid=DUID_UUID(uuid="12345678-1234-5678-1234-567812345678"))
               / DHCP6OptIA_NA(iaid=0x3001) / DHCP6OptOptReq(reqopts=[23, 24, 59, 60])
               / DHCP6OptVendorClass(enterprisenum=343, vcdata=[
                   VENDOR_CLASS_DATA(data=b"PXEClient:Arch:00007:UNDI:003010")])
               / DHCP6OptClientArchType(archtypes=[7])
               / DHCP6OptUserClass(userclassdata=[USER_CLASS_DATA(data=b"iPXE")])
               / DHCP6OptElapsedTime())
    client.send(solicit)
    advertise = client.receive(0x600301)
    assert advertise[DHCP6OptBootFileUrl].optdata == b"http://[2001:db8::1]/boot.ipxe"
    client.send(follow_up(DHCP6_Request, solicit, advertise, 0x600302))
    reply = client.receive(0x600302)
    assert reply[DHCP6OptBootFileUrl].optdata == b"http://[2001:db8::1]/boot.ipxe"
    seen = events.wait_for(event("dhcp6", "reply", xid=0x600302), 5, "dhcp6.reply")
    assert seen.client == mac and seen.details["user_classes"] == ["iPXE"]
    assert seen.details["peer"].startswith(f"[{client.address}%")


def test_rapid_commit_then_renew_and_decline(client_factory: Callable[[str], Client6],
                                             server: BootServer, events: EventLog) -> None:
    mac = "52:54:00:00:06:04"
    client = client_factory(mac)
    solicit = edk2_solicit(mac, 0x600401, 0x4001, 7, "PXEClient:Arch:00007:UNDI:003000",
                           rapid=True)
    client.send(solicit)
    reply = client.receive(0x600401)
    assert isinstance(reply, DHCP6_Reply) and reply.haslayer(DHCP6OptRapidCommit)
    address = reply[DHCP6OptIAAddress].addr
    client.send(follow_up(DHCP6_Renew, solicit, reply, 0x600402))
    renewed = client.receive(0x600402)
    assert renewed[DHCP6OptIAAddress].addr == address and ia_status(renewed) is None
    assert renewed[DHCP6OptIAAddress].validlft == 3600
    events.wait_for(event("dhcp6", "renew", client=mac), 5, "dhcp6.renew")
    client.send(follow_up(DHCP6_Decline, solicit, reply, 0x600403))
    declined = client.receive(0x600403)
    assert declined[DHCP6OptStatusCode].statuscode == 0
    events.wait_for(event("dhcp6", "decline", client=mac), 5, "dhcp6.decline")
    assert IPv6Address(address) not in server.leases6  # type: ignore[operator]
    client.send(edk2_solicit(mac, 0x600404, 0x4002, 7, "PXEClient:Arch:00007:UNDI:003000"))
    assert client.receive(0x600404)[DHCP6OptIAAddress].addr != address


def test_rapid_commit_disabled_answers_advertise(tmp_path: Path) -> None:
    """A second lab whose server refuses Rapid Commit (RFC 8415 18.3.1 lets it)."""
    log = EventLog()
    with two_namespaces() as other, BootServer(
            dhcp6_config(tmp_path, rapid_commit=False), RulePolicy(), log,
            namespace=other.server):
        client = Client6(other, "52:54:00:00:06:05")
        try:
            client.send(edk2_solicit(client.mac, 0x600501, 1, 7, "PXEClient", rapid=True))
            answer = client.receive(0x600501)
        finally:
            client.close()
    assert isinstance(answer, DHCP6_Advertise) and not answer.haslayer(DHCP6OptRapidCommit)


def test_information_request_is_answered(client_factory: Callable[[str], Client6],
                                         events: EventLog) -> None:
    """The second, stateless client OVMF starts after an RA with M or O: asks only for 23."""
    mac = "52:54:00:00:06:06"
    client = client_factory(mac)
    client.send(DHCP6_InfoRequest(trid=0x600601)
                / DHCP6OptClientId(duid=DUID_LLT(lladdr=mac)) / DHCP6OptElapsedTime()
                / DHCP6OptOptReq(reqopts=[23]))
    reply = client.receive(0x600601)
    assert isinstance(reply, DHCP6_Reply)
    assert reply[DHCP6OptDNSServers].dnsservers == [str(DNS)]
    assert not reply.haslayer(DHCP6OptIA_NA) and not reply.haslayer(DHCP6OptBootFileUrl)
    assert reply.haslayer(DHCP6OptServerId)
    events.wait_for(event("dhcp6", "inform", client=mac), 5, "dhcp6.inform")


def test_confirm_on_link(client_factory: Callable[[str], Client6]) -> None:
    mac = "52:54:00:00:06:07"
    client = client_factory(mac)
    client.send(DHCP6_Confirm(trid=0x600701) / DHCP6OptClientId(duid=DUID_LLT(lladdr=mac))
                / DHCP6OptIA_NA(iaid=1, ianaopts=[DHCP6OptIAAddress(addr="2001:db8::1:77")]))
    assert client.receive(0x600701)[DHCP6OptStatusCode].statuscode == 0
    client.send(DHCP6_Confirm(trid=0x600702) / DHCP6OptClientId(duid=DUID_LLT(lladdr=mac))
                / DHCP6OptIA_NA(iaid=1, ianaopts=[DHCP6OptIAAddress(addr="2001:db9::7")]))
    assert client.receive(0x600702)[DHCP6OptStatusCode].statuscode == 4  # NotOnLink


# -- silence: policy, faults, bad input ------------------------------------------------------------

def test_withheld_clients_get_nothing(client_factory: Callable[[str], Client6],
                                      events: EventLog) -> None:
    for mac, reason in ((WITHHELD_MAC, "test: silent"),
                        (FAULT_WITHHOLD_MAC, "fault: test fault: withhold")):
        client = client_factory(mac)
        client.send(edk2_solicit(mac, 0x600801, 1, 7, "PXEClient"))
        seen = events.wait_for(event("dhcp6", "withheld", client=mac), 5, "dhcp6.withheld")
        assert seen.reason == reason
        client.nothing()


def test_packet_faults_drop_and_delay(client_factory: Callable[[str], Client6],
                                      events: EventLog) -> None:
    dropped = client_factory(DROP_MAC)
    dropped.send(edk2_solicit(DROP_MAC, 0x600901, 1, 7, "PXEClient"))
    seen = events.wait_for(lambda e: e.source == "fault" and e.client == DROP_MAC, 5,
                           "fault.injected for the dropped solicit")
    assert seen.reason.startswith("drop dhcp6.solicit")
    dropped.nothing()
    delayed = client_factory(DELAY_MAC)
    delayed.send(edk2_solicit(DELAY_MAC, 0x600902, 1, 7, "PXEClient"))
    sent = events.wait_for(event("dhcp6", "advertise", client=DELAY_MAC), 5, "advertise")
    assert sent.details["delayed"] == DELAY
    with pytest.raises(TimeoutError):  # not before the delay...
        delayed.receive(0x600902, timeout=DELAY / 2)
    assert delayed.receive(0x600902, timeout=3)[DHCP6OptIAAddress]  # ...but after it


@pytest.mark.parametrize(("payload", "needle"), [
    (b"\x01\x00", "shorter than the 4-byte header"),
    (bytes(DHCP6_Solicit(trid=1)) + b"\x00\x08\x00\x09\x00", "claims 9 bytes"),
    (bytes(DHCP6_Solicit(trid=2) / DHCP6OptElapsedTime()), "without a Client Identifier"),
    (bytes(DHCP6_Solicit(trid=3) / DHCP6OptClientId(duid=DUID_LLT(lladdr="52:54:00:00:06:0b"))
           / DHCP6OptServerId(duid=DUID_LLT(lladdr="02:00:00:00:00:01"))),
     "carries a Server Identifier"),
    (bytes(DHCP6_Request(trid=4) / DHCP6OptClientId(duid=DUID_LLT(lladdr="52:54:00:00:06:0b"))
           / DHCP6OptServerId(duid=DUID_LLT(lladdr="02:00:00:00:00:01"))), "not us"),
    (bytes(DHCP6_RelayForward(linkaddr="2001:db8::1", peeraddr="fe80::1")
           / DHCP6OptRelayMsg(message=DHCP6_Solicit(trid=5))), "relayed messages"),
    (bytes(DHCP6_Reply(trid=6)), "sent by servers"),
], ids=["short", "overrun", "no-client-id", "solicit-server-id", "other-server",
        "relay-forw", "reply-to-server"])
def test_bad_input_is_dropped_and_server_keeps_serving(
        client_factory: Callable[[str], Client6], events: EventLog, payload: bytes,
        needle: str) -> None:
    client = client_factory("52:54:00:00:06:0b")
    client.send(payload)
    seen = events.wait_for(lambda e: e.source == "dhcp6" and e.kind == "drop"
                           and needle in e.reason, 5, f"dhcp6.drop saying {needle!r}")
    assert str(client.address) in seen.details.get("peer", "")
    client.nothing(0.2)
    client.send(edk2_solicit(client.mac, 0x600B01, 1, 7, "PXEClient"))
    assert client.receive(0x600B01)[DHCP6OptIAAddress]


# -- a real peer: ISC dhclient ---------------------------------------------------------------------

DHCLIENT_SCRIPT = """#!/bin/sh
echo "$reason ${new_ip6_address:-} ${new_dhcp6_name_servers:-}" >> "$0.log"
"""


@contextlib.contextmanager
def dhclient_files(tmp_path: Path) -> Iterator[dict[str, Path]]:
    """Script, lease and pid files; whatever dhclient left running is killed on exit."""
    files = {"script": tmp_path / "dhclient-script", "lease": tmp_path / "dhclient6.leases",
             "pid": tmp_path / "dhclient6.pid"}
    files["script"].write_text(DHCLIENT_SCRIPT)
    files["script"].chmod(0o755)
    try:
        yield files
    finally:
        # dhclient -1 daemonizes once bound, and writes its pid file only after the fork.
        stop_processes_mentioning(str(files["lease"]))
        for path in files.values():
            path.unlink(missing_ok=True)
        Path(f"{files['script']}.log").unlink(missing_ok=True)


def run_dhclient(lab: Lab, files: dict[str, Path], *extra: str) -> tuple[int, str, list[str]]:
    argv = ["dhclient", "-6", *extra, "-1", "-v", "-sf", str(files["script"]),
            "-lf", str(files["lease"]), "-pf", str(files["pid"]), "eth0"]
    try:
        done = in_client(lab, argv, timeout=20)
    except subprocess.TimeoutExpired:
        pytest.fail(f"{' '.join(argv)} did not finish within 20 s")
    log = Path(f"{files['script']}.log")
    return done.returncode, done.stderr, log.read_text().splitlines() if log.exists() else []


@pytest.fixture
def dhclient(lab: Lab, server: BootServer) -> str:
    pxelab_requires(tools=["dhclient"], hint="apt-get install isc-dhcp-client")
    return shutil.which("dhclient") or "dhclient"


def test_isc_dhclient_gets_an_address(dhclient: str, lab: Lab, server: BootServer,
                                      events: EventLog, tmp_path: Path) -> None:
    with dhclient_files(tmp_path) as files:
        code, stderr, script = run_dhclient(lab, files)
        assert code == 0, stderr
        bound = [line.split() for line in script if line.startswith("BOUND6")]
        assert bound, f"no BOUND6 in {script}; dhclient said:\n{stderr}"
        assert IPv6Address(bound[0][1]) in server.leases6  # type: ignore[operator]
        assert bound[0][2] == str(DNS)
        seen = events.wait_for(lambda e: e.source == "dhcp6" and e.kind == "reply"
                               and e.details.get("address") == bound[0][1], 5, "dhclient reply")
        assert seen.details["in_reply_to"] == "request"


def test_isc_dhclient_information_request(dhclient: str, lab: Lab, server: BootServer,
                                          events: EventLog, tmp_path: Path) -> None:
    before = len(events.matching(event("dhcp6", "inform")))
    with dhclient_files(tmp_path) as files:
        code, stderr, script = run_dhclient(lab, files, "-S")
        assert code == 0, stderr
        assert any(str(DNS) in line for line in script), (script, stderr)
    try:
        events.wait_for(lambda e: len(events.matching(event("dhcp6", "inform"))) > before,
                        5, "dhcp6.inform from dhclient -S")
    except WaitTimeoutError:
        pytest.fail(f"no dhcp6.inform; dhclient said:\n{stderr}")
