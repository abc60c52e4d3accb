"""Minimal RFC 4861 router advertisements on the lab interface.

Why: iPXE's "Configuring (net0 ...)" step waits for every configurator, and
its IPv6 one (ipxe/ipxe src/net/ndp.c, start_ipv6conf) sends router
solicitations until the first router advertisement arrives or its retry timer
gives up (~15 s in the 2019 build Debian ships, ~6 s since iPXE commit
6ccd5239b). Any RA received while that timer runs ends the wait
(ipv6conf_rx_router_advertisement); with neither M nor O set it finishes at
once, with M or O it goes on to DHCPv6 and waits for that too.

So we answer each solicitation immediately and also advertise every
``interval`` seconds, to ff02::1 from the interface's link-local address
(RFC 4861 6.1.2 requires a link-local source and hop limit 255, which Linux
clients check). Router lifetime 0: we are not a default router. A link-local
address still in DAD is waited for (event ``ra.waiting``), never a crash.
Events (source ``ra``): ``solicit``, ``sent``, ``waiting``, ``error``, ``drop``.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import socket
import struct
from dataclasses import dataclass
from ipaddress import IPv6Address, IPv6Network
from pathlib import Path

from pxelab.events import EventLog
from pxelab.ra import codec
from pxelab.ra.codec import PrefixInformation, RaDecodeError, RouterAdvertisement

__all__ = ["RaSettings", "RouterAdvertiser", "link_local_address", "open_icmpv6_socket"]

log = logging.getLogger(__name__)

ALL_NODES = IPv6Address("ff02::1")
ALL_ROUTERS = IPv6Address("ff02::2")
ICMP6_FILTER = 1  # <netinet/icmp6.h>; Python's socket module lacks it
IFA_F_DADFAILED, IFA_F_TENTATIVE = 0x08, 0x40
SIOCGIFHWADDR = 0x8927


@dataclass(frozen=True)
class RaSettings:
    interface: str
    prefix: IPv6Network
    managed: bool = False
    other: bool = False
    interval: float = 5.0
    poll: float = 0.1  # how often to look again while the link-local address is tentative


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


def _hardware_address(sock: socket.socket, interface: str) -> bytes | None:
    try:
        info = fcntl.ioctl(sock.fileno(), SIOCGIFHWADDR,
                           struct.pack("256s", interface.encode()[:15]))
    except OSError:
        return None
    return info[18:24]


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
        # ICMP6_FILTER bitmap: a set bit blocks that type; pass only RS (133).
        blocked = bytearray(b"\xff" * 32)
        blocked[codec.ICMPV6_RS >> 5 << 2:(codec.ICMPV6_RS >> 5 << 2) + 4] = struct.pack(
            "=I", 0xFFFFFFFF & ~(1 << (codec.ICMPV6_RS & 31)))
        sock.setsockopt(socket.IPPROTO_ICMPV6, ICMP6_FILTER, bytes(blocked))
        # Solicitations go to all-routers; a host interface has not joined that group.
        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_JOIN_GROUP,
                        ALL_ROUTERS.packed + struct.pack("=I", index))
        sock.setblocking(False)
    except BaseException:
        sock.close()
        raise
    return sock


class RouterAdvertiser:
    """Sends RAs on start, every ``interval`` seconds and in answer to each RS."""

    def __init__(self, settings: RaSettings, events: EventLog) -> None:
        self.settings = settings
        self.events = events
        self.sock: socket.socket | None = None
        self.index = 0
        self.sent = 0
        self._wake = asyncio.Event()
        self._reasons: list[str] = []
        self._task: asyncio.Task[None] | None = None
        self._last_error = ""

    def advertisement(self, lladdr: bytes | None) -> RouterAdvertisement:
        return RouterAdvertisement(
            managed=self.settings.managed, other=self.settings.other, router_lifetime=0,
            source_lladdr=lladdr, prefixes=(PrefixInformation(self.settings.prefix),))

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
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self.sock is not None:
            self.sock.close()
            self.sock = None

    def _on_readable(self) -> None:
        assert self.sock is not None
        try:
            data, addr = self.sock.recvfrom(2048)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as exc:
            self.events.emit("ra", "error", reason=f"receive failed: {exc}")
            return
        source = str(addr[0]).split("%")[0]
        try:
            message = codec.decode(data)
        except RaDecodeError as exc:
            self.events.emit("ra", "drop", client=source, reason=f"malformed: {exc}")
            return
        if not isinstance(message, codec.RouterSolicitation):
            return
        mac = format_mac(message.source_lladdr)
        self.events.emit("ra", "solicit", client=source, request="router solicitation",
                         details={"source_lladdr": mac})
        self._reasons.append(f"solicited by {source}")
        self._wake.set()

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
                reason = ", ".join(dict.fromkeys(self._reasons))
                self._reasons.clear()
                if not self._send(address, reason):
                    self._reasons.append(reason)
                    await asyncio.sleep(self.settings.poll)
                    continue
            self._wake.clear()
            try:
                async with asyncio.timeout(self.settings.interval):
                    await self._wake.wait()
            except TimeoutError:
                self._reasons.append("periodic")

    def _send(self, source: IPv6Address, reason: str) -> bool:
        assert self.sock is not None
        lladdr = _hardware_address(self.sock, self.settings.interface)
        message = self.advertisement(lladdr)
        payload = codec.encode(message)
        pktinfo = source.packed + struct.pack("=I", self.index)
        try:
            self.sock.sendmsg([payload], [(socket.IPPROTO_IPV6, socket.IPV6_PKTINFO, pktinfo)],
                              0, (str(ALL_NODES), 0, 0, self.index))
        except OSError as exc:
            # E.g. the address went tentative again or the link is down: the caller retries.
            error = f"send from {source} failed: {exc}"
            if error != self._last_error:
                self.events.emit("ra", "error", reason=error)
                self._last_error = error
            return False
        self._last_error = ""
        self.sent += 1
        flags = "".join(f for f, on in (("M", message.managed), ("O", message.other)) if on)
        self.events.emit(
            "ra", "sent", client=str(ALL_NODES), request=reason,
            answer=f"prefix {self.settings.prefix} flags {flags or '-'} lifetime 0",
            reason=reason,
            details={"source": str(source), "prefix": str(self.settings.prefix),
                     "managed": message.managed, "other": message.other,
                     "source_lladdr": format_mac(lladdr)})
        return True


def format_mac(raw: bytes | None) -> str | None:
    return ":".join(f"{b:02x}" for b in raw) if raw else None
