"""dnsmasq from the user's configuration file: DHCPv4/v6, TFTP, RA, DNS as it says."""

from __future__ import annotations

from pxelab.daemons.base import Daemon
from pxelab.daemons.sockets import Port
from pxelab.daemons.spec import DaemonType, Role, dnsmasq_roles

DNS_PORT = 53


class Dnsmasq(Daemon):
    """``dnsmasq --keep-in-foreground --conf-file=<rendered>``.

    Its log goes to stderr (``--log-facility=-``), that is to ``dnsmasq.log``.
    Lease and pid files go to its workdir; ``--user=root`` so that TFTP reads a
    data root only root may read. dnsmasq lets its configuration file override
    the command line, so a ``log-facility``, ``pid-file`` or ``dhcp-leasefile``
    there wins: the private /run and /var/lib/misc keep even those off the host.
    """

    type = DaemonType.DNSMASQ
    binary = "dnsmasq"
    package = "dnsmasq-base"
    private_dirs = ("/run", "/var/lib/misc")

    def arguments(self) -> list[str]:
        return [self.binary, "--keep-in-foreground", f"--conf-file={self.config_path}",
                "--log-facility=-", f"--pid-file={self.workdir / 'dnsmasq.pid'}",
                f"--dhcp-leasefile={self.workdir / 'dnsmasq.leases'}", "--user=root",
                *self.spec.args]

    def ports(self) -> frozenset[Port]:
        roles = dnsmasq_roles(self.rendered, self.spec.args)
        ports = {Port(67)} if Role.DHCP4 in roles else set()
        ports |= {Port(547)} if Role.DHCP6 in roles else set()
        ports |= {Port(69)} if Role.TFTP in roles else set()
        dns = _dns_port(self.rendered, self.spec.args)
        return frozenset(ports | ({Port(dns)} if dns else set()))


def _dns_port(text: str, args: tuple[str, ...]) -> int:
    """The DNS port it binds (``port=``, the last one counts; 0: no DNS)."""
    port = DNS_PORT
    for raw in [*text.splitlines(), *(word.removeprefix("--") for word in args)]:
        key, _, value = raw.split("#", 1)[0].strip().partition("=")
        if key.strip() == "port" and value.strip().isdigit():
            port = int(value)
    return port
