"""Real firmware packets (fixtures/packets/) through pxelab's codecs.

The pcaps are what SeaBIOS + iPXE, PXELINUX and OVMF's EDK2 network stack
sent at boot (tools/capture_firmware_packets.py made them; their README says
from which package versions). Each test states one fact about what the
firmware really sends, so the servers are built on it, not on a guess. Values
that change from one capture to the next (xid, DUID-LLT time, IAID) are not
asserted.
"""

from __future__ import annotations

from ipaddress import IPv4Address, IPv6Address, IPv6Network

import pytest
from scapy.layers.dhcp6 import (
    DHCP6_Solicit,
    DHCP6OptClientArchType,
    DHCP6OptClientId,
    DHCP6OptClientNetworkInterId,
    DHCP6OptElapsedTime,
    DHCP6OptIA_NA,
    DHCP6OptOptReq,
    DHCP6OptVendorClass,
)
from scapy.layers.inet import IP, UDP
from scapy.layers.inet6 import IPv6
from scapy.layers.l2 import Ether
from scapy.packet import Packet
from scapy.utils import rdpcap

from pxelab.core.paths import fixtures_dir
from pxelab.server.dhcp4 import codec as dhcp4
from pxelab.server.dhcp4.codec import DhcpMessage, MessageType
from pxelab.server.dhcp4.server import client_info as dhcp4_client_info
from pxelab.server.dhcp6 import codec as dhcp6
from pxelab.server.dhcp6.replies import Dhcp6Settings, Peer
from pxelab.server.dhcp6.replies import client_info as dhcp6_client_info
from pxelab.server.dhcp6.server import validate as dhcp6_validate
from pxelab.server.tftp import codec as tftp

pytestmark = pytest.mark.unit

MAC = "52:54:00:12:34:56"
SERVER4 = IPv4Address("192.0.2.1")
SERVER6 = IPv6Address("2001:db8::1")
LINK_LOCAL = IPv6Address("fe80::5054:ff:fe12:3456")  # EUI-64 of MAC
OFFERED = IPv4Address("192.0.2.100")  # first address of the boot server's pool


def frames(name: str) -> list[Packet]:
    path = fixtures_dir() / "packets" / f"{name}.pcap"
    packets = list(rdpcap(str(path)))
    assert packets, f"{path} holds no packets; regenerate it (see its README)"
    assert all(p[Ether].src == MAC for p in packets), "fixtures hold only the guest's frames"
    return packets


def payloads(name: str) -> list[bytes]:
    return [bytes(p[UDP].payload) for p in frames(name)]


def dhcp4_pair(name: str) -> tuple[DhcpMessage, DhcpMessage]:
    """The DISCOVER and REQUEST of a capture, decoded by pxelab's codec."""
    discover, request = (dhcp4.decode(data) for data in payloads(name))
    assert discover.message_type is MessageType.DISCOVER
    assert request.message_type is MessageType.REQUEST
    assert discover.xid == request.xid
    for msg in (discover, request):
        assert msg.op is dhcp4.Op.BOOTREQUEST
        assert msg.mac == MAC
        assert msg.ciaddr == IPv4Address(0)
    assert request.ipv4(54) == SERVER4
    assert request.ipv4(50) == OFFERED
    return discover, request


def tftp_packets(name: str) -> list[tftp.Packet]:
    return [tftp.decode(data) for data in payloads(name)]


def rrq(packet: tftp.Packet) -> tftp.ReadRequest:
    assert isinstance(packet, tftp.ReadRequest), packet
    assert packet.mode == "octet"
    return packet


def assert_zero_uuid(msg: DhcpMessage) -> None:
    """Option 97 (RFC 4578 2.3): type 0 + 16 bytes; QEMU without -uuid gives all zeros."""
    assert msg.raw(97) == bytes(17)


# -- iPXE (SeaBIOS, the virtio-net ROM QEMU loads) ------------------------------------------


def test_ipxe_secs_is_a_packet_counter_not_seconds() -> None:
    # ipxe src/net/udp/dhcp.c dhcp_tx(): secs = (++count << 2) | offer << 1 | proxy_offer.
    discover, request = dhcp4_pair("ipxe-bios-dhcp4")
    assert (discover.secs, request.secs) == (4, 10)
    assert (discover.secs >> 2, request.secs >> 2) == (1, 2)  # 1st and 2nd packet sent
    assert request.secs & 0b11 == 0b10  # an offer in hand, no proxy offer


def test_ipxe_identifies_itself() -> None:
    discover, request = dhcp4_pair("ipxe-bios-dhcp4")
    for msg in (discover, request):
        assert msg.get(93) == (0,)  # BIOS
        assert (msg.text(60) or "").startswith("PXEClient:Arch:00000:UNDI:")
        assert msg.raw(77) == b"iPXE"  # the bare string, not RFC 3004 framing
        assert dhcp4.user_classes(msg.raw(77) or b"") == ("iPXE",)
        assert msg.raw(175) is not None  # iPXE's feature list
        assert msg.get(94) == b"\x01\x02\x01"  # UNDI 2.1
        assert msg.get(61) == b"\x01" + bytes.fromhex(MAC.replace(":", ""))
        assert msg.get(57) == 1472
        assert_zero_uuid(msg)
        assert not msg.broadcast


