"""Questions the diagnosis rules ask of a boot's evidence.

Rules read two views of the same boot: the boot server's events (what it
decided and did, pxelab.core.events) and the packet records of the lab capture
(what was on the wire, pxelab.analysis.evidence.PacketRecord). Events say why; the wire
shows what the server cannot see (a REQUEST that never came, a dropped RRQ).
Both carry wall-clock times on the same host clock, so they can be compared;
:func:`line` renders either as a timeline line (seconds since power-on).
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Iterable, Sequence
from typing import Any
from urllib.parse import urlsplit

from pxelab.analysis.evidence import Entry, Evidence, LogLine, PacketRecord, Source, log_entry
from pxelab.core.events import Event
from pxelab.machine.console import MilestoneHit

Item = Event | PacketRecord | MilestoneHit | LogLine

# How many timeline lines a cause quotes: enough to show the pattern, not the whole boot.
MAX_LINES = 6

# Stages after which the network boot program and its loader have done their work.
LINUX_STAGES = ("kernel", "initramfs", "initramfs_dhcp", "initramfs_ipv6", "nfs_root",
                "userspace")

# A completed TFTP transfer or HTTP download, as the server reports it.
_DELIVERED_HTTP = ("get",)


# -- selecting ---------------------------------------------------------------------------------

def events(evidence: Evidence, source: str, *kinds: str) -> list[Event]:
    """The server's events of ``source`` (and of one of ``kinds``, if given), in time order."""
    found = [e for e in evidence.events
             if e.source == source and (not kinds or e.kind in kinds)]
    return sorted(found, key=lambda e: e.time)


def packets(evidence: Evidence, proto: str, *kinds: str) -> list[PacketRecord]:
    """The capture's records of ``proto`` (and of one of ``kinds``, if given), in time order."""
    found = [p for p in evidence.packets
             if p.proto == proto and (not kinds or p.kind in kinds)]
    return sorted(found, key=lambda p: p.time)


def after(items: Iterable[Any], wall: float | None) -> list[Any]:
    """The events or packets at or after ``wall`` (all of them if ``wall`` is None)."""
    return [i for i in items if wall is None or i.time >= wall]


def detail(event: Event, key: str, default: Any = None) -> Any:
    value = event.details.get(key, default)
    return default if value is None else value


def field(packet: PacketRecord, key: str, default: Any = None) -> Any:
    value = packet.fields.get(key, default)
    return default if value is None else value


def hit(evidence: Evidence, name: str) -> MilestoneHit | None:
    return next((h for h in evidence.timeline.hits if h.name == name), None)


def reached_linux(evidence: Evidence) -> bool:
    """Whether the kernel started: the network boot program and its loader did their part."""
    return any(h.name in LINUX_STAGES for h in evidence.timeline.hits)


def wall(evidence: Evidence, seconds: float) -> float:
    """Seconds since power-on as a wall-clock time."""
    return evidence.started_wall + seconds


def console(evidence: Evidence) -> str:
    """What the console watcher saw at the end: its failure text and the console's tail."""
    timeline = evidence.timeline
    return "\n".join(part for part in (timeline.failure, timeline.console_tail) if part)


# -- files ---------------------------------------------------------------------------------------

def file_key(name: str) -> str:
    """A file as the data root knows it: "pxelinux.0", "grub/grub.cfg".

    DHCP hands out names and URLs ("http://192.0.2.1/ipxe.efi",
    "tftp://[2001:db8::1]/bootx64.efi"); TFTP asks for "/x" or "x"; HTTP for "/x".
    """
    text = name.strip()
    if "://" in text:
        text = urlsplit(text).path
    return text.lstrip("/")


def base(name: str) -> str:
    return posixpath.basename(file_key(name))


def event_file(event: Event) -> str:
    """The data-root file a TFTP or HTTP event is about ("" if none)."""
    return file_key(event.file)


def delivered(evidence: Evidence) -> list[Event]:
    """Server events of files delivered in full: TFTP "sent", HTTP GET 200."""
    found = events(evidence, "tftp", "sent")
    found += [e for e in events(evidence, "http", *_DELIVERED_HTTP)
              if detail(e, "status") == 200 and detail(e, "bytes", 0) >= detail(e, "size", 0)]
    return sorted(found, key=lambda e: e.time)


