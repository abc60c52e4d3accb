"""A bridge in the host's namespace joined to a lab's bridge, for guests started outside it.

libvirtd starts QEMU in the host's network namespace, so its tap cannot be a port
of the lab bridge, which lives in the lab's namespace. A HostBridge makes, per
lab, a host bridge ``pxh<token>`` (what a domain's ``<source bridge=.../>``
names) and a veth pair: ``pxv<token>`` is its only port, the peer ``pxp<token>``
is a port of the lab bridge. The host bridge has no address, ARP off and IPv6
disabled, and an nftables table (``netdev pxelab_<bridge>``) drops every frame
the bridge would pass up to the host's stack or take from it: the host neither
answers the lab (it would, on a host address, through the weak host model) nor
routes for it, and with no other port than libvirt's tap nothing the lab sends
reaches a host interface.

``<token>`` is 8 hex digits of a hash of the lab's namespace name plus a counter,
so parallel labs never collide and a later run can tell, from the name alone,
which lab a link (or table) belonged to: :func:`reap_host_links` removes those
whose lab namespace is gone (or whose creator died). Nothing is written anywhere
but the kernel, so a run killed at any moment leaves nothing a later one cannot find.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import itertools
import logging
import os
import re
import shlex
import shutil
import subprocess
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pyroute2 import IPRoute
from pyroute2 import netns as _netns
from pyroute2.netlink.exceptions import NetlinkError

from pxelab.core.errors import HostCapabilityError, NetworkError
from pxelab.core.resource import Resource
from pxelab.machine.network import IFNAMSIZ, LabNetwork, creator_pid, pid_alive, write_sysctl

log = logging.getLogger(__name__)

BRIDGE_PREFIX = "pxh"  # the host bridge
VETH_PREFIX = "pxv"  # its one port, in the host namespace
PORT_PREFIX = "pxp"  # the peer: a port of the lab bridge, in the lab namespace
TOKEN_DIGITS = 8
WAIT_TIMEOUT_S = 10.0

_HOST_LINK = re.compile(rf"^(?:{BRIDGE_PREFIX}|{VETH_PREFIX})"
                        rf"(?P<lab>[0-9a-f]{{{TOKEN_DIGITS}}})[0-9a-z]+$")
_counter = itertools.count()

TABLE_PREFIX = "pxelab_"  # + the bridge's name: its nftables table (family netdev)


@dataclass(frozen=True)
class HostLinkNames:
    """The three links of one HostBridge."""

    bridge: str  # host namespace
    veth: str  # host namespace, the bridge's port
    port: str  # lab namespace, a port of the lab bridge

    @classmethod
    def for_bridge(cls, bridge: str) -> HostLinkNames:
        """The names that go with host bridge ``bridge`` (``pxh...``)."""
        if not bridge.startswith(BRIDGE_PREFIX) or len(bridge) <= len(BRIDGE_PREFIX):
            raise NetworkError(f"host bridge name {bridge!r} must begin with "
                               f"{BRIDGE_PREFIX!r} and go on; the veths are named after it")
        if len(bridge) > IFNAMSIZ:
            raise NetworkError(f"interface name {bridge!r} is longer than {IFNAMSIZ} "
                               "characters")
        rest = bridge[len(BRIDGE_PREFIX):]
        return cls(bridge, VETH_PREFIX + rest, PORT_PREFIX + rest)


def lab_token(namespace: str) -> str:
    """The hex digits that name ``namespace``'s host links (a hash: names are short)."""
    return hashlib.sha256(namespace.encode()).hexdigest()[:TOKEN_DIGITS]


def host_link_names(namespace: str, serial: int) -> HostLinkNames:
    """The links of the ``serial``-th HostBridge of this process for lab ``namespace``."""
    return HostLinkNames.for_bridge(f"{BRIDGE_PREFIX}{lab_token(namespace)}{_base36(serial)}")


def _base36(number: int) -> str:
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    text = ""
    while True:
        number, digit = divmod(number, 36)
        text = digits[digit] + text
        if not number:
            return text


def link_lab_token(ifname: str) -> str | None:
    """The lab token in a host link's name, or None if it is not a HostBridge's link."""
    match = _HOST_LINK.match(ifname)
    return match["lab"] if match else None


def stale_host_links(ifnames: Iterable[str], namespaces: Iterable[str],
                     alive: Callable[[int], bool]) -> list[str]:
    """The HostBridge links among ``ifnames`` whose lab is not among ``namespaces``, or
    whose lab's creator pid is not ``alive`` (a killed run's lab, not yet swept)."""
    live = {lab_token(ns) for ns in namespaces
            if (pid := creator_pid(ns)) is None or alive(pid)}
    return [name for name in ifnames
            if (token := link_lab_token(name)) is not None and token not in live]


