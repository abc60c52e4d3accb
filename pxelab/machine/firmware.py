"""The firmware catalog: which firmware and boot programs exist, and from where.

``pxelab/data/firmware/catalog.toml`` (shipped in the package;
``$PXELAB_FIRMWARE_CATALOG`` overrides it) names every firmware image, option ROM
and network boot program pxelab can use, the Debian package that ships it and how
to find it. A missing file is a :class:`HostCapabilityError` that names the
package to install.

OVMF is found the way QEMU and libvirt find it, through QEMU's firmware
descriptors (``docs/interop/firmware.json``), never through a fixed path: the
Debian file names changed between releases (OVMF_CODE.fd, OVMF_CODE_4M.fd).
"""

from __future__ import annotations

import dataclasses
import fnmatch
import functools
import json
import logging
import os
import shutil
import subprocess
from collections.abc import Iterable, Mapping, Sequence
from enum import StrEnum
from pathlib import Path
from typing import Any

from pxelab.core.errors import ConfigError, HostCapabilityError
from pxelab.core.paths import data_path
from pxelab.core.tomlfile import read_toml

log = logging.getLogger(__name__)

CATALOG_VARIABLE = "PXELAB_FIRMWARE_CATALOG"

# Searched in this order; a file name found earlier hides the same name later
# (the override rule of QEMU's firmware.json specification).
DESCRIPTOR_DIRS = (
    Path("/etc/qemu/firmware"),
    Path(os.environ.get("XDG_CONFIG_HOME", Path.home() / ".config")) / "qemu" / "firmware",
    Path("/usr/share/qemu/firmware"),
)

# Features that make a firmware unusable for a plain network boot test: Secure
# Boot needs signed NBPs, SMM needs a machine option, enrolled keys both.
_SECURE_FEATURES = frozenset({"secure-boot", "requires-smm", "enrolled-keys"})


class Kind(StrEnum):
    FIRMWARE = "firmware"
    OPTION_ROM = "option-rom"
    NBP = "nbp"
    MODULE = "module"
    DIRECTORY = "directory"
    TOOL = "tool"


class DescriptorFile(StrEnum):
    """Which file of a QEMU firmware descriptor's flash mapping an entry stands for."""

    EXECUTABLE = "executable"
    NVRAM_TEMPLATE = "nvram-template"


@dataclasses.dataclass(frozen=True)
class Artifact:
    """One catalog entry."""

    name: str
    package: str
    kind: Kind
    description: str
    paths: tuple[Path, ...] = ()
    descriptor: DescriptorFile | None = None
    build: str | None = None
    # A descriptor entry: the Secure Boot build with keys enrolled, not the plain one.
    secure_boot: bool = False


@dataclasses.dataclass(frozen=True)
class Catalog:
    path: Path
    artifacts: Mapping[str, Artifact]

    def __getitem__(self, name: str) -> Artifact:
        try:
            return self.artifacts[name]
        except KeyError:
            known = ", ".join(sorted(self.artifacts))
            raise ConfigError(f"{name!r} is not in the firmware catalog {self.path}; "
                              f"known names: {known}") from None

    def by_package(self, package: str) -> list[Artifact]:
        return [a for a in self.artifacts.values() if a.package == package]


@dataclasses.dataclass(frozen=True)
class OvmfImage:
    """A UEFI firmware chosen from QEMU's firmware descriptors."""

    descriptor: Path
    code: Path
    vars_template: Path
    code_format: str = "raw"
    vars_format: str = "raw"


# --- catalog ------------------------------------------------------------------

def load_catalog(path: Path | None = None) -> Catalog:
    """Parse the catalog at ``path`` (default: $PXELAB_FIRMWARE_CATALOG or the package's)."""
    if path is None:
        override = os.environ.get(CATALOG_VARIABLE)
        path = Path(override) if override else data_path("firmware", "catalog.toml")
    data = read_toml(path, "firmware catalog",
                     f"check ${CATALOG_VARIABLE}, or reinstall pxelab (its package data "
                     "is incomplete)")
    return Catalog(path, {name: _artifact(path, name, entry) for name, entry in data.items()})


