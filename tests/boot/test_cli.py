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


@pytest.fixture(scope="module")
def legacy_boot(tmp_path_factory: pytest.TempPathFactory) -> tuple[
        subprocess.CompletedProcess[str], Path]:
    """Module: `pxelab boot legacy_pxe_ipv4 --json` run once; its output and directory."""
    tmp_path = tmp_path_factory.mktemp("cli-boot")
    done = subprocess.run([*PXELAB, "boot", "legacy_pxe_ipv4", "--json",
                           str(tmp_path / "result.json"), "--artifacts", str(tmp_path / "art")],
                          capture_output=True, text=True, timeout=600, check=False)
    return done, tmp_path


def test_boot_prints_milestones_live_and_writes_json(legacy_boot):
    done, tmp_path = legacy_boot
    out = tmp_path / "result.json"
    assert done.returncode == 0, done.stdout + done.stderr
    assert "rom_dhcp" in done.stdout and "userspace" in done.stdout
    assert "PXELAB-USERSPACE root=192.0.2.1:/pxelab fstype=nfs4" in done.stdout
    result = json.loads(out.read_text())
    assert result["ok"] and result["marker"] == {"root": "192.0.2.1:/pxelab", "fstype": "nfs4"}
    assert any(e["source"] == "tftp" and e["request"] == "pxelinux.0" for e in result["events"])
    assert Path(result["artifacts"]["packet capture"]).stat().st_size > 0


def test_report_renders_the_boot_artifacts(legacy_boot):
    done, tmp_path = legacy_boot
    assert done.returncode == 0, done.stdout + done.stderr
    page = tmp_path / "report.html"
    made = subprocess.run([*PXELAB, "report", str(tmp_path / "art"), "-o", str(page)],
                          capture_output=True, text=True, timeout=60, check=False)
    assert made.returncode == 0, made.stdout + made.stderr
    assert made.stdout.strip() == str(page)
    text = page.read_text()
    assert "<script" not in text and 'id="stage-chart"' in text
    assert text.count('class="bar"') == len(json.loads(
        (tmp_path / "result.json").read_text())["timeline"]["hits"])
    assert "dhcp4.offer" in text and "pxelinux.0" in text  # server events in the timeline
    assert "src-packet" in text or "evidence.json" not in text  # packets once collected


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


@pytest.mark.parametrize("name", ["sid"])
def test_firmware_lists_a_sets_versions_and_files(name: str) -> None:
    done = subprocess.run([*PXELAB, "firmware", name], capture_output=True, text=True,
                          timeout=600, check=False)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == f"{name} (Debian {name})"
    listed = dict(line.split(None, 1) for line in lines[1:] if not line.startswith("  OVMF"))
    assert listed["ovmf-generic"].startswith("20"), "sid ships OVMF in ovmf-generic"
    assert "qemu-system-x86" not in listed, "QEMU is the host's, never a set's"
    assert any(line.strip().startswith("OVMF code") and "/firmware/sid-" in line
               for line in lines)
