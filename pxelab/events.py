"""Structured events: every decision and transfer the boot server makes.

An :class:`Event` says when, for which client, what was asked, what was
answered and why. The :class:`EventLog` is shared between the server thread and
the test; tests wait on it (``wait_for``) instead of sleeping.
"""

from __future__ import annotations

import json
import logging
import queue
import threading
import time
import weakref
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field, is_dataclass
from pathlib import Path
from typing import Any, TextIO

from pxelab.errors import WaitTimeoutError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Event:
    """One thing the boot server decided or did.

    ``source`` is the protocol ("dhcp4", "tftp", "http", ...), ``kind`` a short
    verb ("offer", "ack", "rrq", "sent", "drop", ...), ``client`` the MAC or
    address of the peer, ``request`` what it asked, ``answer`` what it got and
    ``reason`` why.
    """

    source: str
    kind: str
    client: str = ""
    request: str = ""
    answer: str = ""
    reason: str = ""
    details: dict[str, Any] = field(default_factory=dict)
    time: float = field(default_factory=time.time)

    def to_json(self) -> str:
        # The same text as json.dumps(asdict(self), ...) without asdict's deep copy.
        return json.dumps({
            "source": self.source, "kind": self.kind, "client": self.client,
            "request": self.request, "answer": self.answer, "reason": self.reason,
            "details": self.details, "time": self.time}, sort_keys=True, default=_jsonable)

    def summary(self) -> str:
        parts = [f"{self.source}.{self.kind}"]
        parts += [f"{k}={v}" for k, v in (
            ("client", self.client), ("request", self.request),
            ("answer", self.answer), ("reason", self.reason)) if v]
        return " ".join(parts)


def _jsonable(value: Any) -> Any:
    """What JSON has no type for: a dataclass as its fields (as asdict made it), else text."""
    if is_dataclass(value) and not isinstance(value, type):
        return asdict(value)
    return str(value)


Predicate = Callable[[Event], bool]
_Pending = queue.SimpleQueue[Event | None]


class EventLog:
    """Thread-safe, append-only list of events, optionally mirrored to a JSON-lines file.

    The file is written by a thread of its own, in recording order, so that a
    server recording an event does not wait for JSON and the disk; each burst
    of events is flushed once it is written, and :meth:`close` writes what is
    left. Waiters and listeners see an event at once, from the list.
    """

    def __init__(self, path: Path | None = None) -> None:
        self._events: list[Event] = []
        self._changed = threading.Condition()
        # Replaced, never changed in place, so that record() needs no copy.
        self._listeners: tuple[Callable[[Event], None], ...] = ()
        self._pending: _Pending | None = None
        self.path = path
        if path is not None:
            file = path.open("a", encoding="utf-8")  # an OSError here is the caller's to report
            self._pending = queue.SimpleQueue()
            writer = threading.Thread(target=_write_events, args=(file, self._pending),
                                      name=f"events to {path.name}", daemon=True)
            writer.start()
            # close() or, if nobody calls it, garbage collection or interpreter exit.
            self._finish = weakref.finalize(self, _finish_writing, self._pending, writer)

    def record(self, event: Event) -> None:
        with self._changed:
            self._events.append(event)
            if self._pending is not None:
                self._pending.put(event)
            listeners = self._listeners
            self._changed.notify_all()
        for listener in listeners:
            listener(event)

    def emit(self, source: str, kind: str, **fields: Any) -> Event:
        """Build an event from keyword fields and record it."""
        event = Event(source, kind, **fields)
        self.record(event)
        return event

    def subscribe(self, listener: Callable[[Event], None]) -> None:
        """Call ``listener`` for every event recorded from now on (from the recording thread)."""
        with self._changed:
            self._listeners = (*self._listeners, listener)

    def __iter__(self) -> Iterator[Event]:
        with self._changed:
            return iter(list(self._events))

    def __len__(self) -> int:
        with self._changed:
            return len(self._events)

    def matching(self, predicate: Predicate) -> list[Event]:
        return [e for e in self if predicate(e)]

    def wait_for(self, predicate: Predicate, timeout: float, what: str = "event") -> Event:
        """Return the first event matching ``predicate``, waiting up to ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        seen = 0
        with self._changed:
            while True:
                for event in self._events[seen:]:
                    if predicate(event):
                        return event
                seen = len(self._events)
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    last = [e.summary() for e in self._events[-5:]]
                    raise WaitTimeoutError(
                        f"no {what} within {timeout:.1f}s; last events: {last or 'none'}")
                self._changed.wait(remaining)

    def close(self) -> None:
        """Write every event recorded so far to the file and close it; later ones stay in memory."""
        with self._changed:
            pending, self._pending = self._pending, None
        if pending is not None:
            self._finish()


def _write_events(file: TextIO, pending: _Pending) -> None:
    """The writer thread: one JSON line per event until None; flush when caught up."""
    with file:
        while (event := pending.get()) is not None:
            try:
                file.write(event.to_json() + "\n")
                if pending.empty():
                    file.flush()
            except (OSError, TypeError, ValueError):
                log.exception("cannot write event %s to %s", event.summary(), file.name)


def _finish_writing(pending: _Pending, writer: threading.Thread) -> None:
    pending.put(None)
    writer.join()
