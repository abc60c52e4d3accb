"""LabNetwork.impair: frame loss (nftables), MTU, rate (tbf) and delay (netem, if any).

Layout: one LabNetwork (no capture) and a client namespace wired to its bridge
by a veth pair (port ``vlab0`` in the lab, ``vcli0`` with 192.0.2.2/24 in the
client). Traffic is UDP datagrams and a TCP stream between sockets created in
each namespace; every wait is a socket timeout.
"""

from __future__ import annotations

import contextlib
import json
import logging
import socket
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from pyroute2 import IPRoute
from pyroute2 import netns as pyroute2_netns

from pxelab.core.errors import HostCapabilityError, NetworkError
from pxelab.core.netns import thread_in_namespace
from pxelab.machine.network import Impairment, LabNetwork
from pxelab.pytest_plugin import pxelab_requires

pytestmark = pytest.mark.netns

PORT = "vlab0"
CLIENT = "192.0.2.2"
SERVER = str(LabNetwork.ipv4.ip)


@dataclass
class Link:
    lab: LabNetwork
    client: str  # namespace name


WARM_UP_WAIT = 3.0


@pytest.fixture(scope="module")
def link() -> Iterator[Link]:
    """Module scope: a lab and a client namespace joined through bridge port vlab0."""
    pxelab_requires(root=True)
    with LabNetwork(capture=False) as lab:
        name = f"pxli-{uuid.uuid4().hex[:8]}"
        pyroute2_netns.create(name)
        try:
            with IPRoute(netns=lab.namespace, flags=0) as ipr:
                ipr.link("add", ifname=PORT, kind="veth", peer={"ifname": "vcli0",
                                                                "net_ns_fd": name})
                (bridge,) = ipr.link_lookup(ifname=lab.bridge)
                (port,) = ipr.link_lookup(ifname=PORT)
                ipr.link("set", index=port, master=bridge, state="up")
            with IPRoute(netns=name, flags=0) as ipr:
                (veth,) = ipr.link_lookup(ifname="vcli0")
                ipr.addr("add", index=veth, address=CLIENT, prefixlen=24)
                ipr.link("set", index=veth, state="up")
                ipr.poll(ipr.addr, "dump", index=veth, address=CLIENT, timeout=5)
            made = Link(lab, name)
            # The first datagrams wait for ARP and the new bridge port; on a busy host
            # that took longer than the tests' 0.3 s once (CI). Fill the caches first.
            if datagrams_across(made, 1, wait=WARM_UP_WAIT) != 1:
                pytest.fail(f"no datagram crossed the new link in {WARM_UP_WAIT}s")
            yield made
        finally:
            pyroute2_netns.remove(name)


@pytest.fixture
def clean(link: Link) -> Iterator[Link]:
    """The link, restored to no impairment after each test."""
    yield link
    link.lab.clear_impairment(PORT)


def udp_socket(namespace: str, address: str) -> socket.socket:
    with thread_in_namespace(namespace):
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind((address, 0))
    return sock


def datagrams_across(link: Link, count: int, size: int = 64, wait: float = 0.3) -> int:
    """Send ``count`` datagrams client -> lab; how many arrived."""
    receiver = udp_socket(link.lab.namespace, SERVER)
    sender = udp_socket(link.client, CLIENT)
    with receiver, sender:
        receiver.settimeout(wait)
        for _ in range(count):
            sender.sendto(b"x" * size, receiver.getsockname())
        arrived = 0
        with contextlib.suppress(TimeoutError):
            while arrived < count:
                receiver.recv(65536)
                arrived += 1
    return arrived


def echo_rtt(link: Link, timeout: float = 2.0) -> float:
    """Seconds for one datagram lab -> client -> lab (the way back goes through the port)."""
    lab_side = udp_socket(link.lab.namespace, SERVER)
    client_side = udp_socket(link.client, CLIENT)
    with lab_side, client_side:
        lab_side.settimeout(timeout)
        client_side.settimeout(timeout)
        started = time.monotonic()
        lab_side.sendto(b"ping", client_side.getsockname())
        data, peer = client_side.recvfrom(100)
        client_side.sendto(data, peer)
        lab_side.recv(100)
        return time.monotonic() - started


def lab_json(link: Link, *argv: str) -> list[dict[str, object]]:
    result = subprocess.run(["ip", "netns", "exec", link.lab.namespace, *argv],
                            capture_output=True, text=True, check=True)
    parsed: list[dict[str, object]] = json.loads(result.stdout)
    return parsed


