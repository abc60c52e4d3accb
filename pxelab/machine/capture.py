"""Record a lab interface to a pcap file with tcpdump, started inside the namespace.

The capture counts as running only once tcpdump says "listening on" (its
socket is open, so nothing sent afterwards is missed). It is stopped with
SIGINT, which makes tcpdump flush and close the file, so the pcap is complete.
"""

from __future__ import annotations

import logging
import os
import selectors
import shlex
import shutil
import signal
import subprocess
import time
from pathlib import Path

from pxelab.core.errors import HostCapabilityError, NetworkError
from pxelab.core.netns import exec_prefix
from pxelab.core.resource import Resource

log = logging.getLogger(__name__)

READY_TIMEOUT_S = 10.0
STOP_TIMEOUT_S = 5.0
DRAIN_TIMEOUT_S = 2.0
READY_TEXT = b"listening on"
BUFFER_KIB = 32768  # tcpdump -B: the kernel buffer frames wait in for tcpdump
# Where the kernel shows a process blocked waiting for packets (/proc/PID/wchan).
_WAITING = ("poll_schedule_timeout", "do_poll", "do_select", "ep_poll")


class PacketCapture(Resource):
    """tcpdump writing every frame of ``interface`` in ``namespace`` to ``path``."""

    def __init__(self, namespace: str | None, interface: str, path: Path,
                 ready_timeout: float = READY_TIMEOUT_S) -> None:
        self.namespace = namespace
        self.interface = interface
        self.path = path
        self.ready_timeout = ready_timeout
        self.log = logging.getLogger(f"{__name__}.{namespace or 'host'}.{interface}")
        # -U: write each packet when it arrives; --immediate-mode: hand it over
        # at once instead of per kernel buffer block; -Z root: Debian's tcpdump
        # otherwise drops to user tcpdump, who cannot write into a 0700 directory;
        # -B: a 32 MiB kernel buffer (libpcap's default is 2 MiB), which a kernel sent
        # over TFTP or HTTP overflows while two TCG guests keep both cores busy: the
        # dropped frames were the evidence (a transfer's last block, an ERROR).
        self.command = [*exec_prefix(namespace), "tcpdump", "-i", interface, "-U",
                        "--immediate-mode", "-B", str(BUFFER_KIB), "-s", "0", "-Z", "root",
                        "-w", str(path)]
        self._process: subprocess.Popen[bytes] | None = None


    def start(self) -> None:
        if shutil.which("tcpdump") is None:
            raise HostCapabilityError("tcpdump not found; apt-get install tcpdump")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.log.info("starting capture: %s", shlex.join(self.command))
        self._process = subprocess.Popen(self.command, stdin=subprocess.DEVNULL,
                                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        try:
            self._wait_ready(self._process)
        except BaseException:
            self.stop()
            raise

    def _wait_ready(self, process: subprocess.Popen[bytes]) -> None:
        assert process.stderr is not None
        seen = b""
        deadline = time.monotonic() + self.ready_timeout
        with selectors.DefaultSelector() as selector:
            selector.register(process.stderr, selectors.EVENT_READ)
            while READY_TEXT not in seen:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise NetworkError(
                        f"tcpdump on {self.interface} not capturing after "
                        f"{self.ready_timeout:.1f}s (waited for {READY_TEXT.decode()!r}); "
                        f"it said: {seen.decode(errors='replace').strip() or 'nothing'}")
                if not selector.select(remaining):
                    continue
                chunk = os.read(process.stderr.fileno(), 4096)
                if not chunk:
                    process.wait()
                    raise NetworkError(
                        f"tcpdump on {self.interface} exited with {process.returncode} "
                        f"before capturing: {seen.decode(errors='replace').strip()}")
                seen += chunk
        self.log.debug("tcpdump pid %d: %s", process.pid,
                       seen.decode(errors="replace").strip())

    def stop(self) -> None:
        """SIGINT tcpdump so it flushes and closes the pcap (SIGKILL if it hangs)."""
        process, self._process = self._process, None
        if process is None:
            return
        if process.poll() is None:
            _wait_drained(process.pid, DRAIN_TIMEOUT_S)
            process.send_signal(signal.SIGINT)
        try:
            _, err = process.communicate(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            self.log.warning("tcpdump pid %d ignored SIGINT for %.0fs; killing it (the pcap "
                             "may be truncated)", process.pid, STOP_TIMEOUT_S)
            process.kill()
            _, err = process.communicate()
        summary = " ".join(err.decode(errors="replace").split())
        self.log.info("capture %s stopped (%s)", self.path, summary or "no summary")


def _wait_drained(pid: int, timeout: float) -> None:
    """Wait until tcpdump sleeps waiting for packets, so it has written all it was given.

    tcpdump leaves on SIGINT after the batch it is handling: frames still in its
    socket's ring are lost. Under load it may not have run since the last frames
    came, so stopping it at once can leave the pcap without them.
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
            wchan = Path(f"/proc/{pid}/wchan").read_text()
        except (OSError, IndexError):
            return  # gone, or no /proc: nothing to wait for
        if state == "S" and wchan.startswith(_WAITING):
            return
        time.sleep(0.005)
    log.debug("tcpdump pid %d still busy after %.1fs; stopping it anyway", pid, timeout)
