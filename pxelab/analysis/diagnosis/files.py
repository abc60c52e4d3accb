"""Rules for files the guest asked for that the server does not have.

:func:`nbp_not_found` covers the boot file the DHCP answer named (the NBP itself, before
anything arrived); what a loader asks for after it is
:func:`pxelab.analysis.diagnosis.tftp.next_file_missing`. Both are ``file.not_found``,
over TFTP or HTTP alike, and name the data root's files with a similar name: a typo in
a DHCP config is the common case ("pxelinx.0").
"""

from __future__ import annotations

import difflib
import posixpath
from collections.abc import Sequence

from pxelab.analysis.diagnosis import query as q
from pxelab.analysis.diagnosis.model import Cause
from pxelab.analysis.evidence import Evidence, PacketRecord
from pxelab.core.events import Event

# difflib's ratio: "pxelinx.0" to "pxelinux.0" is 0.95; "pxelinux.cfg/default" to
# "pxelinux.0" 0.6, related but no typo.
SIMILAR_CUTOFF = 0.8


BASE_CUTOFF = 0.7


def similar_names(name: str, files: Sequence[str]) -> list[str]:
    """Data-root files whose path or base name is close to ``name``, closest first; a name
    that differs only in case (a copy from a FAT file system) comes first."""
    by_base = {posixpath.basename(f): f for f in files}
    close = [f for f in files if f.lower() == name.lower()
             or posixpath.basename(f).lower() == posixpath.basename(name).lower()]
    # A long shared directory makes any two paths look alike: the names must be too.
    base = posixpath.basename(name)
    close += [f for f in difflib.get_close_matches(name, files, n=3, cutoff=SIMILAR_CUTOFF)
              if difflib.SequenceMatcher(None, base, posixpath.basename(f)).ratio()
              >= BASE_CUTOFF]
    close += [by_base[b] for b in difflib.get_close_matches(
        posixpath.basename(name), list(by_base), n=3, cutoff=SIMILAR_CUTOFF)]
    return [f for f in dict.fromkeys(close) if f != name][:3]


def nbp_not_found(evidence: Evidence) -> Cause | None:
    """The boot file the DHCP answer named was refused (TFTP error 1/2, HTTP 404) and
    never arrived."""
    if q.nbp_delivery(evidence) is not None or q.reached_linux(evidence):
        return None
    named = {name: event for event, name in q.boot_files(evidence)}
    refused = [e for e in q.refusals(evidence) if q.event_file(e) in named]
    if not refused:
        return None
    culprit = refused[-1]
    name = q.event_file(culprit)
    if any(q.event_file(e) == name for e in q.delivered(evidence)) or _went_on(
            evidence, name, culprit.time):
        return None
    close = similar_names(name, evidence.facts.data_files)
    server = "HTTP" if culprit.source == "http" else "TFTP"
    there = f"; the data root has {', '.join(close)}" if close else ""
    fix = (f"name {close[0]} as the boot file in the DHCP answer, or put {name} into the "
           "data root" if close else f"put {name} into the data root, or name a file it "
           "has as the boot file in the DHCP answer")
    return Cause(
        "file.not_found", evidence.timeline.failed_stage or "nbp",
        f"{name}, the boot file the DHCP answer named, is not on the {server} server "
        f"({q.searched_directory(evidence, culprit)}){there}",
        q.lines(evidence, [named[name], culprit]),
        fix)


def _went_on(evidence: Evidence, name: str, since: float) -> bool:
    """Whether the firmware went on to its next boot option after the refusal of ``name``
    at ``since`` (OVMF's HTTPv6 after a refused HTTPv4 URL), so the refusal did not end
    the boot: DHCP named another boot file later, or the guest asked DHCP again before
    its stage failed."""
    if any(other != name and event.time > since for event, other in q.boot_files(evidence)):
        return True
    end = evidence.timeline.failed_at
    asked: list[Event | PacketRecord] = [e for e in evidence.events
                                         if e.source in ("dhcp4", "dhcp6")]
    asked += [p for p in evidence.packets if p.proto in ("dhcp4", "dhcp6")
              and not q.from_server(evidence, p)]
    return any(item.time > since and (end is None or evidence.seconds(item.time) < end)
               for item in asked)
