"""File rules from the capture alone, as with a third-party server (diagnosis.wire)."""

from __future__ import annotations

import pytest
from test_diagnosis import IP, LEGACY_CLASS, MAC, SERVER, Boot

from pxelab.analysis.diagnosis import diagnose
from pxelab.analysis.diagnosis.files import similar_names
from pxelab.analysis.diagnosis.wire import derived, with_wire_events

pytestmark = pytest.mark.unit


def _wire_boot(*, data_files: tuple[str, ...] = ("pxelinux.0", "ldlinux.c32")) -> Boot:
    """DHCP on the wire handing out pxelinx.0; no server events at all."""
    boot = Boot(data_files=data_files)
    boot.events.clear()
    boot.packet(0.30, "dhcp4", "discover", "0.0.0.0:68", "255.255.255.255:67", client=MAC,
                xid=1, vendor_class=LEGACY_CLASS, arch=0)
    boot.packet(0.31, "dhcp4", "offer", f"{SERVER}:67", "255.255.255.255:68", client=MAC,
                xid=1, file="pxelinx.0", options=[53, 54, 67])
    boot.packet(0.32, "dhcp4", "request", "0.0.0.0:68", "255.255.255.255:67", client=MAC, xid=1)
    boot.packet(0.33, "dhcp4", "ack", f"{SERVER}:67", "255.255.255.255:68", client=MAC, xid=1,
                file="pxelinx.0", options=[53, 54, 67])
    boot.packet(0.35, "tftp", "rrq", f"{IP}:2070", f"{SERVER}:69", client=MAC,
                file="pxelinx.0", answer="error")
    boot.packet(0.36, "tftp", "error", f"{SERVER}:69", f"{IP}:2070", client=MAC, code=1,
                message="File not found", file="pxelinx.0", from_client=False)
    return boot


def test_a_tftp_error_1_on_the_wire_is_file_not_found_with_the_similar_name() -> None:
    evidence = _wire_boot().evidence("nbp", "iPXE could not boot (console: 'No more "
                                     "network devices')", 0.4)
    diagnosis = diagnose(evidence)
    assert diagnosis.codes[0] == "file.not_found", diagnosis.render()
    assert "pxelinx.0" in diagnosis.causes[0].summary
    assert "pxelinux.0" in diagnosis.causes[0].summary


def test_http_answers_on_the_wire_become_events_with_their_byte_counts() -> None:
    boot = Boot()
    boot.events.clear()
    boot.packet(1.0, "http", "request", f"{IP}:40000", f"{SERVER}:80", client=MAC,
                method="GET", path="/vmlinuz")
    boot.packet(1.1, "http", "response", f"{SERVER}:80", f"{IP}:40000", client=MAC,
                status=200, length=14_000_000, path="/vmlinuz", body_bytes=7_000_000)
    events = with_wire_events(boot.evidence("kernel", "timeout", 60.0)).events
    (get,) = events
    assert derived(get) and (get.source, get.kind, get.file) == ("http", "get", "/vmlinuz")
    assert (get.details["status"], get.details["bytes"], get.details["size"]) == (
        200, 7_000_000, 14_000_000)
    assert get.client == IP


def test_server_events_are_left_alone() -> None:
    boot = Boot()
    boot.packet(0.36, "tftp", "error", f"{SERVER}:69", f"{IP}:2070", client=MAC, code=1,
                message="File not found", file="x", from_client=False)
    boot.event(0.36, "tftp", "not_found", client=IP, file="x")
    evidence = boot.evidence("nbp", "timeout", 1.0)
    assert with_wire_events(evidence) is evidence


def test_a_name_that_differs_in_case_is_named_as_such() -> None:
    assert similar_names("ldlinux.c32", ["pxelinux.0", "LDLINUX.C32"]) == ["LDLINUX.C32"]


def test_a_transfer_whose_last_block_the_capture_lost_is_sent_if_the_client_acked_it() -> None:
    boot = Boot()
    boot.events.clear()
    boot.packet(1.0, "tftp", "oack", f"{SERVER}:40000", f"{IP}:2070", client=MAC,
                file="pxelinux.0", options={"tsize": "42378", "blksize": "1432"})
    boot.packet(1.1, "tftp", "transfer", f"{SERVER}:40000", f"{IP}:2070", client=MAC,
                file="pxelinux.0", blksize=1432, bytes=41_000, last_block=29, acked=30,
                complete=False, error="")
    (sent,) = [e for e in with_wire_events(boot.evidence("config", "t", 9.0)).events
               if e.source == "tftp"]
    assert sent.kind == "sent"
