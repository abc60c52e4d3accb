"""What pxelab's pytest plugin and its lab-file items share: stash keys, the
host-capability skip, junit properties and artifact directories."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from pxelab.core.errors import ConfigError, HostCapabilityError
from pxelab.lab import BootResult
from pxelab.machine.backend import Backend, GuestBackend
from pxelab.machine.fwsets import is_set_file
from pxelab.multiboot import LabResult

REPORTS = pytest.StashKey[dict[str, pytest.TestReport]]()
RESULTS = pytest.StashKey[list[BootResult]]()
# The labs of several guests a test booted (pxelab.multiboot), for its failure report.
LAB_RESULTS = pytest.StashKey[list[LabResult]]()
FIRMWARE_SETS = pytest.StashKey[tuple[str, ...]]()
def lab_junit_properties(result: LabResult) -> dict[str, str]:
    """A lab's checks (``lab.*``) and each guest's properties (``guestN.*``)."""
    props = {"lab.case": result.scenario, "lab.guests": str(len(result.guests)),
             "lab.passed": str(result.passed), "lab.timeout_factor": str(result.timeout_factor),
             "lab.collisions": "; ".join(result.collisions),
             "lab.lost_transfers": "; ".join(result.lost_transfers)}
    for number, guest in enumerate(result.guests, 1):
        props |= {f"guest{number}.{key}": value
                  for key, value in junit_properties(guest).items()}
    return props


ARTIFACTS_ROOT = pytest.StashKey[Path]()


def set_label(name: str) -> str:
    """A firmware set's word in ids and markers: its name, or a set file's stem."""
    return Path(name).stem if is_set_file(name) else name


@contextmanager
def host_capability(config: pytest.Config) -> Iterator[None]:
    """Turn a missing host capability into a skip (or a failure with --pxelab-strict)."""
    try:
        yield
    except HostCapabilityError as missing:
        if config.getoption("pxelab_strict"):
            pytest.fail(f"host capability missing: {missing}")
        pytest.skip(f"host capability missing: {missing}")


def guest_backend(config: pytest.Config) -> GuestBackend:
    """The backend the options choose (--pxelab-backend, --pxelab-libvirt-uri)."""
    return GuestBackend(Backend(config.getoption("pxelab_backend")),
                        config.getoption("pxelab_libvirt_uri"))


def junit_properties(result: BootResult) -> dict[str, str]:
    """Flat name -> text pairs of what a boot ran on (for junit <property> elements)."""
    props = dict(result.timeline.properties)
    flat = {key: "" if value is None else str(value) for key, value in props.items()
            if not isinstance(value, dict)}
    for package, version in sorted(props.get("packages", {}).items()):
        flat[f"package.{package}"] = str(version)
    verdict = {"failed_stage": result.timeline.failed_stage or "",
               "cause": result.diagnosis.cause.code
               if result.diagnosis and result.diagnosis.cause else ""}
    return {"case": result.scenario, "ok": str(result.ok), **verdict, **flat}


ARTIFACTS_ROOT = pytest.StashKey[Path]()


def fresh_artifacts_dir(item: pytest.Item) -> Path:
    """A new directory for ``item``'s boot under --pxelab-artifacts (or a session temp dir)."""
    config = item.config
    if ARTIFACTS_ROOT not in config.stash:
        chosen: Path | None = config.getoption("pxelab_artifacts")
        if chosen is None:
            chosen = Path(tempfile.mkdtemp(prefix="pxelab-labs-"))
        config.stash[ARTIFACTS_ROOT] = chosen
    return fresh_dir(config.stash[ARTIFACTS_ROOT], safe(item.name))


def fresh_dir(root: Path, name: str) -> Path:
    """``root/name``, or ``root/name.N`` if an earlier session left one there."""
    for attempt in range(1000):
        path = root / (name if attempt == 0 else f"{name}.{attempt}")
        try:
            path.mkdir(parents=True)
            return path
        except FileExistsError:
            continue
    raise ConfigError(f"cannot create a fresh artifacts directory for {name} under {root}")


def safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name)[:80]
