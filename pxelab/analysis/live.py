"""Live guards: end a stage as soon as the boot server's events show the boot has failed.

The console is not the only witness. A DHCP answer withheld by the policy, requests
dropped without an answer, a file sent short: the guest sees these as silence and
waits (udhcpc retries for 12 s, EDK2 for a minute), while the server's events have
said so for seconds. Each guard here watches one such evidence class while the boot
runs and gives the console watcher a :class:`~pxelab.machine.console.GuardVerdict`
(:class:`~pxelab.machine.console.StageGuard`), so the verdict comes within a second of
the evidence instead of after the stage's timeout.

Guards take events from an :class:`~pxelab.core.events.EventLog` listener, on the
server's threads, and only queue them there; they judge on the watcher's thread, in
:meth:`EventGuard.check`. Each guard is made to stay quiet on a healthy boot's
near misses: a min-secs retry, OVMF's TFTP size probe, GRUB's open-and-close of its
config, the deliberate HTTPv4 404 of uefi_http_ipv6, PXELINUX's config search, iPXE's
silent wait for a configurator (tests/unit/test_live_guards.py has each one).
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Callable
from typing import ClassVar

from pxelab.core.events import Event, EventLog
from pxelab.machine.console import GuardVerdict, StageGuard

# Withheld reasons that are no refusal: ISC dhcpd's min-secs answers the same client's
# retry once its secs field has grown (server/policy.py), and a proxy that has no boot
# file for a client leaves it to the network's own DHCP server (server/dhcp4/proxy.py).
_NOT_REFUSALS = re.compile(r"secs=\d+ < min_secs=\d+|^(?:proxy mode|PXE boot server): "
                           r"no boot file")
# A fault that dropped a packet on arrival or on its way out: "dhcp6.release #3",
# "tftp.rrq #2 (ldlinux.c32)" (server/faults.py FaultInjector.packet).
_DROPPED = re.compile(r"^(?P<proto>dhcp4|dhcp6|tftp|http)\.(?P<kind>[a-z-]+) #\d+"
                      r"(?: \((?P<file>.*)\))?$")
# Messages a DHCPv6 server receives and must answer (server/dhcp6/server.py _received's
# kinds), and the request a DHCPv4 reply answers. Not Confirm: RFC 8415 18.3.3 has the
# server stay silent when it cannot judge the addresses, and the client goes on after
# CNF_MAX_RD without a Reply.
_DHCP6_REQUESTS = frozenset({"solicit", "request", "renew", "rebind", "release", "decline",
                             "inform"})
_DHCP4_ANSWERED = {"offer": "discover", "ack": "request", "nak": "request"}
_LABELS = {("dhcp4", "discover"): "DHCPv4 DISCOVER", ("dhcp4", "request"): "DHCPv4 REQUEST",
           ("tftp", "rrq"): "TFTP RRQ", ("http", "request"): "HTTP request",
           ("dhcp6", "inform"): "DHCPv6 Information-request"}
_PROTOCOLS = {"dhcp4": "DHCPv4", "dhcp6": "DHCPv6", "tftp": "TFTP", "http": "HTTP"}

Clock = Callable[[], float]


class EventGuard:
    """A :class:`~pxelab.machine.console.StageGuard` over the boot server's events.

    ``mac`` is the guest's: events about another MAC are not this boot's (events
    without one, TFTP's and most HTTP ones, are taken: a lab has one guest). In a lab of
    several guests ``mine`` says which events are this guest's (by MAC or address,
    :class:`pxelab.multiboot.attribution.Attribution`). ``clock`` gives the time on the
    events' clock (wall time).
    """

    code: ClassVar[str]

    def __init__(self, mac: str = "", clock: Clock = time.time,
                 mine: Callable[[Event], bool] | None = None) -> None:
        self.mac = mac
        self.clock = clock
        self.mine = mine
        self.log = logging.getLogger(f"{__name__}.{type(self).__name__}")
        self._lock = threading.Lock()
        self._inbox: list[Event] = []

    def observe(self, event: Event) -> None:
        """Queue ``event`` (an EventLog listener: runs on the recording thread, so it
        only appends; judging waits for :meth:`check`)."""
        with self._lock:
            self._inbox.append(event)

    def check(self) -> GuardVerdict | None:
        with self._lock:
            events, self._inbox = self._inbox, []
        for event in events:
            if self.mine is not None and not self.mine(event):
                continue
            if not (self.mac and event.mac and event.mac != self.mac):
                self.see(event)
        verdict = self.judge(self.clock())
        if verdict is not None:
            self.log.info("%s: %s", verdict.code, verdict.text)
        return verdict

    def see(self, event: Event) -> None:
        raise NotImplementedError

    def judge(self, now: float) -> GuardVerdict | None:
        raise NotImplementedError


class WithheldGuard(EventGuard):
    """The policy withheld the answer to the same client twice, and nothing answered it
    since: the client will only retry into the same rule."""

    code = "dhcp.withheld"
    TIMES = 2

    def __init__(self, mac: str = "", clock: Clock = time.time) -> None:
        super().__init__(mac, clock)
        self._streaks: dict[tuple[str, str], list[Event]] = {}

    def see(self, event: Event) -> None:
        if event.source not in ("dhcp4", "dhcp6") or not event.client:
            return
        key = (event.source, event.client)
        if event.kind == "withheld":
            if not _NOT_REFUSALS.search(event.reason):
                self._streaks.setdefault(key, []).append(event)
        elif event.answer:  # an offer, ack, advertise or reply: the client was answered
            self._streaks.pop(key, None)

    def judge(self, now: float) -> GuardVerdict | None:
        for (source, client), streak in self._streaks.items():
            if len(streak) >= self.TIMES:
                last = streak[-1]
                server = "DHCPv6" if source == "dhcp6" else "DHCP"
                text = (f"the {server} server withheld its answer from {client} "
                        f"{len(streak)} times ({last.request}): {last.reason}")
                code = "dhcp6.withheld" if source == "dhcp6" else self.code
                return GuardVerdict(code, text, now - streak[self.TIMES - 1].time)
        return None


class UnansweredGuard(EventGuard):
    """The same request arrived :attr:`REPEATS` times and got no answer for
    :attr:`SILENCE` seconds: the client retransmits into nothing.

    A request the server received is a DHCPv6 message event (``dhcp6.request``, ...)
    or a fault that dropped it or its answer (``fault.injected`` "dhcp4.ack #2"); pxelab's
    DHCPv4 and TFTP servers answer whatever reaches them, so only drops go unanswered.
    """

    code = "request.unanswered"
    REPEATS = 3
    SILENCE = 4.0

    def __init__(self, mac: str = "", clock: Clock = time.time) -> None:
        super().__init__(mac, clock)
        # (protocol, request kind, client, file) -> the unanswered arrivals, in order.
        self._pending: dict[tuple[str, str, str, str], list[Event]] = {}

    def see(self, event: Event) -> None:
        if (key := _request(event)) is not None:
            self._pending.setdefault(key, []).append(event)
            return
        for key in [k for k in self._pending if _answers(event, k)]:
            del self._pending[key]

    def judge(self, now: float) -> GuardVerdict | None:
        for (proto, kind, client, file), arrivals in self._pending.items():
            first = arrivals[0].time
            if len(arrivals) < self.REPEATS or now - first < self.SILENCE:
                continue
            established = max(arrivals[self.REPEATS - 1].time, first + self.SILENCE)
            label = _LABELS.get((proto, kind), f"{_PROTOCOLS[proto]} {kind.capitalize()}")
            dropped = [e.reason for e in arrivals if e.source == "fault"]
            text = (f"{len(arrivals)} {label}s from {client}"
                    + (f" for {file}" if file else "")
                    + f" got no answer in {now - first:.1f}s"
                    + (f" (dropped: {dropped[-1]})" if dropped else ""))
            return GuardVerdict(self.code, text, max(now - established, 0.0))
        return None


class ShortTransferGuard(EventGuard):
    """A file went out short (HTTP GET answered with fewer bytes than the file has, a
    TFTP transfer aborted or timed out part-way or ended below the tsize its OACK
    announced), no complete copy followed, and the
    client has asked for nothing for :attr:`QUIET` seconds."""

    code = "transfer.short"
    QUIET = 3.0

    def __init__(self, mac: str = "", clock: Clock = time.time) -> None:
        super().__init__(mac, clock)
        self._short: dict[tuple[str, str], Event] = {}
        self._last_request = 0.0
        # TFTP file -> the size its OACK announced (tsize): a transfer the server ended
        # below it leaves the client waiting for blocks that never come.
        self._announced: dict[str, int] = {}

    def _below_tsize(self, event: Event) -> bool:
        sent = event.details.get("bytes")
        return (event.source == "tftp" and event.kind == "sent" and isinstance(sent, int)
                and sent < self._announced.get(event.file, 0))

    def see(self, event: Event) -> None:
        if _is_request(event):
            self._last_request = max(self._last_request, event.time)
        key = (event.source, event.file)
        if event.source == "tftp" and event.kind == "oack":
            tsize = str((event.details.get("options") or {}).get("tsize", ""))
            if tsize.isdigit() and int(tsize):
                self._announced[event.file] = int(tsize)
        elif is_short(event) or self._below_tsize(event):
            self._short[key] = event
        elif _is_complete(event):
            self._short.pop(key, None)  # fetched again in full: the short copy is no loss

    def judge(self, now: float) -> GuardVerdict | None:
        if not self._short:
            return None
        short = max(self._short.values(), key=lambda e: e.time)
        if now - max(short.time, self._last_request) < self.QUIET:
            return None
        bytes_ = short.details["bytes"]
        size = (self._announced.get(short.file, short.details["size"])
                if short.kind == "sent" else short.details["size"])
        what = short.request if short.source == "http" else f"TFTP {short.file}"
        text = (f"{what}: {bytes_} of {size} bytes"
                + (f" ({short.reason})" if short.reason else "")
                + f", and no request from the client in the {self.QUIET:.0f}s since")
        return GuardVerdict(self.code, text, now - short.time)


class IgnoredOffersGuard(EventGuard):
    """A network-boot client (PXEClient, HTTPClient) left :attr:`TIMES` offers untaken for
    :attr:`SILENCE` seconds: EDK2 ignores an offer it cannot boot from (no boot file, no
    HTTPClient echo) and asks again for a minute before "PXE-E16: No valid offer
    received". Not iPXE (user class iPXE): it asks again a second after an offer while
    it waits for ProxyDHCP offers and takes one later, and says itself when none was
    usable."""

    code = "dhcp.offer_unused"
    TIMES = 2
    # Seconds from the first untaken offer: EDK2 asks again 4 s after its first DISCOVER
    # (then 8 s, 16 s later), having found nothing it can boot from in the first round.
    SILENCE = 3.0

    def __init__(self, mac: str = "", clock: Clock = time.time) -> None:
        super().__init__(mac, clock)
        self._ignored: dict[str, list[Event]] = {}

    def see(self, event: Event) -> None:
        if event.source == "dhcp4" and event.kind == "offer" and str(
                event.details.get("vendor_class") or "").startswith(_BOOT_CLIENTS) and (
                "iPXE" not in (event.details.get("user_classes") or ())):
            self._ignored.setdefault(event.client, []).append(event)
        elif event.source == "dhcp4" and event.kind in ("ack", "nak"):
            self._ignored.pop(event.client, None)  # it took one
        elif event.source in ("tftp", "http"):
            self._ignored.clear()

    def judge(self, now: float) -> GuardVerdict | None:
        for client, offers in self._ignored.items():
            if len(offers) >= self.TIMES and now - offers[0].time >= self.SILENCE:
                last = offers[-1]
                carried = (f"file {last.file}" if last.file else "no boot file") + (
                    f", option 60 {echo!r}" if (echo := last.details.get("vendor_class_echo"))
                    else ", no option 60")
                text = (f"{client} ({last.details.get('vendor_class')}) left "
                        f"{len(offers)} offers untaken ({carried}; the server's reason: "
                        f"{last.reason})")
                code = "dhcp.offer_no_boot_file" if not last.file else self.code
                return GuardVerdict(code, text, now - offers[self.TIMES - 1].time)
        return None


_BOOT_CLIENTS = ("PXEClient", "HTTPClient")


def live_guards(events: EventLog, mac: str = "",
                mine: Callable[[Event], bool] | None = None) -> tuple[StageGuard, ...]:
    """The guards for one boot of the guest with ``mac``, listening to ``events``; with
    ``mine``, only to the events it says are this guest's."""
    guards = (WithheldGuard(mac), UnansweredGuard(mac), ShortTransferGuard(mac),
              IgnoredOffersGuard(mac))
    for guard in guards:
        guard.mine = mine
    for guard in guards:
        events.subscribe(guard.observe)
    return guards


