"""One third-party daemon in the lab: rendered config, private state, log, readiness, stop.

Every daemon runs in the foreground, in the lab's network namespace and in a
mount namespace of its own (``unshare --mount``) where the host directories it
writes by default (/run, /var/lib/dhcp, /var/lib/kea, ...) are bind mounts of
directories under its workdir, and /dev/log is a socket of its own
(:class:`SyslogCatcher`). So a user's configuration that names
``/run/nginx.pid`` or ``/var/lib/kea/kea-leases4.csv`` still touches nothing on
the host, and two labs in parallel never share a file.

Files, under ``<artifacts_dir>/daemons/``: ``<type>.log`` (stdout, stderr and
syslog of the daemon, plus its own log file where it is told to write there),
``<type>.conf`` (the rendered configuration it was started with),
``<type>.cmdline`` (the command, to rerun by hand) and ``<type>/`` (its
workdir: pid and lease files, the rendered files its configuration includes, the
private directories under ``root/``).
"""

from __future__ import annotations

import contextlib
import logging
import os
import select
import shlex
import shutil
import signal
import subprocess
import time
from abc import abstractmethod
from collections.abc import Mapping
from pathlib import Path
from typing import BinaryIO, ClassVar

from pxelab.core.errors import DaemonError, HostCapabilityError
from pxelab.core.netns import exec_prefix
from pxelab.core.process import terminate
from pxelab.core.resource import Resource
from pxelab.core.template import render
from pxelab.daemons.sockets import Port, bound_ports, group_pids
from pxelab.daemons.spec import DaemonSpec, DaemonType
from pxelab.daemons.syslog import SyslogCatcher

POLL_S = 0.05  # how often the socket tables are read while waiting; an exit wakes at once
TAIL_LINES = 20
SBIN = "/usr/sbin:/sbin"

# Run by sh inside the daemon's own mount namespace: bind its private directories,
# put its syslog socket where /dev/log points, then become the daemon (same pid).
# A directory the host lacks (/var/lib/kea before kea's postinst ran) is made in an
# overlay of its parent whose upper layer is in the workdir: the host stays untouched.
MOUNT_SCRIPT = """\
syslog=$1; shift
while [ "$1" != -- ]; do
  if [ ! -d "$2" ]; then
    mkdir -p "$1.upper" "$1.work"
    mount -t overlay pxelab -o "lowerdir=${2%/*},upperdir=$1.upper,workdir=$1.work" "${2%/*}"
    mkdir -p "$2"
  fi
  mount --bind "$1" "$2"; shift 2
done; shift
log=$(readlink -m /dev/log)
case $log in /run/*) mkdir -p "${log%/*}"; : >> "$log";; esac
if [ -e "$log" ]; then mount --bind "$syslog" "$log"; fi
exec "$@"
"""


