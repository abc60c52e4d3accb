"""request.unanswered, request.refused and the nfs.* rules, on synthetic evidence.

The packets and guest lines are those of real boots (issue 14, legacy_pxe_ipv4 and
uefi_http_ipv4 with the NFS side broken in a script: ganesha not started, an export
path typo, Access_Type None, SecType krb5, NFSv3 only, Minor_Versions 1-2, a server
address nobody has, a boot URL on port 8080). Every failure is also diagnosed with
the server's events stripped: the rules must find it from the packets and the guest.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

import pytest
from test_diagnosis import (
    IP,
    MAC,
    NORMAL_BOOTS,
    SERVER,
    SERVER6,
    T0,
    Boot,
    fired,
    legacy_boot,
    linux_stages,
    only,
)

from pxelab.analysis.diagnosis import diagnose, files, nfs, requests, transfers
from pxelab.analysis.evidence import Evidence, LogLine, PacketRecord

pytestmark = pytest.mark.unit

EXPORT = f"{SERVER}:/pxelab"
GAVE_UP = "the initramfs gave up (console: {line!r})"
MOUNT_LINE = ("pxelab-init: FAILED nfs: mount -t nfs4 -o addr=192.0.2.1,proto=tcp,sec=sys "
              "{source} /newroot: mount: {why}")
NOENT_WHY = "mounting {source} on /newroot failed: No such file or directory"
REFUSED_LINE = ("pxelab-init: FAILED nfs: cannot connect to {host} port 2049 (twice, 4 s "
                "each): nc: {why}")


def record(boot: Boot, at: float, proto: str, kind: str, src: str,  # noqa: PLR0917
           dst: str, summary: str, **fields: Any) -> PacketRecord:
    packet = PacketRecord(T0 + at, proto, kind, src, dst, summary, MAC, fields)
    boot.packets.append(packet)
    return packet


def connect(boot: Boot, at: float, server: str, outcome: str, *, port: int = 700,
            service: str = "nfs", syns: int = 1, closed: str = "") -> PacketRecord:
    return record(boot, at, "tcp", "connect", f"{IP}:{port}", server,
                  f"TCP connect {IP}:{port} -> {server} ({service}): {outcome}",
                  port=int(server.rsplit(":", 1)[1]), service=service, syns=syns,
                  outcome=outcome, closed=closed, answer_time=None, first_time=T0 + at,
                  last_time=T0 + at, bytes_to_server=0, bytes_from_server=0)


def nfs_error(boot: Boot, at: float, error: str, *, status: int | None = None,
              lookups: tuple[str, ...] = ("pxelab",), minor: int | None = 0,
              mismatch: list[int] | None = None, accept_stat: int = 0) -> PacketRecord:
    asked = (f"NFSv4.{minor} COMPOUND PUTFH " + " ".join(f"LOOKUP {n}" for n in lookups)
             if minor is not None else "NFSv4 procedure 0")
    return record(boot, at, "nfs", "error", f"{SERVER}:2049", f"{IP}:844",
                  f"{SERVER}:2049 answered {asked} GETFH GETATTR: {error}", xid=0x10,
                  program=100003, version=4, procedure=1 if minor is not None else 0,
                  minorversion=minor, ops=["PUTFH", "LOOKUP", "GETFH", "GETATTR"],
                  lookups=list(lookups), accept_stat=accept_stat, reject_stat=None,
                  mismatch=mismatch, status=status,
                  status_name=error if status else "", error=error, port=2049)


def nfs_boot(**facts: Any) -> Boot:
    """legacy_pxe_ipv4 up to its initramfs's DHCP; the NFS root is what fails."""
    return legacy_boot(until="nfs_root", **({"nfs_export": EXPORT} | facts))


def failed(boot: Boot, line: str | None, at: float = 12.0) -> Evidence:
    """The boot failed at nfs_root on ``line`` (None: on the stage's timeout)."""
    if line is None:
        return boot.evidence("nfs_root", "no nfs_root within 30s of the previous milestone",
                             at)
    return boot.evidence("nfs_root", GAVE_UP.format(line=line), at, line)


