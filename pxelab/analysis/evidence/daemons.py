"""Third-party daemons' logs as evidence: ``<artifacts>/daemons/<type>.log``.

A lab whose boot server is a real daemon (pxelab.daemons: dnsmasq, Kea, ISC dhcpd,
radvd, tftpd-hpa, nginx) has no boot-server events; what the daemon logged is the
nearest thing to them ("DHCPDISCOVER from 52:54:00:12:34:56 via br0: configured
min-secs value (2) is greater than secs field (0).  message dropped."). Each log is
kept as lines a rule may cite: everything but the start-up chatter every run writes,
the last :data:`MAX_DAEMON_LINES` of each daemon.

Time stamps differ by daemon and by how it was told to log: Kea, nginx and syslog
style lines carry one (local time unless the stamp says otherwise); ISC dhcpd in the
foreground (``-d``) writes none. A line without a stamp takes the time of the packet
it names on the wire (dhcpd's "DHCPDISCOVER from <mac>" is the n-th DISCOVER of that
MAC in the capture), else that of the line before it, else of the next one, else
the log file's modification time.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from datetime import datetime
from pathlib import Path

from pxelab.analysis.evidence.daemonlog import GANESHA_LOG, MAX_DAEMON_LINES, read_ganesha_log
from pxelab.analysis.evidence.model import PacketRecord
from pxelab.machine.firmware_log import LogLine

DAEMONS_DIR = "daemons"  # under a boot's artifacts: <type>.log, <type>.conf (pxelab.daemons)

# Lines every healthy run of a daemon writes: banners, the config echoed back, the
# sockets it opened. What is left may explain a failure.
_DHCPD_CHATTER = (r"^(?:Internet Systems Consortium|Copyright|All rights reserved|For info, "
                  r"please visit|Config file:|Database file:|PID file:|Wrote \d+ .*leases|"
                  r"Listening on|Sending on|Server starting service|Bound to \*:|$)")
CHATTER: dict[str, re.Pattern[str]] = {
    "dhcpd": re.compile(_DHCPD_CHATTER),
    "dhcpd6": re.compile(_DHCPD_CHATTER),
    "dnsmasq": re.compile(r"(?:started, version|compile time options|DHCP, IP range|"
                          r"DHCP, proxy on|DHCPv6, IP range|router advertisement on|"
                          r"TFTP root is|reading /etc/|using nameserver|read /etc/hosts|"
                          r"cleared cache|DNS service limited|no servers found)"),
    "kea-dhcp4": re.compile(r"\b(?:DHCPSRV_CFGMGR_\w+|DHCP4_STARTED|DHCP4_STARTING|"
                            r"DHCP4_CONFIG_\w+|DHCPSRV_MEMFILE_\w+|DHCP4_DB_\w+|"
                            r"DHCP4_OPEN_SOCKET\w*|DHCPSRV_\w*TIMER\w*|DCTL_\w+|"
                            r"COMMAND_\w+|HOOKS_\w+|LOGIMPL_\w+)\b"),
    "kea-dhcp6": re.compile(r"\b(?:DHCPSRV_CFGMGR_\w+|DHCP6_STARTED|DHCP6_STARTING|"
                            r"DHCP6_CONFIG_\w+|DHCPSRV_MEMFILE_\w+|DHCP6_DB_\w+|"
                            r"DHCP6_OPEN_SOCKET\w*|DHCP6_USING_SERVERID|DHCPSRV_\w*TIMER\w*|"
                            r"DCTL_\w+|COMMAND_\w+|HOOKS_\w+|LOGIMPL_\w+)\b"),
    "radvd": re.compile(r"(?:version \S+ started|radvd startup|^$)"),
    "tftpd-hpa": re.compile(r"^$"),
    "nginx": re.compile(r"\[notice\]"),
}

# Leading time stamps, tried in order: (pattern with the stamp as "stamp", strptime form
# or "iso"). The rest of the line follows the stamp.
_STAMPS: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"^\[?(?P<stamp>\d{10}(?:\.\d+)?)\]?\s+"), "epoch"),
    (re.compile(r"^(?P<stamp>\d{4}-\d\d-\d\d[T ]\d\d:\d\d:\d\d(?:[.,]\d+)?"
                r"(?:Z|[+-]\d\d:?\d\d)?)\s+"), "iso"),
    (re.compile(r"^(?P<stamp>\d{4}/\d\d/\d\d \d\d:\d\d:\d\d)\s+"), "%Y/%m/%d %H:%M:%S"),
    (re.compile(r"^(?P<stamp>[A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d)\s+"), "syslog"),
)
# nginx's access log puts its stamp inside the line: [07/Dec/2026:02:50:41 +0000].
_ACCESS_STAMP = re.compile(r"\[(?P<stamp>\d\d/[A-Z][a-z]{2}/\d{4}:\d\d:\d\d:\d\d [+-]\d{4})\]")

# ISC dhcpd's lines that name one DHCPv4 message of a client (server/dhcp.c log_info):
# "DHCPDISCOVER from <mac> via br0", "DHCPOFFER on <ip> to <mac> via br0", ...
_DHCPD_MESSAGE = re.compile(
    r"^DHCP(?P<kind>DISCOVER|OFFER|REQUEST|ACK|NAK|DECLINE|RELEASE|INFORM)\b.*?"
    r"(?P<mac>[0-9a-f]{2}(?::[0-9a-f]{2}){5})")


def read_daemon_logs(artifacts: Path, packets: Sequence[PacketRecord] = (),
                     notes: list[str] | None = None) -> tuple[LogLine, ...]:
    """The daemon lines worth keeping from a boot's artifacts: ganesha's and those of
    every third-party daemon in ``daemons/``, each on the wall clock."""
    found = list(read_ganesha_log(artifacts / GANESHA_LOG, notes))
    directory = artifacts / DAEMONS_DIR
    for path in sorted(directory.glob("*.log")) if directory.is_dir() else ():
        found += read_daemon_log(path, path.stem, packets, notes)
    return tuple(sorted(found, key=lambda line: line.time))


def read_daemon_log(path: Path, daemon: str, packets: Sequence[PacketRecord] = (),
                    notes: list[str] | None = None) -> tuple[LogLine, ...]:
    """The lines of ``daemon``'s log at ``path`` worth keeping; () if it cannot be read."""
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
        mtime = path.stat().st_mtime
    except OSError:
        return ()
    chatter = CHATTER.get(daemon)
    year = datetime.fromtimestamp(mtime).year
    stamped = [stamp_line(raw.rstrip(), year) for raw in text.splitlines()]
    kept = [(at, line) for at, line in stamped
            if line.strip() and (chatter is None or not chatter.search(line))]
    times = _place(kept, packets if daemon in ("dhcpd", "dnsmasq") else (), mtime)
    lines = [LogLine(at, line, daemon) for at, (_, line) in zip(times, kept, strict=True)]
    if len(lines) > MAX_DAEMON_LINES and notes is not None:
        notes.append(f"{daemon} log: {len(lines)} lines worth keeping, the evidence keeps the "
                     f"last {MAX_DAEMON_LINES} (all are in {DAEMONS_DIR}/{path.name})")
    return tuple(lines[-MAX_DAEMON_LINES:])


