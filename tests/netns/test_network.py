"""LabNetwork: namespace, bridge, taps and capture appear, work and vanish without a trace."""

from __future__ import annotations

import os
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from pyroute2 import IPRoute
from pyroute2 import netns as pyroute2_netns
from scapy.layers.inet import ICMP, IP
from scapy.utils import rdpcap

from pxelab.core.errors import NetworkError
from pxelab.core.netns import exec_prefix, thread_in_namespace
from pxelab.machine.capture import PacketCapture
from pxelab.machine.network import LabNetwork, creator_pid, namespace_pids
from pxelab.pytest_plugin import pxelab_requires

pytestmark = pytest.mark.netns

IFF_UP = 0x1
IFA_F_TENTATIVE = 0x40
CLIENT_ADDRESS = "192.0.2.2"


@pytest.fixture(autouse=True)
def _needs_root() -> None:
    pxelab_requires(root=True)


def ip_netns_list() -> str:
    return subprocess.run(["ip", "netns", "list"], capture_output=True, text=True,
                          check=True).stdout


def start_sleeper(namespace: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen([*exec_prefix(namespace), "sleep", "600"])


def wait_inside(process: subprocess.Popen[bytes], namespace: str) -> bool:
    """Until ``process`` runs in ``namespace`` (`ip netns exec` enters it after it starts):
    True; False if it exited first (the namespace was gone)."""
    deadline = time.monotonic() + 5
    while process.pid not in namespace_pids(namespace):
        if process.poll() is not None:
            return False
        assert time.monotonic() < deadline, f"{process.args} never entered {namespace}"
        time.sleep(0.01)
    return True


@contextmanager
def client_namespace(lab: LabNetwork) -> Iterator[str]:
    """A second namespace wired to the lab bridge by a veth pair, with 192.0.2.2/24."""
    name = f"pxlt-{uuid.uuid4().hex[:8]}"
    pyroute2_netns.create(name)
    try:
        with IPRoute(netns=lab.namespace, flags=0) as ipr:
            ipr.link("add", ifname="vlab0", kind="veth", peer={"ifname": "vcli0",
                                                                 "net_ns_fd": name})
            (bridge,) = ipr.link_lookup(ifname=lab.bridge)
            (port,) = ipr.link_lookup(ifname="vlab0")
            ipr.link("set", index=port, master=bridge, state="up")
        with IPRoute(netns=name, flags=0) as ipr:
            (veth,) = ipr.link_lookup(ifname="vcli0")
            ipr.addr("add", index=veth, address=CLIENT_ADDRESS, prefixlen=24)
            ipr.link("set", index=veth, state="up")
            ipr.poll(ipr.addr, "dump", index=veth, address=CLIENT_ADDRESS, timeout=5)
        yield name
    finally:
        pyroute2_netns.remove(name)


def ping(namespace: str, destination: str, timeout: float = 5.0) -> bytes:
    """One ICMP echo from ``namespace`` to ``destination``; the reply's IP packet."""
    request = bytes(ICMP(type=8, id=0x7078, seq=1) / b"pxelab")
    with thread_in_namespace(namespace):
        sock = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
    with sock:
        sock.settimeout(timeout)
        sock.sendto(request, (destination, 0))
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            data = sock.recv(2048)
            reply = IP(data)
            if ICMP in reply and reply[ICMP].type == 0 and reply[ICMP].id == 0x7078:
                return data
    raise AssertionError(f"no echo reply from {destination}")


def test_lab_has_bridge_addresses_and_tap_then_leaves_no_trace(tmp_path: Path) -> None:
    with LabNetwork(artifacts_dir=tmp_path) as lab:
        assert creator_pid(lab.namespace) == os.getpid()
        assert lab.namespace in ip_netns_list()
        tap = lab.add_tap()
        with IPRoute(netns=lab.namespace, flags=0) as ipr:
            (bridge,) = ipr.link("get", ifname=lab.bridge)
            assert bridge.get("flags") & IFF_UP
            addresses = {(a.get("address"), a.get("prefixlen")): a
                         for a in ipr.addr("dump", index=bridge["index"])}
            assert ("192.0.2.1", 24) in addresses
            assert ("2001:db8::1", 64) in addresses
            assert not addresses[("2001:db8::1", 64)]["flags"] & IFA_F_TENTATIVE
            (port,) = ipr.link("get", ifname=tap)
            assert port.get("master") == bridge["index"]
            assert port.get("flags") & IFF_UP
            assert port.get(("linkinfo", "kind")) == "tun"
    assert lab.namespace not in ip_netns_list()
    assert not Path("/run/netns", lab.namespace).exists()
    assert lab.pcap_path is not None and lab.pcap_path.exists()


def test_capture_holds_a_ping_across_the_bridge(tmp_path: Path) -> None:
    with LabNetwork(artifacts_dir=tmp_path) as lab, client_namespace(lab) as client:
        reply = IP(ping(client, str(lab.ipv4.ip)))
        assert reply.src == str(lab.ipv4.ip)
    assert lab.pcap_path == tmp_path / "lab.pcap"
    packets = rdpcap(str(lab.pcap_path))
    echoes = [(p[IP].src, p[IP].dst, p[ICMP].type) for p in packets if ICMP in p]
    assert (CLIENT_ADDRESS, "192.0.2.1", 8) in echoes
    assert ("192.0.2.1", CLIENT_ADDRESS, 0) in echoes


@pytest.mark.parametrize("error", [RuntimeError, KeyboardInterrupt])
def test_exception_in_block_still_removes_namespace_and_processes(
        tmp_path: Path, error: type[BaseException]) -> None:
    sleeper = None
    with pytest.raises(error, match="boom"), LabNetwork(artifacts_dir=tmp_path) as lab:
        sleeper = start_sleeper(lab.namespace)
        assert wait_inside(sleeper, lab.namespace), f"{sleeper.args} exited"
        raise error("boom")
    assert sleeper is not None
    assert sleeper.wait(timeout=5) != 0
    assert lab.namespace not in ip_netns_list()


def test_close_is_idempotent() -> None:
    lab = LabNetwork(capture=False)
    with lab:
        assert lab.pcap_path is None
    lab.close()
    lab.close()
    assert lab.namespace not in ip_netns_list()


def test_stale_lab_of_a_dead_process_is_swept() -> None:
    dead = subprocess.Popen(["true"])
    dead.wait()
    stale = f"pxl-m-{dead.pid}-0"
    pyroute2_netns.create(stale)
    leftover = start_sleeper(stale)
    try:
        # Swept only once inside: one that enters after the sweep outlives the namespace.
        # A lab another xdist worker opens meanwhile sweeps it too; then ip finds no
        # namespace to enter, and the checks below hold all the same.
        wait_inside(leftover, stale)
        with LabNetwork(capture=False):
            assert stale not in pyroute2_netns.listnetns()
        assert leftover.wait(timeout=5) != 0
    finally:
        leftover.kill()
        leftover.wait()
        if stale in pyroute2_netns.listnetns():
            pyroute2_netns.remove(stale)


def test_labs_of_live_processes_are_kept() -> None:
    with LabNetwork(capture=False) as first, LabNetwork(capture=False) as second:
        assert first.namespace != second.namespace
        assert {first.namespace, second.namespace} <= set(pyroute2_netns.listnetns())


def test_capture_on_a_missing_interface_says_why(tmp_path: Path) -> None:
    with LabNetwork(capture=False) as lab:
        capture = PacketCapture(lab.namespace, "nosuch0", tmp_path / "x.pcap")
        with pytest.raises(NetworkError, match="tcpdump on nosuch0 exited"):
            capture.start()


def test_tap_needs_an_entered_lab() -> None:
    with pytest.raises(NetworkError, match="entered"):
        LabNetwork().add_tap()
