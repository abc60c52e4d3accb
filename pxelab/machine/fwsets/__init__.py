"""Firmware sets: which build of each firmware piece and boot program a guest gets.

``load_firmware_set("trixie")`` (or ``"host"``, ``"sid"``, ``"./my-ovmf.toml"``) gives a
:class:`FirmwareSet`; the lab hands QEMU every file from it explicitly and records
its versions with the result.
"""

from __future__ import annotations

import functools
from pathlib import Path

from pxelab.core.errors import ConfigError
from pxelab.machine.fwsets.debian import RELEASES, debian_set
from pxelab.machine.fwsets.model import HOST, SET_ENTRIES, FirmwareSet, UserFile, host_set
from pxelab.machine.fwsets.user import user_set
from pxelab.machine.payload.cache import default_cache_dir

__all__ = ["HOST", "RELEASES", "SET_ENTRIES", "FirmwareSet", "UserFile", "is_set_file",
           "load_firmware_set", "parse_set_names"]


def is_set_file(name: str) -> bool:
    return name.endswith(".toml")


def parse_set_names(value: str) -> tuple[str, ...]:
    """``"bookworm,trixie,./my.toml"`` as checked names (files must exist)."""
    names = tuple(dict.fromkeys(n.strip() for n in value.split(",") if n.strip()))
    if not names:
        raise ConfigError("an empty firmware set list selects nothing; e.g. bookworm,trixie,sid")
    for name in names:
        if is_set_file(name):
            if not Path(name).is_file():
                raise ConfigError(f"firmware set file {name} not found")
        elif name != HOST and name not in RELEASES:
            raise ConfigError(f"unknown firmware set {name!r}; choose {HOST}, "
                              f"{', '.join(RELEASES)} or a .toml file")
    return names


def load_firmware_set(name: str, cache_dir: Path | None = None) -> FirmwareSet:
    """The set ``name``: host, a Debian release, or a TOML file (see :mod:`.user`)."""
    return _load(name, cache_dir if cache_dir is not None else default_cache_dir())


@functools.cache
def _load(name: str, cache_dir: Path) -> FirmwareSet:
    if is_set_file(name):
        return user_set(Path(name).resolve(), lambda base: _load(base, cache_dir))
    if name == HOST:
        return host_set()
    if name not in RELEASES:
        parse_set_names(name)  # the ConfigError that lists the choices
    return debian_set(name, cache_dir)
