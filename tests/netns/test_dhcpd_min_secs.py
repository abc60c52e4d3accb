"""The real ISC dhcpd with ``min-secs 2;`` against a client whose ``secs`` stays 0, and the
diagnosis of what it left behind (no boot-server events: its log, its config, the capture).

dhcpd runs in the foreground in the lab's server namespace (``-d -f``) the way a lab with
third-party daemons runs it (pxelab.daemons): its stderr is ``daemons/dhcpd.log``, its
configuration ``daemons/dhcpd.conf``, under the boot's artifacts, beside ``lab.pcap``.
The DISCOVERs are scapy's, from the client namespace.
"""

from __future__ import annotations

import contextlib
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from nslab import Lab, dhcp4_client_socket, stop_process
from scapy.layers.dhcp import BOOTP, DHCP

from pxelab.analysis.diagnosis import diagnose
from pxelab.analysis.evidence import BootFacts, Evidence
from pxelab.analysis.evidence.daemons import daemon_settings, daemons_of, read_daemon_logs
from pxelab.analysis.evidence.packets import summarise_pcap
from pxelab.core.netns import exec_prefix
from pxelab.machine.capture import PacketCapture
from pxelab.machine.console import Timeline
from pxelab.pytest_plugin import pxelab_requires

pytestmark = [pytest.mark.netns]

MAC = "52:54:00:00:07:11"
CONFIG = """\
authoritative;
default-lease-time 600;
{min_secs}
subnet 192.0.2.0 netmask 255.255.255.0 {{
  range 192.0.2.100 192.0.2.150;
  next-server 192.0.2.1;
  filename "pxelinux.0";
}}
"""
READY = "Server starting service."
READY_TIMEOUT_S = 10.0
ANSWER_TIMEOUT_S = 1.5


@contextlib.contextmanager
def dhcpd(lab: Lab, artifacts: Path, min_secs: str) -> Iterator[Path]:
    """ISC dhcpd on br0 of the server namespace, its log in daemons/dhcpd.log; stopped on
    exit. Ready once it logs that it serves (read from its stderr, not by sleeping)."""
    pxelab_requires(root=True, tools=["dhcpd"], hint="apt-get install isc-dhcp-server")
    directory = artifacts / "daemons"
    directory.mkdir(parents=True)
    (directory / "dhcpd.conf").write_text(CONFIG.format(min_secs=min_secs))
    (directory / "dhcpd.leases").write_text("")
    log = directory / "dhcpd.log"
    process = subprocess.Popen(
        [*exec_prefix(lab.server), "dhcpd", "-4", "-d", "-f", "-cf", str(directory / "dhcpd.conf"),
         "-lf", str(directory / "dhcpd.leases"), "-pf", str(directory / "dhcpd.pid"), "br0"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    ready = threading.Event()
    copier = threading.Thread(target=_copy, args=(process, log, ready), daemon=True)
    copier.start()
    try:
        assert ready.wait(READY_TIMEOUT_S), f"dhcpd did not start:\n{log.read_text()}"
        yield log
    finally:
        stop_process(process.pid)
        process.wait(timeout=10)
        copier.join(timeout=10)
        if process.stderr is not None:
            process.stderr.close()


def _copy(process: subprocess.Popen[str], log: Path, ready: threading.Event) -> None:
    assert process.stderr is not None
    with log.open("w") as out:
        for line in process.stderr:
            out.write(line)
            out.flush()
            if line.startswith(READY):
                ready.set()


def discover(sock: socket.socket, secs: int) -> str:
    """Broadcast one DISCOVER with ``secs``; the message type of the answer, or ""."""
    chaddr = bytes.fromhex(MAC.replace(":", "")) + b"\0" * 10
    message = BOOTP(chaddr=chaddr, xid=0x4a00 + secs, secs=secs, flags=0x8000) / DHCP(
        options=[("message-type", "discover"), ("vendor_class_id", b"Etherboot-5.4"), "end"])
    sock.sendto(bytes(message), ("255.255.255.255", 67))
    sock.settimeout(ANSWER_TIMEOUT_S)
    try:
        answer = BOOTP(sock.recv(2048))
    except TimeoutError:
        return ""
    return "offer" if answer.haslayer(DHCP) and answer.xid == message.xid else "other"


def evidence(artifacts: Path, started: float) -> Evidence:
    """What a lab with third-party daemons keeps: packets, daemon logs, their settings."""
    packets = tuple(summarise_pcap(artifacts / "lab.pcap", {MAC}))
    facts = BootFacts("etherboot_min_secs", daemons=daemons_of(artifacts),
                      daemon_settings=daemon_settings(artifacts))
    timeline = Timeline("etherboot_min_secs", [], "rom_dhcp", "timeout after 20 s", 20.0, "")
    return Evidence(facts, started, timeline, packets=packets,
                    daemon_log=read_daemon_logs(artifacts, packets))


def test_dhcpd_min_secs_drops_secs_0_and_the_diagnosis_names_it(lab: Lab,
                                                                tmp_path: Path) -> None:
    started = time.time()  # the "power-on": before the first DISCOVER
    with PacketCapture(lab.server, "br0", tmp_path / "lab.pcap"), \
            dhcpd(lab, tmp_path, "min-secs 2;") as log, \
            contextlib.closing(dhcp4_client_socket(lab)) as sock:
        assert [discover(sock, 0) for _ in range(3)] == ["", "", ""]
    text = log.read_text()
    # What dhcpd 4.4 logs at its default level (server/dhcp.c, ack_lease: log_info).
    assert text.count(f"DHCPDISCOVER from {MAC} via br0: configured min-secs value (2) is "
                      "greater than secs field (0).  message dropped.") == 3, text
    found = evidence(tmp_path, started)
    assert found.facts.daemon_settings == {"dhcpd.min-secs": "2"}
    diagnosis = diagnose(found)
    assert diagnosis.codes == ("dhcp.withheld_min_secs",), diagnosis.render()
    cause = diagnosis.causes[0]
    assert f"ISC dhcpd dropped 3 DISCOVERs from {MAC} because its secs (0) stayed below " \
           "min_secs=2 (from dhcpd's log and dhcpd.conf)" in cause.summary
    assert "evidence: no boot-server events (external daemons: dhcpd)" in diagnosis.render()
    # Without the log (a daemon that said nothing), the config and the wire tell it.
    quiet = diagnose(replace(found, daemon_log=()))
    assert quiet.codes == ("dhcp.withheld_min_secs",), quiet.render()
    assert "from dhcpd.conf and the DISCOVERs' secs on the wire" in quiet.causes[0].summary


def test_dhcpd_min_secs_answers_a_client_that_counts(lab: Lab, tmp_path: Path) -> None:
    with dhcpd(lab, tmp_path, "min-secs 2;"), \
            contextlib.closing(dhcp4_client_socket(lab)) as sock:
        assert [discover(sock, secs) for secs in (0, 1, 2)] == ["", "", "offer"]


def test_the_same_config_without_min_secs_answers_secs_0(lab: Lab, tmp_path: Path) -> None:
    with dhcpd(lab, tmp_path, ""), contextlib.closing(dhcp4_client_socket(lab)) as sock:
        assert discover(sock, 0) == "offer"
