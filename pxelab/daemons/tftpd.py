"""tftpd-hpa (in.tftpd) from its settings: TFTP_DIRECTORY, TFTP_ADDRESS, TFTP_OPTIONS."""

from __future__ import annotations

import shlex

from pxelab.core.errors import ConfigError
from pxelab.core.template import render
from pxelab.daemons.base import Daemon
from pxelab.daemons.sockets import Port
from pxelab.daemons.spec import DaemonType, TftpdOptions

TFTP_PORT = 69


class TftpdHpa(Daemon):
    """``in.tftpd --foreground --listen --user root --address A OPTIONS DIRECTORY``.

    ``tftpd-hpa.conf`` keeps the rendered settings in /etc/default/tftpd-hpa's
    form. ``--user root`` comes before the user's options (which may name
    another user) so that a data root only root may read is served. in.tftpd
    logs through syslog only (``--verbose`` for every request): caught into
    ``tftpd-hpa.log``.
    """

    type = DaemonType.TFTPD_HPA
    binary = "in.tftpd"
    package = "tftpd-hpa"

    @property
    def settings(self) -> TftpdOptions:
        options = self.spec.tftpd or TftpdOptions()
        source = self.spec.where or "tftpd-hpa"
        return TftpdOptions(*(render(value, self.values, source=f"{source} {key}")
                              for key, value in (("directory", options.directory),
                                                 ("address", options.address),
                                                 ("options", options.options))))

    def render_config(self) -> str:
        settings = self.settings
        return (f"TFTP_DIRECTORY={shlex.quote(settings.directory)}\n"
                f"TFTP_ADDRESS={shlex.quote(settings.address)}\n"
                f"TFTP_OPTIONS={shlex.quote(settings.options)}\n")

    def arguments(self) -> list[str]:
        settings = self.settings
        return [self.binary, "--foreground", "--listen", "--user", "root",
                "--address", settings.address, *shlex.split(settings.options),
                settings.directory]

    def ports(self) -> frozenset[Port]:
        return frozenset({Port(address_port(self.settings.address, self.spec.where))})


def address_port(address: str, where: str = "") -> int:
    """The port of a TFTP_ADDRESS: ``:69``, ``0.0.0.0:6969``, ``[::]:69``, ``192.0.2.1``."""
    host, colon, port = address.rpartition(":")
    bare_ipv6 = ":" in host and not host.startswith("[")
    if not colon or bare_ipv6 or port.endswith("]"):
        return TFTP_PORT  # no port: none given, or the colons of an IPv6 address
    if not port.isdigit():
        raise ConfigError(f"{where or 'tftpd-hpa'}: address = {address!r}: {port!r} is not "
                          "a port; write [host]:port, e.g. :69 or 192.0.2.1:69")
    return int(port)
