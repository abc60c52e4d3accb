"""The physical-limit boot: QEMU -kernel/-initrd straight into the payload, NFSv4 root.

No firmware, no boot server: dnsmasq (a reference DHCP peer, DHCP only) answers the
initramfs' udhcpc, Ganesha serves the root file system. It proves the payload and the
NFS server on their own and measures the fastest boot the lab can do under TCG.
"""

from __future__ import annotations

import logging
import re
import shlex
import subprocess
import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import pexpect
import pyroute2
import pytest

from pxelab.core.netns import exec_prefix
from pxelab.machine.nfs import Ganesha
from pxelab.machine.payload import (
    INIT_DHCP,
    INIT_FAILED,
    INIT_MODULES_LOADED,
    INIT_NFS_MOUNTED,
    INIT_START,
    USERSPACE,
    Payload,
    build_payload,
    kernel_cmdline,
    userspace_line,
)
from pxelab.pytest_plugin import pxelab_requires
from pxelab.scenarios.milestones import whole_line

pytestmark = [pytest.mark.qemu, pytest.mark.slow]

SERVER = "192.0.2.1"
log = logging.getLogger(__name__)
FAILURES = [INIT_FAILED.pattern, r"Kernel panic - not syncing[^\r\n]*"]


@contextmanager
def lab_namespace() -> Iterator[tuple[str, str]]:
    """(namespace, tap): a unique namespace with br0 = 192.0.2.1/24 and a tap in the bridge."""
    name = f"pxelab-direct-{uuid.uuid4().hex[:8]}"
    pyroute2.netns.create(name)
    try:
        with pyroute2.NetNS(name) as ns:
            ns.link("add", ifname="br0", kind="bridge")
            ns.link("add", ifname="tap0", kind="tuntap", mode="tap")
            (bridge,) = ns.link_lookup(ifname="br0")
            (tap,) = ns.link_lookup(ifname="tap0")
            (lo,) = ns.link_lookup(ifname="lo")
            ns.addr("add", index=bridge, address=SERVER, prefixlen=24)
            ns.link("set", index=tap, master=bridge)
            for index in (lo, bridge, tap):
                ns.link("set", index=index, state="up")
        yield name, "tap0"
    finally:
        pyroute2.netns.remove(name)


@contextmanager
def spawned(command: list[str], log: Path, timeout: float) -> Iterator[pexpect.spawn]:
    """A pexpect child logging to ``log``; terminated (SIGTERM, then SIGKILL) afterwards."""
    with log.open("w", encoding="utf-8") as logfile:
        child = pexpect.spawn(command[0], command[1:], encoding="utf-8",
                              codec_errors="replace", timeout=timeout, logfile=logfile)
        try:
            yield child
        finally:
            if child.isalive():
                child.terminate(force=True)
            child.close()


