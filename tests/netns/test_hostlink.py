"""HostBridge: a host bridge that reaches the lab, leaks nothing to the host, and vanishes."""

from __future__ import annotations

import json
import os
import select
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from pyroute2 import IPRoute
from pyroute2 import netns as pyroute2_netns
from scapy.layers.dhcp import DHCP
from scapy.layers.inet import ICMP, IP
from scapy.layers.l2 import ARP, Ether
from scapy.utils import rdpcap

from pxelab.core.errors import HostCapabilityError, NetworkError
from pxelab.core.netns import thread_in_namespace
from pxelab.machine.hostlink import TABLE_PREFIX, HostBridge, lab_token, reap_host_links
from pxelab.machine.network import LabNetwork, sweep_stale_labs
from pxelab.pytest_plugin import pxelab_requires

pytestmark = pytest.mark.netns

IFF_NOARP = 0x80
ETH_P_ALL = 0x0003
ETH_P_ARP = 0x0806
PROBE = "192.0.2.250"  # the extra namespace on the host bridge (guests get .100 on)
ROOT = Path(__file__).parents[2]


@pytest.fixture(autouse=True)
def _needs_root() -> None:
    pxelab_requires(root=True, tools=("nft",))


def host_links() -> list[str]:
    out = subprocess.run(["ip", "-br", "link"], capture_output=True, text=True, check=True)
    return [line.split()[0].split("@")[0] for line in out.stdout.splitlines()]


def links_of(namespace: str) -> list[str]:
    """Host links and tables named after lab ``namespace``."""
    tables = subprocess.run(["nft", "list", "tables", "netdev"], capture_output=True,
                            text=True, check=True).stdout
    token = lab_token(namespace)
    return [name for name in [*host_links(), *tables.split()]
            if name.removeprefix(TABLE_PREFIX)[3:].startswith(token)]


def host_ipv4() -> str:
    """An IPv4 address of the host's own (its default route's interface, else any)."""
    with IPRoute() as ipr:
        addresses = [a.get("address") for a in ipr.addr("dump", family=2)
                     if not a.get("address").startswith("127.")]
    if not addresses:
        pytest.skip("the host has no IPv4 address to probe")
    return str(addresses[0])


@contextmanager
def probe_namespace(bridge: str) -> Iterator[str]:
    """An extra namespace with PROBE/24 on a veth whose host end is a port of ``bridge``."""
    name = f"pxlt-{uuid.uuid4().hex[:8]}"
    host_end = f"pxt{name[5:]}"
    pyroute2_netns.create(name)
    try:
        with IPRoute() as ipr:
            ipr.link("add", ifname=host_end, kind="veth", peer={"ifname": "eth0",
                                                                  "net_ns_fd": name})
            (port,) = ipr.poll(ipr.link, "dump", timeout=5, ifname=host_end)
            (master,) = ipr.link_lookup(ifname=bridge)
            Path(f"/proc/sys/net/ipv6/conf/{host_end}/disable_ipv6").write_text("1")
            ipr.link("set", index=port["index"], master=master, state="up")
        with IPRoute(netns=name, flags=0) as ipr:
            (veth,) = ipr.link_lookup(ifname="eth0")
            ipr.addr("add", index=veth, address=PROBE, prefixlen=24)
            ipr.link("set", index=veth, state="up")
            ipr.poll(ipr.addr, "dump", index=veth, address=PROBE, timeout=5)
        yield name
    finally:
        pyroute2_netns.remove(name)  # its eth0 goes, and the host end with it


def ping(namespace: str, destination: str, timeout: float) -> bool:
    """Whether one ICMP echo from ``namespace`` to ``destination`` is answered in time."""
    ident = os.getpid() & 0xFFFF
    with thread_in_namespace(namespace):
        sock = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
    with sock:
        sock.sendto(bytes(ICMP(type=8, id=ident, seq=1) / b"pxelab"), (destination, 0))
        deadline = time.monotonic() + timeout
        while (remaining := deadline - time.monotonic()) > 0:
            sock.settimeout(remaining)
            try:
                reply = IP(sock.recv(2048))
            except TimeoutError:
                return False
            if ICMP in reply and reply[ICMP].type == 0 and reply[ICMP].id == ident:
                return True
    return False


