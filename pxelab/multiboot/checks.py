"""What a lab of several guests must hold besides each guest's boot: every guest its own
address, and every transfer a guest started ended.

Both read the boot server's events: the leases it bound (DHCPv4 ACK, BOOTP reply,
DHCPv6 Reply; read as the server's client directory reads them,
:mod:`pxelab.server.bindings`) and its transfers (a TFTP RRQ against the event that
ended it on the same client port; an HTTP GET against its Content-Length). Pure
functions over events, so a test can check them on a run's ``events.jsonl`` too.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from pxelab.analysis.evidence.model import PacketRecord
from pxelab.analysis.live import is_short
from pxelab.core.events import Event
from pxelab.multiboot.attribution import Attribution
from pxelab.server.bindings import bound, freed

# How a TFTP transfer or refused request ends (pxelab.server.tftp): "sent" whole;
# "aborted" by the client (OVMF's size probe ends every first RRQ so); the rest refused.
TFTP_ENDS = frozenset({"sent", "aborted", "error", "not_found", "refused", "denied"})
TFTP_LOST = frozenset({"error"})


@dataclass(frozen=True)
class Leases:
    """The addresses the server bound to one guest, in the order it bound them."""

    mac: str
    ipv4: tuple[str, ...] = ()
    ipv6: tuple[str, ...] = ()


@dataclass(frozen=True)
class Transfers:
    """One guest's transfers: how many it started, and those that did not end whole."""

    mac: str
    started: int = 0
    ended: int = 0
    lost: tuple[str, ...] = ()


def leases(events: Iterable[Event], macs: Sequence[str]) -> tuple[Leases, ...]:
    """Each guest's bound addresses (DHCPv4 ACK or BOOTP reply ``yiaddr``, DHCPv6 Reply
    addresses)."""
    ipv4: dict[str, list[str]] = defaultdict(list)
    ipv6: dict[str, list[str]] = defaultdict(list)
    for event in events:
        if event.mac not in macs:
            continue
        into = ipv4 if event.source == "dhcp4" else ipv6
        for address in bound(event):
            if address not in into[event.mac]:
                into[event.mac].append(address)
    return tuple(Leases(mac, tuple(ipv4[mac]), tuple(ipv6[mac])) for mac in macs)


def lease_collisions(events: Iterable[Event], macs: Sequence[str]) -> tuple[str, ...]:
    """Each address bound to a guest while another guest held it (not released).

    A BOOTP reply binds its ``yiaddr`` like a DHCPv4 ACK (the server leases it for
    good), so two guests answered with one address both hold it: a collision."""
    holder: dict[str, str] = {}
    found: list[str] = []
    for event in sorted(events, key=lambda e: e.time):
        if event.mac not in macs:
            continue
        for address in bound(event):
            if holder.get(address, event.mac) != event.mac:
                found.append(f"{address} leased to {holder[address]}, {event.mac}")
            holder[address] = event.mac
        for address in freed(event):
            if holder.get(address) == event.mac:
                del holder[address]
    return tuple(dict.fromkeys(found))


def wire_leases(packets: Sequence[Sequence[PacketRecord]],
                macs: Sequence[str]) -> tuple[Leases, ...]:
    """Each guest's DHCPv4 ACKs on the wire (``packets``: each guest's records): the
    leases of a lab whose daemons send no events, and a second witness in any lab."""
    return tuple(Leases(mac, tuple(dict.fromkeys(
        str(record.fields["yiaddr"]) for record in records
        if record.proto == "dhcp4" and record.kind == "ack" and record.client == mac
        and record.fields.get("yiaddr") not in (None, "0.0.0.0"))))
        for mac, records in zip(macs, packets, strict=True))


def merged(*sources: Sequence[Leases]) -> tuple[Leases, ...]:
    """The leases of each guest that any source saw, in the order first seen."""
    return tuple(Leases(same[0].mac,
                        tuple(dict.fromkeys(a for lease in same for a in lease.ipv4)),
                        tuple(dict.fromkeys(a for lease in same for a in lease.ipv6)))
                 for same in zip(*sources, strict=True))


def collisions(bound: Sequence[Leases]) -> tuple[str, ...]:
    """Each address bound to more than one guest, said as "ADDRESS: MAC, MAC"."""
    holders: dict[str, list[str]] = defaultdict(list)
    for lease in bound:
        for address in (*lease.ipv4, *lease.ipv6):
            holders[address].append(lease.mac)
    return tuple(f"{address} leased to {', '.join(macs)}"
                 for address, macs in sorted(holders.items()) if len(macs) > 1)


def is_idle_keep_alive(event: Event) -> bool:
    """Whether ``event`` is the HTTP server closing a kept-alive connection nobody used
    again (a boot loader that started its kernel leaves one): no transfer, none lost."""
    return event.kind == "timeout" and event.details.get("idle") is True


def transfers(events: Sequence[Event], attribution: Attribution) -> tuple[Transfers, ...]:
    """Each guest's transfers and the ones lost: a TFTP RRQ that never ended or ended in
    an error (a timeout, a socket error), an HTTP request never completed or a body
    shorter than its file."""
    started: dict[str, int] = defaultdict(int)
    ended: dict[str, int] = defaultdict(int)
    lost: dict[str, list[str]] = defaultdict(list)
    open_rrqs: dict[tuple[str, object], Event] = {}
    for event in sorted(events, key=lambda e: e.time):
        owner = attribution.owner(event)
        if owner is None:
            continue
        key = (event.client, event.details.get("port"))
        if event.source == "tftp" and event.kind == "rrq":
            started[owner] += 1
            open_rrqs[key] = event
        elif event.source == "tftp" and event.kind in TFTP_ENDS and key in open_rrqs:
            open_rrqs.pop(key)
            ended[owner] += 1
            if event.kind in TFTP_LOST:
                lost[owner].append(f"TFTP {event.file}: {event.reason or event.answer}")
        elif event.source == "http" and event.kind in ("get", "timeout") \
                and not is_idle_keep_alive(event):
            started[owner] += 1
            ended[owner] += 1
            if event.kind == "timeout" or is_short(event):
                lost[owner].append(f"HTTP {event.file}: {event.answer} "
                                   f"{event.reason}".strip())
    for (client, _), event in open_rrqs.items():
        owner = attribution.owner(event)
        if owner is not None:
            lost[owner].append(f"unfinished: TFTP {event.file} from {client}")
    return tuple(Transfers(mac, started[mac], ended[mac], tuple(lost[mac]))
                 for mac in attribution.macs)
