"""Diagnosis rule for iPXE handed itself again: the chain-load loop."""

from __future__ import annotations

from pxelab.analysis.diagnosis import query as q
from pxelab.analysis.diagnosis.model import Cause
from pxelab.analysis.evidence import Evidence, PacketRecord
from pxelab.core.events import Event

IPXE = "iPXE"  # DHCP option 77 / DHCPv6 option 15 of every iPXE build


def _handed(evidence: Evidence) -> list[tuple[Event | PacketRecord, str]]:
    """DHCP answers (ACKs, DHCPv6 Replies) that gave a client with user class iPXE a file:
    the server's events, else the answers on the wire to requests with that class."""
    ipxe_asked = {q.field(p, "xid") for p in q.packets(evidence, "dhcp4", "request")
                  + q.packets(evidence, "dhcp6", "request", "information-request")
                  if IPXE in str(q.field(p, "user_class", ""))}
    found: list[tuple[Event | PacketRecord, str]] = []
    for answer, name in q.boot_files(evidence):
        if answer.kind not in ("ack", "reply"):
            continue
        if isinstance(answer, Event):
            if (q.detail(answer, "in_reply_to") != "release"
                    and IPXE in q.detail(answer, "user_classes", ())):
                found.append((answer, name))
        elif q.field(answer, "xid") in ipxe_asked:
            found.append((answer, name))
    return found


def chainload_loop(evidence: Evidence) -> Cause | None:
    """iPXE was given a file it had already downloaded and run: it loads itself forever.

    The BIOS iPXE ROM legitimately gets the NBP (pxelinux.0) with user class iPXE;
    what makes a loop is getting a file *after* it was delivered in full once
    (QEMU runs with -no-reboot, so no reset brings the ROM back).
    """
    deliveries = q.delivered(evidence)
    again: list[tuple[Event | PacketRecord, str, Event]] = []
    for answer, name in _handed(evidence):
        earlier = [d for d in deliveries if d.time < answer.time
                   and q.base(q.event_file(d)) == q.base(name)]
        if earlier:
            again.append((answer, name, earlier[0]))
    if not again:
        return None
    answer, name, first_delivery = again[0]
    times = [a for a, n, _ in again if n == name]
    loads = [d for d in deliveries if q.base(q.event_file(d)) == q.base(name)]
    return Cause(
        "ipxe.chainload_loop", evidence.timeline.failed_stage or "ipxe",
        f"{answer.client or q.client_mac(evidence)} (user class iPXE) was handed the iPXE "
        f"NBP {name} again "
        f"{q.plural(len(times), 'time')} ({q.plural(len(loads), 'download')} in all): "
        "iPXE loads itself over and over instead of its script",
        q.lines(evidence, [first_delivery, answer, *times[-1:], *loads[-1:]]),
        "answer DHCP requests with user class 'iPXE' (option 77, DHCPv6 option 15) with the "
        "iPXE script (e.g. http://<server>/script.ipxe) instead of the NBP (ISC dhcpd: "
        "if exists user-class and option user-class = \"iPXE\"; dnsmasq: dhcp-userclass "
        "set:ipxe,iPXE)")
