"""DatagramEndpoint: datagrams in and out of a protocol over loopback UDP, then closed."""

from __future__ import annotations

import asyncio
import socket
from typing import Any

import pytest

from pxelab.server.udp import datagram_endpoint

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
