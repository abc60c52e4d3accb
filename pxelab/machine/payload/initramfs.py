"""The initramfs: busybox, the needed kernel modules, /init and the udhcpc hook, as gzip'd newc."""

from __future__ import annotations

import gzip
import subprocess
from collections.abc import Iterator, Sequence
from pathlib import Path

from pxelab.core.errors import PayloadError
from pxelab.machine.payload import cpio
from pxelab.machine.payload.modules import read_module, uncompressed_name
from pxelab.machine.payload.scripts import INIT, UDHCPC

# Applets installed beside busybox (their place in a normal tree, from --list-full);
# the program that becomes init is ours, not busybox's.
NOT_INSTALLED = frozenset({"sbin/init", "linuxrc", "bin/busybox"})


def busybox_applets(busybox: Path) -> list[str]:
    """Paths (``bin/sh``, ``sbin/switch_root``, ...) of the applets this busybox offers."""
    result = subprocess.run(
        [str(busybox), "--list-full"], capture_output=True, text=True, check=False
    )
    if result.returncode != 0 or not result.stdout.strip():
        raise PayloadError(f"{busybox} --list-full failed: {result.stderr.strip()}")
    return sorted(line.strip() for line in result.stdout.splitlines() if line.strip())


def _parents(path: str) -> Iterator[str]:
    parts = path.split("/")[:-1]
    for i in range(1, len(parts) + 1):
        yield "/".join(parts[:i])


def _link_target(applet: str) -> str:
    """``sbin/ip`` -> ``../bin/busybox``: relative, so the link works in any root."""
    return "../" * applet.count("/") + "bin/busybox"


def applet_entries(applets: Sequence[str]) -> list[cpio.CpioEntry]:
    """Directories and symlinks for ``applets`` (busybox itself is added by the caller)."""
    entries: list[cpio.CpioEntry] = []
    dirs: set[str] = {"bin"}
    for applet in applets:
        if applet in NOT_INSTALLED:
            continue
        for parent in _parents(applet):
            if parent not in dirs:
                dirs.add(parent)
                entries.append(cpio.directory(parent))
        entries.append(cpio.symlink(applet, _link_target(applet)))
    return entries


def initramfs_entries(busybox: Path, modules_root: Path, modules: Sequence[str]) -> list[
        cpio.CpioEntry]:
    """Everything in the initramfs, in archive order (directories before their contents).

    ``modules`` are paths relative to ``modules_root`` in load order; they are stored
    uncompressed as ``/lib/modules/<name>.ko`` and listed in ``/etc/pxelab/modules``.
    """
    entries = [cpio.directory(d) for d in ("bin", "dev", "etc", "etc/pxelab", "lib",
                                           "lib/modules", "newroot", "proc", "run", "sys",
                                           "tmp")]
    # The kernel opens /dev/console for /init before anything is mounted (5, 1).
    entries.append(cpio.char_device("dev/console", 5, 1))
    entries.append(cpio.regular("bin/busybox", busybox.read_bytes(), 0o755))
    entries += applet_entries(busybox_applets(busybox))
    names: list[str] = []
    for module in modules:
        name = uncompressed_name(module)
        if name in names:
            raise PayloadError(f"two modules would both be /lib/modules/{name}: {modules}")
        names.append(name)
        entries.append(cpio.regular(f"lib/modules/{name}", read_module(modules_root / module)))
    entries.append(cpio.regular("etc/pxelab/modules", "".join(n + "\n" for n in names).encode()))
    entries.append(cpio.regular("etc/udhcpc.script", UDHCPC.encode(), 0o755))
    entries.append(cpio.regular("init", INIT.encode(), 0o755))
    return entries


def write_initramfs(target: Path, busybox: Path, modules_root: Path, modules: Sequence[str]) -> int:
    """Write the gzip-compressed initramfs to ``target``; returns its size in bytes."""
    archive = cpio.write_newc(initramfs_entries(busybox, modules_root, modules))
    data = gzip.compress(archive, compresslevel=9, mtime=0)
    target.write_bytes(data)
    return len(data)
