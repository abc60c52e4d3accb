"""One TFTP read transfer: the plan for an accepted RRQ and the socket that serves it.

:func:`plan_transfer` (pure) turns a request, the file and the faults that
apply into a :class:`Plan`; a :class:`ReadTransfer` then sends it from its own
socket (its TID, RFC 1350 section 4) and counts ACKs.

Speed: every transfer of a server is moved by one thread, its
:class:`~pxelab.server.tftp.pump.Pump` (epoll over the transfer sockets; why
one thread and not one per transfer is said there). Each socket is connected
to the client, so a lock-step block costs one ``recv_into``, one ``send`` and
a few lines of Python; no address is parsed or built per packet and the
kernel keeps the route. Not asyncio's loop: its bookkeeping and a datagram
transport's 256 KiB receive buffer per ACK cost twice the CPU (bench/README.md
has the numbers). The file is sliced with a memoryview; no per-block event,
and no per-block fault check when there are no faults. A delayed packet (a
fault) is a timer of the pump.

A connected socket gets nothing from other addresses, so a second socket on
the same port (the kernel prefers the connected one for the client's packets)
gets the rest: the event loop answers those with ERROR 5 (RFC 1350 section 4).

Retransmission: after ``timeout`` seconds without progress the
unacknowledged window (or the OACK) is sent again, the wait doubling up to
``max_timeout``; after ``retries`` retransmissions the transfer gives up.
Duplicate ACKs never cause a resend (no Sorcerer's Apprentice, RFC 1123
4.2.3.1); an ACK inside the window starts the next window after it (RFC 7440
section 4).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import struct
import threading
import time
from collections.abc import Callable
from typing import Any, Protocol

from pxelab.core.events import EventLog
from pxelab.server.faults import FaultInjector
from pxelab.server.tftp import codec
from pxelab.server.tftp.codec import (
    Ack,
    Error,
    ErrorCode,
    ReadRequest,
    TftpDecodeError,
)
from pxelab.server.tftp.host import Address, Local, TransferSettings
from pxelab.server.tftp.plan import Plan, describe_options
from pxelab.server.tftp.pump import Pump

__all__ = ["Local", "ReadTransfer", "TransferHost"]

log = logging.getLogger(__name__)

RECEIVE_SIZE = 2048  # what a transfer socket reads: ACKs are 4 bytes, ERRORs short
_PACK = codec.DATA_HEADER.pack
_ACK, _ERROR = codec.Opcode.ACK, codec.Opcode.ERROR
_DONTWAIT = socket.MSG_DONTWAIT
_now = time.monotonic


class TransferHost(Protocol):
    """What a :class:`ReadTransfer` uses of the server that started it, and no more.

    :class:`~pxelab.server.tftp.server.TftpServer` is one; a transfer does not
    import it, so the server and its transfers do not import each other.
    """

    @property
    def events(self) -> EventLog: ...
    @property
    def settings(self) -> TransferSettings: ...
    @property
    def faults(self) -> FaultInjector: ...
    @property
    def loop(self) -> asyncio.AbstractEventLoop | None: ...
    @property
    def pump(self) -> Pump: ...
    @property
    def with_strangers(self) -> set[ReadTransfer]: ...

    def open_transfer_sockets(self, local: Local,
                              peer: Address) -> tuple[socket.socket, socket.socket]: ...

    def forget(self, transfer: ReadTransfer) -> None: ...

    def take_solo(self) -> bool: ...

    def solo_ended(self) -> None: ...

    @property
    def transfers(self) -> int: ...


class ReadTransfer:
    """One RRQ being served from its own socket (its TID) by the server's pump.

    :meth:`start` opens the socket and hands the transfer to the pump; everything
    after that runs in the pump's thread. :meth:`finish`, :meth:`stop` and
    :meth:`judge_repeat` may be called from any thread.
    """

    def __init__(self, server: TransferHost, request: ReadRequest, peer: Address,
                 local: Local) -> None:
        self.server = server
        self.events = server.events
        self.request = request
        self.peer = peer
        self.local = local
        self.client = str(peer[0])
        self.heard = False  # a valid ACK came from the client: no longer a fresh request
        self.client_ended = False  # the client's ERROR ended it (OVMF's size probe does)
        self._repeat: Callable[[bool], None] | None = None  # see judge_repeat()
        self.finished = False
        self.sock: socket.socket | None = None  # connected to the client
        self.strangers: socket.socket | None = None  # same port, everyone else
        self.pump = server.pump
        self.solo = False  # served by a thread of its own, not by the pump (see start())
        self._thread: threading.Thread | None = None  # that thread
        self._stopping = ""  # why the server stops a solo transfer; "": it does not
        self.tid = 0  # our port for this transfer
        self.size = 0
        self.blksize = 512
        self.window = 1
        self.total_blocks = 1
        self.acked = 0  # absolute block numbers; -1: not even the OACK is acknowledged
        self.sent = 0  # the highest block sent
        self.retries = 0
        self.retransmits = 0
        self._started = time.monotonic()
        self._lock = threading.Lock()
        self._registered = False  # the pump reads our socket
        self._released = False  # our sockets are closed or being closed
        self._deadline = 0.0  # no progress by then: time out (see on_timer)
        self._timer_set = False  # one pending pump timer at most
        self._buffer = bytearray(RECEIVE_SIZE)
        self._oack: bytes | None = None
        self._view = memoryview(b"")
        self._faulty = bool(server.faults)
        self._timeout = server.settings.timeout
        self._interval = self._timeout
        self._max_interval = self._timeout

    # -- start and end -----------------------------------------------------------------------

    def start(self, plan: Plan) -> None:
        """Open the transfer's socket and serve ``plan``: alone, or through the pump.

        While it is the only transfer, a thread of its own blocks in ``recv_into``:
        two system calls per block, where the pump needs an ``epoll_wait`` too and
        single downloads were 10-15 % slower through it (bench/README.md). The
        transfers that start while it runs go to the pump.
        """
        try:
            sock, self.strangers = self.server.open_transfer_sockets(self.local, self.peer)
        except OSError as exc:
            self.finish("error", f"cannot open a socket on {self.local.host}: {exc}")
            return
        self.prepare(plan, sock)
        loop = self.server.loop
        if loop is not None:
            loop.add_reader(self.strangers.fileno(), self._on_stranger)
            self.server.with_strangers.add(self)
        self.solo = self.server.take_solo()
        if not self.solo:
            self.pump.call(self._begin)
            return
        self._thread = threading.Thread(target=self._run_alone, daemon=True,
                                        name=f"tftp {self.client}:{self.peer[1]}")
        self._thread.start()

    def prepare(self, plan: Plan, sock: socket.socket) -> None:
        """Take ``plan`` and ``sock`` (connected to the client); nothing is sent yet."""
        self.sock = sock
        sock.setblocking(True)  # sends wait for room; reads never wait (MSG_DONTWAIT)
        self.tid = sock.getsockname()[1]
        negotiated = plan.negotiated
        self._view = memoryview(plan.data)
        self.size = len(plan.data)
        self.blksize, self.window = negotiated.blksize, negotiated.windowsize
        self.total_blocks = self.size // self.blksize + 1  # a short (maybe empty) block ends it
        self._oack = plan.oack
        # The OACK counts as block 0: nothing is acknowledged until its ACK 0.
        self.acked = -1 if plan.oack is not None else 0
        self._timeout = negotiated.timeout or self.server.settings.timeout
        cap = self.server.settings.max_timeout
        self._max_interval = max(self._timeout, cap if cap is not None else 4 * self._timeout)
        self._interval = self._timeout
        self._started = time.monotonic()
        if plan.oack is not None:
            details: dict[str, Any] = {"options": dict(negotiated.oack),
                                       "requested": dict(self.request.options)}
            if plan.fault:
                details["fault"] = plan.fault
                details["sent"] = plan.oack.hex()
            self.events.emit("tftp", "oack", client=self.client, file=self.request.filename,
                             request=self.request.filename,
                             answer=describe_options(negotiated.oack), details=details,
                             reason=f"fault: OACK {plan.fault}" if plan.fault else "")

    def judge_repeat(self, settle: Callable[[bool], None]) -> bool | None:
        """An RRQ identical to ours came from our client's port: is it a new request?

        True: yes, we ended without an ACK (after OVMF's size probe the client's ERROR
        ends us, then it asks again). False: no, a retransmission: we have heard from
        the client, so it has our answer. None: not known yet, as the client's next
        packet (an ACK or that ERROR) may still be unread in our socket: ``settle(new)``
        is called, from the pump's thread, at our first ACK or as we end. Only the latest
        repeat waits; an earlier one is settled as a retransmission.
        """
        with self._lock:
            if self.heard:
                return False
            if self.finished:
                return True
            earlier, self._repeat = self._repeat, settle
        if earlier is not None:
            earlier(False)
        return None

    def _settle_repeat(self) -> None:
        with self._lock:
            settle, self._repeat = self._repeat, None
        if settle is not None:
            settle(self.client_ended and not self.heard)

    def stop(self, reason: str) -> None:
        """End because the server stops, once the pump has read what the client sent.

        The client's last word may be in our socket still: OVMF prints PXE-E99 as it
        sends its ERROR for a bad OACK, and the console ending the boot on that line
        stops the server at once. The pump reads what is queued before it ends us.
        """
        with self._lock:  # ``solo`` cannot change under it (see _join_pump)
            if self.solo:  # shutting the reading side wakes our thread once it read the rest
                if not self.finished and not self._released:
                    self._stopping = reason
                    assert self.sock is not None
                    with contextlib.suppress(OSError):
                        self.sock.shutdown(socket.SHUT_RD)
                return
        self.pump.call(lambda: self._stop_in_pump(reason))

    def join(self, timeout: float) -> None:
        """Wait for a solo transfer's thread to end."""
        if self._thread is not None:
            self._thread.join(timeout)

    def _stop_in_pump(self, reason: str) -> None:
        while self._registered and not self.finished:
            if not self.on_readable():
                break
        self.finish("error", reason)

    def finish(self, kind: str | None, reason: str) -> None:
        """End the transfer and report it as ``kind`` (None: the caller reports)."""
        with self._lock:
            if self.finished:
                return
            self.finished = True
            if self.solo and not self._released and \
                    threading.current_thread() is not self._thread:
                assert self.sock is not None
                with contextlib.suppress(OSError):  # wakes our thread from recv_into
                    self.sock.shutdown(socket.SHUT_RDWR)
        self.server.forget(self)
        if kind is not None:
            self._report(kind, reason)
        self._settle_repeat()  # after the report, so the events read in order
        if self.solo:
            return  # our thread releases the sockets as it ends
        if self.pump.in_pump():
            self._release()
        else:
            self.pump.call(self._release)

    def _report(self, kind: str, reason: str) -> None:
        seconds = time.monotonic() - self._started
        blocks = max(self.acked, 0)
        delivered = min(blocks * self.blksize, self.size)
        details = {"bytes": delivered, "size": self.size,
                   "blocks": blocks, "seconds": round(seconds, 6),
                   "retransmits": self.retransmits, "blksize": self.blksize,
                   "windowsize": self.window, "mode": self.request.mode,
                   "port": self.peer[1], "local": self.local.host, "tid": self.tid}
        answer = f"{delivered} bytes in {blocks} blocks, {seconds:.3f}s"
        self.events.emit("tftp", kind, client=self.client, file=self.request.filename,
                         request=self.request.filename,
                         answer=answer, reason=reason, details=details)

    # -- in the pump's thread ------------------------------------------------------------------

    def _begin(self, first: bool = True) -> None:
        """Have the pump read our socket: from the start, or (``first`` False) taken over
        from our own thread."""
        if self.finished or self.sock is None:  # ended before the pump got to us
            self._release()
            return
        try:
            self.pump.add(self.sock.fileno(), self)
        except (OSError, ValueError):  # the pump has ended: the server is stopping
            self.finish("error", "the server is stopping")
            self._release()
            return
        self._registered = True
        if first:
            self.send_first()
        self._arm()

    def _release(self) -> None:
        """Close our socket, and have the event loop close the strangers' one."""
        with self._lock:  # not while a delayed packet (a pump timer) is being sent
            if self._released:
                return
            self._released = True
            if self.sock is not None:
                if self._registered:
                    self.pump.remove(self.sock.fileno())
                    self._registered = False
                self.sock.close()
        loop = self.server.loop
        with contextlib.suppress(RuntimeError):  # the loop is closed: close() did it
            if loop is not None and self.strangers is not None:
                loop.call_soon_threadsafe(self.close_strangers)

    def crashed(self, error: Exception) -> None:
        self.finish("error", f"internal error: {error!r}")

    def close_strangers(self) -> None:
        """Close the second socket (in the event loop's thread, which reads it)."""
        strangers, self.strangers = self.strangers, None
        self.server.with_strangers.discard(self)
        if strangers is None:
            return
        loop = self.server.loop
        if loop is not None and not loop.is_closed():
            loop.remove_reader(strangers.fileno())
        strangers.close()

    def send_first(self) -> None:
        if self._oack is not None:
            self._send_oack()
        else:
            self._send_window(1)

    # -- in a solo transfer's thread -----------------------------------------------------------

    def _run_alone(self) -> None:
        try:
            self._set_interval(self._interval)
            self.send_first()
            self._deadline = _now() + self._interval
            self._receive_alone()
        except Exception as exc:  # a bug: report it, never leave a silent thread behind
            log.exception("TFTP transfer of %s to %s failed", self.request.filename, self.peer)
            self.finish("error", f"internal error: {exc!r}")
        finally:
            if self.solo:  # not handed over to the pump
                self.finish(None, "")
                self._release()

    def _receive_alone(self) -> None:
        assert self.sock is not None
        recv_into, on_ack, buffer = self.sock.recv_into, self.on_ack, self._buffer
        while not self.finished:
            try:
                count = recv_into(buffer)
            except BlockingIOError:  # SO_RCVTIMEO: nothing at all for one interval
                self._expire()
                continue
            except InterruptedError:
                continue
            except OSError as exc:
                self._on_socket_error(exc)
                return
            if not count and self._stopping:  # stop(): everything queued has been read
                self.finish("error", self._stopping)
                return
            if count == 4 and buffer[1] == _ACK and buffer[0] == 0:  # the hot path
                if on_ack(buffer[2] << 8 | buffer[3]):
                    if self.acked & 63 or self.server.transfers < 2 or not self._join_pump():
                        continue
                    return
            elif self.finished:  # woken by finish() from another thread
                return
            else:
                self._on_other(bytes(buffer[:count]))
            self._expire()  # packets that do not move the transfer on time out all the same

    def _join_pump(self) -> bool:
        """Others run now: end this thread and let the pump move us with them.

        Two threads would hand the GIL to each other at every system call, the cost the
        pump exists to avoid. Checked every 64 blocks, so a lone transfer pays nothing.
        """
        with self._lock:  # finish() and stop() read ``solo`` under it
            if self.finished or self._stopping:
                return False
            self.solo = False
        self.server.solo_ended()  # a later lone transfer may have a thread again
        self.pump.call(lambda: self._begin(first=False))
        return True

    def _expire(self) -> None:
        if _now() >= self._deadline:
            self.on_timeout()

    # -- in the pump's thread: one datagram at a time ----------------------------------------

    def on_readable(self) -> bool:
        """Read one datagram and act on it; False if there was none."""
        assert self.sock is not None
        buffer = self._buffer
        try:
            count = self.sock.recv_into(buffer, 0, _DONTWAIT)
        except (BlockingIOError, InterruptedError):
            return False
        except OSError as exc:
            self._on_socket_error(exc)
            return False
        if count == 4 and buffer[1] == _ACK and buffer[0] == 0:  # the hot path
            self.on_ack(buffer[2] << 8 | buffer[3])
        else:
            self._on_other(bytes(buffer[:count]))
        return True

    def _on_socket_error(self, error: OSError) -> None:
        if isinstance(error, ConnectionRefusedError):
            self.finish("error", "the client's port is closed (ICMP port unreachable): "
                                 "it gave up or restarted")
        else:
            self.finish("error", self._stopping or f"socket error: {error}")

    def _on_stranger(self) -> None:
        # RFC 1350 section 4: a packet from another TID gets ERROR 5; the transfer goes on.
        # In the event loop's thread.
        if self.strangers is None:
            return
        try:
            data, addr = self.strangers.recvfrom(RECEIVE_SIZE)
        except OSError:  # nothing after all, or an ICMP error for an ERROR 5 we sent
            return
        if len(data) >= 2 and data[1] == _ERROR and data[0] == 0:
            return  # never answer an ERROR with an ERROR
        try:
            self.strangers.sendto(
                codec.encode(Error(ErrorCode.UNKNOWN_TID, "unknown transfer ID")), addr)
        except OSError as exc:
            log.debug("ERROR 5 to %s not sent: %s", addr, exc)
        self.events.emit("tftp", "unknown_tid", client=str(addr[0]), answer="ERROR 5",
                         request=self.request.filename,
                         reason=f"packet from port {addr[1]} to the transfer of "
                                f"{self.request.filename} for {self.client}:{self.peer[1]}",
                         file=self.request.filename,
                         details={"port": addr[1], "tid": self.tid, "code": 5})

    def _on_other(self, data: bytes) -> None:
        try:
            packet = codec.decode(data)
        except TftpDecodeError as exc:
            self.events.emit("tftp", "drop", client=self.client, file=self.request.filename,
                             request=self.request.filename, reason=f"malformed: {exc}")
            return
        if isinstance(packet, Ack):
            self.on_ack(packet.block)
        elif isinstance(packet, Error):
            self._on_client_error(packet)
        else:
            self.events.emit("tftp", "drop", client=self.client, file=self.request.filename,
                             request=self.request.filename,
                             reason=f"{type(packet).__name__} during a read transfer")

    def on_ack(self, block: int) -> bool:
        """Count an ACK of ``block`` (16 bits); True if it moved the transfer on."""
        acked = self.acked
        ahead = (block - acked) & 0xFFFF  # block numbers roll over at 65536
        if ahead == 0 or acked + ahead > self.sent:
            return False  # a duplicate or stray ACK: never resend on it (Sorcerer's Apprentice)
        self.acked = acked = acked + ahead
        if not self.heard:
            self.heard = True
            self._settle_repeat()
        if self.retries:
            self.retries = 0
            self._set_interval(self._timeout)
        if acked >= self.total_blocks:
            self.finish("sent", "")
            return True
        # RFC 7440: the next window starts after the acknowledged block; an ACK inside the
        # window means the rest was lost, so it is sent again.
        self._send_window(acked + 1)
        self._deadline = _now() + self._interval  # the pending timer finds it moved
        return True

    def _on_client_error(self, error: Error) -> None:
        probe = error.code == ErrorCode.OPTION_REFUSED and self.acked < 0
        reason = (f"size probe: client sent ERROR 8 {error.message!r} after the OACK"
                  if probe else
                  f"client sent ERROR {error.code} {error.message!r} "
                  f"after {max(self.acked, 0)} blocks")
        self.client_ended = True
        self.finish("aborted", reason)

    # -- sending -----------------------------------------------------------------------------

    def _send_oack(self) -> None:
        assert self._oack is not None
        if self._faulty and self._faulted("tftp.oack", self._oack):
            return
        self._transmit(self._oack)

    def _send_window(self, first: int) -> None:
        last = min(first + self.window - 1, self.total_blocks)
        if self._faulty:
            self._send_blocks_with_faults(first, last)
            return
        assert self.sock is not None
        send, view, size, pack = self.sock.send, self._view, self.blksize, _PACK
        offset = (first - 1) * size
        try:
            if first == last:  # lock-step: no range() per block
                send(pack(3, first & 0xFFFF) + view[offset:offset + size])
            else:
                for block in range(first, last + 1):
                    send(pack(3, block & 0xFFFF) + view[offset:offset + size])
                    offset += size
        except OSError as exc:
            self.finish("error", f"cannot send DATA: {exc}")
        self.sent = max(self.sent, last)

    def _send_blocks_with_faults(self, first: int, last: int) -> None:
        for block in range(first, last + 1):
            start = (block - 1) * self.blksize
            packet = codec.encode_data(block, self._view[start:start + self.blksize])
            if not self._faulted("tftp.data", packet):
                self._transmit(packet)
        self.sent = max(self.sent, last)

    def _faulted(self, kind: str, packet: bytes) -> bool:
        """Apply a drop or delay fault to ``packet``; True if it must not be sent now."""
        verdict = self.server.faults.packet(kind, self.client, file=self.request.filename)
        if verdict.delay:  # sent later; the transfer goes on meanwhile
            self.pump.call_at(_now() + verdict.delay, lambda: self._send_late(packet))
            return True
        return verdict.drop

    def _transmit(self, packet: bytes) -> None:
        assert self.sock is not None
        try:
            self.sock.send(packet)
        except OSError as exc:
            self.finish("error", f"cannot send: {exc}")

    def _send_late(self, packet: bytes) -> None:
        with self._lock:  # a solo transfer's thread may be closing the socket
            if self.finished or self._released or self.sock is None:
                return
            try:
                self.sock.send(packet)
                return
            except OSError as exc:
                error = exc
        self.finish("error", f"cannot send: {error}")

    # -- retransmission ----------------------------------------------------------------------

    def _set_interval(self, seconds: float) -> None:
        self._interval = seconds
        if self.solo and self.sock is not None:  # its thread waits in recv_into
            whole = int(seconds)
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO,
                                 struct.pack("ll", whole, int((seconds - whole) * 1e6)))

    def _arm(self) -> None:
        """Time out ``_interval`` from now unless the transfer moves on.

        Progress only moves ``_deadline``; the one pending timer, when it fires, sees
        that and waits again. Packets that do not move the transfer on (duplicate or
        stray ACKs) do not move it, so a client that keeps sending them times out too.
        """
        self._deadline = _now() + self._interval
        if not self.solo and not self._timer_set:
            self._timer_set = True
            self.pump.call_at(self._deadline, self._on_timer)

    def _on_timer(self) -> None:
        self._timer_set = False
        if self.finished:
            return
        if _now() < self._deadline:
            self._timer_set = True
            self.pump.call_at(self._deadline, self._on_timer)
            return
        try:
            self.on_timeout()
        except Exception as exc:  # a bug: end this transfer, not the pump
            log.exception("TFTP transfer of %s to %s failed", self.request.filename, self.peer)
            self.crashed(exc)

    def on_timeout(self) -> None:
        """No progress for one interval: send again with a doubled wait, or give up."""
        self.retries += 1
        if self.retries > self.server.settings.retries:
            waiting = "ACK of the OACK" if self.acked < 0 else f"ACK of block {self.acked + 1}"
            self.finish("error", f"timed out: {self.retries - 1} retransmissions, no {waiting}")
            return
        self.retransmits += 1
        self._set_interval(min(self._interval * 2, self._max_interval))
        if self.acked < 0:
            self._send_oack()
        else:
            self._send_window(self.acked + 1)
        self._arm()
