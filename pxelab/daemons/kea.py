"""ISC Kea (kea-dhcp4, kea-dhcp6) from the user's JSON configuration."""

from __future__ import annotations

from typing import ClassVar

from pxelab.daemons.base import Daemon
from pxelab.daemons.sockets import Port
from pxelab.daemons.spec import DaemonType


class _Kea(Daemon):
    """``kea-dhcpN -c <rendered>``: in the foreground by itself.

    Kea logs to stdout when its configuration has no ``loggers`` (so to
    ``<type>.log``); a logger with ``"output": "{{ log }}"`` writes there too.
    Its pid and lock files go to its workdir (KEA_PIDFILE_DIR, KEA_LOCKFILE_DIR);
    the lease and server-id files it keeps by default in /var/lib/kea land in
    the private copy of that directory. Kea 2.6 (Debian 13) accepts log files
    only below KEA_LOG_FILE_DIR: set to the artifacts' daemons directory.
    """

    private_dirs = ("/run", "/var/lib/kea", "/var/log/kea")
    port: ClassVar[int]

    def arguments(self) -> list[str]:
        return [self.binary, "-c", str(self.config_path), *self.spec.args]

    def ports(self) -> frozenset[Port]:
        return frozenset({Port(self.port)})

    def environment(self) -> dict[str, str]:
        return {"KEA_PIDFILE_DIR": str(self.workdir), "KEA_LOCKFILE_DIR": str(self.workdir),
                "KEA_LOG_FILE_DIR": str(self.dir)}


class Kea4(_Kea):
    type = DaemonType.KEA_DHCP4
    binary = "kea-dhcp4"
    package = "kea-dhcp4-server"
    port = 67


class Kea6(_Kea):
    type = DaemonType.KEA_DHCP6
    binary = "kea-dhcp6"
    package = "kea-dhcp6-server"
    port = 547
