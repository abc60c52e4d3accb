"""A datagram transport for request/response servers, without asyncio's per-datagram costs.

asyncio's selector datagram transport reads every datagram with
``recvfrom(256 KiB)``: a buffer above glibc's mmap threshold, allocated and
shrunk again for each 300-byte DHCP request. That alone cost ~13 µs of server
CPU per message here, more than the kernel's whole UDP path (measured with a
UDP echo server: 24 µs per request with asyncio's transport, 10 µs with this
one). :class:`DatagramEndpoint` reads with ``recvfrom_into`` a buffer of its own
that holds any UDP datagram, and sends straight on the non-blocking socket; only
a send the kernel refuses with EAGAIN is queued until the socket is writable
again. The protocol sees the usual :class:`asyncio.DatagramProtocol` calls.

Under a storm (many DHCP clients at once) several datagrams are queued by the
time the loop wakes; each wake-up of the loop (epoll, its bookkeeping, the
callback) cost about as much as reading the datagram, so one wake-up reads up to
:data:`READ_BATCH` of them. :func:`enlarge_receive_buffer` gives a socket room for
a storm's burst: with the default ``rmem`` (208 KiB) 256 DHCPDISCOVERs at once
overflowed it and about 130 were lost.
"""

from __future__ import annotations

import asyncio
import collections
import socket
import struct
from ipaddress import IPv6Address
from typing import Any

__all__ = ["DatagramEndpoint", "datagram_endpoint", "enlarge_receive_buffer"]


#: the largest UDP payload (65,507 bytes over IPv4, 65,527 over IPv6) fits
MAX_DATAGRAM = 65536
#: datagrams read per wake-up of the loop at most, so that other sockets get their turn
READ_BATCH = 32
#: receive buffer asked for a server socket; the kernel doubles it for its bookkeeping, so
#: a burst of ~2,000 small requests (a truesize of ~2 KiB each on a veth) waits in it
RECEIVE_BUFFER = 2 << 20
# Linux's SO_RCVBUFFORCE (socket(7)); the socket module does not name it.
SO_RCVBUFFORCE = getattr(socket, "SO_RCVBUFFORCE", 33)


class DatagramEndpoint(asyncio.DatagramTransport):
    """``sock`` (non-blocking, bound) served by ``protocol`` on ``loop``; see the module doc."""

    def __init__(self, loop: asyncio.AbstractEventLoop, sock: socket.socket,
                 protocol: asyncio.DatagramProtocol) -> None:
        super().__init__({"socket": sock, "sockname": sock.getsockname()})
        self._loop = loop
        self._sock = sock
        self._fd = sock.fileno()
        self._protocol = protocol
        self._backlog: collections.deque[tuple[bytes, Any]] = collections.deque()
        self._closing = False
        self._buffer = bytearray(MAX_DATAGRAM)
        self._view = memoryview(self._buffer)
        protocol.connection_made(self)
        loop.add_reader(self._fd, self._read_ready)

    def _read_ready(self) -> None:
        receive, view, protocol = self._sock.recvfrom_into, self._view, self._protocol
        for _ in range(READ_BATCH):
            try:
                size, addr = receive(view)
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:  # e.g. ICMP port unreachable reported on the socket
                protocol.error_received(exc)
                return
            protocol.datagram_received(bytes(view[:size]), addr)
            if self._closing:  # the protocol closed us
                return

    def sendto(self, data: bytes | bytearray | memoryview, addr: Any = None) -> None:
        if self._closing:
            return
        if not self._backlog:
            try:
                self._sock.sendto(data, addr)
                return
            except (BlockingIOError, InterruptedError):
                self._loop.add_writer(self._fd, self._write_ready)
            except OSError as exc:
                self._protocol.error_received(exc)
                return
        self._backlog.append((bytes(data), addr))

    def _write_ready(self) -> None:
        while self._backlog:
            data, addr = self._backlog[0]
            try:
                self._sock.sendto(data, addr)
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                self._protocol.error_received(exc)
            self._backlog.popleft()
        self._loop.remove_writer(self._fd)
        if self._closing:
            self._finish()

    def get_write_buffer_size(self) -> int:
        return sum(len(data) for data, _ in self._backlog)

    def is_closing(self) -> bool:
        return self._closing

    def close(self) -> None:
        """Stop reading; the socket closes once the queued datagrams are sent."""
        if self._closing:
            return
        self._closing = True
        self._loop.remove_reader(self._fd)
        if not self._backlog:
            self._finish()

    def abort(self) -> None:
        """Close at once, dropping what is queued."""
        if not self._closing:
            self._closing = True
            self._loop.remove_reader(self._fd)
        if self._backlog:
            self._backlog.clear()
            self._loop.remove_writer(self._fd)
        self._finish()

    def _finish(self) -> None:
        if self._sock.fileno() < 0:
            return  # already closed
        self._sock.close()
        self._loop.call_soon(self._protocol.connection_lost, None)


def datagram_endpoint(loop: asyncio.AbstractEventLoop, protocol: asyncio.DatagramProtocol,
                      sock: socket.socket) -> DatagramEndpoint:
    """Serve ``sock`` with ``protocol``: what ``loop.create_datagram_endpoint(sock=...)`` does."""
    sock.setblocking(False)
    return DatagramEndpoint(loop, sock, protocol)


def enlarge_receive_buffer(sock: socket.socket, size: int = RECEIVE_BUFFER) -> int:
    """Ask for a ``size``-byte receive buffer: SO_RCVBUFFORCE (root, beyond
    ``net.core.rmem_max``), else SO_RCVBUF (capped at rmem_max); what the kernel granted."""
    try:
        sock.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, size)
    except OSError:  # not CAP_NET_ADMIN
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, size)
    return sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF)


def join_ipv6_group(sock: socket.socket, group: IPv6Address, index: int) -> None:
    """Make ``sock`` receive ``group``'s datagrams on the interface with ``index``."""
    sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_JOIN_GROUP,
                    group.packed + struct.pack("=I", index))