def packets_only(evidence: Evidence) -> Evidence:
    return replace(evidence, events=())


def without_guest_line(evidence: Evidence) -> Evidence:
    timeline = replace(evidence.timeline, failure="no nfs_root within 30s", console_tail="")
    return replace(evidence, timeline=timeline)


# -- the NFS failures of the real boots ----------------------------------------------------------

def typo() -> Evidence:
    boot = nfs_boot()
    nfs_error(boot, 11.9, "NFS4ERR_NOENT", status=2, lookups=("pxelab-typo",))
    source = f"{SERVER}:/pxelab-typo"
    return failed(boot, MOUNT_LINE.format(source=source, why=NOENT_WHY.format(source=source)))


def hidden() -> Evidence:
    boot = nfs_boot()  # Access_Type = None: ganesha leaves the export out for this client
    nfs_error(boot, 11.9, "NFS4ERR_NOENT", status=2)
    return failed(boot, MOUNT_LINE.format(source=EXPORT, why=NOENT_WHY.format(source=EXPORT)))


def wrongsec() -> Evidence:
    boot = nfs_boot()
    nfs_error(boot, 11.9, "NFS4ERR_WRONGSEC", status=10016)
    return failed(boot, MOUNT_LINE.format(source=EXPORT, why="permission denied (are you "
                                          "root?)"))


def nfs3_only() -> Evidence:
    boot = nfs_boot()
    nfs_error(boot, 11.9, "PROG_MISMATCH (the server has versions 3..3)", minor=None,
              mismatch=[3, 3], accept_stat=2)
    return failed(boot, MOUNT_LINE.format(source=EXPORT, why=f"mounting {EXPORT} on /newroot "
                                          "failed: Protocol not supported"))


def minor_versions() -> Evidence:
    boot = nfs_boot()
    nfs_error(boot, 11.9, "NFS4ERR_MINOR_VERS_MISMATCH", status=10021, lookups=())
    return failed(boot, MOUNT_LINE.format(source=EXPORT, why=f"mounting {EXPORT} on /newroot "
                                          "failed: Protocol not supported"))


def server_down() -> Evidence:
    boot = nfs_boot()
    connect(boot, 11.0, f"{SERVER}:2049", "refused", port=37538)
    connect(boot, 11.1, f"{SERVER}:2049", "refused", port=37542)
    return failed(boot, REFUSED_LINE.format(
        host=SERVER, why=f"can't connect to remote host ({SERVER}): Connection refused"))


def nobody_there() -> Evidence:
    boot = nfs_boot()
    for n in range(6):
        record(boot, 8.0 + n, "arp", "request", IP, "192.0.2.9",
               f"ARP who-has 192.0.2.9 tell {IP}", sender_mac=MAC, sender_ip=IP,
               target_ip="192.0.2.9")
    record(boot, 9.1, "arp", "request", IP, SERVER, f"ARP who-has {SERVER} tell {IP}",
           sender_mac=MAC, sender_ip=IP, target_ip=SERVER)  # the kernel's own refresh
    record(boot, 9.11, "arp", "reply", SERVER, IP, f"ARP {SERVER} is-at 02:00:00:00:00:01",
           sender_mac="02:00:00:00:00:01", sender_ip=SERVER, target_ip=IP)
    return failed(boot, REFUSED_LINE.format(host="192.0.2.9", why="timed out"))


def nobody_there6() -> Evidence:
    boot = nfs_boot(nfs_export=f"[{SERVER6}]:/pxelab")
    guest6 = "2001:db8::5054:ff:fe12:3456"
    for n in range(3):
        record(boot, 8.0 + n, "ra", "ns", guest6, "ff02::1:ff00:9",
               "NS who-has 2001:db8::9", target="2001:db8::9")
    return failed(boot, REFUSED_LINE.format(host="2001:db8::9", why="timed out"))


