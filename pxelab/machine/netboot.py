"""Debian's official netboot tree of a release, fetched from the archive and unpacked.

``netboot_tree("bookworm")`` resolves ``debian-installer-12-netboot-amd64`` with
pxelab's own apt configuration (signatures checked with debian-archive-keyring, the
host's sources ignored: :mod:`pxelab.machine.payload.archive`), downloads it with
``apt-get download`` and unpacks it with ``dpkg-deb -x`` into
``<cache>/netboot/<release>-<version>/root``, once per package version, under the
payload cache's lock. Nothing in the tree is changed: it is what a TFTP server of
a real site serves. The package holds two trees,
``usr/lib/debian-installer/images/<N>/amd64/{text,gtk}``; each is a TFTP root::

    pxelinux.0, ldlinux.c32, pxelinux.cfg/   symlinks into debian-installer/amd64/
    debian-installer/amd64/pxelinux.0        PXELINUX; pxelinux.cfg/default menus
    debian-installer/amd64/boot-screens/     vesamenu.c32 and its menus (timeout 0)
    debian-installer/amd64/bootnetx64.efi    shim: fetches grubx64.efi beside itself
    debian-installer/amd64/grubx64.efi       signed GRUB, prefix /debian-installer/amd64/grub
    debian-installer/amd64/grub/grub.cfg     GRUB's menu (no timeout: it waits)
    debian-installer/amd64/{linux,initrd.gz} the installer's kernel and initrd
    version.info                             "Installer build: 20230607+deb12u15"

The symlinks stay inside the tree, which pxelab's server follows (it refuses only
those that leave the root). Offline, with lists too old to refresh, the newest tree
already unpacked for the release is used, with a warning.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path, PurePosixPath

from pxelab.core.errors import ConfigError, PayloadError
from pxelab.machine.payload import debs
from pxelab.machine.payload.archive import MAX_AGE, AptRoot
from pxelab.machine.payload.cache import (
    build_once,
    default_cache_dir,
    newest_unpacked,
    prune_unpacked,
)

log = logging.getLogger(__name__)

# The Debian releases whose netboot package pxelab knows, with their version number
# (part of the package's name and of the path inside it).
RELEASES: dict[str, int] = {"bookworm": 12, "trixie": 13}
MANIFEST = "netboot.json"
# What the firmware fetches first: PXELINUX for BIOS, shim for UEFI (shim then fetches
# grubx64.efi from its own directory; grubx64.efi may also be the NBP, without shim).
BIOS_NBP = "pxelinux.0"
UEFI_NBP = "debian-installer/amd64/bootnetx64.efi"
UEFI_GRUB = "debian-installer/amd64/grubx64.efi"
KERNEL = "debian-installer/amd64/linux"
INITRD = "debian-installer/amd64/initrd.gz"
# Files every tree must have for both firmware types to boot it.
REQUIRED = (BIOS_NBP, "ldlinux.c32", "pxelinux.cfg/default", UEFI_NBP, UEFI_GRUB,
            "debian-installer/amd64/grub/grub.cfg", KERNEL, INITRD)


class NetbootFlavour(StrEnum):
    """Which of the package's two trees."""

    TEXT = "text"  # the newt installer: the one that draws on a serial console
    GTK = "gtk"  # the graphical installer: needs a framebuffer


@dataclass(frozen=True)
class NetbootTree:
    """One unpacked netboot tree: ``root`` is the directory a TFTP server serves."""

    release: str
    version: str  # the package's, e.g. 20230607+deb12u15
    flavour: NetbootFlavour
    root: Path

    @property
    def package(self) -> str:
        return package_name(self.release)

    def check(self) -> None:
        """Raise PayloadError naming the :data:`REQUIRED` files the tree lacks."""
        missing = [name for name in REQUIRED if not (self.root / name).is_file()]
        if missing:
            raise PayloadError(f"{self.package} {self.version} has no {', '.join(missing)} "
                               f"under {self.root}: the package's layout changed; look at "
                               "its file list (dpkg-deb -c) and update pxelab/machine/netboot.py")


def release_number(release: str) -> int:
    """Debian's version number of ``release``; a ConfigError lists the known ones."""
    try:
        return RELEASES[release]
    except KeyError:
        raise ConfigError(f"no netboot tree for release {release!r}: pxelab knows "
                          f"{', '.join(RELEASES)} (add it to RELEASES in "
                          "pxelab/machine/netboot.py)") from None


def package_name(release: str) -> str:
    """``debian-installer-<N>-netboot-amd64`` for ``release``."""
    return f"debian-installer-{release_number(release)}-netboot-amd64"


def tree_path(release: str, flavour: NetbootFlavour) -> PurePosixPath:
    """Where the package puts the tree of ``flavour``, relative to its root."""
    return PurePosixPath(f"usr/lib/debian-installer/images/{release_number(release)}/amd64/"
                         f"{flavour}")


def netboot_tree(release: str = "bookworm", cache_dir: Path | None = None,
                 flavour: NetbootFlavour = NetbootFlavour.TEXT) -> NetbootTree:
    """The netboot tree of Debian ``release``, fetched and unpacked if not cached yet."""
    name = package_name(release)  # a ConfigError for an unknown release
    cache = cache_dir if cache_dir is not None else default_cache_dir()
    apt = AptRoot.in_cache(cache, release)
    try:
        apt.refresh()
        version = debs.show(apt, name)[name]["Version"]
    except PayloadError as error:
        cached = _newest_cached(release, cache)
        if cached is None:
            raise
        log.warning("cannot resolve %s (%s); using the tree unpacked in %s", name, error,
                    cached)
        return _loaded(cached, flavour)
    final = cache / "netboot" / f"{release}-{version.replace(':', '_')}"

    def build(tmp: Path) -> None:
        deb = debs.download(apt, debs.DebPackage(name, version), cache / "debs")
        debs.extract(deb, tmp / "root")
        manifest = {"release": release, "package": name, "version": version}
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")

    if build_once(final, MANIFEST, build):
        log.info("unpacked %s %s in %s", name, version, final)
        _prune(release, cache, final)
    return _loaded(final, flavour)


def _loaded(directory: Path, flavour: NetbootFlavour) -> NetbootTree:
    manifest = json.loads((directory / MANIFEST).read_text(encoding="utf-8"))
    release = manifest["release"]
    tree = NetbootTree(release, manifest["version"], flavour,
                       directory / "root" / tree_path(release, flavour))
    tree.check()
    return tree


def _prune(release: str, cache_dir: Path, keep: Path) -> None:
    prune_unpacked(cache_dir / "netboot", release, MANIFEST, keep=keep, max_age=MAX_AGE,
                   what="netboot tree")


def _newest_cached(release: str, cache_dir: Path) -> Path | None:
    return newest_unpacked(cache_dir / "netboot", release, MANIFEST)
