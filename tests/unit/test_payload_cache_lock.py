"""Two xdist workers asking for the same new payload at once: one builds, the other waits."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from pxelab.machine.payload.cache import build_once

pytestmark = pytest.mark.unit


def test_concurrent_build_once_builds_once(tmp_path: Path) -> None:
    final = tmp_path / "payloads" / "p"
    final.parent.mkdir()
    builds: list[Path] = []

    def build(tmp: Path) -> None:
        builds.append(tmp)
        time.sleep(0.2)  # a build takes a while; the other caller arrives meanwhile
        (tmp / "payload.json").write_text("{}")

    start = threading.Barrier(2)
    built: list[bool] = []
    seen_complete: list[bool] = []

    def worker() -> None:
        start.wait(timeout=5)
        built.append(build_once(final, "payload.json", build))
        seen_complete.append((final / "payload.json").exists())

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)
    assert sorted(built) == [False, True]
    assert seen_complete == [True, True]
    assert len(builds) == 1
    assert sorted(p.name for p in final.parent.iterdir()) == ["p", "p.lock"]
