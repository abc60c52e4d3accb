"""Diagnosis rules for DHCPv4: no DISCOVER at all, and offers the client did not take.

A client that sends DISCOVERs and never a REQUEST found every offer unusable
(or got none). The server's events say what each offer carried (its
``options``, ``vendor_class_echo``, ``file``); the wire confirms that no
REQUEST came. The specific rules name the reason (min_secs, a missing
HTTPClient echo, PXEClient without option 43); :func:`offer_unused` is the
fallback for offers nobody explains.
"""

from __future__ import annotations

from dataclasses import dataclass

from pxelab.analysis.diagnosis import dhcp6
from pxelab.analysis.diagnosis import query as q
from pxelab.analysis.diagnosis.minsecs import withheld_min_secs
from pxelab.analysis.diagnosis.model import Cause
from pxelab.analysis.evidence import Evidence, PacketRecord
from pxelab.core.events import Event

# DHCP option numbers (RFC 2132; 43: vendor-specific, 60: vendor class identifier).
VENDOR_SPECIFIC = 43
VENDOR_CLASS = 60
BINL_PORT = 4011  # the PXE boot server (PXE 2.1) a BINL offer sends the client to


@dataclass(frozen=True)
class Offer:
    """One DHCPv4 offer as a rule needs it, from a server event or, failing that, the wire."""

    item: Event | PacketRecord
    mac: str
    time: float
    client_class: str  # the client's option 60
    echo: str  # option 60 in the offer
    options: tuple[int, ...]
    file: str
    arch: int | None

    @property
    def has_43(self) -> bool:
        return VENDOR_SPECIFIC in self.options

    def fault_note(self) -> str:
        """" (a fault took out option 60)" when the server's event says one edited the offer."""
        if not isinstance(self.item, Event):
            return ""
        out = self.item.details.get("fault_omitted") or []
        put = self.item.details.get("fault_added") or []
        parts = [f"took out option {', '.join(map(str, out))}" if out else "",
                 f"put in option {', '.join(map(str, put))}" if put else ""]
        done = " and ".join(p for p in parts if p)
        return f" (a fault {done})" if done else ""


def offers(evidence: Evidence, *kinds: str) -> list[Offer]:
    """The server's DHCPv4 offers (``kinds`` of events: "offer", "ack"), else the wire's."""
    kinds = kinds or ("offer",)
    found = [Offer(e, e.mac or e.client, e.time, str(q.detail(e, "vendor_class", "")),
                   str(q.detail(e, "vendor_class_echo", "")),
                   tuple(q.detail(e, "options", ())), e.file,
                   q.detail(e, "arch"))
             for e in q.events(evidence, "dhcp4", *kinds)]
    if found:
        return found
    asked = {q.field(p, "xid"): p for p in q.packets(evidence, "dhcp4", "discover", "request")}
    for packet in q.packets(evidence, "dhcp4", *kinds):
        request = asked.get(q.field(packet, "xid"))
        options = tuple(q.field(packet, "options", ()))
        if q.field(packet, "has_option_43", False) and VENDOR_SPECIFIC not in options:
            options += (VENDOR_SPECIFIC,)
        found.append(Offer(packet, packet.client, packet.time,
                           str(q.field(request, "vendor_class", "")) if request else "",
                           str(q.field(packet, "vendor_class", "")), options,
                           str(q.field(packet, "file", "")),
                           q.field(request, "arch") if request else None))
    return found


def _unrequested(evidence: Evidence, chosen: list[Offer]) -> list[Offer]:
    """``chosen`` if the client sent no REQUEST after the first of them, else []."""
    if not chosen:
        return []
    first = chosen[0]
    if q.requests_after(evidence, first.mac, first.time):
        return []
    return [o for o in chosen if o.mac == first.mac]


def _offer_lines(evidence: Evidence, chosen: list[Offer]) -> tuple[str, ...]:
    discovers = [p for p in q.packets(evidence, "dhcp4", "discover")
                 if p.client in ("", chosen[0].mac)]
    items = [*discovers[:1], chosen[0].item, chosen[-1].item, *discovers[-1:]]
    return q.lines(evidence, items)


# -- the rules ---------------------------------------------------------------------------------

def no_discover(evidence: Evidence) -> Cause | None:
    """No DHCPv4 DISCOVER and no DHCPv6 Solicit at all: network boot never started."""
    if not q.network_boot_never_started(evidence):
        return None
    facts = evidence.facts
    machine = ", ".join(part for part in (facts.firmware, facts.mode,
                                          facts.nic_model and f"NIC {facts.nic_model}") if part)
    ready = q.events(evidence, "server", "ready")
    return Cause(
        "dhcp.no_discover", evidence.timeline.failed_stage or "firmware",
        "no DHCPv4 DISCOVER and no DHCPv6 Solicit came from the guest"
        + (f" ({machine})" if machine else "")
        + ": the firmware never started a network boot",
        q.lines(evidence, [*ready[:1], *evidence.timeline.hits[-2:]]),
        "make the firmware boot from the network: put the NIC first in the boot order, "
        "give it its boot ROM (QEMU's romfile for this NIC model) and attach it to the lab "
        "bridge; for OVMF check that the PXE/HTTP boot option of this IP version is enabled")


