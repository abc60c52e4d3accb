"""The DHCPv4 protocol: one method per message type, decisions from the policy.

The protocol object speaks RFC 2131; which boot file a client gets, or
whether it gets an answer at all, is the :class:`~pxelab.policy.BootPolicy`'s
business; addresses come from :class:`~pxelab.dhcp4.leases.LeasePool`. Every
decision is an event (source ``dhcp4``): ``offer``, ``ack``, ``nak``,
``release``, ``decline``, ``inform``, ``withheld``, ``drop`` and ``error``.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import traceback
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Network
from typing import Any, cast

from pxelab.dhcp4 import codec
from pxelab.dhcp4.codec import DhcpDecodeError, DhcpMessage, MessageType, Op, option
from pxelab.dhcp4.leases import LeasePool, LeaseState
from pxelab.events import EventLog
from pxelab.policy import BootDecision, BootPolicy, ClientInfo

__all__ = [
    "CLIENT_PORT",
    "SERVER_PORT",
    "Dhcp4Protocol",
    "Dhcp4Settings",
    "build_reply",
    "client_info",
    "open_dhcp4_socket",
    "reply_destination",
]

log = logging.getLogger(__name__)

SERVER_PORT, CLIENT_PORT = 67, 68
BROADCAST = IPv4Address("255.255.255.255")
_ZERO = IPv4Address(0)
# iPXE option 175 carrying sub-option 176 (no-pxedhcp) = 1: skip the 2 s proxyDHCP wait.
_IPXE_NO_PXEDHCP = bytes((176, 1, 1))


@dataclass(frozen=True)
class Dhcp4Settings:
    """What the DHCPv4 protocol needs to know about the lab."""

    server: IPv4Address
    network: IPv4Network
    lease_seconds: int = 3600
    router: IPv4Address | None = None


def open_dhcp4_socket(interface: str, port: int = SERVER_PORT) -> socket.socket:
    """UDP socket on 0.0.0.0:``port`` that only sees ``interface`` and may broadcast.

    No SO_REUSEADDR: with it on both sockets Linux lets a second DHCP server
    bind the same port silently and both answer; without it the second one
    fails with EADDRINUSE. UDP has no TIME_WAIT, so a restart does not need it.
    """
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, interface.encode())
        sock.bind(("0.0.0.0", port))
        sock.setblocking(False)
    except BaseException:
        sock.close()
        raise
    return sock


def client_info(msg: DhcpMessage, server: IPv4Address) -> ClientInfo:
    """Boil a request down to what a policy decides on."""
    arch = msg.get(93)
    params = msg.get(55)
    user_class = msg.raw(77)
    mtype = msg.message_type
    return ClientInfo(
        mac=msg.mac,
        protocol="dhcp4",
        message_type=mtype.name if mtype else "BOOTP",
        arch=arch[0] if isinstance(arch, tuple) and arch else None,
        vendor_class=msg.text(60),
        user_classes=codec.user_classes(user_class) if user_class else (),
        client_id=msg.raw(61),
        uuid=msg.raw(97),
        secs=msg.secs,
        requested_options=params if isinstance(params, tuple) else (),
        ipxe_options=msg.raw(175) is not None,
        server_address=str(server),
    )


def build_reply(request: DhcpMessage, mtype: MessageType, settings: Dhcp4Settings, *,
                yiaddr: IPv4Address = _ZERO, decision: BootDecision | None = None,
                client: ClientInfo | None = None) -> DhcpMessage:
    """The OFFER/ACK/NAK for ``request`` (pure: RFC 2131 table 3 plus the boot decision)."""
    options = [option(53, mtype), option(54, settings.server)]
    siaddr = _ZERO
    file = ""
    if mtype is not MessageType.NAK:
        if mtype is not MessageType.ACK or yiaddr != _ZERO:  # no lease times for INFORM
            lease = settings.lease_seconds
            options += [option(51, lease), option(58, lease // 2), option(59, lease * 7 // 8)]
        options.append(option(1, settings.network.netmask))
        if settings.router is not None:
            options.append(option(3, [settings.router]))
    if decision is not None and mtype is not MessageType.NAK:
        siaddr = decision.next_server or settings.server
        if decision.vendor_class:
            options.append(option(60, decision.vendor_class))
        if decision.boot_file:
            options.append(option(66, str(siaddr)))
            options.append(option(67, decision.boot_file))
            # The legacy BOOTP field too: PXE ROMs read it; long URLs go in option 67 only.
            if len(decision.boot_file.encode("latin-1")) < 128:
                file = decision.boot_file
        if decision.no_proxy_wait and client is not None and (
                client.ipxe_options or client.is_ipxe):
            options.append(option(175, _IPXE_NO_PXEDHCP))
    return DhcpMessage(
        op=Op.BOOTREPLY, xid=request.xid, chaddr=request.chaddr, htype=request.htype,
        flags=request.flags, yiaddr=yiaddr, siaddr=siaddr, giaddr=request.giaddr,
        file=file, options=tuple(options),
        ciaddr=request.ciaddr if mtype is MessageType.ACK else _ZERO)


def reply_destination(request: DhcpMessage, reply: DhcpMessage) -> tuple[str, int]:
    """Where a reply goes (RFC 2131 4.1), minus unicast-to-yiaddr.

    Unicasting to an address the client does not have yet needs an ARP entry
    we cannot add from a UDP socket; broadcasting is what every PXE ROM,
    iPXE and udhcpc accept.
    """
    if request.giaddr != _ZERO:
        return str(request.giaddr), SERVER_PORT
    if reply.message_type is not MessageType.NAK and request.ciaddr != _ZERO:
        return str(request.ciaddr), CLIENT_PORT
    return str(BROADCAST), CLIENT_PORT


class Dhcp4Protocol(asyncio.DatagramProtocol):
    """DHCPv4 server protocol for one interface."""

    def __init__(self, settings: Dhcp4Settings, policy: BootPolicy, leases: LeasePool,
                 events: EventLog) -> None:
        self.settings = settings
        self.policy = policy
        self.leases = leases
        self.events = events
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # A DatagramTransport in fact, though before Python 3.12 not by inheritance.
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str | Any, int]) -> None:
        peer = f"{addr[0]}:{addr[1]}"
        try:
            self.handle(data, peer)
        except Exception as exc:  # never let one packet stop the server
            log.exception("DHCPv4 request from %s failed", peer)
            self.events.emit("dhcp4", "error", client=peer, reason=repr(exc),
                             details={"traceback": traceback.format_exc()})

    def error_received(self, exc: Exception) -> None:
        self.events.emit("dhcp4", "error", reason=f"socket error: {exc!r}")

    # -- dispatch ------------------------------------------------------------------------------

    def handle(self, data: bytes, peer: str) -> None:
        try:
            msg = codec.decode(data)
        except DhcpDecodeError as exc:
            self._drop(peer, f"malformed: {exc}", size=len(data))
            return
        if msg.op is not Op.BOOTREQUEST:
            self._drop(msg.mac, "BOOTREPLY sent to the server port")
            return
        if msg.giaddr != _ZERO and msg.giaddr not in self.settings.network:
            self._drop(msg.mac, f"relayed from {msg.giaddr}, outside {self.settings.network}")
            return
        handlers = {
            MessageType.DISCOVER: self.on_discover,
            MessageType.REQUEST: self.on_request,
            MessageType.RELEASE: self.on_release,
            MessageType.DECLINE: self.on_decline,
            MessageType.INFORM: self.on_inform,
        }
        mtype = msg.message_type
        handler = handlers.get(mtype) if mtype else None
        if handler is None:
            self._drop(msg.mac, f"message type {msg.raw(53)!r} is not for a server")
            return
        handler(msg)

    def on_discover(self, msg: DhcpMessage) -> None:
        client = self._client(msg)
        decision = self._decide(client)
        if decision is None:
            return
        address = self.leases.offer(client.mac, msg.ipv4(50))
        if address is None:
            self._drop(client.mac, f"pool {self.leases.first}-{self.leases.last} is exhausted",
                       request=client.summary())
            return
        self._send(msg, build_reply(msg, MessageType.OFFER, self.settings, yiaddr=address,
                                    decision=decision, client=client), client, decision)

    def on_request(self, msg: DhcpMessage) -> None:
        client = self._client(msg)
        server_id = msg.ipv4(54)
        requested = msg.ipv4(50) or (msg.ciaddr if msg.ciaddr != _ZERO else None)
        if server_id is not None and server_id != self.settings.server:
            if (lease := self.leases.lookup(client.mac)) and lease.state is LeaseState.OFFERED:
                self.leases.release(client.mac)
            self._drop(client.mac, f"client chose server {server_id}", request=client.summary())
            return
        if requested is None:
            self._drop(client.mac, "REQUEST names no address (no option 50, no ciaddr)",
                       request=client.summary())
            return
        if requested not in self.settings.network:
            self._nak(msg, client, f"{requested} is not in {self.settings.network}")
            return
        if (server_id is None and self.leases.lookup(client.mac) is None
                and requested not in self.leases):
            # RFC 2131 4.3.2 INIT-REBOOT: no record of this client -> stay silent.
            self._drop(client.mac, f"INIT-REBOOT for {requested}: no record, not in pool",
                       request=client.summary())
            return
        decision = self._decide(client)
        if decision is None:
            return
        if self.leases.bind(client.mac, requested) is None:
            held = self.leases.lookup(client.mac)
            self._nak(msg, client, f"{requested} is not available to {client.mac}"
                      + (f" (it holds {held.address})" if held else ""))
            return
        self._send(msg, build_reply(msg, MessageType.ACK, self.settings, yiaddr=requested,
                                    decision=decision, client=client), client, decision)

    def on_release(self, msg: DhcpMessage) -> None:
        released = self.leases.release(msg.mac, msg.ciaddr)
        self.events.emit("dhcp4", "release", client=msg.mac, request=f"RELEASE {msg.ciaddr}",
                         reason="lease freed" if released else "no such lease",
                         details={"address": str(msg.ciaddr), "xid": msg.xid})

    def on_decline(self, msg: DhcpMessage) -> None:
        address = msg.ipv4(50)
        if address is not None:
            self.leases.decline(msg.mac, address)
        self.events.emit("dhcp4", "decline", client=msg.mac, request=f"DECLINE {address}",
                         reason="client reports the address in use; excluded from the pool",
                         details={"address": str(address), "xid": msg.xid})

    def on_inform(self, msg: DhcpMessage) -> None:
        client = self._client(msg)
        decision = self._decide(client)
        if decision is None:
            return
        self._send(msg, build_reply(msg, MessageType.ACK, self.settings, decision=decision,
                                    client=client), client, decision, kind="inform")

    # -- helpers -------------------------------------------------------------------------------

    def _client(self, msg: DhcpMessage) -> ClientInfo:
        return client_info(msg, self.settings.server)

    def _decide(self, client: ClientInfo) -> BootDecision | None:
        decision = self.policy.decide_dhcp4(client)
        if decision.withhold:
            self.events.emit("dhcp4", "withheld", client=client.mac, request=client.summary(),
                             reason=decision.reason, details=self._client_details(client))
            return None
        return decision

    def _nak(self, msg: DhcpMessage, client: ClientInfo, reason: str) -> None:
        reply = build_reply(msg, MessageType.NAK, self.settings)
        self._send(msg, reply, client, BootDecision(reason=reason))

    def _send(self, request: DhcpMessage, reply: DhcpMessage, client: ClientInfo,
              decision: BootDecision, kind: str | None = None) -> None:
        assert self.transport is not None
        destination = reply_destination(request, reply)
        self.transport.sendto(codec.encode(reply), destination)
        mtype = reply.message_type
        assert mtype is not None
        boot_file = reply.text(67)
        answer = f"{mtype.name} yiaddr={reply.yiaddr}"
        if boot_file:
            answer += f" next-server={reply.siaddr} file={boot_file}"
        details: dict[str, Any] = self._client_details(client) | {
            "xid": request.xid, "yiaddr": str(reply.yiaddr), "siaddr": str(reply.siaddr),
            "file": boot_file, "vendor_class_echo": reply.text(60),
            "destination": f"{destination[0]}:{destination[1]}"}
        self.events.emit("dhcp4", kind or mtype.name.lower(), client=client.mac,
                         request=client.summary(), answer=answer, reason=decision.reason,
                         details=details)
        log.debug("%s -> %s: %s (%s)", client.mac, destination, answer, decision.reason)

    @staticmethod
    def _client_details(client: ClientInfo) -> dict[str, Any]:
        return {"arch": client.arch, "vendor_class": client.vendor_class,
                "user_classes": list(client.user_classes), "secs": client.secs,
                "message_type": client.message_type}

    def _drop(self, client: str, reason: str, **details: Any) -> None:
        request = details.pop("request", "")
        self.events.emit("dhcp4", "drop", client=client, request=request, reason=reason,
                         details=details)
