"""One TFTP read transfer: the plan for an accepted RRQ and the socket that serves it.

:func:`plan_transfer` (pure) turns a request, the file and the faults that
apply into a :class:`Plan`; a :class:`ReadTransfer` then sends it from its own
socket (its TID, RFC 1350 section 4) and counts ACKs.

Speed: a lock-step transfer costs one wakeup, one ``recvfrom_into`` and one
``sendto`` per block; the socket is read with ``loop.add_reader`` rather than
an asyncio datagram transport, whose 256 KiB receive buffer per datagram made
each block cost several times more. The file is sliced with a memoryview; no
per-block event, and no per-block fault check when there are no faults.

Retransmission: after ``timeout`` seconds without progress the unacknowledged
window (or the OACK) is sent again, the wait doubling up to ``max_timeout``;
after ``retries`` retransmissions the transfer gives up. Duplicate ACKs never
cause a resend (no Sorcerer's Apprentice, RFC 1123 4.2.3.1); an ACK inside the
window starts the next window after it (RFC 7440 section 4).
"""

from __future__ import annotations

import asyncio
import logging
import socket
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pxelab.faults import OackMode, TftpFaults
from pxelab.tftp import codec
from pxelab.tftp.codec import (
    Ack,
    Error,
    ErrorCode,
    Negotiated,
    OptionAck,
    ReadRequest,
    TftpDecodeError,
)

if TYPE_CHECKING:
    from pxelab.tftp.server import Address, Local, TftpServer

__all__ = ["Plan", "ReadTransfer", "describe_options", "plan_transfer"]

log = logging.getLogger(__name__)

_PACK = codec.DATA_HEADER.pack
_ACK, _ERROR = codec.Opcode.ACK, codec.Opcode.ERROR


def describe_options(options: tuple[tuple[str, str], ...]) -> str:
    return " ".join(f"{k}={v}" for k, v in options)


@dataclass(frozen=True)
class Plan:
    """What one accepted RRQ gets: the bytes, the parameters and the first packet."""

    data: bytes  # what is sent: netascii-converted and truncated as asked
    negotiated: Negotiated
    oack: bytes | None  # the OACK to send first (may be a faulty one); None: DATA 1 first
    refuse: bool = False  # a fault: ERROR 8 instead of the OACK
    fault: str = ""  # the OACK fault applied, for the event


def plan_transfer(request: ReadRequest, content: bytes, faults: TftpFaults, max_blksize: int,
                  max_windowsize: int) -> Plan:
    """Negotiate ``request`` for ``content`` and apply the TFTP faults (pure)."""
    data = codec.to_netascii(content) if request.mode == "netascii" else content
    size = len(data)  # tsize is the size on the wire, netascii included (RFC 2349)
    if faults.truncate is not None:  # the announced tsize stays the real one
        data = data[:max(faults.truncate, 0)]
    negotiated = codec.negotiate(request.options, size if faults.tsize is None else faults.tsize,
                                 max_blksize, max_windowsize)
    oack: tuple[tuple[str, str], ...] = negotiated.oack
    mode = faults.oack.mode if faults.oack is not None else None
    if mode is OackMode.IGNORE:  # an RFC 1350 server: DATA 1 of 512 bytes, window 1
        return Plan(data, Negotiated(), None, fault=mode.value)
    if mode is OackMode.REFUSE and request.options:
        return Plan(data, negotiated, None, refuse=True, fault=mode.value)
    if mode is OackMode.ADD_OPTION and faults.oack is not None:
        name, value = faults.oack.option
        oack = (*((n, v) for n, v in oack if n != name), (name, value))
        return Plan(data, negotiated, codec.encode(OptionAck(oack)), fault=mode.value)
    if mode is OackMode.CORRUPT and request.options:
        # A name without its value at the end: not a list of NUL-terminated pairs.
        flat = [part for pair in oack for part in pair] + [request.options[0][0]]
        malformed = codec.Opcode.OACK.to_bytes(2, "big") + b"".join(
            part.encode("latin-1") + b"\x00" for part in flat)
        return Plan(data, negotiated, malformed, fault=mode.value)
    return Plan(data, negotiated, codec.encode(OptionAck(oack)) if oack else None)