def refusals(evidence: Evidence) -> list[Event]:
    """TFTP "file not found" and "access violation" answers and HTTP 404s, one per file
    (HEAD and GET count once).

    PXELINUX that misses ldlinux.c32 beside itself goes on to absolute paths
    (/boot/isolinux/..., /syslinux/...), which a server that refuses absolute paths
    answers with ERROR 2: the same search, refused.
    """
    found = events(evidence, "tftp", "not_found", "denied")
    found += [e for e in events(evidence, "http", "get", "head") if detail(e, "status") == 404]
    seen: dict[tuple[str, int], Event] = {}
    for event in sorted(found, key=lambda e: e.time):
        # A HEAD then a GET of one file within a second: one refusal.
        seen.setdefault((event_file(event), int(event.time)), event)
    return sorted(seen.values(), key=lambda e: e.time)


def boot_files(evidence: Evidence) -> list[tuple[Event | PacketRecord, str]]:
    """The DHCP answers that named a boot file, with the file (as a data-root key): the
    server's events, else the answers on the wire."""
    found: list[tuple[Event | PacketRecord, str]] = [
        (event, file_key(event.file))
        for event in events(evidence, "dhcp4", "offer", "ack") + events(
            evidence, "dhcp6", "advertise", "reply") if event.file]
    if not found:
        for packet in packets(evidence, "dhcp4", "offer", "ack") + packets(
                evidence, "dhcp6", "advertise", "reply"):
            named = str(field(packet, "file", "") or field(packet, "boot_url", ""))
            if named:
                found.append((packet, file_key(named)))
    return sorted(found, key=lambda pair: pair[0].time)


def nbp(evidence: Evidence) -> str:
    """The network boot program: the facts' name, else the first boot file DHCP named."""
    if evidence.facts.nbp:
        return file_key(evidence.facts.nbp)
    files = boot_files(evidence)
    return files[0][1] if files else ""


def nbp_delivery(evidence: Evidence) -> Event | None:
    """The event of the NBP's first complete delivery (None: it never arrived)."""
    name = nbp(evidence)
    for event in delivered(evidence):
        if not name or event_file(event) == name or base(event_file(event)) == base(name):
            return event
    return None


_SEARCHED = re.compile(r"no regular file at (?P<path>\S+)")


def searched_directory(evidence: Evidence, event: Event) -> str:
    """The directory the server looked in for the file of a not-found ``event``."""
    found = _SEARCHED.search(event.reason)
    if found:
        return posixpath.dirname(found["path"].rstrip("'\""))
    root = evidence.facts.data_root
    folder = posixpath.dirname(event_file(event))
    return posixpath.join(root, folder) if root else (folder or "the data root")


# -- the client ------------------------------------------------------------------------------------

def client_mac(evidence: Evidence) -> str:
    """The guest's MAC, as DHCP saw it ("" if no DHCP message came)."""
    for event in sorted(evidence.events, key=lambda e: e.time):
        if event.source in ("dhcp4", "dhcp6") and re.fullmatch(
                r"[0-9a-f]{2}(:[0-9a-f]{2}){5}", event.mac):
            return event.mac
    return next((p.client for p in evidence.packets if p.client), "")


def server_hosts(evidence: Evidence) -> set[str]:
    """The boot server's own addresses (its "ready" event; its RAs' link-local source; the
    sources of the server-only messages on the wire)."""
    hosts: set[str] = set()
    for event in events(evidence, "server", "ready"):
        for key in ("ipv4", "ipv6"):
            value = event.details.get(key)
            if value:
                hosts.add(str(value).split("/")[0])
    hosts |= {str(e.details["source"]) for e in events(evidence, "ra", "sent")
              if e.details.get("source")}
    # Without the server's events (a third-party server): whoever sent server-only
    # messages on the wire (offers, advertises, router adverts).
    hosts |= {host(p.src) for p in evidence.packets
              if p.kind in _SERVER_MESSAGES.get(p.proto, ()) and not p.src.startswith("0.0.0.0")}
    return hosts


# Messages only a server sends (RFC 2131 3.1, RFC 8415 7.3).
_SERVER_MESSAGES = {"dhcp4": ("offer", "ack", "nak"),
                    "dhcp6": ("advertise", "reply", "reconfigure", "relay-repl"),
                    "ra": ("ra",)}


def host(address: str) -> str:
    """"192.0.2.1:69" -> "192.0.2.1", "[2001:db8::1]:69" -> "2001:db8::1"."""
    text = address.strip()
    if text.startswith("["):
        return text[1:].split("]")[0]
    if text.count(":") == 1:
        return text.split(":")[0]
    return text


