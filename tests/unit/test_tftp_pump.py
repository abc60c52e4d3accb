"""The TFTP pump: its thread runs readers, timers and calls from other threads."""

from __future__ import annotations

import socket
import threading
import time

import pytest

from pxelab.server.tftp.pump import Pump

pytestmark = pytest.mark.unit

WAIT = 5.0


class Reader:
    """Reads one datagram per call, remembers in which thread, can be made to fail."""

    def __init__(self, sock: socket.socket, fail: bool = False) -> None:
        self.sock = sock
        self.fail = fail
        self.got: list[bytes] = []
        self.threads: set[str] = set()
        self.errors: list[Exception] = []
        self.done = threading.Event()

    def on_readable(self) -> bool:
        self.threads.add(threading.current_thread().name)
        data = self.sock.recv(64)
        if self.fail:
            raise RuntimeError("a bug")
        self.got.append(data)
        if data == b"last":
            self.done.set()
        return True

    def crashed(self, error: Exception) -> None:
        self.errors.append(error)
        self.done.set()


def pair() -> tuple[socket.socket, socket.socket]:
    return socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)


def test_readers_run_in_the_pump_thread_one_datagram_at_a_time() -> None:
    ours, theirs = pair()
    reader = Reader(ours)
    with ours, theirs, Pump("test pump") as pump:
        pump.call(lambda: pump.add(ours.fileno(), reader))
        for data in (b"one", b"two", b"last"):
            theirs.send(data)
        assert reader.done.wait(WAIT)
    assert reader.got == [b"one", b"two", b"last"]  # level-triggered: none left behind
    assert reader.threads == {"test pump"}


def test_a_failing_reader_is_told_and_the_pump_goes_on() -> None:
    bad_ours, bad_theirs = pair()
    good_ours, good_theirs = pair()
    bad, good = Reader(bad_ours, fail=True), Reader(good_ours)
    with bad_ours, bad_theirs, good_ours, good_theirs, Pump() as pump:
        def register() -> None:
            pump.add(bad_ours.fileno(), bad)
            pump.add(good_ours.fileno(), good)
        pump.call(register)
        bad_theirs.send(b"x")
        assert bad.done.wait(WAIT)
        pump.call(lambda: pump.remove(bad_ours.fileno()))
        good_theirs.send(b"last")
        assert good.done.wait(WAIT)
    assert [str(e) for e in bad.errors] == ["a bug"]


def test_timers_fire_in_order_and_not_early() -> None:
    fired: list[tuple[str, float]] = []
    done = threading.Event()
    with Pump() as pump:
        start = time.monotonic()

        def arm() -> None:
            pump.call_at(start + 0.06, lambda: fired.append(("late", time.monotonic())))
            pump.call_at(start + 0.02, lambda: fired.append(("early", time.monotonic())))
            pump.call_at(start + 0.08, done.set)
        pump.call(arm)
        assert done.wait(WAIT)
    assert [name for name, _ in fired] == ["early", "late"]
    assert fired[0][1] >= start + 0.02 and fired[1][1] >= start + 0.06


def test_close_runs_what_was_queued_and_later_calls_run_at_once() -> None:
    ran: list[str] = []
    pump = Pump()
    pump.call(lambda: ran.append("before start"))  # waits for the thread
    pump.start()
    pump.close()
    pump.call(lambda: ran.append(threading.current_thread().name))
    assert ran == ["before start", threading.current_thread().name]
    assert not [t for t in threading.enumerate() if t.name == "tftp pump"]


def test_a_pump_never_started_opens_nothing_and_closes() -> None:
    ran: list[int] = []
    pump = Pump()
    pump.call(lambda: ran.append(1))
    pump.close()
    assert ran == [1]
