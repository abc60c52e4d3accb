"""Rules for requests the boot stopped on: sent again and again with no answer, or refused.

Read from the capture (:mod:`pxelab.analysis.diagnosis.asks`): a request the server
reported is not unanswered, whatever it decided (the rule of that decision names it).
A request the wire shows unanswered with no server event about it was lost on the
way, not heard, or dropped by the server: which, only the server's own log can say.
Connections to the NFS ports are left to :mod:`pxelab.analysis.diagnosis.nfs`.
"""

from __future__ import annotations

import re

from pxelab.analysis.diagnosis import decisions, dhcp6, minsecs, nfs
from pxelab.analysis.diagnosis import query as q
from pxelab.analysis.diagnosis.asks import NFS_SERVICES, REFUSED, UNANSWERED, Stuck, stuck
from pxelab.analysis.diagnosis.model import Cause
from pxelab.analysis.evidence import Evidence
from pxelab.core.events import Event

# A retransmission shows the client waited for an answer; one lost packet is no pattern.
MIN_SENDS = 2
_RRQ_DROP = re.compile(r"^tftp\.rrq #\d+ \((?P<file>.+)\)$")
_FIXES = {
    "dhcp4": "make a DHCPv4 server answer on the guest's link: is one running, on this "
             "interface, and does its policy serve this client (a pxelab server says why it "
             "withholds in its events)?",
    "dhcp6": "make the DHCPv6 server answer the message (RFC 8415: every Request, Renew and "
             "Release gets a Reply); check that it listens on the guest's link",
    "ra": "send router advertisements on the guest's link (the boot server's [ra] section, "
          "or radvd)",
    "tftp": "make the TFTP server answer RRQs for the file: no filter or second TFTP server "
            "on the way, no dropped-packet fault; if the loader is lpxelinux.0 (lwIP) on a "
            "PXE stack that loses its requests, use pxelinux.0",
    "tcp": "start the server on that address and port, or point the guest at the address "
           "the server listens on (a firewall that drops SYNs looks the same)",
    "arp": "the host the guest looks for is not on its link: check the address the guest "
           "was given (DHCP siaddr, boot URL, nfsroot=) and that the server has it",
    "ns": "the host the guest looks for is not on its link: check the address the guest "
          "was given (boot URL, nfsroot=) and that the server has it",
}


def _candidates(evidence: Evidence, outcome: str) -> list[Stuck]:
    # Requests a more specific rule explains: the NFS server's, a DHCPv6 Release's.
    taken = {s.key for s in nfs.unreached(evidence)}
    found = [s for s in stuck(evidence) if s.outcome == outcome
             and s.first.service not in NFS_SERVICES and s.key not in taken
             and not (s.key.startswith("dhcp6 release")
                      and dhcp6.release_unanswered(evidence) is not None)]
    if outcome == UNANSWERED:
        found = [s for s in found if s.sends >= MIN_SENDS]
    if found and _decided(evidence):
        found = [s for s in found if not s.key.startswith(("dhcp4 ", "dhcp6 "))]
    return found


def _decided(evidence: Evidence) -> bool:
    """Whether a rule already says why the DHCP server stayed silent (its events do that
    themselves; a third-party server's log and configuration need the rule)."""
    return not evidence.events and (minsecs.withheld_min_secs(evidence) is not None
                                    or decisions.withheld(evidence) is not None)


def unanswered(evidence: Evidence) -> Cause | None:
    """A request sent at least twice, answered by nothing (wire nor server), where the
    boot stopped."""
    found = _candidates(evidence, UNANSWERED)
    if not found:
        return None
    last = found[-1]
    seconds = last.last.time - last.first.time
    kind = last.key.split(" ", 1)[0]
    rrq = last.key.startswith("tftp rrq ")
    attempts = (f" in {q.plural(len(last.asks), 'connection attempt')}"
                if kind == "tcp" else "")
    first, end = q.seconds(evidence, last.first.time), q.seconds(evidence, last.last.time)
    summary = (f"{_who(evidence, last)} sent {last.label} {q.plural(last.sends, 'time')}"
               f"{attempts} and got no answer in {seconds:.1f}s ({first} to {end} after "
               "power-on)")
    if rrq:
        summary += _after_nbp(evidence, last)
    summary += ": " + _why(evidence, last)
    return Cause(
        "request.unanswered", evidence.timeline.failed_stage or "dhcp", summary,
        q.lines(evidence, [a.item for a in (last.asks[:2] + last.asks[-1:])]),
        _FIXES.get(kind, _FIXES["tcp"]))


def _who(evidence: Evidence, found: Stuck) -> str:
    """The guest as the requests name it: its address, or its MAC before it had one."""
    address = q.host(found.first.item.src)
    if address and address not in ("0.0.0.0", "::") and not address.startswith("fe80"):
        return address
    return found.first.item.client or q.client_mac(evidence) or "the guest"


