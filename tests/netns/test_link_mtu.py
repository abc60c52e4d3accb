"""LabNetwork.add_tap(mtu=...): a guest link with a smaller MTU than the servers' bridge.

The tap is opened here as QEMU would (``/dev/net/tun``, IFF_TAP), so it has
carrier and the bridge forwards to it; datagrams from the lab address to a
made-up guest (a static neighbour entry) are read from the tap as frames.
"""

from __future__ import annotations

import fcntl
import os
import select
import socket
import struct
from collections.abc import Iterator

import pytest
from pyroute2 import IPRoute

from pxelab.core.netns import thread_in_namespace
from pxelab.machine.network import LabNetwork
from pxelab.pytest_plugin import pxelab_requires
from pxelab.server.tftp.server import interface_mtu

pytestmark = pytest.mark.netns

TUNSETIFF = 0x400454CA  # <linux/if_tun.h>
IFF_TAP = 0x0002
IFF_NO_PI = 0x1000
GUEST = "192.0.2.50"
GUEST_MAC = "52:54:00:00:00:50"
MTU = 1200


@pytest.fixture(scope="module")
def lab() -> Iterator[tuple[LabNetwork, int]]:
    """Module scope: a lab whose tap0 has MTU 1200, opened as QEMU opens it (the fd)."""
    pxelab_requires(root=True)
    with LabNetwork(capture=False) as net:
        tap = net.add_tap(mtu=MTU)
        with thread_in_namespace(net.namespace):
            fd = os.open("/dev/net/tun", os.O_RDWR | os.O_NONBLOCK)
        try:
            fcntl.ioctl(fd, TUNSETIFF, struct.pack("16sH", tap.encode(), IFF_TAP | IFF_NO_PI))
            with IPRoute(netns=net.namespace, flags=0) as ipr:
                (index,) = ipr.link_lookup(ifname=net.bridge)
                ipr.neigh("add", dst=GUEST, lladdr=GUEST_MAC, ifindex=index, state="permanent")
                (port,) = ipr.link_lookup(ifname=tap)
                ipr.poll(ipr.link, "dump", index=port, carrier=1, timeout=5)
            yield net, fd
        finally:
            os.close(fd)


def frames_for(fd: int, net: LabNetwork, size: int) -> list[int]:
    """Send one UDP datagram of ``size`` bytes to the guest; sizes of the UDP frames read."""
    with thread_in_namespace(net.namespace):
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    with sock:
        sock.bind((str(net.ipv4.ip), 0))
        sock.sendto(b"x" * size, (GUEST, 9))
    seen = []
    while select.select([fd], [], [], 0.3)[0]:
        frame = os.read(fd, 65536)
        if frame[12:14] == b"\x08\x00" and frame[23] == socket.IPPROTO_UDP:
            seen.append(len(frame))
    return seen


def test_the_tap_gets_the_mtu_and_the_bridge_keeps_1500(lab: tuple[LabNetwork, int]) -> None:
    net, _ = lab
    with IPRoute(netns=net.namespace, flags=0) as ipr:
        mtus = {link.get_attr("IFLA_IFNAME"): link.get_attr("IFLA_MTU") for link in ipr.get_links()}
    assert mtus["tap0"] == MTU
    assert mtus[net.bridge] == 1500
    with thread_in_namespace(net.namespace):
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    with sock:
        assert interface_mtu(sock, net.bridge) == 1500  # what the TFTP server caps blksize by


def test_frames_above_the_link_mtu_are_lost_without_fragmenting(
        lab: tuple[LabNetwork, int]) -> None:
    net, fd = lab
    assert frames_for(fd, net, 1000) == [14 + 20 + 8 + 1000]
    # A TFTP DATA packet of blksize 1408 (1408 + 4 bytes): the server's 1500-byte link
    # sends it whole, and the 1200-byte hop drops it.
    assert frames_for(fd, net, 1412) == []
