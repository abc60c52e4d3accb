"""Where pxelab finds its shared data and keeps its artifacts."""

from __future__ import annotations

import os
import time
from pathlib import Path

from pxelab.core.errors import ConfigError

REPO_ROOT = Path(__file__).resolve().parents[2]


def fixtures_dir() -> Path:
    """The ``fixtures/`` directory (override with $PXELAB_FIXTURES)."""
    path = Path(os.environ.get("PXELAB_FIXTURES", REPO_ROOT / "fixtures"))
    if not path.is_dir():
        raise ConfigError(f"fixtures directory {path} not found; install pxelab from its "
                          "source tree (pip install -e .) or set PXELAB_FIXTURES")
    return path


def new_artifacts_dir(base: Path, label: str) -> Path:
    """A fresh, timestamped directory under ``base`` for one run's evidence."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    for attempt in range(100):
        path = base / (f"{label}-{stamp}" + (f"-{attempt}" if attempt else ""))
        try:
            path.mkdir(parents=True)
            return path
        except FileExistsError:
            continue
    raise ConfigError(f"cannot create an artifacts directory under {base}")
