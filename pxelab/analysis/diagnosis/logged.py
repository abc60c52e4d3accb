"""A third-party DHCP server's own words for an answer it withheld, from its log.

pxelab's server says why it stayed silent in a ``withheld`` event; ISC dhcpd, dnsmasq
and Kea say it in their logs, at their default level, per client message:

- ISC dhcpd (server/dhcp.c): "DHCPDISCOVER from <mac> via br0: network 192.0.2.0/24: no
  free leases", ": unknown client", ": booting disallowed", ": ignored (not
  authoritative).", ": peer holds all free leases";
- dnsmasq (rfc2131.c, with log-dhcp or not): "DHCPDISCOVER(br0) <mac> no address
  available", "... ignored", "DHCPSOLICIT(br0) <duid> no addresses available";
- Kea: ALLOC_ENGINE_V4_ALLOC_FAIL / ALLOC_ENGINE_V6_ALLOC_FAIL (WARN).

min-secs has its own rule (:mod:`pxelab.analysis.diagnosis.minsecs`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from pxelab.analysis.diagnosis import query as q
from pxelab.analysis.evidence import Evidence, LogLine

_MAC = r"[0-9a-f]{2}(?::[0-9a-f]{2}){5}"
# daemon -> (pattern with "mac" where the line names one, "why"; the protocol).
_WITHHELD: tuple[tuple[str, re.Pattern[str], str], ...] = (
    ("dhcpd", re.compile(
        rf"(?:DHCP|BOOT)[A-Z]+ from (?P<mac>{_MAC}).*?: (?P<why>(?:network \S+: )?no free "
        r"leases|peer holds all free leases|unknown client|bootp disallowed|booting "
        r"disallowed|ignored.*|not authoritative.*|BOOTP from dynamic client and no dynamic "
        r"leases)$"), "dhcp4"),
    ("dnsmasq", re.compile(
        rf"DHCP(?:DISCOVER|REQUEST|INFORM)\(\S+\) (?:\S+ )?(?P<mac>{_MAC}) (?P<why>no address "
        r"available|no address configured|ignored.*)$"), "dhcp4"),
    ("dnsmasq", re.compile(
        r"DHCP(?:SOLICIT|REQUEST|INFORMATION-REQUEST)\(\S+\) (?:\S+ )?\S+ (?P<why>no "
        r"addresses available|no address configured|ignored.*)$"), "dhcp6"),
    ("kea-dhcp4", re.compile(rf"ALLOC_ENGINE_V4_ALLOC_FAIL.*?(?P<mac>{_MAC})?.*?: "
                             r"(?P<why>.*)$"), "dhcp4"),
    ("kea-dhcp6", re.compile(r"ALLOC_ENGINE_V6_ALLOC_FAIL.*?: (?P<why>.*)$"), "dhcp6"),
)
_SERVED = {"dhcp4": ("offer", "ack"), "dhcp6": ("advertise", "reply")}


@dataclass(frozen=True)
class Logged:
    """A daemon's lines that say it withheld its answers to one client."""

    daemon: str
    proto: str  # "dhcp4", "dhcp6"
    mac: str  # "" when the line names the client by DUID or not at all
    lines: tuple[LogLine, ...]
    reasons: tuple[str, ...]  # each reason once, in order


def withheld(evidence: Evidence) -> Logged | None:
    """The last client a third-party DHCP server withheld answers from and never served
    after (by its log and the wire), or None."""
    found: list[tuple[LogLine, str, str, str]] = []
    for daemon, pattern, proto in _WITHHELD:
        for line in q.daemon_lines(evidence, daemon, pattern):
            match = pattern.search(line.text)
            assert match is not None
            found.append((line, proto, match.groupdict().get("mac") or "", match["why"]))
    if not found:
        return None
    found.sort(key=lambda item: item[0].time)
    _, proto, mac, _ = found[-1]
    mine = [item for item in found if item[1:3] == (proto, mac)]
    last = mine[-1][0]
    served = [p for p in q.after(q.packets(evidence, proto, *_SERVED[proto]), last.time)
              if not mac or p.client == mac]
    if served:
        return None
    return Logged(last.source, proto, mac, tuple(item[0] for item in mine),
                  tuple(dict.fromkeys(item[3] for item in mine)))
