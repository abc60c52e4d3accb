"""The boot server's lifecycle: one thread, one asyncio loop, every protocol.

Like aiosmtpd's Controller: :class:`BootServer` starts a thread that enters
the lab's network namespace (namespaces are per thread, see
:mod:`pxelab.core.netns`), creates every socket there, runs the loop, reports
"ready" and re-raises in the caller whatever went wrong while starting. The
protocols (:mod:`pxelab.server.dhcp4`, :mod:`pxelab.server.dhcp6`,
:mod:`pxelab.server.tftp`, :mod:`pxelab.server.http`, :mod:`pxelab.server.ra`) do the
talking; a :class:`~pxelab.server.policy.BootPolicy` makes the per-client decisions;
everything lands in the :class:`EventLog`.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import socket
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from ipaddress import IPv4Interface, IPv6Interface
from pathlib import Path
from typing import Any, TypeVar

from pxelab.core.errors import ConfigError, ServerError
from pxelab.core.events import EventLog
from pxelab.core.mac import hardware_address
from pxelab.core.netns import thread_in_namespace
from pxelab.core.resource import Resource
from pxelab.server.clients import ClientDirectory
from pxelab.server.dhcp4.leases import LeasePool
from pxelab.server.dhcp4.proxy import PXE_PORT, ProxyDhcp4Protocol
from pxelab.server.dhcp4.server import (
    SERVER_PORT,
    BaseDhcp4Protocol,
    Dhcp4Protocol,
    Dhcp4Settings,
    open_dhcp4_socket,
    reserve_fixed,
)
from pxelab.server.dhcp6.leases import Lease6Pool
from pxelab.server.dhcp6.server import Dhcp6Protocol, open_dhcp6_socket, server_duid
from pxelab.server.faults import Fault, FaultInjector
from pxelab.server.http.server import HttpServer, open_tcp_socket
from pxelab.server.policy import BootPolicy
from pxelab.server.ra.server import RouterAdvertiser
from pxelab.server.settings import (
    Dhcp4Config,
    Dhcp4Mode,
    Dhcp6Config,
    HttpConfig,
    RaConfig,
    TftpConfig,
)
from pxelab.server.tftp.files import DataRoot
from pxelab.server.tftp.server import TftpServer, open_udp_socket
from pxelab.server.udp import datagram_endpoint

__all__ = ["BootServer", "Dhcp4Config", "Dhcp4Mode", "Dhcp6Config", "HttpConfig", "RaConfig",
           "ServerConfig", "TftpConfig"]

T = TypeVar("T")

DEFAULT_IPV4 = IPv4Interface("192.0.2.1/24")
DEFAULT_IPV6 = IPv6Interface("2001:db8::1/64")

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ServerConfig:
    """Everything the boot server serves and where; parsed once, never mutated.

    Where it serves and what every protocol shares are fields of their own; each
    protocol's settings are its part (:mod:`pxelab.server.settings`), e.g.
    ``ServerConfig(data_root=root, ra=RaConfig(managed=True))``. :meth:`only` turns
    the protocols not named off.
    """

    interface: str = "br0"
    ipv4: IPv4Interface = DEFAULT_IPV4
    ipv6: IPv6Interface | None = DEFAULT_IPV6  # None: no DHCPv6, no RA, IPv4 sockets only
    data_root: Path = Path("/srv/pxelab")  # one root shared by TFTP and HTTP
    # DHCPv4 lease and DHCPv6 valid lifetime.
    lease_seconds: int = Dhcp4Settings.lease_seconds
    dhcp4: Dhcp4Config = field(default_factory=Dhcp4Config)
    dhcp6: Dhcp6Config = field(default_factory=Dhcp6Config)
    tftp: TftpConfig = field(default_factory=TftpConfig)
    http: HttpConfig = field(default_factory=HttpConfig)
    ra: RaConfig = field(default_factory=RaConfig)
    ready_timeout: float = 10.0

    def __post_init__(self) -> None:
        first, last = self.dhcp4.pool
        network = self.ipv4.network
        if first not in network or last not in network:
            raise ConfigError(f"pool {first}-{last} is not inside {network}; "
                              "choose pool addresses from the server's subnet")
        if int(last) < int(first):
            raise ConfigError(f"pool end {last} is before pool start {first}; swap them")
        if self.lease_seconds < 60:
            raise ConfigError(f"lease_seconds={self.lease_seconds} is under 60; use 60 or more")

    @classmethod
    def only(cls, *protocols: str, **fields: Any) -> ServerConfig:
        """A config serving ``protocols`` (of dhcp4, dhcp6, tftp, http, ra) and no other."""
        off: dict[str, Any] = {
            "dhcp4": Dhcp4Config(mode=Dhcp4Mode.OFF), "dhcp6": Dhcp6Config(enabled=False),
            "tftp": TftpConfig(enabled=False), "http": HttpConfig(enabled=False),
            "ra": RaConfig(enabled=False)}
        unknown = set(protocols) - set(off)
        if unknown:
            raise ConfigError(f"ServerConfig.only: {', '.join(sorted(unknown))} is not a "
                              f"protocol; name some of {', '.join(off)}")
        return cls(**{name: config for name, config in off.items() if name not in protocols}
                   | fields)


@dataclass
class _Running:
    """What the worker thread opened, so that stop can close it."""

    transports: list[asyncio.BaseTransport] = field(default_factory=list)
    servers: list[asyncio.AbstractServer] = field(default_factory=list)
    tftp: list[TftpServer] = field(default_factory=list)
    advertiser: RouterAdvertiser | None = None


class BootServer(Resource):
    """DHCPv4 + TFTP + HTTP + RA for one lab interface, run in a background thread.

    Use as a context manager (or :meth:`start`/:meth:`stop`); :meth:`start`
    returns once every socket is bound, or raises :class:`ServerError`
    saying what failed and what to do. ``faults`` are injected by every protocol
    (:mod:`pxelab.server.faults`); the policy decides, the faults break.
    """

    def __init__(self, config: ServerConfig, policy: BootPolicy, events: EventLog,
                 namespace: str | None = None, faults: Sequence[Fault] = ()) -> None:
        self.config = config
        self.policy = policy
        self.events = events
        self.namespace = namespace
        self.leases = LeasePool(*config.dhcp4.pool, config.lease_seconds,
                                exclude=frozenset({config.ipv4.ip}))
        self.leases6: Lease6Pool | None = None  # made when DHCPv6 starts, kept across restarts
        self.faults = FaultInjector(tuple(faults), events)  # beside the policy, not in it
        self.clients = ClientDirectory(events)  # who has which address, for HTTP templates
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._ready = threading.Event()
        self._stop_requested = threading.Event()
        self._failure: BaseException | None = None

    def __repr__(self) -> str:
        return (f"BootServer({self.config.interface} {self.config.ipv4} "
                f"namespace={self.namespace or 'host'})")

    # -- lifecycle ---------------------------------------------------------------------------


    def start(self) -> None:
        if self._thread is not None:
            raise ServerError(f"{self!r} is already running; stop() it before starting again")
        root = self.config.data_root
        if not root.is_dir():
            raise ConfigError(f"data_root {root} is not a directory; create it or pass "
                              "ServerConfig(data_root=...) pointing at the boot files")
        self._ready.clear()
        self._stop_requested.clear()
        self._failure = None
        self._thread = threading.Thread(
            target=self._work, name=f"pxelab-bootserver-{self.namespace or 'host'}",
            daemon=True)
        self._thread.start()
        if not self._ready.wait(self.config.ready_timeout):
            self.stop()
            raise ServerError(f"{self!r} did not become ready within "
                              f"{self.config.ready_timeout}s; see the event log")
        if self._failure is not None:
            failure = self._failure
            self._thread.join(self.config.ready_timeout)
            self._thread = None
            if isinstance(failure, ServerError | ConfigError):
                raise failure
            raise ServerError(f"{self!r} failed to start: {failure!r}") from failure

    def stop(self, timeout: float = 10.0) -> None:
        # Flag first, loop second: a worker still starting checks the flag once its loop
        # exists (see _serve), so the request cannot fall between the two.
        self._stop_requested.set()
        thread, loop, stop = self._thread, self._loop, self._stop
        if thread is None:
            return
        if loop is not None and stop is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
                loop.call_soon_threadsafe(stop.set)
        thread.join(timeout)
        if thread.is_alive():
            raise ServerError(f"{self!r} did not stop within {timeout}s")
        self._thread = None

    # -- worker thread -----------------------------------------------------------------------

    def _work(self) -> None:
        try:
            with thread_in_namespace(self.namespace):
                asyncio.run(self._serve())
        except BaseException as exc:  # reported to start(), or logged if we were running
            if not self._ready.is_set():
                self.events.emit("server", "error", reason=f"start failed: {exc}")
                self._failure = exc
            else:
                log.exception("%r crashed", self)
                self.events.emit("server", "error", reason=f"crashed: {exc!r}")
        finally:
            self._ready.set()

    async def _serve(self) -> None:
        loop = asyncio.get_running_loop()
        self._loop = loop
        self._stop = asyncio.Event()
        if self._stop_requested.is_set():
            self._stop.set()
        loop.set_exception_handler(self._on_loop_exception)
        running = _Running()
        try:
            await self._open_all(running)
            self.events.emit("server", "ready", answer=repr(self),
                             details={"namespace": self.namespace,
                                      "interface": self.config.interface,
                                      "ipv4": str(self.config.ipv4),
                                      "ipv6": str(self.config.ipv6) if self.config.ipv6
                                      else None,
                                      "data_root": str(self.config.data_root)})
            self._ready.set()
            await self._stop.wait()
        finally:
            await self._close_all(running)
            if self._ready.is_set():
                self.events.emit("server", "stopped", answer=repr(self))

    async def _open_all(self, running: _Running) -> None:
        cfg = self.config
        loop = asyncio.get_running_loop()
        try:
            socket.if_nametoindex(cfg.interface)
        except OSError:
            raise ServerError(
                f"interface {cfg.interface!r} does not exist in namespace "
                f"{self.namespace or '(host)'}; create the lab network first or set "
                "ServerConfig(interface=...)") from None
        root = DataRoot(cfg.data_root, allow_absolute=cfg.tftp.allow_absolute)
        if cfg.dhcp4.enabled:
            for port, dhcp4 in self._dhcp4_protocols():
                sock = self._bind("DHCPv4", "0.0.0.0", port,
                                  partial(open_dhcp4_socket, cfg.interface, port))
                running.transports.append(datagram_endpoint(loop, dhcp4, sock))
        if cfg.dhcp6.enabled and cfg.ipv6 is not None:
            await self._open_dhcp6(running, cfg.ipv6)
        if cfg.tftp.enabled:
            tftp = TftpServer(root, cfg.tftp.settings(cfg.interface), self.events, self.faults)
            running.tftp.append(tftp)  # closed with its listeners and transfers
            port = cfg.tftp.port
            for family, host in self._families():
                tftp.listen(self._bind("TFTP", host, port, partial(
                    open_udp_socket, family, host, port, cfg.interface)))
        if cfg.http.enabled:
            http = HttpServer(root, self.events, cfg.http.settings(),
                              clients=self.clients, faults=self.faults)
            port = cfg.http.port
            for family, host in self._families():
                sock = self._bind("HTTP", host, port, partial(
                    open_tcp_socket, family, host, port, cfg.interface))
                running.servers.append(await http.serve(sock))
        if cfg.ra.enabled and cfg.ipv6 is not None:
            advertiser = RouterAdvertiser(
                cfg.ra.settings(cfg.interface, cfg.ipv6.network, cfg.dhcp6.dns),
                self.events, self.faults)
            self._bind("router advertisements", "ICMPv6 raw", 0, advertiser.open)
            running.advertiser = advertiser
            advertiser.start()

    async def _open_dhcp6(self, running: _Running, ipv6: IPv6Interface) -> None:
        cfg = self.config
        first, last = cfg.dhcp6.pool
        if first not in ipv6.network or last not in ipv6.network:
            raise ConfigError(f"dhcp6 pool {first}-{last} is not inside {ipv6.network}; choose "
                              "pool addresses from the server's IPv6 prefix")
        if int(last) < int(first):
            raise ConfigError(f"dhcp6 pool end {last} is before its start {first}; swap them")
        if self.leases6 is None:
            self.leases6 = Lease6Pool(first, last, cfg.lease_seconds,
                                      exclude=frozenset({ipv6.ip}))
        leases = self.leases6
        settings = cfg.dhcp6.settings(ipv6, cfg.lease_seconds)
        sock = self._bind("DHCPv6", "[::]", 547, partial(open_dhcp6_socket, cfg.interface))
        duid = server_duid(hardware_address(sock, cfg.interface), cfg.interface)
        dhcp6 = Dhcp6Protocol(settings, duid, self.policy, leases, self.events,
                              faults=self.faults)
        running.transports.append(datagram_endpoint(asyncio.get_running_loop(), dhcp6, sock))

    def _dhcp4_protocols(self) -> list[tuple[int, BaseDhcp4Protocol]]:
        """Full mode: one server on 67. Proxy mode: proxy offers on 67, PXE boot server on 4011."""
        cfg = self.config
        settings = cfg.dhcp4.settings(cfg.ipv4, cfg.lease_seconds)
        if cfg.dhcp4.mode is Dhcp4Mode.PROXY:
            return [(port, ProxyDhcp4Protocol(settings, self.policy, self.events, self.faults,
                                              port=port)) for port in (SERVER_PORT, PXE_PORT)]
        reserve_fixed(self.leases, self.policy.fixed_addresses, settings)
        return [(SERVER_PORT, Dhcp4Protocol(settings, self.policy, self.leases, self.events,
                                            self.faults))]

    def _families(self) -> list[tuple[socket.AddressFamily, str]]:
        families = [(socket.AF_INET, "0.0.0.0")]
        if self.config.ipv6 is not None:
            families.append((socket.AF_INET6, "::"))
        return families

    def _bind(self, what: str, host: str, port: int, opener: Callable[[], T]) -> T:
        """Run ``opener``; turn its OSError into a ServerError that says what to do."""
        try:
            return opener()
        except OSError as exc:
            where = f"{host}:{port}" if port else host
            ns = self.namespace or "the host namespace"
            hint = {
                errno.EADDRINUSE: f"another server already uses port {port} in {ns} "
                                  "(dnsmasq, tftpd-hpa, a previous BootServer?); stop it",
                errno.EACCES: "binding privileged ports and raw sockets needs root "
                              "(or CAP_NET_BIND_SERVICE/CAP_NET_RAW)",
                errno.EPERM: "raw sockets and SO_BINDTODEVICE need root or CAP_NET_RAW",
                errno.ENODEV: f"interface {self.config.interface} is missing in {ns}",
                errno.EAFNOSUPPORT: "IPv6 is disabled here; set ServerConfig(ipv6=None)",
                errno.EADDRNOTAVAIL: f"the address is not configured in {ns}",
            }.get(exc.errno or 0, "see the error above")
            raise ServerError(f"cannot open {what} socket on {where} "
                              f"(interface {self.config.interface}): {exc.strerror}; "
                              f"{hint}") from exc

    async def _close_all(self, running: _Running) -> None:
        if running.advertiser is not None:
            await running.advertiser.close()
        for protocol in running.tftp:
            protocol.close()
        for transport in running.transports:
            transport.close()
        for server in running.servers:
            server.close()
        for server in running.servers:
            # Keep-alive connections would hold wait_closed() open (3.12+); do not wait long.
            try:
                async with asyncio.timeout(1.0):
                    await server.wait_closed()
            except TimeoutError:
                pass
        await asyncio.sleep(0)  # let transports run their connection_lost callbacks

    def _on_loop_exception(self, loop: asyncio.AbstractEventLoop,
                           context: dict[str, object]) -> None:
        exc = context.get("exception")
        self.events.emit("server", "error", reason=str(context.get("message", "")),
                         details={"exception": repr(exc) if exc else None})
        loop.default_exception_handler(context)
