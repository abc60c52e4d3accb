"""The main job from the command line: `pxelab boot`, its output, exit status and cleanup."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pexpect
import pytest

pytestmark = [pytest.mark.qemu, pytest.mark.netns, pytest.mark.slow]

PXELAB = [sys.executable, "-m", "pxelab.cli"]


def our_namespaces(pid: int) -> list[str]:
    listing = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=True)
    return [line.split()[0] for line in listing.stdout.splitlines()
            if line.split()[0].split("-")[2:3] == [str(pid)]]


def children_alive(pid: int) -> list[str]:
    found = subprocess.run(["pgrep", "-a", "-P", str(pid)], capture_output=True, text=True,
                           check=False)
    return found.stdout.splitlines()


def test_boot_prints_milestones_live_and_writes_json(tmp_path: Path):
    out = tmp_path / "result.json"
    done = subprocess.run([*PXELAB, "boot", "legacy_pxe_ipv4", "--json", str(out),
                           "--artifacts", str(tmp_path / "art")],
                          capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "rom_dhcp" in done.stdout and "userspace" in done.stdout
    assert "PXELAB-USERSPACE root=192.0.2.1:/pxelab fstype=nfs4" in done.stdout
    result = json.loads(out.read_text())
    assert result["ok"] and result["marker"] == {"root": "192.0.2.1:/pxelab", "fstype": "nfs4"}
    assert any(e["source"] == "tftp" and e["request"] == "pxelinux.0" for e in result["events"])
    assert Path(result["artifacts"]["packet capture"]).stat().st_size > 0


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["sigint", "sigterm"])
def test_interrupted_boot_leaves_nothing_behind(tmp_path: Path, sig: signal.Signals):
    child = pexpect.spawn(PXELAB[0], [*PXELAB[1:], "boot", "--artifacts", str(tmp_path)],
                          encoding="utf-8", timeout=300)
    try:
        child.expect(r"\bkernel\s+Linux version")  # mid-boot: every part is running
        pid = child.pid
        assert our_namespaces(pid), "the lab namespace should exist mid-boot"
        os.kill(pid, sig)
        child.expect("interrupted; the lab was torn down", timeout=60)
        child.expect(pexpect.EOF, timeout=60)
    finally:
        child.close(force=True)
    assert child.exitstatus == 130
    assert our_namespaces(pid) == []
    assert children_alive(pid) == []
