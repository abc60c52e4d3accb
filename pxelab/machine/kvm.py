"""Is KVM usable here? Find out by booting something tiny, not by looking at /dev/kvm.

On some hosts (nested virtualisation with missing CPU features) /dev/kvm opens
and QEMU starts with ``-accel kvm``, but guest time runs wrong: a firmware wait
of 2 s never ends and the guest resets after ~30 s. The probe boots SeaBIOS
with no boot device and a boot-menu pause of :data:`PAUSE_MS`, and accepts KVM
only if the pause ends within :data:`PAUSE_LIMIT_S` of wall-clock time. A
healthy KVM (or TCG) needs ~0.6 s; the broken kind takes ~2 s or forever.

The answer is cached per process and in ``<cache dir>/kvm-probe.json`` keyed by
kernel and QEMU version, so only the first run on a host pays for the probe.
Processes that start together (pytest-xdist workers) probe one at a time under
a lock, so the second one reads the first one's answer instead of probing again.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import shlex
import subprocess
import time
from pathlib import Path

import pexpect

from pxelab.machine.payload.cache import default_cache_dir, file_lock

log = logging.getLogger(__name__)

QEMU = "qemu-system-x86_64"
KVM_DEVICE = Path("/dev/kvm")
PAUSE_MS = 500
# SeaBIOS counts the pause with its timer; broken KVM here stretched 0.5 s to ~2 s.
PAUSE_LIMIT_S = 2 * PAUSE_MS / 1000
START_TIMEOUT_S = 5.0
CACHE_FILE = "kvm-probe.json"

MENU = b"Press ESC for boot menu"
DONE = b"No bootable device|Booting from"


def probe_command(qemu: str = QEMU) -> list[str]:
    """The tiny KVM guest: SeaBIOS, no devices, a timed boot-menu pause."""
    return [qemu, "-nodefaults", "-no-user-config", "-machine", "pc,graphics=off",
            "-accel", "kvm", "-m", "16", "-display", "none",
            "-chardev", "stdio,id=console,signal=off", "-serial", "chardev:console",
            "-monitor", "none", "-no-reboot", "-boot", f"menu=on,splash-time={PAUSE_MS}"]


def _cache_key(qemu: str) -> str:
    version = subprocess.run([qemu, "--version"], capture_output=True, text=True,
                             check=False).stdout.partition("\n")[0]
    uname = os.uname()
    return f"{uname.release} {uname.version} | {version}"


def _read_cache(path: Path, key: str) -> bool | None:
    try:
        entry = json.loads(path.read_text(encoding="utf-8")).get(key)
    except (OSError, ValueError, AttributeError):
        return None
    return entry.get("usable") if isinstance(entry, dict) else None


def _write_cache(path: Path, key: str, usable: bool, reason: str) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_suffix(f".{os.getpid()}.tmp")
        temporary.write_text(json.dumps(
            {key: {"usable": usable, "reason": reason, "probed_at": time.time()}}, indent=2))
        temporary.replace(path)
    except OSError as error:
        log.warning("cannot cache the KVM probe result in %s: %s", path, error)


def run_probe(qemu: str = QEMU) -> tuple[bool, str]:
    """Boot the tiny guest under KVM once; (usable, why)."""
    if not os.access(KVM_DEVICE, os.R_OK | os.W_OK):
        return False, f"{KVM_DEVICE} missing or not read-writable"
    command = probe_command(qemu)
    log.debug("KVM probe: %s", shlex.join(command))
    started = time.monotonic()
    child = pexpect.spawn(command[0], command[1:], timeout=START_TIMEOUT_S)
    try:
        if child.expect([MENU, pexpect.EOF, pexpect.TIMEOUT]) != 0:
            return False, f"SeaBIOS did not reach its boot menu within {START_TIMEOUT_S}s " \
                          f"(output {_tail(child)!r})"
        menu_at = time.monotonic()
        if child.expect([DONE, pexpect.EOF, pexpect.TIMEOUT], timeout=PAUSE_LIMIT_S) != 0:
            return False, f"a {PAUSE_MS} ms firmware pause did not end within " \
                          f"{PAUSE_LIMIT_S}s of wall-clock time (guest timers broken)"
        return True, (f"{PAUSE_MS} ms pause took {time.monotonic() - menu_at:.2f}s, "
                      f"boot {time.monotonic() - started:.2f}s")
    finally:
        child.close(force=True)


def _tail(child: pexpect.spawn) -> str:
    before = child.before if isinstance(child.before, bytes) else b""
    return before[-200:].decode("utf-8", "replace")


@functools.cache
def probe_kvm(qemu: str = QEMU) -> bool:
    """True if QEMU guests make real-time progress under KVM on this host (cached)."""
    if not os.access(KVM_DEVICE, os.R_OK | os.W_OK):
        log.info("KVM not usable: %s missing or not read-writable; using TCG", KVM_DEVICE)
        return False
    key = _cache_key(qemu)
    path = default_cache_dir() / CACHE_FILE
    cached = _read_cache(path, key)
    if cached is not None:
        log.info("KVM %s (cached in %s)", "usable" if cached else "not usable", path)
        return cached
    with file_lock(path.with_suffix(".lock")):
        cached = _read_cache(path, key)  # written while we waited for the lock?
        if cached is not None:
            log.info("KVM %s (probed meanwhile by another process)",
                     "usable" if cached else "not usable")
            return cached
        started = time.monotonic()
        usable, reason = run_probe(qemu)
        log.info("KVM %s: %s (probe took %.2fs)",
                 "usable" if usable else "not usable; using TCG", reason,
                 time.monotonic() - started)
        _write_cache(path, key, usable, reason)
    return usable