NFS_CASES: dict[str, tuple[Callable[[], Evidence], str]] = {
    "typo": (typo, "nfs.export_not_found"),
    "hidden": (hidden, "nfs.permission_denied"),
    "wrongsec": (wrongsec, "nfs.permission_denied"),
    "nfs3_only": (nfs3_only, "nfs.version_mismatch"),
    "minor_versions": (minor_versions, "nfs.version_mismatch"),
    "server_down": (server_down, "nfs.no_server"),
    "nobody_there": (nobody_there, "nfs.no_server"),
    "nobody_there6": (nobody_there6, "nfs.no_server"),
}


def test_an_export_path_typo_names_both_paths() -> None:
    cause = only(nfs.export_not_found, typo(), "nfs.export_not_found")
    assert f"no export {SERVER}:/pxelab-typo" in cause.summary
    assert "LOOKUP pxelab-typo GETFH GETATTR: NFS4ERR_NOENT" in cause.summary
    assert f"exports {EXPORT}" in cause.summary
    assert "'No such file or directory'" in cause.summary
    assert "nfsroot=" in cause.fix


def test_noent_for_the_exported_path_itself_is_a_refused_client() -> None:
    evidence = hidden()
    assert nfs.export_not_found(evidence) is None
    cause = only(nfs.permission_denied, evidence, "nfs.permission_denied")
    assert f"the lab exports {EXPORT}, the very path the guest mounts" in cause.summary
    assert "Access_Type" in cause.fix


def test_wrongsec_and_busyboxs_permission_line() -> None:
    cause = only(nfs.permission_denied, wrongsec(), "nfs.permission_denied")
    assert "NFS4ERR_WRONGSEC" in cause.summary and "are you root?" in cause.summary


@pytest.mark.parametrize(("make", "text"), [
    (nfs3_only, "NFSv4 refused: PROG_MISMATCH (the server has versions 3..3)"),
    (minor_versions, "NFSv4.0 refused: NFS4ERR_MINOR_VERS_MISMATCH")])
def test_version_mismatch(make: Callable[[], Evidence], text: str) -> None:
    cause = only(nfs.version_mismatch, make(), "nfs.version_mismatch")
    assert text in cause.summary and "'Protocol not supported'" in cause.summary


def test_no_server_refused_names_the_port() -> None:
    evidence = server_down()
    cause = only(nfs.no_server, evidence, "nfs.no_server")
    assert f"nothing listens on {SERVER}:2049: 2 connections refused" in cause.summary
    assert requests.refused(evidence) is None  # the NFS rule explains it


def test_no_server_when_nobody_has_the_address() -> None:
    evidence = nobody_there()
    cause = only(nfs.no_server, evidence, "nfs.no_server")
    assert "no host answers for 192.0.2.9 (ARP who-has 192.0.2.9 sent 6 times)" in cause.summary
    assert requests.unanswered(evidence) is None


@pytest.mark.parametrize("name", sorted(NFS_CASES))
def test_each_nfs_failure_is_named_first_with_and_without_events(name: str) -> None:
    make, code = NFS_CASES[name]
    evidence = make()
    assert diagnose(evidence).codes[0] == code
    assert diagnose(packets_only(evidence)).codes[0] == code


@pytest.mark.parametrize("name", sorted(NFS_CASES))
def test_each_nfs_failure_from_the_capture_alone_says_so(name: str) -> None:
    make, code = NFS_CASES[name]
    cause = diagnose(without_guest_line(packets_only(make()))).cause
    assert cause is not None and cause.code == code
    assert "from the capture alone" in cause.summary


@pytest.mark.parametrize("name", ["typo", "wrongsec", "nfs3_only", "server_down"])
def test_each_nfs_failure_from_the_guest_line_alone_says_so(name: str) -> None:
    make, code = NFS_CASES[name]
    evidence = make()
    cause = diagnose(replace(evidence, events=(), packets=())).cause
    assert cause is not None and cause.code == code
    assert "from the guest's line alone" in cause.summary


