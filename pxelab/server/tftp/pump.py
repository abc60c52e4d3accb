"""One thread that moves every TFTP transfer: epoll over their sockets and a timer heap.

Why one thread and not one per transfer: in a boot storm (bench/storm_bench.py) the
transfers spend almost no time in Python; with a thread each, every ACK woke a thread
that then had to take the GIL from another, and with 32 transfers spread over two
CPUs that hand-over cost the server three times tftpd-hpa's CPU for the same bytes.
Here one thread waits in ``epoll_wait`` for all of them, and under load one wake-up
returns many ready sockets. Readiness is level-triggered and a handler reads one
datagram: a lock-step transfer has one ACK queued, so a second read would only
return EAGAIN.

Only the pump's thread touches the handlers and the timers; other threads hand it
work with :meth:`Pump.call`, which an eventfd wakes it for.
"""

from __future__ import annotations

import collections
import contextlib
import heapq
import itertools
import logging
import os
import select
import threading
import time
from collections.abc import Callable
from typing import Protocol

__all__ = ["Pump", "Readable"]

log = logging.getLogger(__name__)

Callback = Callable[[], None]


class Readable(Protocol):
    """What the pump calls when a registered socket has a datagram to read."""

    def on_readable(self) -> object:
        """Read what arrived (one datagram is enough: readiness is level-triggered)."""

    def crashed(self, error: Exception) -> None:
        """``on_readable`` raised: a bug; end cleanly and report it."""


class Pump:
    """The thread, its epoll set, its timers and its queue of calls from other threads.

    Use as a context manager, or :meth:`start` and :meth:`close`. Nothing is opened
    before :meth:`start`; calls made before it wait for it. After ``close``,
    :meth:`call` runs its callback at once in the caller's thread: nothing else runs
    the pump's work any more, so that is safe.
    """

    def __init__(self, name: str = "tftp pump") -> None:
        self.name = name
        self._readers: dict[int, Readable] = {}
        self._timers: list[tuple[float, int, Callback]] = []
        self._order = itertools.count()  # ties in the heap: first armed, first run
        self._calls: collections.deque[Callback] = collections.deque()
        self._epoll: select.epoll | None = None
        self._wake = -1
        self._thread: threading.Thread | None = None
        self._closing = False
        self._closed = False

    def __enter__(self) -> Pump:
        self.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    # -- from any thread ---------------------------------------------------------------------

    def start(self) -> None:
        if self._thread is None and not self._closed:
            self._epoll = select.epoll()
            self._wake = os.eventfd(0, os.EFD_NONBLOCK | os.EFD_CLOEXEC)
            self._epoll.register(self._wake, select.EPOLLIN)
            self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
            self._thread.start()

    def call(self, callback: Callback) -> None:
        """Run ``callback`` in the pump's thread, soon (at once if the pump has ended)."""
        if self._closed:
            callback()
            return
        self._calls.append(callback)
        if self._thread is not None:
            with contextlib.suppress(OSError):  # closed since the check: close() drains it
                os.eventfd_write(self._wake, 1)

    def in_pump(self) -> bool:
        return threading.current_thread() is self._thread

    def close(self, wait: float = 2.0) -> None:
        """Run the calls queued so far, stop the thread (waiting up to ``wait`` s)."""
        if self._closed:
            return
        self._closing = True
        thread = self._thread
        if thread is not None and thread.is_alive():
            with contextlib.suppress(OSError):
                os.eventfd_write(self._wake, 1)
            thread.join(wait)
            if thread.is_alive():
                log.error("%s did not stop within %.1f s", self.name, wait)
        self._closed = True
        self._drain_calls()  # queued after the thread's last look, or never started
        if self._epoll is not None:
            self._epoll.close()
            os.close(self._wake)

    # -- from the pump's thread ----------------------------------------------------------------

    def add(self, fd: int, reader: Readable) -> None:
        assert self._epoll is not None, "add() is for the pump's thread"
        self._readers[fd] = reader
        self._epoll.register(fd, select.EPOLLIN)

    def remove(self, fd: int) -> None:
        if self._readers.pop(fd, None) is not None and self._epoll is not None:
            with contextlib.suppress(OSError, ValueError):
                self._epoll.unregister(fd)

    def call_at(self, when: float, callback: Callback) -> None:
        """Run ``callback`` at ``when`` (time.monotonic()) or soon after."""
        heapq.heappush(self._timers, (when, next(self._order), callback))

    # -- the thread ----------------------------------------------------------------------------

    def _run(self) -> None:
        assert self._epoll is not None
        poll, readers, wake = self._epoll.poll, self._readers, self._wake
        while not (self._closing and not self._calls):
            try:
                ready = poll(self._wait())
            except InterruptedError:
                continue
            for fd, _ in ready:
                if fd == wake:
                    self._on_wake()
                    continue
                reader = readers.get(fd)
                if reader is None:  # removed by an earlier handler of this round
                    continue
                try:
                    reader.on_readable()
                except Exception as exc:  # a bug in one transfer must not stop the others
                    log.exception("%s: a handler failed", self.name)
                    reader.crashed(exc)
            if self._timers:
                self._fire_timers()

    def _wait(self) -> float:
        if self._calls:
            return 0.0
        if not self._timers:
            return -1.0
        return max(self._timers[0][0] - time.monotonic(), 0.0)

    def _on_wake(self) -> None:
        with contextlib.suppress(BlockingIOError):
            os.eventfd_read(self._wake)
        self._drain_calls()

    def _drain_calls(self) -> None:
        calls = self._calls
        while calls:
            self._safely(calls.popleft())

    def _fire_timers(self) -> None:
        timers, now = self._timers, time.monotonic()
        while timers and timers[0][0] <= now:
            self._safely(heapq.heappop(timers)[2])

    def _safely(self, callback: Callback) -> None:
        try:
            callback()
        except Exception:  # the callback's owner reports its own failures; this is a bug
            log.exception("%s: a callback failed", self.name)
