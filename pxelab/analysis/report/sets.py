"""Boots of a run side by side per firmware set: the nightly view.

A matrix run with ``--pxelab-firmware-set bookworm,trixie,sid`` boots every case
once per set. :func:`set_grid` lays its boots out as a table, a row per case
(with its NIC variant and faults), a column per set, and gathers each set's key
package versions from what the boots recorded, so a case that boots on trixie
and fails on sid shows beside the versions that changed. Pure: it reads only
the loaded :class:`~pxelab.analysis.report.boots.BootRecord` objects.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from pxelab.analysis.report.boots import BootRecord
from pxelab.machine.fwsets import HOST, RELEASES

# The packages that tell sets apart, in the order a table shows them (sid ships
# OVMF's x86_64 images in ovmf-generic).
KEY_PACKAGES = ("ovmf", "ovmf-generic", "seabios", "ipxe-qemu", "grub-efi-amd64-bin")


@dataclass(frozen=True)
class SetGrid:
    """A run's boots as a table: a row per case, a column per firmware set."""

    sets: tuple[str, ...]
    cases: tuple[str, ...]
    # (case, set) -> its boots, oldest first; no entry: the set did not boot the case.
    cells: Mapping[tuple[str, str], tuple[BootRecord, ...]]
    # set -> key package -> every version the set's boots recorded (hosts may differ).
    versions: Mapping[str, Mapping[str, tuple[str, ...]]]
    origins: Mapping[str, str]  # set -> where its files came from ("Debian trixie")

    def boots(self, case: str, fwset: str) -> tuple[BootRecord, ...]:
        return self.cells.get((case, fwset), ())

    def mixed(self, case: str) -> bool:
        """True if the case booted in some sets and failed in others."""
        verdicts = {b.ok for s in self.sets for b in self.boots(case, s)}
        return len(verdicts) > 1

    def booted(self, fwset: str) -> tuple[int, int]:
        """How many of the set's boots reached userspace, and how many it made."""
        found = [b for c in self.cases for b in self.boots(c, fwset)]
        return sum(1 for b in found if b.ok), len(found)


def set_order(names: Iterable[str]) -> tuple[str, ...]:
    """The host first, then Debian's releases oldest first, then user sets by name."""
    known = (HOST, *RELEASES)
    unique = set(names)
    return (*(n for n in known if n in unique), *sorted(unique - set(known)))


def set_grid(records: Sequence[BootRecord]) -> SetGrid:
    """The boots of ``records`` as a case x firmware set table."""
    cells: dict[tuple[str, str], list[BootRecord]] = {}
    for record in sorted(records, key=lambda r: r.evidence.started_wall):
        cells.setdefault((record.case, record.firmware_set), []).append(record)
    sets = set_order(r.firmware_set for r in records)
    return SetGrid(sets=sets, cases=tuple(sorted({r.case for r in records})),
                   cells={key: tuple(found) for key, found in cells.items()},
                   versions={s: key_versions(r for r in records if r.firmware_set == s)
                             for s in sets},
                   origins={s: _origin(r for r in records if r.firmware_set == s)
                            for s in sets})


def key_versions(records: Iterable[BootRecord]) -> dict[str, tuple[str, ...]]:
    """Key package -> the distinct versions ``records`` recorded, sorted.

    A boot records only the firmware its case used (a legacy case no OVMF), so a
    set's versions are gathered over all its boots.
    """
    found: dict[str, set[str]] = {}
    for record in records:
        packages = record.timeline.properties.get("packages")
        if not isinstance(packages, Mapping):
            continue
        for name in KEY_PACKAGES:
            if packages.get(name):
                found.setdefault(name, set()).add(str(packages[name]))
    return {name: tuple(sorted(found[name])) for name in KEY_PACKAGES if name in found}


def _origin(records: Iterable[BootRecord]) -> str:
    origins = dict.fromkeys(str(r.timeline.properties.get("firmware_set_origin") or "")
                            for r in records)
    return ", ".join(o for o in origins if o)
