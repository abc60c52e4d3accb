"""The TFTP read server: a listener on port 69 and one ephemeral socket per transfer.

RFC 1350 lock-step, RFC 7440 windows, RFC 2347-2349 options (see
:func:`pxelab.tftp.codec.negotiate`). A file is read once (cached by
:class:`~pxelab.tftp.files.DataRoot`); each DATA is one ``sendto``; no
per-block event. Events (source ``tftp``): ``rrq``, ``oack``, ``sent``,
``aborted`` (the client ended it: ERROR 8 after the OACK is a size probe, as
OVMF and iPXE do), ``not_found``, ``denied``, ``error`` (we gave up or
refused), ``drop`` (undecodable or stray packet).
"""

from __future__ import annotations

import asyncio
import logging
import socket
import traceback
from dataclasses import dataclass
from typing import Any, cast

from pxelab.events import EventLog
from pxelab.tftp import codec
from pxelab.tftp.codec import (
    Ack,
    Error,
    ErrorCode,
    Negotiated,
    OptionAck,
    ReadRequest,
    TftpDecodeError,
    WriteRequest,
)
from pxelab.tftp.files import DataRoot, FileMissingError, PathDeniedError

__all__ = ["ReadTransfer", "TftpServerProtocol", "TftpSettings", "open_udp_socket"]

log = logging.getLogger(__name__)

Address = tuple[Any, ...]  # (host, port) or (host, port, flowinfo, scope_id)


@dataclass(frozen=True)
class TftpSettings:
    interface: str
    local_host: str = "0.0.0.0"  # transfer sockets bind here (port 0)
    max_blksize: int = 1468  # 1500-byte MTU - IPv4 20 - UDP 8 - TFTP 4
    max_windowsize: int = 64
    timeout: float = 1.0  # retransmission timeout unless the client negotiates one
    retries: int = 5


def open_udp_socket(family: socket.AddressFamily, host: str, port: int,
                    interface: str | None) -> socket.socket:
    """UDP socket bound to ``host``:``port`` on ``interface`` (no SO_REUSEADDR, see
    :func:`pxelab.dhcp4.server.open_dhcp4_socket`)."""
    sock = socket.socket(family, socket.SOCK_DGRAM)
    try:
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        if interface:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, interface.encode())
        sock.bind((host, port))
        sock.setblocking(False)
    except BaseException:
        sock.close()
        raise
    return sock


def _describe(options: tuple[tuple[str, str], ...]) -> str:
    return " ".join(f"{k}={v}" for k, v in options)