class ReadTransfer:
    """One RRQ being served from its own socket (its TID)."""

    def __init__(self, server: TftpServer, request: ReadRequest, peer: Address,
                 local: Local) -> None:
        self.server = server
        self.events = server.events
        self.request = request
        self.peer = peer
        self.local = local
        self.client = str(peer[0])
        self.heard = False  # a valid ACK came from the client: no longer a fresh request
        self.finished = False
        self.sock: socket.socket | None = None
        self.tid = 0  # our port for this transfer
        self.size = 0
        self.blksize = 512
        self.window = 1
        self.total_blocks = 1
        self.acked = 0  # absolute block numbers; -1: not even the OACK is acknowledged
        self.sent = 0  # the highest block sent
        self.retries = 0
        self.retransmits = 0
        self._loop = asyncio.get_running_loop()
        self._started = self._loop.time()
        self._oack: bytes | None = None
        self._view = memoryview(b"")
        self._fault = ""
        self._faulty = bool(server.faults)
        self._timeout = server.settings.timeout
        self._interval = self._timeout
        self._max_interval = 0.0
        self._deadline = 0.0
        self._timer: asyncio.TimerHandle | None = None
        self._blocked: tuple[int, int] | None = None  # (next, last) block when sendto blocked

    # -- start and end -----------------------------------------------------------------------

    def start(self, plan: Plan) -> None:
        try:
            self.sock = self.server.open_transfer_socket(self.local)
        except OSError as exc:
            self.finish("error", f"cannot open a socket on {self.local.host}: {exc}")
            return
        self.tid = self.sock.getsockname()[1]
        negotiated = plan.negotiated
        self._view = memoryview(plan.data)
        self.size = len(plan.data)
        self.blksize, self.window = negotiated.blksize, negotiated.windowsize
        self.total_blocks = self.size // self.blksize + 1  # a short (maybe empty) block ends it
        self._oack, self._fault = plan.oack, plan.fault
        self._timeout = negotiated.timeout or self.server.settings.timeout
        self._interval = self._timeout
        cap = self.server.settings.max_timeout
        self._max_interval = max(self._timeout, cap if cap is not None else 4 * self._timeout)
        self._started = self._loop.time()
        self._loop.add_reader(self.sock.fileno(), self._on_readable)
        if plan.oack is not None:
            # The OACK counts as block 0: nothing is acknowledged until its ACK 0.
            self.acked = -1
            self._send_oack()
            details: dict[str, Any] = {"file": self.request.filename,
                                       "options": dict(negotiated.oack),
                                       "requested": dict(self.request.options)}
            if plan.fault:
                details["fault"] = plan.fault
            self.events.emit("tftp", "oack", client=self.client, request=self.request.filename,
                             answer=describe_options(negotiated.oack), details=details,
                             reason=f"fault: OACK {plan.fault}" if plan.fault else "")
        else:
            self._send_window(1)
        self._arm()

    def finish(self, kind: str | None, reason: str) -> None:
        """End the transfer and report it as ``kind`` (None: the caller reports)."""
        if self.finished:
            return
        self.finished = True
        self.server.forget(self)
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self.sock is not None:
            if not self._loop.is_closed():
                self._loop.remove_reader(self.sock.fileno())
                self._loop.remove_writer(self.sock.fileno())
            self.sock.close()
        if kind is None:
            return
        seconds = self._loop.time() - self._started
        blocks = max(self.acked, 0)
        delivered = min(blocks * self.blksize, self.size)
        details = {"file": self.request.filename, "bytes": delivered, "size": self.size,
                   "blocks": blocks, "seconds": round(seconds, 6),
                   "retransmits": self.retransmits, "blksize": self.blksize,
                   "windowsize": self.window, "mode": self.request.mode,
                   "port": self.peer[1], "local": self.local.host, "tid": self.tid}
        answer = f"{delivered} bytes in {blocks} blocks, {seconds:.3f}s"
        self.events.emit("tftp", kind, client=self.client, request=self.request.filename,
                         answer=answer, reason=reason, details=details)

    # -- receiving ---------------------------------------------------------------------------

    def _on_readable(self) -> None:
        # Level-triggered: one datagram per wakeup, so no extra recvfrom ending in EAGAIN.
        sock = self.sock
        if sock is None or self.finished:
            return
        buffer = self.server.buffer
        try:
            count, addr = sock.recvfrom_into(buffer)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as exc:  # ICMP errors surface here (port unreachable: client gone)
            self.finish("error", f"socket error: {exc}")
            return
        if addr[1] != self.peer[1] or addr[0] != self.peer[0]:
            self._stranger(bytes(buffer[:count]), addr)
        elif count == 4 and buffer[1] == _ACK and buffer[0] == 0:  # the hot path
            self._on_ack(buffer[2] << 8 | buffer[3])
        else:
            self._on_other(bytes(buffer[:count]))

    def drain(self) -> None:
        """Handle whatever is queued on the socket now (before judging a new RRQ)."""
        for _ in range(64):
            if self.sock is None or self.finished:
                return
            try:
                self.sock.recvfrom_into(self.server.buffer, 0, socket.MSG_PEEK)
            except OSError:
                return
            self._on_readable()

    def _stranger(self, data: bytes, addr: Address) -> None:
        # RFC 1350 section 4: a packet from another TID gets ERROR 5; the transfer goes on.
        if len(data) >= 2 and data[1] == _ERROR and data[0] == 0:
            return  # never answer an ERROR with an ERROR
        assert self.sock is not None
        try:
            self.sock.sendto(codec.encode(Error(ErrorCode.UNKNOWN_TID, "unknown transfer ID")),
                             addr)
        except OSError as exc:
            log.debug("ERROR 5 to %s not sent: %s", addr, exc)
        self.events.emit("tftp", "unknown_tid", client=str(addr[0]), answer="ERROR 5",
                         request=self.request.filename,
                         reason=f"packet from port {addr[1]} to the transfer of "
                                f"{self.request.filename} for {self.client}:{self.peer[1]}",
                         details={"file": self.request.filename, "port": addr[1],
                                  "tid": self.tid, "code": 5})

    def _on_other(self, data: bytes) -> None:
        try:
            packet = codec.decode(data)
        except TftpDecodeError as exc:
            self.events.emit("tftp", "drop", client=self.client, request=self.request.filename,
                             reason=f"malformed: {exc}", details={"file": self.request.filename})
            return
        if isinstance(packet, Ack):
            self._on_ack(packet.block)
        elif isinstance(packet, Error):
            self._on_client_error(packet)
        else:
            self.events.emit("tftp", "drop", client=self.client, request=self.request.filename,
                             reason=f"{type(packet).__name__} during a read transfer",
                             details={"file": self.request.filename})

    def _on_ack(self, block: int) -> None:
        ahead = (block - self.acked) & 0xFFFF  # block numbers roll over at 65536
        if ahead == 0 or self.acked + ahead > self.sent:
            return  # a duplicate or stray ACK: never resend on it (Sorcerer's Apprentice)
        self.acked += ahead
        self.heard = True
        if self.retries:
            self.retries, self._interval = 0, self._timeout
        if self.acked >= self.total_blocks:
            self.finish("sent", "")
            return
        if self._blocked is None:
            # RFC 7440: the next window starts after the acknowledged block; an ACK inside
            # the window means the rest was lost, so it is sent again.
            self._send_window(self.acked + 1)
        self._deadline = self._loop.time() + self._interval

    def _on_client_error(self, error: Error) -> None:
        probe = error.code == ErrorCode.OPTION_REFUSED and self.acked < 0
        reason = (f"size probe: client sent ERROR 8 {error.message!r} after the OACK"
                  if probe else
                  f"client sent ERROR {error.code} {error.message!r} "
                  f"after {max(self.acked, 0)} blocks")
        self.finish("aborted", reason)

    # -- sending -----------------------------------------------------------------------------

    def _send_oack(self) -> None:
        assert self.sock is not None and self._oack is not None
        if self._faulty:
            verdict = self.server.faults.packet("tftp.oack", self.client,
                                                file=self.request.filename)
            if verdict.drop:
                return
            if verdict.delay:
                self._loop.call_later(verdict.delay, self._send_late, self._oack)
                return
        self._transmit(self._oack)

    def _send_window(self, first: int) -> None:
        self._send_blocks(first, min(first + self.window - 1, self.total_blocks))

    def _send_blocks(self, first: int, last: int) -> None:
        if self._faulty:
            self._send_blocks_with_faults(first, last)
            return
        assert self.sock is not None
        sendto, peer, view, size, pack = (self.sock.sendto, self.peer, self._view,
                                          self.blksize, _PACK)
        offset = (first - 1) * size
        block = first
        try:
            while block <= last:
                sendto(pack(3, block & 0xFFFF) + view[offset:offset + size], peer)
                offset += size
                block += 1
        except (BlockingIOError, InterruptedError):
            self._wait_writable(block, last)
        except OSError as exc:
            self.finish("error", f"cannot send DATA {block}: {exc}")
        self.sent = max(self.sent, block - 1)

    def _send_blocks_with_faults(self, first: int, last: int) -> None:
        faults, name = self.server.faults, self.request.filename
        for block in range(first, last + 1):
            start = (block - 1) * self.blksize
            packet = codec.encode_data(block, self._view[start:start + self.blksize])
            verdict = faults.packet("tftp.data", self.client, file=name)
            if verdict.delay:
                self._loop.call_later(verdict.delay, self._send_late, packet)
            elif not verdict.drop and not self._transmit(packet):
                if not self.finished:
                    self._wait_writable(block, last)
                break
            self.sent = max(self.sent, block)

    def _transmit(self, packet: bytes) -> bool:
        """Send one packet; False if the socket buffer is full (a retransmission recovers)."""
        assert self.sock is not None
        try:
            self.sock.sendto(packet, self.peer)
        except (BlockingIOError, InterruptedError):
            return False
        except OSError as exc:
            self.finish("error", f"cannot send: {exc}")
            return False
        return True

    def _send_late(self, packet: bytes) -> None:
        if not self.finished:
            self._transmit(packet)

    def _wait_writable(self, block: int, last: int) -> None:
        # The socket buffer is full: send the rest of the window once it drains.
        assert self.sock is not None
        self._blocked = (block, last)
        self._loop.add_writer(self.sock.fileno(), self._on_writable)

    def _on_writable(self) -> None:
        assert self.sock is not None
        self._loop.remove_writer(self.sock.fileno())
        blocked, self._blocked = self._blocked, None
        if blocked is not None and not self.finished:
            first = max(blocked[0], self.acked + 1)
            self._send_blocks(first, blocked[1])

    # -- retransmission ----------------------------------------------------------------------

    def _arm(self) -> None:
        self._deadline = self._loop.time() + self._interval
        if self._timer is None and not self.finished:
            self._timer = self._loop.call_at(self._deadline, self._on_timer)

    def _on_timer(self) -> None:
        # One timer per transfer, pushed forward lazily: cheaper than re-arming per ACK.
        self._timer = None
        if self.finished:
            return
        if self._loop.time() < self._deadline:
            self._timer = self._loop.call_at(self._deadline, self._on_timer)
            return
        self.retries += 1
        if self.retries > self.server.settings.retries:
            waiting = "ACK of the OACK" if self.acked < 0 else f"ACK of block {self.acked + 1}"
            self.finish("error", f"timed out: {self.retries - 1} retransmissions, no {waiting}")
            return
        self.retransmits += 1
        self._interval = min(self._interval * 2, self._max_interval)
        if self.acked < 0:
            self._send_oack()
        elif self._blocked is None:
            self._send_window(self.acked + 1)
        self._arm()

