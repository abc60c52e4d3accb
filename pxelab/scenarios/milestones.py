"""Declarative milestone tables, one per firmware, network boot program and OS stage.

A scenario's milestone list is the concatenation of the tables of the parts it
boots through, so the patterns for (say) PXELINUX exist once, whatever firmware
loads it. Patterns are regular expressions matched on the serial console;
leading spaces and ANSI noise from firmware are tolerated.
"""

from __future__ import annotations

import re

from pxelab.machine.console import FailurePattern as Fail
from pxelab.machine.console import Milestone
from pxelab.machine.payload import contract
from pxelab.machine.terminal import WRAP, wrappable


def whole_line(pattern: str | re.Pattern[str]) -> str:
    """``pattern`` up to the end of its console line.

    The console arrives in chunks; a pattern ending in ``\\S+`` or ``.*`` would
    otherwise match the part of a line that has arrived so far.
    """
    text = pattern.pattern if isinstance(pattern, re.Pattern) else pattern
    return text + r"[^\r\n]*[\r\n]"


# Console text with cursor moves in it. OVMF's terminal driver sends ESC[row;colH
# to the serial port when a program (syslinux.efi) sets the cursor before every
# character, and rows change without a line end. SeaBIOS's serial console does it
# too, now and then, when it catches up with the cursor of text PXELINUX or the
# iPXE ROM wrote through int 10h ("pxelab\x1b[25;06H\x1b[25;07H: pxelinux config
# loaded" was seen). So ESC[row;colH may sit between any two characters.
_MOVE = r"\x1b\[\d+;\d+H"
_CURSOR = rf"(?:{_MOVE})*"


def efi_text(text: str) -> str:
    """A regex for the literal ``text`` with cursor moves allowed between its characters."""
    return _CURSOR.join(re.escape(char) for char in text)


def _efi_loading(outcome: str) -> str:
    # "Loading vmlinuz... ok", "Loading initrd.img...ok" (ldlinux.e64, com32/elflink)
    return (efi_text("Loading ") + r"[^\r\n]*?" + efi_text("...") + r"(?:\x1b\[\d+;\d+H| )*"
            + efi_text(outcome))


# Every SeaBIOS prints its version in the banner: "1.16.2-debian-1.16.2-1" (bookworm),
# "1.16.3-debian-1.16.3-2" (trixie), "1.17.0-debian-1.17.0-1" (sid).
SEABIOS = (
    Milestone("firmware", r"SeaBIOS \(version [^)\r\n]*\)", 30,
              description="SeaBIOS banner on the serial console"),
)

# iPXE, whether BIOS ROM, EFI ROM driver or EFI NBP: the same core prints the same lines.
_IPXE_BOOT_FAILURES = (
    Fail(r"Nothing to boot", "the DHCP answer carried no boot file name"),
    Fail(r"No more network devices", "iPXE could not boot from any NIC"),
    Fail(r"Connection timed out", "the NBP download timed out"),
    Fail(r"Could not boot image", "iPXE could not start the NBP"),
)
# Every iPXE error message ends in a link naming its error code.
# A long line wraps on SeaBIOS's 80-column console, also inside the link.
_IPXE_ERROR = Fail(r"[^\r\n]*" + wrappable("(http") + WRAP + "s?" + WRAP
                   + wrappable("://ipxe.org/") + WRAP + f"(?:[0-9a-f]{WRAP}){{8}}" + r"\)",
                   "iPXE reported an error (the ipxe.org link explains its code)")
# The banner; ANSI colour codes sit between the version and " -- ".
_IPXE_BANNER = r"iPXE \S+ -- Open Source Network Boot Firmware"


def _ipxe_dhcp(name: str) -> Milestone:
    return Milestone(name, r"Configuring \(net\d [0-9a-f:]+\)(?:[. ]|" + _MOVE + r")*ok", 60,
                     description="iPXE got a DHCP lease",
                     failures=(Fail(r"No configuration methods succeeded",
                                    "iPXE received no usable DHCP offer"),))


