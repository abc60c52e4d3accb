"""Debian packages: resolve versions with apt-cache, fetch with apt-get, unpack with dpkg-deb.

apt-cache and apt-get run with pxelab's own configuration (pxelab.machine.payload.archive),
never the host's sources, so every host resolves the same versions.

Downloaded .deb files are kept in a shared directory under their name and version;
a download goes to a private temporary directory first and is renamed into place,
so parallel builders never see half-written files.
"""

from __future__ import annotations

import logging
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from pxelab.core.errors import HostCapabilityError, PayloadError
from pxelab.machine.payload.archive import AptRoot, run

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DebPackage:
    """One binary package at one version (the candidate apt would install)."""

    name: str
    version: str

    @property
    def filename(self) -> str:
        return f"{self.name}_{self.version.replace(':', '%3a')}.deb"


def _run(command: list[str]) -> str:
    if shutil.which(command[0]) is None:
        raise HostCapabilityError(f"{command[0]} not found: pxelab builds payloads on Debian hosts")
    log.debug("running %s", " ".join(command))
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise PayloadError(
            f"{' '.join(command)} failed ({result.returncode}): {result.stderr.strip()}"
        )
    return result.stdout


def parse_stanzas(text: str) -> list[dict[str, str]]:
    """The stanzas of deb822 text (``apt-cache show`` output) as field dictionaries."""
    stanzas: list[dict[str, str]] = []
    fields: dict[str, str] = {}
    key = ""
    for line in [*text.splitlines(), ""]:
        if not line.strip():
            if fields:
                stanzas.append(fields)
            fields, key = {}, ""
        elif line[0] in " \t" and key:
            fields[key] += "\n" + line.strip()
        else:
            key, _, value = line.partition(":")
            fields[key] = value.strip()
    return stanzas


def parse_depends(depends: str) -> dict[str, str]:
    """``{name: exact version or ""}`` for the first alternative of each Depends clause."""
    result: dict[str, str] = {}
    for clause in depends.split(","):
        match = re.match(r"\s*([^\s(|:]+)(?::\S+)?\s*(?:\(\s*([<>=]+)\s*([^)\s]+)\s*\))?",
                         clause)
        if match and match.group(1):
            result[match.group(1)] = match.group(3) if match.group(2) == "=" else ""
    return result


def show(apt: AptRoot, *names: str) -> dict[str, dict[str, str]]:
    """``apt-cache show`` of the candidate version of each package, by package name."""
    output = run(apt.command("apt-cache", "show", "--no-all-versions", *names),
                 f"apt-cache show {' '.join(names)} (suite {apt.suite.name}, {apt.root})",
                 f"is each package in suite {apt.suite.name}? 'pxelab -v' shows the command")
    stanzas = {fields.get("Package", ""): fields for fields in parse_stanzas(output)}
    for name in names:
        if "Version" not in stanzas.get(name, {}):
            raise PayloadError(f"apt-cache show {name} printed no Version: suite "
                               f"{apt.suite.name} has no such package; delete {apt.root} "
                               "to fetch its lists again")
    return stanzas


def kernel_image_pattern(flavour: str) -> re.Pattern[str]:
    """The name of a versioned image package of ``flavour``.

    Up to Debian 12 the ABI is a number (linux-image-6.1.0-57-cloud-amd64); from
    Debian 13 on, the upstream version with a +debN suffix
    (linux-image-6.12.117+deb13-cloud-amd64).
    """
    return re.compile(rf"linux-image-\d+\.\d+\.\d+(?:-\d+|\+deb\d+)-{re.escape(flavour)}")


def kernel_image(flavour: str, meta: dict[str, str]) -> DebPackage:
    """The versioned image package that the metapackage stanza ``meta`` depends on.

    Its version is "" if the dependency names none (resolve asks apt for it).
    """
    pattern = kernel_image_pattern(flavour)
    images = {n: v for n, v in parse_depends(meta.get("Depends", "")).items()
              if pattern.fullmatch(n)}
    if len(images) != 1:
        raise PayloadError(
            f"cannot tell the kernel image of linux-image-{flavour} from Depends: "
            f"{meta.get('Depends')!r}; check the flavour ('cloud-amd64', 'amd64')"
        )
    (name, version), = images.items()
    return DebPackage(name, version)


# From Debian 14 (sid, 2026) on, linux-image-<ver> holds no files: it depends on
# linux-binary-<ver> (vmlinuz), linux-modules-<ver> and linux-base-<ver> (modules.*).
KERNEL_PARTS = ("linux-base", "linux-binary", "linux-modules")


def kernel_parts(image: DebPackage, stanza: dict[str, str]) -> tuple[DebPackage, ...]:
    """The packages that carry the files of ``image`` besides itself (none up to Debian 13)."""
    version = image.name.removeprefix("linux-image-")
    names = {f"{part}-{version}" for part in KERNEL_PARTS}
    return tuple(DebPackage(name, exact)
                 for name, exact in parse_depends(stanza.get("Depends", "")).items()
                 if name in names and exact)


def resolve(apt: AptRoot, flavour: str, *others: str
            ) -> tuple[DebPackage, tuple[DebPackage, ...], list[DebPackage]]:
    """The kernel image for ``flavour``, the packages its files are split into, and the
    ``others``, at the suite's candidate versions."""
    apt.refresh()
    meta = f"linux-image-{flavour}"
    stanzas = show(apt, meta, *others)
    kernel = kernel_image(flavour, stanzas[meta])
    stanza = show(apt, kernel.name)[kernel.name]
    kernel = DebPackage(kernel.name, kernel.version or stanza["Version"])
    return kernel, kernel_parts(kernel, stanza), [
        DebPackage(name, stanzas[name]["Version"]) for name in others]


def download(apt: AptRoot, package: DebPackage, debs_dir: Path) -> Path:
    """``debs_dir/<name>_<version>.deb``, fetched with apt-get if not there yet."""
    target = debs_dir / package.filename
    if target.exists():
        return target
    debs_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=debs_dir, prefix=".download-") as tmp:
        wanted = f"{package.name}={package.version}"
        hint = f"check network access to the Debian mirror or put the .deb in {target}"
        run(apt.command("apt-get", "download", "-q", wanted), f"apt-get download {wanted}",
            hint, cwd=Path(tmp))
        fetched = list(Path(tmp).glob("*.deb"))
        if len(fetched) != 1:
            raise PayloadError(f"apt-get download {wanted} left {len(fetched)} .deb files; "
                               f"{hint}")
        fetched[0].replace(target)
    return target


def extract(deb: Path, destination: Path) -> None:
    """Unpack the file system tree of ``deb`` into ``destination``."""
    destination.mkdir(parents=True, exist_ok=True)
    _run(["dpkg-deb", "-x", str(deb), str(destination)])