class TftpServerProtocol(asyncio.DatagramProtocol):
    """Listener: accepts RRQs and starts a :class:`ReadTransfer` for each."""

    def __init__(self, root: DataRoot, settings: TftpSettings, events: EventLog,
                 family: socket.AddressFamily = socket.AF_INET) -> None:
        self.root = root
        self.settings = settings
        self.events = events
        self.family = family
        self.transport: asyncio.DatagramTransport | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._transfers: set[asyncio.DatagramTransport] = set()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # A DatagramTransport in fact, though before Python 3.12 not by inheritance.
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: Address) -> None:
        try:
            self._handle(data, addr)
        except Exception as exc:
            log.exception("TFTP request from %s failed", addr)
            self.events.emit("tftp", "error", client=str(addr[0]), reason=repr(exc),
                             details={"traceback": traceback.format_exc()})

    def close(self) -> None:
        """Stop every transfer (the listener transport is closed by its owner)."""
        for task in self._tasks:
            task.cancel()
        for transport in list(self._transfers):
            transport.close()

    def _handle(self, data: bytes, addr: Address) -> None:
        client = str(addr[0])
        try:
            packet = codec.decode(data)
        except TftpDecodeError as exc:
            self.events.emit("tftp", "drop", client=client, reason=f"malformed: {exc}",
                             details={"port": addr[1], "size": len(data)})
            return
        if isinstance(packet, WriteRequest):
            self.events.emit("tftp", "error", client=client, request=f"WRQ {packet.filename}",
                             answer="ERROR 2", reason="write requests are not served")
            self._spawn(self._send_error(addr, ErrorCode.ACCESS_VIOLATION, "read-only server"))
            return
        if not isinstance(packet, ReadRequest):
            self.events.emit("tftp", "drop", client=client,
                             reason=f"{type(packet).__name__} on the request port")
            return
        self._spawn(self._serve(packet, addr))

    def _spawn(self, coro: Any) -> None:
        task: asyncio.Task[None] = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _send_error(self, addr: Address, code: ErrorCode, message: str) -> None:
        """Errors come from a fresh port, as a transfer would (what tftpd-hpa does)."""
        loop = asyncio.get_running_loop()
        sock = open_udp_socket(self.family, self._local_host(), 0, self.settings.interface)
        transport, _ = await loop.create_datagram_endpoint(asyncio.DatagramProtocol, sock=sock)
        transport.sendto(codec.encode(Error(code, message)), addr)
        transport.close()

    def _local_host(self) -> str:
        return self.settings.local_host if self.family == socket.AF_INET else "::"

    async def _serve(self, request: ReadRequest, addr: Address) -> None:
        client = str(addr[0])
        summary = f"RRQ {request.filename} {request.mode} {_describe(request.options)}".strip()
        self.events.emit("tftp", "rrq", client=client, request=summary,
                         details={"file": request.filename, "mode": request.mode,
                                  "options": dict(request.options), "port": addr[1]})
        if request.mode not in ("octet", "netascii"):
            self.events.emit("tftp", "error", client=client, request=summary, answer="ERROR 4",
                             reason=f"transfer mode {request.mode!r} not supported")
            await self._send_error(addr, ErrorCode.ILLEGAL_OPERATION, "unsupported mode")
            return
        try:
            path = self.root.resolve(request.filename)
            data = self.root.read(path)
        except PathDeniedError as exc:
            self.events.emit("tftp", "denied", client=client, request=summary,
                             answer="ERROR 2", reason=str(exc),
                             details={"file": request.filename})
            await self._send_error(addr, ErrorCode.ACCESS_VIOLATION, "access violation")
            return
        except (FileMissingError, FileNotFoundError) as exc:
            self.events.emit("tftp", "not_found", client=client, request=summary,
                             answer="ERROR 1", reason=str(exc),
                             details={"file": request.filename})
            await self._send_error(addr, ErrorCode.FILE_NOT_FOUND, "file not found")
            return
        except OSError as exc:
            self.events.emit("tftp", "denied", client=client, request=summary,
                             answer="ERROR 2", reason=f"cannot read: {exc}",
                             details={"file": request.filename})
            await self._send_error(addr, ErrorCode.ACCESS_VIOLATION, "cannot read file")
            return
        negotiated = codec.negotiate(request.options, len(data), self.settings.max_blksize,
                                     self.settings.max_windowsize)
        loop = asyncio.get_running_loop()
        sock = open_udp_socket(self.family, self._local_host(), 0, self.settings.interface)
        done: asyncio.Future[None] = loop.create_future()
        transport, _ = await loop.create_datagram_endpoint(
            lambda: ReadTransfer(request, addr, data, negotiated=negotiated,
                                 settings=self.settings, events=self.events, done=done),
            sock=sock)
        self._transfers.add(transport)
        try:
            await done
        finally:
            self._transfers.discard(transport)
            transport.close()