def test_noent_after_the_root_was_mounted_is_no_nfs_cause() -> None:
    boot = nfs_boot()
    linux_stages(boot, 4.37, dhcp=False)  # nfs_root and userspace came
    nfs_error(boot, 9.0, "NFS4ERR_NOENT", status=2, lookups=("tomoyo-init",))
    nfs_error(boot, 9.1, "NFS4ERR_NOENT", status=2, lookups=("log",))
    evidence = boot.evidence("poweroff", "timeout", 40.0)
    assert not [c for c in fired(evidence) if c.startswith(("nfs.", "request."))]


# -- requests -------------------------------------------------------------------------------------

def discover(boot: Boot, at: float, xid: int = 0x1234) -> PacketRecord:
    return record(boot, at, "dhcp4", "discover", "0.0.0.0", "255.255.255.255",
                  f"DISCOVER {MAC} secs={int(at)}", xid=xid, secs=int(at))


def test_dhcp_discovers_nobody_answers() -> None:
    boot = Boot("legacy_pxe_ipv4", firmware="seabios")
    boot.hit(0.2, "rom", "iPXE initialising devices")
    for at in (1.0, 2.0, 4.0, 8.0):
        discover(boot, at)
    evidence = boot.evidence("rom_dhcp", "No configuration methods succeeded", 20.0)
    cause = only(requests.unanswered, evidence, "request.unanswered")
    assert f"{MAC} sent DHCPv4 DISCOVER 4 times and got no answer in 7.0s" in cause.summary
    assert "(1.0s to 8.0s after power-on)" in cause.summary
    assert "never reported them" in cause.summary
    assert diagnose(evidence).codes == ("request.unanswered",)
    alone = only(requests.unanswered, packets_only(evidence), "request.unanswered")
    assert "from packets only: no server events or daemon log say" in alone.summary
    assert "min-secs" not in alone.summary  # its secs grew to 8


def test_discovers_whose_secs_stay_0_name_min_secs_as_a_possibility() -> None:
    boot = Boot("legacy_pxe_ipv4", firmware="seabios")
    for at in (1.0, 5.0, 13.0):
        record(boot, at, "dhcp4", "discover", "0.0.0.0", "255.255.255.255",
               f"DISCOVER {MAC} secs=0", xid=0x1234, secs=0)
    alone = only(requests.unanswered, packets_only(boot.evidence("rom_dhcp", "t", 20.0)),
                 "request.unanswered")
    assert "their secs stayed at 0: a server with min-secs (ISC dhcpd)" in alone.summary


def test_ovmf_dhcpv6_requests_after_an_advertise() -> None:
    boot = Boot("uefi_http_ipv6", firmware="ovmf")
    client, server = "[fe80::5054:ff:fe12:3456]:546", "[ff02::1:2]:547"
    record(boot, 3.2, "dhcp6", "solicit", client, server, "SOLICIT xid=0x000001", xid=1)
    record(boot, 3.21, "dhcp6", "advertise", "[fe80::1]:547", client, "ADVERTISE", xid=1)
    for n in range(6):
        record(boot, 4.2 + 6 * n, "dhcp6", "request", client, server, "REQUEST xid=0x000002",
               xid=2)
    evidence = packets_only(boot.evidence("fw_dhcp", "timeout", 60.0))
    cause = only(requests.unanswered, evidence, "request.unanswered")
    assert "sent DHCPv6 Request (xid 0x2) 6 times" in cause.summary
    assert "RFC 8415" in cause.fix
    assert diagnose(evidence).codes[0] == "request.unanswered"


@pytest.mark.parametrize(("server", "service", "text"), [
    (f"{SERVER}:80", "http", f"no HTTP server listening on {SERVER}:80"),
    (f"{SERVER}:8080", "port 8080", f"nothing listening on {SERVER}:8080"),
    (f"[{SERVER6}]:80", "http", f"no HTTP server listening on [{SERVER6}]:80")])
