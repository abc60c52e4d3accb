"""The guest's requests on the wire, each with what became of it: answered, refused or not.

A request is answered when the capture shows the server's reply to it, or when the
server's events show that it answered or decided not to (withheld, dropped as bad
input: the rule of that decision explains the rest). An event that only says a
request arrived (DHCPv6 and TFTP report arrivals) is no answer. Requests of one
:attr:`Ask.key` are retransmissions of one question: DHCPv4 messages of one type,
DHCPv6 messages of one type and transaction, RSs, RRQs of one file, connection
attempts to one server port, ARP and NS for one address.
"""

from __future__ import annotations

from dataclasses import dataclass

from pxelab.analysis.diagnosis import query as q
from pxelab.analysis.evidence import Evidence, PacketRecord
from pxelab.core.events import Event

ANSWERED, REFUSED, UNANSWERED = "answered", "refused", "unanswered"
# Services whose connection attempts the NFS rules explain (pxelab.analysis.diagnosis.nfs).
NFS_SERVICES = ("nfs", "portmap", "mount")
# How long after a request an answer still counts: DHCP and TFTP clients retransmit
# after 1-4 s, so a reply later than this belongs to a later retransmission.
ANSWER_WINDOW = 8.0
_DHCP4_ANSWERS = ("offer", "ack", "nak")
_DHCP6_ANSWERS = ("advertise", "reply")
# Answers a host gets whatever it is doing (its kernel refreshes neighbour entries and
# solicits routers on its own): no sign that the boot went on.
_BACKGROUND = ("arp ", "ns ", "ra ")
# Server events that serve nobody: a request's arrival (DHCPv6 and TFTP report those),
# a decision not to answer, a failure.
_UNSERVED = frozenset({"solicit", "request", "renew", "rebind", "release", "confirm", "inform",
                       "decline", "information-request", "rrq", "withheld", "drop", "ignore",
                       "timeout", "error", "aborted"})


@dataclass(frozen=True)
class Ask:
    """One request the guest sent, and what became of it."""

    time: float
    key: str  # requests of one key are retransmissions of one question
    label: str  # for people: "DHCPv4 DISCOVER", "TFTP RRQ for ldlinux.c32", "TCP SYN to ..."
    outcome: str  # ANSWERED, REFUSED, UNANSWERED
    item: PacketRecord
    service: str = ""  # of a connection attempt: "http", "nfs", ...
    count: int = 1  # the sends it stands for (a connection attempt's SYNs)


def asks(evidence: Evidence) -> list[Ask]:
    """Every request of the guest in the capture, in time order."""
    found = (_dhcp4(evidence) + _dhcp6(evidence) + _rs(evidence) + _rrq(evidence)
             + _connects(evidence) + _neighbours(evidence))
    return sorted(found, key=lambda a: a.time)


def _client(evidence: Evidence, packet: PacketRecord) -> bool:
    return not q.from_server(evidence, packet)


def _heard(events: list[Event], since: float, until: float) -> bool:
    return any(since - 1.0 <= e.time <= until for e in events)


def _dhcp4(evidence: Evidence) -> list[Ask]:
    replies = q.packets(evidence, "dhcp4", *_DHCP4_ANSWERS)
    # DHCPv4 events are answers or decisions (withheld, drop, ignore): none reports arrivals.
    heard = q.events(evidence, "dhcp4")
    found = []
    for packet in q.packets(evidence, "dhcp4", "discover", "request"):
        if not _client(evidence, packet):
            continue
        xid, until = q.field(packet, "xid"), packet.time + ANSWER_WINDOW
        kind = packet.kind.upper()
        answered = any(q.field(r, "xid") == xid and packet.time <= r.time <= until
                       for r in replies) or _heard(
            [e for e in heard if q.message_type(e) in (kind, "")
             and packet.client in (e.mac, e.client, "")], packet.time, until)
        found.append(Ask(packet.time, f"dhcp4 {packet.kind}", f"DHCPv4 {kind}",
                         ANSWERED if answered else UNANSWERED, packet))
    return found


def _dhcp6(evidence: Evidence) -> list[Ask]:
    replies = q.packets(evidence, "dhcp6", *_DHCP6_ANSWERS)
    # The server reports a message when it arrives and again when it answers: only the
    # answer (or a decision not to) counts; a Reply a fault dropped leaves the first alone.
    heard = q.events(evidence, "dhcp6", *_DHCP6_ANSWERS, "withheld", "drop")
    found = []
    for packet in q.packets(evidence, "dhcp6", "solicit", "request", "renew", "rebind",
                            "release"):
        xid, until = q.field(packet, "xid"), packet.time + ANSWER_WINDOW
        answered = any(q.field(r, "xid") == xid and packet.time <= r.time <= until
                       for r in replies) or _heard(
            [e for e in heard if q.detail(e, "xid") == xid], packet.time, until)
        found.append(Ask(packet.time, f"dhcp6 {packet.kind} {xid}",
                         f"DHCPv6 {packet.kind.capitalize()} (xid {xid:#x})" if isinstance(xid, int)
                         else f"DHCPv6 {packet.kind.capitalize()}",
                         ANSWERED if answered else UNANSWERED, packet))
    return found