def reap_host_links(logger: logging.Logger = log) -> list[str]:
    """Remove the host links and tables of labs that are gone (killed runs); their names."""
    namespaces = _netns.listnetns()
    removed = []
    with IPRoute() as ipr:
        links = {link.get("ifname"): link["index"] for link in ipr.link("dump")}
        for name in sorted(stale_host_links(links, namespaces, pid_alive)):
            try:
                ipr.link("del", index=links[name])
            except NetlinkError as error:
                if error.code != errno.ENODEV:  # gone with its peer, or reaped by another run
                    logger.warning("could not remove stale host link %s: %s", name,
                                   os.strerror(error.code))
                continue
            logger.warning("removed host link %s of a lab that is gone", name)
            removed.append(name)
    tables = [t.removeprefix(TABLE_PREFIX) for t in _host_tables()]
    for bridge in stale_host_links(tables, namespaces, pid_alive):
        if _delete_table(TABLE_PREFIX + bridge, logger):
            logger.warning("removed nftables table %s of a lab that is gone",
                           TABLE_PREFIX + bridge)
            removed.append(TABLE_PREFIX + bridge)
    return removed


def _nft(args: list[str], stdin: str | None, logger: logging.Logger) -> str:
    """Run nft in the host namespace; its stdout, or NetworkError with its stderr."""
    if shutil.which("nft") is None:
        raise HostCapabilityError("nft not found; a host bridge isolates the host with "
                                  "nftables: apt-get install nftables")
    command = ["nft", *args]
    logger.debug("running %s", shlex.join(command))
    result = subprocess.run(command, input=stdin, capture_output=True, text=True,
                            timeout=WAIT_TIMEOUT_S, check=False)
    if result.returncode != 0:
        raise NetworkError(f"{shlex.join(command)} failed: {result.stderr.strip()}")
    return result.stdout


def _host_tables() -> list[str]:
    """The names of the host's netdev tables that HostBridges made."""
    if shutil.which("nft") is None:
        return []  # then no HostBridge could have made one
    listing = _nft(["list", "tables", "netdev"], None, log)
    return re.findall(rf"^table netdev ({TABLE_PREFIX}\S+)$", listing, re.MULTILINE)


def _delete_table(table: str, logger: logging.Logger) -> bool:
    """Delete netdev table ``table`` if it exists; whether it did."""
    if table not in _host_tables():
        return False
    try:
        _nft(["delete", "table", "netdev", table], None, logger)
    except NetworkError as error:  # deleted meanwhile by another run's reaper
        logger.debug("%s", error)
        return False
    return True


def _wait_link(ipr: IPRoute, what: str, **spec: Any) -> Any:
    """Poll netlink until the one link matching ``spec`` shows; its message."""
    try:
        (link,) = ipr.poll(ipr.link, "dump", timeout=WAIT_TIMEOUT_S, interval=0.01, **spec)
    except TimeoutError:
        raise NetworkError(f"netlink never showed {what} within {WAIT_TIMEOUT_S}s") from None
    return link


