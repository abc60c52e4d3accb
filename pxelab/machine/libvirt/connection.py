"""Opening libvirt, the versions a result records, and reaping dead runs' domains.

A domain pxelab starts carries its owner (pid and process start time) in its
metadata. A run killed with SIGKILL cannot destroy its domain; the next run does
(:func:`reap_domains`), together with the NVRAM file it left in :data:`NVRAM_DIR`.
"""

from __future__ import annotations

import contextlib
import logging
import os
from pathlib import Path
from typing import Any

from pxelab.core.errors import GuestError, HostCapabilityError
from pxelab.machine.libvirt.domain import NAME_PREFIX, Owner, owner_of
from pxelab.machine.network import creator_pid

log = logging.getLogger(__name__)

# Where the domains' NVRAM files live while they run (libvirt's own NVRAM directory).
NVRAM_DIR = Path("/var/lib/libvirt/qemu/nvram")
NVRAM_SUFFIX = "_VARS.fd"
# The domains' serial consoles: unix sockets QEMU listens on. A short directory, as a
# socket's path must fit in 108 bytes.
CONSOLE_DIR = Path("/run/pxelab-libvirt")
CONSOLE_SUFFIX = ".console"
START_HINT = ("start it (systemd: 'systemctl start libvirtd virtlogd'; without systemd, "
              "as root: 'virtlogd -d && libvirtd -d'; Debian packages "
              "libvirt-daemon-system, libvirt-clients), or pass another URI with "
              "--pxelab-libvirt-uri / pxelab boot --libvirt-uri")


def libvirt_module() -> Any:
    """libvirt-python, or a HostCapabilityError saying how to install it."""
    try:
        import libvirt  # noqa: PLC0415  (an optional extra)
    except ImportError as error:
        raise HostCapabilityError("the libvirt backend needs libvirt-python: install pxelab "
                                  "with its 'libvirt' extra (pip install 'pxelab[libvirt]'; "
                                  "building it needs libvirt-dev and pkg-config)") from error
    return libvirt


def open_connection(uri: str) -> Any:
    """A read-write connection to ``uri``; HostCapabilityError if libvirtd does not answer."""
    libvirt = libvirt_module()
    libvirt.registerErrorHandler(lambda _ctx, _error: None, None)  # no stderr noise
    try:
        return libvirt.open(uri)
    except libvirt.libvirtError as error:
        raise HostCapabilityError(f"cannot connect to libvirt at {uri} ({error}); is libvirtd "
                                  f"running and is the URI right? {START_HINT}") from error


def check_connection(uri: str) -> None:
    """Raise the HostCapabilityError of :func:`open_connection` before any lab is built."""
    open_connection(uri).close()


def versions(conn: Any) -> dict[str, str]:
    """libvirt's and the hypervisor's (QEMU's) version, as a result records them."""
    return {"libvirt_version": _dotted(conn.getLibVersion()),
            "qemu_version": _dotted(conn.getVersion())}


def _dotted(number: int) -> str:
    return f"{number // 1_000_000}.{number // 1000 % 1000}.{number % 1000}"


def process_start(pid: int) -> int | None:
    """Clock ticks after boot at which process ``pid`` started (None: no such process)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text(encoding="utf-8")
    except OSError:
        return None
    # The command name (field 2) may hold spaces and parentheses: split after its end.
    return int(stat[stat.rindex(")") + 2:].split()[19])


def current_owner() -> Owner:
    pid = os.getpid()
    start = process_start(pid)
    if start is None:
        raise GuestError("cannot read this process's start time from /proc")
    return Owner(pid, start)


def owner_alive(owner: Owner) -> bool:
    return process_start(owner.pid) == owner.start_ticks


def domain_name(namespace: str) -> str:
    """The domain of the lab in ``namespace``: named after it, so it carries the run's pid."""
    return NAME_PREFIX + namespace


def nvram_path(name: str) -> Path:
    return NVRAM_DIR / f"{name}{NVRAM_SUFFIX}"


def console_path(name: str) -> Path:
    return CONSOLE_DIR / f"{name}{CONSOLE_SUFFIX}"


def reap_domains(conn: Any, logger: logging.Logger = log) -> list[str]:
    """Destroy the domains whose owner (in their metadata) is gone, and remove the NVRAM
    files of domains whose run is gone; the names of the domains destroyed."""
    libvirt = libvirt_module()
    reaped = []
    for domain in conn.listAllDomains():
        name = domain.name()
        if not name.startswith(NAME_PREFIX):
            continue
        try:
            owner = owner_of(domain.XMLDesc())
        except libvirt.libvirtError:
            continue  # ended meanwhile
        if owner is None or owner_alive(owner):
            continue  # not started by pxelab's LibvirtGuest, or its run goes on
        logger.warning("destroying libvirt domain %s left by a dead run (owner pid %d)",
                       name, owner.pid)
        with contextlib.suppress(libvirt.libvirtError):
            domain.destroy()
            if domain.isPersistent():
                domain.undefineFlags(libvirt.VIR_DOMAIN_UNDEFINE_NVRAM)
        reaped.append(name)
    for directory, suffix in ((NVRAM_DIR, NVRAM_SUFFIX), (CONSOLE_DIR, CONSOLE_SUFFIX)):
        for path in directory.glob(f"{NAME_PREFIX}*{suffix}"):
            # Made before its domain starts: only the run that made it can tell.
            pid = creator_pid(path.name.removesuffix(suffix).removeprefix(NAME_PREFIX))
            if pid is not None and process_start(pid) is None:
                logger.warning("removing %s left by a dead run", path)
                path.unlink(missing_ok=True)
    return reaped
