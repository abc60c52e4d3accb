"""ISC dhcpd's ``min-secs`` (``RulePolicy.min_secs``) against clients that do and do not count.

RFC 2131 section 2: ``secs`` is "seconds elapsed since client began address
acquisition or renewal process"; a server with ``min-secs N`` stays silent
while it is below N, so that a primary server gets the first chance.
Etherboot 5.4 never increments it: such a client retries for ever and never
gets an offer. The firmware pxelab boots does not quite count seconds either:
iPXE sends a packet counter (4, 8, ...; fixtures/packets/README.md); OVMF
sends 0 in its first DISCOVER and the seconds since it started in each
retransmission (0, 4, 12, 28: seen in boots, pxelab.scenarios.regressions.dhcp4), so a small
min_secs costs it a retransmission and only one above 28 starves it.

Crafted clients are scapy packets from the client namespace (:mod:`nslab`),
the real firmware DISCOVERs are replayed from the captures in
fixtures/packets/, and what the firmware put in ``secs`` is asserted from them
with scapy, so that a firmware update that changes it shows up here.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from nslab import SERVER4, Lab, dhcp4_client_socket, event
from scapy.layers.dhcp import BOOTP, DHCP
from scapy.utils import rdpcap

from pxelab.core.events import Event, EventLog
from pxelab.core.paths import fixtures_dir
from pxelab.server.bootserver import BootServer, ServerConfig
from pxelab.server.dhcp4 import codec
from pxelab.server.dhcp4.codec import MessageType
from pxelab.server.policy import RulePolicy

ETHERBOOT_MAC = "52:54:00:00:07:01"
PATIENT_MAC = "52:54:00:00:07:02"
FIRMWARE_MAC = "52:54:00:12:34:56"  # the guest MAC of every capture in fixtures/packets
# What Etherboot 5.4 puts in a DISCOVER (src/core/main.c, dhcpdiscover): its vendor
# class, a maximum message size, and a parameter list with its encapsulated option 150.
ETHERBOOT_OPTIONS: list[Any] = [
    ("message-type", "discover"), ("max_dhcp_size", 1500),
    ("vendor_class_id", b"Etherboot-5.4"), ("param_req_list", [1, 3, 12, 43, 66, 67, 150]),
]
# RFC 2131 4.1: retransmit after 4, 8, 16, 32 s (randomised +-1 s): what secs then reads.
# OVMF's DISCOVERs carry exactly these (pxelab.scenarios.regressions.dhcp4.OVMF_DISCOVER_SECS).
RFC_RETRY_SECS = (0, 4, 12, 28)


# -- what the firmware puts in secs (from the real captures) -----------------------------------

def captured(name: str) -> list[BOOTP]:
    """The DHCPv4 messages of fixtures/packets/``name``.pcap, dissected by scapy."""
    frames = rdpcap(str(fixtures_dir() / "packets" / f"{name}.pcap"))
    messages = [frame[BOOTP] for frame in frames if frame.haslayer(BOOTP)]
    assert messages, f"{name}.pcap holds no DHCPv4 message; regenerate it (see its README)"
    return messages


def message_type(message: BOOTP) -> str:
    options = dict(opt for opt in message[DHCP].options if isinstance(opt, tuple))
    return {1: "discover", 3: "request"}[options["message-type"]]


@pytest.mark.unit
@pytest.mark.parametrize(("capture", "secs"), [
    # iPXE's dhcp_tx(): secs = (++count << 2) | (offer received ? 2 : 0) | (proxy offer ? 1 : 0)
    ("ipxe-bios-dhcp4", {"discover": 4, "request": 10}),
    # EDK2: 0 in a first DISCOVER that is answered, and in the REQUEST after it, although
    # ~4 s pass between them (a retransmitted DISCOVER would carry the seconds since start)
    ("ovmf-pxe4-dhcp4", {"discover": 0, "request": 0}),
    ("ovmf-http4-dhcp4", {"discover": 0, "request": 0}),
])
def test_firmware_secs_as_captured(capture: str, secs: dict[str, int]) -> None:
    assert {message_type(m): m.secs for m in captured(capture)} == secs


# -- a server with min_secs, in namespaces ------------------------------------------------------

@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("min-secs")


@contextlib.contextmanager
def dhcp_server(lab: Lab, root: Path, min_secs: int) -> Iterator[EventLog]:
    """A DHCPv4-only server with ``min_secs``; starting one takes a few milliseconds."""
    log = EventLog()
    config = ServerConfig.only("dhcp4", data_root=root, ipv6=None)
    with BootServer(config, RulePolicy(min_secs=min_secs), log, namespace=lab.server):
        yield log


class Client:
    """A UDP socket on the client's port 68: crafted or replayed requests, replies by xid."""

    def __init__(self, lab: Lab) -> None:
        self.sock = dhcp4_client_socket(lab)

    def send(self, data: bytes) -> None:
        self.sock.sendto(data, ("255.255.255.255", 67))

    def craft(self, mac: str, xid: int, secs: int, *options: Any) -> None:
        chaddr = bytes.fromhex(mac.replace(":", ""))
        self.send(bytes(BOOTP(chaddr=chaddr, xid=xid, secs=secs, flags=0x8000)
                        / DHCP(options=[*options, "end"])))

    def replies(self, timeout: float) -> list[codec.DhcpMessage]:
        """Every reply that arrives within ``timeout`` of the last one."""
        got: list[codec.DhcpMessage] = []
        self.sock.settimeout(timeout)
        with contextlib.suppress(TimeoutError):
            while True:
                got.append(codec.decode(self.sock.recvfrom(4096)[0]))
        return got

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def client(lab: Lab) -> Iterator[Client]:
    made = Client(lab)
    yield made
    made.close()


