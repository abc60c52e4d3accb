"""Keystrokes for a serial console, written by name: ``"<Tab> console=ttyS0<Enter>"``.

A milestone's ``answer`` (:class:`pxelab.machine.console.Milestone`) is what the
watcher types on the console when the milestone's pattern is seen: a key that ends a
prompt, or the keys that edit a boot menu entry. Control keys are unreadable in a
configuration file, so :func:`parse_keys` turns names in angle brackets into the
bytes a terminal sends for them; everything else is typed as written, and ``<<``
types ``<``.

The bytes are what a VT100 sends, which both firmware consoles read back as keys:
SeaBIOS's serial console (sercon) and EDK2's TerminalDxe turn ``ESC [ A`` into the
Up key, and a control character into the key with Ctrl.
"""

from __future__ import annotations

import re

from pxelab.core.errors import ConfigError

__all__ = ["KEY_NAMES", "parse_keys"]

ESC = "\x1b"
KEY_NAMES: dict[str, str] = {
    "tab": "\t", "enter": "\r", "esc": ESC, "space": " ", "backspace": "\x7f",
    "up": f"{ESC}[A", "down": f"{ESC}[B", "right": f"{ESC}[C", "left": f"{ESC}[D",
    "home": f"{ESC}[H", "end": f"{ESC}[F", "delete": f"{ESC}[3~",
    # VT100 application keypad codes; EDK2's TerminalDxe and GRUB read these for F1-F4
    # and the VT220 ones for F5-F10.
    "f1": f"{ESC}OP", "f2": f"{ESC}OQ", "f3": f"{ESC}OR", "f4": f"{ESC}OS",
    "f5": f"{ESC}[15~", "f6": f"{ESC}[17~", "f7": f"{ESC}[18~", "f8": f"{ESC}[19~",
    "f9": f"{ESC}[20~", "f10": f"{ESC}[21~",
}
_NAME = re.compile(r"<<|<([^<>]*)>")
_CTRL = re.compile(r"ctrl-([a-z@\[\\\]^_])")


def _key(name: str, text: str) -> str:
    folded = name.strip().lower()
    if folded in KEY_NAMES:
        return KEY_NAMES[folded]
    if control := _CTRL.fullmatch(folded):
        return chr(ord(control.group(1).upper()) & 0x1F)
    raise ConfigError(f"unknown key <{name}> in {text!r}: write one of "
                      f"{', '.join(f'<{k.capitalize()}>' for k in KEY_NAMES)}, <Ctrl-A>.."
                      "<Ctrl-Z>, or << for a literal '<'")


def parse_keys(text: str) -> str:
    """The characters to type for ``text``, key names in angle brackets replaced.

    ``parse_keys("<Tab> console=ttyS0<Enter>") == "\\t console=ttyS0\\r"``; names
    ignore case; ``<Ctrl-X>`` is the control character; a ``<`` that starts no
    name is an error (write ``<<``), so a typo never reaches the guest as text.
    """
    parts: list[str] = []
    position = 0
    for found in _NAME.finditer(text):
        parts.append(text[position:found.start()])
        parts.append("<" if found.group(0) == "<<" else _key(found.group(1), text))
        position = found.end()
    rest = text[position:]
    if "<" in rest:
        raise ConfigError(f"unclosed '<' in {text!r}: close the key name with '>' or "
                          "write << for a literal '<'")
    return "".join(parts) + rest