def arp_answered(namespace: str, address: str, timeout: float = 1.0) -> bool:
    """Whether an ARP request for ``address``, broadcast from ``namespace``, is answered."""
    with thread_in_namespace(namespace):
        sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ARP))
    with sock:
        sock.bind(("eth0", ETH_P_ARP))
        mac = sock.getsockname()[4].hex(":")
        sock.send(bytes(Ether(dst="ff:ff:ff:ff:ff:ff", src=mac)
                        / ARP(hwsrc=mac, psrc=PROBE, pdst=address)))
        deadline = time.monotonic() + timeout
        while (remaining := deadline - time.monotonic()) > 0:
            sock.settimeout(remaining)
            try:
                frame = Ether(sock.recv(2048))
            except TimeoutError:
                return False
            if ARP in frame and frame[ARP].op == 2 and frame[ARP].psrc == address:
                return True
    return False


@contextmanager
def host_leaks(allowed: set[str], settle: float = 1.0) -> Iterator[list[str]]:
    """Frames naming PROBE's address on host interfaces outside ``allowed``: the list
    yielded is filled at the end of the block, after ``settle`` seconds for late replies."""
    probe = socket.inet_aton(PROBE)
    found: list[str] = []
    with socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL)) as sock:
        yield found
        deadline = time.monotonic() + settle
        while (remaining := deadline - time.monotonic()) > 0:
            sock.settimeout(remaining)
            try:
                data, (ifname, *_) = sock.recvfrom(65535)
            except TimeoutError:
                break
            if ifname not in allowed and probe in data:
                found.append(f"{ifname}: {Ether(data).summary()}")


def dropped(bridge: str) -> int:
    listing = json.loads(subprocess.run(["nft", "-j", "list", "table", "netdev",
                                         TABLE_PREFIX + bridge], capture_output=True,
                                        text=True, check=True).stdout)
    return sum(item["rule"]["expr"][0]["counter"]["packets"]
               for item in listing["nftables"] if "rule" in item)


def test_host_bridge_reaches_the_lab_and_nothing_else(tmp_path: Path) -> None:
    with LabNetwork(artifacts_dir=tmp_path) as net, HostBridge(net) as link:
        with IPRoute() as ipr:
            (bridge,) = ipr.link("get", ifname=link.bridge)
            assert bridge.get(("linkinfo", "kind")) == "bridge"
            assert bridge["flags"] & IFF_NOARP
            assert list(ipr.addr("dump", index=bridge["index"])) == []  # no IPv4, no IPv6
            ports = [p.get("ifname") for p in ipr.link("dump", master=bridge["index"])]
            assert ports == [link.veth]
        assert Path(f"/proc/sys/net/ipv6/conf/{link.bridge}/disable_ipv6").read_text() == "1\n"
        with IPRoute(netns=net.namespace, flags=0) as ipr:
            (port,) = ipr.link("get", ifname=link.port)
            (lab_bridge,) = ipr.link_lookup(ifname=net.bridge)
            assert port.get("master") == lab_bridge
        with probe_namespace(link.bridge) as probe, \
                host_leaks({link.bridge, link.veth, f"pxt{probe[5:]}"}) as leaks:
            assert ping(probe, str(net.ipv4.ip), timeout=5)
            assert arp_answered(probe, str(net.ipv4.ip))
            # The host answers neither ARP nor IP for its own address through the bridge,
            # even to a frame sent straight to the bridge's MAC: by the weak host model it
            # would, and send the answer out of the interface that routes to PROBE.
            host = host_ipv4()
            assert not arp_answered(probe, host)
            before = dropped(link.bridge)
            with IPRoute(netns=probe, flags=0) as ipr:
                (eth0,) = ipr.link_lookup(ifname="eth0")
                ipr.route("replace", dst=f"{host}/32", oif=eth0)
                ipr.neigh("replace", dst=host, lladdr=bridge.get("address"), ifindex=eth0,
                          state=0x80)  # NUD_PERMANENT
            assert not ping(probe, host, timeout=1)
            assert dropped(link.bridge) > before
        assert leaks == []
        names = links_of(net.namespace)
        assert sorted(names) == sorted([link.bridge, link.veth, TABLE_PREFIX + link.bridge])
    assert links_of(net.namespace) == []
    echoes = [(p[IP].src, p[ICMP].type) for p in rdpcap(str(tmp_path / "lab.pcap"))
              if ICMP in p]
    assert (PROBE, 8) in echoes and (str(net.ipv4.ip), 0) in echoes


def test_exception_in_block_removes_everything() -> None:
    with pytest.raises(KeyboardInterrupt), LabNetwork(capture=False) as net, \
            HostBridge(net) as link:
        assert link.bridge in host_links()
        raise KeyboardInterrupt
    assert links_of(net.namespace) == []


