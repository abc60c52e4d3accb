"""Structured events: every decision and transfer the boot server makes.

An :class:`Event` says when, for which client, what was asked, what was
answered and why. The :class:`EventLog` is shared between the server thread and
the test; tests wait on it (``wait_for``) instead of sleeping.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import weakref
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field, is_dataclass
from itertools import islice
from pathlib import Path
from typing import Any, TextIO

from pxelab.core.errors import WaitTimeoutError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Event:
    """One thing the boot server decided or did.

    ``source`` is the protocol ("dhcp4", "tftp", "http", ...), ``kind`` a short
    verb ("offer", "ack", "rrq", "sent", "drop", ...), ``client`` who spoke as
    the protocol knows it (DHCPv4: the MAC; DHCPv6: the MAC, else the address;
    TFTP, HTTP, RA: the address), ``request`` what it asked, ``answer`` what it
    got and ``reason`` why.

    Two facts every protocol shares are fields, in the same place for every
    source, so that nobody reading events needs to know which protocol put
    them where:

    - ``mac``: the client's MAC ("aa:bb:cc:dd:ee:ff") when the server knows it,
      else "";
    - ``file``: the file or URL the event is about: the boot file or boot URL
      DHCP handed out, the file TFTP or the path HTTP was asked for, the data-root
      file a fault changed; else "".

    ``details`` holds the rest, per protocol; :data:`FIELD_KEYS` never appear in it.
    """

    source: str
    kind: str
    client: str = ""
    request: str = ""
    answer: str = ""
    reason: str = ""
    details: dict[str, Any] = field(default_factory=dict)
    time: float = field(default_factory=time.time)
    mac: str = ""
    file: str = ""

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Event:
        """An event as :meth:`to_json` wrote it, or as files written before ``mac``
        and ``file`` were fields wrote it (they are taken from where those put them)."""
        if "mac" in data or "file" in data:
            return cls(**data)
        details = dict(data.get("details") or {})
        legacy = {key: details.pop(key, None) for key in FIELD_KEYS}
        mac = legacy["mac"] or (data.get("client") if data.get("source") == "dhcp4" else "")
        file = legacy["file"] or legacy["path"] or legacy["boot_url"]
        return cls(**(data | {"details": details, "mac": str(mac or ""),
                              "file": str(file or "")}))

    def to_json(self) -> str:
        # The same text as json.dumps(asdict(self), ...) without asdict's deep copy.
        return json.dumps({
            "source": self.source, "kind": self.kind, "client": self.client,
            "request": self.request, "answer": self.answer, "reason": self.reason,
            "details": self.details, "time": self.time, "mac": self.mac, "file": self.file},
            sort_keys=True, default=_jsonable)

    def summary(self) -> str:
        parts = [f"{self.source}.{self.kind}"]
        parts += [f"{k}={v}" for k, v in (
            ("client", self.client), ("mac", self.mac if self.mac != self.client else ""),
            ("file", self.file if self.file not in self.request else ""), ("request", self.request),
            ("answer", self.answer), ("reason", self.reason)) if v]
        return " ".join(parts)


# Keys never in details: the facts that are fields (mac, file), and the names the
# file had before it was one (HTTP's "path", DHCPv6's "boot_url").
FIELD_KEYS = ("mac", "file", "path", "boot_url")


def _jsonable(value: Any) -> Any:
    """What JSON has no type for: a dataclass as its fields (as asdict made it), else text."""
    if is_dataclass(value) and not isinstance(value, type):
        return asdict(value)
    return str(value)


Predicate = Callable[[Event], bool]


# Events an EventLog keeps in memory by default: about 1 KiB each, so a server that runs
# for weeks stays within some MiB; the file has them all.
WINDOW = 10_000


class EventLog:
    """Thread-safe, append-only log of events, optionally mirrored to a JSON-lines file.

    Memory holds the last ``window`` events (None: all of them, for a run that ends,
    such as one boot); the file, when there is one, gets every event. Waiters and
    listeners see an event at once, from memory. The file is written by a
    :class:`_FileWriter` thread in batches, so that a server recording an event waits
    for neither JSON nor the disk; :meth:`close` writes what is left.
    """

    def __init__(self, path: Path | None = None, *, window: int | None = WINDOW) -> None:
        if window is not None and window < 1:
            raise ValueError(f"an event window of {window} keeps nothing; use 1 or more")
        self.window = window
        self._events: deque[Event] = deque(maxlen=window)
        self._recorded = 0  # ever, so that waiters can tell new events from old
        # record() takes the lock itself (a C call, not Condition's Python __enter__) and
        # wakes waiters only when there are some: every event of a busy server passes there.
        self._lock = threading.RLock()
        self._changed = threading.Condition(self._lock)
        self._waiting = 0  # threads in wait_for, counted under the lock
        # Replaced, never changed in place, so that record() needs no copy.
        self._listeners: tuple[Callable[[Event], None], ...] = ()
        self._writer: _FileWriter | None = None
        self.path = path
        if path is not None:
            # An OSError here is the caller's to report.
            self._writer = _FileWriter(path.open("a", encoding="utf-8"))
            # close() or, if nobody calls it, garbage collection or interpreter exit.
            weakref.finalize(self, self._writer.close)

    def record(self, event: Event) -> None:
        with self._lock:
            self._events.append(event)
            self._recorded += 1
            if self._writer is not None:
                self._writer.add(event)  # under the lock: the file keeps the list's order
            listeners = self._listeners
            if self._waiting:
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
        """The events in memory (the last :attr:`window`), oldest first."""
        with self._changed:
            return iter(list(self._events))

    def __len__(self) -> int:
        """How many events are in memory; :attr:`recorded` counts them all."""
        with self._changed:
            return len(self._events)

    @property
    def recorded(self) -> int:
        """How many events were recorded, including those the window let go."""
        with self._changed:
            return self._recorded

    def matching(self, predicate: Predicate) -> list[Event]:
        return [e for e in self if predicate(e)]

    def wait_for(self, predicate: Predicate, timeout: float, what: str = "event") -> Event:
        """Return the first event in memory or to come matching ``predicate``, waiting up
        to ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        seen = 0  # in the count of events ever recorded
        with self._changed:
            while True:
                oldest = self._recorded - len(self._events)
                for event in islice(self._events, max(seen - oldest, 0), None):
                    if predicate(event):
                        return event
                seen = self._recorded
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    last = [e.summary() for e in list(self._events)[-5:]]
                    raise WaitTimeoutError(
                        f"no {what} within {timeout:.1f}s; last events: {last or 'none'}")
                self._waiting += 1
                try:
                    self._changed.wait(remaining)
                finally:
                    self._waiting -= 1

    def close(self) -> None:
        """Write every event recorded so far to the file and close it; later ones stay in memory."""
        with self._changed:
            writer, self._writer = self._writer, None
        if writer is not None:
            writer.close()


