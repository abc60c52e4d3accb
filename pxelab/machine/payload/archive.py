"""pxelab's own apt configuration: the Debian archive the payload's packages come from.

The payload must be the same on every host, so its packages are never resolved with
the host's sources (a Debian 12 host, a Debian 13 host, or a host without the
security suite would each pick another kernel). apt-get and apt-cache run with
``-o`` options that replace the host's sources, pins, package lists and dpkg status
with pxelab's own under ``<cache>/apt/<suite>/``::

    etc/sources.list            empty (apt reads it; the host's must not count)
    etc/sources.list.d/pxelab.sources   the suite's deb822 sources, Signed-By
    etc/preferences.d/          empty (no host pins)
    state/lists/                the suite's Packages indexes
    state/status                empty: nothing counts as installed
    state/updated               the sources text of the last successful update
    cache/

The host's apt.conf.d parts still apply: they carry the proxy, and validity
settings that the host's network needs to reach the mirror at all.

Lists older than :data:`MAX_AGE` are refreshed, under a file lock because pytest-xdist
workers resolve in parallel; two hosts refreshing on the same day see the same
archive, so they pick the same versions.
"""

from __future__ import annotations

import logging
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from pxelab.core.errors import ConfigError, HostCapabilityError, PayloadError
from pxelab.machine.payload.cache import file_lock

log = logging.getLogger(__name__)

DEFAULT_SUITE = "bookworm"
MIRROR = "http://deb.debian.org/debian"
SECURITY_MIRROR = "http://deb.debian.org/debian-security"
COMPONENT = "main"
ARCHITECTURE = "amd64"
KEYRING = Path("/usr/share/keyrings/debian-archive-keyring.gpg")
MAX_AGE = 24 * 3600.0  # seconds


@dataclass(frozen=True)
class Suite:
    """A Debian release as pxelab fetches it: its suites on the main and security mirrors."""

    name: str
    archive: tuple[str, ...]  # suites under MIRROR
    security: tuple[str, ...] = ()  # suites under SECURITY_MIRROR


def _stable(name: str) -> Suite:
    return Suite(name, (name, f"{name}-updates"), (f"{name}-security",))


# sid has no updates or security suites: fixes go straight into sid itself.
SUITES: dict[str, Suite] = {s.name: s for s in (
    _stable("bookworm"), _stable("trixie"), Suite("sid", ("sid",)),
)}


def known_suite(name: str) -> Suite:
    """The known suite ``name``; a ConfigError lists the ones pxelab knows."""
    try:
        return SUITES[name]
    except KeyError:
        raise ConfigError(f"payload suite {name!r} is not one pxelab knows; choose one of "
                          f"{', '.join(SUITES)} (or add it to pxelab/machine/payload/archive.py)"
                          ) from None


def sources(chosen: Suite, keyring: Path = KEYRING) -> str:
    """The deb822 sources (sources.list(5)) of ``chosen``, signatures checked by ``keyring``."""
    entries = [(MIRROR, chosen.archive), (SECURITY_MIRROR, chosen.security)]
    return "\n".join(
        f"Types: deb\nURIs: {uri}\nSuites: {' '.join(suites)}\nComponents: {COMPONENT}\n"
        f"Architectures: {ARCHITECTURE}\nSigned-By: {keyring}\n"
        for uri, suites in entries if suites
    )