# Where iPXE builds differ (Debian's, checked on the bookworm, trixie and sid sets):
# - "iPXE initialising devices...ok" up to bookworm's 2019 snapshot; from trixie's
#   1.21.1+git20250501 on the line ends after "..." (iPXE commit 165995b7e, 2024).
# - sid's 2.0.0 shows a download's progress ("96%" then backspaces) before " ok";
#   the fetch patterns take anything between "..." and "ok" on the line.
IPXE_ROM_DHCP = (
    Milestone("rom", r"iPXE initialising devices\.\.\.(?:ok)?", 30,
              description="the iPXE option ROM taking over network boot",
              failures=(Fail(r"No bootable device", "the BIOS found no network boot ROM "
                             "(check the NIC model and its option ROM)"),)),
    # Debian's ROM waits 2 s here (BANNER_TIMEOUT); any key but Ctrl-B ends the wait
    # and boots on (ipxe src/hci/shell_banner.c, prompt() in src/usr/prompt.c).
    Milestone("rom_prompt", r"Press Ctrl-B for the iPXE command line", 30,
              description="iPXE's command-line prompt, skipped with a key", answer=" "),
    _ipxe_dhcp("rom_dhcp"),
)

IPXE_ROM = (
    *IPXE_ROM_DHCP,
    # The error line names the file and why ("pxelinx.0... No such file or directory
    # (https://ipxe.org/2d12608e)"); "No more network devices" only follows it.
    Milestone("nbp", r"\S+ : \d+ bytes \[PXE-NBP\]", 60,
              description="iPXE downloaded the network boot program",
              failures=(_IPXE_ERROR, *_IPXE_BOOT_FAILURES)),
)

# ldlinux's last words when it cannot go on (core/ldlinux.asm kaboom): it waits for a
# key or a reset, so nothing else will come.
_SYSLINUX_GAVE_UP = Fail(efi_text("Boot failed: press a key to retry"),
                         "SYSLINUX gave up and waits for a key or a reset")

# "PXELINUX 6.04 PXE 20200816" (bookworm), "... 20250413" (trixie), "... 20250811"
# (sid): the same 6.04, rebuilt; only the build date differs.
PXELINUX = (
    Milestone("bootloader", whole_line(r"PXELINUX \d+\.\d+ "), 30,
              description="PXELINUX started"),
    Milestone("config", efi_text("pxelab: pxelinux config loaded"), 60, landmark=True,
              description="ldlinux.c32 loaded and read pxelinux.cfg",
              failures=(
                  Fail(r"Failed to load ldlinux\.c32",
                       "PXELINUX could not load ldlinux.c32 from beside pxelinux.0 "
                       "(missing, or from another syslinux build)"),
                  Fail(efi_text("Unable to locate configuration file"),
                       "PXELINUX found none of the pxelinux.cfg/ files it asks for"),
                  Fail(r"\nboot: ", "PXELINUX found no usable pxelinux.cfg file"),
                  _SYSLINUX_GAVE_UP,
              )),
    Milestone("kernel_fetch", _efi_loading("ok"), 120,
              description="PXELINUX downloaded the kernel",
              failures=(Fail(_efi_loading("failed"), "PXELINUX could not fetch a file"),
                        Fail(r"Could not find kernel image", "the kernel named in the "
                             "config is not on the TFTP server"))),
    Milestone("initrd_fetch", _efi_loading("ok"), 120,
              description="PXELINUX downloaded the initrd",
              failures=(Fail(_efi_loading("failed"), "PXELINUX could not fetch a file"),)),
)