def _artifact(path: Path, name: str, entry: Any) -> Artifact:
    where = f"firmware catalog {path}, entry [{name}]"
    if not isinstance(entry, dict):
        raise ConfigError(f"{where}: expected a table")
    unknown = set(entry) - {"package", "kind", "description", "paths", "descriptor", "build",
                            "secure_boot"}
    if unknown:
        raise ConfigError(f"{where}: unknown keys {sorted(unknown)}")
    try:
        artifact = Artifact(
            name=name,
            package=str(entry["package"]),
            kind=Kind(entry["kind"]),
            description=str(entry.get("description", "")),
            paths=tuple(Path(p) for p in entry.get("paths", ())),
            descriptor=DescriptorFile(entry["descriptor"]) if "descriptor" in entry else None,
            build=entry.get("build"),
            secure_boot=bool(entry.get("secure_boot", False)),
        )
    except KeyError as missing:
        raise ConfigError(f"{where}: missing key {missing}") from None
    except ValueError as error:
        raise ConfigError(f"{where}: {error}") from None
    if bool(artifact.paths) == (artifact.descriptor is not None):
        raise ConfigError(f"{where}: give exactly one of 'paths' and 'descriptor'")
    return artifact


@functools.cache
def catalog() -> Catalog:
    """The default catalog, parsed once per process."""
    return load_catalog()


def locate(name: str, cat: Catalog | None = None) -> Path:
    """Path of catalog entry ``name`` on this host, or a HostCapabilityError naming the package."""
    artifact = (cat or catalog())[name]
    if artifact.descriptor is not None:
        image = find_ovmf(secure_boot=artifact.secure_boot)
        return image.code if artifact.descriptor is DescriptorFile.EXECUTABLE \
            else image.vars_template
    for candidate in artifact.paths:
        if candidate.exists():
            return candidate
    looked = ", ".join(str(p) for p in artifact.paths)
    raise HostCapabilityError(
        f"{name} ({artifact.description}) not found at {looked}; install the Debian package "
        f"{artifact.package}: apt-get install {artifact.package}")


# --- package versions ---------------------------------------------------------

@functools.cache
def _dpkg_query(package: str) -> tuple[str, str]:
    """(version, source package) of an installed Debian package."""
    if shutil.which("dpkg-query") is None:
        raise HostCapabilityError("dpkg-query not found; pxelab records firmware versions "
                                  "from Debian packages and needs a Debian host")
    command = ["dpkg-query", "--show", "--showformat", "${db:Status-Abbrev}|${Version}|"
               "${source:Package}", package]
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    status, _, rest = result.stdout.partition("|")
    if result.returncode != 0 or not status.startswith("ii"):
        raise HostCapabilityError(f"Debian package {package} is not installed "
                                  f"(dpkg-query said {result.stderr.strip() or status!r}); "
                                  f"apt-get install {package}")
    version, _, source = rest.partition("|")
    return version, source


def package_version(package: str) -> str:
    """Installed version of Debian package ``package`` (HostCapabilityError if absent)."""
    return _dpkg_query(package)[0]


def _package_of(name: str, cat: Catalog) -> str:
    if name in cat.artifacts:
        return cat.artifacts[name].package
    if cat.by_package(name):
        return name
    raise ConfigError(f"{name!r} is neither an entry nor a package of the firmware catalog "
                      f"{cat.path}")


def versions_in_use(names: Iterable[str], cat: Catalog | None = None) -> dict[str, str]:
    """``{package: version}`` for catalog entries (or catalog packages) ``names``."""
    cat = cat or catalog()
    packages = sorted({_package_of(name, cat) for name in names})
    return {package: package_version(package) for package in packages}


