"""DatagramEndpoint: datagrams in and out of a protocol over loopback UDP, then closed."""

from __future__ import annotations

import asyncio
import os
import socket
from typing import Any

import pytest

from pxelab.server import udp
from pxelab.server.udp import datagram_endpoint, enlarge_receive_buffer

pytestmark = pytest.mark.unit


class Echo(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.transport: asyncio.DatagramTransport | None = None
        self.lost = asyncio.Event()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: Any) -> None:
        assert self.transport is not None
        self.transport.sendto(data.upper(), addr)

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost.set()


def test_echo_a_small_and_a_big_datagram_then_close() -> None:
    async def run() -> None:
        server = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        server.bind(("127.0.0.1", 0))
        protocol = Echo()
        endpoint = datagram_endpoint(asyncio.get_running_loop(), protocol, server)
        assert endpoint.get_extra_info("sockname") == server.getsockname()
        client = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        client.setblocking(False)
        loop = asyncio.get_running_loop()
        try:
            for payload in (b"discover", b"x" * 60000):  # bigger than any DHCP message
                await loop.sock_sendto(client, payload, server.getsockname())
                reply = await asyncio.wait_for(loop.sock_recv(client, 65536), 5)
                assert reply == payload.upper()
        finally:
            client.close()
        endpoint.close()
        assert endpoint.is_closing()
        await asyncio.wait_for(protocol.lost.wait(), 5)
        assert server.fileno() == -1
        endpoint.sendto(b"late", ("127.0.0.1", 9))  # ignored once closing

    asyncio.run(run())


class Recorder(asyncio.DatagramProtocol):
    """Keeps what arrives; closes its transport on the datagram ``b"close"``."""

    def __init__(self) -> None:
        self.transport: asyncio.DatagramTransport | None = None
        self.got: list[bytes] = []

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: Any) -> None:
        self.got.append(data)
        if data == b"close":
            assert self.transport is not None
            self.transport.close()


def _queued(server: socket.socket, payloads: list[bytes]) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as client:
        for payload in payloads:
            client.sendto(payload, server.getsockname())


def test_one_wake_up_reads_a_batch_each_datagram_its_own_bytes() -> None:
    """A burst queued before the loop looks is read READ_BATCH at a time, in order, each
    datagram intact (not a view of the shared buffer) and nothing from the one before."""
    async def run() -> None:
        server = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        server.bind(("127.0.0.1", 0))
        payloads = [b"long request %d" % i + b"x" * (40 - i) for i in range(udp.READ_BATCH + 5)]
        _queued(server, payloads)
        protocol = Recorder()
        endpoint = datagram_endpoint(asyncio.get_running_loop(), protocol, server)
        endpoint._read_ready()  # one wake-up of the loop
        assert protocol.got == payloads[:udp.READ_BATCH]
        assert all(type(data) is bytes for data in protocol.got)
        endpoint._read_ready()
        endpoint._read_ready()  # nothing left: returns at EAGAIN
        assert protocol.got == payloads
        endpoint.close()

    asyncio.run(run())


def test_a_protocol_closing_its_transport_ends_the_batch() -> None:
    async def run() -> None:
        server = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        server.bind(("127.0.0.1", 0))
        _queued(server, [b"one", b"close", b"after"])
        protocol = Recorder()
        endpoint = datagram_endpoint(asyncio.get_running_loop(), protocol, server)
        endpoint._read_ready()
        assert protocol.got == [b"one", b"close"]
        assert server.fileno() == -1

    asyncio.run(run())


def test_receive_buffer_enlarged_or_capped_without_privilege() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        before = sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF)
        granted = enlarge_receive_buffer(sock, 1 << 20)
        assert granted == sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF)
        if os.geteuid() == 0:  # SO_RCVBUFFORCE: the kernel doubles what it is asked for
            assert granted == 2 << 20
        else:  # SO_RCVBUF, capped at net.core.rmem_max
            assert granted >= before
