"""Diagnosis rules for DHCPv6: Advertises an HTTP client cannot use, a Release left unanswered."""

from __future__ import annotations

from pxelab.analysis.diagnosis import query as q
from pxelab.analysis.diagnosis.model import Cause
from pxelab.analysis.evidence import Evidence, PacketRecord
from pxelab.core.events import Event


def advertise_no_vendor_class(evidence: Evidence) -> Cause | None:
    """An HTTPClient Solicit got Advertises without option 16 HTTPClient, and no Request."""
    heard = [e for e in q.events(evidence, "dhcp6", "advertise")
             if str(q.detail(e, "vendor_class", "")).startswith("HTTPClient")
             and not str(q.detail(e, "vendor_class_echo", "")).startswith("HTTPClient")]
    bad: list[Event | PacketRecord]
    if heard:
        bad, solicit = list(heard), str(q.detail(heard[0], "vendor_class", ""))
    else:
        bad, solicit = _wire_advertises(evidence)
    if not bad:
        return None
    first = bad[0]
    mac = (first.mac if isinstance(first, Event) else first.client) or q.client_mac(evidence)
    if q.requests_after(evidence, mac, first.time, v6=True):
        return None
    url = (first.file if isinstance(first, Event)
           else q.field(first, "boot_url", ""))
    return Cause(
        "dhcp6.advertise_no_vendor_class", evidence.timeline.failed_stage or "fw_dhcp",
        f"{q.plural(len(bad), 'Advertise')} to the UEFI HTTP client {mac} ({solicit}) had no "
        "option 16 vendor class HTTPClient, so it never sent a DHCPv6 Request"
        + (f" (boot URL {url})" if url else ""),
        q.lines(evidence, [*q.events(evidence, "dhcp6", "solicit")[:1], first, *bad[-1:]]),
        "answer Solicits whose option 16 says HTTPClient with option 16 (enterprise 343, "
        "'HTTPClient') in the Advertise and the Reply, beside option 59 with the boot URL "
        "(dnsmasq cannot send it: use a server that can)")


def _wire_advertises(evidence: Evidence) -> tuple[list[Event | PacketRecord], str]:
    solicits = {q.field(p, "xid"): p for p in q.packets(evidence, "dhcp6", "solicit")}
    bad: list[Event | PacketRecord] = []
    solicit = ""
    for packet in q.packets(evidence, "dhcp6", "advertise"):
        asked = solicits.get(q.field(packet, "xid"))
        wanted = str(q.field(asked, "vendor_class", "")) if asked else ""
        if wanted.startswith("HTTPClient") and not str(
                q.field(packet, "vendor_class", "")).startswith("HTTPClient"):
            bad.append(packet)
            solicit = solicit or wanted
    return bad, solicit


def release_unanswered(evidence: Evidence) -> Cause | None:
    """The client's DHCPv6 Release got no Reply, and it stalled there (EDK2 waits ~60 s)."""
    releases: list[Event | PacketRecord] = list(q.events(evidence, "dhcp6", "release"))
    replies = {q.detail(e, "xid") for e in q.events(evidence, "dhcp6", "reply")
               if q.detail(e, "in_reply_to") == "release"}
    if not releases:
        releases = list(q.packets(evidence, "dhcp6", "release"))
        replies = {q.field(p, "xid") for p in q.packets(evidence, "dhcp6", "reply")}
    unanswered = [r for r in releases if _xid(r) not in replies]
    if not unanswered:
        return None
    first = unanswered[0]
    if _active_after(evidence, first.time):
        return None  # the client went on: the missing Reply did not stop this boot
    mac = first.mac if isinstance(first, Event) else (first.client or q.client_mac(evidence))
    dropped = [e for e in q.after(q.events(evidence, "fault", "injected"), first.time)
               if e.request.startswith("dhcp6.reply")]
    delivery = q.nbp_delivery(evidence)
    why = f" (fault: {dropped[0].reason})" if dropped else ""
    xid = _xid(first)
    return Cause(
        "dhcp6.release_unanswered", evidence.timeline.failed_stage or "nbp_start",
        f"{mac} sent a DHCPv6 Release"
        + (f" (xid {xid:#x})" if isinstance(xid, int) else "")
        + f" that got no Reply{why}: EDK2 waits for it (about 60 s) before it starts the NBP"
        + (f" {q.event_file(delivery)}" if delivery else ""),
        q.lines(evidence, [delivery, first, *dropped[:1], *unanswered[1:][-1:]]),
        "answer every DHCPv6 Release with a Reply (status Success, also for bindings the "
        "server does not know, RFC 8415 18.4.5); do not drop or withhold Replies to Releases")


def _xid(item: Event | PacketRecord) -> object:
    return q.detail(item, "xid") if isinstance(item, Event) else q.field(item, "xid")


def _active_after(evidence: Evidence, since: float) -> bool:
    """Whether the client did anything but repeat its Release after ``since``."""
    for event in q.after(evidence.events, since):
        if event.source in ("tftp", "http") and event.kind in ("rrq", "get", "head"):
            return True
        if event.source in ("dhcp4", "dhcp6") and event.client and q.message_type(event) not in (
                "", "RELEASE"):
            return True
    return any(p.proto in ("dhcp4", "dhcp6", "tftp", "http") and p.kind != "release"
               and not q.from_server(evidence, p) for p in q.after(evidence.packets, since))