# syslinux.efi (Debian syslinux-efi) prints no banner; its first line is the PXE
# address it took over from the firmware. Then ldlinux.e64 writes char by char.
SYSLINUX_EFI = (
    Milestone("bootloader", whole_line(r"My IP is "), 30,
              description="syslinux.efi started and took the firmware's DHCP answer"),
    Milestone("config", efi_text("pxelab: syslinux.efi config loaded"), 60, landmark=True,
              description="ldlinux.e64 loaded and read pxelinux.cfg",
              failures=(
                  Fail(efi_text("Failed to load ldlinux.e64"),
                       "syslinux.efi could not load ldlinux.e64 from beside itself "
                       "(missing, or from another syslinux build)"),
                  Fail(efi_text("No DEFAULT or UI configuration directive found"),
                       "syslinux.efi found no usable pxelinux.cfg file"),
                  Fail(efi_text("Unable to locate configuration file"),
                       "syslinux.efi found none of the pxelinux.cfg/ files it asks for"),
                  _SYSLINUX_GAVE_UP,
              )),
    Milestone("kernel_fetch", _efi_loading("ok"), 120,
              description="syslinux.efi downloaded the kernel",
              failures=(Fail(_efi_loading("failed"), "syslinux.efi could not fetch a file"),
                        Fail(efi_text("Could not find kernel image"), "the kernel named in "
                             "the config is not on the TFTP server"))),
    Milestone("initrd_fetch", _efi_loading("ok"), 120,
              description="syslinux.efi downloaded the initrd",
              failures=(Fail(_efi_loading("failed"), "syslinux.efi could not fetch a file"),)),
)

# An iPXE client running pxelab's boot.ipxe (pxelab/data/templates/ipxe/boot.ipxe): it
# fetches kernel and initrd itself, over whatever URL the script names.
# iPXE names the image type it recognised; under BIOS a script without its "#!ipxe"
# first line is taken for a PXE NBP and run as machine code, which hangs in silence.
# ("[EFI]" here is an NBP handed out again: ipxe.chainload_loop's case.)
_NOT_A_SCRIPT = Fail(r"\S+ : \d+ bytes \[PXE-NBP\]",
                     "iPXE did not recognise the boot script as a script (its first line "
                     "must be #!ipxe)")
IPXE_SCRIPT = (
    Milestone("script", r"\S+ : \d+ bytes \[script\]", 60,
              description="iPXE downloaded the boot script",
              failures=(*_IPXE_BOOT_FAILURES, _IPXE_ERROR, _NOT_A_SCRIPT)),
    Milestone("script_run", r"pxelab: ipxe script running", 30, landmark=True,
              description="iPXE ran pxelab's boot script", failures=(_IPXE_ERROR,)),
    Milestone("kernel_fetch", r"\w+://\S+\.\.\.[^\r\n]*?\bok", 120,
              description="iPXE downloaded the kernel", failures=(_IPXE_ERROR,)),
    Milestone("initrd_fetch", r"\w+://\S+\.\.\.[^\r\n]*?\bok", 120,
              description="iPXE downloaded the initrd", failures=(_IPXE_ERROR,)),
)

# --- OVMF (EDK2) ------------------------------------------------------------
# OVMF prints nothing before a boot option starts. A boot option that fails is
# followed by the next one (~60 s each), then the shell: end the wait at once.
# EDK2 from stable202405 on has no network boot option at all without an RNG
# device: it starts the shell (Debian's 2025.02) or says it found nothing (2026.08)
# within seconds, and the wait must end there, not at the stage's timeout.
_NO_NETWORK_OPTION = " (none at all without an RNG device: EDK2 >= stable202405)"
_OVMF_FAILURES = (
    Fail(r'BdsDxe: failed to load Boot\d+ "[^"\r\n]*"', "OVMF could not load the boot option "
         "(it goes on with the next one)"),
    Fail(r"UEFI Interactive Shell|Shell> ", "OVMF started the UEFI shell: no network boot "
         "option worked" + _NO_NETWORK_OPTION),
    Fail(r"No bootable option or device was found", "OVMF found no boot option to start: "
         "no network boot option" + _NO_NETWORK_OPTION),
)
_OVMF_STATION = whole_line(r"  Station IP address is ")


def _ovmf_start(option: str, others: str) -> Milestone:
    return Milestone(
        "firmware", re.escape(f">>Start {option}"), 60,
        description=f"OVMF started its {option} boot option",
        failures=(Fail(rf">>Start (?:{others})", f"OVMF started another boot option before "
                       f"{option} (check the opt/org.tianocore fw_cfg switches)"),
                  *_OVMF_FAILURES))