def test_a_refused_connection_names_the_address(server: str, service: str,
                                                 text: str) -> None:
    boot = Boot("uefi_http_ipv4", firmware="ovmf")
    boot.dhcp4_round(2.0, file=f"http://{SERVER}:8080/ipxe.efi")
    connect(boot, 7.9, server, "refused", port=1176, service=service)
    evidence = boot.evidence("nbp", "OVMF could not get the NBP's size (HEAD) from the HTTP "
                             "server (console: 'Error: Could not retrieve NBP file size "
                             "from HTTP server.')", 7.91)
    cause = only(requests.refused, evidence, "request.refused")
    assert text in cause.summary and "answered by reset (RST)" in cause.summary
    assert diagnose(packets_only(evidence)).codes == ("request.refused",)


def test_an_rrq_answered_by_port_unreachable_is_refused() -> None:
    boot = Boot("legacy_pxe_ipv4", firmware="seabios")
    for n in range(2):
        record(boot, 1.0 + n, "tftp", "rrq", f"{IP}:49152", f"{SERVER}:69", "RRQ pxelinux.0",
               file="pxelinux.0", options={})
        record(boot, 1.001 + n, "icmp", "unreachable", SERVER, IP,
               f"ICMP port unreachable from {SERVER} for udp {IP}:49152 -> {SERVER}:69",
               code=3, reason="port unreachable", quoted_proto="udp",
               quoted_src=f"{IP}:49152", quoted_dst=f"{SERVER}:69", port=69)
    evidence = boot.evidence("nbp", "timeout", 20.0)
    cause = only(requests.refused, evidence, "request.refused")
    assert f"no TFTP server listening on {SERVER}:69: {IP}'s TFTP RRQ for pxelinux.0 (2 times)" \
        in cause.summary


def test_syns_nobody_answers() -> None:
    boot = Boot("uefi_http_ipv4", firmware="ovmf")
    connect(boot, 7.0, f"{SERVER}:80", "unanswered", service="http", syns=3)
    connect(boot, 15.0, f"{SERVER}:80", "unanswered", port=701, service="http", syns=3)
    evidence = boot.evidence("nbp", "timeout", 30.0)
    cause = only(requests.unanswered, evidence, "request.unanswered")
    assert f"sent TCP SYN to {SERVER}:80 (http) 6 times in 2 connection attempts" \
        in cause.summary


# -- near misses ---------------------------------------------------------------------------------

def _busy(boot: Boot) -> Boot:
    """What healthy boots also show: a keep-alive closed by the server with RST after its
    last response, the NFS mount, and NFS4ERR_NOENT lookups once userspace runs."""
    end = max(h.seconds for h in boot.hits)
    connect(boot, 2.0, f"{SERVER}:80", "accepted", port=1084, service="http",
            closed="server_rst")
    connect(boot, end - 0.5, f"{SERVER}:2049", "accepted", port=844, closed="fin")
    nfs_error(boot, end + 0.1, "NFS4ERR_NOENT", status=2, lookups=("tomoyo-init",))
    return boot


@pytest.mark.parametrize("name", sorted(NORMAL_BOOTS))
def test_the_new_rules_are_quiet_on_busy_healthy_boots(name: str) -> None:
    boot = NORMAL_BOOTS[name]()
    if name == "uefi_http_ipxe":
        linux_stages(boot, 5.0)
    evidence = _busy(boot).evidence()
    assert fired(evidence) == []