def test_ipxe_parameter_request_list() -> None:
    discover, request = dhcp4_pair("ipxe-bios-dhcp4")
    params = discover.get(55)
    assert params == request.get(55)
    assert isinstance(params, tuple)
    assert {1, 3, 6, 12, 15, 17, 43, 60, 66, 67, 119, 175, 203} <= set(params)
    assert set(range(128, 136)) <= set(params)  # "for PXE", says iPXE


def test_ipxe_as_the_dhcp4_server_sees_it() -> None:
    discover, _ = dhcp4_pair("ipxe-bios-dhcp4")
    client = dhcp4_client_info(discover, SERVER4)
    assert client.is_ipxe and client.ipxe_options
    assert client.arch == 0
    assert not client.is_http_client


def test_ipxe_tftp_rrq_of_the_nbp() -> None:
    (packet,) = tftp_packets("ipxe-bios-tftp-rrq")
    request = rrq(packet)
    assert request.filename == "pxelinux.0"
    assert request.options == (("blksize", "1432"), ("tsize", "0"))  # no windowsize


# -- PXELINUX 6.04 ----------------------------------------------------------------------------


def pxelinux_config_names(address: IPv4Address) -> list[str]:
    """pxelinux.cfg/ names PXELINUX tries: 01-<mac>, the address in hex cut down, default.

    No <uuid> name was asked in the capture (the guest's SMBIOS UUID is all zeros).
    """
    hexa = address.packed.hex().upper()
    names = ["01-" + MAC.replace(":", "-")] + [hexa[:n] for n in range(len(hexa), 0, -1)]
    return [f"pxelinux.cfg/{name}" for name in [*names, "default"]]


def test_pxelinux_asks_ldlinux_then_its_config_names_in_order() -> None:
    requests = [rrq(p) for p in tftp_packets("pxelinux-tftp-rrq")]
    assert [r.filename for r in requests] == ["ldlinux.c32", *pxelinux_config_names(OFFERED)]
    assert {r.options for r in requests} == {(("tsize", "0"), ("blksize", "1408"))}


# -- OVMF (EDK2 NetworkPkg, NIC romfile= empty) ------------------------------------------------


def test_ovmf_pxe4_dhcp() -> None:
    discover, request = dhcp4_pair("ovmf-pxe4-dhcp4")
    for msg in (discover, request):
        assert msg.secs == 0  # although ~4 s pass between DISCOVER and REQUEST
        assert msg.broadcast
        assert msg.get(93) == (7,)
        assert msg.text(60) == "PXEClient:Arch:00007:UNDI:003000"
        assert msg.get(94) == b"\x01\x03\x00"  # UNDI 3.0
        assert msg.raw(77) is None and msg.raw(175) is None
        assert msg.raw(61) is None  # no client identifier
        assert_zero_uuid(msg)
        params = msg.get(55)
        assert isinstance(params, tuple)
        assert {1, 3, 6, 43, 60, 66, 67, 97} <= set(params)
        assert set(range(128, 136)) <= set(params)
    client = dhcp4_client_info(discover, SERVER4)
    assert (client.arch, client.is_ipxe, client.is_http_client) == (7, False, False)


# EDK2 HttpBootDxe HttpBootBuildDhcp4Options(): 27 entries, but index 24 is never
# written, so that byte is whatever the buffer held (None here: not asserted).
HTTP_BOOT_PARAMS = (1, 2, 3, 4, 5, 6, 12, 13, 15, 17, 18, 22, 23, 28, 40, 41, 42, 43, 50, 51,
                    54, 58, 59, 60, None, 67, 97)


def test_ovmf_http4_dhcp() -> None:
    discover, request = dhcp4_pair("ovmf-http4-dhcp4")
    for msg in (discover, request):
        assert msg.secs == 0
        assert msg.broadcast
        assert msg.get(93) == (16,)
        assert msg.text(60) == "HTTPClient:Arch:00016:UNDI:003000"
        assert msg.get(94) == b"\x01\x03\x00"
        assert msg.raw(61) is None
        assert_zero_uuid(msg)
        params = msg.get(55)
        assert isinstance(params, tuple)
        assert len(params) == len(HTTP_BOOT_PARAMS)
        assert all(want in (None, got) for want, got in zip(HTTP_BOOT_PARAMS, params,
                                                            strict=True))
        assert 66 not in params  # no TFTP server name: the URL says where to go
    client = dhcp4_client_info(discover, SERVER4)
    assert (client.arch, client.is_http_client) == (16, True)


def test_ovmf_tftp_size_probe_then_download() -> None:
    probe, error, download = tftp_packets("ovmf-pxe4-tftp")
    assert rrq(probe).filename == rrq(download).filename == "bootx64.efi"
    assert probe.options == (("tsize", "0"), ("blksize", "1468"), ("windowsize", "4"))
    assert error == tftp.Error(tftp.ErrorCode.OPTION_REFUSED, "User aborted the transfer")
    assert download.options == (("blksize", "1468"), ("windowsize", "4"))  # no tsize again


