"""Rules for Secure Boot refusals: shim refusing its second stage, GRUB refusing the kernel.

Both refusals name no file: shim says "Verification failed: (0x1A) Security
Violation" in a dialog, the signed GRUB "error: bad shim signature." The file is
the one the server sent last before the refusal (shim fetches exactly one second
stage; GRUB's ``linux`` fetches the kernel, then asks shim to verify it). Where the
data root is still there, its copy says whether the file carries an Authenticode
signature at all (:mod:`pxelab.machine.pe`): an unsigned build and a build signed by
a key shim does not trust need different fixes.
"""

from __future__ import annotations

import posixpath
import re
from pathlib import Path

from pxelab.analysis.diagnosis import query as q
from pxelab.analysis.diagnosis.model import Cause
from pxelab.analysis.evidence import Evidence
from pxelab.core.errors import ConfigError
from pxelab.core.events import Event
from pxelab.machine import pe

_VIOLATION = re.compile(r"Verification failed: \(0x1A\) Security Violation")
_BAD_SIGNATURE = re.compile(r"error: bad shim signature")
# What the kernel was, for the fix: Debian signs its kernels with its own CA's key,
# which Debian's shim carries as its vendor certificate.
_SIGNED_KERNEL = ("a kernel signed by the distribution (Debian: the vmlinuz of a "
                  "linux-image-*-amd64 package, signed by \"Debian Secure Boot Signer\")")


def unsigned_second_stage(evidence: Evidence) -> Cause | None:
    """shim fetched its second stage and refused to start it ("Security Violation")."""
    if not _VIOLATION.search(q.console(evidence)) or q.reached_linux(evidence):
        return None
    start = q.nbp_delivery(evidence)
    shim = q.event_file(start) if start else q.nbp(evidence) or "shim"
    second = _last_delivered(evidence, after=start)
    name = q.event_file(second) if second else "its second stage"
    signature = _signature(evidence, name) if second else ""
    base = posixpath.basename(name) if second else "grubx64.efi"
    return Cause(
        "secureboot.unsigned_second_stage", evidence.timeline.failed_stage or "bootloader",
        f"shim ({shim}) refused {name}, the second stage it fetched next: 'Verification "
        f"failed: (0x1A) Security Violation'"
        + (f"; {name} {signature}" if signature else ": it is not signed by a key shim "
           "trusts"),
        q.lines(evidence, [start, second]),
        f"serve the distribution's signed GRUB as {base} beside {shim} (Debian: "
        f"grubnetx64.efi.signed from grub-efi-amd64-signed, named {base}), or sign your "
        "build with a key enrolled as a MOK (sbsign, then mokutil --import on the machine)")


def unsigned_kernel(evidence: Evidence) -> Cause | None:
    """The signed GRUB fetched the kernel and shim did not verify it ("bad shim signature")."""
    if not _BAD_SIGNATURE.search(q.console(evidence)) or q.reached_linux(evidence):
        return None
    kernel = _last_delivered(evidence, after=q.nbp_delivery(evidence))
    if kernel is not None and q.base(q.event_file(kernel)).endswith((".cfg", ".lst")):
        kernel = None  # GRUB's own files: the kernel's transfer is not in the evidence
    name = q.event_file(kernel) if kernel else "the kernel"
    signature = _signature(evidence, name) if kernel else ""
    return Cause(
        "secureboot.unsigned_kernel", evidence.timeline.failed_stage or "kernel_fetch",
        f"GRUB loaded {name} and shim refused it: 'bad shim signature'"
        + (f"; {name} {signature}" if signature else ": it is not signed by a key shim "
           "trusts"),
        q.lines(evidence, [kernel]),
        f"serve {_SIGNED_KERNEL} as {name}, or sign yours with a key enrolled as a MOK "
        "(sbsign, then mokutil --import on the machine)")


def _last_delivered(evidence: Evidence, after: Event | None) -> Event | None:
    """The last file delivered in full after ``after`` and before the stage failed."""
    end = evidence.timeline.failed_at
    until = q.wall(evidence, end) if end is not None else None
    found = [e for e in q.after(q.delivered(evidence), after.time if after else None)
             if e is not after and (until is None or e.time <= until)]
    return found[-1] if found else None


def _signature(evidence: Evidence, name: str) -> str:
    """What the data root's copy of ``name`` says of its signature ("" if unreadable)."""
    root = evidence.facts.data_root
    if not root:
        return ""
    try:
        image = (Path(root) / name).read_bytes()
        signed = pe.is_signed(image)
    except OSError:
        return ""
    except ConfigError as error:
        return f"is no EFI program ({error})"
    if signed:
        return ("carries an Authenticode signature, but not one shim trusts (its vendor "
                "certificate, the firmware's db, an enrolled MOK), or its hash or SBAT "
                "generation is revoked")
    return "carries no Authenticode signature (its copy in the data root has no certificate table)"
