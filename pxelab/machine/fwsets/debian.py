"""Firmware sets of Debian releases, fetched from the archive and unpacked, never installed.

``debian_set("trixie", cache)`` resolves the release's firmware packages with pxelab's
own apt configuration (signatures checked with debian-archive-keyring, the host's
sources ignored: :mod:`pxelab.machine.payload.archive`), downloads them with
``apt-get download`` and unpacks them with ``dpkg-deb -x`` into
``<cache>/firmware/<release>-<key>/root``, once per set of versions::

    root/usr/share/OVMF/OVMF_CODE_4M.fd, root/usr/share/qemu/firmware/*.json
    root/usr/share/seabios/bios-256k.bin, root/usr/share/qemu/efi-virtio.rom ...

The release's C library comes along: its grub-mkimage may need a newer glibc than
the host has, and runs under the set's own loader (FirmwareSet.tool_command).

Offline, with lists too old to refresh, the newest set already unpacked for the
release is used, with a warning.
"""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path

from pxelab.core.errors import PayloadError
from pxelab.machine.fwsets.model import SET_PACKAGES, FirmwareSet
from pxelab.machine.payload import debs
from pxelab.machine.payload.archive import MAX_AGE, SUITES, AptRoot
from pxelab.machine.payload.cache import build_once, newest_unpacked, prune_unpacked

log = logging.getLogger(__name__)

MANIFEST = "firmware-set.json"
# Bump when the unpacked tree changes for the same package versions.
BUILDER_VERSION = 1
# Where a release ships a catalog package's files under another name.
RENAMES: dict[str, dict[str, str]] = {
    # sid's ovmf is a metapackage (the x86_64 images are in ovmf-generic), and its
    # grub-common an empty one for grub2-common (grub-mkimage).
    "sid": {"ovmf": "ovmf-generic", "grub-common": "grub2-common"},
}
# What the release's grub-mkimage links against (readelf -d: liblzma, libdevmapper,
# libc) and what those link against in turn.
RUNTIME_PACKAGES = ("libc6", "liblzma5", "libdevmapper1.02.1", "libselinux1", "libudev1",
                    "libpcre2-8-0", "libcap2")
RELEASES = tuple(SUITES)


def packages_of(release: str) -> tuple[str, ...]:
    """The binary packages that make up ``release``'s firmware set."""
    renames = RENAMES.get(release, {})
    return (*(renames.get(p, p) for p in SET_PACKAGES), *RUNTIME_PACKAGES)


def set_key(release: str, versions: dict[str, str]) -> str:
    inputs = {"builder": BUILDER_VERSION, "release": release,
              "packages": dict(sorted(versions.items()))}
    return hashlib.sha256(json.dumps(inputs, sort_keys=True).encode()).hexdigest()[:16]


def debian_set(release: str, cache_dir: Path) -> FirmwareSet:
    """The firmware set of Debian ``release``, fetched and unpacked if not cached yet."""
    apt = AptRoot.in_cache(cache_dir, release)  # a ConfigError for an unknown release
    try:
        apt.refresh()
        stanzas = debs.show(apt, *packages_of(release))
    except PayloadError as error:
        cached = _newest_cached(release, cache_dir)
        if cached is None:
            raise
        log.warning("cannot resolve Debian %s's firmware packages (%s); using the set "
                    "unpacked on %s", release, error, cached.name)
        return _loaded(release, cached)
    versions = {name: stanzas[name]["Version"] for name in packages_of(release)}
    final = cache_dir / "firmware" / f"{release}-{set_key(release, versions)}"

    def build(tmp: Path) -> None:
        for name, version in versions.items():
            deb = debs.download(apt, debs.DebPackage(name, version), cache_dir / "debs")
            debs.extract(deb, tmp / "root")
        manifest = {"release": release, "packages": versions}
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")

    if build_once(final, MANIFEST, build):
        log.info("unpacked Debian %s's firmware set in %s", release, final)
        _prune(release, cache_dir, final)
    return _loaded(release, final)


def _loaded(release: str, directory: Path) -> FirmwareSet:
    manifest = json.loads((directory / MANIFEST).read_text(encoding="utf-8"))
    return FirmwareSet(release, f"Debian {release}", directory / "root",
                       packages=manifest["packages"], renames=RENAMES.get(release, {}))


def _prune(release: str, cache_dir: Path, keep: Path) -> None:
    prune_unpacked(cache_dir / "firmware", release, MANIFEST, keep=keep, max_age=MAX_AGE,
                   what="firmware set")


def _newest_cached(release: str, cache_dir: Path) -> Path | None:
    return newest_unpacked(cache_dir / "firmware", release, MANIFEST)
