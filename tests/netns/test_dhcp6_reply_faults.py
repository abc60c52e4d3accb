"""DHCPv6 reply faults through a real BootServer: a crafted OVMF HTTPv6 client (scapy).

What the regression catalog's dhcp6 entries do to a booting guest, on the wire:
an Advertise and Reply without option 16, and a Release left unanswered.
Crafting helpers come from dhcp6_client (the same client as test_dhcp6_server).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from dhcp6_client import Client6, dhcp6_config, edk2_solicit, follow_up, vendor_data
from nslab import Lab, event
from scapy.layers.dhcp6 import (
    DHCP6_Advertise,
    DHCP6_Release,
    DHCP6_Reply,
    DHCP6_Request,
    DHCP6OptBootFileUrl,
    DHCP6OptVendorClass,
)

from pxelab.core.events import EventLog
from pxelab.server.bootserver import BootServer
from pxelab.server.faults import DropPacket, OmitOption
from pxelab.server.policy import Match, RulePolicy

pytestmark = pytest.mark.netns

NO_ECHO_MAC = "52:54:00:00:16:00"
SILENT_RELEASE_MAC = "52:54:00:00:08:00"
HTTP = "HTTPClient:Arch:00016:UNDI:003000"

# The catalog's faults, limited to one crafted client each.
FAULTS = (
    OmitOption("dhcp6.*", 16, match=Match(mac=NO_ECHO_MAC)),
    DropPacket("dhcp6.release", count=0, match=Match(mac=SILENT_RELEASE_MAC)),
)


@pytest.fixture(scope="module")
def server(lab: Lab, events: EventLog,
           tmp_path_factory: pytest.TempPathFactory) -> Iterator[BootServer]:
    config = dhcp6_config(tmp_path_factory.mktemp("dhcp6-faults"))
    with BootServer(config, RulePolicy(), events, namespace=lab.server, faults=FAULTS) as running:
        yield running


def test_http_client_gets_no_httpclient_echo(client_factory: Callable[[str], Client6],
                                             events: EventLog) -> None:
    client = client_factory(NO_ECHO_MAC)
    solicit = edk2_solicit(NO_ECHO_MAC, 0x601601, 0x1601, 16, HTTP)
    client.send(solicit)
    advertise = client.receive(0x601601)
    assert isinstance(advertise, DHCP6_Advertise)
    assert not advertise.haslayer(DHCP6OptVendorClass)  # OVMF sends no Request for this
    assert advertise[DHCP6OptBootFileUrl].optdata == b"http://[2001:db8::1]/bootx64.efi"
    client.send(follow_up(DHCP6_Request, solicit, advertise, 0x601602))
    assert vendor_data(client.receive(0x601602)) is None
    sent = events.wait_for(event("dhcp6", "reply", client=NO_ECHO_MAC), 5, "dhcp6.reply")
    assert sent.details["vendor_class_echo"] is None and sent.details["omitted_options"] == [16]
    fired = events.wait_for(lambda e: e.source == "fault" and e.client == NO_ECHO_MAC
                            and e.request == "dhcp6.reply", 5, "fault for the reply")
    assert fired.reason == "omit option 16 from dhcp6.*"


def test_other_clients_keep_the_echo(client_factory: Callable[[str], Client6]) -> None:
    mac = "52:54:00:00:16:01"
    client = client_factory(mac)
    client.send(edk2_solicit(mac, 0x601611, 0x1611, 16, HTTP))
    assert vendor_data(client.receive(0x601611)) == b"HTTPClient"


def test_release_is_left_unanswered(client_factory: Callable[[str], Client6],
                                    events: EventLog) -> None:
    client = client_factory(SILENT_RELEASE_MAC)
    solicit = edk2_solicit(SILENT_RELEASE_MAC, 0x600801, 0x801, 16, HTTP)
    client.send(solicit)
    advertise = client.receive(0x600801)
    client.send(follow_up(DHCP6_Request, solicit, advertise, 0x600802))
    reply = client.receive(0x600802)
    assert isinstance(reply, DHCP6_Reply)
    for xid in (0x600803, 0x600804):  # EDK2 retransmits its Release (REL_MAX_RC 5)
        client.send(follow_up(DHCP6_Release, solicit, reply, xid))
    fired = events.wait_for(lambda e: e.source == "fault" and e.client == SILENT_RELEASE_MAC
                            and e.request == "dhcp6.release #2", 5, "second release dropped")
    assert fired.reason.startswith("drop dhcp6.release")
    client.nothing()
    assert not events.matching(lambda e: e.kind == "release" and e.client == SILENT_RELEASE_MAC)