def nth(predicate: Callable[[Event], bool], count: int) -> Callable[[Event], bool]:
    """True at the ``count``-th event ``predicate`` accepts (wait_for sees each event once)."""
    seen = 0

    def check(e: Event) -> bool:
        nonlocal seen
        seen += predicate(e)
        return seen >= count
    return check


@pytest.mark.netns
def test_etherboot_secs_0_is_withheld_on_every_retry(lab: Lab, root: Path,
                                                     client: Client) -> None:
    with dhcp_server(lab, root, min_secs=2) as log:
        # Etherboot 5.4 retries with a new xid each time, and secs stays 0.
        for xid in range(0x701, 0x705):
            client.craft(ETHERBOOT_MAC, xid, 0, *ETHERBOOT_OPTIONS)
        log.wait_for(nth(event("dhcp4", "withheld", client=ETHERBOOT_MAC), 4), 5,
                     "four withheld DISCOVERs")
        assert client.replies(0.05) == []
        withheld = log.matching(event("dhcp4", "withheld", client=ETHERBOOT_MAC))
        assert {e.reason for e in withheld} == {"OFFER withheld: secs=0 < min_secs=2"}
        assert all(e.details["secs"] == 0 and e.details["vendor_class"] == "Etherboot-5.4"
                   and e.request.startswith("DISCOVER") for e in withheld)
        assert not log.matching(lambda e: e.kind in ("offer", "ack"))


@pytest.mark.netns
def test_min_secs_0_serves_etherboot_at_once(lab: Lab, root: Path, client: Client) -> None:
    """The field fix: dhcpd's ``min-secs 0`` (RulePolicy's default)."""
    with dhcp_server(lab, root, min_secs=0) as log:
        client.craft(ETHERBOOT_MAC, 0x711, 0, *ETHERBOOT_OPTIONS)
        offer = log.wait_for(event("dhcp4", "offer", client=ETHERBOOT_MAC), 5, "the offer")
        assert offer.details["secs"] == 0
        assert [m.message_type for m in client.replies(0.2)] == [MessageType.OFFER]


@pytest.mark.netns
@pytest.mark.parametrize(("min_secs", "first_offered"), [(2, 4), (5, 12), (20, 28)])
def test_a_client_counting_secs_is_offered_once_secs_reaches_min_secs(
        lab: Lab, root: Path, client: Client, min_secs: int, first_offered: int) -> None:
    with dhcp_server(lab, root, min_secs=min_secs) as log:
        for n, secs in enumerate(RFC_RETRY_SECS):
            client.craft(PATIENT_MAC, 0x720 + n, secs, ("message-type", "discover"))
        log.wait_for(nth(lambda e: e.source == "dhcp4", len(RFC_RETRY_SECS)), 5,
                     "an answer or a withheld event per DISCOVER")
        answered = {e.details["secs"]: e.kind for e in log if e.source == "dhcp4"}
        assert answered == {secs: "offer" if secs >= min_secs else "withheld"
                            for secs in RFC_RETRY_SECS}
        assert min(s for s, kind in answered.items() if kind == "offer") == first_offered
        offers = [m for m in client.replies(0.2) if m.message_type is MessageType.OFFER]
        assert offers
        # The REQUEST after it carries secs past min_secs too, and is acknowledged.
        client.craft(PATIENT_MAC, 0x730, first_offered + 1, ("message-type", "request"),
                     ("server_id", SERVER4), ("requested_addr", str(offers[0].yiaddr)))
        log.wait_for(event("dhcp4", "ack", client=PATIENT_MAC), 5, "the ACK")


@pytest.mark.netns
def test_real_firmware_discovers_against_min_secs_2(lab: Lab, root: Path,
                                                    client: Client) -> None:
    """The captured DISCOVERs, replayed: OVMF's are withheld for good, iPXE's are answered."""
    discovers = {name: next(bytes(m) for m in captured(name) if message_type(m) == "discover")
                 for name in ("ovmf-pxe4-dhcp4", "ovmf-http4-dhcp4", "ipxe-bios-dhcp4")}
    with dhcp_server(lab, root, min_secs=2) as log:
        for name, data in discovers.items():
            client.send(data)
            log.wait_for(nth(lambda e: e.source == "dhcp4", 1 + list(discovers).index(name)),
                         5, f"the server's answer to {name}")
        seen = [(e.kind, e.details["arch"], e.details["secs"], e.reason) for e in log
                if e.source == "dhcp4"]
    assert [row[:3] for row in seen] == [("withheld", 7, 0), ("withheld", 16, 0),
                                         ("offer", 0, 4)]
    assert seen[0][3] == seen[1][3] == "OFFER withheld: secs=0 < min_secs=2"
    assert all(m.message_type is MessageType.OFFER and m.chaddr.hex(":") == FIRMWARE_MAC
               for m in client.replies(0.2))
