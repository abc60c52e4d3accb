"""A firmware set: one build of each firmware piece and network boot program.

Every piece is named by its entry in the firmware catalog
(``pxelab/data/firmware/catalog.toml``: ``ovmf-code``, ``seabios``, ``rom-virtio``,
``pxelinux.0``, ``snponly.efi``, ``grub-x86_64-efi`` ...). A set says where each
entry's file is and which version it is:

- ``host``: the files the host's Debian packages installed (versions from dpkg);
- a Debian release (``bookworm``, ``trixie``, ``sid``): the release's packages
  unpacked under ``root`` (:mod:`pxelab.machine.fwsets.debian`);
- a user's TOML file: their own files for some entries, a base set for the rest
  (:mod:`pxelab.machine.fwsets.user`).

Tools that are not firmware (QEMU, tcpdump) always come from the host.
"""

from __future__ import annotations

import functools
import logging
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from pxelab.core.errors import ConfigError, HostCapabilityError
from pxelab.machine import firmware
from pxelab.machine.firmware import Artifact, DescriptorFile, OvmfImage
from pxelab.machine.ipxerom import (
    OVERRIDE_VARIABLE,
    RomKind,
    kind_of_debian_version,
    parse_override,
    rom_kind,
)

log = logging.getLogger(__name__)

HOST = "host"
# The Debian packages a set provides (catalog package names); every other catalog
# entry (qemu, tcpdump) is the host's.
SET_PACKAGES = ("ovmf", "seabios", "ipxe-qemu", "ipxe", "grub-efi-amd64-bin", "grub-common",
                "pxelinux", "syslinux-efi", "syslinux-common", "shim-signed",
                "grub-efi-amd64-signed")
# One catalog entry of each package, to show a set's versions by.
SET_ENTRIES = ("ovmf-code", "seabios", "rom-virtio", "snponly.efi", "grub-x86_64-efi",
               "grub-mkimage", "pxelinux.0", "syslinux.efi", "ldlinux.c32", "shimx64.efi",
               "grubnetx64.efi")
# A user's own OVMF pair, by catalog entry: (code, vars) without and with Secure Boot.
_OVMF_ENTRIES = {False: ("ovmf-code", "ovmf-vars"), True: ("ovmf-code-sb", "ovmf-vars-sb")}
_LOADER = "ld-linux-x86-64.so.2"
_LIBRARY_DIRS = ("usr/lib/x86_64-linux-gnu", "lib/x86_64-linux-gnu")
# Where libc6 puts the loader: bookworm's under lib/, usr-merged releases' under usr/lib/.
_LOADER_DIRS = (*_LIBRARY_DIRS, "usr/lib64", "lib64")


@dataclass(frozen=True)
class UserFile:
    """A user's own file for one catalog entry, and the version to record for it."""

    path: Path
    version: str


