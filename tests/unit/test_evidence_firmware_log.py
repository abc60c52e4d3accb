"""The firmware debug port reader: live lines with times, EOF when the writer dies."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from pxelab.analysis.evidence import LogLine
from pxelab.machine.firmware_log import (
    DebugPortReader,
    LineSplitter,
    format_line,
    read_log,
)

pytestmark = pytest.mark.unit

WAIT_S = 5.0


def test_splitter_stamps_each_line_with_its_first_byte() -> None:
    splitter = LineSplitter()
    assert splitter.feed(b"Loading dri", 10.0) == []
    assert splitter.feed(b"ver\r\nInstall", 11.0) == [LogLine(10.0, "Loading driver")]
    assert splitter.feed(b"ed\nA\nB", 12.0) == [LogLine(11.0, "Installed"), LogLine(12.0, "A")]
    assert splitter.flush() == [LogLine(12.0, "B")]
    assert splitter.flush() == []


def test_log_file_round_trip(tmp_path: Path) -> None:
    lines = [LogLine(1800000000.25, "PXE: started"), LogLine(1800000001.5, "with  spaces ")]
    (tmp_path / "ovmf-debug.log").write_text("".join(format_line(x) for x in lines))
    assert read_log(tmp_path / "ovmf-debug.log") == tuple(lines)
    assert read_log(tmp_path / "missing.log") == ()


def test_untimed_log_lines_keep_the_previous_time(tmp_path: Path) -> None:
    (tmp_path / "old.log").write_text("no time here\n1800000000.000000 timed\nnone\n")
    assert read_log(tmp_path / "old.log") == (
        LogLine(0.0, "no time here"), LogLine(1800000000.0, "timed"),
        LogLine(1800000000.0, "none"))


@pytest.fixture
def reader(tmp_path: Path) -> Iterator[DebugPortReader]:
    """Function: a started reader on tmp_path/port.fifo, stopped afterwards."""
    port = DebugPortReader(tmp_path / "port.fifo", tmp_path / "ovmf-debug.log")
    port.start()
    yield port
    port.stop()


def test_reads_until_the_writer_closes(reader: DebugPortReader) -> None:
    # Opening for writing does not wait: the reader holds the other end already.
    fd = os.open(reader.fifo, os.O_WRONLY | os.O_NONBLOCK)
    os.write(fd, b"SecCoreStartupWithStack\nPlatform")
    os.write(fd, b"Pei\n")
    os.close(fd)
    assert reader.ended.wait(WAIT_S), "no EOF after the writer closed the FIFO"
    reader.stop()
    texts = [line.text for line in reader.lines]
    assert texts == ["SecCoreStartupWithStack", "PlatformPei"]
    assert read_log(reader.log_path) == reader.lines
    assert not reader.fifo.exists()


def test_a_killed_writer_ends_the_reader(reader: DebugPortReader) -> None:
    # Like QEMU dying: the process goes, its end of the FIFO closes with it.
    subprocess.run(["sh", "-c", f"printf 'one\\ntwo' > {reader.fifo}; kill -9 $$"],
                   check=False, timeout=WAIT_S)
    assert reader.ended.wait(WAIT_S)
    reader.stop()
    assert [line.text for line in reader.lines] == ["one", "two"]  # the partial line too


def test_stop_without_a_writer_does_not_hang(reader: DebugPortReader) -> None:
    reader.stop()  # a release build or a QEMU that never started: nothing was written
    assert reader.lines == ()
    assert reader.log_path.read_text() == ""
    reader.stop()  # twice is fine
