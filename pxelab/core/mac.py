"""MAC addresses: the one text form pxelab uses for them, and an interface's own.

The text form is lower-case hex pairs joined by colons (``52:54:00:12:34:56``):
what events, client records, rules and reports all show and compare.
"""

from __future__ import annotations

import fcntl
import re
import struct
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import socket

__all__ = ["format_mac", "hardware_address", "parse_mac"]

SIOCGIFHWADDR = 0x8927  # <linux/sockios.h>
_MAC = re.compile(r"^[0-9a-f]{2}(:[0-9a-f]{2}){5}$")


def format_mac(raw: bytes) -> str:
    """``raw`` (six bytes off the wire) in pxelab's text form."""
    return raw.hex(":")


def parse_mac(text: str) -> str | None:
    """``text`` in pxelab's text form (any case, ``-`` or ``:``), None if it is no MAC."""
    text = text.strip().lower().replace("-", ":")
    return text if _MAC.match(text) else None


def hardware_address(sock: socket.socket, interface: str) -> bytes | None:
    """The interface's hardware address, asked through ``sock``'s network namespace.

    An ioctl, not /sys/class/net: /sys shows the mount namespace's view, which
    in a namespace thread is not the network namespace the socket lives in.
    None if the interface is gone or has no hardware address (all zeros).
    """
    try:
        info = fcntl.ioctl(sock.fileno(), SIOCGIFHWADDR,
                           struct.pack("256s", interface.encode()[:15]))
    except OSError:
        return None
    mac = info[18:24]
    return mac if any(mac) else None
