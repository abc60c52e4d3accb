"""The one MAC formatter, hardware-address helper, console tail and boot URL builder."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from pxelab.core.mac import format_mac, hardware_address, parse_mac
from pxelab.machine.terminal import console_tail, serial_log_tail, strip_ansi, unwrap
from pxelab.server.match import ClientInfo, boot_url, url_host

pytestmark = pytest.mark.unit


def test_mac_text_form() -> None:
    assert format_mac(bytes.fromhex("525400ABCDEF")) == "52:54:00:ab:cd:ef"
    assert parse_mac(" 52-54-00-AB-CD-EF ") == "52:54:00:ab:cd:ef"
    assert parse_mac("52:54:00:ab:cd") is None and parse_mac("zz:54:00:ab:cd:ef") is None


def test_hardware_address_of_a_missing_interface_is_none() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        assert hardware_address(sock, "pxelab-nonesuch") is None
        assert hardware_address(sock, "lo") is None  # all zeros: no hardware address


def test_console_tail_strips_escapes_and_keeps_the_last_lines(tmp_path: Path) -> None:
    assert strip_ansi("\x1b[2J\x1b[25;06Hok\r\n") == "ok\n"
    text = "".join(f"\x1b[1mline {n}\x1b[0m\r\n" for n in range(40))
    tail = console_tail(text)
    assert tail.splitlines() == [f"line {n}" for n in range(15, 40)]
    log = tmp_path / "serial.log"
    log.write_bytes(text.encode())
    assert serial_log_tail(log) == tail
    assert serial_log_tail(tmp_path / "missing.log") == ""


def test_boot_url_and_url_host() -> None:
    assert url_host("192.0.2.1") == "192.0.2.1" and url_host("2001:db8::1") == "[2001:db8::1]"
    six = ClientInfo(mac="52:54:00:12:34:56", server_address="2001:db8::1")
    assert boot_url("/grubx64.efi", six) == "tftp://[2001:db8::1]/grubx64.efi"
    assert boot_url("http://x/y", six) == "http://x/y" and boot_url(None, six) is None


def test_unwrap_joins_the_lines_an_80_column_screen_wrapped() -> None:
    assert unwrap(["x" * 80, "y)", "z" * 79, "w"]) == ["x" * 80 + "y)", "z" * 79, "w"]
