"""Diagnosis of a lab served by third-party daemons: no boot-server events, only the
capture (synthetic pcaps written with scapy here), the console and the daemons' logs
(``<artifacts>/daemons/<type>.log``, pxelab.analysis.evidence.daemons)."""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path

import pytest
from scapy.layers.dhcp import BOOTP, DHCP
from scapy.layers.dhcp6 import (
    DUID_LL,
    DHCP6_Advertise,
    DHCP6_Solicit,
    DHCP6OptClientId,
    DHCP6OptServerId,
)
from scapy.layers.inet import IP, UDP
from scapy.layers.inet6 import IPv6
from scapy.layers.l2 import Ether
from scapy.utils import wrpcap
from test_diagnosis import MAC, T0, Boot, only

from pxelab.analysis.diagnosis import decisions, dhcp, diagnose, minsecs
from pxelab.analysis.diagnosis.model import EvidenceClass
from pxelab.analysis.evidence import Evidence
from pxelab.analysis.evidence.daemons import (
    daemon_settings,
    daemons_of,
    read_daemon_log,
    read_daemon_logs,
    stamp_line,
)
from pxelab.analysis.evidence.packets import summarise_pcap
from pxelab.analysis.report.boots import diagnosis_from_dict
from pxelab.analysis.report.text import render_causes

pytestmark = pytest.mark.unit

SERVER_MAC = "02:00:00:00:00:01"
# What ISC dhcpd 4.4.3 wrote in a lab namespace with `min-secs 2;` to DISCOVERs with
# secs 0, 1, 0, then 2 (run by hand; tests/netns/test_dhcpd_min_secs.py runs it again).
DHCPD_LOG = f"""\
Internet Systems Consortium DHCP Server 4.4.3-P1
Copyright 2004-2022 Internet Systems Consortium.
All rights reserved.
For info, please visit https://www.isc.org/software/dhcp/
Config file: /tmp/lab/daemons/dhcpd.conf
Database file: /tmp/lab/daemons/dhcpd/leases
PID file: /tmp/lab/daemons/dhcpd/pid
Wrote 0 leases to leases file.
Listening on LPF/br0/4a:2b:70:ff:b2:6c/192.0.2.0/24
Sending on   LPF/br0/4a:2b:70:ff:b2:6c/192.0.2.0/24
Sending on   Socket/fallback/fallback-net
Server starting service.
DHCPDISCOVER from {MAC} via br0: configured min-secs value (2) is greater than secs field (0).  message dropped.
DHCPDISCOVER from {MAC} via br0: configured min-secs value (2) is greater than secs field (0).  message dropped.
DHCPDISCOVER from {MAC} via br0: configured min-secs value (2) is greater than secs field (0).  message dropped.
"""  # noqa: E501
DHCPD_CONF = """\
authoritative;
min-secs 2;   # let the primary answer first
subnet 192.0.2.0 netmask 255.255.255.0 { range 192.0.2.100 192.0.2.150; }
"""


def _discover(at: float, secs: int) -> Ether:
    frame = (Ether(src=MAC, dst="ff:ff:ff:ff:ff:ff") / IP(src="0.0.0.0", dst="255.255.255.255")
             / UDP(sport=68, dport=67)
             / BOOTP(chaddr=bytes.fromhex(MAC.replace(":", "")) + b"\0" * 10, xid=0x1234,
                     secs=secs)
             / DHCP(options=[("message-type", "discover"),
                             ("vendor_class_id", b"Etherboot-5.4"), "end"]))
    frame.time = T0 + at
    return frame


def _artifacts(tmp_path: Path, frames: list[Ether], log: str | None = DHCPD_LOG,
               conf: str | None = DHCPD_CONF) -> Path:
    """An artifact directory with lab.pcap and the dhcpd log and config a lab leaves."""
    (tmp_path / "daemons").mkdir(parents=True)
    wrpcap(str(tmp_path / "lab.pcap"), frames)
    if log is not None:
        (tmp_path / "daemons" / "dhcpd.log").write_text(log)
        os.utime(tmp_path / "daemons" / "dhcpd.log", (T0 + 30, T0 + 30))
    if conf is not None:
        (tmp_path / "daemons" / "dhcpd.conf").write_text(conf)
    return tmp_path