class HostBridge(Resource):
    """A host bridge joined to ``net``'s lab bridge by a veth pair; see the module docstring.

    ``with HostBridge(net) as link:`` gives ``link.bridge`` (for libvirt's
    ``<source bridge=.../>``) and ``link.port`` (the lab bridge's port, for
    ``net.impair(link.port, ...)``). ``name`` chooses the host bridge's name
    (``pxh...``; a name not of the form :func:`host_link_names` makes is never
    reaped). ``mtu`` is the port's MTU, as in ``LabNetwork.add_tap``.
    """

    def __init__(self, net: LabNetwork, name: str | None = None,
                 mtu: int | None = None) -> None:
        self.net = net
        names = (HostLinkNames.for_bridge(name) if name
                 else host_link_names(net.namespace, next(_counter)))
        self.bridge = names.bridge
        self.veth = names.veth
        self.port = names.port
        self.mtu = mtu
        self.log = logging.getLogger(f"{__name__}.{self.bridge}")
        self._created = False

    def start(self) -> None:
        if os.geteuid() != 0:
            raise HostCapabilityError("a host bridge needs root (bridges and veths in the "
                                      "host namespace); run as root")
        if self.net.namespace not in _netns.listnetns():
            raise NetworkError(f"lab namespace {self.net.namespace} does not exist; enter "
                               "the LabNetwork before its HostBridge")
        reap_host_links(self.log)
        self._created = True
        try:
            self._create_host_side()
            self._attach_lab_side()
        except NetlinkError as error:
            self.stop()
            if error.code == errno.EOPNOTSUPP:
                raise HostCapabilityError(f"the kernel cannot make {self.bridge}: "
                                          f"{os.strerror(error.code)}; it needs the bridge "
                                          "and veth modules (modprobe bridge veth)") from error
            raise NetworkError(f"cannot create host bridge {self.bridge} for "
                               f"{self.net.namespace}: {os.strerror(error.code)}") from error
        except BaseException:
            self.stop()
            raise
        self.log.info("host bridge %s joined to %s of %s through %s/%s", self.bridge,
                      self.net.bridge, self.net.namespace, self.veth, self.port)

    def _create_host_side(self) -> None:
        with IPRoute() as ipr:
            # STP off, no forward delay: libvirt's tap forwards as soon as it is added.
            # No multicast snooping: with two ports, every frame goes to the other one.
            ipr.link("add", ifname=self.bridge, kind="bridge", br_stp_state=0,
                     br_forward_delay=0, br_mcast_snooping=0)
            bridge = _wait_link(ipr, f"bridge {self.bridge}", ifname=self.bridge)
            self._quiet(self.bridge)
            self._isolate()
            # ARP off: the host answers no ARP request from the lab, for any of its addresses.
            ipr.link("set", index=bridge["index"], arp=False)
            ipr.link("add", ifname=self.veth, kind="veth",
                     peer={"ifname": self.port, "net_ns_fd": self.net.namespace})
            veth = _wait_link(ipr, f"veth {self.veth}", ifname=self.veth)
            self._quiet(self.veth)
            ipr.link("set", index=veth["index"], master=bridge["index"], state="up")
            ipr.link("set", index=bridge["index"], state="up")
            _wait_link(ipr, f"{self.veth} up in {self.bridge}", index=veth["index"],
                       master=bridge["index"], state="up")

    def _attach_lab_side(self) -> None:
        namespace = self.net.namespace
        with IPRoute(netns=namespace, flags=0) as ipr:
            port = _wait_link(ipr, f"{self.port} in {namespace}", ifname=self.port)
            (lab_bridge,) = ipr.link("get", ifname=self.net.bridge)
            # The lab side of a guest's link needs no IPv6 of its own, as a tap's (no RS/MLD).
            write_sysctl(namespace, f"net.ipv6.conf.{self.port}.disable_ipv6", "1")
            if self.mtu is not None:
                ipr.link("set", index=port["index"], mtu=self.mtu)
            ipr.link("set", index=port["index"], master=lab_bridge["index"], state="up")
            _wait_link(ipr, f"{self.port} up in {self.net.bridge}", index=port["index"],
                       master=lab_bridge["index"], state="up")
            if self.mtu is not None:
                # The lab bridge keeps its own MTU, as with add_tap(mtu=...).
                ipr.link("set", index=lab_bridge["index"],
                         mtu=lab_bridge.get_attr("IFLA_MTU"))

    @staticmethod
    def _quiet(ifname: str) -> None:
        """No IPv6 on ``ifname`` (before it is up: no link-local, DAD, RS or MLD)."""
        Path(f"/proc/sys/net/ipv6/conf/{ifname}/disable_ipv6").write_text("1")

    def _isolate(self) -> None:
        """Drop what the bridge passes up to the host's stack, and what that sends on it.

        Frames forwarded between the bridge's ports never pass these hooks. A
        hook on the bridge device, not a bridge-family rule: those see every
        bridge of the host, and ``meta ibrname`` is not in every kernel.
        """
        table = TABLE_PREFIX + self.bridge
        label = f'comment "pxelab: the host stack takes nothing from lab {self.net.namespace}"'
        ruleset = (
            f"table netdev {table} {{\n"
            f'  chain ingress {{ type filter hook ingress device "{self.bridge}" priority 0; '
            f"counter drop {label}; }}\n"
            f'  chain egress {{ type filter hook egress device "{self.bridge}" priority 0; '
            f"counter drop {label}; }}\n"
            "}\n")
        _nft(["-f", "-"], ruleset, self.log)

    def stop(self) -> None:
        """Remove the bridge and the veth pair (both ends); safe to call twice."""
        if not self._created:
            return
        self._created = False
        with IPRoute() as ipr:
            for name in (self.veth, self.bridge):  # the veth's peer goes with it
                for index in ipr.link_lookup(ifname=name):  # none: never made, or gone
                    with contextlib.suppress(NetlinkError):  # removed meanwhile
                        ipr.link("del", index=index)
        _delete_table(TABLE_PREFIX + self.bridge, self.log)
        self.log.info("host bridge %s removed", self.bridge)
