"""Structured events: every decision and transfer the boot server makes.

An :class:`Event` says when, for which client, what was asked, what was
answered and why. The :class:`EventLog` is shared between the server thread and
the test; tests wait on it (``wait_for``) instead of sleeping.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, TextIO

from pxelab.errors import WaitTimeoutError


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
        return json.dumps(asdict(self), sort_keys=True, default=str)

    def summary(self) -> str:
        parts = [f"{self.source}.{self.kind}"]
        parts += [f"{k}={v}" for k, v in (
            ("client", self.client), ("request", self.request),
            ("answer", self.answer), ("reason", self.reason)) if v]
        return " ".join(parts)


Predicate = Callable[[Event], bool]


class EventLog:
    """Thread-safe, append-only list of events, optionally mirrored to a JSON-lines file."""

    def __init__(self, path: Path | None = None) -> None:
        self._events: list[Event] = []
        self._changed = threading.Condition()
        self._listeners: list[Callable[[Event], None]] = []
        self._file: TextIO | None = path.open("a", encoding="utf-8") if path else None
        self.path = path

    def record(self, event: Event) -> None:
        with self._changed:
            self._events.append(event)
            if self._file:
                self._file.write(event.to_json() + "\n")
                self._file.flush()
            listeners = list(self._listeners)
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
            self._listeners.append(listener)

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
        with self._changed:
            if self._file:
                self._file.close()
                self._file = None