def _evidence(artifacts: Path) -> Evidence:
    """What evidence.collect makes of ``artifacts`` for a boot with no server events."""
    packets = tuple(summarise_pcap(artifacts / "lab.pcap", {MAC}))
    boot = Boot("etherboot_min_secs")
    boot.events.clear()
    boot.hit(0.1, "firmware", "SeaBIOS (version 1.16.2-debian-1.16.2-1)")
    boot.facts = replace(boot.facts, daemons=daemons_of(artifacts),
                         daemon_settings=daemon_settings(artifacts))
    evidence = boot.evidence("rom_dhcp", "timeout after 20 s", 20.0)
    return replace(evidence, packets=packets,
                   daemon_log=read_daemon_logs(artifacts, packets))


# -- the logs --------------------------------------------------------------------------------

def test_dhcpd_lines_without_stamps_take_their_discovers_times(tmp_path: Path) -> None:
    artifacts = _artifacts(tmp_path, [_discover(at, 0) for at in (1.0, 5.0, 13.0)])
    packets = summarise_pcap(artifacts / "lab.pcap", {MAC})
    lines = read_daemon_logs(artifacts, packets)
    assert [line.source for line in lines] == ["dhcpd"] * 3  # the banner is chatter
    assert [round(line.time - T0, 3) for line in lines] == [1.0, 5.0, 13.0]
    assert lines[0].text.startswith(f"DHCPDISCOVER from {MAC} via br0: configured min-secs")


def test_lines_beyond_the_capture_take_a_neighbours_time(tmp_path: Path) -> None:
    artifacts = _artifacts(tmp_path, [_discover(1.0, 0)])
    lines = read_daemon_log(artifacts / "daemons" / "dhcpd.log", "dhcpd",
                            summarise_pcap(artifacts / "lab.pcap", {MAC}))
    assert [round(line.time - T0, 3) for line in lines] == [1.0, 1.0, 1.0]
    alone = read_daemon_log(artifacts / "daemons" / "dhcpd.log", "dhcpd")
    assert {line.time for line in alone} == {T0 + 30}  # the file's mtime


@pytest.mark.parametrize(("line", "text"), [
    ("2026-12-07 02:50:41.123 INFO  [kea-dhcp4.alloc-engine/7.1] ALLOC_ENGINE_V4_ALLOC_FAIL x",
     "INFO  [kea-dhcp4.alloc-engine/7.1] ALLOC_ENGINE_V4_ALLOC_FAIL x"),
    ("2026/12/07 02:50:41 [error] 7#7: *1 open() \"/srv/x\" failed",
     "[error] 7#7: *1 open() \"/srv/x\" failed"),
    ("Dec  7 02:50:41 dnsmasq-dhcp[7]: DHCPDISCOVER(br0) 52:54:00:12:34:56 ignored",
     "dnsmasq-dhcp[7]: DHCPDISCOVER(br0) 52:54:00:12:34:56 ignored"),
    ("1796611841.250 DHCPDISCOVER from 52:54:00:12:34:56 via br0",
     "DHCPDISCOVER from 52:54:00:12:34:56 via br0"),
])
def test_stamps_of_each_daemon_are_read_and_cut_off(line: str, text: str) -> None:
    at, rest = stamp_line(line, 2026)
    assert at is not None and rest == text


def test_nginx_access_lines_keep_their_inner_stamp() -> None:
    line = '192.0.2.100 - - [07/Dec/2026:02:50:41 +0000] "GET /vmlinuz HTTP/1.1" 404 153'
    at, rest = stamp_line(line, 2026)
    assert at == 1796611841.0 and rest == line


