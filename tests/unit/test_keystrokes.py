"""Key names in a milestone's answer become the bytes a VT100 sends."""

from __future__ import annotations

import pytest

from pxelab.core.errors import ConfigError
from pxelab.machine.keystrokes import parse_keys

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(("text", "typed"), [
    ("<Tab> console=ttyS0<Enter>", "\t console=ttyS0\r"),
    ("e", "e"),
    ("<ctrl-n><CTRL-N><Ctrl-e> x<Ctrl-X>", "\x0e\x0e\x05 x\x18"),
    ("<Down><Up><Left><Right>", "\x1b[B\x1b[A\x1b[D\x1b[C"),
    ("<Esc><F10><Space>", "\x1b\x1b[21~ "),
    ("a<<b", "a<b"),
    ("", ""),
])
def test_names_become_keys(text: str, typed: str) -> None:
    assert parse_keys(text) == typed


@pytest.mark.parametrize(("text", "message"), [
    ("<Tabb>", r"unknown key <Tabb> in '<Tabb>': write one of <Tab>, <Enter>"),
    ("<Ctrl-1>", "unknown key <Ctrl-1>"),
    ("a < b", "unclosed '<'"),
])
def test_a_wrong_name_is_an_error_not_text(text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_keys(text)
