"""DHCPv6 reply building on its own: pure functions, no socket, no protocol object."""

from __future__ import annotations

from ipaddress import IPv6Address, IPv6Network

import pytest

from pxelab.server.dhcp6.codec import (
    BootFileUrl,
    ClientId,
    Dhcp6Message,
    Duid,
    IaAddress,
    IaNa,
    MessageType,
    OptionCode,
    OptionRequest,
    Preference,
    RapidCommit,
    ServerId,
    Status,
    StatusCode,
    VendorClass,
)
from pxelab.server.dhcp6.leases import Binding, LeaseState
from pxelab.server.dhcp6.replies import (
    Dhcp6Settings,
    Peer,
    assigned_ia,
    build_reply,
    client_info,
    client_mac,
    failed_ia,
    status_name,
    vendor_echo,
)
from pxelab.server.policy import BootDecision

pytestmark = pytest.mark.unit

SETTINGS = Dhcp6Settings(IPv6Address("2001:db8::1"), IPv6Network("2001:db8::/64"),
                         valid_seconds=3600, preferred_seconds=1800)
OURS = Duid.link_layer(bytes.fromhex("02aabbccddee"))
CLIENT = Duid.link_layer(bytes.fromhex("525400123456"))
PEER = Peer(IPv6Address("fe80::5054:ff:fe12:3456"), 546, 2)


def solicit(*requested: int) -> Dhcp6Message:
    return Dhcp6Message(MessageType.SOLICIT, 0x010203,
                        (ClientId(CLIENT), OptionRequest(tuple(requested))))


def test_advertise_carries_ids_ia_preference_and_the_url_asked_for() -> None:
    request = solicit(OptionCode.BOOTFILE_URL)
    client = client_info(request, PEER, SETTINGS)
    binding = Binding(CLIENT.raw, 7, IPv6Address("2001:db8::100"), LeaseState.OFFERED, 0.0)
    reply = build_reply(request, MessageType.ADVERTISE, OURS, SETTINGS,
                        ias=(assigned_ia(7, binding, SETTINGS),),
                        decision=BootDecision(boot_file="grubx64.efi"), client=client)
    assert reply.xid == request.xid and reply.msg_type is MessageType.ADVERTISE
    assert reply.get(ClientId) == ClientId(CLIENT) and reply.get(ServerId) == ServerId(OURS)
    assert reply.get(Preference) == Preference(255)
    assert reply.get(BootFileUrl) == BootFileUrl("tftp://[2001:db8::1]/grubx64.efi")
    assert reply.get(RapidCommit) is None
    ia = reply.get(IaNa)
    assert ia == IaNa(7, 900, 1440, (IaAddress(IPv6Address("2001:db8::100"), 1800, 3600),))


def test_no_url_unless_asked_and_no_pxeclient_echo() -> None:
    request = solicit()
    client = client_info(request, PEER, SETTINGS)
    decision = BootDecision(boot_file="http://[2001:db8::1]/x.efi", vendor_class="HTTPClient")
    reply = build_reply(request, MessageType.REPLY, OURS, SETTINGS, decision=decision,
                        client=client, rapid_commit=True)
    assert reply.get(BootFileUrl) is None and reply.get(Preference) is None
    assert reply.get(RapidCommit) == RapidCommit()
    assert reply.get(VendorClass) == vendor_echo(decision)
    assert vendor_echo(BootDecision(vendor_class="PXEClient:Arch:00007")) is None


def test_client_identity_failed_ia_and_status_names() -> None:
    assert client_mac(solicit(), PEER) == "52:54:00:12:34:56"
    anonymous = Dhcp6Message(MessageType.SOLICIT, 1, ())
    assert client_mac(anonymous, PEER) == "52:54:00:12:34:56"  # from the EUI-64 link-local
    assert client_mac(anonymous, Peer(IPv6Address("fe80::1"), 546)) == ""
    assert failed_ia(3, Status.NO_ADDRS_AVAIL, "full") == IaNa(
        3, 0, 0, (StatusCode(Status.NO_ADDRS_AVAIL, "full"),))
    assert status_name(int(Status.NO_BINDING)) == "NO_BINDING" and status_name(99) == "99"