def _ovmf_pxe(version: str, others: str, lease: str, no_offer: str) -> tuple[Milestone, ...]:
    """OVMF's own PXE client over IPv``version``: start, lease, NBP over TFTP, NBP started."""
    return (
        _ovmf_start(f"PXE over IPv{version}", others),
        Milestone("fw_dhcp", _OVMF_STATION, 60, description=f"OVMF's {lease}",
                  failures=(Fail(r"PXE-E16[^\r\n]*", no_offer), *_OVMF_FAILURES)),
        Milestone("nbp", r"NBP file downloaded successfully", 60,
                  description="OVMF downloaded the NBP over TFTP"
                  + ("/IPv6" if version == "6" else ""),
                  failures=(Fail(r"PXE-E\d\d[^\r\n]*",
                                 "OVMF could not fetch the NBP over TFTP"), *_OVMF_FAILURES)),
        Milestone("nbp_start", rf'BdsDxe: starting Boot\d+ "UEFI PXEv{version}', 30,
                  description="OVMF started the NBP", failures=_OVMF_FAILURES),
    )


OVMF_PXE4 = _ovmf_pxe("4", r"PXE over IPv6|HTTP Boot over IPv[46]",
                      "PXE client got a DHCP lease", "no usable DHCPv4 offer for PXEv4")

_HTTP_FETCH_FAILURES = (
    Fail(r"Client Error: [^\r\n]*", "the HTTP server refused the NBP URL"),
    Fail(r"Error: Could not retrieve NBP file size[^\r\n]*",
         "OVMF could not get the NBP's size (HEAD) from the HTTP server"),
    *_OVMF_FAILURES,
)

OVMF_HTTP4 = (
    _ovmf_start("HTTP Boot over IPv4", r"PXE over IPv[46]|HTTP Boot over IPv6"),
    Milestone("fw_dhcp", _OVMF_STATION, 60, description="OVMF's HTTP client got a DHCP lease",
              failures=(Fail(r"Error: Server response timeout",
                             "no DHCPv4 offer the HTTP boot client accepts (it needs option 60 "
                             "HTTPClient and a URL as boot file)"), *_OVMF_FAILURES)),
    Milestone("nbp_url", whole_line(r"  URI: "), 30, description="the URL OVMF boots from",
              failures=_HTTP_FETCH_FAILURES),
    Milestone("nbp", r"Downloading\.\.\.100%", 60,
              description="OVMF downloaded the NBP over HTTP", failures=_HTTP_FETCH_FAILURES),
    Milestone("nbp_start", r'BdsDxe: starting Boot\d+ "UEFI HTTPv4', 30,
              description="OVMF started the NBP", failures=_OVMF_FAILURES),
)

OVMF_PXE6 = _ovmf_pxe("6", r"PXE over IPv4|HTTP Boot over IPv[46]",
                      "PXEv6 client got a DHCPv6 lease",
                      "no usable DHCPv6 Advertise/Reply for PXEv6 "
                      "(it needs an IA_NA address and option 59 tftp://[...]/file)")

