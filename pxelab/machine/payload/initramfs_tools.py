"""Debian's own initramfs for a downloaded kernel, built by initramfs-tools' mkinitramfs.

This is the initrd people PXE-boot Debian and Ubuntu with: ``boot=nfs``, klibc's
ipconfig and nfsmount, udev loading the drivers that ``MODULES=`` put in. It is
built here as a user builds it, with the host's initramfs-tools, hooks and
klibc, from a config directory of pxelab's own (``mkinitramfs -d``, never
/etc/initramfs-tools).

mkinitramfs reads the modules from ``/lib/modules/<version>`` and the kernel
config from ``/boot/config-<version>``; the downloaded kernel's are in an
extracted tree, and the host's /lib/modules must not change. So mkinitramfs runs
in a private mount namespace (``unshare --mount --propagation private``) where
/usr/lib (= /lib) is an overlay with an empty ``modules/<version>`` on a tmpfs,
the extracted modules are bind-mounted there and the extracted /boot over /boot.
Those mounts vanish with the namespace; nothing on the host changes.

One change to Debian's scripts, made by a hook in pxelab's config directory:
``configure_networking`` waits up to 180 s for a network device before it runs
ipconfig (scripts/functions, ``local netdevwait=180``). A lab guest without one
would sit that long before "ipconfig: no devices to configure"; pxelab's builds
wait :data:`NETDEV_WAIT` s. A guest that has its device finds it at once either way.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path

from pxelab.core.errors import HostCapabilityError, PayloadError
from pxelab.machine.payload.modules import MODULE_SUFFIXES

log = logging.getLogger(__name__)

# Host packages whose files end up in the image (scripts, hooks, klibc, kmod, udev,
# busybox): their versions are part of the payload's cache key and record.
HOST_PACKAGES = ("initramfs-tools-core", "klibc-utils", "libklibc", "kmod", "udev",
                 "busybox-static")
NETDEV_WAIT = 10  # seconds; Debian's scripts say 180
LOG_NAME = "mkinitramfs.log"

# Runs inside the private mount namespace; arguments: overlay tmpfs dir, extracted
# kernel tree, kernel version, config dir, output file.
NAMESPACE_SCRIPT = r"""
ovl=$1 kroot=$2 version=$3 confdir=$4 out=$5
mount -t tmpfs -o mode=0755 pxelab-mkinitramfs "$ovl"
mkdir -p "$ovl/upper/modules/$version" "$ovl/work"
mount -t overlay pxelab-lib -o "lowerdir=/usr/lib,upperdir=$ovl/upper,workdir=$ovl/work" /usr/lib
mount --bind "$kroot/lib/modules/$version" "/usr/lib/modules/$version"
mount --bind "$kroot/boot" /boot
exec mkinitramfs -d "$confdir" -k -o "$out" "$version"
"""


def initramfs_conf(modules: str) -> str:
    """initramfs.conf(5) as a diskless-NFS guide writes it: ``MODULES=``, ``BOOT=nfs``."""
    return (
        "# Written by pxelab.machine.payload.initramfs_tools (mkinitramfs -d <this directory>).\n"
        f"MODULES={modules}\n"
        "BUSYBOX=auto\n"
        "KEYMAP=n\n"
        "COMPRESS=gzip\n"
        "DEVICE=\n"
        "NFSROOT=auto\n"
        "RUNSIZE=10%\n"
        "FSTYPE=auto\n"
        "BOOT=nfs\n"
    )


def netdev_wait_hook(seconds: int = NETDEV_WAIT) -> str:
    """A mkinitramfs hook that shortens configure_networking's wait for a network device.

    It fails the build if Debian's line is not there (another initramfs-tools),
    rather than leave a 180 s wait in silently.
    """
    return f"""#!/bin/sh
# pxelab: initramfs-tools waits up to 180 s for a network device before it runs
# ipconfig; lab guests without one should fail in {seconds} s, not 180.
PREREQ=""
prereqs() {{ echo "$PREREQ"; }}
case "$1" in prereqs) prereqs; exit 0 ;; esac
functions="$DESTDIR/scripts/functions"
if ! grep -q '^[[:space:]]*local netdevwait=180$' "$functions"; then
    echo "E: pxelab: no 'local netdevwait=180' in $functions: initramfs-tools changed" >&2
    exit 1