class ReadTransfer(asyncio.DatagramProtocol):
    """One RRQ being served from its own port (its TID)."""

    def __init__(self, request: ReadRequest, peer: Address, data: bytes, *,
                 negotiated: Negotiated, settings: TftpSettings, events: EventLog,
                 done: asyncio.Future[None]) -> None:
        self.request = request
        self.peer = peer
        self.view = memoryview(data)
        self.size = len(data)
        self.negotiated = negotiated
        self.blksize = negotiated.blksize
        self.window = negotiated.windowsize
        self.timeout = negotiated.timeout or settings.timeout
        self.max_retries = settings.retries
        self.events = events
        self.done = done
        self.client = str(peer[0])
        self.total_blocks = self.size // self.blksize + 1  # a short (maybe empty) block ends it
        # Absolute block numbers: the OACK counts as block 0, so with an OACK nothing is
        # acknowledged yet at -1; without one, DATA 1 goes out first and 0 means "none".
        self.acked = -1 if negotiated.oack else 0
        self.sent = 0  # the highest block sent
        self.retries = 0
        self.retransmits = 0
        self.transport: asyncio.DatagramTransport | None = None
        self._loop = asyncio.get_running_loop()
        self._deadline = 0.0
        self._timer: asyncio.TimerHandle | None = None
        self._started = 0.0

    # -- asyncio callbacks -------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # A DatagramTransport in fact, though before Python 3.12 not by inheritance.
        self.transport = cast(asyncio.DatagramTransport, transport)
        self._started = self._loop.time()
        try:
            self._begin()
        except Exception as exc:
            log.exception("TFTP transfer of %s failed to start", self.request.filename)
            self._finish("error", f"could not start: {exc!r}")

    def _begin(self) -> None:
        if self.negotiated.oack:
            self._send_oack()
            self.events.emit("tftp", "oack", client=self.client, request=self.request.filename,
                             answer=_describe(self.negotiated.oack),
                             details={"options": dict(self.negotiated.oack),
                                      "requested": dict(self.request.options)})
        else:
            self._send_window(1)
        self._arm()

    def datagram_received(self, data: bytes, addr: Address) -> None:
        if addr[1] != self.peer[1] or addr[0] != self.peer[0]:
            # RFC 1350 section 4: a packet from another TID gets ERROR 5; the transfer goes on.
            assert self.transport is not None
            self.transport.sendto(codec.encode(Error(ErrorCode.UNKNOWN_TID, "unknown TID")),
                                  addr)
            return
        if len(data) == 4 and data[0] == 0 and data[1] == codec.Opcode.ACK:  # hot path
            self._on_ack(int.from_bytes(data[2:4], "big"))
            return
        try:
            packet = codec.decode(data)
        except TftpDecodeError as exc:
            self.events.emit("tftp", "drop", client=self.client, reason=f"malformed: {exc}")
            return
        if isinstance(packet, Ack):
            self._on_ack(packet.block)
        elif isinstance(packet, Error):
            self._on_client_error(packet)
        else:
            self.events.emit("tftp", "drop", client=self.client,
                             reason=f"{type(packet).__name__} during a read transfer")

    def error_received(self, exc: Exception) -> None:
        # ICMP port unreachable: the client went away (e.g. rebooted); give up now.
        self._finish("error", f"socket error: {exc}")

    def connection_lost(self, exc: Exception | None) -> None:
        if self._timer is not None:
            self._timer.cancel()
        if not self.done.done():
            self.done.set_result(None)

    # -- protocol ----------------------------------------------------------------------------

    def _on_ack(self, block: int) -> None:
        if self.done.done():
            return
        ahead = (block - self.acked) & 0xFFFF  # block numbers roll over at 65536
        if ahead == 0 or self.acked + ahead > self.sent:
            return  # duplicate or not yet sent: never resend on it (Sorcerer's Apprentice)
        self.acked += ahead
        self.retries = 0
        if self.acked >= self.total_blocks:
            self._finish("sent", "")
            return
        self._send_window(self.acked + 1)
        self._deadline = self._loop.time() + self.timeout

    def _on_client_error(self, error: Error) -> None:
        probe = error.code == ErrorCode.OPTION_REFUSED and self.acked < 0
        reason = (f"size probe: client sent ERROR 8 {error.message!r} after the OACK"
                  if probe else
                  f"client sent ERROR {error.code} {error.message!r} "
                  f"after {max(self.acked, 0)} blocks")
        self._finish("aborted", reason)

    def _send_oack(self) -> None:
        assert self.transport is not None
        self.transport.sendto(codec.encode(OptionAck(self.negotiated.oack)), self.peer)

    def _send_window(self, first: int) -> None:
        assert self.transport is not None
        last = min(first + self.window - 1, self.total_blocks)
        size, view, peer, sendto = self.blksize, self.view, self.peer, self.transport.sendto
        for block in range(first, last + 1):
            start = (block - 1) * size
            sendto(codec.encode_data(block, view[start:start + size]), peer)
        self.sent = max(self.sent, last)

    def _arm(self) -> None:
        self._deadline = self._loop.time() + self.timeout
        if self._timer is None:
            self._timer = self._loop.call_at(self._deadline, self._on_timer)

    def _on_timer(self) -> None:
        # One timer per transfer, pushed forward lazily: cheaper than re-arming per ACK.
        self._timer = None
        if self.done.done():
            return
        if self._loop.time() < self._deadline:
            self._timer = self._loop.call_at(self._deadline, self._on_timer)
            return
        self.retries += 1
        if self.retries > self.max_retries:
            waiting = "ACK of the OACK" if self.acked < 0 else f"ACK of block {self.acked + 1}"
            self._finish("error", f"timed out: {self.max_retries} retransmissions, no {waiting}")
            return
        self.retransmits += 1
        if self.acked < 0:
            self._send_oack()
        else:
            self._send_window(self.acked + 1)
        self._arm()

    def _finish(self, kind: str, reason: str) -> None:
        if self.done.done():
            return
        seconds = self._loop.time() - self._started
        blocks = max(self.acked, 0)
        delivered = min(blocks * self.blksize, self.size)
        details = {"file": self.request.filename, "bytes": delivered, "size": self.size,
                   "blocks": blocks, "seconds": round(seconds, 6),
                   "retransmits": self.retransmits, "blksize": self.blksize,
                   "windowsize": self.window, "port": self.peer[1]}
        answer = f"{delivered} bytes in {blocks} blocks, {seconds:.3f}s"
        self.events.emit("tftp", kind, client=self.client, request=self.request.filename,
                         answer=answer, reason=reason, details=details)
        if self.transport is not None:
            self.transport.close()
        if not self.done.done():
            self.done.set_result(None)