# HTTPv6 comes after HTTPv4 in OVMF's boot order, and no fw_cfg switch removes
# HTTPv4 without breaking HTTPv6 (fixtures/packets/README.md). pxelab answers
# HTTPv4 with a URL that 404s, so it fails at once and HTTPv6 starts right after.
OVMF_HTTP6 = (
    Milestone("fw_http4_skip", r'BdsDxe: failed to load Boot\d+ "UEFI HTTPv4', 60,
              description="HTTPv4 went first and failed at once (its URL answers 404)",
              failures=(
                  Fail(r">>Start PXE over IPv[46]", "OVMF started a PXE boot option (check the "
                       "opt/org.tianocore IPv4PXESupport/IPv6PXESupport fw_cfg switches)"),
                  Fail(r"Error: Server response timeout", "HTTPv4 got no DHCPv4 offer it "
                       "accepts, so it waits its ~60 s out instead of failing at once"),
                  Fail(r'BdsDxe: starting Boot\d+ "UEFI HTTPv4', "HTTPv4 booted: its URL "
                       "should have failed"),
                  *_OVMF_FAILURES[1:])),
    Milestone("firmware", re.escape(">>Start HTTP Boot over IPv6"), 30,
              description="OVMF started its HTTPv6 boot option", failures=_OVMF_FAILURES),
    Milestone("fw_dhcp", whole_line(r"  Station IPv6 address is "), 60,
              description="OVMF's HTTPv6 client got a DHCPv6 lease",
              failures=(Fail(r"Error: Server response timeout", "no DHCPv6 Advertise the HTTP "
                             "boot client accepts (it needs option 16 HTTPClient and option 59 "
                             "http://[...]/file)"), *_OVMF_FAILURES)),
    Milestone("nbp_url", whole_line(r"  URI: "), 30, description="the URL OVMF boots from",
              failures=_HTTP_FETCH_FAILURES),
    Milestone("nbp", r"Downloading\.\.\.100%", 60,
              description="OVMF downloaded the NBP over HTTP/IPv6",
              failures=_HTTP_FETCH_FAILURES),
    Milestone("nbp_start", r'BdsDxe: starting Boot\d+ "UEFI HTTPv6', 30,
              description="OVMF started the NBP", failures=_OVMF_FAILURES),
)

# pxelab's GRUB network image (pxelab/machine/nbp.py) running its grub.cfg
# (pxelab/data/templates/grub/grub.cfg). GRUB prints through the EFI console, which OVMF
# mirrors to the serial port.
_GRUB_FAILURES = (
    Fail(r"error: [^\r\n]*", "GRUB reported an error"),
    Fail(r"grub> ", "GRUB stopped at its prompt: no grub.cfg ran to the end "
         "(is it at <data root>/grub/grub.cfg?)"),
    Fail(r"grub rescue> ", "GRUB fell back to its rescue prompt (normal mode missing)"),
)

GRUB = (
    # The image's own early config prints this (pxelab/machine/nbp.py): GRUB 2.06 says "Welcome
    # to GRUB!" before it, Debian's 2.12 no longer does.
    Milestone("bootloader", r"pxelab-grub: image started", 30, description="GRUB started",
              failures=_OVMF_FAILURES),
    Milestone("config", r"pxelab: grub config loaded", 60, landmark=True,
              description="GRUB fetched and ran grub.cfg from the boot server",
              failures=_GRUB_FAILURES),
    Milestone("kernel_fetch", r"pxelab: grub kernel loaded", 120, landmark=True,
              description="GRUB downloaded the kernel", failures=_GRUB_FAILURES),
    Milestone("initrd_fetch", r"pxelab: grub initrd loaded", 120, landmark=True,
              description="GRUB downloaded the initrd", failures=_GRUB_FAILURES),
)

