"""The event log: waits on events instead of sleeping, mirrors to JSON lines."""

from __future__ import annotations

import gc
import json
import threading
import weakref
from dataclasses import asdict
from ipaddress import IPv4Address

import pytest

from pxelab.core.errors import WaitTimeoutError
from pxelab.core.events import Event, EventLog
from pxelab.server.policy import ClientInfo

pytestmark = pytest.mark.unit


def test_wait_for_an_event_from_another_thread(tmp_path):
    log = EventLog(tmp_path / "events.jsonl")
    threading.Timer(0.05, log.emit, ("dhcp4", "ack"), {"client": "52:54:00:00:00:01"}).start()
    event = log.wait_for(lambda e: e.kind == "ack", timeout=5, what="DHCP ack")
    assert event.client == "52:54:00:00:00:01"
    log.close()
    line = json.loads((tmp_path / "events.jsonl").read_text())
    assert line["source"] == "dhcp4" and line["kind"] == "ack"


def test_wait_timeout_says_what_was_seen():
    log = EventLog()
    log.emit("tftp", "rrq", request="pxelinux.0")
    with pytest.raises(WaitTimeoutError, match=r"no TFTP transfer.*tftp\.rrq"):
        log.wait_for(lambda e: e.kind == "sent", timeout=0.1, what="TFTP transfer")


def test_the_file_gets_every_event_in_order_by_close(tmp_path):
    path = tmp_path / "events.jsonl"
    log = EventLog(path)
    threads = [threading.Thread(target=lambda n=n: [log.emit("t", f"{n}-{i}") for i in range(200)])
               for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    log.close()
    log.emit("t", "after close")  # kept in memory only
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert [line["kind"] for line in lines] == [e.kind for e in log][:-1]
    assert len(lines) == 800
    log.close()  # twice is harmless


def test_to_json_is_what_asdict_gave():
    log = EventLog()
    event = log.emit("dhcp4", "ack", client="52:54:00:00:00:01", details={
        "address": IPv4Address("192.0.2.7"), "client": ClientInfo("52:54:00:00:00:01"),
        "options": (1, 3), "none": None})
    assert event.to_json() == json.dumps(asdict(event), sort_keys=True, default=str)


def test_files_from_before_mac_and_file_were_fields_still_load() -> None:
    # As events.jsonl files written before: the MAC in DHCPv4's client and DHCPv6's
    # details, the file under three names.
    v4 = Event.from_dict({"source": "dhcp4", "kind": "offer", "client": "52:54:00:12:34:56",
                          "details": {"file": "pxelinux.0", "xid": 1}, "time": 1.0})
    v6 = Event.from_dict({"source": "dhcp6", "kind": "reply", "client": "fe80::1",
                          "details": {"mac": "52:54:00:12:34:56", "boot_url": "http://x/a.efi"}})
    web = Event.from_dict({"source": "http", "kind": "get", "details": {"path": "/a.efi"}})
    assert (v4.mac, v4.file, v4.details) == ("52:54:00:12:34:56", "pxelinux.0", {"xid": 1})
    assert (v6.mac, v6.file, v6.details) == ("52:54:00:12:34:56", "http://x/a.efi", {})
    assert (web.mac, web.file, web.details) == ("", "/a.efi", {})


def test_mac_and_file_survive_the_json_round_trip() -> None:
    event = Event("tftp", "sent", client="192.0.2.9", mac="52:54:00:12:34:56",
                  file="pxelinux.0", details={"bytes": 3})
    assert Event.from_dict(json.loads(event.to_json())) == event


def test_memory_holds_only_the_window_the_file_holds_everything(tmp_path):
    path = tmp_path / "events.jsonl"
    log = EventLog(path, window=100)
    first = log.emit("t", "0")
    oldest = weakref.ref(first)
    del first
    for n in range(1, 1000):
        log.emit("t", str(n))
    assert len(log) == 100
    assert [e.kind for e in log] == [str(n) for n in range(900, 1000)]
    assert log.recorded == 1000
    log.close()  # the file writer lets go of its batch once written
    assert len(path.read_text().splitlines()) == 1000
    gc.collect()
    assert oldest() is None, "an event older than the window is still held"


def test_wait_for_after_the_window_has_moved_on():
    log = EventLog(window=3)
    for n in range(10):
        log.emit("t", str(n))
    assert log.wait_for(lambda e: e.kind == "8", timeout=1).kind == "8"
    threading.Thread(target=lambda: [log.emit("t", str(n)) for n in range(10, 20)]).start()
    assert log.wait_for(lambda e: e.kind == "19", timeout=5).kind == "19"


def test_the_default_window_keeps_a_long_server_bounded():
    log = EventLog()
    assert log.window is not None and log.window >= 1000
    assert EventLog(window=None).window is None  # a boot keeps all of its own