def _after_nbp(evidence: Evidence, found: Stuck) -> str:
    start = q.nbp_delivery(evidence)
    if start is None or start.time > found.first.time:
        return ""
    return f", after {q.event_file(start)} was sent"


def _why(evidence: Evidence, found: Stuck) -> str:
    """Who stayed silent, as far as the evidence says."""
    if found.key.startswith(("arp ", "ns ")):
        return "no host on the guest's link has that address"
    if not evidence.events:
        return ("from packets only: no server events or daemon log say whether the server "
                "heard them or why it stayed silent" + _low_secs(found))
    dropped = [e for e in q.after(q.events(evidence, "fault", "injected"),
                                  found.first.time - 1.0) if _about(e.request, found.key)]
    heard = _received(evidence, found)
    if dropped:
        return f"the server dropped them (fault: {dropped[0].reason})"
    if heard:
        return (f"the server reported receiving them ({q.plural(len(heard), 'event')}) and "
                "sent no answer")
    return "the server never reported them (no event): lost on the way, or not heard"


def _low_secs(found: Stuck) -> str:
    """A hint for DISCOVERs whose secs never grew: what a server's min-secs does to them."""
    if found.first.item.proto != "dhcp4" or found.first.item.kind != "discover":
        return ""
    secs = {int(q.field(a.item, "secs", 0)) for a in found.asks}
    if max(secs) >= 2:
        return ""
    return (f"; their secs stayed at {', '.join(map(str, sorted(secs)))}: a server with "
            "min-secs (ISC dhcpd) ignores such a client, which its log would say")


def _received(evidence: Evidence, found: Stuck) -> list[Event]:
    """The server's events of receiving these requests (DHCPv6 and TFTP report arrivals)."""
    since, until = found.first.time - 1.0, found.last.time + 1.0
    packet = found.first.item
    if packet.proto == "dhcp6":
        return [e for e in q.events(evidence, "dhcp6", packet.kind)
                if since <= e.time <= until and q.detail(e, "xid") == q.field(packet, "xid")]
    if packet.proto == "tftp":
        name = q.file_key(str(q.field(packet, "file", "")))
        return [e for e in q.events(evidence, "tftp", "rrq")
                if since <= e.time <= until and q.event_file(e) == name]
    return []


def _about(request: str, key: str) -> bool:
    """Whether a fault's request ("tftp.rrq #3 (ldlinux.c32)", "dhcp6.reply #2") is about
    the requests of ``key`` (only the wording reads faults: detection never does)."""
    proto = key.split(" ", 1)[0]
    if proto != "tftp":
        return request.startswith(f"{proto}.")
    match = _RRQ_DROP.match(request)
    return match is not None and key == f"tftp rrq {q.file_key(match['file'])}"


def refused(evidence: Evidence) -> Cause | None:
    """A connection refused (RST) or a request answered with ICMP port unreachable, and
    nothing answered after it."""
    found = _candidates(evidence, REFUSED)
    if not found:
        return None
    last = found[-1]
    item = last.last.item
    refusals = [a for a in last.asks if a.outcome == REFUSED]
    if last.key.startswith("tcp "):
        how = "reset (RST)" if q.field(item, "outcome") == "refused" else "ICMP unreachable"
        service = last.first.service
        server = (f"no {service.upper()} server" if service and not service.startswith("port")
                  else "nothing")
        summary = (f"{server} listening on {item.dst}: "
                   f"{q.plural(len(refusals), 'connection attempt')} from the guest "
                   f"answered by {how}")
        fix = (f"start the server on {item.dst}, or point the guest at the address and port "
               "it listens on (the boot file URL, the loader's config)")
    else:
        icmp = [p for p in q.after(q.packets(evidence, "icmp", "unreachable"),
                                   last.first.time) if q.field(p, "quoted_src") == item.src]
        where = str(q.field(icmp[0], "quoted_dst", "")) if icmp else q.host(item.dst)
        times = f" ({q.plural(len(refusals), 'time')})" if len(refusals) > 1 else ""
        summary = (f"no {last.key.split(' ', 1)[0].upper()} server listening on {where}: "
                   f"{_who(evidence, last)}'s {last.label}{times} was answered by ICMP port "
                   "unreachable")
        fix = f"start the server on {where}, or point the guest at the server's address"
    if not evidence.events:
        summary += " (read from the capture alone)"
    icmp = [p for p in q.after(q.packets(evidence, "icmp", "unreachable"), last.first.time)][:1]
    return Cause(
        "request.refused", evidence.timeline.failed_stage or "nbp", summary,
        q.lines(evidence, [a.item for a in (refusals[:2] + refusals[-1:])] + icmp), fix)