fi
sed -i 's/^\\([[:space:]]*local netdevwait=\\)180$/\\1{seconds}/' "$functions"
"""


def write_confdir(confdir: Path, modules: str, extra_modules: Sequence[str] = ()) -> None:
    """pxelab's /etc/initramfs-tools stand-in: initramfs.conf, modules, one hook."""
    (confdir / "conf.d").mkdir(parents=True)
    (confdir / "scripts").mkdir()
    (confdir / "hooks").mkdir()
    (confdir / "initramfs.conf").write_text(initramfs_conf(modules), encoding="utf-8")
    (confdir / "modules").write_text("".join(f"{m}\n" for m in extra_modules),
                                     encoding="utf-8")
    hook = confdir / "hooks" / "pxelab-netdev-wait"
    hook.write_text(netdev_wait_hook(), encoding="utf-8")
    hook.chmod(0o755)


def host_versions() -> dict[str, str]:
    """``{package: version}`` of :data:`HOST_PACKAGES` as dpkg has them installed."""
    result = subprocess.run(
        ["dpkg-query", "-W", "-f", "${Package} ${db:Status-Status} ${Version}\n",
         *HOST_PACKAGES], capture_output=True, text=True, check=False)
    found = {}
    for line in result.stdout.splitlines():
        name, status, version = [*line.split(" ", 2), "", ""][:3]
        if status == "installed":
            found[name] = version
    missing = [name for name in ("initramfs-tools-core", "klibc-utils") if name not in found]
    if missing:
        raise HostCapabilityError(f"{', '.join(missing)} not installed: apt-get install "
                                  "initramfs-tools klibc-utils (see debian-packages.txt)")
    return found


def packed_modules(destdir: Path) -> tuple[str, ...]:
    """Paths below ``lib/modules/<version>/`` of the kernel modules in an unpacked image."""
    found: set[str] = set()
    for parent, _dirs, files in os.walk(destdir):
        for name in files:
            if not name.endswith(MODULE_SUFFIXES):
                continue
            path = Path(parent, name).relative_to(destdir).as_posix()
            _, marker, rest = path.partition("lib/modules/")
            if marker and "/" in rest:
                found.add(rest.split("/", 1)[1])
    return tuple(sorted(found))


def command(workdir: Path, kernel_root: Path, version: str, confdir: Path,
            output: Path) -> list[str]:
    """The command that runs mkinitramfs in its private mount namespace."""
    return ["unshare", "--mount", "--propagation", "private", "sh", "-euc", NAMESPACE_SCRIPT,
            "pxelab-mkinitramfs", str(workdir / "overlay"), str(kernel_root), version,
            str(confdir), str(output)]


def build(target: Path, kernel_root: Path, version: str, *, modules: str,
          extra_modules: Sequence[str] = (), workdir: Path) -> tuple[str, ...]:
    """Write Debian's initramfs for ``kernel_root`` (an extracted linux-image) to ``target``.

    Returns the module paths packed in it. mkinitramfs's output goes to
    ``target.parent / mkinitramfs.log``.
    """
    for program in ("mkinitramfs", "unshare"):
        if shutil.which(program) is None:
            raise HostCapabilityError(f"{program} not found: apt-get install initramfs-tools "
                                      "klibc-utils util-linux")
    if not (kernel_root / "boot" / f"config-{version}").exists():
        raise PayloadError(f"{kernel_root}/boot/config-{version} missing: mkinitramfs needs "
                           "the kernel's config")
    confdir, tmp = workdir / "conf", workdir / "tmp"
    write_confdir(confdir, modules, extra_modules)
    (workdir / "overlay").mkdir()
    tmp.mkdir()
    argv = command(workdir, kernel_root, version, confdir, target)
    log.info("running (TMPDIR=%s) %s", tmp, " ".join(argv))
    result = subprocess.run(argv, capture_output=True, text=True, check=False,
                            env=dict(os.environ, TMPDIR=str(tmp)))
    output = result.stdout + result.stderr
    (target.parent / LOG_NAME).write_text(output, encoding="utf-8")
    if result.returncode != 0 or not target.exists():
        tail = "\n".join(output.splitlines()[-20:])
        raise PayloadError(f"mkinitramfs for {version} failed ({result.returncode}); "
                           f"command: {' '.join(argv)}\n{tail}")
    kept = sorted(tmp.glob("mkinitramfs_*"))
    if not kept:
        raise PayloadError(f"mkinitramfs -k left no working directory in {tmp}")
    packed = packed_modules(kept[0])
    shutil.rmtree(tmp, ignore_errors=True)
    log.info("initramfs-tools image %s: MODULES=%s, %d modules", target, modules, len(packed))
    return packed