def test_ovmf_tftp_error_goes_to_the_transfer_port() -> None:
    probe, error, download = (p[UDP] for p in frames("ovmf-pxe4-tftp"))
    assert probe.dport == download.dport == 69
    assert error.sport == probe.sport and error.dport != 69
    assert download.sport != probe.sport  # a new transfer, a new client port
    assert {p[IP].dst for p in frames("ovmf-pxe4-tftp")} == {str(SERVER4)}


def test_our_oack_for_the_ovmf_probe_echoes_only_what_it_asked() -> None:
    # "Malformatted OACK packet" otherwise (firmware-facts.md).
    probe = rrq(tftp_packets("ovmf-pxe4-tftp")[0])
    negotiated = tftp.negotiate(probe.options, size=171456)
    assert negotiated.oack == (("tsize", "171456"), ("blksize", "1468"), ("windowsize", "4"))


SOLICITS = [("ovmf-pxe6-solicit", 7, "PXEClient:Arch:00007:UNDI:003000"),
            ("ovmf-http6-solicit", 16, "HTTPClient:Arch:00016:UNDI:003000")]


@pytest.mark.parametrize(("name", "arch", "vendor"), SOLICITS)
def test_ovmf_solicit_dissected_by_scapy(name: str, arch: int, vendor: str) -> None:
    (frame,) = frames(name)
    assert frame[IPv6].src == str(LINK_LOCAL)
    assert frame[IPv6].dst == str(dhcp6.ALL_DHCP_RELAY_AGENTS_AND_SERVERS)
    assert (frame[UDP].sport, frame[UDP].dport) == (546, 547)
    solicit = frame[DHCP6_Solicit]
    layer, codes = solicit.payload, []
    while layer and hasattr(layer, "optcode"):
        codes.append(layer.optcode)
        layer = layer.payload
    assert codes == [1, 8, 3, 6, 62, 61, 16]  # no 14 (rapid commit), no 15 (user class)
    assert solicit[DHCP6OptClientId].duid.lladdr == MAC
    assert solicit[DHCP6OptElapsedTime].elapsedtime == 0
    ia = solicit[DHCP6OptIA_NA]
    assert (ia.T1, ia.T2) == (0xFFFFFFFF, 0xFFFFFFFF)
    assert solicit[DHCP6OptOptReq].reqopts == [59, 60, 23, 16]
    nii = solicit[DHCP6OptClientNetworkInterId]
    assert (nii.iitype, nii.iimajor, nii.iiminor) == (1, 3, 0)
    assert solicit[DHCP6OptClientArchType].archtypes == [arch]
    vendor_class = solicit[DHCP6OptVendorClass]
    assert vendor_class.enterprisenum == 343
    assert [bytes(item.data) for item in vendor_class.vcdata] == [vendor.encode()]


@pytest.mark.parametrize(("name", "arch", "vendor"), SOLICITS)
def test_ovmf_solicit_decoded_by_pxelab(name: str, arch: int, vendor: str) -> None:
    (data,) = payloads(name)
    msg = dhcp6.decode(data)
    assert isinstance(msg, dhcp6.Dhcp6Message)
    assert msg.msg_type is dhcp6.MessageType.SOLICIT
    assert [o.code for o in msg.options] == [1, 8, 3, 6, 62, 61, 16]
    duid = msg.client_duid
    assert duid is not None and duid.type == dhcp6.DuidType.LLT and duid.mac == MAC
    assert msg.get(dhcp6.ElapsedTime) == dhcp6.ElapsedTime(0)
    ia = msg.get(dhcp6.IaNa)
    assert ia is not None and (ia.t1, ia.t2, ia.options) == (0xFFFFFFFF, 0xFFFFFFFF, ())
    assert msg.requested == (59, 60, 23, 16)
    assert msg.get(dhcp6.ClientNii) == dhcp6.ClientNii(1, 3, 0)
    assert msg.get(dhcp6.ClientArch) == dhcp6.ClientArch((arch,))
    assert msg.get(dhcp6.VendorClass) == dhcp6.VendorClass(dhcp6.ENTERPRISE_PXE,
                                                           (vendor.encode(),))
    assert dhcp6.encode(msg) == data


@pytest.mark.parametrize(("name", "arch", "vendor"), SOLICITS)
def test_ovmf_solicit_as_the_dhcp6_server_sees_it(name: str, arch: int, vendor: str) -> None:
    (data,) = payloads(name)
    msg = dhcp6.decode(data)
    assert isinstance(msg, dhcp6.Dhcp6Message)
    ours = dhcp6.Duid.link_layer(bytes.fromhex("020000000001"))
    assert dhcp6_validate(msg, ours) is None
    settings = Dhcp6Settings(server=SERVER6, network=IPv6Network("2001:db8::/64"))
    client = dhcp6_client_info(msg, Peer(LINK_LOCAL, 546), settings)
    assert (client.mac, client.arch, client.vendor_class) == (MAC, arch, vendor)
    assert client.is_http_client is (arch == 16)
    assert client.user_classes == ()
