"""The console watcher against a real process printing a boot-like log."""

from __future__ import annotations

import time

import pexpect
import pytest

from pxelab.machine.console import ConsoleSpawn, ConsoleWatcher, FailurePattern, Milestone
from pxelab.machine.terminal import as_displayed
from pxelab.scenarios.milestones import LINUX_NFSROOT, SHIM_FAILURES

pytestmark = pytest.mark.unit

MILESTONES = (
    Milestone("firmware", r"BIOS v\d", 5),
    Milestone("loader", r"loader ok", 5,
              failures=(FailurePattern(r"Failed to load \S+", "loader module missing"),)),
    Milestone("kernel", r"Linux version \S+", 5, landmark=True),
)


def spawn(script: str) -> pexpect.spawn:
    return pexpect.spawn("sh", ["-c", script], encoding="utf-8", timeout=5)


def watch(script: str, milestones=MILESTONES):
    console = spawn(script)
    try:
        return ConsoleWatcher(console, time.monotonic()).run("demo", milestones)
    finally:
        console.close(force=True)


def test_all_milestones_in_order():
    timeline = watch("echo 'BIOS v1'; echo 'loader ok'; echo 'Linux version 6.1'")
    assert timeline.ok
    assert [h.name for h in timeline.hits] == ["firmware", "loader", "kernel"]
    assert timeline.hits[2].text == "Linux version 6.1"


def test_failure_pattern_ends_the_wait_at_once():
    started = time.monotonic()
    timeline = watch("echo 'BIOS v1'; echo 'Failed to load ldlinux.c32'; sleep 30")
    assert not timeline.ok
    assert timeline.failed_stage == "loader"
    assert "loader module missing" in (timeline.failure or "")
    assert "ldlinux.c32" in (timeline.failure or "")
    assert time.monotonic() - started < 4  # well before the 5 s stage timeout


def test_exit_before_a_milestone_names_the_stage():
    timeline = watch("echo 'BIOS v1'")
    assert timeline.failed_stage == "loader"
    assert "exited" in (timeline.failure or "")
    assert "BIOS v1" in timeline.console_tail


def test_stage_timeout_names_what_was_awaited():
    quick = (Milestone("firmware", r"BIOS v\d", 0.5, description="the BIOS banner"),)
    timeline = watch("sleep 5", quick)
    assert timeline.failed_stage == "firmware"
    assert "the BIOS banner" in (timeline.failure or "")


def test_a_later_milestone_before_the_awaited_one_fails_that_stage_at_once():
    # The kernel line comes while the loader's is awaited (a loader build that prints
    # another banner): the loader stage fails there, naming the milestone seen, and
    # does not wait out its timeout.
    timeline = watch("echo 'BIOS v1'; echo 'Linux version 6.1'; echo 'loader ok'")
    assert timeline.failed_stage == "loader"
    assert timeline.skipped_to == "kernel"
    assert "went on to kernel" in (timeline.failure or "")


def test_a_line_arriving_in_pieces_is_matched_whole():
    userspace = LINUX_NFSROOT[-1]
    timeline = watch("printf 'PXELAB-USERSPACE root=192.0.2.1:/px'; sleep 0.3; "
                     "printf 'elab fstype=nfs'; sleep 0.3; printf '4\\r\\n'", (userspace,))
    assert timeline.ok
    assert timeline.hits[0].text == "PXELAB-USERSPACE root=192.0.2.1:/pxelab fstype=nfs4"


def test_a_milestone_answer_is_typed_on_the_console() -> None:
    # The script waits for a key like iPXE's prompt does, and says which key came.
    script = "echo 'Press a key'; stty -echo; read -r key; echo \"got <$key>\"; echo done"
    milestones = (Milestone("prompt", r"Press a key", 5, answer="x\r"),
                  Milestone("answered", r"got <x>", 5), Milestone("end", r"done", 5))
    timeline = watch(script, milestones)
    assert timeline.ok, timeline.failure
    assert [h.name for h in timeline.hits] == ["prompt", "answered", "end"]


@pytest.mark.parametrize(("raw", "shown"), [
    ("plain", "plain"),
    ("abc\b\bX", "aXc"),
    ("abc\b \b", "ab"),  # erase the last character, as line editors do
    ("\b\bab", "ab"),  # never left of column 0
    ("progress 10%\rprogress 100%", "progress 100%"),
    ("old line\rnew", "new line"),
    ("long line\rnew", "newg line"),
    ("one\r\ntwo\r\n", "one\ntwo\n"),
    ("Press a key..." + "\b \b" * 14 + "next", "next"),
])
def test_as_displayed_applies_backspace_and_carriage_return(raw: str, shown: str) -> None:
    assert as_displayed(raw) == shown


@pytest.mark.parametrize("side", [r"\263", "│"], ids=["cp437", "utf-8"])
def test_a_failure_in_a_box_drawn_by_cursor_moves_quotes_its_row(side: str) -> None:
    # shim's error dialog: rows placed by ESC[row;colH, no line ends, a frame of code
    # page 437 bytes (OVMF 2022.11) or UTF-8 box drawing (2025.02). The quote is the
    # row with the match, without the frame.
    box = (rf"\033[01;01H\332\304\304\277\033[02;01H{side}   ERROR   {side}"
           rf"\033[03;01H{side}  Verification failed: (0x1A) Security Violation  {side}"
           rf"\033[04;01H{side}      {side}\033[05;01H\300\304 OK \304\331")
    milestones = (Milestone("bootloader", r"grub config loaded", 5,
                            failures=SHIM_FAILURES),)
    console = ConsoleSpawn("sh", ["-c", f"printf 'Fetching grubx64.efi\\r\\n{box}'; sleep 5"],
                           timeout=5)
    try:
        timeline = ConsoleWatcher(console, time.monotonic()).run("demo", milestones)
    finally:
        console.close(force=True)
    assert timeline.failed_stage == "bootloader"
    assert (timeline.failure or "").endswith(
        "(console: 'Verification failed: (0x1A) Security Violation')"), timeline.failure