# Secure Boot: shim (signed by Microsoft) verifies and starts Debian's signed GRUB,
# which asks shim to verify the kernel. Neither prints anything on success, so the
# first milestone after the firmware is grub.cfg's own line. What they print when
# they refuse (rhboot/shim shim.c, netboot.c, httpboot.c, sbat.c; GRUB's shim_lock
# verifier) ends the stage at once instead of its timeout.
SHIM_FAILURES = (
    Fail(r"Verification failed: \(0x1A\) Security Violation",
         "shim refused its second stage: it is not signed by a key shim trusts (shim "
         "trusts its vendor's CA and enrolled MOKs; use the distribution's signed GRUB), "
         "or the machine's SbatLevel revokes its SBAT generation"),
    Fail(r"SBAT self-check failed|Verifying shim SBAT data failed[^\r\n]*",
         "shim's own SBAT generation is revoked by the machine's SbatLevel"),
    Fail(r"Unable to fetch (?:TFTP|HTTP) image[^\r\n]*",
         "shim could not fetch its second stage (grubx64.efi) from the boot server"),
    Fail(r"Failed to load image[^\r\n]*|start_image\(\) returned [^\r\n]*",
         "shim could not load or start its second stage"),
    Fail(r"Something has gone seriously wrong: [^\r\n]*", "shim could not start"),
)
_GRUB_SECURE_BOOT_REFUSALS = (
    Fail(r"error: bad shim signature[^\r\n]*",
         "GRUB refused the kernel: shim does not trust its signature (Secure Boot needs "
         "a kernel signed by the distribution, e.g. Debian's linux-image-*-amd64)"),
    Fail(r"error: [^\r\n]*prohibited by secure boot policy[^\r\n]*",
         "GRUB refused a command or file that Secure Boot's lockdown forbids"),
)
# Not every GRUB "error:" is fatal: "no suitable video mode found" on a serial-only
# machine, or a module list GRUB 2.12's normal mode looks for under $prefix/x86_64-efi/
# (command.lst, fs.lst: a signed image has its modules built in). Only those after which
# GRUB cannot boot.
_GRUB_FATAL = (
    Fail(r"error: (?:file `(?![^'\r\n]*/x86_64-efi/)[^\r\n]* not found"
         r"|you need to load the kernel first)[^\r\n]*",
         "GRUB could not load a file its menu names"),
    Fail(r"error: disk `(?:http|tftp),[^\r\n]*' not found[^\r\n]*",
         "GRUB cannot reach the boot server over that protocol (no such network module "
         "in this GRUB image)"),
    Fail(r"grub> ", "GRUB stopped at its prompt: no grub.cfg ran to the end "
         "(is it at <data root>/grub/grub.cfg?)"),
    Fail(r"grub rescue> ", "GRUB fell back to its rescue prompt (normal mode missing)"),
)
_SIGNED_GRUB_FAILURES = (*_GRUB_SECURE_BOOT_REFUSALS, *_GRUB_FATAL)
SHIM_GRUB = (
    Milestone("bootloader", r"pxelab: grub config loaded", 60, landmark=True,
              description="shim verified and started the signed GRUB, which ran grub.cfg",
              failures=(*SHIM_FAILURES, *_SIGNED_GRUB_FAILURES, *_OVMF_FAILURES)),
    Milestone("kernel_fetch", r"pxelab: grub kernel loaded", 120, landmark=True,
              description="GRUB downloaded the kernel and shim verified it",
              failures=_SIGNED_GRUB_FAILURES),
    Milestone("initrd_fetch", r"pxelab: grub initrd loaded", 120, landmark=True,
              description="GRUB downloaded the initrd", failures=_SIGNED_GRUB_FAILURES),
)
# arch/x86/kernel/setup.c prints the firmware's Secure Boot state right after the banner.
SECURE_BOOT_ON = Milestone(
    "secure_boot", r"Secure boot enabled", 30, landmark=True,
    description="the kernel runs with Secure Boot enforced",
    failures=(Fail(r"Secure boot (?:disabled|could not be determined)",
                   "the kernel runs without Secure Boot: the firmware does not enforce it "
                   "(OVMF without enrolled keys or without SMM)"),))


# The same line saying Secure Boot is off: the benchmark's machines that have the Secure
# Boot chain without enforcement (bench/secureboot_bench.py).
SECURE_BOOT_OFF = Milestone(
    "secure_boot_off", r"Secure boot disabled", 30, landmark=True,
    description="the kernel runs without Secure Boot enforced",
    failures=(Fail(r"Secure boot enabled",
                   "the kernel runs with Secure Boot enforced where this boot expects it off "
                   "(OVMF's VARS have keys enrolled)"),))
SECURE_BOOT_STATES = (SECURE_BOOT_ON, SECURE_BOOT_OFF)


def with_secure_boot(linux: tuple[Milestone, ...],
                     state: Milestone = SECURE_BOOT_ON) -> tuple[Milestone, ...]:
    """``linux`` with ``state`` (:data:`SECURE_BOOT_STATES`) right after the kernel's banner."""
    at = [m.name for m in linux].index("kernel") + 1
    return (*linux[:at], state, *linux[at:])


