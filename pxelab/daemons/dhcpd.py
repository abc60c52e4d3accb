"""ISC dhcpd (-4 and -6) from the user's dhcpd.conf / dhcpd6.conf."""

from __future__ import annotations

from typing import ClassVar

from pxelab.daemons.base import Daemon
from pxelab.daemons.sockets import Port
from pxelab.daemons.spec import DaemonType


class _Dhcpd(Daemon):
    """``dhcpd -4|-6 -d -cf <rendered> -lf <workdir> -pf <workdir> [args] <interface>``.

    ``-d`` keeps it in the foreground and logs to stderr, that is to the log file
    (it also logs to syslog, caught there too). ``-lf`` and ``-pf`` on the
    command line win over ``lease-file-name`` and ``pid-file-name`` in the file.
    It serves the lab interface only (``{{ interface }}``).
    """

    package = "isc-dhcp-server"
    binary = "dhcpd"
    private_dirs = ("/run", "/var/lib/dhcp")
    family: ClassVar[str]
    port: ClassVar[int]

    @property
    def leases(self) -> str:
        return str(self.workdir / f"{self.type}.leases")

    def prepare(self) -> None:
        # dhcpd refuses to start without an (empty) lease file.
        with open(self.leases, "a", encoding="utf-8"):
            pass

    def arguments(self) -> list[str]:
        return [self.binary, self.family, "-d", "-cf", str(self.config_path), "-lf",
                self.leases, "-pf", str(self.workdir / f"{self.type}.pid"), *self.spec.args,
                self.values["interface"]]

    def ports(self) -> frozenset[Port]:
        return frozenset({Port(self.port)})


class Dhcpd(_Dhcpd):
    type = DaemonType.DHCPD
    family = "-4"
    port = 67


class Dhcpd6(_Dhcpd):
    type = DaemonType.DHCPD6
    family = "-6"
    port = 547