def test_the_new_rules_are_quiet_on_a_healthy_capture_without_events() -> None:
    # From the wire alone: min-secs (the first DISCOVER withheld, the retry answered),
    # OVMF's TFTP size probe (OACK, then the client's ERROR 8), a keep-alive reset.
    boot = Boot("uefi_tftp_ipv4", firmware="ovmf", nfs_export=EXPORT)
    discover(boot, 1.0)
    discover(boot, 3.0)
    record(boot, 3.01, "dhcp4", "offer", SERVER, IP, "OFFER", xid=0x1234)
    record(boot, 3.05, "dhcp4", "request", "0.0.0.0", "255.255.255.255", "REQUEST",
           xid=0x1234)
    record(boot, 3.06, "dhcp4", "ack", SERVER, IP, "ACK", xid=0x1234)
    for at, server_port in ((4.3, 50001), (4.31, 50002)):
        record(boot, at, "tftp", "rrq", f"{IP}:1500", f"{SERVER}:69", "RRQ syslinux.efi",
               file="syslinux.efi", options={"tsize": "0"})
        record(boot, at + 0.001, "tftp", "oack", f"{SERVER}:{server_port}", f"{IP}:1500",
               "OACK syslinux.efi", file="syslinux.efi", options={"tsize": "171456"})
    record(boot, 4.302, "tftp", "error", f"{IP}:1500", f"{SERVER}:50001",
           summary="ERROR 8 (client)", code=8, message="User aborted the transfer",
           file="syslinux.efi", from_client=True)
    record(boot, 4.32, "tftp", "transfer", f"{SERVER}:50002", f"{IP}:1500", "TFTP syslinux",
           file="syslinux.efi", complete=True, blksize=1468, bytes=171456)
    boot.hit(4.4, "nbp", "  NBP file downloaded successfully.")
    linux_stages(boot, 9.5, dhcp=False)
    _busy(boot)
    evidence = boot.evidence("poweroff", "timeout", 40.0)
    assert not [c for c in fired(evidence) if c.startswith(("nfs.", "request."))]


def test_dhcpv6_requests_the_server_heard_and_never_answered() -> None:
    # With the server's events: it reports each Request on arrival; its Replies are
    # dropped. Detection needs no fault event; the wording names it when there is one.
    boot = Boot("uefi_http_ipv6", firmware="ovmf")
    client, server = "[fe80::5054:ff:fe12:3456]:546", "[ff02::1:2]:547"
    boot.dhcp6(3.2, "solicit", "solicit", xid=1)
    boot.dhcp6(3.21, "advertise", "solicit", xid=1, answered=True)
    for n in range(6):
        record(boot, 4.2 + 6 * n, "dhcp6", "request", client, server, "REQUEST", xid=2)
        boot.dhcp6(4.201 + 6 * n, "request", "request", xid=2)
        boot.event(4.202 + 6 * n, "fault", "injected", client=MAC, request=f"dhcp6.reply #{n}",
                   reason="drop dhcp6.reply", fault="DropPacket")
    evidence = boot.evidence("fw_dhcp", "timeout", 60.0)
    cause = only(requests.unanswered, evidence, "request.unanswered")
    assert "DHCPv6 Request (xid 0x2) 6 times" in cause.summary
    assert "fault: drop dhcp6.reply" in cause.summary
    stripped = replace(evidence, events=tuple(e for e in evidence.events if e.source != "fault"))
    cause = only(requests.unanswered, stripped, "request.unanswered")
    assert "the server reported receiving them (6 events) and sent no answer" in cause.summary
    assert diagnose(stripped).codes[0] == "request.unanswered"


def test_ovmfs_designed_http4_404_is_not_where_the_boot_stopped() -> None:
    # uefi_http_ipv6: HTTPv4 gets a 404 on purpose, then HTTPv6's DHCPv6 Requests go
    # unanswered. The boot stopped on those, not on the boot file HTTPv4 was refused.
    boot = Boot("uefi_http_ipv6", firmware="ovmf")
    boot.dhcp4_round(2.0, file=f"http://{SERVER}/no-http-boot-over-ipv4.efi")
    boot.http(2.5, "/no-http-boot-over-ipv4.efi", 404, method="head", client=IP)
    boot.hit(3.0, "fw_http4_skip", 'BdsDxe: failed to load Boot0003 "UEFI HTTPv4"')
    boot.dhcp6(3.2, "solicit", "solicit", xid=1)
    boot.dhcp6(3.21, "advertise", "solicit", xid=1, answered=True)
    client, server = "[fe80::5054:ff:fe12:3456]:546", "[ff02::1:2]:547"
    for n in range(6):
        record(boot, 4.2 + 6 * n, "dhcp6", "request", client, server, "REQUEST", xid=2)
        boot.dhcp6(4.201 + 6 * n, "request", "request", xid=2)
    evidence = boot.evidence("fw_dhcp", "timeout", 68.0)
    assert files.nbp_not_found(evidence) is None
    assert diagnose(evidence).codes[0] == "request.unanswered"


