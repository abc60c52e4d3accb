#!/usr/bin/env python3
"""Build the live system this example boots, as a site's build script would.

    python build.py          # as root: tftp/live/{vmlinuz,initrd.img} and root/

- the kernel: Debian's ``linux-image-cloud-amd64`` (bookworm), downloaded and
  unpacked by pxelab's payload builder (its own apt configuration, cached);
- the initrd: made by the host's initramfs-tools (``mkinitramfs``, MODULES=netboot,
  BOOT=nfs), exactly as a diskless-Debian guide says. The cloud kernel package has
  no e1000 driver at all, so no MODULES= setting can put one in: the field report's
  "the driver was in linux-image-extra" in Debian's words;
- the root: a directory with busybox and a /sbin/init that says it is up. Put your
  own tree there instead (debootstrap, a live-build chroot): anything with an
  executable /sbin/init and the directories /dev, /proc, /sys and /run boots.

Run again, it does nothing unless the kernel, initramfs-tools or this script changed.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import sys
from pathlib import Path

from pxelab.core.errors import HostCapabilityError
from pxelab.machine.payload import Initramfs, PayloadSpec, build_payload

HERE = Path(__file__).resolve().parent
BOOT = HERE / "tftp" / "live"     # served by TFTP and HTTP as live/vmlinuz, live/initrd.img
ROOT = HERE / "root"              # exported over NFS ([nfs] root = "root")
STAMP = BOOT / "BUILD"            # what the files were built from

SPEC = PayloadSpec(kernel_flavour="cloud-amd64", initramfs=Initramfs.INITRAMFS_TOOLS,
                   mkinitramfs_modules="netboot")

DIRECTORIES = ("bin", "sbin", "etc", "dev", "proc", "sys", "run", "tmp", "root")
APPLETS = ("sh", "mount", "cat", "echo", "uname", "poweroff")

# initramfs-tools moved /dev, /proc, /sys and /run here before it started this.
INIT = """#!/bin/sh
# The live system's first process: say where the root came from, then power off.
[ -e /proc/mounts ] || mount -t proc proc /proc
while read -r source point type rest; do
    [ "$point" = / ] && root="$source ($type)"
done < /proc/mounts
echo "live-nfs: up on $root, kernel $(uname -r)"
poweroff -f
"""


def main() -> None:
    if os.geteuid() != 0:
        raise HostCapabilityError("building the live system needs root (mkinitramfs runs "
                                  "in a private mount namespace): run it with sudo")
    # One build at a time (pytest -n 2 boots both guests at once): lock this directory.
    fd = os.open(HERE, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        build()
    finally:
        os.close(fd)


def build() -> None:
    payload = build_payload(SPEC)
    stamp = f"{payload.key} {hashlib.sha256(INIT.encode()).hexdigest()}\n"
    if STAMP.is_file() and STAMP.read_text() == stamp and (ROOT / "sbin/init").is_file():
        print(f"live system up to date: {BOOT}, {ROOT}")
        return
    for directory in (BOOT, ROOT):
        shutil.rmtree(directory, ignore_errors=True)
    BOOT.mkdir(parents=True)
    shutil.copyfile(payload.kernel, BOOT / "vmlinuz")
    shutil.copyfile(payload.initrd, BOOT / "initrd.img")
    make_root(ROOT, payload.rootfs / "bin" / "busybox")
    STAMP.write_text(stamp)
    print(f"live system built: kernel {payload.kernel_version}, {BOOT}, {ROOT}")


def make_root(root: Path, busybox: Path) -> None:
    for directory in DIRECTORIES:
        (root / directory).mkdir(parents=True)
    shutil.copyfile(busybox, root / "bin" / "busybox")
    (root / "bin" / "busybox").chmod(0o755)
    for applet in APPLETS:
        (root / "bin" / applet).symlink_to("busybox")
    (root / "sbin" / "init").write_text(INIT)
    (root / "sbin" / "init").chmod(0o755)
    (root / "etc" / "hostname").write_text("live\n")


if __name__ == "__main__":
    try:
        main()
    except HostCapabilityError as error:
        sys.exit(f"build.py: {error}")
