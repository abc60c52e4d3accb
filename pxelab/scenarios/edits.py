"""Changes to a lab as built, made the way a user's own infrastructure gets broken.

A fault (:mod:`pxelab.server.faults`) is pxelab breaking a protocol on purpose, and it
says so with a ``fault.injected`` event. An edit leaves no such trace: a file missing
from the data root, a typo in a menu, a kernel command line that names the wrong
export, an NFS server that is not running. The diagnosis has to find the cause from
what the guest, the wire and the servers saw, as it must for a user's lab, so the
tests of the diagnosis rules break their boots with edits.

Data-root edits run on the filled data root, in order. Data-root files may be hard
links into a shared cache: an edit never writes through one (it unlinks first).
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from pxelab.core.errors import ConfigError

log = logging.getLogger(__name__)


class LabEdit(ABC):
    """One change to the lab as built."""

    @abstractmethod
    def describe(self) -> str:
        """What the edit does, for logs and results."""


class DataRootEdit(LabEdit):
    """A change to the boot server's data root, made after it is filled."""

    path: str

    @abstractmethod
    def apply(self, root: Path) -> None:
        """Make the change under ``root``."""

    def target(self, root: Path) -> Path:
        target = root / self.path
        if not target.is_file():
            raise ConfigError(f"edit {self.describe()!r}: there is no file {self.path} in the "
                              f"data root {root}; name a file the scenario's loader puts there")
        return target


@dataclass(frozen=True)
class RemoveFile(DataRootEdit):
    path: str

    def apply(self, root: Path) -> None:
        self.target(root).unlink()

    def describe(self) -> str:
        return f"remove {self.path}"


@dataclass(frozen=True)
class RenameFile(DataRootEdit):
    path: str
    to: str

    def apply(self, root: Path) -> None:
        new = root / self.to
        new.parent.mkdir(parents=True, exist_ok=True)
        self.target(root).rename(new)

    def describe(self) -> str:
        return f"rename {self.path} to {self.to}"


@dataclass(frozen=True)
class CutFile(DataRootEdit):
    """Keep only the first ``fraction`` of the file, as an interrupted copy leaves it."""

    path: str
    fraction: float = 0.5

    def apply(self, root: Path) -> None:
        target = self.target(root)
        data = target.read_bytes()
        target.unlink()  # a hard link into the payload cache must keep its bytes
        target.write_bytes(data[: int(len(data) * self.fraction)])

    def describe(self) -> str:
        return f"cut {self.path} to {self.fraction:.0%} of its size"


@dataclass(frozen=True)
class ReplaceText(DataRootEdit):
    """Replace ``old`` by ``new`` in a text file (a menu, a script, a kernel command line)."""

    path: str
    old: str
    new: str

    def apply(self, root: Path) -> None:
        target = self.target(root)
        text = target.read_text()
        if self.old not in text:
            raise ConfigError(f"edit {self.describe()!r}: {self.path} has no {self.old!r}; "
                              f"it reads:\n{text}")
        target.unlink()
        target.write_text(text.replace(self.old, self.new))

    def describe(self) -> str:
        return f"replace {self.old!r} by {self.new!r} in {self.path}"


@dataclass(frozen=True)
class NoNfsServer(LabEdit):
    """The lab's NFS server is not started: the export is named, nobody serves it."""

    def describe(self) -> str:
        return "no NFS server"


def edit_data_root(root: Path, edits: Iterable[LabEdit]) -> None:
    """Apply the data-root edits among ``edits`` to the filled ``root``, in order."""
    for edit in edits:
        if isinstance(edit, DataRootEdit):
            edit.apply(root)
            log.info("data root %s: %s", root, edit.describe())


def serves_nfs(edits: Iterable[LabEdit]) -> bool:
    """Whether the lab starts its NFS server (no :class:`NoNfsServer` among ``edits``)."""
    return not any(isinstance(edit, NoNfsServer) for edit in edits)