def from_server(evidence: Evidence, packet: PacketRecord) -> bool:
    """Whether the boot server sent ``packet`` (else the guest did)."""
    if packet.kind in _SERVER_MESSAGES.get(packet.proto, ()):
        return True
    # Other messages may come from either side: the lab bridge itself sends router
    # solicitations when it comes up, from the address its RAs come from.
    if "from_client" in packet.fields:  # a TFTP ERROR says who sent it
        return not packet.fields["from_client"]
    return host(packet.src) in server_hosts(evidence)


# -- DHCP ------------------------------------------------------------------------------------------

def network_boot_never_started(evidence: Evidence) -> bool:
    """No DHCPv4 DISCOVER and no DHCPv6 Solicit came from the guest (events nor wire).

    False when nothing was recorded at all (no server, no capture): silence proves nothing.
    """
    if reached_linux(evidence) or not (evidence.events or evidence.packets):
        return False
    heard = [e for e in evidence.events if e.source in ("dhcp4", "dhcp6") and e.client]
    wire = [p for p in packets(evidence, "dhcp4") + packets(evidence, "dhcp6")
            if not from_server(evidence, p)]
    return not (heard or wire)


def message_type(event: Event) -> str:
    """The client message a DHCP event answers or reports, upper case ("DISCOVER")."""
    return str(event.details.get("message_type") or "").upper()


def requests_after(evidence: Evidence, mac: str, since: float, v6: bool = False) -> int:
    """REQUESTs (DHCPv6 Requests) ``mac`` sent at or after ``since``: events and wire."""
    source, kind = ("dhcp6", "REQUEST") if v6 else ("dhcp4", "REQUEST")
    seen = [e for e in after(events(evidence, source), since)
            if message_type(e) == kind and mac in (e.mac, e.client)]
    wire = [p for p in after(packets(evidence, source, "request"), since)
            if not p.client or p.client == mac]
    return max(len(seen), len(wire))


def daemon_lines(evidence: Evidence, source: str, pattern: re.Pattern[str]) -> list[LogLine]:
    """The lines daemon ``source`` logged after power-on that match ``pattern``.

    Before power-on the lab's own readiness probes are the only clients.
    """
    return [line for line in evidence.daemon_log if line.source == source
            and line.time >= evidence.started_wall and pattern.search(line.text)]


# -- rendering ---------------------------------------------------------------------------------

def entry(evidence: Evidence, item: Item) -> Entry:
    if isinstance(item, MilestoneHit):
        return Entry(item.seconds, Source.CONSOLE, item.name, item.text)
    if isinstance(item, LogLine):
        return log_entry(evidence.seconds(item.time), item)
    if isinstance(item, Event):
        return Entry(evidence.seconds(item.time), Source.SERVER, f"{item.source}.{item.kind}",
                     item.summary())
    return Entry(evidence.seconds(item.time), Source.PACKET, f"{item.proto}.{item.kind}",
                 item.summary)


def line(evidence: Evidence, item: Item) -> str:
    """One timeline line, seconds first, as :meth:`Evidence.entries` renders it."""
    return entry(evidence, item).render()


def failure_line(evidence: Evidence) -> str | None:
    timeline = evidence.timeline
    if not timeline.failed_stage:
        return None
    at = timeline.failed_at
    if at is None:
        at = max((evidence.seconds(e.time) for e in evidence.events), default=0.0)
    return Entry(at, Source.CONSOLE, f"FAILED {timeline.failed_stage}",
                 timeline.failure or "").render()


def lines(evidence: Evidence, items: Sequence[Item | None], *,
          failure: bool = True) -> tuple[str, ...]:
    """The timeline lines of ``items`` in time order, at most :data:`MAX_LINES`.

    A long run keeps its first and last lines and says how many it left out;
    ``failure`` appends the console's failure line.
    """
    unique: dict[int, Item] = {id(i): i for i in items if i is not None}
    entries = sorted((entry(evidence, i) for i in unique.values()), key=lambda e: e.seconds)
    rendered = [e.render() for e in entries]
    room = MAX_LINES - (1 if failure else 0)
    if len(rendered) > room:
        keep = room - 1
        head, tail = rendered[:keep - 1], rendered[-1]
        rendered = [*head, f"... {len(rendered) - keep} more like these ...", tail]
    end = failure_line(evidence) if failure else None
    return (*rendered, *([end] if end else []))


def seconds(evidence: Evidence, wall: float) -> str:
    """A wall-clock time as people read it on the timeline: "12.3s" since power-on."""
    return f"{evidence.seconds(wall):.1f}s"


def plural(count: int, word: str) -> str:
    return f"{count} {word}" + ("" if count == 1 else "s")
