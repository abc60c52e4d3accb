"""The event log: waits on events instead of sleeping, mirrors to JSON lines."""

from __future__ import annotations

import json
import threading

import pytest

from pxelab.errors import WaitTimeoutError
from pxelab.events import EventLog

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
