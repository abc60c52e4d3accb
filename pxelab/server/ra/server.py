"""RFC 4861 router advertisements on the lab interface.

Why: iPXE's "Configuring (net0 ...)" step waits for every configurator, and
its IPv6 one (ipxe/ipxe src/net/ndp.c, start_ipv6conf) sends router
solicitations until the first router advertisement arrives or its retry timer
gives up (~15 s in the 2019 build Debian ships, ~6 s since iPXE commit
6ccd5239b). Any RA received while that timer runs ends the wait
(ipv6conf_rx_router_advertisement); with neither M nor O set it finishes at
once, with M or O it goes on to DHCPv6 and waits for that too.

So we advertise at start, every ``interval`` seconds and in answer to each
solicitation, to ff02::1 from the interface's link-local address with hop
limit 255 (RFC 4861 6.1.2; Linux clients check both). Router lifetime 0 by
default: we are not a default router. ``router_lifetime`` > 0 makes us one, which
OVMF's HTTPv6 boot needs to start at once: HttpBootSetIp6Address looks for a
route to the server before it has parsed the server address from the URL
(edk2-stable202211 HttpBootClient.c), so only a default route (::/0) matches,
and without one it polls the route table for 10 s.

The rules of RFC 4861 we follow, and where we deviate:

- Received RS are validated (6.1.1): hop limit 255, code 0, length >= 8,
  no zero-length option, no source link-layer option from the unspecified
  address. Anything else is dropped with an ``ra.drop`` event.
- Multicast RAs, solicited or not, are at least ``min_interval``
  (MIN_DELAY_BETWEEN_RAS, 3 s) apart (6.2.6). A solicitation that comes
  sooner from a specified address is answered by unicast at once, which 6.2.6
  allows ("MAY choose to unicast the response"); one from ``::`` waits for
  the next multicast slot.
- Deviation: 6.2.6 delays every solicited RA by a random 0..MAX_RA_DELAY_TIME
  (0.5 s) so that several routers do not answer together. A lab link has one
  router and every boot waits on this answer, so ``response_delay`` is 0 by
  default; set it to 0.5 to behave by the book.
- Prefix information with L and A set (4.6.2), our source link-layer address
  (4.6.1), an MTU option when ``mtu`` is set (4.6.4), an RDNSS option
  (RFC 8106 5.1) when ``dns`` is set, its lifetime at least 3 intervals.

Faults: ``faults.packet("ra.advert", destination)`` before each RA: drop or delay.
A link-local address still in DAD is waited for (event ``ra.waiting``), never a crash.
Events (source ``ra``): ``solicit``, ``sent``, ``waiting``, ``error``, ``drop``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import random
import socket
import struct
import time
from dataclasses import dataclass
from ipaddress import IPv6Address, IPv6Network
from pathlib import Path

from pxelab.core.errors import ConfigError
from pxelab.core.events import EventLog
from pxelab.core.mac import format_mac, hardware_address
from pxelab.server.faults import FaultInjector
from pxelab.server.ra import codec
from pxelab.server.ra.codec import (
    PrefixInformation,
    RaDecodeError,
    RecursiveDnsServers,
    RouterAdvertisement,
    RouterSolicitation,
)
from pxelab.server.udp import join_ipv6_group

__all__ = ["RaSettings", "RouterAdvertiser", "link_local_address", "open_icmpv6_socket"]

log = logging.getLogger(__name__)

ALL_NODES = IPv6Address("ff02::1")
ALL_ROUTERS = IPv6Address("ff02::2")
UNSPECIFIED = IPv6Address("::")
ICMP6_FILTER = 1  # <netinet/icmp6.h>; Python's socket module lacks it
IFA_F_DADFAILED, IFA_F_TENTATIVE = 0x08, 0x40
MIN_DELAY_BETWEEN_RAS = 3.0  # RFC 4861 10
MAX_RA_DELAY_TIME = 0.5  # RFC 4861 10
ND_HOP_LIMIT = 255
IPV6_MIN_MTU = 1280  # RFC 8200 5


@dataclass(frozen=True)
class RaSettings:
    interface: str
    prefix: IPv6Network
    managed: bool = False
    other: bool = False
    interval: float = 5.0
    poll: float = 0.1  # how often to look again while the link-local address is tentative
    dns: tuple[IPv6Address, ...] = ()  # RDNSS option (RFC 8106) when not empty
    dns_lifetime: int | None = None  # None: max(3 * interval, 600) s (RFC 8106 5.1)
    mtu: int | None = None  # MTU option (RFC 4861 4.6.4) when set
    autonomous: bool = True  # prefix A flag: hosts may form SLAAC addresses
    valid_lifetime: int = 86400
    preferred_lifetime: int = 14400
    router_lifetime: int = 0  # seconds; 0: not a default router (RFC 4861 4.2)
    # Retrans Timer (RFC 4861 4.2, 6.3.4), ms; 0: unspecified. Hosts wait this long after
    # each neighbour solicitation, DAD's included (EDK2's Ip6 driver takes it over).
    retrans_timer: int = 0
    min_interval: float = MIN_DELAY_BETWEEN_RAS  # between multicast RAs
    response_delay: float = 0.0  # RFC: random 0..MAX_RA_DELAY_TIME; see the module doc

    def __post_init__(self) -> None:
        if self.interval <= 0:
            raise ConfigError(f"RA interval {self.interval} must be positive")
        if self.mtu is not None and not IPV6_MIN_MTU <= self.mtu <= 0xFFFFFFFF:
            raise ConfigError(f"RA mtu {self.mtu} is below the IPv6 minimum {IPV6_MIN_MTU}")
        if self.preferred_lifetime > self.valid_lifetime:
            raise ConfigError(f"RA preferred lifetime {self.preferred_lifetime} exceeds the "
                              f"valid lifetime {self.valid_lifetime}; hosts would ignore the "
                              "prefix (RFC 4862 5.5.3)")
        if not 0 <= self.router_lifetime <= 9000:
            raise ConfigError(f"RA router_lifetime {self.router_lifetime} is outside 0..9000 s "
                              "(RFC 4861 6.2.1 AdvDefaultLifetime)")
        if not 0 <= self.retrans_timer <= 0xFFFFFFFF:
            raise ConfigError(f"RA retrans_timer {self.retrans_timer} ms is outside 0..2^32-1 "
                              "(RFC 4861 4.2)")
        if not 0 <= self.response_delay <= MAX_RA_DELAY_TIME:
            raise ConfigError(f"RA response_delay {self.response_delay} is outside "
                              f"0..{MAX_RA_DELAY_TIME} (MAX_RA_DELAY_TIME)")

    @property
    def rdnss_lifetime(self) -> int:
        if self.dns_lifetime is not None:
            return self.dns_lifetime
        return max(math.ceil(3 * self.interval), 600)


def link_local_address(interface: str) -> tuple[IPv6Address | None, str]:
    """The interface's usable link-local address (this thread's namespace), or None and why.

    Reads /proc/thread-self/net/if_inet6: /proc/net follows the process's main
    thread, which may be in another network namespace than this one.
    """
    text = Path("/proc/thread-self/net/if_inet6").read_text()
    state = "no link-local address"
    for line in text.splitlines():
        fields = line.split()
        if len(fields) != 6 or fields[5] != interface:
            continue
        address = IPv6Address(bytes.fromhex(fields[0]))
        if not address.is_link_local:
            continue
        flags = int(fields[4], 16)
        if flags & IFA_F_DADFAILED:
            state = f"{address} failed duplicate address detection"
        elif flags & IFA_F_TENTATIVE:
            state = f"{address} is tentative (duplicate address detection running)"
        else:
            return address, "ok"
    return None, state


def open_icmpv6_socket(interface: str) -> socket.socket:
    """Raw ICMPv6 socket on ``interface`` that sees only router solicitations."""
    index = socket.if_nametoindex(interface)
    sock = socket.socket(socket.AF_INET6, socket.SOCK_RAW, socket.IPPROTO_ICMPV6)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, interface.encode())
        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_HOPS, 255)
        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_UNICAST_HOPS, 255)
        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_IF, index)
        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_LOOP, 0)
        # The hop limit of each RS comes with it: RFC 4861 6.1.1 wants 255.
        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_RECVHOPLIMIT, 1)
        # ICMP6_FILTER bitmap: a set bit blocks that type; pass only RS (133).
        blocked = bytearray(b"\xff" * 32)
        blocked[codec.ICMPV6_RS >> 5 << 2:(codec.ICMPV6_RS >> 5 << 2) + 4] = struct.pack(
            "=I", 0xFFFFFFFF & ~(1 << (codec.ICMPV6_RS & 31)))
        sock.setsockopt(socket.IPPROTO_ICMPV6, ICMP6_FILTER, bytes(blocked))
        # Solicitations go to all-routers; a host interface has not joined that group.
        join_ipv6_group(sock, ALL_ROUTERS, index)
        sock.setblocking(False)
    except BaseException:
        sock.close()
        raise
    return sock


class RouterAdvertiser:
    """Sends RAs on start, every ``interval`` seconds and in answer to each RS."""

    def __init__(self, settings: RaSettings, events: EventLog,
                 faults: FaultInjector | None = None) -> None:
        self.settings = settings
        self.events = events
        self.faults = FaultInjector((), events) if faults is None else faults
        self.sock: socket.socket | None = None
        self.index = 0
        self.sent = 0
        self._wake = asyncio.Event()
        self._reasons: list[str] = []
        self._task: asyncio.Task[None] | None = None
        self._unicasts: set[asyncio.Task[None]] = set()
        self._last_error = ""
        self._last_multicast = -math.inf

    def advertisement(self, lladdr: bytes | None) -> RouterAdvertisement:
        cfg = self.settings
        dns = RecursiveDnsServers(cfg.dns, cfg.rdnss_lifetime) if cfg.dns else None
        prefix = PrefixInformation(cfg.prefix, on_link=True, autonomous=cfg.autonomous,
                                   valid_lifetime=cfg.valid_lifetime,
                                   preferred_lifetime=cfg.preferred_lifetime)
        return RouterAdvertisement(
            managed=cfg.managed, other=cfg.other, router_lifetime=cfg.router_lifetime,
            retrans_timer=cfg.retrans_timer, source_lladdr=lladdr,
            mtu=cfg.mtu, prefixes=(prefix,), dns=dns)

    def open(self) -> None:
        """Create the socket (raises OSError; the caller turns it into ServerError)."""
        self.index = socket.if_nametoindex(self.settings.interface)
        self.sock = open_icmpv6_socket(self.settings.interface)

    def start(self) -> None:
        assert self.sock is not None, "open() first"
        loop = asyncio.get_running_loop()
        loop.add_reader(self.sock.fileno(), self._on_readable)
        self._task = loop.create_task(self._run())

    async def close(self) -> None:
        if self.sock is not None:
            asyncio.get_running_loop().remove_reader(self.sock.fileno())
        for task in [self._task, *self._unicasts]:
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        if self.sock is not None:
            self.sock.close()
            self.sock = None

    # -- receiving -------------------------------------------------------------------------

    def _on_readable(self) -> None:
        assert self.sock is not None
        try:
            data, ancillary, _, addr = self.sock.recvmsg(2048, socket.CMSG_SPACE(4))
        except (BlockingIOError, InterruptedError):
            return
        except OSError as exc:
            self.events.emit("ra", "error", reason=f"receive failed: {exc}")
            return
        source = IPv6Address(str(addr[0]).split("%")[0])
        scope = int(addr[3]) if len(addr) > 3 else self.index
        problem, message = self._validate(data, ancillary, source)
        if message is None:
            self.events.emit("ra", "drop", client=str(source), reason=problem,
                             details={"bytes": len(data)})
            return
        mac = format_mac(message.source_lladdr) if message.source_lladdr else None
        self.events.emit("ra", "solicit", client=str(source), request="router solicitation",
                         details={"source_lladdr": mac})
        self._answer(source, scope)

    @staticmethod
    def _validate(data: bytes, ancillary: list[tuple[int, int, bytes]],
                  source: IPv6Address) -> tuple[str, RouterSolicitation | None]:
        """RFC 4861 6.1.1 checks (the kernel has verified the checksum)."""
        hop_limits = [struct.unpack("=i", d[:4])[0] for level, kind, d in ancillary
                      if level == socket.IPPROTO_IPV6 and kind == socket.IPV6_HOPLIMIT]
        if hop_limits and hop_limits[0] != ND_HOP_LIMIT:
            return (f"hop limit {hop_limits[0]}, not {ND_HOP_LIMIT}: the solicitation was "
                    "forwarded by a router (RFC 4861 6.1.1)"), None
        try:
            message = codec.decode(data)
        except RaDecodeError as exc:
            return f"malformed: {exc}", None
        if not isinstance(message, RouterSolicitation):
            return "not a router solicitation", None
        if source == UNSPECIFIED and message.source_lladdr is not None:
            return ("source link-layer address option from the unspecified address "
                    "(RFC 4861 6.1.1)"), None
        return "", message

    def _answer(self, source: IPv6Address, scope: int) -> None:
        """Multicast if the rate limit allows, else unicast to a specified source."""
        since = time.monotonic() - self._last_multicast
        if since < self.settings.min_interval and source != UNSPECIFIED:
            task = asyncio.get_running_loop().create_task(
                self._unicast(source, scope, f"solicited by {source}"))
            self._unicasts.add(task)
            task.add_done_callback(self._unicasts.discard)
            return
        self._reasons.append(f"solicited by {source}")
        self._wake.set()

    async def _unicast(self, destination: IPv6Address, scope: int, reason: str) -> None:
        await self._response_delay()
        while True:
            address, _ = link_local_address(self.settings.interface)
            if address is not None:
                break
            await asyncio.sleep(self.settings.poll)
        await self._send(address, destination, scope, f"{reason} (unicast: multicast RA "
                                                       "sent less than "
                                                       f"{self.settings.min_interval}s ago)")

    async def _response_delay(self) -> None:
        if self.settings.response_delay > 0:
            await asyncio.sleep(random.uniform(0, self.settings.response_delay))

    # -- sending ---------------------------------------------------------------------------

    async def _run(self) -> None:
        self._reasons.append("startup")
        waiting_reported = ""
        while True:
            address, state = link_local_address(self.settings.interface)
            if address is None:
                if state != waiting_reported:
                    self.events.emit("ra", "waiting", reason=state,
                                     details={"interface": self.settings.interface})
                    waiting_reported = state
                await asyncio.sleep(self.settings.poll)
                continue
            if self._reasons:
                await self._multicast(address)
                continue
            self._wake.clear()
            try:
                async with asyncio.timeout(self.settings.interval):
                    await self._wake.wait()
            except TimeoutError:
                self._reasons.append("periodic")

    async def _multicast(self, address: IPv6Address) -> None:
        """Send one multicast RA for the queued reasons, no sooner than the rate limit."""
        solicited = any(r.startswith("solicited") for r in self._reasons)
        if solicited:
            await self._response_delay()
        wait = self._last_multicast + self.settings.min_interval - time.monotonic()
        if wait > 0:
            await asyncio.sleep(wait)  # solicitations meanwhile join this one
        reason = ", ".join(dict.fromkeys(self._reasons))
        self._reasons.clear()
        if not await self._send(address, ALL_NODES, self.index, reason):
            self._reasons.append(reason)
            await asyncio.sleep(self.settings.poll)

    async def _send(self, source: IPv6Address, destination: IPv6Address, scope: int,
                    reason: str) -> bool:
        """Send one RA; False if the socket refused it (the caller retries)."""
        assert self.sock is not None
        verdict = self.faults.packet("ra.advert", str(destination))
        if verdict.drop:
            self.events.emit("ra", "drop", client=str(destination), request=reason,
                             reason="fault: advertisement dropped")
            if destination == ALL_NODES:
                self._last_multicast = time.monotonic()
            return True
        if verdict.delay:
            await asyncio.sleep(verdict.delay)
        lladdr = hardware_address(self.sock, self.settings.interface)
        message = self.advertisement(lladdr)
        payload = codec.encode(message)
        pktinfo = source.packed + struct.pack("=I", scope)
        try:
            self.sock.sendmsg([payload], [(socket.IPPROTO_IPV6, socket.IPV6_PKTINFO, pktinfo)],
                              0, (str(destination), 0, 0, scope))
        except OSError as exc:
            # E.g. the address went tentative again or the link is down: the caller retries.
            error = f"send from {source} to {destination} failed: {exc}"
            if error != self._last_error:
                self.events.emit("ra", "error", reason=error)
                self._last_error = error
            return destination != ALL_NODES  # a lost unicast answer is not retried
        if destination == ALL_NODES:
            self._last_multicast = time.monotonic()
        self._last_error = ""
        self.sent += 1
        self._sent_event(message, source, destination, reason, lladdr)
        return True

    def _sent_event(self, message: RouterAdvertisement, source: IPv6Address,
                    destination: IPv6Address, reason: str, lladdr: bytes | None) -> None:
        flags = "".join(f for f, on in (("M", message.managed), ("O", message.other)) if on)
        dns = [str(a) for a in message.dns.addresses] if message.dns else []
        answer = (f"prefix {self.settings.prefix} flags {flags or '-'} "
                  f"lifetime {message.router_lifetime}")
        if dns:
            answer += f" rdnss {','.join(dns)}"
        self.events.emit(
            "ra", "sent", client=str(destination), request=reason, answer=answer,
            reason=reason,
            details={"source": str(source), "destination": str(destination),
                     "prefix": str(self.settings.prefix), "managed": message.managed,
                     "other": message.other, "dns": dns, "mtu": message.mtu,
                     "source_lladdr": format_mac(lladdr) if lladdr else None})


