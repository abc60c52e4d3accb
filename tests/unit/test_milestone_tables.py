"""Milestone tables of the iPXE, syslinux.efi and OVMF IPv4 scenarios on real console text.

The transcripts are cut from serial logs of real boots here (QEMU 7.2, OVMF
2022.11, iPXE 1.0.0+git-20190125.36a4c85, syslinux 6.04), with the kernel
part shortened to the lines the milestones look for.
"""

from __future__ import annotations

import re
import time
from pathlib import Path

import pexpect
import pytest

from pxelab.machine.console import ConsoleWatcher, Timeline
from pxelab.machine.ipxerom import RomKind
from pxelab.machine.payload.contract import INIT_START, userspace_line
from pxelab.scenarios import milestones as ms
from pxelab.scenarios.cases import SCENARIOS

pytestmark = pytest.mark.unit

NL = "\r\r\n"
IPXE_BANNER = ("\x1b[1m\x1b[37m\x1b[40miPXE 1.0.0+git-20190125.36a4c85-5.1\x1b[0m\x1b[37m"
               "\x1b[40m -- Open Source Network Boot Firmware -- \x1b[0m\x1b[36m\x1b[40m"
               "http://ipxe.org\x1b[0m\x1b[37m\x1b[40m")
IPXE_DHCP = NL.join((
    "Configuring (net0 52:54:00:12:34:56)... ok",
    "net0: 192.0.2.100/255.255.255.0",
    "Next server: 192.0.2.1",
    "Filename: http://192.0.2.1/boot.ipxe",
    "http://192.0.2.1/boot.ipxe... ok",
))
IPXE_SCRIPT = NL.join((
    "boot.ipxe : 425 bytes [script]",
    "pxelab: ipxe script running",
    "http://192.0.2.1/vmlinuz... ok",
    "http://192.0.2.1/initrd.img... ok",
))
LINUX = NL.join((
    "[    0.000000] Linux version 6.1.0-56-cloud-amd64 (debian-kernel@lists.debian.org)",
    INIT_START,
    "pxelab-init: dhcp eth0 192.0.2.100/24",
    "pxelab-init: nfs root mounted 192.0.2.1:/pxelab on /newroot type nfs4",
    userspace_line("192.0.2.1:/pxelab"),
)) + NL
OVMF_CLEAR = "\x1b[2J\x1b[01;01H\x1b[=3h\x1b[2J\x1b[01;01H" + NL
BDS = ('BdsDxe: {verb} Boot0001 "UEFI {option} (MAC:525400123456)" from PciRoot(0x0)/'
       "Pci(0x1,0x0)/MAC(525400123456,0x1)/IPv4(0.0.0.0,0x0,DHCP,0.0.0.0,0.0.0.0,0.0.0.0)")


def efi_chars(text: str, row: int) -> str:
    """``text`` as OVMF sends syslinux.efi's output: a cursor move around each character."""
    return "".join(f"\x1b[{row};{col:02d}H{char}\x1b[{row};{col + 1:02d}H"
                   for col, char in enumerate(text, start=1))


OVMF_PXE4 = NL.join((
    OVMF_CLEAR + ">>Start PXE over IPv4.",
    "  Station IP address is 192.0.2.100" + NL,
    "  Server IP address is 192.0.2.1",
    "  NBP filename is syslinux.efi",
    "  NBP filesize is 171456 Bytes",
    " Downloading NBP file..." + NL,
    "  NBP file downloaded successfully.",
    BDS.format(verb="loading", option="PXEv4"),
    BDS.format(verb="starting", option="PXEv4"),
))
SYSLINUX_EFI = NL.join(("Getting cached packet ", "My IP is 192.0.2.100", "")) + "".join((
    efi_chars("pxelab: syslinux.efi config loaded", 17),
    efi_chars("Loading vmlinuz... ok", 18),
    efi_chars("Loading initrd.img...ok", 19),
))
OVMF_HTTP4 = NL.join((
    OVMF_CLEAR + ">>Start HTTP Boot over IPv4....",
    "  Station IP address is 192.0.2.100" + NL,
    "  URI: http://192.0.2.1/snponly.efi",
    "  File Size: 173792 Bytes",
    "".join(f"\r  Downloading...{p}%" for p in range(1, 101))
    + BDS.format(verb="loading", option="HTTPv4") + "/Uri()",
    BDS.format(verb="starting", option="HTTPv4") + "/Uri()",
    "iPXE initialising devices...ok",
))