def secure_boot_state(milestones: tuple[Milestone, ...]) -> Milestone | None:
    """The Secure Boot state ``milestones`` check, if any."""
    return next((m for m in milestones if m in SECURE_BOOT_STATES), None)


# iPXE as an EFI program: the EFI driver of QEMU's NIC ROM (OVMF boots its
# LoadFile, which runs iPXE on that NIC), or an NBP like snponly.efi.
IPXE_EFI_ROM = (
    Milestone("rom", _IPXE_BANNER, 60,
              description="OVMF booted through the iPXE ROM's EFI driver",
              failures=(Fail(r">>Start (?:PXE|HTTP Boot) over IPv[46]",
                             "OVMF booted with its own network stack, not the iPXE ROM "
                             "(the NIC needs QEMU's default romfile; if that ROM's EFI driver "
                             "is SNP only, pxelab.machine.ipxerom misjudged it: set "
                             "PXELAB_IPXE_ROM=snp-only)"), *_OVMF_FAILURES)),
    _ipxe_dhcp("rom_dhcp"),
)

IPXE_EFI_NBP = (
    Milestone("ipxe", _IPXE_BANNER, 30, description="the iPXE EFI NBP started"),
    # The same 2 s BANNER_TIMEOUT wait as the ROM's (IPXE_ROM_DHCP); a key ends it.
    Milestone("ipxe_prompt", r"Press Ctrl-B for the iPXE command line", 30,
              description="iPXE's command-line prompt, skipped with a key", answer=" "),
    _ipxe_dhcp("ipxe_dhcp"),
)

KERNEL_FAILURES = (
    # pxelab's /init found no network device, said so and exited; listed before the bare
    # panic so that the failure names why (the PANIC line starts earlier in the text).
    Fail(whole_line(contract.INIT_PANIC) + r"(?:.|\n)*?Kernel panic - not syncing[^\r\n]*",
         "the initramfs found no network device (is the NIC's driver in the initrd?) and "
         "gave up: the kernel panicked"),
    # The kernel goes on after it (with what it unpacked), and panics or hangs later.
    Fail(r"Initramfs unpacking failed", "the kernel could not unpack the initrd (cut short "
         "or corrupt: compare its size with the file's)"),
    Fail(r"Kernel panic - not syncing[^\r\n]*", "the kernel panicked"),
    Fail(r"VFS: Unable to mount root fs[^\r\n]*", "the kernel found no root filesystem"),
    Fail(whole_line(contract.INIT_FAILED), "the initramfs gave up"),
)


def _linux_nfsroot(address: Milestone) -> tuple[Milestone, ...]:
    """Kernel, initramfs, ``address`` (how /init got its address), NFS root, userspace."""
    return (
        Milestone("kernel", whole_line(r"Linux version "), 60, landmark=True,
                  description="the kernel started"),
        Milestone("initramfs", re.escape(contract.INIT_START), 60, landmark=True,
                  description="the initramfs /init ran",
                  failures=KERNEL_FAILURES),
        address,
        Milestone("nfs_root", whole_line(contract.INIT_NFS_MOUNTED), 60, landmark=True,
                  description="the root filesystem mounted over NFS", failures=KERNEL_FAILURES),
        Milestone("userspace", whole_line(contract.USERSPACE), 60, landmark=True,
                  description="userspace ran from the NFS root", failures=KERNEL_FAILURES),
    )


LINUX_NFSROOT = _linux_nfsroot(
    Milestone("initramfs_dhcp", whole_line(contract.INIT_DHCP), 60,
              description="the initramfs got an address by DHCP", failures=KERNEL_FAILURES))

# pxelab.nfsroot=[<ipv6>]:/path: /init takes a SLAAC address and mounts over IPv6.
LINUX_NFSROOT_IPV6 = _linux_nfsroot(
    Milestone("initramfs_ipv6", whole_line(contract.INIT_IPV6), 30,
              description="the initramfs got an IPv6 address by SLAAC",
              failures=KERNEL_FAILURES))

