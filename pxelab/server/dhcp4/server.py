"""The DHCPv4 protocol: one method per message type, decisions from the policy.

The protocol object speaks RFC 2131; which boot file a client gets, or
whether it gets an answer at all, is the :class:`~pxelab.server.policy.BootPolicy`'s
business; addresses come from :class:`~pxelab.server.dhcp4.leases.LeasePool`; reply
contents from :mod:`pxelab.server.dhcp4.replies`. Every decision is an event (source
``dhcp4``): ``offer``, ``ack``, ``nak``, ``inform``, ``bootreply``,
``release``, ``decline``, ``withheld``, ``ignore`` (well formed, not ours to
answer), ``drop`` (bad input, named), ``bad_option`` (an unreadable option
left out, the request still served) and ``error``.

Faults (:class:`~pxelab.server.faults.FaultInjector`) are consulted for every
incoming message (``dhcp4.discover``, ``dhcp4.request``, ``dhcp4.inform``,
``dhcp4.release``, ``dhcp4.decline``, ``dhcp4.bootp``) and every reply
(``dhcp4.offer``, ``dhcp4.ack``, ``dhcp4.nak``, ``dhcp4.bootreply``): first for
the options to omit or add, then to drop or delay it. An edited reply's event
names the options a fault took out (``fault_omitted``) and put in (``fault_added``).
The proxyDHCP variant is in :mod:`pxelab.server.dhcp4.proxy`.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import traceback
from collections.abc import Callable
from dataclasses import dataclass, replace
from ipaddress import IPv4Address
from typing import Any, cast

from pxelab.core.errors import ConfigError
from pxelab.core.events import EventLog
from pxelab.core.frozen import replaced
from pxelab.server.dhcp4 import codec
from pxelab.server.dhcp4.codec import (
    MESSAGE_TYPE_NAMES,
    DhcpDecodeError,
    DhcpMessage,
    MessageType,
    Op,
    address_text,
)
from pxelab.server.dhcp4.leases import FOREVER, LeasePool, LeaseState
from pxelab.server.dhcp4.replies import (
    CLIENT_PORT,
    SERVER_PORT,
    Dhcp4Settings,
    apply_edits,
    build_bootp_reply,
    build_reply,
    client_info,
    encode_to_fit,
    max_reply_size,
    reply_destination,
)
from pxelab.server.faults import FaultInjector
from pxelab.server.policy import BootDecision, BootPolicy, ClientInfo
from pxelab.server.udp import enlarge_receive_buffer

__all__ = [
    "CLIENT_PORT",
    "MAX_REQUEST_SIZE",
    "SERVER_PORT",
    "BaseDhcp4Protocol",
    "Dhcp4Protocol",
    "Dhcp4Settings",
    "build_reply",
    "client_info",
    "open_dhcp4_socket",
    "reply_destination",
    "reserve_fixed",
]

log = logging.getLogger(__name__)

# Larger than any DHCP client sends (their own option 57 says ~1500 at most); a bigger
# datagram is garbage or an attack, not a request.
MAX_REQUEST_SIZE = 4096
# Options whose malformed value makes the request unusable; other malformed
# options are left out and the request is served without them.
_MUST_PARSE = frozenset({50, 52, 53, 54, 57, 61, 93})
ETHERNET, ETHERNET_LEN = 1, 6
# The fault kinds of requests (None: BOOTP) and replies, named once rather than per message.
_REQUEST_KINDS: dict[MessageType | None, str] = {
    None: "bootp", **{m: name.lower() for m, name in MESSAGE_TYPE_NAMES.items()}}
_FAULT_KINDS: dict[str, str] = {
    name: f"dhcp4.{name.lower()}" for name in (*MESSAGE_TYPE_NAMES.values(), "BOOTREPLY")}
# A handler gets the request, where it came from and the client it describes.
Handler = Callable[[DhcpMessage, tuple[str, int], ClientInfo], None]


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
        enlarge_receive_buffer(sock)  # a boot storm's DISCOVERs arrive at once
        sock.bind(("0.0.0.0", port))
        sock.setblocking(False)
    except BaseException:
        sock.close()
        raise
    return sock


def reserve_fixed(leases: LeasePool, fixed: dict[str, IPv4Address],
                  settings: Dhcp4Settings) -> None:
    """Give the policy's fixed addresses to ``leases``; ConfigError if one cannot be served."""
    for mac, address in fixed.items():
        if address not in settings.network or address in (
                settings.server, settings.network.network_address,
                settings.network.broadcast_address):
            raise ConfigError(f"host {mac}: fixed address {address} is not a usable host "
                              f"address of {settings.network} (the server is "
                              f"{settings.server}); pick another")
    try:
        leases.reserve(fixed)
    except ValueError as exc:
        raise ConfigError(f"{exc}; give each host its own address") from None


