"""Two xdist workers asking for the same new payload at once: one builds, the other waits.

The build holds the lock until the other caller is blocked on it, so the two always
overlap, however the threads are scheduled.
"""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from lock_overlap import Contention

from pxelab.machine.payload.cache import build_once

pytestmark = pytest.mark.unit


def test_concurrent_build_once_builds_once(tmp_path: Path,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    final = tmp_path / "payloads" / "p"
    final.parent.mkdir()
    builds: list[Path] = []
    contention = Contention(monkeypatch)

    def build(tmp: Path) -> None:
        builds.append(tmp)
        contention.hold_until_the_other_waits()
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
        thread.join(timeout=20)
    assert contention.waiting.is_set(), "the callers did not overlap"
    assert sorted(built) == [False, True]
    assert seen_complete == [True, True]
    assert len(builds) == 1
    assert sorted(p.name for p in final.parent.iterdir()) == ["p", "p.lock"]