def stamp_line(line: str, year: int) -> tuple[float | None, str]:
    """A log line's time on the wall clock (None: it has no stamp) and its text without
    the leading stamp. ``year``: for syslog stamps, which have none."""
    for pattern, form in _STAMPS:
        found = pattern.match(line)
        if found is None:
            continue
        at = _parse(found["stamp"], form, year)
        if at is not None:
            return at, line[found.end():]
    inside = _ACCESS_STAMP.search(line)
    if inside is not None:
        return _parse(inside["stamp"], "%d/%b/%Y:%H:%M:%S %z", year), line
    return None, line


def _parse(stamp: str, form: str, year: int) -> float | None:
    try:
        if form == "epoch":
            return float(stamp)
        if form == "iso":
            return datetime.fromisoformat(stamp.replace(",", ".")).timestamp()
        if form == "syslog":
            return datetime.strptime(f"{year} {stamp}", "%Y %b %d %H:%M:%S").timestamp()
        return datetime.strptime(stamp, form).timestamp()
    except ValueError:
        return None


def _place(lines: Sequence[tuple[float | None, str]], packets: Iterable[PacketRecord],
           fallback: float) -> list[float]:
    """Times for ``lines``: their stamps; a dhcpd line naming a client's message takes
    the time of that message on the wire; the others that of a neighbour."""
    pending: dict[tuple[str, str], list[float]] = {}
    for packet in sorted(packets, key=lambda p: p.time):
        if packet.proto == "dhcp4" and packet.client:
            pending.setdefault((packet.kind, packet.client), []).append(packet.time)
    known: list[float | None] = []
    for stamp, line in lines:
        message = _DHCPD_MESSAGE.match(line) if stamp is None else None
        if message is None:
            known.append(stamp)
            continue
        queue = pending.get((message["kind"].lower(), message["mac"]), [])
        known.append(queue.pop(0) if queue else None)
    return _fill(known, fallback)


