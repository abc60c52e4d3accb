"""Fixed waits of OVMF's network boot: what a boot path costs whatever the server answers.

``pxelab/data/firmware/fixed-waits.toml`` (shipped in the package;
``$PXELAB_FIXED_WAITS`` overrides it) lists, per EDK2 release that OVMF is built
from, each wait a boot path cannot avoid (the DHCPv4 offer windows of PXE, of HTTP
boot and of the IP4 driver's own DHCP), how long it is and where in EDK2's source it
happens. A scenario names the waits on its path (``Scenario.fixed_waits``); the
matrix benchmark adds them to the case's direct boot to get the case's physical
limit::

    waits = fixed_waits.on_path(("pxe4-offers", "default-address-offers"),
                                "2025.02-8+deb13u1")  # edk2-stable202502: 8 s
    limit = direct_seconds + waits.seconds

Which release an OVMF build is comes from :mod:`pxelab.machine.edk2`.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pxelab.core.errors import ConfigError
from pxelab.core.paths import data_path
from pxelab.core.tomlfile import read_toml
from pxelab.machine.edk2 import Edk2Release

TABLE_VARIABLE = "PXELAB_FIXED_WAITS"
_RELEASE_KEYS = frozenset({"read_at", "note"})
_WAIT_KEYS = frozenset({"seconds", "what", "cite"})


@dataclass(frozen=True)
class FixedWait:
    """One wait of one EDK2 release and where its source says so."""

    name: str
    seconds: float
    what: str
    cite: tuple[str, ...]  # "file:line function: what happens there"


@dataclass(frozen=True)
class ReleaseWaits:
    """The fixed waits of the EDK2 release an OVMF build comes from."""

    release: Edk2Release
    read_at: str  # the git ref the citations were read at
    note: str
    waits: Mapping[str, FixedWait]

    @property
    def tag(self) -> str:
        return self.release.tag

    def wait(self, name: str) -> FixedWait:
        try:
            return self.waits[name]
        except KeyError:
            raise ConfigError(f"EDK2 {self.tag} has no fixed wait {name!r} in the fixed-wait "
                              f"table; known: {', '.join(sorted(self.waits))}") from None

    def seconds_of(self, names: Iterable[str]) -> float:
        """The waits ``names`` together, in seconds."""
        return sum(self.wait(name).seconds for name in names)


@dataclass(frozen=True)
class WaitTable:
    """Every EDK2 release the table knows."""

    path: Path
    releases: Mapping[Edk2Release, ReleaseWaits]

    def release_of(self, ovmf_version: str) -> ReleaseWaits | None:
        """The waits of the release OVMF ``ovmf_version`` (Debian's) comes from; None if
        the version names no release (a user's own build) or the table lacks it."""
        release = Edk2Release.of(ovmf_version)
        return None if release is None else self.releases.get(release)

    @property
    def names(self) -> frozenset[str]:
        """Every wait name any release has."""
        return frozenset(name for release in self.releases.values() for name in release.waits)


@dataclass(frozen=True)
class PathWaits:
    """The fixed waits on one boot path with one OVMF build.

    ``seconds`` is None when the table does not know the build's EDK2 release
    (``problem`` says which build), 0 on a path without waits.
    """

    names: tuple[str, ...]
    release: ReleaseWaits | None
    problem: str = ""

    @property
    def waits(self) -> tuple[FixedWait, ...]:
        if self.release is None:
            return ()
        return tuple(self.release.wait(name) for name in self.names)

    @property
    def seconds(self) -> float | None:
        if not self.names:
            return 0.0
        return None if self.release is None else self.release.seconds_of(self.names)


def on_path(names: Iterable[str], ovmf_version: str, table_: WaitTable | None = None
            ) -> PathWaits:
    """The waits ``names`` (a scenario's ``fixed_waits``) as OVMF ``ovmf_version`` has them."""
    names = tuple(names)
    if not names:
        return PathWaits((), None)
    found = table_ or table()
    release = found.release_of(ovmf_version)
    if release is None:
        known = ", ".join(str(r) for r in sorted(found.releases))
        return PathWaits(names, None, f"OVMF {ovmf_version} is from an EDK2 release that "
                                      f"{found.path} does not list (it has {known})")
    for name in names:
        release.wait(name)  # a ConfigError for a name the release lacks
    return PathWaits(names, release)


def load_table(path: Path | None = None) -> WaitTable:
    """Parse the table at ``path`` (default: $PXELAB_FIXED_WAITS or the package's)."""
    if path is None:
        override = os.environ.get(TABLE_VARIABLE)
        path = Path(override) if override else data_path("firmware", "fixed-waits.toml")
    data = read_toml(path, "fixed-wait table",
                     f"check ${TABLE_VARIABLE}, or reinstall pxelab (its package data "
                     "is incomplete)")
    releases = [_release(path, version, entry) for version, entry in data.items()]
    return WaitTable(path, {waits.release: waits for waits in releases})


@functools.cache
def table() -> WaitTable:
    """The default table, parsed once per process."""
    return load_table()


def _release(path: Path, version: str, entry: Any) -> ReleaseWaits:
    where = f"fixed-wait table {path}, [\"{version}\"]"
    release = Edk2Release.of(version)
    if release is None or str(release) != version:
        raise ConfigError(f"{where}: key it by the EDK2 release as YYYY.MM, e.g. \"2025.02\"")
    if not isinstance(entry, dict):
        raise ConfigError(f"{where}: expected a table")
    fields = {k: v for k, v in entry.items() if not isinstance(v, dict)}
    if unknown := set(fields) - _RELEASE_KEYS:
        raise ConfigError(f"{where}: unknown keys {sorted(unknown)}")
    if missing := _RELEASE_KEYS - set(fields):
        raise ConfigError(f"{where}: missing keys {sorted(missing)}")
    waits = {name: _wait(f"{where}.{name}", name, spec)
             for name, spec in entry.items() if isinstance(spec, dict)}
    return ReleaseWaits(release, str(fields["read_at"]), str(fields["note"]), waits)


def _wait(where: str, name: str, spec: dict[str, Any]) -> FixedWait:
    if unknown := set(spec) - _WAIT_KEYS:
        raise ConfigError(f"{where}: unknown keys {sorted(unknown)}")
    if missing := _WAIT_KEYS - set(spec):
        raise ConfigError(f"{where}: missing keys {sorted(missing)}")
    seconds, cite = spec["seconds"], spec["cite"]
    if isinstance(seconds, bool) or not isinstance(seconds, int | float) or seconds < 0:
        raise ConfigError(f"{where}: seconds must be a number >= 0, not {seconds!r}")
    if not isinstance(cite, list) or not cite or not all(isinstance(c, str) for c in cite):
        raise ConfigError(f"{where}: cite must list where the source says so, as "
                          "\"file:line function: what happens there\"")
    return FixedWait(name, float(seconds), str(spec["what"]), tuple(cite))