def _rs(evidence: Evidence) -> list[Ask]:
    ras = q.packets(evidence, "ra", "ra")
    heard = q.events(evidence, "ra", "sent", "solicit")
    guest = q.client_mac(evidence)
    found = []
    for packet in q.packets(evidence, "ra", "rs"):
        if guest and packet.client != guest:
            continue  # the lab bridge solicits too, when it comes up
        until = packet.time + ANSWER_WINDOW
        answered = any(packet.time <= r.time <= until for r in ras) or _heard(
            heard, packet.time, until)
        found.append(Ask(packet.time, "ra rs", "RS (router solicitation)",
                         ANSWERED if answered else UNANSWERED, packet))
    return found


def _rrq(evidence: Evidence) -> list[Ask]:
    answers = [p for p in q.packets(evidence, "tftp", "oack", "error", "transfer")
               if p.kind == "transfer" or q.from_server(evidence, p)]
    unreachable = q.packets(evidence, "icmp", "unreachable")
    heard = [e for e in q.events(evidence, "tftp") if e.kind != "rrq"]  # arrivals
    found = []
    for packet in q.packets(evidence, "tftp", "rrq"):
        name = q.file_key(str(q.field(packet, "file", "")))
        until = packet.time + ANSWER_WINDOW
        answered = any(q.file_key(str(q.field(p, "file", ""))) == name
                       and packet.time <= p.time <= until for p in answers) or _heard(
            [e for e in heard if q.event_file(e) == name], packet.time, until)
        refused = any(q.field(u, "quoted_src") == packet.src and packet.time <= u.time <= until
                      for u in unreachable)
        outcome = ANSWERED if answered else REFUSED if refused else UNANSWERED
        found.append(Ask(packet.time, f"tftp rrq {name}", f"TFTP RRQ for {name}", outcome, packet))
    return found


def _connects(evidence: Evidence) -> list[Ask]:
    found = []
    for packet in q.packets(evidence, "tcp", "connect"):
        outcome = {"accepted": ANSWERED, "refused": REFUSED, "unreachable": REFUSED}.get(
            str(q.field(packet, "outcome", "")), UNANSWERED)
        service = str(q.field(packet, "service", ""))
        found.append(Ask(packet.time, f"tcp {packet.dst}", f"TCP SYN to {packet.dst} ({service})",
                         outcome, packet, service,
                         int(q.field(packet, "syns", 1))))
    return found


def _neighbours(evidence: Evidence) -> list[Ask]:
    """ARP requests and neighbour solicitations of the guest for another host."""
    guest = q.client_mac(evidence)
    replies = q.packets(evidence, "arp", "reply")
    found = []
    for packet in q.packets(evidence, "arp", "request"):
        target = str(q.field(packet, "target_ip", ""))
        if (guest and q.field(packet, "sender_mac") != guest) or target == q.field(
                packet, "sender_ip"):
            continue  # another host's, or the guest's own announcement
        answered = any(q.field(r, "sender_ip") == target
                       and packet.time <= r.time <= packet.time + ANSWER_WINDOW
                       for r in replies)
        found.append(Ask(packet.time, f"arp {target}", f"ARP who-has {target}",
                         ANSWERED if answered else UNANSWERED, packet))
    nas = q.packets(evidence, "ra", "na")
    # The server's own addresses: its events say, and routers are the hosts that send RAs.
    servers = q.server_hosts(evidence) | {p.src for p in q.packets(evidence, "ra", "ra")}
    for packet in q.packets(evidence, "ra", "ns"):
        target = str(q.field(packet, "target", ""))
        if packet.src in ("::", "", *servers) or (guest and packet.client != guest) or (
                not target):
            continue  # duplicate address detection, or the server's own
        answered = any(q.field(n, "target") == target
                       and packet.time <= n.time <= packet.time + ANSWER_WINDOW for n in nas)
        found.append(Ask(packet.time, f"ns {target}", f"NS for {target}",
                         ANSWERED if answered else UNANSWERED, packet))
    return found


@dataclass(frozen=True)
class Stuck:
    """The requests of one key the boot stopped on: none answered since the last answer."""

    key: str
    label: str
    outcome: str  # REFUSED if any was refused, else UNANSWERED
    asks: tuple[Ask, ...]

    @property
    def first(self) -> Ask:
        return self.asks[0]

    @property
    def last(self) -> Ask:
        return self.asks[-1]

    @property
    def sends(self) -> int:
        return sum(a.count for a in self.asks)


def stuck(evidence: Evidence, found: list[Ask] | None = None) -> list[Stuck]:
    """Keys whose last requests went unanswered (or were refused), with nothing answered
    for the guest after the first of them: where the boot stopped, latest last."""
    found = asks(evidence) if found is None else found
    result = []
    for key in dict.fromkeys(a.key for a in found):
        mine = [a for a in found if a.key == key]
        last_ok = max((n for n, a in enumerate(mine) if a.outcome == ANSWERED), default=-1)
        tail = tuple(mine[last_ok + 1:])
        if not tail or _progress_after(evidence, found, tail[0]):
            continue
        outcome = REFUSED if any(a.outcome == REFUSED for a in tail) else UNANSWERED
        result.append(Stuck(key, tail[0].label, outcome, tail))
    return sorted(result, key=lambda s: s.last.time)


def _progress_after(evidence: Evidence, found: list[Ask], ask: Ask) -> bool:
    """Whether the guest got anything after ``ask``: another request answered, a file
    delivered, or the server serving it (its events, faults aside)."""
    if any(a.outcome == ANSWERED and a.time > ask.time and a.key != ask.key
           and not a.key.startswith(_BACKGROUND) for a in found):
        return True
    served = [e for e in q.after(evidence.events, ask.time + 0.001)
              if e.source in ("dhcp4", "dhcp6", "tftp", "http") and e.kind not in _UNSERVED]
    return bool(served)
