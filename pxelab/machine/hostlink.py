"""STAND-IN for lv-net's HostBridge (branch lv-net owns this module; take theirs on merge).

A host bridge with no address joined to a lab's bridge by a veth pair, so a guest
libvirtd starts in the host's namespace is on the lab's link. Same interface as
lv-net's: ``HostBridge(net, name=None, mtu=None)``, ``.bridge``, ``.port``,
:func:`reap_host_links`.
"""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import logging
import re
from pathlib import Path

from pyroute2 import IPRoute
from pyroute2 import netns as _netns
from pyroute2.netlink.exceptions import NetlinkError

from pxelab.core.resource import Resource
from pxelab.machine.network import LabNetwork, creator_pid, write_sysctl

log = logging.getLogger(__name__)

_counter = itertools.count()
_LINK = re.compile(r"^px[hv](?P<lab>[0-9a-f]{8})[0-9]+$")


def lab_token(namespace: str) -> str:
    return hashlib.sha256(namespace.encode()).hexdigest()[:8]


def reap_host_links(logger: logging.Logger = log) -> list[str]:
    """Remove host links whose lab namespace is gone; their names."""
    live = {lab_token(ns) for ns in _netns.listnetns()
            if (pid := creator_pid(ns)) is None or Path(f"/proc/{pid}").exists()}
    removed = []
    with IPRoute() as ipr:
        for link in ipr.link("dump"):
            name = link.get("ifname")
            match = _LINK.match(name or "")
            if match and match["lab"] not in live:
                with contextlib.suppress(NetlinkError):
                    ipr.link("del", index=link["index"])
                    logger.warning("removed host link %s of a lab that is gone", name)
                    removed.append(name)
    return removed


class HostBridge(Resource):
    def __init__(self, net: LabNetwork, name: str | None = None,
                 mtu: int | None = None) -> None:
        self.net = net
        rest = f"{lab_token(net.namespace)}{next(_counter)}"
        self.bridge = name or f"pxh{rest}"
        self.veth = f"pxv{rest}"
        self.port = f"pxp{rest}"
        self.mtu = mtu
        self._created = False

    def start(self) -> None:
        reap_host_links()
        self._created = True
        try:
            with IPRoute() as ipr:
                ipr.link("add", ifname=self.bridge, kind="bridge", br_stp_state=0,
                         br_forward_delay=0)
                Path(f"/proc/sys/net/ipv6/conf/{self.bridge}/disable_ipv6").write_text("1")
                ipr.link("add", ifname=self.veth, kind="veth",
                         peer={"ifname": self.port, "net_ns_fd": self.net.namespace})
                Path(f"/proc/sys/net/ipv6/conf/{self.veth}/disable_ipv6").write_text("1")
                (bridge,) = ipr.link_lookup(ifname=self.bridge)
                (veth,) = ipr.link_lookup(ifname=self.veth)
                ipr.link("set", index=veth, master=bridge, state="up")
                ipr.link("set", index=bridge, state="up")
            with IPRoute(netns=self.net.namespace, flags=0) as ipr:
                write_sysctl(self.net.namespace, f"net.ipv6.conf.{self.port}.disable_ipv6", "1")
                (port,) = ipr.link_lookup(ifname=self.port)
                (lab,) = ipr.link_lookup(ifname=self.net.bridge)
                if self.mtu is not None:
                    ipr.link("set", index=port, mtu=self.mtu)
                ipr.link("set", index=port, master=lab, state="up")
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        if not self._created:
            return
        self._created = False
        with IPRoute() as ipr:
            for name in (self.veth, self.bridge):
                for index in ipr.link_lookup(ifname=name):
                    with contextlib.suppress(NetlinkError):
                        ipr.link("del", index=index)
