"""Real third-party daemons (pxelab.daemons) in a LabNetwork, each answering a real request.

The server side is a :class:`LabNetwork` (br0 with 192.0.2.1/24 and 2001:db8::1/64,
no DAD, as in a boot); a client namespace joins br0 through a veth with the
addresses of :mod:`nslab` (192.0.2.50, 2001:db8::50), so nslab's and
dhcp6_client's crafted clients work unchanged. The daemons start from the
example configurations in daemon_configs/, templated with the lab's values.
"""

from __future__ import annotations

import contextlib
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from dhcp6_client import Client6, edk2_solicit
from nslab import CLIENT4, CLIENT6, IFA_F_NODAD, Lab, dhcp4_client_socket, in_client
from pyroute2 import NetNS, netns
from scapy.layers.dhcp import BOOTP, DHCP
from scapy.layers.dhcp6 import DHCP6OptBootFileUrl, DHCP6OptIA_NA
from scapy.layers.inet6 import ICMPv6ND_RA, ICMPv6ND_RS, ICMPv6NDOptSrcLLAddr, IPv6
from scapy.layers.l2 import Ether

from pxelab.core.errors import DaemonError
from pxelab.core.netns import thread_in_namespace
from pxelab.daemons.radvd import Radvd
from pxelab.daemons.spec import DaemonSpec, parse_daemon
from pxelab.daemons.stack import DaemonStack
from pxelab.machine.network import LabNetwork, namespace_pids
from pxelab.pytest_plugin import pxelab_requires

pytestmark = [pytest.mark.netns]

CONFIGS = Path(__file__).parent / "daemon_configs"
CLIENT_MAC = "52:54:00:00:0d:01"
ETH_P_ALL = 0x0003
PACKET_OUTGOING = 4


@pytest.fixture(scope="module")
def lab() -> Iterator[Lab]:
    """Module scope: a LabNetwork (no capture) and a client namespace on its bridge."""
    pxelab_requires(root=True)
    with LabNetwork(capture=False) as network:
        client = f"{network.namespace}c"
        netns.create(client)
        try:
            with NetNS(network.namespace) as ns:
                ns.link("add", ifname="vd0", kind="veth",
                        peer={"ifname": "eth0", "net_ns_fd": client})
                port = ns.link_lookup(ifname="vd0")[0]
                ns.link("set", index=port, master=ns.link_lookup(ifname="br0")[0], state="up")
            with NetNS(client) as ns:
                for name in ("lo", "eth0"):
                    ns.link("set", index=ns.link_lookup(ifname=name)[0], state="up")
                eth0 = ns.link_lookup(ifname="eth0")[0]
                ns.addr("add", index=eth0, address=CLIENT4, prefixlen=24)
                ns.addr("add", index=eth0, address=CLIENT6, prefixlen=64, flags=IFA_F_NODAD)
            yield Lab(network.namespace, client)
        finally:
            netns.remove(client)


@pytest.fixture(scope="module")
def data_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("data")
    (root / "hello.txt").write_text("hello from the lab\n")
    return root


@pytest.fixture(scope="module")
def values(data_root: Path) -> dict[str, str]:
    """The template values the lab passes (pxelab.daemons takes them as they come)."""
    return {
        "interface": "br0", "server_ipv4": "192.0.2.1", "server_ipv6": "2001:db8::1",
        "server": "192.0.2.1", "subnet4": "192.0.2.0", "netmask4": "255.255.255.0",
        "prefix4": "192.0.2.0/24", "subnet6": "2001:db8::", "prefix6": "2001:db8::/64",
        "pool4_first": "192.0.2.100", "pool4_last": "192.0.2.199",
        "pool6_first": "2001:db8::100", "pool6_last": "2001:db8::1ff",
        "data_root": str(data_root), "nfs_server": "192.0.2.1", "nfs_export": "/pxelab",
        "nfs_root": "192.0.2.1:/pxelab", "mac": CLIENT_MAC,
        "mac_hyphen": CLIENT_MAC.replace(":", "-"), "append": "",
    }


def spec(kind: str, config: str | None = None, **keys: Any) -> DaemonSpec:
    entry: dict[str, object] = {"type": kind, **keys}
    if kind != "tftpd-hpa":
        entry["config"] = config or f"{kind}.conf"
    return parse_daemon(entry, f"test [[daemon]] ({kind})", CONFIGS)


@contextlib.contextmanager
def running(lab: Lab, values: dict[str, str], tmp_path: Path,
            *specs: DaemonSpec) -> Iterator[DaemonStack]:
    """The daemons up in the lab; afterwards nothing of theirs runs there."""
    with DaemonStack(specs, values, lab.server, tmp_path) as stack:
        yield stack
    assert namespace_pids(lab.server) == []


