"""Rules that read what the guest itself printed: its own words for what went wrong.

A kernel, an initramfs, a boot loader or a firmware often says exactly what failed;
:data:`KNOWN_LINES` names the cause of the lines whose meaning is known, and
:func:`error_line` quotes any other error line the stage ended on, whole, so that a
failure the rules do not know yet still shows the guest's words instead of nothing.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from pxelab.analysis.diagnosis import query as q
from pxelab.analysis.diagnosis.model import Cause
from pxelab.analysis.evidence import Evidence
from pxelab.machine.payload.contract import NFSMOUNT_NUMBERS


@dataclass(frozen=True)
class KnownLine:
    """A console line whose meaning is known: the cause it names, and its fix."""

    pattern: re.Pattern[str]
    code: str
    summary: str  # may use the pattern's named groups
    fix: str
    # The stages the line means this in (empty: any): "[PXE-NBP]" after pxelinux.0 is normal.
    stages: tuple[str, ...] = ()


# What klibc nfsmount takes in nfsroot=<server>:<path>,<options> (its main.c tables).
_NFSMOUNT_NUMBERS = "|".join(NFSMOUNT_NUMBERS)
_NFSMOUNT_OPTIONS = (
    f"keep to the options klibc nfsmount knows: {', '.join(NFSMOUNT_NUMBERS)} (whole "
    "numbers; vers and nfsvers 2 or 3), and soft, hard, intr, nointr, posix, noposix, "
    "cto, nocto, ac, noac, lock, nolock, acl, noacl, v2, v3, udp, tcp, broken_suid, ro, rw")

KNOWN_LINES = (
    KnownLine(re.compile(r"Initramfs unpacking failed: (?P<why>[^\r\n]*)"),
              "initrd.unpack_failed",
              "the kernel could not unpack the initrd ({why}): the file the guest got is cut "
              "short or corrupt",
              "serve the whole initrd: compare its size in the data root with the payload's "
              "and with what the server sent"),
    KnownLine(re.compile(r"EFI stub: ERROR: Failed to (?:open file: (?P<file>\S+)|load initrd)"),
              "initrd.not_loaded",
              "the kernel's EFI stub found no initrd to load: the boot script or menu did not "
              "load it, or initrd= on the kernel line names another file",
              "load the initrd before booting (iPXE: an `initrd` line; GRUB: `initrd`; "
              "PXELINUX: INITRD) under the name initrd= on the kernel line gives"),
    KnownLine(re.compile(r"error: can't find command [`'](?P<command>[^'`\r\n]+)'"),
              "grub.unknown_command",
              "GRUB has no command {command}: the grub.cfg was written for another GRUB build "
              "(linuxefi and initrdefi are Fedora and RHEL patches) or the image lacks the "
              "module",
              "use the commands of the GRUB that runs (Debian's: linux and initrd boot EFI "
              "kernels too), or build the GRUB image with the module that provides it"),
    # klibc nfsmount (Debian's initramfs-tools, boot=nfs) checks nfsroot='s options
    # itself and gives up before it sends the server anything (usr/kinit/nfsmount/main.c).
    KnownLine(re.compile(r"nfsmount: bad NFS version '(?P<version>[^'\r\n]*)'"),
              "nfs.client_version_unsupported",
              "klibc nfsmount, which mounts the NFS root of Debian's initramfs-tools, speaks "
              "NFSv2 and NFSv3 only and refused vers={version} without asking the server: "
              "this initrd cannot mount an NFSv4 root",
              "drop vers= from nfsroot= (or give vers=3) and serve the export over NFSv3 too "
              "(lab file: [nfs] nfsv3 = true); for an NFSv4 root boot an initramfs that "
              "mounts with mount.nfs4 (dracut's, pxelab's) and give each machine a host name "
              "of its own: NFSv4 names the client by it"),
    KnownLine(re.compile(r"nfsmount: bad option '(?P<option>[^'\r\n]*)'"),
              "nfs.client_option_unsupported",
              "klibc nfsmount (Debian's initramfs-tools, boot=nfs) does not know the option "
              "{option} in nfsroot= and gave up without asking the server",
              _NFSMOUNT_OPTIONS),
    KnownLine(re.compile(rf"(?P<value>[^\s:]+): invalid value for (?P<option>{_NFSMOUNT_NUMBERS})"),
              "nfs.client_option_unsupported",
              "klibc nfsmount (Debian's initramfs-tools, boot=nfs) takes whole numbers only "
              "and refused {option}={value} in nfsroot= without asking the server",
              _NFSMOUNT_OPTIONS),
    KnownLine(re.compile(r"(?P<file>\S+) : \d+ bytes \[(?P<kind>PXE-NBP)\]"),
              "ipxe.not_a_script",
              "iPXE took {file} for a {kind} image, not a script, and ran it as such: the "
              "script's first line is not #!ipxe",
              "start the script with the line #!ipxe (no blank line, no byte order mark, "
              "Unix line ends)", stages=("script",)),
)
# The line a failure quotes: FailurePattern texts end in "(console: <repr of the line>)",
# in double quotes when the line has a single quote in it ("can't open").
_QUOTED = re.compile(r"\(console: (?P<quote>['\"])(?P<line>.*)(?P=quote)\)$")


def known_line(evidence: Evidence) -> Cause | None:
    """The console said something whose meaning is known (:data:`KNOWN_LINES`)."""
    timeline = evidence.timeline
    for known in KNOWN_LINES:
        if known.stages and timeline.failed_stage not in known.stages:
            continue
        # The console tail holds the line as printed; the failure text quotes it.
        found = known.pattern.search(timeline.console_tail) or known.pattern.search(
            timeline.failure or "")
        if found:
            return Cause(known.code, evidence.timeline.failed_stage or "kernel",
                         known.summary.format(**found.groupdict())
                         + f" (console: {found.group(0).strip()!r})",
                         _failure(evidence), known.fix)
    return None


def error_line(evidence: Evidence) -> Cause | None:
    """The fallback: the stage ended on a guest line no other rule explains; quote it."""
    found = _QUOTED.search(evidence.timeline.failure or "")
    if found is None:
        return None
    stage = evidence.timeline.failed_stage or "?"
    return Cause(
        "guest.error_line", stage,
        f"the guest ended stage {stage} saying: {found['line']}",
        _failure(evidence),
        "read the line: it names what the guest missed; pxelab has no rule for it yet, so "
        "the timeline and the server's log around it say the rest")


def _failure(evidence: Evidence) -> tuple[str, ...]:
    line = q.failure_line(evidence)
    return (line,) if line else ()
