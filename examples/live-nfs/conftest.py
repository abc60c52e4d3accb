"""pytest: build the live system (build.py) before this directory's lab file boots.

The lab file names ``root/`` and ``tftp/`` (with ``tftp/live/``) as directories, which
it checks when it is read; a fresh checkout has neither ``root/`` nor ``tftp/live/``
(.gitignore), so they are made empty at collection, and filled by build.py before the
first boot (not at collection: ``pytest -m unit`` collects this file too).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import pytest

from pxelab.pytest_support import host_capability

HERE = Path(__file__).resolve().parent


def _build_module() -> ModuleType:
    # By path, under a name of its own: other examples may have a build.py too.
    spec = importlib.util.spec_from_file_location("live_nfs_build", HERE / "build.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


BUILD = _build_module()


@pytest.hookimpl(tryfirst=True)
def pytest_collect_file(file_path: Path) -> None:
    if file_path.parent == HERE and file_path.name.endswith(".pxelab.toml"):
        for directory in (BUILD.BOOT, BUILD.ROOT):
            directory.mkdir(parents=True, exist_ok=True)


def pytest_runtest_setup(item: pytest.Item) -> None:
    if item.path.parent == HERE:
        with host_capability(item.config):
            BUILD.main()