@contextmanager
def dnsmasq(namespace: str, workdir: Path, timeout: float = 10.0) -> Iterator[Path]:
    """dnsmasq as a DHCP-only reference peer on br0; yields its log. ``--no-ping``: its
    default ICMP check of a new address drops the first DISCOVER (udhcpc then waits 3 s)."""
    log = workdir / "dnsmasq.log"
    command = [*exec_prefix(namespace), "dnsmasq", "--no-daemon", "--conf-file=/dev/null",
               "--port=0", "--interface=br0", "--bind-interfaces", "--log-facility=-",
               "--log-dhcp", "--no-ping", "--dhcp-authoritative",
               "--dhcp-range=192.0.2.100,192.0.2.150,255.255.255.0,1h",
               f"--dhcp-leasefile={workdir / 'dnsmasq.leases'}",
               f"--pid-file={workdir / 'dnsmasq.pid'}"]
    with log.open("wb") as output:
        process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=output,
                                   stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + timeout
        while b"sockets bound exclusively to interface br0" not in log.read_bytes():
            assert process.poll() is None, f"dnsmasq exited: {log.read_text()}"
            assert time.monotonic() < deadline, f"dnsmasq not up in {timeout} s: {log.read_text()}"
            time.sleep(0.05)
        yield log
    finally:
        process.terminate()
        try:
            process.wait(5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def expect_line(console: pexpect.spawn, pattern: str, timeout: float, started: float,
                what: str) -> tuple[float, str]:
    """Wait for ``pattern`` (a failure line or EOF ends the wait); (seconds since start, line).

    The match runs to the end of the console line: the console arrives in chunks, and
    ``\\S+`` would otherwise match half a word ("n" of "nfs4").
    """
    index = console.expect([whole_line(pattern), *FAILURES, pexpect.EOF, pexpect.TIMEOUT],
                           timeout=timeout)
    if index != 0:
        seen = "\n".join(str(console.before).splitlines()[-25:])
        if index <= len(FAILURES):
            reason = f"failure line: {console.after}"
        else:
            reason = "QEMU exited" if console.after is pexpect.EOF else f"{timeout:.0f} s passed"
        pytest.fail(f"waiting for {what} ({pattern!r}): {reason}\nlast console lines:\n{seen}")
    return time.monotonic() - started, str(console.after)


@pytest.fixture
def payload() -> Payload:
    """Function: the default payload (built once, then taken from the cache)."""
    pxelab_requires(root=True, tools=["qemu-system-x86_64", "dnsmasq"])
    return build_payload()


@contextmanager
def direct_boot(payload: Payload, workdir: Path, nfsroot: str, *,
                dhcp: bool = True) -> Iterator[tuple[pexpect.spawn, float]]:
    """Namespace, dnsmasq (if ``dhcp``), Ganesha and QEMU; yields (console, start time)."""
    with ExitStack() as stack:
        namespace, tap = stack.enter_context(lab_namespace())
        if dhcp:
            stack.enter_context(dnsmasq(namespace, workdir))
        stack.enter_context(Ganesha(payload.rootfs, workdir / "nfs", namespace,
                                    bind_address=SERVER))
        qemu = [*exec_prefix(namespace), "qemu-system-x86_64", "-machine", "pc", "-accel",
                "tcg", "-m", "512", "-nographic", "-no-reboot",
                "-netdev", f"tap,ifname={tap},script=no,downscript=no,id=n0",
                "-device", "virtio-net-pci,netdev=n0",
                "-kernel", str(payload.kernel), "-initrd", str(payload.initrd),
                "-append", kernel_cmdline(nfsroot)]
        (workdir / "qemu.cmdline").write_text(shlex.join(qemu) + "\n")
        started = time.monotonic()
        yield stack.enter_context(spawned(qemu, workdir / "console.log", timeout=60)), started


def expect_poweroff(console: pexpect.spawn, timeout: float = 30) -> None:
    """QEMU exits by itself (the guest powered off) with status 0."""
    index = console.expect([pexpect.EOF, pexpect.TIMEOUT], timeout=timeout)
    assert index == 0, f"QEMU still running {timeout:.0f} s later: {console.before[-2000:]}"
    console.close()
    assert console.exitstatus == 0, f"QEMU exit status {console.exitstatus}"


def test_direct_kernel_boot_reaches_nfs_userspace(payload: Payload, tmp_path: Path) -> None:
    source = f"{SERVER}:/pxelab"
    with direct_boot(payload, tmp_path, source) as (console, started):
        timings = {}
        timings["init"], _ = expect_line(console, re.escape(INIT_START), 60, started, "/init")
        timings["modules"], _ = expect_line(console, re.escape(INIT_MODULES_LOADED), 60,
                                            started, "modules")
        timings["dhcp"], line = expect_line(console, INIT_DHCP.pattern, 30, started, "DHCP")
        assert INIT_DHCP.search(line)
        timings["nfs"], line = expect_line(console, INIT_NFS_MOUNTED.pattern, 60, started,
                                           "NFS root")
        mounted = INIT_NFS_MOUNTED.search(line)
        assert mounted and (mounted["source"], mounted["fstype"]) == (source, "nfs4")
        marker = userspace_line(source, "nfs4")
        timings["userspace"], _ = expect_line(console, re.escape(marker), 60, started,
                                              "the userspace marker")
        expect_poweroff(console)
        timings["exit"] = time.monotonic() - started
    # logged, not record_property: that warns (an error here) under junit_family=xunit2
    log.info("direct boot timings (s since QEMU start): %s",
             ", ".join(f"{k}={v:.2f}" for k, v in timings.items()))
    (tmp_path / "timings.txt").write_text(
        "".join(f"{k} {v:.2f}\n" for k, v in timings.items()))


@pytest.mark.parametrize(("stage", "nfsroot", "dhcp"), [
    ("nfs", f"{SERVER}:/not-exported", True),
    ("dhcp", f"{SERVER}:/pxelab", False),
])
def test_initramfs_names_the_failed_stage_and_powers_off(
        payload: Payload, tmp_path: Path, stage: str, nfsroot: str, dhcp: bool) -> None:
    with direct_boot(payload, tmp_path, nfsroot, dhcp=dhcp) as (console, _):
        index = console.expect([INIT_FAILED.pattern, USERSPACE.pattern, pexpect.EOF,
                                pexpect.TIMEOUT], timeout=90)
        assert index == 0, f"no FAILED line: {console.before[-2000:]}"
        failed = INIT_FAILED.search(str(console.after))
        assert failed and failed["stage"] == stage, failed
        expect_poweroff(console)