class Daemon(Resource):
    """A daemon started from a :class:`DaemonSpec` with the lab's template ``values``.

    The configuration is rendered in the constructor, so a template mistake is a
    ConfigError before anything starts. Subclasses say how to run it
    (:meth:`arguments`) and what it binds (:meth:`ports`).
    """

    type: ClassVar[DaemonType]
    binary: ClassVar[str]
    package: ClassVar[str]  # the Debian package that has ``binary``
    private_dirs: ClassVar[tuple[str, ...]] = ("/run",)
    ready_timeout: ClassVar[float] = 15.0
    stop_timeout: ClassVar[float] = 5.0

    def __init__(self, spec: DaemonSpec, values: Mapping[str, str], namespace: str | None,
                 artifacts_dir: Path) -> None:
        self.spec = spec
        self.namespace = namespace
        self.dir = Path(artifacts_dir) / "daemons"
        self.log_path = self.dir / f"{self.type}.log"
        self.config_path = self.dir / f"{self.type}.conf"
        self.workdir = self.dir / str(self.type)
        self.values = {**values, "workdir": str(self.workdir), "log": str(self.log_path)}
        self.log = logging.getLogger(f"{__name__}.{self.type}.{namespace}")
        self.rendered = self.render_config()
        self.included = {path.name: render(path.read_text(encoding="utf-8"), self.values,
                                           source=str(path)) for path in spec.includes}
        self.process: subprocess.Popen[bytes] | None = None
        self._output: BinaryIO | None = None
        self._syslog: SyslogCatcher | None = None

    # -- what subclasses say ----------------------------------------------------------------

    def render_config(self) -> str:
        """The configuration file with the lab's values filled in ("" without one)."""
        if self.spec.config is None:
            return ""
        text = self.spec.config.read_text(encoding="utf-8")
        return render(text, self.values, source=str(self.spec.config))

    @abstractmethod
    def arguments(self) -> list[str]:
        """The daemon's own command line (binary first), in the foreground."""

    @abstractmethod
    def ports(self) -> frozenset[Port]:
        """What it binds once it serves; start() waits for all of them."""

    def environment(self) -> dict[str, str]:
        """Variables added to its environment."""
        return {}

    def prepare(self) -> None:
        """Create what it needs in its workdir before it starts."""

    def started(self) -> bool:
        """Anything besides its ports that says it is up (radvd has no port)."""
        return True

    # -- lifecycle ----------------------------------------------------------------------------

    @property
    def command(self) -> list[str]:
        """The exact command line start() runs."""
        binds: list[str] = []
        for host_dir in self.private_dirs:
            binds += [str(self.private_root / host_dir.lstrip("/")), host_dir]
        syslog = str(self._syslog.path) if self._syslog else "/dev/null"
        return [*exec_prefix(self.namespace), "unshare", "--mount", "--propagation", "private",
                "sh", "-ec", MOUNT_SCRIPT, f"pxelab-{self.type}", syslog, *binds, "--",
                *self.arguments()]

    @property
    def private_root(self) -> Path:
        """Where the host directories it writes by default live for this lab."""
        return self.workdir / "root"

    def start(self) -> None:
        """Start it and wait until it has bound its ports; stops it again on failure."""
        if self.process is not None:
            raise DaemonError(f"{self.type} is already running (pid {self.process.pid})")
        self._require_binary()
        self.workdir.mkdir(parents=True, exist_ok=True)
        for host_dir in self.private_dirs:
            (self.private_root / host_dir.lstrip("/")).mkdir(parents=True, exist_ok=True)
        self.config_path.write_text(self.rendered, encoding="utf-8")
        for name, text in self.included.items():
            (self.workdir / name).write_text(text, encoding="utf-8")
        self.prepare()
        try:
            self._output = self.log_path.open("ab")
            self._syslog = SyslogCatcher(self._output, str(self.type))
            self._syslog.start()
            command = self.command
            (self.dir / f"{self.type}.cmdline").write_text(shlex.join(command) + "\n")
            self.log.info("starting: %s", shlex.join(command))
            self.process = subprocess.Popen(
                command, stdin=subprocess.DEVNULL, stdout=self._output,
                stderr=subprocess.STDOUT, cwd=self.workdir, start_new_session=True,
                env={**os.environ, **self.environment()})
            self._wait_ready()
        except BaseException:
            self.stop()
            raise
        self.log.info("%s ready (pid %d): %s", self.type, self.process.pid,
                      ", ".join(map(str, sorted(self.ports()))) or "no ports")

    def _require_binary(self) -> None:
        path = os.environ.get("PATH", "") + ":" + SBIN
        if shutil.which(self.binary, path=path) is None:
            raise HostCapabilityError(
                f"{self.binary} not found, needed for the {self.type} daemon"
                f"{' of ' + self.spec.where if self.spec.where else ''}; install it: "
                f"apt-get install {self.package}")

    def _wait_ready(self) -> None:
        assert self.process is not None
        wanted = self.ports()
        deadline = time.monotonic() + self.ready_timeout
        pidfd = os.pidfd_open(self.process.pid)
        try:
            while True:
                code = self.process.poll()
                if code is not None:
                    raise self._error(f"exited with status {code} while starting")
                held = bound_ports(self.process.pid)
                if wanted <= held and self.started():
                    return
                if time.monotonic() >= deadline:
                    seen = ", ".join(map(str, sorted(held))) or "none"
                    raise self._error(f"did not come up within {self.ready_timeout:g} s "
                                      f"(ports it holds: {seen})")
                select.select([pidfd], [], [], POLL_S)  # readable as soon as it exits
        finally:
            os.close(pidfd)

    def _error(self, what: str) -> DaemonError:
        ports = ", ".join(map(str, sorted(self.ports()))) or "its pid file"
        where = f"{self.spec.where}: " if self.spec.where else ""
        return DaemonError(
            f"{where}{self.type} {what}; waited for {ports}.\n"
            f"Last lines of its log {self.log_path}:\n{self.log_tail()}\n"
            f"Its configuration as started: {self.config_path or '(none)'}; command: "
            f"{self.dir / f'{self.type}.cmdline'}")

    def log_tail(self, lines: int = TAIL_LINES) -> str:
        """The last ``lines`` of its log, indented."""
        if self._output is not None:
            self._output.flush()
        try:
            text = self.log_path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return "  (no log)"
        tail = [line for line in text.splitlines() if line.strip()][-lines:]
        return "\n".join(f"  {line}" for line in tail) or "  (empty)"

    def stop(self) -> None:
        """SIGTERM, SIGKILL after ``stop_timeout``, then SIGKILL whatever it forked that is
        left in its process group; idempotent."""
        process, self.process = self.process, None
        if process is not None:
            terminate(process, self.stop_timeout, self.log, str(self.type))
            _kill_group(process.pid, self.stop_timeout)
        if self._syslog is not None:
            self._syslog.stop()
            self._syslog = None
        if self._output is not None:
            self._output.close()
            self._output = None


def _kill_group(pgid: int, timeout: float) -> None:
    """SIGKILL what is left of process group ``pgid`` (nginx workers, dnsmasq helpers)
    and wait until it is gone."""
    left = group_pids(pgid)
    if not left:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, signal.SIGKILL)
    for pid in left:
        try:
            fd = os.pidfd_open(pid)
        except ProcessLookupError:
            continue
        try:
            select.select([fd], [], [], timeout)
        finally:
            os.close(fd)