def offer_no_httpclient_echo(evidence: Evidence) -> Cause | None:
    """A UEFI HTTP client was offered no option 60 HTTPClient echo and sent no REQUEST."""
    chosen = _unrequested(evidence, [
        o for o in offers(evidence) if o.client_class.startswith("HTTPClient")
        and not o.echo.startswith("HTTPClient")])
    if not chosen:
        return None
    first = chosen[0]
    echo = f"option 60 {first.echo!r}" if first.echo else "no option 60"
    return Cause(
        "dhcp.offer_no_httpclient_echo", evidence.timeline.failed_stage or "fw_dhcp",
        f"{q.plural(len(chosen), 'offer')} to the UEFI HTTP client {first.mac} "
        f"({first.client_class}) carried {echo} instead of the HTTPClient echo, so it "
        f"ignored {'it' if len(chosen) == 1 else 'them'} and sent no REQUEST"
        + (f" (file={first.file})" if first.file else "") + first.fault_note(),
        _offer_lines(evidence, chosen),
        "answer DISCOVERs whose option 60 starts 'HTTPClient' with option 60 'HTTPClient' and "
        "the boot URL in option 67 (ISC dhcpd: option vendor-class-identifier \"HTTPClient\"; "
        "dnsmasq: dhcp-option-force=60,HTTPClient)")


def pxeclient_without_43(evidence: Evidence) -> Cause | None:
    """PXEClient echoed without option 43: a BINL offer; the client asks port 4011."""
    chosen = [o for o in offers(evidence, "offer", "ack")
              if o.echo.startswith("PXEClient") and not o.has_43]
    if not chosen:
        return None
    first = chosen[0]
    fetched = [e for e in q.after(q.delivered(evidence), first.time)
               if not first.file or q.base(q.event_file(e)) == q.base(first.file)]
    asked = [e for e in q.after(q.events(evidence, "tftp", "rrq"), first.time)
             if not first.file or q.base(q.event_file(e)) == q.base(first.file)]
    if fetched or asked:
        return None  # the client took the offer as a plain one (iPXE does)
    binl = [p for p in q.after(q.packets(evidence, "dhcp4"), first.time)
            if q.field(p, "dport") == BINL_PORT]
    towards = (f"; it sent {q.plural(len(binl), 'request')} to UDP port {BINL_PORT}"
               if binl else "")
    return Cause(
        "dhcp.pxeclient_without_43", evidence.timeline.failed_stage or "fw_dhcp",
        f"{q.plural(len(chosen), 'offer')} to {first.mac} echoed option 60 'PXEClient' "
        f"without option 43: a BINL offer, so the PXE client looks for a boot server on UDP "
        f"port {BINL_PORT} instead of fetching " + (first.file or "a boot file") + towards
        + first.fault_note(),
        q.lines(evidence, [first.item, chosen[-1].item, *binl[:2]]),
        "leave option 60 out of full DHCP offers (siaddr and the boot file are enough), or "
        "send option 43 with PXE discovery control (sub-option 6 = 8) beside PXEClient, or "
        f"run a PXE boot server on port {BINL_PORT}")


def offer_unused(evidence: Evidence) -> Cause | None:
    """Offers (or DHCPv6 Advertises) went out and no REQUEST came; no other rule says why."""
    specific = (withheld_min_secs, offer_no_httpclient_echo, pxeclient_without_43,
                dhcp6.advertise_no_vendor_class)
    if any(rule(evidence) for rule in specific):
        return None
    return _offers_unused(evidence) or _advertises_unused(evidence)


def _offers_unused(evidence: Evidence) -> Cause | None:
    every = offers(evidence)
    if not every:
        return None
    last = every[-1]
    mac = last.mac
    mine = [o for o in every if o.mac == mac]
    # The run of offers since the client's last REQUEST: the ones it left unused.
    unused = [o for o in mine if not q.requests_after(evidence, mac, o.time)]
    if not unused:
        return None
    first = unused[0]
    about = ", ".join(part for part in (
        first.client_class and f"vendor class {first.client_class}",
        first.arch is not None and f"arch {first.arch}") if part)
    carried = ", ".join(part for part in (
        f"file={first.file}" if first.file else "no boot file",
        f"option 60 {first.echo!r}" if first.echo else "no option 60",
        f"options {list(first.options)}" if first.options else "") if part)
    return Cause(
        "dhcp.offer_unused", evidence.timeline.failed_stage or "dhcp",
        f"{q.plural(len(unused), 'offer')} to {mac}" + (f" ({about})" if about else "")
        + f" got no REQUEST: the client found them unusable ({carried})",
        _offer_lines(evidence, unused),
        "compare the offer with what this client needs (its DISCOVER's option 60, 93 and 55): "
        "the option 60 echo, option 43, the boot file name or URL, the server's address; "
        "make the server's rule for this client answer what its firmware expects")


def _advertises_unused(evidence: Evidence) -> Cause | None:
    every: list[Event | PacketRecord] = list(q.events(evidence, "dhcp6", "advertise"))
    every = every or list(q.packets(evidence, "dhcp6", "advertise"))  # a third-party server
    if not every:
        return None
    mac = every[-1].client or q.client_mac(evidence)
    unused = [e for e in every if e.client in ("", mac)
              and not q.requests_after(evidence, mac, e.time, v6=True)]
    if not unused:
        return None
    first = unused[0]
    url = first.file if isinstance(first, Event) else str(q.field(first, "boot_url", ""))
    status = (q.detail(first, "status", "none") if isinstance(first, Event)
              else q.field(first, "status") or "none")
    return Cause(
        "dhcp.offer_unused", evidence.timeline.failed_stage or "fw_dhcp",
        f"{q.plural(len(unused), 'Advertise')} to {mac} got no DHCPv6 Request: the client "
        f"found them unusable (" + (f"boot URL {url}" if url else "no boot URL (option 59)")
        + f", status {status})",
        q.lines(evidence, [first, *unused[-1:]]),
        "compare the Advertise with what this client needs (its Solicit's option 6 ORO, "
        "16 and 61): an IA_NA address, option 59 with the boot URL, option 16 for HTTP boot")
