"""A crafted DHCPv6 client for the boot-server tests (scapy): EDK2's packets on a socket.

A :class:`Client6` binds [link-local of a MAC]:546 on the client namespace's eth0;
the helpers build what OVMF's PXE and HTTP boot drivers send and read the answers.
Used by test_dhcp6_server and test_dhcp6_reply_faults; ``client_factory`` is in
conftest.py.
"""

from __future__ import annotations

import contextlib
import socket
from ipaddress import IPv6Address
from pathlib import Path
from typing import Any

import pytest
from nslab import IFA_F_NODAD, Lab
from pyroute2 import NetNS
from scapy.layers.dhcp6 import (
    DHCP6,
    DUID_LLT,
    VENDOR_CLASS_DATA,
    DHCP6_Advertise,
    DHCP6_Reply,
    DHCP6_Solicit,
    DHCP6OptClientArchType,
    DHCP6OptClientId,
    DHCP6OptClientNetworkInterId,
    DHCP6OptElapsedTime,
    DHCP6OptIA_NA,
    DHCP6OptIAAddress,
    DHCP6OptOptReq,
    DHCP6OptRapidCommit,
    DHCP6OptServerId,
    DHCP6OptStatusCode,
    DHCP6OptUserClass,
    DHCP6OptVendorClass,
)

from pxelab.core.netns import thread_in_namespace
from pxelab.server.bootserver import Dhcp6Config, ServerConfig

DNS = IPv6Address("2001:db8::53")
PXE_ORO = [59, 60, 23, 16]  # what EDK2's PxeBc and HttpBoot drivers ask for


def dhcp6_config(tmp: Path, **changes: Any) -> ServerConfig:
    """DHCPv6 only: the other protocols have their own tests."""
    return ServerConfig.only("dhcp6", data_root=tmp, dhcp6=Dhcp6Config(dns=(DNS,), **changes))


def link_local(mac: str) -> IPv6Address:
    """The modified EUI-64 link-local address firmware forms from ``mac`` (RFC 4291 A)."""
    raw = bytearray.fromhex(mac.replace(":", ""))
    raw[0] ^= 0x02
    return IPv6Address(b"\xfe\x80" + bytes(6) + bytes(raw[:3]) + b"\xff\xfe" + bytes(raw[3:]))


class Client6:
    """A DHCPv6 client socket on [link-local of ``mac``]:546 on the client's eth0."""

    def __init__(self, lab: Lab, mac: str) -> None:
        self.lab, self.mac = lab, mac
        self.address = link_local(mac)
        with NetNS(lab.client) as ns:
            self.index = ns.link_lookup(ifname="eth0")[0]
            ns.addr("add", index=self.index, address=str(self.address), prefixlen=64,
                    flags=IFA_F_NODAD)
        with thread_in_namespace(lab.client):
            self.sock = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, b"eth0")
        self.sock.bind((str(self.address), 546, 0, self.index))
        self.sock.settimeout(3)

    def send(self, packet: Any) -> None:
        self.sock.sendto(bytes(packet), ("ff02::1:2", 547, 0, self.index))

    def receive(self, xid: int, timeout: float = 3) -> Any:
        """The next reply for ``xid``, dissected by scapy (DHCP6_Advertise/DHCP6_Reply)."""
        self.sock.settimeout(timeout)
        while True:
            data, source = self.sock.recvfrom(4096)
            packet = {2: DHCP6_Advertise, 7: DHCP6_Reply}.get(data[0], DHCP6)(data)
            if packet.trid == xid:
                packet.source = source
                return packet

    def nothing(self, timeout: float = 0.3) -> None:
        """Assert that no reply arrives within ``timeout`` (after the server said why)."""
        self.sock.settimeout(timeout)
        with pytest.raises(TimeoutError):
            data, _ = self.sock.recvfrom(4096)
            pytest.fail(f"unexpected reply {data.hex()}")

    def close(self) -> None:
        self.sock.close()
        with NetNS(self.lab.client) as ns, contextlib.suppress(Exception):
            ns.addr("del", index=self.index, address=str(self.address), prefixlen=64)


def mac_bytes(mac: str) -> bytes:
    return bytes.fromhex(mac.replace(":", ""))


def edk2_solicit(mac: str, xid: int, iaid: int, arch: int, vendor: str, *,
                 rapid: bool = False) -> Any:
    """Options as OVMF sends them: 1 (DUID-LLT), 8, 3, 6, 62, 61, 16 (enterprise 343)."""
    packet = (DHCP6_Solicit(trid=xid)
              / DHCP6OptClientId(duid=DUID_LLT(lladdr=mac, timeval=0x2B5A7C10))
              / DHCP6OptElapsedTime() / DHCP6OptIA_NA(iaid=iaid)
              / DHCP6OptOptReq(reqopts=PXE_ORO)
              / DHCP6OptClientNetworkInterId(iitype=1, iimajor=3, iiminor=0)
              / DHCP6OptClientArchType(archtypes=[arch])
              / DHCP6OptVendorClass(enterprisenum=343,
                                    vcdata=[VENDOR_CLASS_DATA(data=vendor.encode())]))
    return packet / DHCP6OptRapidCommit() if rapid else packet


def follow_up(kind: Any, solicit: Any, answer: Any, xid: int, *, with_server: bool = True,
              extra: tuple[Any, ...] = ()) -> Any:
    """Request/Renew/Release/Decline from an answer, repeating the Solicit's 61/16/6."""
    ia = answer[DHCP6OptIA_NA]
    packet = kind(trid=xid) / DHCP6OptClientId(duid=solicit[DHCP6OptClientId].duid)
    if with_server:
        packet /= DHCP6OptServerId(duid=answer[DHCP6OptServerId].duid)
    packet /= DHCP6OptElapsedTime() / DHCP6OptIA_NA(
        iaid=ia.iaid, ianaopts=[DHCP6OptIAAddress(addr=ia[DHCP6OptIAAddress].addr)])
    for layer in (DHCP6OptClientArchType, DHCP6OptVendorClass, DHCP6OptUserClass,
                  DHCP6OptOptReq):
        if solicit.haslayer(layer):
            option = solicit[layer].copy()
            option.remove_payload()  # the layer alone, not the options after it
            packet /= option
    for option in extra:
        packet /= option
    return packet


def vendor_data(packet: Any) -> bytes | None:
    if not packet.haslayer(DHCP6OptVendorClass):
        return None
    return bytes(packet[DHCP6OptVendorClass].vcdata[0].data)


def ia_status(packet: Any) -> int | None:
    for option in packet[DHCP6OptIA_NA].ianaopts:
        if isinstance(option, DHCP6OptStatusCode):
            return int(option.statuscode)
    return None