def check_same_build(names: Iterable[str], cat: Catalog | None = None) -> None:
    """Make sure entries ``names`` come from one build of one source package.

    PXELINUX refuses an ldlinux.c32 from another build ("Failed to load
    ldlinux.c32"), so the packages shipping them must be at the same version
    of the same source package.
    """
    cat = cat or catalog()
    builds = {name: _dpkg_query(cat[name].package) for name in names}
    if len(set(builds.values())) > 1:
        found = ", ".join(f"{name} from {cat[name].package} {version} (source {source})"
                          for name, (version, source) in sorted(builds.items()))
        raise HostCapabilityError(f"these must come from one build but do not: {found}; "
                                  "upgrade the packages to the same version")


# --- OVMF through QEMU firmware descriptors -----------------------------------

def _descriptor_files(dirs: Sequence[Path]) -> list[Path]:
    chosen: dict[str, Path] = {}
    for directory in dirs:
        if directory.is_dir():
            for path in sorted(directory.glob("*.json")):
                chosen.setdefault(path.name, path)
    return [chosen[name] for name in sorted(chosen)]


def _ovmf_from(data: Any, machine: str, secure_boot: bool,
               root: Path = Path("/")) -> OvmfImage | str:
    """The image a parsed descriptor describes if it suits ``machine``, else why not.

    ``root`` is where the descriptor's absolute file names are (a firmware set's
    unpacked packages, or the host's /).
    """
    if "uefi" not in data.get("interface-types", ()):
        return "not UEFI"
    mapping = data.get("mapping", {})
    if mapping.get("device") != "flash":
        return f"device {mapping.get('device')!r}, not flash"
    if not any(t.get("architecture") == "x86_64"
               and any(fnmatch.fnmatch(machine, m) for m in t.get("machines", ()))
               for t in data.get("targets", ())):
        return f"no x86_64 target for machine {machine}"
    features = set(data.get("features", ()))
    if not secure_boot and features & _SECURE_FEATURES:
        return f"features {sorted(features & _SECURE_FEATURES)}"
    if secure_boot and "secure-boot" not in features:
        return "no secure-boot feature"
    try:
        code, template = mapping["executable"], mapping["nvram-template"]
        image = OvmfImage(Path(), rebase(root, code["filename"]),
                          rebase(root, template["filename"]),
                          code.get("format", "raw"), template.get("format", "raw"))
    except (KeyError, TypeError):
        return "no executable + nvram-template pair (stateless or malformed)"
    for file in (image.code, image.vars_template):
        if not file.exists():
            return f"{file} does not exist"
    return image


def rebase(root: Path, path: str | Path) -> Path:
    """Absolute ``path`` as found under ``root`` (itself when ``root`` is /)."""
    return root / Path(path).relative_to("/") if Path(path).is_absolute() else root / path


def find_ovmf(dirs: Sequence[Path] = DESCRIPTOR_DIRS, *, machine: str = "pc-q35-latest",
              secure_boot: bool = False, root: Path = Path("/")) -> OvmfImage:
    """Pick the first x86_64 UEFI flash firmware for ``machine`` from QEMU's descriptors.

    ``machine`` is matched against the descriptors' machine globs ("pc-q35-*");
    the default stands for whatever version ``-machine q35`` resolves to.
    """
    files = _descriptor_files(dirs)
    for path in files:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as error:
            log.warning("firmware descriptor %s unreadable: %s", path, error)
            continue
        found = _ovmf_from(data, machine, secure_boot, root)
        if isinstance(found, str):
            log.debug("firmware descriptor %s skipped: %s", path, found)
            continue
        log.debug("OVMF from %s: code %s, vars template %s", path, found.code,
                  found.vars_template)
        return dataclasses.replace(found, descriptor=path)
    wanted = "with" if secure_boot else "without"
    raise HostCapabilityError(
        f"no x86_64 UEFI firmware {wanted} Secure Boot for {machine} among the QEMU firmware "
        f"descriptors {[str(p) for p in files] or 'none'} (looked in "
        f"{', '.join(str(d) for d in dirs)}); install the Debian package ovmf: "
        "apt-get install ovmf")
