"""min-secs: a DHCPv4 server that stays silent while the client's ``secs`` is low.

ISC dhcpd's ``min-secs N;`` drops a DISCOVER whose ``secs`` field is below N, so that
a primary server gets the first chance (server/dhcp.c, ack_lease: only for the OFFER a
DISCOVER asks for). It logs each drop at its default level:

    DHCPDISCOVER from 52:54:00:12:34:56 via br0: configured min-secs value (2) is
    greater than secs field (0).  message dropped.

A client that never counts ``secs`` up (Etherboot 5.4, a ROM that sends 0 in every
retransmission) is never answered. pxelab's own server does the same with its policy's
``min_secs`` and says so in a ``withheld`` event ("OFFER withheld: secs=0 <
min_secs=2"). Either way the cause is ``dhcp.withheld_min_secs``: from the server's
events, else from dhcpd's lines and the DISCOVERs on the wire, else from the
``min-secs`` of the dhcpd.conf the lab ran (``BootFacts.daemon_settings``) and the
DISCOVERs' ``secs``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from pxelab.analysis.diagnosis import query as q
from pxelab.analysis.diagnosis.model import Cause
from pxelab.analysis.evidence import Evidence, LogLine, PacketRecord
from pxelab.core.events import Event

CODE = "dhcp.withheld_min_secs"
# pxelab's server (server/policy.py) in its withheld events' reason.
_EVENT = re.compile(r"secs=(?P<secs>\d+) < min_secs=(?P<min>\d+)")
# ISC dhcpd's log line (server/dhcp.c, ack_lease).
DHCPD_LINE = re.compile(r"DHCPDISCOVER from (?P<mac>[0-9a-f:]{17}) .*configured min-secs value "
                        r"\((?P<min>\d+)\) is greater than secs field \((?P<secs>\d+)\)")
DHCPD = "dhcpd"
SETTING = "dhcpd.min-secs"


@dataclass(frozen=True)
class Starved:
    """A client the server left unanswered for its low ``secs``."""

    mac: str
    minimum: int
    secs: tuple[int, ...]  # the values the client sent, sorted, each once
    dropped: Sequence[Event | LogLine | PacketRecord]  # what shows each drop
    who: str  # the server and what it did, as the cause names it: "ISC dhcpd dropped"
    source: str  # where min-secs was read ("" for the server's events)


def withheld_min_secs(evidence: Evidence) -> Cause | None:
    """The DHCPv4 server stayed silent because the client's ``secs`` stayed below its
    min-secs, and never answered the client after."""
    starved = _from_events(evidence) or _from_dhcpd(evidence)
    if starved is None:
        return None
    secs = starved.secs
    shown = ", ".join(map(str, secs)) if secs else "?"
    never = ("never counts secs up" if secs == (0,) else
             f"got only as far as secs={secs[-1]}" if secs else "sent low secs")
    where = f" ({starved.source})" if starved.source else ""
    discovers = _discovers(evidence, starved.mac)
    return Cause(
        CODE, evidence.timeline.failed_stage or "dhcp",
        f"{starved.who} {_count(starved)} {starved.mac} because its secs ({shown}) stayed below "
        f"min_secs={starved.minimum}{where}: it ignores clients that have not been trying "
        f"for {starved.minimum} s, and the client {never}",
        q.lines(evidence, [starved.dropped[0], *starved.dropped[1:2], starved.dropped[-1],
                           *discovers[-1:]]),
        ("set min_secs to 0 (the check off)" if not secs or secs[-1] == 0 else
         f"set min_secs to {secs[-1]} or less") + " in the server's DHCP settings (ISC "
        "dhcpd: remove `min-secs` from dhcpd.conf or lower it, or give this client a host "
        "or class scope without it): some PXE ROMs (Etherboot 5.4) always send secs=0")


def _from_events(evidence: Evidence) -> Starved | None:
    withheld = [e for e in q.events(evidence, "dhcp4", "withheld") if _EVENT.search(e.reason)]
    if not withheld:
        return None
    last = withheld[-1]
    mac = last.client
    if [e for e in q.after(q.events(evidence, "dhcp4", "ack"), last.time) if e.client == mac]:
        return None  # the client counted secs up and was served in the end
    mine = [e for e in withheld if e.client == mac]
    found = [m for e in mine if (m := _EVENT.search(e.reason))]
    return Starved(mac, int(found[-1]["min"]), tuple(sorted({int(m["secs"]) for m in found})),
                   mine, "the DHCP server withheld", "")


def _from_dhcpd(evidence: Evidence) -> Starved | None:
    """ISC dhcpd's drops: its log lines, else its min-secs and the DISCOVERs on the wire;
    None if dhcpd offered the client something after the last."""
    starved = _logged(evidence) or _configured(evidence)
    if starved is None:
        return None
    offered = [p for p in q.after(q.packets(evidence, "dhcp4", "offer", "ack"),
                                  starved.dropped[-1].time) if p.client == starved.mac]
    return None if offered else starved


def _logged(evidence: Evidence) -> Starved | None:
    logged = q.daemon_lines(evidence, DHCPD, DHCPD_LINE)
    found = [m for line in logged if (m := DHCPD_LINE.search(line.text))]
    if not found:
        return None
    mac = found[-1]["mac"]
    mine = [line for line, m in zip(logged, found, strict=True) if m["mac"] == mac]
    secs = {int(m["secs"]) for m in found if m["mac"] == mac}
    secs |= {int(q.field(p, "secs", 0)) for p in _discovers(evidence, mac)}
    config = " and dhcpd.conf" if evidence.facts.daemon_settings.get(SETTING) else ""
    return Starved(mac, int(found[-1]["min"]), tuple(sorted(secs)), mine,
                   "ISC dhcpd dropped", f"from dhcpd's log{config}")


def _configured(evidence: Evidence) -> Starved | None:
    """dhcpd.conf's min-secs and DISCOVERs on the wire that all stayed below it."""
    setting = evidence.facts.daemon_settings.get(SETTING, "")
    if not setting.isdigit() or int(setting) == 0:
        return None
    mac = q.client_mac(evidence)
    discovers = _discovers(evidence, mac)
    secs = {int(q.field(p, "secs", 0)) for p in discovers}
    if not discovers or max(secs) >= int(setting):
        return None  # a DISCOVER with secs high enough: dhcpd had no min-secs reason
    return Starved(mac, int(setting), tuple(sorted(secs)), discovers, "ISC dhcpd dropped",
                   "from dhcpd.conf and the DISCOVERs' secs on the wire: dhcpd's log has "
                   "no line for it")


def _count(starved: Starved) -> str:
    """"4 answers to" (a server's events), "4 DISCOVERs from" (dhcpd's log, the wire)."""
    if isinstance(starved.dropped[0], Event):
        return f"{q.plural(len(starved.dropped), 'answer')} to"
    return f"{q.plural(len(starved.dropped), 'DISCOVER')} from"


def _discovers(evidence: Evidence, mac: str) -> list[PacketRecord]:
    return [p for p in q.packets(evidence, "dhcp4", "discover")
            if p.client in ("", mac) and not q.from_server(evidence, p)]
