"""Router advertisements (RFC 4861, RFC 8106) against scapy-built solicitations.

Layout: tests/netns/nslab.py's two namespaces. A RouterAdvertiser runs on its
own asyncio loop in a thread inside the server namespace (so its settings,
rate limit included, can be chosen per module); the client side sends whole
Ethernet frames from an AF_PACKET socket on eth0 (any hop limit, source
address or broken option) and dissects what comes back with scapy.
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Callable, Iterator
from ipaddress import IPv6Address, IPv6Network
from pathlib import Path

import pytest
from nslab import CLIENT6, Lab, event
from scapy.layers.inet6 import (
    ICMPv6ND_RA,
    ICMPv6ND_RS,
    ICMPv6NDOptMTU,
    ICMPv6NDOptPrefixInfo,
    ICMPv6NDOptRDNSS,
    ICMPv6NDOptSrcLLAddr,
    IPv6,
)
from scapy.layers.l2 import Ether
from scapy.packet import Packet, Raw

from pxelab.core.errors import ConfigError
from pxelab.core.events import EventLog
from pxelab.core.netns import thread_in_namespace
from pxelab.server.bootserver import BootServer, Dhcp6Config, RaConfig, ServerConfig
from pxelab.server.faults import DelayPacket, DropPacket, FaultInjector
from pxelab.server.policy import RulePolicy
from pxelab.server.ra.server import RaSettings, RouterAdvertiser

pytestmark = pytest.mark.netns

ETH_P_ALL = 0x0003
PACKET_OUTGOING = 4
CLIENT_MAC = "02:00:00:00:00:50"
DNS = (IPv6Address("2001:db8::53"),)
MIN_INTERVAL = 1.0


class AdvertiserThread:
    """A RouterAdvertiser on its own loop in a thread in ``namespace``; a context manager."""

    def __init__(self, namespace: str, settings: RaSettings, events: EventLog,
                 faults: FaultInjector | None = None) -> None:
        self.namespace = namespace
        self.advertiser = RouterAdvertiser(settings, events, faults)
        self._ready = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._thread = threading.Thread(target=self._work, daemon=True)

    def _work(self) -> None:
        with thread_in_namespace(self.namespace):
            asyncio.run(self._main())

    async def _main(self) -> None:
        self._loop, self._stop = asyncio.get_running_loop(), asyncio.Event()
        try:
            self.advertiser.open()
            self.advertiser.start()
            self._ready.set()
            await self._stop.wait()
        finally:
            self._ready.set()
            await self.advertiser.close()

    def __enter__(self) -> RouterAdvertiser:
        self._thread.start()
        assert self._ready.wait(5), "advertiser did not start"
        return self.advertiser

    def __exit__(self, *exc: object) -> None:
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(5)


class Wire:
    """Whole frames in and out of the client's eth0."""

    def __init__(self, lab: Lab) -> None:
        with thread_in_namespace(lab.client):
            self.sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW,
                                      socket.htons(ETH_P_ALL))
        self.sock.bind(("eth0", 0))
        self.sock.settimeout(0.2)

    def send_rs(self, *, src: str = CLIENT6, hlim: int = 255,
                options: Packet | bytes | None = None, code: int = 0) -> None:
        rs = ICMPv6ND_RS(code=code)
        if options is None:
            options = ICMPv6NDOptSrcLLAddr(lladdr=CLIENT_MAC)
        frame = (Ether(src=CLIENT_MAC, dst="33:33:00:00:00:02")
                 / IPv6(src=src, dst="ff02::2", hlim=hlim) / rs
                 / (Raw(options) if isinstance(options, bytes) else options))
        self.sock.send(bytes(frame))

    def next_ra(self, timeout: float,
                accept: Callable[[Packet], bool] = lambda p: True) -> Packet:
        """The next incoming RA that ``accept`` likes, within ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                data, addr = self.sock.recvfrom(65536)
            except TimeoutError:
                continue
            if addr[2] == PACKET_OUTGOING:
                continue
            frame = Ether(data)
            if ICMPv6ND_RA in frame and accept(frame):
                return frame
        raise AssertionError(f"no router advertisement within {timeout}s")

    def close(self) -> None:
        self.sock.close()


@pytest.fixture(scope="module")
def advertiser(lab: Lab, events: EventLog) -> Iterator[RouterAdvertiser]:
    """Module scope: RAs on br0 with RDNSS and MTU, 1 s between multicasts, 30 s period."""
    settings = RaSettings("br0", IPv6Network("2001:db8::/64"), managed=True, interval=30.0,
                          dns=DNS, mtu=1400, min_interval=MIN_INTERVAL)
    with AdvertiserThread(lab.server, settings, events) as running:
        # The bridge's link-local address is in DAD for about a second first.
        events.wait_for(lambda e: e.source == "ra" and e.kind == "sent"
                        and "startup" in e.reason, 5, "startup ra.sent")
        yield running


@pytest.fixture
def wire(lab: Lab) -> Iterator[Wire]:
    made = Wire(lab)
    yield made
    made.close()


def test_solicited_ra_carries_everything(advertiser: RouterAdvertiser, wire: Wire,
                                         events: EventLog) -> None:
    wire.send_rs()
    frame = wire.next_ra(2)  # multicast, or unicast if the last multicast was too recent
    ip = frame[IPv6]
    assert ip.hlim == 255 and ip.src.startswith("fe80::")
    ra = frame[ICMPv6ND_RA]
    assert ra.M == 1 and ra.O == 0 and ra.routerlifetime == 0
    info = frame[ICMPv6NDOptPrefixInfo]
    assert (info.prefix, info.prefixlen, info.L, info.A) == ("2001:db8::", 64, 1, 1)
    assert info.validlifetime == 86400 and info.preferredlifetime == 14400
    assert frame[ICMPv6NDOptSrcLLAddr].lladdr == frame[Ether].src
    assert frame[ICMPv6NDOptMTU].mtu == 1400
    rdnss = frame[ICMPv6NDOptRDNSS]
    assert rdnss.dns == ["2001:db8::53"] and rdnss.lifetime == 600  # max(3 intervals, 600 s)
    solicit = events.wait_for(event("ra", "solicit", client=CLIENT6), 2, "ra.solicit")
    assert solicit.details["source_lladdr"] == CLIENT_MAC


def test_rate_limit_unicasts_the_answer(advertiser: RouterAdvertiser, wire: Wire,
                                        events: EventLog) -> None:
    wire.send_rs()
    ours = lambda f: f[IPv6].dst in (CLIENT6, "ff02::1")  # noqa: E731
    wire.next_ra(2, ours)  # multicast (then the next is too soon) or already unicast
    wire.send_rs()  # within MIN_INTERVAL of a multicast RA: a unicast answer, at once
    second = wire.next_ra(0.5, ours)
    assert second[IPv6].dst == CLIENT6
    sent = events.wait_for(event("ra", "sent", client=CLIENT6), 2, "unicast ra.sent")
    assert "unicast" in sent.reason


def test_solicitation_from_unspecified_waits_for_the_multicast_slot(
        advertiser: RouterAdvertiser, wire: Wire, events: EventLog) -> None:
    wire.send_rs(src="::", options=b"")  # no source link-layer option from ::
    # A periodic RA may go out meanwhile; wait for the one this solicitation asked for.
    solicited = events.wait_for(
        lambda e: (e.source, e.kind, e.client) == ("ra", "sent", "ff02::1")
        and "solicited by ::" in e.reason, MIN_INTERVAL + 2, "multicast RA solicited by ::")
    multicasts = [e for e in events if (e.source, e.kind, e.client) == ("ra", "sent", "ff02::1")]
    before = multicasts[multicasts.index(solicited) - 1]
    assert solicited.time - before.time >= MIN_INTERVAL * 0.99
    # (the client kernel's own solicitations draw unicast answers to fe80::; skip those)
    answer = wire.next_ra(2, lambda f: f[IPv6].dst == "ff02::1")
    assert answer[IPv6].dst == "ff02::1"


@pytest.mark.parametrize(("kwargs", "reason"), [
    ({"hlim": 64}, "hop limit 64"),
    ({"code": 1}, "code 1"),
    ({"options": bytes((1, 0, 0, 0, 0, 0, 0, 0))}, "has length 0"),
    ({"options": bytes((1, 2, 0, 0))}, "runs past the message"),
    ({"src": "::"}, "unspecified address"),
], ids=["hop-limit", "code", "zero-length-option", "overrun", "lladdr-from-unspecified"])
def test_invalid_solicitations_dropped(advertiser: RouterAdvertiser, wire: Wire,
                                       events: EventLog, kwargs: dict[str, object],
                                       reason: str) -> None:
    started = time.time()
    wire.send_rs(**kwargs)  # type: ignore[arg-type]
    dropped = events.wait_for(lambda e: e.source == "ra" and e.kind == "drop"
                              and e.time >= started, 2, f"ra.drop: {reason}")
    assert reason in dropped.reason
    assert dropped.client in (CLIENT6, "::")
    # ... and a valid solicitation right after is still answered
    wire.send_rs()
    events.wait_for(lambda e: e.source == "ra" and e.kind == "solicit"
                    and e.time >= started, 2, "ra.solicit after the drop")


def test_faults_drop_then_delay_advertisements(lab: Lab, wire: Wire) -> None:
    log = EventLog()
    faults = FaultInjector((DropPacket("ra.advert", nth=1), DelayPacket("ra.advert", 0.3,
                                                                         nth=2)), log)
    settings = RaSettings("br0", IPv6Network("2001:db8:1::/64"), interval=30.0,
                          min_interval=0.0)
    with AdvertiserThread(lab.server, settings, log, faults):
        dropped = log.wait_for(event("ra", "drop"), 2, "startup RA dropped")
        assert dropped.reason == "fault: advertisement dropped"
        started = time.monotonic()
        wire.send_rs()
        frame = wire.next_ra(2, lambda f: f[ICMPv6NDOptPrefixInfo].prefix == "2001:db8:1::")
        assert time.monotonic() - started >= 0.3
        assert frame[ICMPv6ND_RA].routerlifetime == 0
    fired = [e.reason for e in log.matching(event("fault", "injected"))]
    assert fired == ["drop ra.advert x1 from #1", "delay ra.advert #2 by 0.3s"]


def test_bootserver_advertises_dns6(lab: Lab, tmp_path: Path) -> None:
    log = EventLog()
    config = ServerConfig.only("ra", data_root=tmp_path, dhcp6=Dhcp6Config(enabled=False, dns=DNS),
                               ra=RaConfig(interval=30.0))
    with BootServer(config, RulePolicy(), log, namespace=lab.server):
        sent = log.wait_for(event("ra", "sent"), 5, "ra.sent")
    assert sent.details["dns"] == ["2001:db8::53"] and "rdnss 2001:db8::53" in sent.answer


def test_bootserver_as_default_router(lab: Lab, wire: Wire, tmp_path: Path) -> None:
    """ra.router_lifetime > 0: OVMF's IPv6 PXE/HTTP boot finds a route at once (ra.server)."""
    with pytest.raises(ConfigError, match="router_lifetime"):
        RaSettings("br0", IPv6Network("2001:db8::/64"), router_lifetime=9001)
    log = EventLog()
    config = ServerConfig.only("ra", data_root=tmp_path, ra=RaConfig(
        interval=30.0, router_lifetime=1800, min_interval=0.0))
    with BootServer(config, RulePolicy(), log, namespace=lab.server):
        sent = log.wait_for(event("ra", "sent"), 5, "ra.sent")
        assert sent.answer.endswith("lifetime 1800")
        wire.send_rs(src="::", options=b"")  # min interval 0: answered at once, by multicast
        frame = wire.next_ra(1, lambda f: f[ICMPv6ND_RA].routerlifetime == 1800)
    assert frame[IPv6].dst == "ff02::1"
