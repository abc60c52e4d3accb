"""The lab's third-party daemons together: started in order, stopped in reverse."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path

from pxelab.core.resource import Resource
from pxelab.daemons.base import Daemon
from pxelab.daemons.dhcpd import Dhcpd, Dhcpd6
from pxelab.daemons.dnsmasq import Dnsmasq
from pxelab.daemons.kea import Kea4, Kea6
from pxelab.daemons.nginx import Nginx
from pxelab.daemons.radvd import Radvd
from pxelab.daemons.spec import DaemonSpec, DaemonType
from pxelab.daemons.tftpd import TftpdHpa

DAEMONS: dict[DaemonType, type[Daemon]] = {
    cls.type: cls for cls in (Dnsmasq, Kea4, Kea6, Dhcpd, Dhcpd6, Radvd, TftpdHpa, Nginx)
}


def make_daemon(spec: DaemonSpec, values: Mapping[str, str], namespace: str | None,
                artifacts_dir: Path) -> Daemon:
    """The daemon object for ``spec`` (its configuration rendered, nothing started)."""
    return DAEMONS[spec.type](spec, values, namespace, artifacts_dir)


class DaemonStack(Resource):
    """``with DaemonStack(specs, values, namespace, artifacts_dir):`` runs them all.

    Every configuration is rendered in the constructor, so a template mistake in
    any of them is a ConfigError before the first daemon starts. start() starts
    them in the given order, each ready before the next; if one fails (or on
    KeyboardInterrupt) those already running are stopped, in reverse, before
    the error propagates. stop() stops all in reverse order.
    """

    def __init__(self, specs: Sequence[DaemonSpec], values: Mapping[str, str],
                 namespace: str | None, artifacts_dir: Path) -> None:
        self.daemons = [make_daemon(spec, values, namespace, artifacts_dir) for spec in specs]
        self.log = logging.getLogger(f"{__name__}.{namespace}")
        self._running: list[Daemon] = []

    @property
    def logs(self) -> dict[DaemonType, Path]:
        """Each daemon's log file (an artifact, also for the analysis)."""
        return {daemon.type: daemon.log_path for daemon in self.daemons}

    def start(self) -> None:
        try:
            for daemon in self.daemons:
                daemon.start()
                self._running.append(daemon)
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        while self._running:
            daemon = self._running.pop()
            try:
                daemon.stop()
            except Exception:
                self.log.exception("stopping %s failed", daemon.type)