def test_full_loss_drops_everything_and_zero_restores(clean: Link,
                                                      caplog: pytest.LogCaptureFixture) -> None:
    assert datagrams_across(clean, 20) == 20
    with caplog.at_level(logging.INFO, logger="pxelab.machine.network"):
        set_ = clean.lab.impair(PORT, loss=100)
    assert set_ == Impairment(loss=100) and clean.lab.impairments[PORT] == set_
    assert "impairment on vlab0: 100% loss" in caplog.text
    assert datagrams_across(clean, 20, wait=0.2) == 0
    with pytest.raises(TimeoutError):
        echo_rtt(clean, timeout=0.2)
    clean.lab.impair(PORT, loss=0)
    assert PORT not in clean.lab.impairments
    assert datagrams_across(clean, 20) == 20


def test_partial_loss_drops_some(clean: Link) -> None:
    clean.lab.impair(PORT, loss=50)
    arrived = datagrams_across(clean, 400, wait=0.2)
    assert 100 < arrived < 300  # binomial(400, 0.5): 200 +- 10 per standard deviation


def test_mtu_applies_and_is_restored(clean: Link) -> None:
    clean.lab.impair(PORT, mtu=1280)
    (info,) = lab_json(clean, "ip", "-j", "link", "show", "dev", PORT)
    assert info["mtu"] == 1280
    assert datagrams_across(clean, 3, size=1000) == 3
    assert datagrams_across(clean, 3, size=1400, wait=0.2) == 0  # a 1428-byte frame: dropped
    clean.lab.clear_impairment(PORT)
    (info,) = lab_json(clean, "ip", "-j", "link", "show", "dev", PORT)
    assert info["mtu"] == 1500
    assert datagrams_across(clean, 3, size=1400) == 3


def stream_seconds(link: Link, size: int) -> float:
    """Seconds to move ``size`` bytes over TCP lab -> client (towards the guest)."""
    with thread_in_namespace(link.client):
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    with thread_in_namespace(link.lab.namespace):
        sender = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    with listener, sender:
        listener.bind((CLIENT, 0))
        listener.listen(1)
        listener.settimeout(5)
        sender.settimeout(5)
        sender.connect(listener.getsockname())
        conn, _ = listener.accept()
        with conn:
            conn.settimeout(5)
            started = time.monotonic()
            pusher = threading.Thread(target=sender.sendall, args=(b"\0" * size,))
            pusher.start()
            received = 0
            while received < size:
                received += len(conn.recv(65536))
            pusher.join(5)
            return time.monotonic() - started


def test_rate_applies(clean: Link) -> None:
    clean.lab.impair(PORT, rate=8_000_000)  # 1 MB/s, 100 kB burst
    (qdisc,) = lab_json(clean, "tc", "-j", "qdisc", "show", "dev", PORT)
    assert qdisc["kind"] == "tbf"
    assert qdisc["options"]["rate"] == 1_000_000  # type: ignore[index]
    assert stream_seconds(clean, 600_000) >= 0.35
    clean.lab.clear_impairment(PORT)
    assert lab_json(clean, "tc", "-j", "qdisc", "show", "dev", PORT)[0]["kind"] != "tbf"


def test_delay_works_or_names_the_alternative(clean: Link) -> None:
    clean.lab.impair(PORT, rate=8_000_000)
    try:
        clean.lab.impair(PORT, rate=8_000_000, delay=0.1)
    except HostCapabilityError as error:
        assert "sch_netem" in str(error) and "DelayPacket" in str(error)
        # the port keeps what it had before the failed call
        assert clean.lab.impairments[PORT] == Impairment(rate=8_000_000)
        (qdisc,) = lab_json(clean, "tc", "-j", "qdisc", "show", "dev", PORT)
        assert qdisc["kind"] == "tbf"
        return
    assert echo_rtt(clean) >= 0.1


def test_misuse_is_refused(clean: Link) -> None:
    with pytest.raises(NetworkError, match="percentage"):
        clean.lab.impair(PORT, loss=150)
    with pytest.raises(NetworkError, match="bits per second"):
        clean.lab.impair(PORT, rate=100)
    with pytest.raises(NetworkError, match="no link nosuch0"):
        clean.lab.impair("nosuch0", mtu=1400)
    with pytest.raises(NetworkError, match="not a port of br0"):
        clean.lab.impair(clean.lab.bridge, loss=10)
    assert PORT not in clean.lab.impairments
