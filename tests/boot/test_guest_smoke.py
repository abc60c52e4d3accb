"""A real QEMU guest on a lab tap reaches its firmware's network boot, then goes away.

There is no boot server here: each test stops at the first milestone that
proves the NIC and its boot firmware are alive, instead of waiting out the
DHCP failure.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

import pytest

from pxelab.core.errors import GuestError, WaitTimeoutError
from pxelab.machine.network import LabNetwork, namespace_pids
from pxelab.machine.qemu import Firmware, Guest, GuestSpec
from pxelab.pytest_plugin import pxelab_requires

pytestmark = [pytest.mark.qemu, pytest.mark.slow]

log = logging.getLogger(__name__)


@pytest.fixture(autouse=True)
def _needs_root_and_qemu() -> None:
    pxelab_requires(root=True, tools=["qemu-system-x86_64"],
                    hint="apt-get install qemu-system-x86")


def reach(guest: Guest, milestones: list[bytes], timeout: float) -> dict[str, float]:
    """Expect each pattern in turn; seconds from QEMU start to each."""
    seen = {}
    for pattern in milestones:
        guest.console.expect(pattern, timeout=timeout)
        seen[pattern.decode()] = round(time.monotonic() - guest.started_at, 2)
    return seen


def assert_gone(pid: int) -> None:
    assert not Path(f"/proc/{pid}").exists(), f"QEMU pid {pid} still exists"


def test_seabios_ipxe_rom_starts_dhcp(tmp_path: Path) -> None:
    with LabNetwork(artifacts_dir=tmp_path) as lab:
        with Guest(GuestSpec(), lab.add_tap(), tmp_path, lab.namespace) as guest:
            timings = reach(guest, [rb"SeaBIOS \(version", rb"iPXE \d+\.\d+",
                                    rb"Configuring \(net0 52:54:00:12:34:56\)"], timeout=60)
            pid = guest.pid
            assert pid is not None
        log.info("%s guest under %s: %s", guest.spec.firmware, guest.accel, timings)
        assert_gone(pid)
        left = [Path(f"/proc/{p}/comm").read_text().strip()
                for p in namespace_pids(lab.namespace)]
        assert left == ["tcpdump"]  # the lab's capture, stopped when the lab ends
    serial = (tmp_path / "serial.log").read_bytes()
    assert b"SeaBIOS (version" in serial and b"Configuring (net0" in serial
    command = (tmp_path / "qemu-cmdline.txt").read_text()
    assert command.startswith(f"ip netns exec {lab.namespace} qemu-system-x86_64 ")


def test_ovmf_native_stack_starts_pxe(tmp_path: Path) -> None:
    spec = GuestSpec(firmware=Firmware.OVMF, nic_romfile="")
    with LabNetwork(artifacts_dir=tmp_path) as lab:
        with Guest(spec, lab.add_tap(), tmp_path, lab.namespace) as guest:
            timings = reach(guest, [rb">>Start PXE over IPv4"], timeout=90)
            pid = guest.pid
            assert pid is not None
        log.info("%s guest under %s: %s", guest.spec.firmware, guest.accel, timings)
        assert_gone(pid)
    assert (tmp_path / "ovmf-vars.fd").stat().st_size > 0
    assert b">>Start PXE over IPv4" in (tmp_path / "serial.log").read_bytes()


def test_wait_exit_times_out_on_a_running_guest_which_still_stops(tmp_path: Path) -> None:
    with LabNetwork(capture=False) as lab:
        with Guest(GuestSpec(), lab.add_tap(), tmp_path, lab.namespace) as guest:
            reach(guest, [rb"SeaBIOS \(version"], timeout=30)
            with pytest.raises(WaitTimeoutError, match="still running"):
                guest.wait_exit(timeout=0.5)
            pid = guest.pid
            assert pid is not None
        assert_gone(pid)
    with pytest.raises(GuestError, match="not running"):
        _ = guest.console


def test_wait_exit_returns_qemu_exit_status(tmp_path: Path) -> None:
    spec = GuestSpec(kernel=tmp_path / "no-such-kernel")
    with LabNetwork(capture=False) as lab, \
            Guest(spec, lab.add_tap(), tmp_path, lab.namespace) as guest:
        assert guest.wait_exit(timeout=30) == 1
    assert b"no-such-kernel" in (tmp_path / "serial.log").read_bytes()