@dataclass(frozen=True)
class FirmwareSet:
    """Where each catalog entry's file is, and which package version it came from."""

    name: str
    origin: str  # "the host's packages", "Debian trixie", "/srv/my-ovmf.toml"
    root: Path = Path("/")  # catalog paths are looked up under it
    # Debian package -> version of what is unpacked under root; None: the host's dpkg.
    packages: Mapping[str, str] | None = None
    # Catalog package -> the package that ships its files in this set (sid: ovmf-generic).
    renames: Mapping[str, str] = field(default_factory=dict)
    files: Mapping[str, UserFile] = field(default_factory=dict)
    rom: RomKind | None = None  # what the NIC ROMs' EFI driver is, if the user says so
    file: Path | None = None  # the set file this set was read from, if any

    @property
    def reference(self) -> str:
        """What load_firmware_set() takes to load this set again: its name or its file."""
        return str(self.file) if self.file is not None else self.name

    @property
    def is_host(self) -> bool:
        return self.packages is None

    def __str__(self) -> str:
        return self.name

    # --- files ---------------------------------------------------------------

    def locate(self, name: str) -> Path:
        """The file of catalog entry ``name`` in this set."""
        if name in self.files:
            return self.files[name].path
        artifact = firmware.catalog()[name]
        if self.is_host or artifact.package not in SET_PACKAGES:
            return firmware.locate(name)
        if artifact.descriptor is not None:
            image = self.ovmf(secure_boot=artifact.secure_boot)
            return image.code if artifact.descriptor is DescriptorFile.EXECUTABLE \
                else image.vars_template
        for candidate in artifact.paths:
            if (found := firmware.rebase(self.root, candidate)).exists():
                return found
        raise ConfigError(f"{name} is not in firmware set {self.name} ({self.origin}): none "
                          f"of {[str(p) for p in artifact.paths]} under {self.root}; "
                          f"{self._shipped_by(artifact)} does not ship it")

    def ovmf(self, *, secure_boot: bool = False) -> OvmfImage:
        """OVMF code and VARS template: the user's pair, else the set's descriptors.

        ``secure_boot``: the Secure Boot build with Microsoft's keys enrolled.
        """
        code_entry, vars_entry = _OVMF_ENTRIES[secure_boot]
        code, template = self.files.get(code_entry), self.files.get(vars_entry)
        if code is not None and template is not None:
            return OvmfImage(Path(), code.path, template.path)
        if self.is_host:
            return firmware.find_ovmf(secure_boot=secure_boot)
        return firmware.find_ovmf((self.root / "usr/share/qemu/firmware",),
                                  secure_boot=secure_boot, root=self.root)

    def rom_kind(self, rom: str) -> RomKind:
        """What the EFI driver of NIC ROM entry ``rom`` in this set is."""
        override = os.environ.get(OVERRIDE_VARIABLE)
        if override:
            return parse_override(override)
        if self.rom is not None:
            return self.rom
        if self.is_host or rom in self.files:
            return rom_kind(self.locate(rom))
        version = self.version_of(firmware.catalog()[rom].package)
        kind = firmware_rom_kind(version)
        log.debug("%s of set %s (ipxe-qemu %s): %s", rom, self.name, version, kind)
        return kind

    def tool_command(self, name: str) -> list[str]:
        """How to run tool entry ``name`` of this set: with the set's own C library.

        A newer release's grub-mkimage needs a newer glibc than the host may have,
        so a Debian set's tools run under the set's dynamic loader and libraries.
        """
        tool = str(self.locate(name))
        if self.is_host or name in self.files:
            return [tool]
        loader = next((found for d in _LOADER_DIRS if (found := self.root / d / _LOADER).exists()),
                      None)
        if loader is None:
            raise ConfigError(f"firmware set {self.name} has no {_LOADER} under {self.root} "
                              f"to run {name} with; delete {self.root.parent} to fetch it again")
        libraries = ":".join(str(self.root / d) for d in _LIBRARY_DIRS)
        return [str(loader), "--library-path", libraries, tool]

    # --- versions ------------------------------------------------------------

    def shipper(self, package: str) -> str:
        """The package that ships catalog package ``package``'s files in this set."""
        if self.is_host or package not in SET_PACKAGES:
            return package
        return self.renames.get(package, package)

    def version_of(self, package: str) -> str:
        """Version of catalog package ``package`` in this set."""
        if self.is_host or package not in SET_PACKAGES:
            return firmware.package_version(package)
        assert self.packages is not None
        shipper = self.shipper(package)
        try:
            return self.packages[shipper]
        except KeyError:
            raise ConfigError(f"firmware set {self.name} ({self.origin}) has no package "
                              f"{shipper}") from None

    def versions(self, names: Iterable[str]) -> dict[str, str]:
        """``{package: version}`` of catalog entries ``names`` as this set has them.

        A user's file is recorded under its entry's package with the user's version
        and the set it came from; a host tool under the host's package.
        """
        names = list(names)
        if self.is_host and not any(name in self.files for name in names):
            return firmware.versions_in_use(names)
        found: dict[str, str] = {}
        for name in names:
            artifact = firmware.catalog()[name]
            if name in self.files:
                found[artifact.package] = f"{self.files[name].version} ({self.origin})"
            else:
                found.setdefault(self.shipper(artifact.package),
                                 self.version_of(artifact.package))
        return found

    def same_build(self, names: Iterable[str]) -> None:
        """Entries ``names`` must come from one build (pxelinux.0 refuses another's
        ldlinux.c32): a HostCapabilityError names the versions that differ."""
        names = list(names)
        if self.is_host and not any(n in self.files for n in names):
            firmware.check_same_build(names)
            return
        versions = {name: self.versions([name]) for name in names}
        if len({v for found in versions.values() for v in found.values()}) > 1:
            raise HostCapabilityError(f"firmware set {self.name}: these must come from one "
                                      f"build but do not: {versions}")

    def syslinux_files(self, names: Iterable[str]) -> dict[str, Path]:
        """``{tftp name: path}`` of syslinux entries ``names``, one build checked."""
        names = list(names)
        for name in names:
            if firmware.catalog()[name].build != "syslinux":
                raise ConfigError(f"{name!r} is not part of the syslinux build")
        files = {name: self.locate(name) for name in names}
        self.same_build(names)
        return files

    def _shipped_by(self, artifact: Artifact) -> str:
        package = self.shipper(artifact.package)
        return f"{package} {(self.packages or {}).get(package, '?')}"


def firmware_rom_kind(version: str) -> RomKind:
    """The kind of NIC ROM Debian's ipxe-qemu ``version`` ships."""
    kind = kind_of_debian_version(version)
    if kind is None:
        raise ConfigError(f"cannot tell whether the EFI driver of ipxe-qemu {version}'s ROMs "
                          f"carries iPXE's network stack; set {OVERRIDE_VARIABLE}=ipxe or "
                          "snp-only, or 'ipxe_rom' in a firmware set file")
    return kind


@functools.cache
def host_set() -> FirmwareSet:
    return FirmwareSet(HOST, "the host's packages")