def dhcp4_offer(lab: Lab, *options: Any) -> BOOTP:
    """DISCOVER from the client namespace (broadcast flag set); the OFFER, dissected.

    Sent again every second for up to 10 s, as a real client retransmits: a daemon
    that holds its port may still be opening its interface (Kea's packet filter) when
    the first one arrives.
    """
    with contextlib.closing(dhcp4_client_socket(lab)) as sock:
        packet = BOOTP(chaddr=bytes.fromhex(CLIENT_MAC.replace(":", "")), xid=0xD0D0,
                       flags=0x8000) / DHCP(options=[("message-type", "discover"), *options,
                                                     "end"])
        deadline = time.monotonic() + 10
        while (left := deadline - time.monotonic()) > 0:
            sock.sendto(bytes(packet), ("255.255.255.255", 67))
            sock.settimeout(min(1.0, left))
            with contextlib.suppress(TimeoutError):
                while True:
                    reply = BOOTP(sock.recv(4096))
                    if reply.xid == 0xD0D0:
                        return reply
        raise AssertionError("no OFFER to 10 s of DISCOVERs, one a second")


def boot_file(offer: BOOTP) -> str:
    return bytes(offer.file).rstrip(b"\0").decode()


def test_dnsmasq_offers_a_boot_file_and_serves_it_over_tftp(lab: Lab, values: dict[str, str],
                                                            tmp_path: Path) -> None:
    with running(lab, values, tmp_path, spec("dnsmasq")) as stack:
        offer = dhcp4_offer(lab)
        assert boot_file(offer) == "pxelinux.0"
        assert offer.yiaddr.startswith("192.0.2.1")
        got = in_client(lab, ["tftp", "192.0.2.1", "-c", "get", "hello.txt", "/dev/stdout"])
        assert "hello from the lab" in got.stdout, got
    log = stack.logs["dnsmasq"].read_text()
    assert "DHCPOFFER" in log and "sent" in log and "hello.txt" in log


def test_kea_dhcp4_offers_the_uefi_boot_file(lab: Lab, values: dict[str, str],
                                             tmp_path: Path) -> None:
    with running(lab, values, tmp_path, spec("kea-dhcp4")) as stack:
        offer = dhcp4_offer(lab, ("pxe_client_architecture", b"\x00\x07"))  # option 93: EFI x64
    assert boot_file(offer) == "syslinux.efi"
    # Kea's log is captured; its offer line differs by release (2.2: DHCP4_LEASE_ADVERT;
    # 2.6 logs none at INFO), so only the start line is common to both.
    assert "DHCP4_STARTING" in stack.logs["kea-dhcp4"].read_text()


def test_dhcpd_offers_the_bios_boot_file(lab: Lab, values: dict[str, str],
                                         tmp_path: Path) -> None:
    with running(lab, values, tmp_path, spec("dhcpd")) as stack:
        offer = dhcp4_offer(lab)
    assert boot_file(offer) == "pxelinux.0"
    assert f"DHCPOFFER on {offer.yiaddr} to {CLIENT_MAC}" in stack.logs["dhcpd"].read_text()


@pytest.mark.parametrize("kind", ["kea-dhcp6", "dhcpd6"])
def test_dhcpv6_servers_advertise_the_boot_file_url(lab: Lab, values: dict[str, str],
                                                    tmp_path: Path, kind: str) -> None:
    with running(lab, values, tmp_path, spec(kind)):
        client = Client6(lab, CLIENT_MAC)
        try:
            client.send(edk2_solicit(CLIENT_MAC, 0x6D6, iaid=1, arch=7,
                                     vendor="PXEClient:Arch:00007:UNDI:003016"))
            advertise = client.receive(0x6D6, timeout=10)
        finally:
            client.close()
    assert advertise[DHCP6OptBootFileUrl].optdata == b"tftp://[2001:db8::1]/grubx64.efi"
    assert DHCP6OptIA_NA in advertise


def test_radvd_answers_a_router_solicitation(lab: Lab, values: dict[str, str],
                                             tmp_path: Path) -> None:
    with thread_in_namespace(lab.client):
        wire = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
    with contextlib.closing(wire), running(lab, values, tmp_path, spec("radvd")):
        wire.bind(("eth0", 0))
        wire.settimeout(10)
        rs = (Ether(src=CLIENT_MAC, dst="33:33:00:00:00:02")
              / IPv6(src=CLIENT6, dst="ff02::2", hlim=255) / ICMPv6ND_RS()
              / ICMPv6NDOptSrcLLAddr(lladdr=CLIENT_MAC))
        wire.send(bytes(rs))
        while True:
            data, address = wire.recvfrom(65536)
            frame = Ether(data)
            if address[2] != PACKET_OUTGOING and ICMPv6ND_RA in frame:
                break
    assert frame[ICMPv6ND_RA].M == 1 and frame[ICMPv6ND_RA].O == 1


