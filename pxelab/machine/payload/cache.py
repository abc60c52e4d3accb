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
