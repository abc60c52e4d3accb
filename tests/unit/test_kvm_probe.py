"""The KVM probe runs once per host even when xdist workers ask at the same moment.

The probe holds the lock until the other caller is blocked on it, so the two always
overlap, however the threads are scheduled.
"""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from lock_overlap import Contention

from pxelab.machine import kvm

pytestmark = pytest.mark.unit


def test_concurrent_callers_probe_once(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    device = tmp_path / "kvm"
    device.touch()
    monkeypatch.setattr(kvm, "KVM_DEVICE", device)
    monkeypatch.setenv("PXELAB_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(kvm, "_cache_key", lambda qemu: "host | qemu")
    probes: list[str] = []
    contention = Contention(monkeypatch)

    def probe(qemu: str = kvm.QEMU) -> tuple[bool, str]:
        probes.append(qemu)
        contention.hold_until_the_other_waits()
        return False, "guest timers broken"

    monkeypatch.setattr(kvm, "run_probe", probe)
    start = threading.Barrier(2)
    answers: list[bool] = []

    def ask() -> None:
        start.wait(timeout=5)
        answers.append(kvm.probe_kvm.__wrapped__())  # bypass the per-process cache

    threads = [threading.Thread(target=ask) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=20)
    assert contention.waiting.is_set(), "the callers did not overlap"
    assert answers == [False, False]
    assert len(probes) == 1
    assert '"usable": false' in (tmp_path / "cache" / kvm.CACHE_FILE).read_text()