@dataclass(frozen=True)
class AptRoot:
    """A private apt configuration for one suite under ``root`` (``<cache>/apt/<suite>``)."""

    root: Path
    suite: Suite
    keyring: Path = KEYRING

    @classmethod
    def in_cache(cls, cache_dir: Path, suite_name: str) -> AptRoot:
        return cls(cache_dir / "apt" / suite_name, known_suite(suite_name))

    def options(self) -> list[str]:
        """``-o`` options that make apt-get and apt-cache see only this configuration."""
        etc, state = self.root / "etc", self.root / "state"
        settings = {
            "Dir::Etc::SourceList": etc / "sources.list",
            "Dir::Etc::SourceParts": etc / "sources.list.d",
            "Dir::Etc::Preferences": etc / "preferences",
            "Dir::Etc::PreferencesParts": etc / "preferences.d",
            "Dir::State": state,
            "Dir::State::lists": state / "lists",
            "Dir::State::status": state / "status",
            "Dir::Cache": self.root / "cache",
            # Not the host's foreign architectures (dpkg --add-architecture).
            "APT::Architecture": ARCHITECTURE,
            "APT::Architectures": ARCHITECTURE,
            "Acquire::Languages": "none",
            # The lists live in root's cache, which apt's _apt download user cannot
            # enter: apt would warn on every update that it downloads as root anyway.
            "APT::Sandbox::User": "root",
        }
        return [arg for key, value in settings.items() for arg in ("-o", f"{key}={value}")]

    def command(self, tool: str, *args: str) -> list[str]:
        """``tool`` (apt-get, apt-cache) with this configuration and ``args``."""
        return [tool, *self.options(), *args]

    def fresh(self, now: float, max_age: float = MAX_AGE) -> bool:
        """Whether the lists were updated from today's sources less than ``max_age`` ago."""
        stamp = self.root / "state" / "updated"
        try:
            return (stamp.read_text(encoding="utf-8") == sources(self.suite, self.keyring)
                    and now - stamp.stat().st_mtime < max_age)
        except OSError:
            return False

    def refresh(self, max_age: float = MAX_AGE) -> None:
        """``apt-get update`` of this configuration unless its lists are fresh."""
        if self.fresh(time.time(), max_age):
            return
        with file_lock(self.root.parent / f"{self.root.name}.lock"):
            if self.fresh(time.time(), max_age):  # another worker updated meanwhile
                return
            self._write()
            self._update()

    def _write(self) -> None:
        if not self.keyring.exists():
            raise HostCapabilityError(
                f"{self.keyring} missing: pxelab checks the Debian archive's signatures "
                "with it; apt-get install debian-archive-keyring")
        etc, state = self.root / "etc", self.root / "state"
        for directory in (etc / "sources.list.d", etc / "preferences.d",
                          state / "lists" / "partial", self.root / "cache"):
            directory.mkdir(parents=True, exist_ok=True)
        (etc / "sources.list").write_text("", encoding="utf-8")
        (etc / "sources.list.d" / "pxelab.sources").write_text(
            sources(self.suite, self.keyring), encoding="utf-8")
        (state / "status").write_text("", encoding="utf-8")
        (state / "updated").unlink(missing_ok=True)

    def _update(self) -> None:
        # Error-Mode=any: an index that failed to download is an error, not a warning
        # after which apt would go on with old lists or none.
        command = self.command("apt-get", "-q", "-o", "APT::Update::Error-Mode=any", "update")
        run(command, f"apt-get update of pxelab's {self.suite.name} sources in {self.root}",
            f"check network access to {MIRROR} (a proxy goes in /etc/apt/apt.conf.d/, "
            "which pxelab keeps)")
        (self.root / "state" / "updated").write_text(sources(self.suite, self.keyring),
                                                     encoding="utf-8")
        log.info("updated the package lists of suite %s in %s", self.suite.name, self.root)


def run(command: list[str], what: str, hint: str, cwd: Path | None = None) -> str:
    """Run an apt tool; its stdout, or a PayloadError with ``what``, its stderr and ``hint``.

    The message names the command by ``what``: the -o options would bury the error
    (``pxelab -v`` logs the whole command line).
    """
    if shutil.which(command[0]) is None:
        raise HostCapabilityError(f"{command[0]} not found: pxelab builds payloads on "
                                  "Debian hosts (apt-get install apt)")
    log.info("running %s", " ".join(command))
    result = subprocess.run(command, capture_output=True, text=True, check=False, cwd=cwd)
    if result.stderr:  # notes such as "Download is performed unsandboxed as root"
        log.debug("%s said: %s", command[0], result.stderr.strip())
    if result.returncode != 0:
        raise PayloadError(f"{what} failed ({result.returncode}): {result.stderr.strip()}; "
                           f"{hint}")
    return result.stdout
