"""Make two threads meet at a ``file_lock``: the holder waits until the other is blocked."""

from __future__ import annotations

import fcntl
import threading
from typing import Any

import pytest

from pxelab.machine.payload import cache


class Contention:
    """Wraps ``fcntl.flock`` as ``file_lock`` calls it and notes when a caller must wait."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.waiting = threading.Event()
        real = fcntl.flock

        def flock(handle: Any, operation: int) -> None:
            if operation == fcntl.LOCK_EX:
                try:
                    real(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    return
                except BlockingIOError:
                    self.waiting.set()  # held by the other caller: block like the real one
            real(handle, operation)

        monkeypatch.setattr(cache.fcntl, "flock", flock)

    def hold_until_the_other_waits(self) -> None:
        """Called while holding the lock: return once the other caller is blocked on it."""
        assert self.waiting.wait(timeout=10), "the second caller never waited for the lock"