def test_ganesha_and_the_daemons_are_read_together(tmp_path: Path) -> None:
    artifacts = _artifacts(tmp_path, [_discover(1.0, 0)])
    (tmp_path / "daemons" / "nginx.log").write_text(
        "2026/12/07 02:50:40 [notice] 7#7: start worker processes\n"
        '192.0.2.100 - - [07/Dec/2026:02:50:41 +0000] "GET /x HTTP/1.1" 404 153\n')
    lines = read_daemon_logs(artifacts, summarise_pcap(artifacts / "lab.pcap", {MAC}))
    assert [line.source for line in lines].count("nginx") == 1  # not the notice
    assert daemons_of(artifacts) == ("dhcpd", "nginx")
    assert daemon_settings(artifacts) == {"dhcpd.min-secs": "2"}


# -- dhcp.withheld_min_secs from dhcpd ------------------------------------------------------

def test_min_secs_from_dhcpds_log_and_the_discovers_on_the_wire(tmp_path: Path) -> None:
    evidence = _evidence(_artifacts(tmp_path, [_discover(at, 0) for at in (1.0, 5.0, 13.0)]))
    cause = only(minsecs.withheld_min_secs, evidence, "dhcp.withheld_min_secs")
    assert cause.summary.startswith(
        f"ISC dhcpd dropped 3 DISCOVERs from {MAC} because its secs (0) stayed below "
        "min_secs=2 (from dhcpd's log and dhcpd.conf)")
    assert "not been trying for 2 s" in cause.summary
    assert any("configured min-secs value (2)" in line for line in cause.evidence)
    assert "remove `min-secs` from dhcpd.conf" in cause.fix
    diagnosis = diagnose(evidence)
    # The unanswered DISCOVERs are the same story: not a second cause.
    assert diagnosis.codes == ("dhcp.withheld_min_secs",), diagnosis.render()
    assert "evidence: no boot-server events (external daemons: dhcpd); from packets, " \
           "console and daemon logs" in diagnosis.render()


def test_min_secs_from_dhcpd_conf_when_the_log_says_nothing(tmp_path: Path) -> None:
    evidence = _evidence(_artifacts(tmp_path, [_discover(at, s) for at, s in ((1, 0), (5, 1))],
                                    log="Server starting service.\n"))
    cause = only(minsecs.withheld_min_secs, evidence, "dhcp.withheld_min_secs")
    assert "secs (0, 1) stayed below min_secs=2 (from dhcpd.conf and the DISCOVERs' secs on " \
           "the wire: dhcpd's log has no line for it)" in cause.summary
    assert diagnose(evidence).codes == ("dhcp.withheld_min_secs",)
    assert "set min_secs to 1 or less" in cause.fix


def test_min_secs_quiet_when_a_discover_had_secs_enough_or_dhcpd_offered(
        tmp_path: Path) -> None:
    counted = _evidence(_artifacts(tmp_path / "a", [_discover(1, 0), _discover(5, 4)],
                                   log=""))
    assert minsecs.withheld_min_secs(counted) is None
    offer = (Ether(src=SERVER_MAC, dst=MAC) / IP(src="192.0.2.1", dst="255.255.255.255")
             / UDP(sport=67, dport=68)
             / BOOTP(op=2, chaddr=bytes.fromhex(MAC.replace(":", "")) + b"\0" * 10, xid=0x1234,
                     yiaddr="192.0.2.100") / DHCP(options=[("message-type", "offer"), "end"]))
    offer.time = T0 + 14
    served = _evidence(_artifacts(tmp_path / "b", [_discover(at, 0) for at in (1.0, 5.0, 13.0)]
                                  + [offer]))
    assert minsecs.withheld_min_secs(served) is None


# -- dhcp.withheld from a daemon's log ---------------------------------------------------------

