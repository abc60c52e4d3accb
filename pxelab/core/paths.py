"""Where pxelab finds its data and keeps its artifacts.

What pxelab reads at run time ships inside the package, under ``pxelab/data/``
(firmware catalog, fixed-wait table, boot-loader templates), so an installed wheel
has it. ``fixtures/`` holds only the source tree's test data (captured packets,
sample lab files): tests and tools read it, pxelab itself does not.
"""

from __future__ import annotations

import os
import time
from importlib.resources import files
from pathlib import Path

from pxelab.core.errors import ConfigError

# The checkout pxelab was imported from; meaningful only there (tests and tools).
REPO_ROOT = Path(__file__).resolve().parents[2]


def data_path(*parts: str) -> Path:
    """The file ``pxelab/data/<parts...>`` of the installed package, as a real path.

    Daemons, QEMU and the error messages need a path on disk, so a pxelab imported
    from a zip archive (a zipapp, an egg) cannot run; a ConfigError says so.
    """
    resource = files("pxelab").joinpath("data", *parts)
    if not isinstance(resource, Path):
        raise ConfigError(f"pxelab's data file {'/'.join(parts)} is inside an archive "
                          f"({resource}); install pxelab unpacked (pip install pxelab-*.whl)")
    return resource


def fixtures_dir() -> Path:
    """The source tree's ``fixtures/`` directory (override with $PXELAB_FIXTURES)."""
    path = Path(os.environ.get("PXELAB_FIXTURES", REPO_ROOT / "fixtures"))
    if not path.is_dir():
        raise ConfigError(f"fixtures directory {path} not found; it holds test data and is "
                          "only in pxelab's source tree: run from a checkout or set "
                          "PXELAB_FIXTURES")
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
