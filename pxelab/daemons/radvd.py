"""radvd from the user's radvd.conf: router advertisements, no port to wait for."""

from __future__ import annotations

from pxelab.daemons.base import Daemon
from pxelab.daemons.sockets import Port, Proto
from pxelab.daemons.spec import DaemonType

ICMPV6 = 58


class Radvd(Daemon):
    """``radvd -n -m stderr -C <rendered> -p <workdir>/radvd.pid``.

    It is up once it holds its raw ICMPv6 socket and has written its pid file:
    radvd writes that only after its configuration passed its own check, so a
    broken file never counts as started.
    """

    type = DaemonType.RADVD
    binary = "radvd"
    package = "radvd"

    @property
    def pid_file(self) -> str:
        return str(self.workdir / "radvd.pid")

    def arguments(self) -> list[str]:
        return [self.binary, "-n", "-m", "stderr", "-C", str(self.config_path),
                "-p", self.pid_file, *self.spec.args]

    def ports(self) -> frozenset[Port]:
        return frozenset({Port(ICMPV6, Proto.RAW)})

    def started(self) -> bool:
        try:
            with open(self.pid_file, encoding="ascii") as pid:
                return pid.read().strip().isdigit()
        except OSError:
            return False