@pytest.mark.parametrize(("daemon", "line", "reason"), [
    ("dhcpd", f"DHCPDISCOVER from {MAC} via br0: network 192.0.2.0/24: no free leases",
     "network 192.0.2.0/24: no free leases"),
    ("dhcpd", f"DHCPDISCOVER from {MAC} via br0: unknown client", "unknown client"),
    ("dnsmasq", f"Dec  7 02:50:41 dnsmasq-dhcp[7]: DHCPDISCOVER(br0) {MAC} ignored", "ignored"),
])
def test_withheld_from_a_daemons_log(tmp_path: Path, daemon: str, line: str,
                                     reason: str) -> None:
    artifacts = _artifacts(tmp_path, [_discover(at, 4 + int(at)) for at in (1.0, 5.0)], log=None,
                           conf=None)
    (artifacts / "daemons" / f"{daemon}.log").write_text(f"{line}\n{line}\n")
    evidence = _evidence(artifacts)
    cause = only(decisions.withheld, evidence, "dhcp.withheld")
    assert f"the DHCPv4 server ({daemon}) withheld 2 answers to {MAC}, by its log: " \
           f"{reason}" == cause.summary
    assert diagnose(evidence).codes == ("dhcp.withheld",)


# -- DHCPv6 Advertises from a pcap --------------------------------------------------------------

def test_advertises_left_unused_from_the_capture(tmp_path: Path) -> None:
    duid = DUID_LL(lladdr=MAC)
    solicit = (Ether(src=MAC, dst="33:33:00:01:00:02") / IPv6(src="fe80::5054:ff:fe12:3456",
                                                             dst="ff02::1:2")
               / UDP(sport=546, dport=547) / DHCP6_Solicit(trid=7) / DHCP6OptClientId(duid=duid))
    advertise = (Ether(src=SERVER_MAC, dst=MAC) / IPv6(src="fe80::1",
                                                       dst="fe80::5054:ff:fe12:3456")
                 / UDP(sport=547, dport=546) / DHCP6_Advertise(trid=7)
                 / DHCP6OptClientId(duid=duid) / DHCP6OptServerId(duid=DUID_LL(
                     lladdr=SERVER_MAC)))
    solicit.time, advertise.time = T0 + 3.0, T0 + 3.1
    wrpcap(str(tmp_path / "lab.pcap"), [solicit, advertise])
    boot = Boot("uefi_tftp_ipv6", firmware="ovmf")
    boot.events.clear()
    evidence = replace(boot.evidence("fw_dhcp", "timeout", 60.0),
                       packets=tuple(summarise_pcap(tmp_path / "lab.pcap", {MAC})))
    cause = only(dhcp.offer_unused, evidence, "dhcp.offer_unused")
    assert cause.summary.startswith(f"1 Advertise to {MAC} got no DHCPv6 Request")
    assert "no boot URL (option 59)" in cause.summary


# -- what the diagnosis had --------------------------------------------------------------------

def test_the_diagnosis_says_which_evidence_it_had(tmp_path: Path) -> None:
    evidence = _evidence(_artifacts(tmp_path, [_discover(at, 0) for at in (1.0, 5.0)]))
    diagnosis = diagnose(evidence)
    assert diagnosis.had == (EvidenceClass.PACKETS, EvidenceClass.CONSOLE,
                             EvidenceClass.DAEMON_LOGS)
    assert diagnosis.daemons == ("dhcpd",)
    line = ("evidence: no boot-server events (external daemons: dhcpd); from packets, "
            "console and daemon logs")
    assert line in render_causes(diagnosis)
    assert diagnosis_from_dict(diagnosis.to_dict()) == diagnosis


def test_with_server_events_nothing_is_said() -> None:
    boot = Boot()
    boot.hit(0.2, "rom", "iPXE initialising devices")
    diagnosis = diagnose(boot.evidence("rom_dhcp", "t", 20.0))
    assert EvidenceClass.SERVER_EVENTS in diagnosis.had
    assert diagnosis.evidence_line() == "" and "evidence:" not in diagnosis.render()
