"""Declarative milestone tables, one per firmware, network boot program and OS stage.

A scenario's milestone list is the concatenation of the tables of the parts it
boots through, so the patterns for (say) PXELINUX exist once, whatever firmware
loads it. Patterns are regular expressions matched on the serial console;
leading spaces and ANSI noise from firmware are tolerated.
"""

from __future__ import annotations

import re

from pxelab.console import FailurePattern as Fail
from pxelab.console import Milestone
from pxelab.payload import contract


def whole_line(pattern: str | re.Pattern[str]) -> str:
    """``pattern`` up to the end of its console line.

    The console arrives in chunks; a pattern ending in ``\\S+`` or ``.*`` would
    otherwise match the part of a line that has arrived so far.
    """
    text = pattern.pattern if isinstance(pattern, re.Pattern) else pattern
    return text + r"[^\r\n]*[\r\n]"


SEABIOS = (
    Milestone("firmware", r"SeaBIOS \(version [^)\r\n]*\)", 30,
              description="SeaBIOS banner on the serial console"),
)

IPXE_ROM = (
    Milestone("rom", r"iPXE initialising devices", 30,
              description="the iPXE option ROM taking over network boot",
              failures=(Fail(r"No bootable device", "the BIOS found no network boot ROM "
                             "(check the NIC model and its option ROM)"),)),
    Milestone("rom_dhcp", r"Configuring \(net\d [0-9a-f:]+\)[. ]*ok", 60,
              description="iPXE got a DHCP lease",
              failures=(Fail(r"No configuration methods succeeded",
                             "iPXE received no usable DHCP offer"),)),
    Milestone("nbp", r"\S+ : \d+ bytes \[PXE-NBP\]", 60,
              description="iPXE downloaded the network boot program",
              failures=(
                  Fail(r"Nothing to boot", "the DHCP answer carried no boot file name"),
                  Fail(r"No more network devices", "iPXE could not boot from any NIC"),
                  Fail(r"Connection timed out", "the NBP download timed out"),
                  Fail(r"Could not boot image", "iPXE could not start the NBP"),
              )),
)

PXELINUX = (
    Milestone("bootloader", whole_line(r"PXELINUX \d+\.\d+ "), 30,
              description="PXELINUX started"),
    Milestone("config", r"pxelab: pxelinux config loaded", 60,
              description="ldlinux.c32 loaded and read pxelinux.cfg",
              failures=(
                  Fail(r"Failed to load ldlinux\.c32",
                       "PXELINUX could not load ldlinux.c32 from beside pxelinux.0 "
                       "(missing, or from another syslinux build)"),
                  Fail(r"\nboot: ", "PXELINUX found no usable pxelinux.cfg file"),
              )),
    Milestone("kernel_fetch", r"Loading \S+\.\.\.\s*ok", 120,
              description="PXELINUX downloaded the kernel",
              failures=(Fail(r"Loading \S+\.\.\.\s*failed", "PXELINUX could not fetch a file"),
                        Fail(r"Could not find kernel image", "the kernel named in the "
                             "config is not on the TFTP server"))),
    Milestone("initrd_fetch", r"Loading \S+\.\.\.\s*ok", 120,
              description="PXELINUX downloaded the initrd",
              failures=(Fail(r"Loading \S+\.\.\.\s*failed", "PXELINUX could not fetch a file"),)),
)

KERNEL_FAILURES = (
    Fail(r"Kernel panic - not syncing[^\r\n]*", "the kernel panicked"),
    Fail(r"VFS: Unable to mount root fs[^\r\n]*", "the kernel found no root filesystem"),
    Fail(whole_line(contract.INIT_FAILED), "the initramfs gave up"),
)

LINUX_NFSROOT = (
    Milestone("kernel", whole_line(r"Linux version "), 60, description="the kernel started"),
    Milestone("initramfs", re.escape(contract.INIT_START), 60,
              description="the initramfs /init ran",
              failures=KERNEL_FAILURES),
    Milestone("initramfs_dhcp", whole_line(contract.INIT_DHCP), 60,
              description="the initramfs got an address by DHCP", failures=KERNEL_FAILURES),
    Milestone("nfs_root", whole_line(contract.INIT_NFS_MOUNTED), 60,
              description="the root filesystem mounted over NFS", failures=KERNEL_FAILURES),
    Milestone("userspace", whole_line(contract.USERSPACE), 60,
              description="userspace ran from the NFS root", failures=KERNEL_FAILURES),
)

# Failures recognised at any stage: firmware reset loops and QEMU-level trouble.
ANY_STAGE = (
    Fail(r"PXE-E\d\d[^\r\n]*", "the firmware's PXE client reported an error"),
)
