"""Diagnosis rule for a GRUB that came over HTTP but cannot read anything over it.

GRUB loaded by UEFI HTTP boot sets ``$prefix`` to ``(http,<server>)/...``. An image
built without the ``http`` module cannot open that device: it asks the server for
nothing and stops at its prompt (sometimes after ``error: disk `http,...' not
found``). Debian 12's signed ``grubnetx64.efi`` (GRUB 2.06) is such an image, and under
Secure Boot GRUB may not load a module from elsewhere; Debian 13's (2.12) has ``http``
built in. The evidence is the server's: the last file delivered was GRUB's (or the
program before it), over HTTP, and no request followed.
"""

from __future__ import annotations

import re

from pxelab.analysis.diagnosis import query as q
from pxelab.analysis.diagnosis.model import Cause
from pxelab.analysis.evidence import Evidence

_STOPPED = re.compile(r"grub>|error: disk `http,[^'\r\n]*' not found")
_VERSION = re.compile(r"GNU GRUB\s+version (?P<version>\S+)")


def no_http_module(evidence: Evidence) -> Cause | None:
    """GRUB reached over HTTP stopped without asking the server for anything."""
    timeline = evidence.timeline
    if not timeline.failed_stage or not _STOPPED.search(timeline.failure or ""):
        return None
    delivered = q.delivered(evidence)
    if not delivered or delivered[-1].source != "http":
        return None
    last = delivered[-1]
    if any(e.time > last.time for e in q.events(evidence, "http") + q.events(evidence, "tftp")):
        return None
    found = _VERSION.search(q.console(evidence))
    which = f"GRUB {found['version']}" if found else "GRUB"
    return Cause(
        "grub.no_http_module", timeline.failed_stage,
        f"{which} was started over HTTP (after {q.event_file(last)}) and then asked the boot "
        "server for nothing before it stopped: its image has no http module, so it cannot "
        "read its grub.cfg from (http,<server>) (Debian 12's signed grubnetx64.efi is built "
        "without one, and Secure Boot forbids loading modules)",
        q.lines(evidence, [last]),
        "boot this GRUB over TFTP (UEFI PXE) instead of HTTP boot, or use a GRUB image with "
        "http built in (Debian 13's signed grubnetx64.efi, GRUB 2.12)")
