"""What the EFI driver in QEMU's iPXE option ROM can do: boot by itself, or drive the NIC only.

An ``efi-<nic>.rom`` holds a BIOS image and an EFI driver. Up to Debian 12 the EFI
driver is iPXE with its network stack: OVMF boots the LoadFile it installs, and that
runs iPXE on the NIC. From ipxe 1.21.1+git20250317.42a29d56+dfsg-1 on (Debian 13),
the EFI driver is an SNP driver only: OVMF runs its own PXE over it, and iPXE has to
be chain-loaded (snponly.efi) to run a script.

The EFI image in the ROM is EFI-compressed in the newer builds, so its strings cannot
be read without a decompressor; the Debian version of the package that owns the ROM
file says which build it is. ``$PXELAB_IPXE_ROM`` (``ipxe`` or ``snp-only``) overrides
that, for a ROM no package owns or a build this rule does not know.
"""

from __future__ import annotations

import functools
import logging
import os
import re
import shutil
import subprocess
from enum import StrEnum
from pathlib import Path

from pxelab.core.errors import ConfigError, HostCapabilityError
from pxelab.machine.firmware import package_version

log = logging.getLogger(__name__)

OVERRIDE_VARIABLE = "PXELAB_IPXE_ROM"


class RomKind(StrEnum):
    """What the EFI driver of an iPXE option ROM is."""

    IPXE = "ipxe"  # iPXE with its stack: OVMF boots the driver's LoadFile
    SNP_ONLY = "snp-only"  # an SNP network driver only: OVMF's own PXE runs over it


# Debian's changelog of src:ipxe, 1.21.1+git20250317.42a29d56+dfsg-1: "d/p/
# reduce_efirom_size.patch: remove unnecessary objects" (to keep efi-*.rom within
# 256 KiB, #1095073) removed iPXE's stack from the ROMs' EFI images; NEWS.Debian of
# ipxe-qemu (Closes: #1101493) says so and to chain-load iPXE instead. Every Debian
# version of ipxe since 2019 carries the git snapshot date ("+git-20190125.",
# "+git20250501."), and the change came with the snapshot of 2025-03-17.
SNP_ONLY_SINCE_SNAPSHOT = 20250317
_SNAPSHOT = re.compile(r"\+git-?(?P<date>\d{8})\.")
# Releases after 1.21.1 (2.0.0+dfsg-5 in sid) carry no snapshot date; their
# changelog only refreshes the patches, reduce_efirom_size.patch among them.
LAST_SNAPSHOT_RELEASE = (1, 21, 1)
_UPSTREAM = re.compile(r"(?:\d+:)?(\d+)\.(\d+)\.(\d+)")


def kind_of_debian_version(version: str) -> RomKind | None:
    """The kind of ROM Debian's ipxe-qemu ``version`` ships; None for a version this rule
    does not know (no git snapshot date, and not a release after 1.21.1)."""
    upstream = _UPSTREAM.match(version)
    if upstream and tuple(int(n) for n in upstream.groups()) > LAST_SNAPSHOT_RELEASE:
        return RomKind.SNP_ONLY
    found = _SNAPSHOT.search(version)
    if found is None:
        return None
    return RomKind.SNP_ONLY if int(found["date"]) >= SNP_ONLY_SINCE_SNAPSHOT else RomKind.IPXE


def parse_override(value: str) -> RomKind:
    """``$PXELAB_IPXE_ROM``'s value as a RomKind, or a ConfigError listing the choices."""
    try:
        return RomKind(value.strip())
    except ValueError:
        choices = ", ".join(kind.value for kind in RomKind)
        raise ConfigError(f"{OVERRIDE_VARIABLE}={value!r} is not a ROM kind; choose one of: "
                          f"{choices}") from None


def rom_kind(rom: Path) -> RomKind:
    """What the EFI driver of option ROM file ``rom`` is: the override, else by its package."""
    override = os.environ.get(OVERRIDE_VARIABLE)
    if override:
        return parse_override(override)
    package = _owning_package(rom)
    version = package_version(package)
    kind = kind_of_debian_version(version)
    if kind is None:
        raise ConfigError(f"cannot tell whether the EFI driver of {rom} ({package} {version}) "
                          f"carries iPXE's network stack; set {OVERRIDE_VARIABLE}=ipxe if "
                          "OVMF boots iPXE from it, else snp-only")
    log.debug("%s from %s %s: %s", rom, package, version, kind)
    return kind


@functools.cache
def _owning_package(path: Path) -> str:
    """The Debian package that installed ``path`` (dpkg-query -S)."""
    if shutil.which("dpkg-query") is None:
        raise HostCapabilityError(f"dpkg-query not found, so the package of {path} is unknown; "
                                  f"set {OVERRIDE_VARIABLE}=ipxe or snp-only")
    result = subprocess.run(["dpkg-query", "--search", str(path)], capture_output=True,
                            text=True, check=False)
    # "ipxe-qemu: /usr/share/qemu/efi-virtio.rom"; a diversion adds "diversion by" lines.
    owners = [line.partition(": ")[0] for line in result.stdout.splitlines()
              if line.endswith(f": {path}") and not line.startswith("diversion ")]
    if result.returncode != 0 or not owners:
        raise ConfigError(f"no Debian package owns the option ROM {path}, so its kind is "
                          f"unknown; set {OVERRIDE_VARIABLE}=ipxe if its EFI driver carries "
                          "iPXE's stack, else snp-only")
    return owners[0].split(",")[0].split(":")[0]  # "pkg:amd64" or "a, b": the first
