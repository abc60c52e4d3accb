"""Rules for a boot server's decisions that left the guest without an answer.

The server says why it stayed silent: every ``withheld`` event carries the policy's
reason ("rule 'pool allows members of pxeclients only': withhold", a host entry,
min_secs). A client withheld and never served afterwards was stopped by that
decision, whatever the stage: the firmware's DHCP, the NBP's, the initramfs's.
A third-party server says it in its log instead (:mod:`pxelab.analysis.diagnosis.logged`),
which stands in when there are no events. min_secs has its own rule
(:func:`pxelab.analysis.diagnosis.minsecs.withheld_min_secs`), which names the secs the
client sent.
"""

from __future__ import annotations

import re

from pxelab.analysis.diagnosis import dhcp, logged
from pxelab.analysis.diagnosis import query as q
from pxelab.analysis.diagnosis.model import Cause
from pxelab.analysis.evidence import Evidence
from pxelab.core.events import Event

_MIN_SECS = re.compile(r"secs=\d+ < min_secs=\d+")
# source -> (the kinds that answer, the protocol's name)
_SERVED = {"dhcp4": (("offer", "ack"), "DHCPv4"), "dhcp6": (("advertise", "reply"), "DHCPv6")}


def withheld(evidence: Evidence) -> Cause | None:
    """The server withheld its answers to the guest for a policy reason, and never
    served it after: the reason the policy gave is the cause."""
    for source, (served, name) in _SERVED.items():
        found = _unserved(evidence, source, served)
        if found:
            return _cause(evidence, source, name, found)
    said = logged.withheld(evidence)
    return _logged_cause(evidence, said) if said is not None else None


def _unserved(evidence: Evidence, source: str, served: tuple[str, ...]) -> list[Event]:
    """The client's withheld requests since it was last served (min_secs aside)."""
    withheld = [e for e in q.events(evidence, source, "withheld")
                if not _MIN_SECS.search(e.reason)]
    if not withheld:
        return []
    client = withheld[-1].client
    answers = [e for e in q.events(evidence, source, *served) if e.client == client]
    if q.after(answers, withheld[-1].time):
        return []
    since = max((e.time for e in answers), default=float("-inf"))
    return [e for e in withheld if e.client == client and e.time > since]


def _cause(evidence: Evidence, source: str, name: str, mine: list[Event]) -> Cause:
    reasons = list(dict.fromkeys(e.reason for e in mine))
    asked = mine[-1].request.split(" ")[0] if mine[-1].request else "request"
    stage = evidence.timeline.failed_stage or "dhcp"
    return Cause(
        f"{'dhcp' if source == 'dhcp4' else 'dhcp6'}.withheld", stage,
        f"the {name} server withheld {q.plural(len(mine), 'answer')} to {mine[-1].client} "
        f"(last: {asked}) by its policy: {'; '.join(reasons)}",
        q.lines(evidence, [mine[0], *mine[1:2], mine[-1]]),
        "change the policy decision quoted above (the server's rule or host entry), or make "
        f"the client at stage {stage} match what the policy serves (its vendor class, "
        "user class, architecture or MAC)")


def _logged_cause(evidence: Evidence, said: logged.Logged) -> Cause:
    """A third-party server's own log lines for its withheld answers (no events)."""
    name = "DHCPv6" if said.proto == "dhcp6" else "DHCPv4"
    who = said.mac or q.client_mac(evidence) or "the guest"
    stage = evidence.timeline.failed_stage or "dhcp"
    return Cause(
        f"{'dhcp' if said.proto == 'dhcp4' else 'dhcp6'}.withheld", stage,
        f"the {name} server ({said.daemon}) withheld {q.plural(len(said.lines), 'answer')} "
        f"to {who}, by its log: {'; '.join(said.reasons)}",
        q.lines(evidence, [said.lines[0], *said.lines[1:2], said.lines[-1]]),
        f"change what {said.daemon}'s configuration decides for this client (the reason it "
        "logged above: a pool or class that leaves it out, a range that is full, a host "
        f"entry), or make the client at stage {stage} match what the configuration serves")


def offer_no_boot_file(evidence: Evidence) -> Cause | None:
    """The server answered a network-boot client (PXEClient, HTTPClient) with an address
    and no boot file, and the client never asked for one: the policy has nothing for it."""
    offers = [o for o in dhcp.offers(evidence, "offer", "ack")
              if o.client_class.startswith(_BOOT_CLIENTS)]
    if not offers:
        return None
    mac = offers[-1].mac
    mine = [o for o in offers if o.mac == mac]
    if any(o.file for o in mine) or _fetched_anything(evidence, mac):
        return None
    first = mine[0]
    why = [str(o.item.reason) for o in mine if isinstance(o.item, Event) and o.item.reason]
    arch = f", arch {first.arch}" if first.arch is not None else ""
    return Cause(
        "dhcp.offer_no_boot_file", evidence.timeline.failed_stage or "fw_dhcp",
        f"{q.plural(len(mine), 'DHCPv4 answer')} to {mac} ({first.client_class}{arch}) "
        "carried an address and no boot file, so the client had nothing to fetch"
        + (f"; the server's policy: {why[-1]}" if why else "")
        + ("" if isinstance(first.item, Event) else
           " (from packets only: why the server gave none is in its configuration)"),
        q.lines(evidence, [first.item, mine[-1].item]),
        "give this client's architecture a boot file (a rule or arch rule naming the NBP or "
        "URL for it; ISC dhcpd: `filename` in its class, Kea: `boot-file-name`, dnsmasq: "
        "`dhcp-boot` with the arch tag)")


_BOOT_CLIENTS = ("PXEClient", "HTTPClient")


def _fetched_anything(evidence: Evidence, mac: str) -> bool:
    """Whether ``mac`` asked for any file (TFTP RRQ or HTTP request), events or wire."""
    asked = [e for e in evidence.events if e.source in ("tftp", "http") and e.mac in ("", mac)]
    wire = [p for p in evidence.packets if (p.proto, p.kind) in (("tftp", "rrq"),
                                                                ("http", "request"))]
    return bool(asked or wire)