CONSOLES = {
    "legacy_http_ipv4": NL.join((
        "\x1bc\x1b[?7l\x1b[2J\x1b[0mSeaBIOS (version 1.16.2-debian-1.16.2-1)",
        "Booting from ROM...", "iPXE (PCI 00:02.0) starting execution...ok",
        "iPXE initialising devices...ok", IPXE_BANNER,
        "Press Ctrl-B for the iPXE command line...", IPXE_DHCP, IPXE_SCRIPT, LINUX)),
    "uefi_tftp_ipv4": NL.join((OVMF_PXE4, SYSLINUX_EFI + LINUX)),
    "uefi_http_ipv4": NL.join((OVMF_HTTP4, IPXE_BANNER, "Press Ctrl-B for the iPXE command "
                               "line...", IPXE_DHCP, IPXE_SCRIPT, LINUX)),
    "uefi_ipxe_ipv4": NL.join((OVMF_CLEAR + IPXE_BANNER, IPXE_DHCP, IPXE_SCRIPT, LINUX)),
}


def watch(tmp_path: Path, text: str, milestones: tuple[ms.Milestone, ...]) -> Timeline:
    log = tmp_path / "serial.log"
    log.write_text(text)
    console = pexpect.spawn("cat", [str(log)], encoding="utf-8", timeout=5)
    try:
        return ConsoleWatcher(console, time.monotonic(), ms.ANY_STAGE).run("t", milestones)
    finally:
        console.close(force=True)


@pytest.mark.parametrize("name", sorted(CONSOLES))
def test_a_real_boot_reaches_every_milestone_in_order(tmp_path: Path, name: str) -> None:
    scenario = SCENARIOS[name]
    timeline = watch(tmp_path, CONSOLES[name], scenario.milestones)
    assert timeline.ok, timeline.failure
    assert [h.name for h in timeline.hits] == [m.name for m in scenario.milestones]