# Debian's initramfs-tools initrd (pxelab.machine.payload.initramfs_tools) with boot=nfs: its
# /init and scripts print "Begin: <what> ... done" (log_begin_msg), klibc's ipconfig
# "IP-Config: <dev> complete (dhcp from <server>):", and without a network device
# "ipconfig: no devices to configure" once per try before /init dies sourcing the
# missing /run/net-*.conf. The NFS root's /sbin/init is pxelab's (USERSPACE).
_ITOOLS_FAILURES = (
    Fail(r"ipconfig: no devices to configure(?:.|\n)*?Kernel panic - not syncing[^\r\n]*",
         "initramfs-tools found no network device to configure (is the NIC's driver in the "
         "initrd, and in the kernel package at all?) and its /init died: the kernel "
         "panicked"),
    # Before it asks the server, nfsmount checks nfsroot='s options against its own short
    # list (klibc usr/kinit/nfsmount/main.c): NFS version 2 or 3 only, whole numbers.
    # Its line comes just before the retry's and names the option: end the stage on it.
    Fail(r"nfsmount: bad (?:NFS version|option) '[^'\r\n]*'"
         rf"|\S+: invalid value for (?:{'|'.join(contract.NFSMOUNT_NUMBERS)})\b",
         "klibc nfsmount refused an option in nfsroot= before asking the server"),
    Fail(r"Begin: Retrying nfs mount", "klibc nfsmount could not mount the NFS root "
         "(NFSv3 over TCP: server, MOUNT service and export)"),
    *KERNEL_FAILURES,
)

LINUX_INITRAMFS_TOOLS_NFSROOT = (
    Milestone("kernel", whole_line(r"Linux version "), 60, landmark=True,
              description="the kernel started"),
    Milestone("initramfs", r"Begin: Mounting root file system", 60,
              description="initramfs-tools' /init ran and began mounting the root",
              failures=_ITOOLS_FAILURES),
    Milestone("initramfs_dhcp", whole_line(r"IP-Config: \S+ complete"), 60,
              description="klibc ipconfig got an address by DHCP", failures=_ITOOLS_FAILURES),
    Milestone("nfs_root", r"Begin: Running /scripts/nfs-bottom", 60,
              description="klibc nfsmount mounted the root over NFSv3",
              failures=_ITOOLS_FAILURES),
    Milestone("userspace", whole_line(contract.USERSPACE), 60, landmark=True,
              description="userspace ran from the NFS root", failures=_ITOOLS_FAILURES),
)

# What any of the boot programs pxelab knows prints when it cannot go on: PXELINUX and
# syslinux.efi, GRUB, iPXE. A lab file's boot runs the user's menus, whose own lines
# pxelab cannot know, so every stage from its NBP to the kernel watches for these.
BOOT_PROGRAM_FAILURES = (
    Fail(r"Failed to load ldlinux\.(?:c32|e64)",
         "SYSLINUX could not load its core module from beside the NBP (missing, or from "
         "another syslinux build)"),
    Fail(efi_text("Unable to locate configuration file"),
         "SYSLINUX found none of the pxelinux.cfg/ files it asks for"),
    Fail(r"Could not find kernel image[^\r\n]*",
         "the kernel named in the SYSLINUX menu is not on the server"),
    Fail(_efi_loading("failed"), "SYSLINUX could not fetch a file"),
    _SYSLINUX_GAVE_UP,
    *_GRUB_FATAL,
    # shim's and the signed GRUB's refusals (Secure Boot).
    *SHIM_FAILURES, *_GRUB_SECURE_BOOT_REFUSALS,
    # Not any iPXE error line: iPXE 1.21+ tries autoexec.ipxe first and goes on when it
    # is not there, and a script's "chain ... || goto" takes errors in its stride. These
    # are the lines after which iPXE does not go on.
    *_IPXE_BOOT_FAILURES,
)

# Failures recognised at any stage: firmware reset loops and QEMU-level trouble.
ANY_STAGE = (
    Fail(r"PXE-E\d\d[^\r\n]*", "the firmware's PXE client reported an error"),
)
