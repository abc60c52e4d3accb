"""nginx from the user's nginx.conf: HTTP on the ports of its ``listen`` directives."""

from __future__ import annotations

import re

from pxelab.daemons.base import Daemon
from pxelab.daemons.sockets import Port, Proto
from pxelab.daemons.spec import DaemonType

HTTP_PORT = 80
_LISTEN = re.compile(r"^\s*listen\s+([^\s;]+)", re.MULTILINE)
_HTTP_BLOCK = re.compile(r"^(\s*http\s*\{)", re.MULTILINE)
_DAEMON = re.compile(r"^\s*daemon\s", re.MULTILINE)


class Nginx(Daemon):
    """``nginx -p <workdir>/ -e <log> -c <rendered> -g 'daemon off; error_log <log> info;'``.

    The log, without editing the user's file: ``-e`` and a ``-g error_log``
    send nginx's errors (and start-up notices) to ``nginx.log``; for requests,
    the rendered copy (``nginx.conf`` in the artifacts, the file nginx runs)
    gets one line after ``http {``: ``access_log <log>;``. nginx logs to every
    access_log in effect, so the user's own access logs keep working; a
    ``server`` or ``location`` with access_log of its own replaces the
    inherited one there, and its requests are not in ``nginx.log``.
    Relative paths resolve under the workdir (``-p``); the pid file, temp
    directories and /var/log/nginx of a Debian-style configuration are private.
    """

    type = DaemonType.NGINX
    binary = "nginx"
    package = "nginx"
    private_dirs = ("/run", "/var/lib/nginx", "/var/log/nginx")

    def render_config(self) -> str:
        text = super().render_config()
        line = f"access_log {self.log_path};  # added by pxelab: requests in the lab's log"
        return _HTTP_BLOCK.sub(lambda m: f"{m.group(1)}\n    {line}", text, count=1)

    def arguments(self) -> list[str]:
        directives = f"error_log {self.log_path} info;"
        if not _DAEMON.search(self.rendered):
            directives = f"daemon off; {directives}"
        return [self.binary, "-p", f"{self.workdir}/", "-e", str(self.log_path),
                "-c", str(self.config_path), "-g", directives, *self.spec.args]

    def ports(self) -> frozenset[Port]:
        return frozenset(Port(port, Proto.TCP) for port in listen_ports(self.rendered))


def listen_ports(text: str) -> set[int]:
    """The TCP ports of an nginx configuration's ``listen`` directives (80 if none)."""
    ports = set()
    for word in _LISTEN.findall(text):
        if word.startswith("unix:"):
            continue
        tail = word.rsplit("]", 1)[-1] if word.startswith("[") else word
        number = tail.rpartition(":")[2]
        ports.add(int(number) if number.isdigit() else HTTP_PORT)
    return ports or {HTTP_PORT}