class _FileWriter:
    """JSON lines written by a thread of its own, a batch at a time.

    A thread woken for every event cost the server more than the JSON itself
    (a futex wake and a GIL hand-over per event); this one wakes for the first
    event of a batch, lets :data:`BATCH_SECONDS` more gather, then encodes,
    writes and flushes them together. A reader of the file is that far behind
    at most.
    """

    BATCH_SECONDS = 0.05

    def __init__(self, file: TextIO) -> None:
        self._file = file
        self._batch: list[Event] = []
        self._lock = threading.Lock()
        self._waiting = threading.Event()  # set: the batch has events
        self._closing = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"events to {file.name}",
                                        daemon=True)
        self._thread.start()

    def add(self, event: Event) -> None:
        with self._lock:
            self._batch.append(event)
            first = len(self._batch) == 1
        if first:
            self._waiting.set()

    def close(self) -> None:
        """Write what is left, close the file, end the thread; a second call does nothing."""
        self._closing.set()
        self._waiting.set()
        if self._thread is not threading.current_thread():
            self._thread.join()

    def _run(self) -> None:
        with self._file:
            while not self._closing.is_set():
                self._waiting.wait()
                self._closing.wait(self.BATCH_SECONDS)  # close() cuts the gathering short
                self._waiting.clear()  # before taking the batch: a later add() sets it again
                self._write()
            self._write()

    def _write(self) -> None:
        with self._lock:
            batch, self._batch = self._batch, []
        if not batch:
            return
        lines = []
        for event in batch:
            try:
                lines.append(event.to_json() + "\n")
            except (TypeError, ValueError):
                log.exception("cannot write event %s to %s", event.summary(), self._file.name)
        try:
            self._file.write("".join(lines))
            self._file.flush()
        except OSError:
            log.exception("cannot write %d events to %s", len(lines), self._file.name)
