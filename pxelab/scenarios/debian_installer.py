"""Debian's netboot tree, unchanged, booted to the installer's first screen on the serial
console: what the boot server answers, the guest it needs and the milestones, with the
keys a person would type at each boot menu (:mod:`pxelab.machine.netboot` fetches the
tree).

Neither menu boots by itself: PXELINUX's vesamenu has ``timeout 0`` and GRUB's
grub.cfg sets no timeout, so both wait for a key for ever. Nor does the installer
draw on the serial port by itself: the kernel line has no ``console=``, so the
kernel's and the installer's console is the (absent) screen. So each menu entry is
edited as a person at a serial console does, adding ``console=ttyS0``:

- BIOS: vesamenu finds no VESA BIOS (the guest has no display) and draws in text
  mode, which SeaBIOS mirrors to the serial port and reads keys from. Tab opens the
  entry's command line (the default entry is Install); the keys go at its end. The
  kernel's ``vga=788`` then finds no such mode and asks for a key or waits 30 s
  (arch/x86/boot/video.c): Space goes on.
- UEFI: shim (bootnetx64.efi) fetches grubx64.efi beside itself; GRUB finds no
  video mode and stays on OVMF's console, which is the serial port. ``e`` edits the
  first entry (Install); its lines are ``setparams 'Install'``, an empty line, ``set
  background_color=black``, ``linux ...``: three Ctrl-N reach the linux line,
  Ctrl-E its end, Ctrl-X boots.

The installer's first screen is its language question; on a serial console newt
draws it as a dialog titled ``[!!] Select a language``. Below 1 GiB of memory
(measured with 512 MiB) the installer starts in low memory mode instead, whose
first screen is ``[!!] Low memory`` and which skips the language question.
"""

from __future__ import annotations

from pxelab.machine.console import FailurePattern, Milestone
from pxelab.machine.keystrokes import parse_keys
from pxelab.machine.netboot import BIOS_NBP, UEFI_NBP
from pxelab.machine.qemu import Firmware, GuestSpec
from pxelab.scenarios import milestones as ms
from pxelab.server.policy import Arch, Match, Rule
from pxelab.server.settings import TftpConfig

# The installer's own minimum for its normal mode, with headroom: 512 MiB gives low
# memory mode (the first screen is then another one).
MEMORY_MIB = 1024
CONSOLE_ARGUMENT = " console=ttyS0"
FIRST_SCREEN = r"\[!!\] Select a language"
# Seconds from the last menu key to the first screen. Measured under TCG (bookworm and
# trixie trees): the 40 MB initrd over TFTP, lock-step (neither PXELINUX nor GRUB asks
# for a windowsize), took 8-13 s through PXELINUX on the iPXE ROM (blksize 1408) and
# 5 s through GRUB (1024), 28 s on a busy host; the first screen came 34-48 s (BIOS)
# and 38-40 s (UEFI) after power-on.
FIRST_SCREEN_TIMEOUT = 240.0

RULES = (Rule(Match(arch=(Arch.BIOS,)), BIOS_NBP, name="d-i-bios"),
         Rule(Match(arch=(Arch.EFI_X64,)), UEFI_NBP, name="d-i-uefi"))
# GRUB asks for /debian-installer/amd64/grub/grub.cfg: root-relative, as tftpd-hpa -s.
TFTP = TftpConfig(allow_absolute=True)
# Files a healthy boot asks for and the tree does not have (besides PXELINUX's probes of
# pxelinux.cfg/<MAC>, <IP in hex>...): the text tree's menu.cfg includes the gtk tree's
# menus and some that no tree has; vesamenu looks for its libraries at the root before
# its path; shim looks for optional revocation lists and certificates beside itself.
_SCREENS = "debian-installer/amd64/boot-screens/"
EXPECTED_MISSES = (
    *(_SCREENS + name for name in ("gtk.cfg", "adgtk.cfg", "adspkgtk.cfg", "adspk.cfg",
                                   "drkgtk.cfg", "addrkgtk.cfg", "x86drkme.cfg",
                                   "x86menu.cfg", "spkgtk.cfg", "spk.cfg")),
    "libcom32.c32", "libutil.c32",
    *(f"debian-installer/amd64/{name}" for name in (
        "revocations_sku.efi", "revocations_sbat.efi", "shim_certificate_0.efi")),
)

