"""The root file system exported over NFS: busybox, its applets, and a /sbin/init that reports."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from pxelab.machine.payload.initramfs import NOT_INSTALLED, busybox_applets
from pxelab.machine.payload.scripts import ROOTFS_INIT

DIRECTORIES = ("bin", "dev", "etc", "proc", "root", "run", "sbin", "sys", "tmp", "usr/bin",
               "usr/sbin", "var")


def build_rootfs(target: Path, busybox: Path) -> None:
    """Create the tree at ``target`` (which must not exist). Owned by root when run as root."""
    target.mkdir()
    for directory in DIRECTORIES:
        (target / directory).mkdir(parents=True, exist_ok=True)
    (target / "tmp").chmod(0o1777)
    shutil.copyfile(busybox, target / "bin/busybox")
    (target / "bin/busybox").chmod(0o755)
    for applet in busybox_applets(busybox):
        if applet in NOT_INSTALLED:
            continue
        link = target / applet
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(os.path.relpath(target / "bin/busybox", link.parent))
    init = target / "sbin/init"
    init.write_text(ROOTFS_INIT, encoding="utf-8")
    init.chmod(0o755)
    (target / "etc/hostname").write_text("pxelab\n", encoding="utf-8")
    (target / "etc/passwd").write_text("root:x:0:0:root:/root:/bin/sh\n", encoding="utf-8")
    (target / "etc/group").write_text("root:x:0:\n", encoding="utf-8")
