"""The console the watcher reads leaves out cursor moves, even split across reads."""

from __future__ import annotations

import io
import os
import pty
import time

import pexpect
import pytest

from pxelab.machine.console import ConsoleFd, ConsoleSpawn, ConsoleWatcher
from pxelab.scenarios import milestones as ms

pytestmark = pytest.mark.unit

# As SeaBIOS's serial console sent it in legacy_pxe_ipv4 boots, cut in the middle
# of a cursor move (each sleep makes the printfs around it separate reads).
SCRIPT = r"""printf 'pxelinux.0 : 42430 bytes [PXE-NBP]\r\n\r\nPXELIN\033[25;0'
sleep 0.3
printf '6H\033[25;07HUX 6.04 PXE 20200816 Copyright\r\n'
printf '\033[0mp\r'
sleep 0.3
printf '\033[25;02Hxelab: pxelinux config loaded\r\n'
"""


def test_cursor_moves_are_not_matched_but_logged() -> None:
    raw = io.BytesIO()
    child = ConsoleSpawn("sh", ["-c", SCRIPT], timeout=5)
    child.logfile_read = raw
    try:
        timeline = ConsoleWatcher(child, time.monotonic()).run(
            "t", ms.PXELINUX[:2])
        child.expect(pexpect.EOF)
    finally:
        child.close(force=True)
    assert timeline.ok, timeline.failure
    assert timeline.hits[0].text == "PXELINUX 6.04 PXE 20200816 Copyright"
    assert timeline.hits[1].text == "pxelab: pxelinux config loaded"
    assert b"PXELIN\x1b[25;06H\x1b[25;07HUX" in raw.getvalue()
    assert b"\x1b[0m" in raw.getvalue()


def test_other_escape_sequences_pass_through() -> None:
    child = ConsoleSpawn("sh", ["-c", r"printf 'a\033[0mb\033[2Jc\033[1;2Hd\033'"], timeout=5)
    try:
        child.expect(pexpect.EOF)
    finally:
        child.close(force=True)
    assert child.before == b"a\x1b[0mb\x1b[2Jcd"  # a lone ESC at the end is held back


def test_line_ends_pass_through_even_when_split() -> None:
    raw = io.BytesIO()
    child = ConsoleSpawn("sh", ["-c", r"printf 'one\r'; sleep 0.3; printf '\ntwo\r\r\n'"],
                         timeout=5)
    child.logfile_read = raw
    try:
        child.expect(pexpect.EOF)
    finally:
        child.close(force=True)
    assert child.before == raw.getvalue()  # the pty made each \n a \r\n
    assert child.before.startswith(b"one\r\r\ntwo")


def test_text_mode_is_refused() -> None:
    with pytest.raises(ValueError, match="bytes"):
        ConsoleSpawn("true", encoding="utf-8")


def test_console_fd_filters_cursor_moves_and_ends_at_eio() -> None:
    """ConsoleFd reads the slave end of a pty another process owns (a libvirt domain's
    serial port): same filtering as ConsoleSpawn; the owner closing it is EOF."""
    master, slave = pty.openpty()
    console = ConsoleFd(slave, timeout=5)
    try:
        os.write(master, b"PXELIN\x1b[25;06H\x1b[25;07HUX 6.04\r\n")
        console.expect(rb"PXELINUX 6\.04")
        os.close(master)
        console.expect(pexpect.EOF)
    finally:
        console.close()


@pytest.mark.parametrize(("printed", "read"), [
    # syslinux.efi places every character; going to the next row is a line end
    (r"a\033[5;1Hb\033[5;2Hc\033[6;1Hd", b"abc\nd"),
    # after a line end, a move to another row is no second one
    (r"x\033[3;1Hy\n\033[7;1Hz", b"xy\r\nz"),  # the pty makes \n \r\n
])
def test_a_move_to_another_row_is_a_line_end(printed: str, read: bytes) -> None:
    child = ConsoleSpawn("sh", ["-c", f"printf '{printed}'"], timeout=5)
    try:
        child.expect(pexpect.EOF)
    finally:
        child.close(force=True)
    assert child.before == read