@dataclass
class _Outgoing:
    """A reply on its way out, possibly held back by a delay fault."""

    request: DhcpMessage
    reply: DhcpMessage
    data: bytes  # the reply encoded
    client: ClientInfo
    decision: BootDecision
    kind: str | None  # event kind; None: the message type in lower case
    where: tuple[str, int]
    note: dict[str, Any]  # extra event details

    @property
    def name(self) -> str:
        mtype = self.reply.message_type
        return MESSAGE_TYPE_NAMES[mtype] if mtype is not None else "BOOTREPLY"


class BaseDhcp4Protocol(asyncio.DatagramProtocol):
    """What full and proxy DHCPv4 share: input checks, faults, decisions, sending, events."""

    #: hardware address lengths accepted (Ethernet; the PXE boot server also takes GUIDs)
    hardware_lengths: tuple[int, ...] = (ETHERNET_LEN,)

    def __init__(self, settings: Dhcp4Settings, policy: BootPolicy, events: EventLog,
                 faults: FaultInjector | None = None) -> None:
        self.settings = settings
        self.policy = policy
        self.events = events
        self.faults = faults if faults is not None else FaultInjector((), events)
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # A DatagramTransport in fact, though before Python 3.12 not by inheritance.
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str | Any, int]) -> None:
        self._guarded(self.handle, data, (str(addr[0]), int(addr[1])))

    def error_received(self, exc: Exception) -> None:
        self.events.emit("dhcp4", "error", reason=f"socket error: {exc!r}")

    def _guarded(self, function: Callable[..., None], *args: Any) -> None:
        """Run ``function``; an exception is an error event, never the end of the server."""
        try:
            function(*args)
        except Exception as exc:
            peer = next((a for a in args if isinstance(a, tuple)), ("?", 0))
            log.exception("DHCPv4 request from %s:%s failed", *peer)
            self.events.emit("dhcp4", "error", client=f"{peer[0]}:{peer[1]}", reason=repr(exc),
                             details={"traceback": traceback.format_exc()})

    # -- input ---------------------------------------------------------------------------------

    def handle(self, data: bytes, addr: tuple[str, int]) -> None:
        msg = self.accept(data, addr)
        if msg is None:
            return
        mtype = msg.message_type
        # No option 53 at all is BOOTP; an option 53 we cannot name is nothing we answer.
        handler = self.handler_for(mtype) if mtype is not None or msg.raw(53) is None else None
        if handler is None:
            raw = msg.raw(53) or b"\x00"
            name = f"{mtype.name}" if mtype is not None else f"message type {raw[0]} (unknown)"
            self._drop(msg.mac, f"{name} is not a message a {self.role} answers", mac=msg.mac,
                       xid=msg.xid)
            return
        client = self.client(msg)
        if not self.ours(msg, client):
            return
        verdict = self.faults.packet(f"dhcp4.{_REQUEST_KINDS[mtype]}", client.mac, client)
        if verdict.drop:
            return  # the injector emitted fault.injected
        if verdict.delay > 0:
            asyncio.get_running_loop().call_later(verdict.delay, self._guarded, self._later,
                                                  handler, msg, addr)
            return
        handler(msg, addr, client)

    def _later(self, handler: Handler, msg: DhcpMessage, addr: tuple[str, int]) -> None:
        """A delayed request, with the client as the leases describe it by now."""
        handler(msg, addr, self.client(msg))

    @property
    def role(self) -> str:
        return "DHCP server"

    def handler_for(self, mtype: MessageType | None) -> Handler | None:
        """The method answering ``mtype`` (None: BOOTP), or None to drop it."""
        raise NotImplementedError

    def ours(self, msg: DhcpMessage, client: ClientInfo) -> bool:
        """Whether this server answers ``msg`` at all (else an ``ignore`` event); before faults."""
        return True

    def accept(self, data: bytes, addr: tuple[str, int]) -> DhcpMessage | None:
        """Decode and sanity-check a request; None (and a drop event) if it is unusable."""
        peer = f"{addr[0]}:{addr[1]}"
        if len(data) > MAX_REQUEST_SIZE:
            self._drop(peer, f"oversized: {len(data)} bytes, more than the "
                       f"{MAX_REQUEST_SIZE} any DHCP client sends", size=len(data))
            return None
        try:
            msg = codec.decode(data)
        except DhcpDecodeError as exc:
            self._drop(peer, f"malformed: {exc}", size=len(data))
            return None
        problem = self._header_problem(msg)
        if problem is not None:
            self._drop(msg.mac or peer, problem, mac=msg.mac, xid=msg.xid)
            return None
        problems = codec.option_problems(msg)
        fatal = [text for code, text in problems if code in _MUST_PARSE]
        if fatal:
            self._drop(msg.mac, f"bad option: {'; '.join(fatal)}", mac=msg.mac, xid=msg.xid)
            return None
        if problems:
            # Serve the client without the options we cannot read (e.g. a 16-byte option 97).
            bad = {code for code, _ in problems}
            msg = replace(msg, options=tuple(p for p in msg.options if p[0] not in bad))
            self.events.emit("dhcp4", "bad_option", client=msg.mac, mac=msg.mac, reason=(
                f"served without {'; '.join(text for _, text in problems)}"),
                details={"options": sorted(bad), "xid": msg.xid})
        return msg

    def _header_problem(self, msg: DhcpMessage) -> str | None:
        if msg.op is not Op.BOOTREQUEST:
            return "BOOTREPLY sent to the server port"
        if msg.htype != ETHERNET or len(msg.chaddr) not in self.hardware_lengths:
            lengths = " or ".join(map(str, self.hardware_lengths))
            return (f"htype {msg.htype} hlen {len(msg.chaddr)}: only Ethernet "
                    f"(htype 1, hlen {lengths}) is served")
        if not any(msg.chaddr):
            return "chaddr is all zeros: no client hardware address to answer"
        if len(msg.chaddr) == ETHERNET_LEN and msg.chaddr[0] & 1:
            return f"chaddr {msg.mac} is a multicast/broadcast address, not a NIC's"
        if not codec.is_unset(msg.giaddr) and msg.giaddr not in self.settings.network:
            return f"relayed from {msg.giaddr}, outside {self.settings.network}"
        return None

    def client(self, msg: DhcpMessage, address: IPv4Address | None = None) -> ClientInfo:
        if address is None and not codec.is_unset(msg.ciaddr):
            address = msg.ciaddr
        return client_info(msg, self.settings.server_text, address)

    # -- decisions -----------------------------------------------------------------------------

    def decide(self, client: ClientInfo) -> BootDecision | None:
        """The policy's decision, or None (and a ``withheld`` event) if nothing is answered."""
        decision = self.policy.decide_dhcp4(client)
        reason = decision.reason if decision.withhold else self.faults.withhold(client)
        if reason is not None:
            self.events.emit("dhcp4", "withheld", client=client.mac, mac=client.mac,
                             request=client.summary(),
                             reason=reason, details=self._client_details(client))
            return None
        return decision

    # -- output --------------------------------------------------------------------------------

    def send(self, request: DhcpMessage, reply: DhcpMessage, client: ClientInfo,
             decision: BootDecision, *, kind: str | None = None,
             destination: tuple[str, int] | None = None, proxy: bool = False) -> None:
        """Apply option faults, trim ``reply`` to the client's size, send it and log it."""
        note: dict[str, Any] = {"proxy": proxy}
        if self.faults:
            reply = self._edited(reply, client, note)
        reply, omitted, data = encode_to_fit(reply, max_reply_size(request),
                                           client.requested_options)
        note["omitted_options"] = list(omitted)
        out = _Outgoing(request, reply, data, client, decision, kind,
                        destination or reply_destination(request, reply), note)
        verdict = self.faults.packet(_FAULT_KINDS[out.name], client.mac, client)
        if verdict.drop:
            return  # the injector emitted fault.injected
        if verdict.delay > 0:
            out.note["delayed"] = verdict.delay
            asyncio.get_running_loop().call_later(verdict.delay, self._guarded,
                                                  self._transmit, out)
            return
        self._transmit(out)

    def _edited(self, reply: DhcpMessage, client: ClientInfo,
                note: dict[str, Any]) -> DhcpMessage:
        """``reply`` with the OmitOption/AddOption faults for its kind applied (noted)."""
        mtype = reply.message_type
        kind = f"dhcp4.{mtype.name.lower() if mtype is not None else 'bootreply'}"
        edits = self.faults.reply_options(kind, client.mac, client)
        if not edits:
            return reply
        present = {code for code, _ in reply.options}
        note["fault_omitted"] = sorted(edits.omit & present)
        note["fault_added"] = [code for code, _ in edits.add]
        return apply_edits(reply, edits)

    def _transmit(self, out: _Outgoing) -> None:
        assert self.transport is not None
        reply, where, client, name = out.reply, out.where, out.client, out.name
        self.transport.sendto(out.data, where)
        boot_file = reply.text(67) or reply.file or None
        yiaddr, siaddr = address_text(reply.yiaddr), address_text(reply.siaddr)
        answer = f"{'proxy ' if out.note['proxy'] else ''}{name} yiaddr={yiaddr}"
        if boot_file:
            answer += f" next-server={siaddr} file={boot_file}"
        details: dict[str, Any] = {
            **self._client_details(client), **out.note,
            "xid": out.request.xid, "yiaddr": yiaddr, "siaddr": siaddr,
            "vendor_class_echo": reply.text(60),
            "options": [code for code, _ in reply.options],
            "destination": f"{where[0]}:{where[1]}"}
        self.events.emit("dhcp4", out.kind or name.lower(), client=client.mac,
                         mac=client.mac, file=boot_file or "",
                         request=client.summary(), answer=answer,
                         reason=out.decision.reason, details=details)
        if log.isEnabledFor(logging.DEBUG):
            log.debug("%s -> %s: %s (%s)", client.mac, where, answer, out.decision.reason)

    @staticmethod
    def _client_details(client: ClientInfo) -> dict[str, Any]:
        return {"arch": client.arch, "vendor_class": client.vendor_class,
                "user_classes": list(client.user_classes), "secs": client.secs,
                "message_type": client.message_type}

    def _drop(self, client: str, reason: str, mac: str = "", **details: Any) -> None:
        """Bad input: say what was wrong with it (``mac``: the client's, if the message had one)."""
        request = details.pop("request", "")
        self.events.emit("dhcp4", "drop", client=client, mac=mac, request=request, reason=reason,
                         details=details)

    def _ignore(self, client: ClientInfo, reason: str) -> None:
        """A good message that is not ours to answer."""
        self.events.emit("dhcp4", "ignore", client=client.mac, mac=client.mac,
                         request=client.summary(),
                         reason=reason, details=self._client_details(client))