def test_port_mtu_and_impairment_act_on_the_lab_side() -> None:
    with LabNetwork(capture=False) as net, HostBridge(net, mtu=1400) as link:
        with IPRoute(netns=net.namespace, flags=0) as ipr:
            (port,) = ipr.link("get", ifname=link.port)
            (bridge,) = ipr.link("get", ifname=net.bridge)
        assert port.get("mtu") == 1400
        assert bridge.get("mtu") == 1500
        assert net.impair(link.port, loss=50).loss == 50
    link.stop()  # twice is fine


def test_host_bridge_needs_an_entered_lab() -> None:
    net = LabNetwork(capture=False)
    with pytest.raises(NetworkError, match="enter the LabNetwork"):
        HostBridge(net).start()
    assert links_of(net.namespace) == []


CHILD = """
import sys
import time
from pxelab.machine.network import LabNetwork
from pxelab.machine.hostlink import HostBridge
with LabNetwork(capture=False) as net, HostBridge(net) as link:
    print(net.namespace, link.bridge, link.veth, flush=True)
    sys.stdin.readline()
"""


@pytest.mark.parametrize("sweep_first", [False, True], ids=["reap", "sweep-then-reap"])
def test_links_of_a_killed_run_are_reaped(sweep_first: bool) -> None:
    with subprocess.Popen([sys.executable, "-c", CHILD], stdin=subprocess.PIPE,
                          stdout=subprocess.PIPE, text=True, cwd=ROOT,
                          env={**os.environ, "PYTHONPATH": str(ROOT)}) as child:
        try:
            ready, _, _ = select.select([child.stdout], [], [], 30)
            assert ready and child.stdout is not None, "the child never made its host bridge"
            namespace, bridge, veth = child.stdout.readline().split()
        finally:
            child.send_signal(signal.SIGKILL)
            child.wait(timeout=10)
    assert {bridge, veth} <= set(host_links())
    # Another xdist worker's lab may sweep and reap first: check what is left, not who took it.
    if sweep_first:  # what a later LabNetwork does first; the veth goes with the namespace
        sweep_stale_labs()
        assert namespace not in pyroute2_netns.listnetns()
    reap_host_links()  # the veth too, unless the kernel's cleanup took it first
    assert links_of(namespace) == []
    sweep_stale_labs()
    assert namespace not in pyroute2_netns.listnetns()


def open_libvirt(uri: str = "qemu:///system") -> Any:
    """A connection to libvirtd, or HostCapabilityError saying what is missing."""
    try:
        import libvirt  # noqa: PLC0415 (the optional extra)
    except ImportError:
        raise HostCapabilityError("libvirt-python is not installed: pip install "
                                  "'pxelab[libvirt]' (./setup.sh does)") from None
    try:
        return libvirt.open(uri)
    except libvirt.libvirtError as error:
        raise HostCapabilityError(f"libvirtd does not answer on {uri}: {error}; start it "
                                  "(./setup.sh does, where there is no systemd)") from None


GUEST_MAC = "52:54:00:70:78:01"
VIR_DOMAIN_START_AUTODESTROY = 2  # libvirt-domain.h
DOMAIN = """<domain type='qemu'>
  <name>{name}</name><memory unit='MiB'>128</memory><vcpu>1</vcpu>
  <os><type arch='x86_64' machine='pc'>hvm</type><boot dev='network'/></os>
  <devices>
    <interface type='bridge'><source bridge='{bridge}'/><mac address='{mac}'/>
      <model type='e1000'/></interface>
  </devices>
</domain>"""


@pytest.mark.qemu
def test_a_libvirt_guest_on_the_host_bridge_reaches_the_lab() -> None:
    """SeaBIOS's iPXE sends DHCPDISCOVERs through libvirt's tap, pxh, the veth, into br0."""
    connection = open_libvirt()
    with connection, LabNetwork(capture=False) as net, HostBridge(net) as link:
        with thread_in_namespace(net.namespace):
            sniffer = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
        with sniffer:
            sniffer.bind((net.bridge, ETH_P_ALL))
            xml = DOMAIN.format(name=f"pxelab-hostlink-{uuid.uuid4().hex[:8]}",
                                bridge=link.bridge, mac=GUEST_MAC)
            # AUTODESTROY: the domain goes with this connection, whatever happens.
            domain = connection.createXML(xml, VIR_DOMAIN_START_AUTODESTROY)
            try:
                deadline = time.monotonic() + 60
                while (remaining := deadline - time.monotonic()) > 0:
                    sniffer.settimeout(remaining)
                    frame = Ether(sniffer.recv(65535))
                    if frame.src == GUEST_MAC and DHCP in frame:
                        break
            finally:
                domain.destroy()
        assert frame.src == GUEST_MAC and DHCP in frame
    assert links_of(net.namespace) == []
