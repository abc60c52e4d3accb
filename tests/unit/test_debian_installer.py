"""The Debian installer example's milestones (examples/debian-installer) match what its
menus and the installer print on the serial console (excerpts of serial.log from boots
of the bookworm tree), and type the keys a person would."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from pxelab.labfile import lab_cases, load_lab_file
from pxelab.labfile.expand import firmware_milestones
from pxelab.machine.console import CURSOR_MOVE, Milestone
from pxelab.scenarios.cases import Scenario

pytestmark = pytest.mark.unit

# vesamenu in text mode through SeaBIOS's serial console, Tab, the keys, the kernel.
BIOS_LOG = (
    b"\xe2\x94\x98\x1b[25;16H\x1b[0;31mPress ENTER to boot or TAB to edit a menu entry"
    b"\x1b[22;01H\r\n\r\n\r"
    b"\x1b[0;36;1m> \x1b[0mdebian-installer/amd64/linux vga=788 initrd=debian-installer/"
    b"amd64/initrd.gz -\r\r\n-- quiet \x1b[24;03Hdebian-installer/amd64/linux vga=788 "
    b"initrd=debian-installer/amd64/initrd.gz -\r\r\n-- quiet  console=ttyS0"
    b"\x1b[24;01HUndefined video mode number: 314\r\r\nPress <ENTER> to see video modes "
    b"available, <SPACE> to continue, or wait 30 sec\r\r\nStarting system log daemon\r\n"
    b"\x1b[5;3H\x1b[0m\x1b(0\x1b[30m\x1b[47mlqqqqu\x1b[0m\x1b(B\x1b[30m\x1b[47m \x1b[31m"
    b"[!!] Select a language\x1b[30m \x1b(0tqqqqk")
# GRUB on OVMF's console: its menu, then its editor after "e".
UEFI_LOG = (
    b"Fetching Netboot Image debian-installer/amd64/grubx64.efi\r\n"
    b"error: no video mode activated.\r\n\r\x1b[0m\x1b[30m\x1b[40m\x1b[2J\x1b[01;01H"
    b"\x1b[02;24HGNU GRUB  version 2.06-13+deb12u2\r\n\r\r\n"
    b"      Press enter to boot the selected OS, `e' to edit the commands       \r\n\r"
    b"\x1b[15;02H\x1b[0m\x1b[37m\x1b[40m     Minimum Emacs-like screen editing is "
    b"supported. TAB lists           \r\n\r      completions. Press Ctrl-x or F10 to boot, "
    b"Ctrl-c or F2 for a        \r\n\rBooting a command list\r\n"
    b"\x1b[31m[!!] Select a language\x1b[30m")


LAB = Path(__file__).resolve().parents[2] / "examples/debian-installer/debian-installer.pxelab.toml"


def case(firmware: str) -> Scenario:
    return next(c for c in lab_cases(load_lab_file(LAB)) if str(c.guest.firmware) == firmware)


def own(firmware: str) -> tuple[Milestone, ...]:
    """The guest's own milestones and success: what comes after the firmware's table."""
    chosen = case(firmware)
    return chosen.milestones[len(firmware_milestones(chosen.mode, chosen.ip)):]


def reached(milestones: tuple[Milestone, ...], log: bytes) -> list[str]:
    """The milestones whose patterns match ``log`` one after the other, as the watcher
    sees it (cursor moves left out)."""
    text = CURSOR_MOVE.sub(b"", log).decode("utf-8", "replace")
    seen, position = [], 0
    for milestone in milestones:
        found = re.compile(milestone.pattern).search(text, position)
        if found is None:
            break
        seen.append(milestone.name)
        position = found.end()
    return seen


def test_bios_menus_and_first_screen_match_in_order() -> None:
    assert reached(own("seabios"), BIOS_LOG) == ["menu", "menu_edit", "video_prompt", "success"]


def test_uefi_menus_and_first_screen_match_in_order() -> None:
    assert reached(own("ovmf"), UEFI_LOG) == ["shim", "bootloader", "menu", "menu_edit",
                                              "success"]


def test_grub_video_errors_do_not_fail_the_boot() -> None:
    # d-i's grub.cfg asks for gfxterm; without a display GRUB says so and goes on.
    for milestone in own("ovmf"):
        for failure in milestone.failures:
            for line in ("error: no suitable video mode found.", "error: no video mode activated."):
                assert not re.search(failure.pattern, line), failure


def test_the_keys_add_a_serial_console_to_the_install_entry() -> None:
    answers = {m.name: m.answer for m in own("seabios")}
    assert answers == {"menu": "\t", "menu_edit": " console=ttyS0\r", "video_prompt": " ",
                       "success": ""}
    answers = {m.name: m.answer for m in own("ovmf")}
    assert answers == {"shim": "", "bootloader": "", "menu": "e",
                       "menu_edit": "\x0e\x0e\x0e\x05 console=ttyS0\x18", "success": ""}


def test_the_guests_have_memory_for_the_installers_normal_mode() -> None:
    for firmware in ("seabios", "ovmf"):
        assert case(firmware).guest.memory_mib >= 1024
    assert case("ovmf").guest.nic_romfile == ""  # OVMF's own PXEv4, no iPXE ROM
