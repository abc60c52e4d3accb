"""SBAT: the generations an EFI binary carries and the SbatLevel that revokes them.

Secure Boot Advanced Targeting (rhboot/shim SBAT.md) revokes a signed bootloader by
generation instead of by hash. Each binary shim loads carries a ``.sbat`` PE section,
CSV rows ``component,generation,vendor,package,version,url`` (the first row names
the format itself: ``sbat,1,SBAT Version,...``). The machine keeps the minimum
generations in the ``SbatLevel`` UEFI variable (vendor GUID :data:`SHIM_LOCK_GUID`,
non-volatile and boot-services only): ``sbat,1,<YYYYMMDDnn>`` then one
``component,generation`` row per revoked component. shim refuses a binary that
names a component of the variable with a lower generation (sbat.c,
``verify_single_entry``); it prints "Verification failed: (0x1A) Security
Violation", as for a bad signature.

shim writes its own built-in level only where the variable is missing, malformed or
older by its date (``preserve_sbat_uefi_variable``, shim 16.1), so a newer level a
firmware or OS update delivered stays, and revokes what it names.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from pathlib import Path

from pxelab.core.errors import ConfigError
from pxelab.machine import pe

# SHIM_LOCK_GUID (shim's include/guid.h): the vendor GUID of SbatLevel, MokList, ...
SHIM_LOCK_GUID = uuid.UUID("605dab50-e046-4300-abb6-3dd810dd8b23")
SBAT_LEVEL_NAME = "SbatLevel"
# SBAT_VAR_ATTRS (shim's include/sbat.h): EFI_VARIABLE_NON_VOLATILE |
# EFI_VARIABLE_BOOTSERVICE_ACCESS. shim keeps a variable only with these attributes
# (or these plus time-based authentication); any other it deletes and rewrites.
SBAT_LEVEL_ATTRIBUTES = 0x1 | 0x2
_DATE = re.compile(r"\d{10}")  # YYYYMMDDnn, compared as text by shim
_COMPONENT = re.compile(r"[A-Za-z0-9_.-]+")


@dataclass(frozen=True)
class SbatEntry:
    """One row of a binary's ``.sbat`` section."""

    component: str  # "grub", "grub.debian"
    generation: int
    vendor: str = ""
    package: str = ""
    version: str = ""

    def describe(self) -> str:
        """``grub,5 (grub 2.06)``: the row as SBAT writes it, and what it is."""
        what = f" ({self.package} {self.version})" if self.package else ""
        return f"{self.component},{self.generation}{what}"


@dataclass(frozen=True)
class SbatLevel:
    """The SbatLevel variable: a date and the minimum generation of each component."""

    date: str  # YYYYMMDDnn
    minimum: tuple[tuple[str, int], ...]  # (component, generation), in the variable's order
    version: int = 1  # the variable format's ("sbat,1,...")

    def __post_init__(self) -> None:
        if not _DATE.fullmatch(self.date):
            raise ConfigError(f"SbatLevel date {self.date!r} must be YYYYMMDDnn, 10 digits "
                              "(shim compares it as text with its built-in level's)")
        for component, generation in self.minimum:
            if not _COMPONENT.fullmatch(component) or generation < 1:
                raise ConfigError(f"SbatLevel row {component},{generation}: write a "
                                  "component name and a generation >= 1, e.g. grub,6")

    def text(self) -> str:
        """The variable's data as shim writes it: rows ending in newlines, no NUL."""
        rows = [f"sbat,{self.version},{self.date}"]
        rows += [f"{component},{generation}" for component, generation in self.minimum]
        return "".join(f"{row}\n" for row in rows)

    def describe(self) -> str:
        """``2025112400 shim,4 grub,6``: one line, for settings and causes."""
        return " ".join([self.date, *(f"{c},{g}" for c, g in self.minimum)])

    def revokes(self, entries: tuple[SbatEntry, ...]) -> tuple[tuple[SbatEntry, int], ...]:
        """The rows of ``entries`` this level revokes, each with the generation it needs.

        As shim's ``verify_sbat_helper``: a row is checked against the first
        variable row of the same component; components the variable does not name pass.
        """
        needed: dict[str, int] = {}
        for component, generation in self.minimum:
            needed.setdefault(component, generation)
        return tuple((entry, needed[entry.component]) for entry in entries
                     if entry.component in needed and entry.generation < needed[entry.component])


def parse_sbat_level(text: str) -> SbatLevel:
    """An SbatLevel variable's data (``sbat,1,2025021800\\nshim,4\\ngrub,5\\n``)."""
    rows = [row.split(",") for row in text.rstrip("\0").splitlines() if row.strip()]
    if not rows or len(rows[0]) < 3 or rows[0][0] != "sbat" or not rows[0][1].isdigit():
        raise ConfigError(f"SbatLevel {text!r} must begin with 'sbat,1,YYYYMMDDnn' "
                          "(rhboot/shim SbatLevel_Variable.txt)")
    minimum = []
    for row in rows[1:]:
        if len(row) < 2 or not row[1].strip().isdigit():
            raise ConfigError(f"SbatLevel row {','.join(row)!r} must be component,generation")
        minimum.append((row[0].strip(), int(row[1])))
    return SbatLevel(rows[0][2].strip(), tuple(minimum), int(rows[0][1]))


def parse_sbat_section(text: str) -> tuple[SbatEntry, ...]:
    """The rows of a ``.sbat`` section (NUL padding and the format's own row dropped)."""
    entries = []
    for line in text.replace("\0", "").splitlines():
        fields = line.split(",")
        if len(fields) < 2 or not fields[1].strip().isdigit() or fields[0] == "sbat":
            continue
        extra = [*fields[2:5], "", "", ""]
        entries.append(SbatEntry(fields[0].strip(), int(fields[1]), *extra[:3]))
    return tuple(entries)


# PE/COFF (Microsoft PE format): the "PE\0\0" offset at 0x3c; the COFF header's
# NumberOfSections (u16) at +6 and SizeOfOptionalHeader (u16) at +20 after the
# signature; 40-byte section headers: Name[8], VirtualSize, VirtualAddress,
def read_sbat(path: Path) -> str:
    """The ``.sbat`` section of the EFI binary at ``path`` as text ("" without one)."""
    section = pe.section(path.read_bytes(), ".sbat")
    return "" if section is None else section.decode("utf-8", "replace").replace("\0", "")