def test_router_solicitations_nobody_answers() -> None:
    # The initramfs waits for SLAAC: RSs from the guest's link-local address, no RA.
    boot = legacy_boot(until="initramfs_dhcp")
    for n in range(3):
        record(boot, 6.0 + 4 * n, "ra", "rs", "fe80::5054:ff:fe12:3456", "ff02::2",
               "RS from fe80::5054:ff:fe12:3456")
    evidence = packets_only(boot.evidence("initramfs_ipv6", "timeout", 30.0))
    cause = only(requests.unanswered, evidence, "request.unanswered")
    assert f"{MAC} sent RS (router solicitation) 3 times" in cause.summary
    assert "router advertisements" in cause.fix


@pytest.mark.parametrize(("method", "body", "acked", "short"), [
    ("GET", 500, 0, True), ("HEAD", 0, 0, False), ("GET", 500, 1000, False)])
def test_a_short_body_on_the_wire_needs_a_get_the_client_did_not_acknowledge(
        method: str, body: int, acked: int, short: bool) -> None:
    # Packets only: HEAD answers carry the length of a body they leave out, and a capture
    # that lost segments shows fewer body bytes than the client acknowledged.
    boot = Boot("uefi_http_ipv4", firmware="ovmf")
    record(boot, 3.0, "http", "response", f"{SERVER}:80", f"{IP}:1424", "HTTP 200 OK",
           status=200, length=1000, path="/snponly.efi", method=method, reason="OK",
           body_bytes=body, body_acked=acked)
    evidence = packets_only(boot.evidence("nbp", "timeout", 20.0))
    assert (transfers.short(evidence) is not None) == short


# -- ganesha's log (pxelab.machine.nfs.LOG_BLOCK: NFS_V4 and EXPORT at INFO) ------------------
# Its lines from the same real boots, as pxelab.analysis.evidence.daemonlog keeps them.
ACCESS = "NFS4 INFO: Access not allowed on Export_Id 1 /pxelab for client ::ffff:192.0.2.100"
AUTH_UNIX = "EXPORT INFO: Export /pxelab does not support AUTH_UNIX"
AUTH = ("NFS4 INFO: NFS4 auth not allowed on Export_Id 1 /pxelab for client "
        "::ffff:192.0.2.100")
MINOR = "NFS4 INFO: Unsupported minor version 0"
NOENT_DEBUG = ("NFS4 DEBUG: Status of OP_LOOKUP in position 1 = NFS4ERR_NOENT, op response "
               "size is 4 total response size is 48")


def ganesha(evidence: Evidence, *texts: str, at: float = 11.9) -> Evidence:
    """``evidence`` with ganesha's lines logged ``at`` seconds after power-on."""
    lines = tuple(LogLine(T0 + at, text, "ganesha") for text in texts)
    return replace(evidence, daemon_log=evidence.daemon_log + lines)


