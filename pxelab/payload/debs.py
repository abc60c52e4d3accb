"""Debian packages: resolve versions with apt-cache, fetch with apt-get, unpack with dpkg-deb.

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

from pxelab.errors import HostCapabilityError, PayloadError

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


def show(*names: str) -> dict[str, dict[str, str]]:
    """``apt-cache show`` of the candidate version of each package, by package name."""
    output = _run(["apt-cache", "show", "--no-all-versions", *names])
    stanzas = {fields.get("Package", ""): fields for fields in parse_stanzas(output)}
    for name in names:
        if "Version" not in stanzas.get(name, {}):
            raise PayloadError(f"apt-cache show {name} printed no Version: run apt-get update")
    return stanzas


def kernel_image(flavour: str, meta: dict[str, str]) -> DebPackage:
    """The versioned image package that the metapackage stanza ``meta`` depends on."""
    pattern = re.compile(rf"linux-image-\d+\.\d+\.\d+-\d+-{re.escape(flavour)}")
    images = {n: v for n, v in parse_depends(meta.get("Depends", "")).items()
              if pattern.fullmatch(n)}
    if len(images) != 1:
        raise PayloadError(
            f"cannot tell the kernel image of linux-image-{flavour} from Depends: "
            f"{meta.get('Depends')!r}; check the flavour ('cloud-amd64', 'amd64')"
        )
    (name, version), = images.items()
    return DebPackage(name, version or show(name)[name]["Version"])


def resolve(flavour: str, *others: str) -> tuple[DebPackage, list[DebPackage]]:
    """The kernel image for ``flavour`` and the ``others``, at the versions apt would fetch."""
    meta = f"linux-image-{flavour}"
    stanzas = show(meta, *others)
    return kernel_image(flavour, stanzas[meta]), [
        DebPackage(name, stanzas[name]["Version"]) for name in others
    ]


def download(package: DebPackage, debs_dir: Path) -> Path:
    """``debs_dir/<name>_<version>.deb``, fetched with apt-get if not there yet."""
    target = debs_dir / package.filename
    if target.exists():
        return target
    debs_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=debs_dir, prefix=".download-") as tmp:
        command = ["apt-get", "download", "-q", f"{package.name}={package.version}"]
        log.info("running %s (in %s)", " ".join(command), tmp)
        result = subprocess.run(command, cwd=tmp, capture_output=True, text=True, check=False)
        fetched = list(Path(tmp).glob("*.deb"))
        if result.returncode != 0 or len(fetched) != 1:
            raise PayloadError(
                f"{' '.join(command)} failed ({result.returncode}): {result.stderr.strip()}; "
                "check network access to the Debian mirror or put the .deb in " + str(target)
            )
        fetched[0].replace(target)
    return target


def extract(deb: Path, destination: Path) -> None:
    """Unpack the file system tree of ``deb`` into ``destination``."""
    destination.mkdir(parents=True, exist_ok=True)
    _run(["dpkg-deb", "-x", str(deb), str(destination)])
