"""Firmware sets a user describes in a TOML file: their own builds over a base set.

::

    # my-ovmf.toml
    name = "edk2-ci"          # default: the file's stem
    base = "trixie"           # host, bookworm, trixie or sid (default: host)
    ipxe_rom = "snp-only"     # optional: what the NIC ROMs' EFI driver is

    [files.ovmf-code]         # a firmware catalog entry (pxelab/data/firmware/catalog.toml)
    path = "build/OVMF_CODE_4M.fd"     # relative to this file
    version = "edk2 ci 2026.11.3"     # recorded with every result
    [files.ovmf-vars]
    path = "build/OVMF_VARS_4M.fd"
    version = "edk2 ci 2026.11.3"

Every entry not named comes from the base set. OVMF code and VARS go together.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from pxelab.core.errors import ConfigError
from pxelab.core.tomlfile import read_toml
from pxelab.machine import firmware
from pxelab.machine.fwsets.model import FirmwareSet, UserFile
from pxelab.machine.ipxerom import RomKind

_KEYS = {"name", "base", "ipxe_rom", "files"}
_FILE_KEYS = {"path", "version"}


def user_set(path: Path, load_base: Callable[[str], FirmwareSet]) -> FirmwareSet:
    """The set ``path`` describes; ``load_base(name)`` loads its base set."""
    data = read_toml(path, "firmware set file")
    unknown = set(data) - _KEYS
    if unknown:
        raise ConfigError(f"firmware set file {path}: unknown keys {sorted(unknown)}; "
                          f"known: {sorted(_KEYS)}")
    base_name = str(data.get("base", "host"))
    if base_name.endswith(".toml"):
        raise ConfigError(f"firmware set file {path}: base must be host or a Debian release, "
                          f"not another file ({base_name})")
    files = {entry: _user_file(path, entry, spec)
             for entry, spec in dict(data.get("files", {})).items()}
    for code, template in (("ovmf-code", "ovmf-vars"), ("ovmf-code-sb", "ovmf-vars-sb")):
        if (code in files) != (template in files):
            raise ConfigError(f"firmware set file {path}: give [files.{code}] and "
                              f"[files.{template}] together (a VARS template fits one build)")
    base = load_base(base_name)
    return replace(base, name=str(data.get("name", path.stem)), origin=str(path), file=path,
                   files={**base.files, **files}, rom=_rom(path, data.get("ipxe_rom")))


def _user_file(path: Path, entry: str, spec: Any) -> UserFile:
    where = f"firmware set file {path}, [files.{entry}]"
    firmware.catalog()[entry]  # a ConfigError listing the known entries
    if not isinstance(spec, dict) or set(spec) - _FILE_KEYS or "path" not in spec:
        raise ConfigError(f"{where}: expected path = \"...\" and version = \"...\"")
    version = str(spec.get("version", "")).strip()
    if not version:
        raise ConfigError(f"{where}: give the version to record, e.g. version = \"edk2 ci 42\"")
    file = (path.parent / str(spec["path"])).resolve()
    if not file.exists():
        raise ConfigError(f"{where}: {file} does not exist")
    return UserFile(file, version)


def _rom(path: Path, value: Any) -> RomKind | None:
    if value is None:
        return None
    try:
        return RomKind(str(value))
    except ValueError:
        choices = ", ".join(k.value for k in RomKind)
        raise ConfigError(f"firmware set file {path}: ipxe_rom = {value!r}; choose one of "
                          f"{choices}") from None
