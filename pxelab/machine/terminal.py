"""Console text as a person saw it: escape sequences removed, overwrites applied, the
last lines of a console kept for a report."""

from __future__ import annotations

import re
from pathlib import Path

CONTEXT_LINES = 25  # console lines a failure report shows
TAIL_CHARS = 20000  # console output kept to find them in
# SeaBIOS's serial console mirrors an 80-column text screen: a longer line (an iPXE
# error with its URL and ipxe.org link) comes as 80 characters, a line break, the rest.
SCREEN_COLUMNS = 80
# Where such a wrap may fall inside a pattern: a line break of the serial console.
WRAP = r"(?:\r*\n)?"


_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b[()][A-Z0-9]|\r")


def strip_ansi(text: str) -> str:
    """``text`` without terminal escape sequences and carriage returns."""
    return _ANSI.sub("", text)


def console_tail(text: str) -> str:
    """The last :data:`CONTEXT_LINES` lines of console output, escape sequences removed and
    lines the screen wrapped joined again."""
    return "\n".join(unwrap(strip_ansi(text).splitlines())[-CONTEXT_LINES:])


def serial_log_tail(serial_log: Path) -> str:
    """:func:`console_tail` of the end of a serial log file ("" if it cannot be read)."""
    try:
        data = serial_log.read_bytes()[-TAIL_CHARS:]
    except OSError:
        return ""
    return console_tail(data.decode("utf-8", "replace"))


def as_displayed(text: str) -> str:
    """``text`` as a terminal showed it, line by line: a backspace moves the cursor one
    column left, a carriage return to column 0, and what follows overwrites (iPXE
    erases its Ctrl-B prompt with backspace, space, backspace). Trailing blanks go."""
    return "\n".join(_displayed_line(line) for line in text.split("\n"))


def _displayed_line(line: str) -> str:
    if "\b" not in line and "\r" not in line:
        return line
    cells: list[str] = []
    column = 0
    for char in line:
        if char == "\b":
            column = max(column - 1, 0)
        elif char == "\r":
            column = 0
        else:
            if column < len(cells):
                cells[column] = char
            else:
                cells.append(char)
            column += 1
    return "".join(cells).rstrip(" ")


def unwrap(lines: list[str], width: int = SCREEN_COLUMNS) -> list[str]:
    """``lines`` with each line the screen wrapped (exactly ``width`` characters) joined
    to the next, so a long line reads as printed."""
    joined: list[str] = []
    wrapped = False
    for line in lines:
        if wrapped:
            joined[-1] += line
        else:
            joined.append(line)
        wrapped = len(line) == width
    return joined


def wrappable(literal: str) -> str:
    """A regex matching ``literal`` also where the screen wrapped it (:data:`WRAP`)."""
    return WRAP.join(re.escape(char) for char in literal)