INSTALLER = (
    Milestone("installer", FIRST_SCREEN, FIRST_SCREEN_TIMEOUT,
              description="the installer's first screen (language question)"),
)

# PXELINUX's own failures (ldlinux.c32 or pxelinux.cfg missing) end the menu's wait.
_PXELINUX_FAILURES = ms.PXELINUX[1].failures
# The firmware's failures only: d-i's GRUB says "error: no suitable video mode found."
# on a machine without a display and goes on, so GRUB's "error:" is no failure here.
_OVMF_FAILURES = ms.GRUB[0].failures
_GRUB_PROMPT = FailurePattern(r"grub (?:rescue)?> ", "GRUB stopped at its prompt: it found "
                              "no grub.cfg under its prefix (/debian-installer/amd64/grub)")

BIOS_MENU = (
    Milestone("menu", r"Press ENTER to boot or TAB to edit a menu entry", 60,
              answer=parse_keys("<Tab>"), failures=_PXELINUX_FAILURES,
              description="vesamenu's menu, drawn in text mode"),
    # The end of the Install entry's command line ("... --- quiet "), once Tab opened it.
    Milestone("menu_edit", r"quiet ", 30, answer=parse_keys(f"{CONSOLE_ARGUMENT}<Enter>"),
              description="the Install entry's command line, open for editing"),
    Milestone("video_prompt", r"<SPACE> to continue", FIRST_SCREEN_TIMEOUT,
              answer=parse_keys("<Space>"),
              description="the kernel's question about vga=788 (no display)"),
)

UEFI_MENU = (
    # shim's line before it fetches GRUB over TFTP from its own directory. Before it,
    # shim asks for revocations_sku.efi, revocations_sbat.efi and shim_certificate_0.efi
    # there, which the tree does not have: optional files, not an error.
    Milestone("shim", r"Fetching Netboot Image \S+", 30, failures=_OVMF_FAILURES,
              description="shim (bootnetx64.efi) started"),
    Milestone("bootloader", r"GNU GRUB +version \S+", 60, failures=_OVMF_FAILURES,
              description="shim started GRUB (grubx64.efi)"),
    Milestone("menu", r"`e' to edit the commands", 30, answer="e",
              failures=(_GRUB_PROMPT, *_OVMF_FAILURES), description="GRUB's menu"),
    Milestone("menu_edit", r"Ctrl-x or F10 to boot", 30,
              answer=parse_keys(f"<Ctrl-N><Ctrl-N><Ctrl-N><Ctrl-E>{CONSOLE_ARGUMENT}<Ctrl-X>"),
              description="GRUB's editor on the Install entry"),
)

BIOS_MILESTONES = ms.SEABIOS + ms.IPXE_ROM + ms.PXELINUX[:1] + BIOS_MENU + INSTALLER
UEFI_MILESTONES = ms.OVMF_PXE4 + UEFI_MENU + INSTALLER


def guest(firmware: Firmware) -> GuestSpec:
    """The guest that boots the tree: BIOS with the iPXE ROM, or OVMF's own PXEv4."""
    if firmware.is_uefi():
        return GuestSpec(firmware=firmware, nic_romfile="", memory_mib=MEMORY_MIB)
    return GuestSpec(firmware=firmware, memory_mib=MEMORY_MIB)


def milestones(firmware: Firmware) -> tuple[Milestone, ...]:
    return UEFI_MILESTONES if firmware.is_uefi() else BIOS_MILESTONES
