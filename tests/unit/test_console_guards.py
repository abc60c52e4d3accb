"""Guards end a stage the console is silent about; the timeline says when the symptom was.

The console is a real process (``sh -c``); the server's events come from a thread
that records them into a real EventLog on a schedule.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import pexpect
import pytest

from pxelab.analysis.live import live_guards
from pxelab.core.events import Event, EventLog
from pxelab.machine.console import (
    ConsoleSpawn,
    ConsoleWatcher,
    FailurePattern,
    GuardVerdict,
    Milestone,
    MilestoneHit,
    StageGuard,
    Timeline,
)

pytestmark = pytest.mark.unit

MAC = "52:54:00:12:34:56"
RULE = "rule 'pool allows members of pxeclients only': withhold"
LEASE = Milestone("lease", r"got a lease", 20, description="the initramfs's lease")
FAILED = FailurePattern(r"FAILED[^\r\n]*", "the initramfs gave up")


def withheld(reason: str = RULE) -> Event:
    return Event("dhcp4", "withheld", client=MAC, mac=MAC, reason=reason,
                 request="DISCOVER no arch (option 93 absent) vendor-class=pxelab-init")


def offer() -> Event:
    return Event("dhcp4", "offer", client=MAC, mac=MAC, answer="OFFER yiaddr=192.0.2.100")


class Emitter(threading.Thread):
    """Records ``schedule``'s events (seconds after start, event) into ``events``,
    noting the monotonic time of each; ``then`` runs after the last one."""

    def __init__(self, events: EventLog, schedule: list[tuple[float, Callable[[], Event]]],
                 then: Callable[[], None] = lambda: None) -> None:
        super().__init__(daemon=True)
        self.events, self.schedule, self.then = events, schedule, then
        self.recorded: list[float] = []
        self.stop = threading.Event()

    def run(self) -> None:
        started = time.monotonic()
        for offset, make in self.schedule:
            if self.stop.wait(max(started + offset - time.monotonic(), 0)):
                return
            self.events.record(make())
            self.recorded.append(time.monotonic())
        self.then()


@contextmanager
def console(script: str) -> Iterator[ConsoleSpawn]:
    child = ConsoleSpawn("sh", ["-c", script], timeout=5)
    try:
        yield child
    finally:
        child.close(force=True)


def test_a_silent_console_ends_within_a_second_of_the_second_withheld() -> None:
    events = EventLog()
    guards = live_guards(events, MAC)
    emitter = Emitter(events, [(0.2, withheld), (0.6, withheld)])
    with console("sleep 30") as child:
        started = time.monotonic()
        emitter.start()
        timeline = ConsoleWatcher(child, started, guards=guards).run("t", (LEASE,))
        ended = time.monotonic()
    emitter.stop.set()
    assert timeline.failed_stage == "lease"
    assert timeline.ended_by == "guard:dhcp.withheld"
    assert RULE in (timeline.failure or "")
    assert ended - emitter.recorded[1] < 1.0
    assert timeline.symptom_at is not None and timeline.verdict_latency is not None
    assert timeline.symptom_at == pytest.approx(emitter.recorded[1] - started, abs=0.1)
    assert timeline.verdict_latency < 1.0
    assert timeline.properties["verdict_latency"] == round(timeline.verdict_latency, 3)


class CheckCounter:
    """A guard that never fires and says when it has been asked ``times`` more times."""

    def __init__(self) -> None:
        self.checks = 0
        self.asked = threading.Condition()

    def check(self) -> GuardVerdict | None:
        with self.asked:
            self.checks += 1
            self.asked.notify_all()
        return None

    def wait_checks(self, times: int) -> None:
        with self.asked:
            target = self.checks + times
            assert self.asked.wait_for(lambda: self.checks >= target, timeout=5), (
                f"the watcher asked its guards {self.checks} times, not {target}")


def test_min_secs_retry_does_not_end_the_stage() -> None:
    # Withheld for min-secs, then answered on the retry: the lease line follows.
    events = EventLog()
    counter = CheckCounter()
    guards: tuple[StageGuard, ...] = (*live_guards(events, MAC), counter)
    with console("stty -echo; read -r line; echo 'got a lease'") as child:

        def answer_the_console() -> None:
            counter.wait_checks(2)  # the guards have judged both events
            child.sendline("go")

        min_secs = "OFFER withheld: secs=0 < min_secs=2"
        emitter = Emitter(events, [(0.1, lambda: withheld(min_secs)),
                                   (0.2, lambda: withheld(min_secs)), (0.3, offer)],
                          then=answer_the_console)
        emitter.start()
        timeline = ConsoleWatcher(child, time.monotonic(), guards=guards).run("t", (LEASE,))
    assert timeline.ok, timeline.failure
    assert timeline.ended_by is None and timeline.verdict_latency is None


def test_a_console_failure_has_its_line_arrival_as_symptom() -> None:
    # The failure line comes in the same read as the lease line; the watcher is busy
    # in on_hit for a while before it looks at it: the symptom is when it was read.
    second = Milestone("mount", r"mounted", 5, failures=(FAILED,))

    def busy(hit: MilestoneHit) -> None:
        threading.Event().wait(0.4)  # a slow on_hit, not a wait for anything

    with console("printf 'got a lease\\nFAILED mount: no such export\\n'; sleep 30") as child:
        started = time.monotonic()
        timeline = ConsoleWatcher(child, started).run("t", (LEASE, second), busy)
    assert timeline.failed_stage == "mount" and timeline.ended_by == "console"
    assert "FAILED mount: no such export" in (timeline.failure or "")
    assert timeline.symptom_at is not None and timeline.failed_at is not None
    assert timeline.symptom_at < timeline.hits[0].seconds + 0.1
    assert timeline.verdict_latency == pytest.approx(0.4, abs=0.2)


def test_slices_lose_no_text() -> None:
    # With a guard, expect runs in 0.25 s slices; a line spread over several is whole.
    counter = CheckCounter()
    script = "printf 'got a'; sleep 0.6; printf ' lea'; sleep 0.4; printf 'se\\n'"
    with console(script) as child:
        timeline = ConsoleWatcher(child, time.monotonic(), guards=(counter,)).run(
            "t", (LEASE,))
    assert timeline.ok, timeline.failure
    assert timeline.hits[0].text == "got a lease"
    assert counter.checks >= 3


@pytest.mark.parametrize(("script", "milestones", "ended_by"), [
    ("sleep 5", (Milestone("lease", "got a lease", 0.6),), "timeout"),
    ("echo bye", (LEASE,), "eof"),
    ("echo 'FAILED dhcp'; sleep 5", (Milestone("lease", "got a lease", 5, (FAILED,)),),
     "console"),
    ("echo 'Linux version 6'; sleep 5",
     (LEASE, Milestone("kernel", r"Linux version \d", 5, landmark=True)), "landmark"),
])
def test_ended_by_says_what_ended_the_stage(script: str, milestones: tuple[Milestone, ...],
                                            ended_by: str) -> None:
    with console(script) as child:
        timeline = ConsoleWatcher(child, time.monotonic(), guards=(CheckCounter(),)).run(
            "t", milestones)
    assert timeline.ended_by == ended_by
    assert (timeline.symptom_at is not None) == (ended_by == "console")


def test_a_timeout_tail_shows_each_line_once() -> None:
    with console("echo one; echo two; sleep 5") as child:
        timeline = ConsoleWatcher(child, time.monotonic()).run(
            "t", (Milestone("lease", "got a lease", 0.5),))
    assert timeline.console_tail.split() == ["one", "two"]


def test_old_timelines_load_without_the_new_fields() -> None:
    saved = {"scenario": "t", "hits": [], "failed_stage": "kernel", "failure": "x",
             "failed_at": 60.0, "console_tail": "", "properties": {}, "skipped_to": None}
    timeline = Timeline(**saved)  # as evidence.json written before ended_by/symptom_at
    assert timeline.ended_by is None and timeline.verdict_latency is None


def test_arrival_times_by_offset() -> None:
    with console("printf abc; sleep 0.3; printf def") as child:
        child.expect("abc")
        child.expect(pexpect.EOF)
        assert child.delivered == 6
        first, second = child.arrival(3), child.arrival(4)
        assert first is not None and second is not None
        assert second - first >= 0.2
        assert child.arrival(1) == first and child.arrival(6) == second
        assert child.arrival(7) is None  # not read yet


def test_the_rendered_timeline_says_what_ended_a_silent_stage() -> None:
    timeline = Timeline("legacy_pxe_ipv4", failed_stage="initramfs_dhcp", failure="withheld",
                        failed_at=11.1, ended_by="guard:dhcp.withheld", symptom_at=11.0)
    assert timeline.render().splitlines()[-1] == (
        "  (ended by guard:dhcp.withheld, 0.1s after the symptom)")