class Dhcp4Protocol(BaseDhcp4Protocol):
    """Full DHCPv4 server for one interface: addresses and boot files (RFC 2131)."""

    def __init__(self, settings: Dhcp4Settings, policy: BootPolicy, leases: LeasePool,
                 events: EventLog, faults: FaultInjector | None = None) -> None:
        super().__init__(settings, policy, events, faults)
        self.leases = leases
        self._handlers: dict[MessageType | None, Handler] = {
            None: self.on_bootp,
            MessageType.DISCOVER: self.on_discover,
            MessageType.REQUEST: self.on_request,
            MessageType.RELEASE: self.on_release,
            MessageType.DECLINE: self.on_decline,
            MessageType.INFORM: self.on_inform,
        }

    def handler_for(self, mtype: MessageType | None) -> Handler | None:
        return self._handlers.get(mtype)

    def client(self, msg: DhcpMessage, address: IPv4Address | None = None) -> ClientInfo:
        if address is None and codec.is_unset(msg.ciaddr):
            lease = self.leases.lookup(msg.mac)
            address = self.leases.fixed(msg.mac) or (lease.address if lease else None)
        return super().client(msg, address)

    def on_discover(self, msg: DhcpMessage, addr: tuple[str, int], client: ClientInfo) -> None:
        decision = self.decide(client)
        if decision is None:
            return
        address = self.leases.offer(client.mac, msg.ipv4(50))
        if address is None:
            self._no_address(client)
            return
        self.send(msg, build_reply(msg, MessageType.OFFER, self.settings, yiaddr=address,
                                   decision=decision, client=client), client, decision)

    def on_request(self, msg: DhcpMessage, addr: tuple[str, int], client: ClientInfo) -> None:
        """SELECTING (option 54), INIT-REBOOT (50, no 54), RENEWING/REBINDING (ciaddr)."""
        server_id = msg.ipv4(54)
        requested = msg.ipv4(50) or (None if codec.is_unset(msg.ciaddr) else msg.ciaddr)
        if requested is not None and client.client_address != str(requested):
            client = replaced(client, client_address=str(requested))  # what it asks to have
        if server_id is not None and server_id != self.settings.server:
            if (lease := self.leases.lookup(client.mac)) and lease.state is LeaseState.OFFERED:
                self.leases.release(client.mac)  # RFC 2131 4.3.2: our offer was declined
            self._ignore(client, f"client chose server {server_id}")
            return
        if requested is None:
            self._drop(client.mac, "REQUEST names no address (no option 50, no ciaddr)",
                       mac=client.mac, request=client.summary())
            return
        if requested not in self.settings.network:
            self._nak(msg, client, f"{requested} is not in {self.settings.network}")
            return
        if (server_id is None and self.leases.lookup(client.mac) is None
                and not self.leases.knows(requested)):
            # RFC 2131 4.3.2 INIT-REBOOT: no record of this client -> stay silent. A client
            # asking for a pool address we forgot (server restart) is simply bound again.
            self._ignore(client, f"INIT-REBOOT for {requested}: no record, not ours to give")
            return
        decision = self.decide(client)
        if decision is None:
            return
        if self.leases.bind(client.mac, requested) is None:
            self._nak(msg, client, self._refusal(client.mac, requested))
            return
        self.send(msg, build_reply(msg, MessageType.ACK, self.settings, yiaddr=requested,
                                   decision=decision, client=client), client, decision)

    def on_release(self, msg: DhcpMessage, addr: tuple[str, int], client: ClientInfo) -> None:
        if not self._for_us(msg, client):
            return
        released = self.leases.release(msg.mac, msg.ciaddr)
        self.events.emit("dhcp4", "release", client=msg.mac, mac=msg.mac,
                         request=f"RELEASE {msg.ciaddr}",
                         reason="lease freed" if released else "no such lease",
                         details={"address": str(msg.ciaddr), "xid": msg.xid})

    def on_decline(self, msg: DhcpMessage, addr: tuple[str, int], client: ClientInfo) -> None:
        if not self._for_us(msg, client):
            return
        address = msg.ipv4(50)
        if address is None:
            self._drop(msg.mac, "DECLINE names no address (option 50 missing)", mac=msg.mac,
                       xid=msg.xid)
            return
        declined = self.leases.decline(msg.mac, address)
        reason = ("client reports the address in use; excluded from the pool" if declined
                  else f"{address} is not an address this server hands out; nothing to do")
        self.events.emit("dhcp4", "decline", client=msg.mac, mac=msg.mac,
                         request=f"DECLINE {address}",
                         reason=reason, details={"address": str(address), "xid": msg.xid})

    def on_inform(self, msg: DhcpMessage, addr: tuple[str, int], client: ClientInfo) -> None:
        """RFC 2131 4.3.5: configuration for a client that has its address already."""
        decision = self.decide(client)
        if decision is None:
            return
        self.send(msg, build_reply(msg, MessageType.ACK, self.settings, decision=decision,
                                   client=client), client, decision, kind="inform")

    def on_bootp(self, msg: DhcpMessage, addr: tuple[str, int], client: ClientInfo) -> None:
        """RFC 951/1534: a BOOTREQUEST without option 53 gets an address for good."""
        decision = self.decide(client)
        if decision is None:
            return
        address = self.leases.offer(client.mac)
        if address is None or self.leases.bind(client.mac, address, FOREVER) is None:
            self._no_address(client)
            return
        decision = replace(decision, reason=f"{decision.reason}; BOOTP: permanent lease"
                           if decision.reason else "BOOTP: permanent lease")
        self.send(msg, build_bootp_reply(msg, self.settings, address, decision, client),
                  client, decision)

    # -- helpers -------------------------------------------------------------------------------

    def _for_us(self, msg: DhcpMessage, client: ClientInfo) -> bool:
        server_id = msg.ipv4(54)
        if server_id is not None and server_id != self.settings.server:
            self._ignore(client, f"{client.message_type} is for server {server_id}")
            return False
        return True

    def _refusal(self, mac: str, requested: IPv4Address) -> str:
        fixed = self.leases.fixed(mac)
        if fixed is not None:
            return f"{requested} is not {mac}'s fixed address {fixed}"
        held = self.leases.lookup(mac)
        return (f"{requested} is not available to {mac}"
                + (f" (it holds {held.address})" if held else ""))

    def _no_address(self, client: ClientInfo) -> None:
        fixed = self.leases.fixed(client.mac)
        reason = (f"fixed address {fixed} was declined by a client; no address for "
                  f"{client.mac}" if fixed is not None else
                  f"pool {self.leases.first}-{self.leases.last} is exhausted")
        self._drop(client.mac, reason, mac=client.mac, request=client.summary())

    def _nak(self, msg: DhcpMessage, client: ClientInfo, reason: str) -> None:
        reply = build_reply(msg, MessageType.NAK, self.settings, client=client, message=reason)
        self.send(msg, reply, client, BootDecision(reason=reason))

