"""The TFTP read server: listeners on port 69 and one socket per transfer.

RFC 1350 lock-step, RFC 7440 windows, RFC 2347-2349 options (decided by
:func:`pxelab.server.tftp.codec.negotiate`), octet and netascii modes. Each transfer
answers from the address its RRQ was sent to (IP_PKTINFO/IPV6_RECVPKTINFO on
the listener) through its own socket, its TID.

The transfers themselves, their speed and their retransmissions are in
:mod:`pxelab.server.tftp.transfer`.

Events (source ``tftp``):

- ``rrq``: a read request is being handled (retransmitted duplicates excluded);
- ``oack``: the option acknowledgement went out (``details["fault"]`` if faked);
- ``sent``: the last block was acknowledged;
- ``aborted``: the client ended it with an ERROR (ERROR 8 after the OACK is a
  size probe, as OVMF and iPXE do), or a new RRQ from its port replaced it;
- ``error``: we gave up (no ACK after the retries, socket error, a bug);
- ``not_found`` (ERROR 1), ``denied`` (ERROR 2: a name outside the root,
  absolute, not ASCII or unreadable), ``refused`` (ERROR 2, 4 or 8: a write
  request, an unknown mode, a malformed request, a refused-OACK fault),
  ``unknown_tid`` (ERROR 5 to a packet from a stranger; the transfer goes on);
- ``drop``: ignored without an answer (undecodable, duplicate RRQ, stray packet).
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import socket
import struct
import sys
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pxelab.core.events import EventLog
from pxelab.server.faults import FaultInjector
from pxelab.server.tftp import codec
from pxelab.server.tftp.codec import Error, ErrorCode, ReadRequest, TftpDecodeError, WriteRequest
from pxelab.server.tftp.files import DataRoot, FileMissingError, PathDeniedError
from pxelab.server.tftp.host import Address, Local
from pxelab.server.tftp.plan import describe_options, plan_transfer
from pxelab.server.tftp.pump import Pump
from pxelab.server.tftp.transfer import ReadTransfer

__all__ = ["Local", "TftpServer", "TftpSettings", "interface_mtu", "open_udp_socket"]

log = logging.getLogger(__name__)

IP_PKTINFO = 8  # <linux/in.h>; not exported by Python's socket module
SIOCGIFMTU = 0x8921  # <linux/sockios.h>
REQUEST_LIMIT = 4096  # bytes; RFC 2347 caps a request at 512, so anything this big is junk
LISTENER_BATCH = 32  # requests read per wakeup, so a flood cannot starve the rest
STOP_WAIT = 2.0  # seconds close() waits for the pump and solo transfers to end
SOLO_TRANSFERS = 1  # transfers with a thread of their own (ReadTransfer.start says why)
_ERROR = codec.Opcode.ERROR


@dataclass(frozen=True)
class TftpSettings:
    """How the server behaves; one instance serves every listener."""

    interface: str | None = None  # SO_BINDTODEVICE for every socket; None: any interface
    max_blksize: int = 1468  # 1500-byte MTU - IPv4 20 - UDP 8 - TFTP 4; also capped by MTU
    max_windowsize: int = 64
    timeout: float = 1.0  # first retransmission timeout unless the client negotiates one
    retries: int = 5  # retransmissions before giving up
    max_timeout: float | None = None  # backoff cap; None: 4 x the first timeout


def open_udp_socket(family: socket.AddressFamily, host: str, port: int,
                    interface: str | None) -> socket.socket:
    """UDP socket bound to ``host``:``port`` on ``interface`` (no SO_REUSEADDR, see
    :func:`pxelab.server.dhcp4.server.open_dhcp4_socket`)."""
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


def _local_from(family: socket.AddressFamily, ancillary: list[tuple[int, int, bytes]]) -> Local:
    """The destination of a received datagram, from its IP_PKTINFO/IPV6_PKTINFO."""
    for level, kind, value in ancillary:
        if family == socket.AF_INET and (level, kind) == (socket.IPPROTO_IP, IP_PKTINFO) \
                and len(value) >= 12:
            # struct in_pktinfo {int ifindex; in_addr spec_dst; in_addr addr}: spec_dst is
            # the local address to answer from, also for a request sent to a broadcast.
            ifindex = int.from_bytes(value[0:4], sys.byteorder)
            return Local(family, socket.inet_ntop(family, value[4:8]), ifindex)
        if family == socket.AF_INET6 and (level, kind) == (socket.IPPROTO_IPV6,
                                                           socket.IPV6_PKTINFO) \
                and len(value) >= 20:
            ifindex = int.from_bytes(value[16:20], sys.byteorder)
            if value[0] == 0xFF:  # multicast: let the kernel choose the source
                return Local(family, "::", ifindex)
            return Local(family, socket.inet_ntop(family, value[:16]), ifindex)
    return Local(family, "0.0.0.0" if family == socket.AF_INET else "::")


def interface_mtu(sock: socket.socket, interface: str) -> int | None:
    """The MTU of ``interface`` in the socket's namespace (not /sys: that is the host's)."""
    try:
        request = struct.pack("16si", interface.encode()[:15], 0)
        return int(struct.unpack("16si", fcntl.ioctl(sock.fileno(), SIOCGIFMTU, request))[1])
    except OSError:
        return None


def _summarise(request: ReadRequest) -> str:
    return " ".join(("RRQ", request.filename, request.mode,
                     describe_options(request.options))).strip()


def _printable(name: str) -> bool:
    return all(" " <= char <= "~" for char in name)


class TftpServer:
    """Listens on one or more port-69 sockets and runs a :class:`ReadTransfer` per RRQ.

    Use from the event loop's thread: :meth:`listen` each socket, :meth:`close` at the end.
    """

    def __init__(self, root: DataRoot, settings: TftpSettings, events: EventLog,
                 faults: FaultInjector | None = None) -> None:
        self.root = root
        self.settings = settings
        self.events = events
        self.faults = faults if faults is not None else FaultInjector((), events)
        self.loop: asyncio.AbstractEventLoop | None = None
        self._listeners: list[socket.socket] = []
        self._max_blksize: dict[int, int] = {}
        self._active: dict[tuple[str, int], ReadTransfer] = {}  # by client address and port
        self._active_lock = threading.Lock()  # transfers forget themselves in the pump's thread
        self._tasks: set[asyncio.Future[None]] = set()
        self.with_strangers: set[ReadTransfer] = set()  # second sockets to close (loop thread)
        self.pump = Pump()  # moves the transfers (started by the first listen())
        self._solo = 0  # transfers running in a thread of their own

    # -- lifecycle ---------------------------------------------------------------------------

    def listen(self, sock: socket.socket) -> None:
        """Serve requests arriving on ``sock`` (a bound UDP socket); it is ours to close."""
        self.loop = asyncio.get_running_loop()
        family = socket.AddressFamily(sock.family)
        if family == socket.AF_INET:
            sock.setsockopt(socket.IPPROTO_IP, IP_PKTINFO, 1)
            overhead = 20 + 8 + 4
        else:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_RECVPKTINFO, 1)
            overhead = 40 + 8 + 4
        sock.setblocking(False)
        mtu = interface_mtu(sock, self.settings.interface) if self.settings.interface else None
        # A DATA packet larger than the link MTU would be fragmented (what dnsmasq avoids too).
        # Lowering is allowed: EDK2's Mtftp6RrqOackValid() only refuses a larger blksize.
        self._max_blksize[family] = min(self.settings.max_blksize,
                                        mtu - overhead if mtu else 65464)
        self._listeners.append(sock)
        self.loop.add_reader(sock.fileno(), self._on_listener_readable, sock)
        self.pump.start()

    def close(self) -> None:
        """Stop listening and end every transfer."""
        for sock in self._listeners:
            if self.loop is not None and not self.loop.is_closed():
                self.loop.remove_reader(sock.fileno())
            sock.close()
        self._listeners.clear()
        with self._active_lock:
            transfers = list(self._active.values())
        for transfer in transfers:
            transfer.stop("the server is stopping")  # after reading what is queued
        deadline = time.monotonic() + STOP_WAIT
        self.pump.close(STOP_WAIT)
        for transfer in transfers:
            transfer.join(max(deadline - time.monotonic(), 0.0))
            transfer.finish("error", "the server is stopping")  # if it hung
        for transfer in list(self.with_strangers):
            transfer.close_strangers()
        for task in self._tasks:
            task.cancel()

    @property
    def transfers(self) -> int:
        """Transfers running now."""
        return len(self._active)

    # -- requests ----------------------------------------------------------------------------

    def _on_listener_readable(self, sock: socket.socket) -> None:
        family = socket.AddressFamily(sock.family)
        for _ in range(LISTENER_BATCH):
            try:
                data, ancillary, flags, peer = sock.recvmsg(REQUEST_LIMIT, 256)
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:  # e.g. a queued ICMP error; the socket is still fine
                log.debug("TFTP listener: %s", exc)
                continue
            try:
                self._on_request(data, peer, _local_from(family, ancillary),
                                 bool(flags & socket.MSG_TRUNC))
            except Exception as exc:  # never let one packet stop the listener
                log.exception("TFTP request from %s failed", peer)
                self.events.emit("tftp", "error", client=str(peer[0]), reason=repr(exc),
                                 details={"traceback": traceback.format_exc()})

    def _on_request(self, data: bytes, peer: Address, local: Local, truncated: bool) -> None:
        client = str(peer[0])
        if truncated:
            self.events.emit("tftp", "drop", client=client,
                             reason=f"request over {REQUEST_LIMIT} bytes (RFC 2347: 512)",
                             details={"port": peer[1]})
            return
        try:
            packet = codec.decode(data)
        except TftpDecodeError as exc:
            self._bad_request(data, peer, local, str(exc))
            return
        if isinstance(packet, WriteRequest):
            self.refuse(peer, local, ErrorCode.ACCESS_VIOLATION, "read-only server",
                        kind="refused", request=f"WRQ {packet.filename}",
                        reason="write requests are not served")
            return
        if isinstance(packet, Error):  # never answer an ERROR: two servers could ping-pong
            self.events.emit("tftp", "drop", client=client,
                             reason=f"ERROR {packet.code} {packet.message!r} on the request "
                                    "port, no transfer to end", details={"port": peer[1]})
            return
        if not isinstance(packet, ReadRequest):
            self.refuse(peer, local, ErrorCode.ILLEGAL_OPERATION, "illegal TFTP operation",
                        kind="refused", request=type(packet).__name__,
                        reason=f"{type(packet).__name__} on the request port")
            return
        verdict = self.faults.packet("tftp.rrq", client, file=packet.filename)
        if verdict.drop:
            return
        if verdict.delay:
            assert self.loop is not None
            self.loop.call_later(verdict.delay, self._accept_safely, packet, peer, local)
            return
        self._accept(packet, peer, local)

    def _bad_request(self, data: bytes, peer: Address, local: Local, problem: str) -> None:
        client = str(peer[0])
        opcode = int.from_bytes(data[:2], "big") if len(data) >= 2 else None
        if opcode is None or opcode == _ERROR:
            self.events.emit("tftp", "drop", client=client, reason=f"malformed: {problem}",
                             details={"port": peer[1], "size": len(data)})
            return
        self.refuse(peer, local, ErrorCode.ILLEGAL_OPERATION, f"malformed request: {problem}",
                    kind="refused", request=f"opcode {opcode}, {len(data)} bytes",
                    reason=f"malformed: {problem}")

    def _accept_safely(self, request: ReadRequest, peer: Address, local: Local) -> None:
        try:
            self._accept(request, peer, local)
        except Exception as exc:
            log.exception("delayed TFTP request from %s failed", peer)
            self.events.emit("tftp", "error", client=str(peer[0]), reason=repr(exc))

    def _accept(self, request: ReadRequest, peer: Address, local: Local) -> None:
        """Start a transfer for ``request``, unless it repeats the one running for its port.

        A repeat is judged by that transfer (:meth:`ReadTransfer.judge_repeat`), from what
        it has heard, never by a clock: its thread may not have read yet the ERROR the
        client sent before this RRQ (OVMF's size probe), however long that takes.
        """
        key = (str(peer[0]), int(peer[1]))
        summary = _summarise(request)
        with self._active_lock:
            running = self._active.get(key)
        if running is not None and not running.finished:
            if running.request == request:
                new = running.judge_repeat(self._settle_later(request, peer, local))
                if not new:  # a retransmission, or undecided until the transfer hears more
                    if new is False:
                        self._duplicate(request, peer, summary)
                    return
            else:
                running.finish("aborted", f"a new RRQ ({summary}) came from the same port")
        self._serve(request, peer, local, summary)

    def _settle_later(self, request: ReadRequest, peer: Address,
                      local: Local) -> Callable[[bool], None]:
        """What a transfer calls (from its thread) once it can judge a repeated RRQ."""
        def settle(new: bool) -> None:
            loop = self.loop
            with contextlib.suppress(RuntimeError):  # the loop is closed: the server stopped
                if loop is not None and not loop.is_closed():
                    loop.call_soon_threadsafe(self._settled, request, peer, local, new)
        return settle

    def _settled(self, request: ReadRequest, peer: Address, local: Local, new: bool) -> None:
        if new:
            self._accept_safely(request, peer, local)
        else:
            self._duplicate(request, peer, _summarise(request))

    def _serve(self, request: ReadRequest, peer: Address, local: Local, summary: str) -> None:
        client, key = str(peer[0]), (str(peer[0]), int(peer[1]))
        self.events.emit("tftp", "rrq", client=client, file=request.filename, request=summary,
                         details={"mode": request.mode,
                                  "options": dict(request.options), "port": peer[1],
                                  "local": local.host})
        if request.mode not in ("octet", "netascii"):
            self.refuse(peer, local, ErrorCode.ILLEGAL_OPERATION, "unsupported mode",
                        kind="refused", request=summary, file=request.filename,
                        reason=f"transfer mode {request.mode!r} is not octet or netascii")
            return
        if not _printable(request.filename):
            self.refuse(peer, local, ErrorCode.ACCESS_VIOLATION, "access violation",
                        kind="denied", request=summary, file=request.filename,
                        reason="file name is not printable ASCII (RFC 1350: netascii)")
            return
        transfer = ReadTransfer(self, request, peer, local)
        with self._active_lock:
            self._active[key] = transfer
        self._start(transfer, summary)

    def _start(self, transfer: ReadTransfer, summary: str) -> None:
        task = asyncio.ensure_future(self._open(transfer, summary))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _duplicate(self, request: ReadRequest, peer: Address, summary: str) -> None:
        self.events.emit("tftp", "drop", client=str(peer[0]), file=request.filename,
                         request=summary,
                         reason="duplicate RRQ: its transfer answered it or will "
                                "(retransmissions)",
                         details={"port": peer[1]})

    async def _open(self, transfer: ReadTransfer, summary: str) -> None:
        request, peer, local = transfer.request, transfer.peer, transfer.local
        loop = asyncio.get_running_loop()
        refusal: tuple[ErrorCode, str, str, str] | None = None
        try:  # in a worker thread: a large file must not stall DHCP and the other transfers
            content = await loop.run_in_executor(None, self.root.load, request.filename)
        except PathDeniedError as exc:
            refusal = (ErrorCode.ACCESS_VIOLATION, "access violation", "denied", str(exc))
        except FileMissingError as exc:
            refusal = (ErrorCode.FILE_NOT_FOUND, "file not found", "not_found", str(exc))
        except OSError as exc:
            refusal = (ErrorCode.ACCESS_VIOLATION, "cannot read file", "denied",
                       f"cannot read: {exc}")
        if transfer.finished:  # superseded or stopped while the file was read
            return
        if refusal is not None:
            code, message, kind, reason = refusal
            transfer.finish(None, "")
            self.refuse(peer, local, code, message, kind=kind, request=summary,
                        file=request.filename, reason=reason)
            return
        faults = self.faults.tftp(request.filename, str(peer[0]))
        plan = plan_transfer(request, content, faults, self._max_blksize[local.family],
                             self.settings.max_windowsize)
        if plan.refuse:
            transfer.finish(None, "")
            self.refuse(peer, local, ErrorCode.OPTION_REFUSED, "option negotiation refused",
                        kind="refused", request=summary, file=request.filename,
                        reason="fault: OACK refused")
            return
        transfer.start(plan)

    def refuse(self, peer: Address, local: Local, code: ErrorCode, message: str, *, kind: str,
               request: str, reason: str, file: str | None = None) -> None:
        """Answer a request with an ERROR from a fresh port, as a transfer would, and say so."""
        details: dict[str, Any] = {"code": int(code), "port": peer[1], "local": local.host}
        try:
            with socket.socket(local.family, socket.SOCK_DGRAM) as sock:
                self._prepare(sock, local)
                sock.sendto(codec.encode(Error(code, message)), peer)
        except OSError as exc:
            reason += f" (the ERROR could not be sent: {exc})"
        self.events.emit("tftp", kind, client=str(peer[0]), file=file or "", request=request,
                         answer=f"ERROR {int(code)} {message}", reason=reason, details=details)

    def open_transfer_sockets(self, local: Local,
                              peer: Address) -> tuple[socket.socket, socket.socket]:
        """A transfer's socket, connected to ``peer``, and one on the same port for the rest.

        The kernel hands a datagram to the socket that matches it best, so the
        connected one gets the client's packets and the other everyone else's. The
        port is chosen while the second socket has no SO_REUSEADDR yet, so it is
        one nobody else uses; SO_REUSEADDR then lets the first socket share it.
        """
        strangers = socket.socket(local.family, socket.SOCK_DGRAM)
        sock = socket.socket(local.family, socket.SOCK_DGRAM)
        try:
            self._prepare(strangers, local)
            strangers.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            strangers.setblocking(False)
            port = strangers.getsockname()[1]
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            self._prepare(sock, local, port)
            sock.connect(peer)
        except BaseException:
            strangers.close()
            sock.close()
            raise
        return sock, strangers

    def _prepare(self, sock: socket.socket, local: Local, port: int = 0) -> None:
        if self.settings.interface:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE,
                            self.settings.interface.encode())
        if local.family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        sock.bind(local.bind_address(port))

    def take_solo(self) -> bool:
        """May a transfer starting now have a thread of its own? (It says so as it ends.)"""
        with self._active_lock:
            if self._solo >= SOLO_TRANSFERS:
                return False
            self._solo += 1
            return True

    def solo_ended(self) -> None:
        """A transfer with a thread of its own ended, or handed itself to the pump."""
        with self._active_lock:
            self._solo -= 1

    def forget(self, transfer: ReadTransfer) -> None:
        """Called by a transfer as it ends (from any thread)."""
        key = (str(transfer.peer[0]), int(transfer.peer[1]))
        if transfer.solo:
            self.solo_ended()
        with self._active_lock:
            if self._active.get(key) is transfer:
                del self._active[key]