@pytest.mark.parametrize(("name", "text", "stage", "cause"), [
    ("uefi_tftp_ipv4", OVMF_CLEAR + ">>Start PXE over IPv6.." + NL, "firmware",
     "another boot option before PXE over IPv4"),
    ("uefi_tftp_ipv4", OVMF_CLEAR + ">>Start PXE over IPv4." + NL
     + "  PXE-E16: No valid offer received." + NL, "fw_dhcp", "no usable DHCPv4 offer"),
    ("uefi_tftp_ipv4", OVMF_PXE4 + NL + "Getting cached packet " + NL + "My IP is 192.0.2.100"
     + NL + efi_chars("Failed to load ldlinux.e64", 17), "config", "ldlinux.e64"),
    ("uefi_http_ipv4", OVMF_CLEAR + ">>Start HTTP Boot over IPv4...." + NL
     + "  Error: Server response timeout." + NL, "fw_dhcp", "HTTPClient"),
    ("uefi_http_ipv4", OVMF_CLEAR + ">>Start HTTP Boot over IPv4...." + NL
     + "  Station IP address is 192.0.2.100" + NL + "  Client Error: 404 Not Found" + NL,
     "nbp_url", "refused"),
    ("uefi_http_ipv4", OVMF_CLEAR + ">>Start HTTP Boot over IPv4...." + NL
     + "  Station IP address is 192.0.2.100" + NL + "  URI: http://192.0.2.1/snponly.efi"
     + NL + BDS.replace("{verb}", "failed to load").format(option="HTTPv4") + ": Not Found",
     "nbp", "could not load the boot option"),
    ("uefi_ipxe_ipv4", OVMF_CLEAR + ">>Start PXE over IPv4." + NL, "rom",
     "not the iPXE ROM"),
    # EDK2 >= stable202405 without an RNG device: no network boot option at all.
    ("uefi_http_ipv4", OVMF_CLEAR + "UEFI Interactive Shell v2.2" + NL + "EDK II" + NL,
     "firmware", "started the UEFI shell"),
    ("uefi_tftp_ipv4", OVMF_CLEAR + "Shell> ", "firmware", "started the UEFI shell"),
    ("uefi_tftp_ipv4", OVMF_CLEAR + "BdsDxe: No bootable option or device was found." + NL,
     "firmware", "found no boot option"),
    ("uefi_http_ipv6", OVMF_CLEAR + "BdsDxe: No bootable option or device was found." + NL,
     "fw_http4_skip", "RNG device"),
    ("uefi_ipxe_ipv4", OVMF_CLEAR + "UEFI Interactive Shell v2.2" + NL, "rom", "RNG device"),
    ("uefi_ipxe_ipv4", OVMF_CLEAR + IPXE_BANNER + NL + IPXE_DHCP + NL
     + "boot.ipxe : 425 bytes [script]" + NL + "pxelab: ipxe script running" + NL
     + "http://192.0.2.1/vmlinuz... No such file or directory (http://ipxe.org/2d12608e)"
     + NL, "kernel_fetch", "iPXE reported an error"),
    # A script without #!ipxe is taken for a PXE NBP and hangs: end at its type line.
    ("legacy_http_ipv4", "SeaBIOS (version 1.16.2-debian-1.16.2-1)" + NL
     + "iPXE initialising devices...ok" + NL + IPXE_BANNER + NL
     + "Press Ctrl-B for the iPXE command line..." + NL + IPXE_DHCP + NL
     + "boot.ipxe : 428 bytes [PXE-NBP]" + NL, "script", "first line must be #!ipxe"),
])
def test_failures_end_the_wait_at_once(tmp_path: Path, name: str, text: str, stage: str,
                                       cause: str) -> None:
    started = time.monotonic()
    timeline = watch(tmp_path, text, SCENARIOS[name].milestones)
    assert timeline.failed_stage == stage
    assert cause in (timeline.failure or "")
    assert time.monotonic() - started < 5, "a failure pattern, not a timeout, ended the wait"


# uefi_ipxe_ipv4 on a ROM whose EFI driver is SNP only (Debian 13's ipxe-qemu): OVMF's
# PXEv4 over the ROM's SNP gets snponly.efi, which runs iPXE as the ROM once did.
SNP_ONLY_ROM_CONSOLE = NL.join((
    OVMF_PXE4.replace("syslinux.efi", "snponly.efi"), "iPXE initialising devices...ok",
    IPXE_BANNER, "Press Ctrl-B for the iPXE command line...", IPXE_DHCP, IPXE_SCRIPT, LINUX))


def test_an_snp_only_rom_boot_reaches_every_milestone_in_order(tmp_path: Path) -> None:
    scenario = SCENARIOS["uefi_ipxe_ipv4"].on_rom(RomKind.SNP_ONLY)
    timeline = watch(tmp_path, SNP_ONLY_ROM_CONSOLE, scenario.milestones)
    assert timeline.ok, timeline.failure
    assert [h.name for h in timeline.hits] == [m.name for m in scenario.milestones]
    assert timeline.seconds("nbp") is not None and timeline.seconds("ipxe_dhcp") is not None


