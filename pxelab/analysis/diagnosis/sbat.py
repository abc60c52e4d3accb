"""Diagnosis rule for an EFI binary shim refused by SBAT generation, not by signature.

shim prints the same "Verification failed: (0x1A) Security Violation" for an image
signed by no key it trusts and for a signed one whose ``.sbat`` generation the
machine's SbatLevel revokes (rhboot/shim pe.c ``verify_buffer``, sbat.c
``verify_single_entry``: the revocation itself goes to shim's MOK log, not the
console). The evidence that tells them apart: the SbatLevel in the guest's NVRAM
after the boot (:attr:`BootFacts.sbat_level`) against the ``.sbat`` of the binary it
fetched last (:attr:`BootFacts.efi_sbat`).
"""

from __future__ import annotations

import re

from pxelab.analysis.diagnosis import query as q
from pxelab.analysis.diagnosis.model import Cause
from pxelab.analysis.evidence import Evidence
from pxelab.core.errors import ConfigError
from pxelab.core.events import Event
from pxelab.machine.sbat import SbatEntry, SbatLevel, parse_sbat_level, parse_sbat_section

_REFUSED = re.compile(r"Verification failed: \(0x1A\) Security Violation")


def _fetched_binary(evidence: Evidence) -> tuple[str, Event | None] | None:
    """The EFI binary the guest fetched last (its delivery), if it has an .sbat; without
    the server's events, the one binary of the data root with an .sbat besides the NBP."""
    known = evidence.facts.efi_sbat
    binaries = [e for e in q.delivered(evidence) if q.event_file(e).lower().endswith(".efi")]
    if binaries:
        name = q.event_file(binaries[-1])
        return (name, binaries[-1]) if name in known else None
    others = [name for name in known if q.base(name) != q.base(q.nbp(evidence))]
    return (others[0], None) if len(others) == 1 else None


def _summary(name: str, revoked: tuple[tuple[SbatEntry, int], ...], level: SbatLevel) -> str:
    rows = ", ".join(f"{entry.describe()}, needs {entry.component},{needed}"
                     for entry, needed in revoked)
    return (f"shim refused {name}: the SbatLevel in the machine's NVRAM "
            f"({level.describe()}) revokes its SBAT generation {rows}")


def sbat_revoked(evidence: Evidence) -> Cause | None:
    """shim's Security Violation on a binary whose .sbat the NVRAM's SbatLevel revokes."""
    facts = evidence.facts
    if not facts.sbat_level or not _REFUSED.search(q.console(evidence)):
        return None
    try:
        level = parse_sbat_level(facts.sbat_level)
    except ConfigError:
        return None
    fetched = _fetched_binary(evidence)
    if fetched is None:
        return None
    name, delivery = fetched
    revoked = level.revokes(parse_sbat_section(facts.efi_sbat[name]))
    if not revoked:
        return None
    components = ", ".join(f"{entry.component} >= {needed}" for entry, needed in revoked)
    return Cause(
        "secureboot.sbat_revoked", evidence.timeline.failed_stage or "bootloader",
        _summary(name, revoked, level), q.lines(evidence, [delivery]),
        f"boot a build of {name} whose .sbat says {components}, signed as before (Debian "
        "13's signed GRUB 2.12 says grub,7); with Secure Boot on, shim never lowers an "
        "SbatLevel (its SbatPolicy reset works only with Secure Boot off)")
