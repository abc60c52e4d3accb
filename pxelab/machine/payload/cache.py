"""Where payloads are kept, and how one is built once even by parallel processes.

A payload directory appears only complete: it is built in a temporary sibling and
renamed into place while an exclusive ``fcntl.flock`` on ``<name>.lock`` is held, so
pytest-xdist workers asking for the same payload wait for the first one's build.
"""

from __future__ import annotations

import fcntl
import logging
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

log = logging.getLogger(__name__)


def default_cache_dir() -> Path:
    """``$PXELAB_CACHE``, else ``$XDG_CACHE_HOME/pxelab``, else ``~/.cache/pxelab``."""
    if os.environ.get("PXELAB_CACHE"):
        return Path(os.environ["PXELAB_CACHE"])
    if os.environ.get("XDG_CACHE_HOME"):
        return Path(os.environ["XDG_CACHE_HOME"]) / "pxelab"
    return Path.home() / ".cache" / "pxelab"


@contextmanager
def file_lock(path: Path) -> Iterator[None]:
    """Hold an exclusive advisory lock on ``path`` (created if missing) for the block."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def build_once(final: Path, complete: str, build: Callable[[Path], None]) -> bool:
    """Make ``final`` with ``build(tmpdir)`` unless ``final/complete`` exists already.

    Returns True if this call built it. ``build`` must write ``complete`` last.
    """
    if (final / complete).exists():
        return False
    with file_lock(final.parent / f"{final.name}.lock"):
        if (final / complete).exists():
            return False
        if final.exists():  # only by hand: our renames are atomic and come after `complete`
            log.warning("removing incomplete %s", final)
            shutil.rmtree(final)
        tmp = Path(tempfile.mkdtemp(dir=final.parent, prefix=f".{final.name}."))
        try:
            build(tmp)
            if not (tmp / complete).exists():
                raise RuntimeError(f"payload build in {tmp} did not write {complete}")
            tmp.chmod(0o755)
            tmp.rename(final)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
    return True


def newest_unpacked(folder: Path, release: str, manifest: str) -> Path | None:
    """The most recently unpacked ``<folder>/<release>-<version>`` (by its manifest file),
    for when the archive cannot be asked which version is current."""
    found = [d for d in folder.glob(f"{release}-*") if (d / manifest).exists()]
    return max(found, key=lambda d: (d / manifest).stat().st_mtime, default=None)


def prune_unpacked(folder: Path, release: str, manifest: str, *, keep: Path,
                   max_age: float, what: str) -> None:
    """Remove the release's other unpacked versions under ``folder``, but only those
    unpacked over ``max_age`` seconds ago: a run that still uses one keeps it."""
    now = time.time()
    for old in folder.glob(f"{release}-*"):
        stamp = old / manifest
        if old == keep or not stamp.exists() or now - stamp.stat().st_mtime < max_age:
            continue
        log.info("removing %s, an older %s of Debian %s", old, what, release)
        shutil.rmtree(old, ignore_errors=True)
        old.with_name(f"{old.name}.lock").unlink(missing_ok=True)