def _fill(known: Sequence[float | None], fallback: float) -> list[float]:
    """Each None replaced by the time before it, else the one after it, else ``fallback``."""
    filled: list[float] = []
    last: float | None = None
    for at in known:
        last = at if at is not None else last
        filled.append(last if last is not None else float("nan"))
    ahead: float | None = None
    for index in range(len(filled) - 1, -1, -1):
        if known[index] is not None:
            ahead = known[index]
        if filled[index] != filled[index]:  # NaN: nothing before it
            filled[index] = ahead if ahead is not None else fallback
    return filled


# Settings of a daemon's configuration that rules read: "<daemon>.<name>" -> (the daemon,
# the pattern whose group "value" is the setting). ISC dhcpd's min-secs is a uint8
# (server/stables.c), compared with the DISCOVER's secs (server/dhcp.c, ack_lease).
SETTINGS: dict[str, tuple[str, re.Pattern[str]]] = {
    "dhcpd.min-secs": ("dhcpd", re.compile(
        r"(?m)^\s*(?:option\s+)?min-secs\s+(?P<value>\d+)\s*;")),
}


def daemons_of(artifacts: Path) -> tuple[str, ...]:
    """The third-party daemons a boot ran with: the types that left a log or a config."""
    directory = artifacts / DAEMONS_DIR
    if not directory.is_dir():
        return ()
    return tuple(sorted({path.stem for path in directory.iterdir()
                         if path.suffix in (".log", ".conf")}))


def daemon_settings(artifacts: Path) -> dict[str, str]:
    """The :data:`SETTINGS` the daemons' configurations set ("dhcpd.min-secs": "2")."""
    found = {name: daemon_setting(artifacts, daemon, pattern)
             for name, (daemon, pattern) in SETTINGS.items()}
    return {name: value for name, value in found.items() if value}


def daemon_setting(artifacts: Path, daemon: str, pattern: re.Pattern[str]) -> str:
    """The first value ``pattern`` (group "value") finds in ``daemons/<daemon>.conf``, the
    configuration the daemon ran with ("" if none or no such file)."""
    try:
        text = (artifacts / DAEMONS_DIR / f"{daemon}.conf").read_text(encoding="utf-8",
                                                                      errors="replace")
    except OSError:
        return ""
    uncommented = "\n".join(line.split("#", 1)[0] for line in text.splitlines())
    found = pattern.search(uncommented)
    return found["value"] if found else ""
