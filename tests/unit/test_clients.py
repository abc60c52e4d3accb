"""ClientDirectory: addresses learnt from DHCP events, tolerant of missing keys."""

from __future__ import annotations

import threading

import pytest

from pxelab.core.events import EventLog
from pxelab.server.clients import ClientDirectory, ClientRecord

pytestmark = pytest.mark.unit

MAC = "52:54:00:00:00:01"


@pytest.fixture
def log_and_directory() -> tuple[EventLog, ClientDirectory]:
    events = EventLog()
    return events, ClientDirectory(events)


def test_dhcp4_ack_is_recorded(log_and_directory: tuple[EventLog, ClientDirectory]) -> None:
    events, clients = log_and_directory
    events.emit("dhcp4", "ack", client=MAC, mac=MAC, details={
        "yiaddr": "192.0.2.100", "arch": 7, "vendor_class": "PXEClient:Arch:00007",
        "user_classes": ["iPXE"]})
    record = clients.by_address("192.0.2.100")
    assert record == ClientRecord("192.0.2.100", MAC, "dhcp4", 7, "PXEClient:Arch:00007",
                                  ("iPXE",))
    assert clients.by_mac(MAC.upper()) == record


def test_proxy_ack_and_offers_are_not_recorded(
        log_and_directory: tuple[EventLog, ClientDirectory]) -> None:
    events, clients = log_and_directory
    events.emit("dhcp4", "ack", client=MAC, mac=MAC, details={"yiaddr": "0.0.0.0"})
    events.emit("dhcp4", "offer", client=MAC, mac=MAC, details={"yiaddr": "192.0.2.101"})
    assert len(clients) == 0


def test_dhcp6_reply_with_missing_keys(
        log_and_directory: tuple[EventLog, ClientDirectory]) -> None:
    events, clients = log_and_directory
    events.emit("dhcp6", "reply", client="00:01:00:01:aa", mac=MAC, details={
        "address": "2001:db8::1:5", "arch": "16"})
    events.emit("dhcp6", "reply", client="duid-only", details={
        "address": "2001:db8::1:6", "addresses": ["2001:db8::1:6", "2001:db8::1:9"]})
    events.emit("dhcp6", "reply", client="broken", details={"address": "not-an-address"})
    events.emit("dhcp6", "reply", client=MAC, mac=MAC, details={  # the reply to a release
        "address": "2001:db8::1:7", "addresses": [], "in_reply_to": "release"})
    events.emit("dhcp6", "reply", client=MAC, mac=MAC, details={  # stateless: no address leased
        "address": "2001:db8::1:8", "addresses": [], "in_reply_to": "information-request"})
    events.emit("dhcp6", "reply", client=MAC, mac=MAC)
    first = clients.by_address("2001:DB8:0::1:5")
    assert first is not None and first.mac == MAC and first.arch == 16
    assert first.protocol == "dhcp6"
    second = clients.by_address("2001:db8::1:6")
    assert second is not None and second.mac is None and second.arch is None
    assert clients.by_address("2001:db8::1:9") is not None
    assert len(clients) == 3


def test_release_forgets_the_address(
        log_and_directory: tuple[EventLog, ClientDirectory]) -> None:
    events, clients = log_and_directory
    events.emit("dhcp4", "ack", client=MAC, mac=MAC, details={"yiaddr": "192.0.2.100"})
    events.emit("dhcp4", "release", client="52:54:00:00:00:99", mac="52:54:00:00:00:99",
                details={"address": "192.0.2.100"})
    assert clients.by_address("192.0.2.100") is not None  # another MAC cannot release it
    events.emit("dhcp4", "release", client=MAC, mac=MAC, details={"address": "192.0.2.100"})
    assert clients.by_address("192.0.2.100") is None


def test_concurrent_updates_and_lookups() -> None:
    events = EventLog()
    clients = ClientDirectory(events)

    def feed(base: int) -> None:
        for i in range(200):
            mac = f"52:54:00:00:{base:02x}:{i % 256:02x}"
            events.emit("dhcp4", "ack", client=mac, mac=mac,
                        details={"yiaddr": f"10.{base}.{i // 256}.{i % 256}"})
            clients.by_address(f"10.{base}.0.{i % 256}")

    threads = [threading.Thread(target=feed, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(clients) == 800


def test_bootp_reply_is_recorded_and_a_decline_forgets(
        log_and_directory: tuple[EventLog, ClientDirectory]) -> None:
    events, clients = log_and_directory
    events.emit("dhcp4", "bootreply", client=MAC, mac=MAC, details={"yiaddr": "192.0.2.100"})
    assert clients.by_address("192.0.2.100") == ClientRecord("192.0.2.100", MAC)
    events.emit("dhcp6", "reply", client=MAC, mac=MAC, details={"addresses": ["2001:db8::1:0"]})
    events.emit("dhcp6", "decline", client=MAC, mac=MAC, details={"address": "2001:db8::1:0"})
    assert clients.by_address("2001:db8::1:0") is None  # another node uses it
