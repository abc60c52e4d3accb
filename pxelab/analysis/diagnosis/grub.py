"""Diagnosis rule for a GRUB that came over HTTP and cannot fetch anything the same way.

GRUB sets ``$prefix`` to the server and protocol that sent it, ``(http,<server>)/grub``
after an HTTP boot, and reads ``$prefix/grub.cfg`` in normal mode. A GRUB image without
the ``http`` module cannot open that device; normal mode says nothing of a config it
cannot open and shows its prompt. Under Secure Boot the signed image cannot load the
module either. The boot server sees the image go out and then no request at all;
Debian 12's signed grubnetx64.efi (2.06) is such an image, Debian 13's (2.12) is not.
"""

from __future__ import annotations

import re
from pathlib import Path

from pxelab.analysis.diagnosis import query as q
from pxelab.analysis.diagnosis.model import Cause
from pxelab.analysis.evidence import Evidence
from pxelab.core.errors import ConfigError
from pxelab.core.events import Event
from pxelab.machine.grubimage import grub_modules

_PROMPT = re.compile(r"grub> ")
_BANNER = re.compile(r"GNU GRUB\s+version (?P<version>\S+)")
_FIX = ("boot this GRUB over TFTP (PXE: DHCP option 67 / DHCPv6 option 59 tftp://...), "
        "or serve a GRUB image built with the http module (Secure Boot: the "
        "distribution's signed one, e.g. Debian 13's grub-efi-amd64-signed 2.12)")


def http_module_missing(evidence: Evidence) -> Cause | None:
    """GRUB came over HTTP, asked the server for nothing after and stopped at its prompt."""
    if q.reached_linux(evidence) or not _PROMPT.search(q.console(evidence)):
        return None
    delivered = q.delivered(evidence)
    image = delivered[-1] if delivered else None
    if image is None or image.source != "http" or _asked_after(evidence, image):
        return None
    name = q.event_file(image)
    modules = _modules(evidence, name)
    if modules is not None and "http" in modules:
        return None  # it could have: something else kept it quiet
    banner = _BANNER.search(evidence.timeline.console_tail)
    grub = f"GRUB {banner['version']}" if banner else "GRUB"
    known = ("its image has no http module (read from the data root's copy)"
             if modules is not None else "its image has, most likely, no http module")
    return Cause(
        "grub.no_http_module", evidence.timeline.failed_stage or "bootloader",
        f"{grub} ({name}) came over HTTP and then asked the server for nothing: {known}, "
        "so it cannot open $prefix on (http,<server>) and never read grub/grub.cfg (under "
        "Secure Boot a signed GRUB cannot load the module either)",
        q.lines(evidence, [image]), _FIX)


def _asked_after(evidence: Evidence, image: Event) -> bool:
    """Whether any TFTP or HTTP request came after ``image`` went out."""
    later = [e for e in q.events(evidence, "tftp") + q.events(evidence, "http")
             if e.time > image.time]
    return bool(later)


def _modules(evidence: Evidence, name: str) -> frozenset[str] | None:
    """The modules of the data root's ``name``, None if it is gone or not a GRUB image."""
    root = evidence.facts.data_root
    if not root or not name:
        return None
    try:
        return grub_modules((Path(root) / name).read_bytes())
    except (OSError, ConfigError):
        return None