def test_tftpd_hpa_serves_over_ipv4_and_ipv6(lab: Lab, values: dict[str, str],
                                             tmp_path: Path) -> None:
    with running(lab, values, tmp_path, spec("tftpd-hpa", options="--secure --verbose")) as st:
        for server in (["192.0.2.1"], ["-6", "2001:db8::1"]):
            got = in_client(lab, ["tftp", *server, "-c", "get", "hello.txt", "/dev/stdout"])
            assert "hello from the lab" in got.stdout, got
    # in.tftpd logs through syslog only: caught by the daemon's own /dev/log, where the
    # host has one to stand in for (not in a container without a syslog socket).
    if Path("/dev/log").exists():
        assert "RRQ from" in st.logs["tftpd-hpa"].read_text()


def test_nginx_serves_and_logs_each_request(lab: Lab, values: dict[str, str],
                                            tmp_path: Path) -> None:
    with running(lab, values, tmp_path, spec("nginx")) as stack:
        for url in ("http://192.0.2.1/hello.txt", "http://[2001:db8::1]/hello.txt"):
            got = in_client(lab, ["curl", "-sS", "--max-time", "10", url])
            assert got.stdout == "hello from the lab\n", got
        missing = in_client(lab, ["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}",
                                  "http://192.0.2.1/vmlinuz"])
        assert missing.stdout == "404"
    log = stack.logs["nginx"].read_text()
    assert log.count('"GET /hello.txt HTTP/1.1" 200') == 2 and "/vmlinuz" in log
    # The configuration's pid file and access log went to the private /run and /var/log/nginx.
    private = tmp_path / "daemons" / "nginx" / "root"
    assert (private / "var/log/nginx/access.log").read_text().count("GET") == 3


def test_a_config_error_names_the_daemon_port_and_log(lab: Lab, values: dict[str, str],
                                                      tmp_path: Path) -> None:
    specs = (spec("dnsmasq"), spec("dhcpd", "dhcpd-broken.conf"))
    with pytest.raises(DaemonError) as caught, DaemonStack(specs, values, lab.server, tmp_path):
        pytest.fail("a broken dhcpd.conf started")
    message = str(caught.value)
    assert message.startswith("test [[daemon]] (dhcpd): dhcpd exited with status 1")
    assert "waited for 67/udp" in message
    assert "rnage" in message  # dhcpd's own complaint, quoted from its log
    assert str(tmp_path / "daemons" / "dhcpd.log") in message
    # dnsmasq, started first, was stopped again.
    assert namespace_pids(lab.server) == []


def test_daemons_run_together_and_leave_nothing_behind(lab: Lab, values: dict[str, str],
                                                       tmp_path: Path) -> None:
    """The classic stack of the field reports: dhcpd + radvd + tftpd-hpa + nginx."""
    specs = (spec("dhcpd"), spec("dhcpd6"), spec("radvd"), spec("tftpd-hpa"), spec("nginx"))
    with running(lab, values, tmp_path, *specs) as stack:
        pids = {daemon.type: daemon.process.pid for daemon in stack.daemons
                if daemon.process is not None}
        assert len(pids) == len(specs)
        assert set(namespace_pids(lab.server)) >= set(pids.values())
    for pid in pids.values():
        assert not Path(f"/proc/{pid}").exists()
    for name in ("dhcpd", "dhcpd6", "radvd", "tftpd-hpa", "nginx"):
        assert (tmp_path / "daemons" / f"{name}.conf").exists()
        assert (tmp_path / "daemons" / f"{name}.cmdline").exists()


def test_an_interrupted_start_stops_what_runs(lab: Lab, values: dict[str, str],
                                              tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """Ctrl-C while radvd comes up: dhcpd (already up) and radvd are both stopped."""
    def interrupted(self: Radvd) -> bool:
        raise KeyboardInterrupt

    monkeypatch.setattr(Radvd, "started", interrupted)
    with pytest.raises(KeyboardInterrupt), DaemonStack(
            (spec("dhcpd"), spec("radvd")), values, lab.server, tmp_path):
        pytest.fail("radvd came up")
    assert namespace_pids(lab.server) == []


def test_two_labs_run_the_same_config_side_by_side(values: dict[str, str],
                                                   tmp_path: Path) -> None:
    """Both nginx write /run/nginx.pid and /var/log/nginx/access.log: each its own."""
    with LabNetwork(capture=False) as one, LabNetwork(capture=False) as two, \
            DaemonStack([spec("nginx")], values, one.namespace, tmp_path / "one"), \
            DaemonStack([spec("nginx")], values, two.namespace, tmp_path / "two") as second:
        (nginx,) = second.daemons
        assert nginx.process is not None and nginx.process.poll() is None
        for lab in ("one", "two"):
            assert (tmp_path / lab / "daemons/nginx/root/run/nginx.pid").exists()