# The same lines as each Debian set's iPXE prints them (serial logs of the set matrix).
@pytest.mark.parametrize(("init", "fetch"), [
    ("iPXE initialising devices...ok", "http://192.0.2.1/vmlinuz... ok"),  # bookworm
    ("iPXE initialising devices...", "http://192.0.2.1/vmlinuz... ok"),  # trixie
    ("iPXE initialising devices...",
     "http://192.0.2.1/vmlinuz... 96%\b\b\b\b    \b\b\b\b ok"),  # sid, iPXE 2.0.0
])
def test_ipxe_lines_of_every_debian_build_match(init: str, fetch: str) -> None:
    rom, fetch_milestone = ms.IPXE_ROM_DHCP[0], ms.IPXE_SCRIPT[2]
    assert re.search(rom.pattern, init + NL)
    assert re.search(fetch_milestone.pattern, fetch + NL)


LEGACY_TO_PXELINUX = NL.join((
    "SeaBIOS (version 1.16.2-debian-1.16.2-1)",
    "iPXE (http://ipxe.org) 00:03.0 C000 PCI2.10 PnP PMM+1EFD0E80+1EF30E80 C000",
    "Booting from ROM...",
    "iPXE initialising devices...ok",
    IPXE_BANNER,
    "Press Ctrl-B for the iPXE command line...",
    "Configuring (net0 52:54:00:12:34:56)... ok",
    "pxelinux.0 : 42430 bytes [PXE-NBP]",
    "PXELINUX 6.04 PXE 20200816 Copyright (C) 1994-2015 H. Peter Anvin et al",
)) + NL


@pytest.mark.parametrize(("tail", "cause"), [
    ("Unable to locate configuration file" + NL + NL
     + "Boot failed: press a key to retry, or wait for reset..." + NL,
     "found none of the pxelinux.cfg/ files"),
    ("Boot failed: press a key to retry, or wait for reset..." + NL, "SYSLINUX gave up"),
])
def test_pxelinux_giving_up_ends_the_config_stage(tmp_path: Path, tail: str, cause: str) -> None:
    started = time.monotonic()
    timeline = watch(tmp_path, LEGACY_TO_PXELINUX + tail, SCENARIOS["legacy_pxe_ipv4"].milestones)
    assert timeline.failed_stage == "config"
    assert cause in (timeline.failure or "")
    assert time.monotonic() - started < 5, "the line, not the stage's 60 s timeout"


def test_the_verdict_quotes_the_whole_line_that_failed(tmp_path: Path) -> None:
    # The guest's line arrives in two writes: the pattern matches the first part.
    script = tmp_path / "guest.sh"
    first = (LEGACY_TO_PXELINUX + "pxelab: pxelinux config loaded" + NL).replace(
        "\x1b", "\\033") + "Could not find kernel image"
    script.write_text(f"printf '%b' '{first}'; sleep 0.2; printf ': vmlinuz\\r\\n'\n")
    # No echo: the watcher answers iPXE's prompt with a space.
    console = pexpect.spawn("sh", [str(script)], encoding="utf-8", timeout=5, echo=False)
    try:
        timeline = ConsoleWatcher(console, time.monotonic(), ms.ANY_STAGE).run(
            "t", SCENARIOS["legacy_pxe_ipv4"].milestones)
    finally:
        console.close(force=True)
    assert timeline.failed_stage == "kernel_fetch"
    assert "'Could not find kernel image: vmlinuz'" in (timeline.failure or "")


def test_an_ipxe_error_the_80_column_screen_wrapped_is_quoted_whole(tmp_path: Path) -> None:
    # SeaBIOS's serial console wraps at 80 columns, here inside the ipxe.org link.
    console = LEGACY_TO_PXELINUX.split("pxelinux.0 : ")[0] + NL.join((
        "Filename: pxelinx.0",
        "tftp://192.0.2.1/pxelinx.0... No such file or directory (http://ipxe.org/2d12603",
        "b)", "No more network devices")) + NL
    timeline = watch(tmp_path, console, SCENARIOS["legacy_pxe_ipv4"].milestones)
    assert timeline.failed_stage == "nbp"
    assert timeline.failure == (
        "iPXE reported an error (the ipxe.org link explains its code) (console: "
        "'tftp://192.0.2.1/pxelinx.0... No such file or directory (http://ipxe.org/2d12603b)')")