def _request(event: Event) -> tuple[str, str, str, str] | None:
    """The request ``event`` says arrived and awaits an answer, as a key, or None."""
    if event.source == "dhcp6" and event.kind in _DHCP6_REQUESTS and not event.answer:
        return ("dhcp6", event.kind, event.client, "")
    if event.source != "fault" or event.details.get("fault") != "DropPacket":
        return None
    found = _DROPPED.match(event.request)
    if found is None:
        return None
    proto, kind, file = found["proto"], found["kind"], found["file"] or ""
    if proto == "dhcp4":
        return ("dhcp4", _DHCP4_ANSWERED.get(kind, kind), event.client, "")
    if proto == "dhcp6":  # a dropped reply's request has its own event already
        return ("dhcp6", kind, event.client, "") if kind in _DHCP6_REQUESTS else None
    if (proto, kind) in (("tftp", "rrq"), ("http", "request")):
        return (proto, kind, event.client, file)
    return None


def _answers(event: Event, key: tuple[str, str, str, str]) -> bool:
    """Whether ``event`` answers (or decides on) the request ``key`` stands for."""
    proto, kind, client, file = key
    if event.source != proto or event.client != client:
        return False
    if event.kind == "withheld":  # decided: WithheldGuard's to judge
        return True
    if proto == "dhcp6":
        return bool(event.answer) and event.details.get("in_reply_to") == kind
    if proto == "dhcp4":
        return _DHCP4_ANSWERED.get(event.kind) == kind
    if proto == "tftp":
        return event.kind != "rrq" and event.file == file
    return event.kind not in ("timeout", "error")


def _is_request(event: Event) -> bool:
    """Whether ``event`` shows the client asking for something."""
    if event.source in ("dhcp4", "dhcp6", "fault"):
        return bool(event.client)
    if event.source == "tftp":
        return event.kind == "rrq"
    if event.source == "http":
        return event.kind not in ("timeout", "error")
    return (event.source, event.kind) == ("ra", "solicit")


def is_short(event: Event) -> bool:
    """Whether ``event`` ended a transfer that delivered less than the whole file."""
    sent, size = event.details.get("bytes"), event.details.get("size")
    if not isinstance(sent, int) or not isinstance(size, int) or sent >= size:
        return False
    if event.source == "http":
        # 206 answers a range: its size is the whole file's. HEAD has no body.
        return event.kind == "get" and event.details.get("status") == 200
    # OVMF asks for the size alone, then stops the transfer on purpose (ERROR 8).
    return (event.source == "tftp" and event.kind in ("aborted", "error")
            and not event.reason.startswith("size probe"))


def _is_complete(event: Event) -> bool:
    if event.source == "tftp":
        return event.kind == "sent"
    return (event.source == "http" and event.kind == "get"
            and event.details.get("status") in (200, 206) and not is_short(event))