GANESHA_CASES: dict[str, tuple[Callable[[], Evidence], tuple[str, ...], str, str]] = {
    "hidden": (hidden, (ACCESS,), "nfs.permission_denied",
               "ganesha: 'Access not allowed on Export_Id 1 /pxelab for client "
               "::ffff:192.0.2.100' (it answers NFS4ERR_NOENT"),
    "wrongsec": (wrongsec, (AUTH_UNIX, AUTH), "nfs.permission_denied",
                 "ganesha: 'Export /pxelab does not support AUTH_UNIX' (the export wants "
                 "another security flavour"),
    "minor_versions": (minor_versions, (MINOR,), "nfs.version_mismatch",
                       "ganesha: 'Unsupported minor version 0' (NFSv4.0 refused: "
                       "NFS4ERR_MINOR_VERS_MISMATCH)"),
    "typo": (typo, (NOENT_DEBUG,), "nfs.export_not_found",
             "; ganesha: 'Status of OP_LOOKUP in position 1 = NFS4ERR_NOENT"),
}


@pytest.mark.parametrize("name", sorted(GANESHA_CASES))
def test_each_nfs_cause_cites_ganeshas_line(name: str) -> None:
    make, texts, code, said = GANESHA_CASES[name]
    evidence = ganesha(make(), *texts)
    cause = diagnose(evidence).cause
    assert cause is not None and cause.code == code
    assert said in cause.summary
    assert any(f"daemon   ganesha                {texts[0]}" in line for line in cause.evidence)
    without = diagnose(make()).cause  # and without the log, as before
    assert without is not None and without.code == code and "ganesha:" not in without.summary


@pytest.mark.parametrize("name", ["hidden", "wrongsec", "minor_versions"])
def test_ganeshas_line_alone_names_the_cause(name: str) -> None:
    make, texts, code, said = GANESHA_CASES[name]
    evidence = ganesha(without_guest_line(replace(make(), events=(), packets=())), *texts)
    cause = diagnose(evidence).cause
    assert cause is not None and cause.code == code
    assert said.split(" (")[0] in cause.summary


def test_a_refused_client_mounting_below_the_export_is_no_missing_export() -> None:
    # NOENT for /pxelab/sub: not the exported path itself, so only ganesha's line tells
    # that the export is hidden from this client rather than absent.
    boot = nfs_boot()
    nfs_error(boot, 11.9, "NFS4ERR_NOENT", status=2, lookups=("pxelab", "sub"))
    source = f"{SERVER}:/pxelab/sub"
    evidence = failed(boot, MOUNT_LINE.format(source=source,
                                              why=NOENT_WHY.format(source=source)))
    assert diagnose(evidence).codes[0] == "nfs.export_not_found"
    logged = ganesha(evidence, ACCESS)
    assert nfs.export_not_found(logged) is None
    assert diagnose(logged).codes[0] == "nfs.permission_denied"


def test_an_export_without_nfsv4_is_a_version_cause() -> None:
    line = "NFS4 INFO: NFS4 not allowed on Export_Id 1 /pxelab for client ::ffff:192.0.2.100"
    evidence = ganesha(hidden(), line)
    assert nfs.permission_denied(evidence) is None
    assert nfs.export_not_found(evidence) is None
    cause = only(nfs.version_mismatch, evidence, "nfs.version_mismatch")
    assert "ganesha: 'NFS4 not allowed on Export_Id 1" in cause.summary


def test_ganeshas_lines_before_power_on_or_after_the_mount_are_ignored() -> None:
    # Before power-on: the lab's own readiness probe. After nfs_root: the guest's
    # userspace, whose refusals are not why the root was not mounted.
    evidence = ganesha(typo(), ACCESS, at=-1.0)
    assert diagnose(evidence).codes[0] == "nfs.export_not_found"
    boot = nfs_boot()
    linux_stages(boot, 4.37, dhcp=False)
    healthy = ganesha(boot.evidence("poweroff", "timeout", 40.0), ACCESS, MINOR, at=9.0)
    assert not [c for c in fired(healthy) if c.startswith("nfs.")]


def test_no_server_cites_a_fatal_line() -> None:
    fatal = "NFS STARTUP FATAL: Could not allocate the export"
    cause = only(nfs.no_server, ganesha(server_down(), fatal, at=10.0), "nfs.no_server")
    assert cause.summary.endswith("; ganesha: 'Could not allocate the export'")
