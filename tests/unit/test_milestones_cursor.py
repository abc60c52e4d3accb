"""BIOS-path milestones match text that SeaBIOS's serial console split with cursor moves."""

from __future__ import annotations

import re

import pytest

from pxelab.scenarios import milestones as ms

pytestmark = pytest.mark.unit

# As recorded in serial.log of a legacy_pxe_ipv4[e1000] boot whose config milestone
# was missed: SeaBIOS (sercon) caught up with PXELINUX's cursor mid-line.
SEEN = ("PXELINUX 6.04 PXE 20200816 Copyright (C) 1994\x1b[25;45H\x1b[25;46H-2015 H. Peter "
        "Anvin et al\r\r\r\npxelab\x1b[25;06H\x1b[25;07H: pxelinux config loaded\r\r\n"
        "\rLoading vmlinuz..\x1b[25;17H. ok\r\r\n\rLoading initrd.img...ok\r\r\n")


def pattern(table: tuple[ms.Milestone, ...], name: str) -> re.Pattern[str]:
    return re.compile(next(m.pattern for m in table if m.name == name))


@pytest.mark.parametrize("name", ["bootloader", "config", "kernel_fetch", "initrd_fetch"])
def test_pxelinux_milestones_tolerate_cursor_moves(name: str) -> None:
    assert pattern(ms.PXELINUX, name).search(SEEN)


def test_pxelinux_loading_failure_tolerates_cursor_moves() -> None:
    failure = next(m for m in ms.PXELINUX if m.name == "kernel_fetch").failures[0]
    assert re.search(failure.pattern, "Loading vm\x1b[25;10Hlinuz... failed: No such file")


@pytest.mark.parametrize("text", [
    "Configuring (net0 52:54:00:12:34:56)... ok",
    "Configuring (net0 52:54:00:12:34:56).... ok",
    "Configuring (net0 52:54:00:12:34:56)..\x1b[25;39H\x1b[25;40H. ok",
])
def test_ipxe_rom_dhcp_tolerates_cursor_moves(text: str) -> None:
    assert pattern(ms.IPXE_ROM, "rom_dhcp").search(text)
