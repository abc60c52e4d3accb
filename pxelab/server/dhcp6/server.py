"""The DHCPv6 protocol: one method per message type, decisions from the policy.

The protocol object speaks RFC 8415 as a server on one link (no relays):
sockets, validation, leases and events. Which boot URL a client gets, or
whether it gets an answer at all, is the
:class:`~pxelab.server.policy.BootPolicy`'s business; addresses come from
:class:`~pxelab.server.dhcp6.leases.Lease6Pool`; the Advertise and Reply
messages are built by :mod:`pxelab.server.dhcp6.replies` (what firmware needs
of them is said there). A Reply goes to Release (OVMF waits ~60 s for it
before starting the NBP) and to Information-request (the second, stateless
client an RA with M/O starts).

Faults (:class:`~pxelab.server.faults.FaultInjector`): ``packet("dhcp6.<type>")`` for
every message that comes in (``dhcp6.release`` drops a Release unanswered) and
every Advertise/Reply that goes out; ``reply_options("dhcp6.advertise" or
"dhcp6.reply")`` edits the built reply (:func:`~pxelab.server.dhcp6.replies.edit_options`), so
``OmitOption("dhcp6.*", 16)`` sends an HTTP client no HTTPClient echo.

Events (source ``dhcp6``): what came in (``solicit``, ``request``, ``renew``,
``rebind``, ``release``, ``decline``, ``confirm``, ``inform``), what went out
(``advertise``, ``reply``), and ``withheld``, ``drop``, ``error``.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import traceback
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from ipaddress import IPv6Address
from typing import Any, cast

from pxelab.core.events import EventLog
from pxelab.core.frozen import replaced
from pxelab.server.dhcp6 import codec
from pxelab.server.dhcp6.codec import (
    ALL_DHCP_RELAY_AGENTS_AND_SERVERS,
    SERVER_PORT,
    BootFileUrl,
    Dhcp6DecodeError,
    Dhcp6Message,
    Duid,
    IaAddress,
    IaNa,
    MessageType,
    OptionCode,
    RelayMessage,
    Status,
    StatusCode,
    VendorClass,
)
from pxelab.server.dhcp6.leases import Lease6Pool
from pxelab.server.dhcp6.replies import (
    Dhcp6Settings,
    Peer,
    assigned_ia,
    build_reply,
    client_info,
    edit_options,
    failed_ia,
    status_name,
)
from pxelab.server.faults import FaultInjector
from pxelab.server.policy import BootDecision, BootPolicy, ClientInfo
from pxelab.server.udp import enlarge_receive_buffer, join_ipv6_group

__all__ = [
    "Dhcp6Protocol",
    "open_dhcp6_socket",
    "server_duid",
    "validate",
]

log = logging.getLogger(__name__)

_IA_CODES = (3, 4, 25)  # IA_NA, IA_TA, IA_PD (RFC 8415 21.4, 21.5, 21.21)
# What a server takes, and the RFC 8415 section that says when to discard it.
_SECTIONS = {MessageType.SOLICIT: "16.2", MessageType.REQUEST: "16.4",
             MessageType.CONFIRM: "16.5", MessageType.RENEW: "16.6",
             MessageType.REBIND: "16.7", MessageType.DECLINE: "16.8",
             MessageType.RELEASE: "16.9", MessageType.INFORMATION_REQUEST: "16.12"}
_SERVER_BOUND = frozenset(_SECTIONS)
# str() of an IPv6Address takes microseconds; a lab's clients keep their few addresses.
_text = lru_cache(maxsize=4096)(str)


@lru_cache(maxsize=1024)
def _peer(addr: tuple[Any, ...]) -> Peer:
    return Peer.from_addr(addr)


# -- sockets and identity ----------------------------------------------------------------------

def open_dhcp6_socket(interface: str, port: int = SERVER_PORT) -> socket.socket:
    """UDP socket on [::]:``port`` that sees only ``interface`` and its ff02::1:2.

    No SO_REUSEADDR, for the reason the DHCPv4 socket has none: a second
    server on the port must fail loudly, not share the traffic.
    """
    index = socket.if_nametoindex(interface)
    sock = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
    try:
        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, interface.encode())
        enlarge_receive_buffer(sock)  # a boot storm's Solicits arrive at once
        sock.bind(("::", port))
        # RFC 8415 7.1: clients send to All_DHCP_Relay_Agents_and_Servers on the link.
        join_ipv6_group(sock, ALL_DHCP_RELAY_AGENTS_AND_SERVERS, index)
        sock.setblocking(False)
    except BaseException:
        sock.close()
        raise
    return sock


def server_duid(mac: bytes | None, interface: str) -> Duid:
    """DUID-LL from the interface MAC (RFC 8415 11.4: for devices with a fixed NIC).

    Without a MAC, a DUID-UUID made from the interface name, stable all the same.
    """
    if mac is not None:
        return Duid.link_layer(mac)
    return Duid.from_uuid(uuid.uuid5(uuid.NAMESPACE_OID, f"pxelab-dhcp6-{interface}").bytes)


# -- pure helpers ------------------------------------------------------------------------------

def validate(msg: Dhcp6Message, ours: Duid) -> str | None:
    """Why RFC 8415 section 16 says to discard ``msg``, or None if a server takes it."""
    label = msg.msg_type.label
    client, server = msg.client_duid, msg.server_duid
    cite = f"(RFC 8415 {_SECTIONS[msg.msg_type]})"
    if msg.msg_type is MessageType.INFORMATION_REQUEST:
        if server is not None and server != ours:
            return f"{label} names server {server.describe()}, not us {cite}"
        if any(o.code in _IA_CODES for o in msg.options):
            return f"{label} carries an IA option {cite}"
        return None
    if client is None:
        return f"{label} without a Client Identifier {cite}"
    if msg.msg_type in (MessageType.SOLICIT, MessageType.CONFIRM, MessageType.REBIND):
        if server is not None:
            return f"{label} carries a Server Identifier ({server.describe()}) {cite}"
        return None
    if server is None:
        return f"{label} without a Server Identifier {cite}"
    if server != ours:
        return f"{label} is for server {server.describe()}, not us {cite}"
    return None


# -- the protocol ------------------------------------------------------------------------------

class Dhcp6Protocol(asyncio.DatagramProtocol):
    """DHCPv6 server protocol for one interface."""

    def __init__(self, settings: Dhcp6Settings, duid: Duid, policy: BootPolicy,
                 leases: Lease6Pool, events: EventLog, *,
                 faults: FaultInjector | None = None) -> None:
        self.settings = settings
        self.duid = duid
        self.policy = policy
        self.leases = leases
        self.events = events
        self.faults = faults if faults is not None else FaultInjector((), events)
        self.transport: asyncio.DatagramTransport | None = None
        self._memo: _About | None = None  # the texts of the message handled last
        self._handlers: dict[MessageType, Callable[[Dhcp6Message, Peer, ClientInfo], None]] = {
            MessageType.SOLICIT: self.on_solicit,
            MessageType.REQUEST: self.on_request,
            MessageType.RENEW: self.on_renew,
            MessageType.REBIND: self.on_rebind,
            MessageType.CONFIRM: self.on_confirm,
            MessageType.RELEASE: self.on_release,
            MessageType.DECLINE: self.on_decline,
            MessageType.INFORMATION_REQUEST: self.on_information_request,
        }

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # A DatagramTransport in fact, though before Python 3.12 not by inheritance.
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str | Any, int]) -> None:
        try:
            self.handle(data, _peer(addr))
        except Exception as exc:  # never let one packet stop the server
            label = f"{addr[0]}:{addr[1]}"
            log.exception("DHCPv6 message from %s failed", label)
            self.events.emit("dhcp6", "error", client=label, reason=repr(exc),
                             details={"traceback": traceback.format_exc()})

    def error_received(self, exc: Exception) -> None:
        self.events.emit("dhcp6", "error", reason=f"socket error: {exc!r}")

    # -- dispatch ------------------------------------------------------------------------------

    def handle(self, data: bytes, peer: Peer) -> None:
        try:
            msg = codec.decode(data)
        except Dhcp6DecodeError as exc:
            self._drop(peer.host, f"malformed: {exc}", peer=str(peer), size=len(data))
            return
        if isinstance(msg, RelayMessage):
            self._drop(peer.host, f"{msg.msg_type.label} from {msg.link_address}: "
                       "relayed messages are not served; put the server on the client's link",
                       peer=str(peer), message_type=msg.msg_type.label)
            return
        if msg.msg_type not in _SERVER_BOUND:
            self._drop(peer.host, f"{msg.msg_type.label} is sent by servers, not to them",
                       peer=str(peer), message_type=msg.msg_type.label, xid=msg.xid)
            return
        client = client_info(msg, peer, self.settings)
        who = client.mac or peer.host
        if (problem := validate(msg, self.duid)) is not None:
            self._drop(who, problem, mac=client.mac or "", **self._details(msg, peer, client))
            return
        verdict = self.faults.packet(f"dhcp6.{msg.msg_type.label}", client.mac, client)
        if verdict.drop:
            return
        handler = self._handlers[msg.msg_type]
        if verdict.delay:
            asyncio.get_running_loop().call_later(
                verdict.delay, self._handle_later, handler, msg, peer, client)
            return
        handler(msg, peer, client)

    def _handle_later(self, handler: Callable[[Dhcp6Message, Peer, ClientInfo], None],
                      msg: Dhcp6Message, peer: Peer, client: ClientInfo) -> None:
        try:
            handler(msg, peer, client)
        except Exception as exc:
            log.exception("delayed DHCPv6 message from %s failed", peer)
            self.events.emit("dhcp6", "error", client=client.mac, mac=client.mac or "",
                             reason=repr(exc),
                             details={"traceback": traceback.format_exc()})

    # -- one method per message type -------------------------------------------------------------

    def on_solicit(self, msg: Dhcp6Message, peer: Peer, client: ClientInfo) -> None:
        rapid = msg.has(OptionCode.RAPID_COMMIT) and self.settings.rapid_commit
        self._answer_with_addresses("solicit", msg, peer, client, commit=rapid,
                                    rapid_commit=rapid)

    def on_request(self, msg: Dhcp6Message, peer: Peer, client: ClientInfo) -> None:
        self._answer_with_addresses("request", msg, peer, client, commit=True)

    def on_renew(self, msg: Dhcp6Message, peer: Peer, client: ClientInfo) -> None:
        self._extend("renew", msg, peer, client)

    def on_rebind(self, msg: Dhcp6Message, peer: Peer, client: ClientInfo) -> None:
        self._extend("rebind", msg, peer, client)

    def on_confirm(self, msg: Dhcp6Message, peer: Peer, client: ClientInfo) -> None:
        self._received("confirm", msg, peer, client)
        addresses = [a.address for ia in msg.all(IaNa) for a in ia.addresses]
        if not addresses:
            self._drop(client.mac or peer.host,
                       "confirm names no address; RFC 8415 18.3.3 says not to reply",
                       **self._details(msg, peer, client))
            return
        off_link = [str(a) for a in addresses if a not in self.settings.network]
        status = (StatusCode(Status.NOT_ON_LINK, f"not on {self.settings.network}: "
                             + ", ".join(off_link)) if off_link
                  else StatusCode(Status.SUCCESS, "all addresses on link"))
        reply = build_reply(msg, MessageType.REPLY, self.duid, self.settings, status=status)
        self._send(msg, reply, peer, client, status.message)

    def on_release(self, msg: Dhcp6Message, peer: Peer, client: ClientInfo) -> None:
        self._received("release", msg, peer, client)
        released, unknown = self._give_back(msg, self.leases.release)
        # RFC 8415 18.3.7: Success at the top whatever happened; NoBinding per unknown IA.
        reply = build_reply(msg, MessageType.REPLY, self.duid, self.settings,
                            ias=unknown, status=StatusCode(Status.SUCCESS, "released"))
        reason = (f"released {', '.join(released)}" if released else "nothing to release")
        self._send(msg, reply, peer, client, reason, released=released)

    def on_decline(self, msg: Dhcp6Message, peer: Peer, client: ClientInfo) -> None:
        self._received("decline", msg, peer, client)
        declined, unknown = self._give_back(msg, self.leases.decline)
        reply = build_reply(msg, MessageType.REPLY, self.duid, self.settings,
                            ias=unknown, status=StatusCode(Status.SUCCESS, "declined"))
        self._send(msg, reply, peer, client,
                   f"client reports {', '.join(declined) or 'nothing'} in use; excluded",
                   declined=declined)

    def on_information_request(self, msg: Dhcp6Message, peer: Peer, client: ClientInfo) -> None:
        self._received("inform", msg, peer, client)
        decision = self._decide(msg, peer, client)
        if decision is None:
            return
        reply = build_reply(msg, MessageType.REPLY, self.duid, self.settings,
                            decision=decision, client=client)
        self._send(msg, reply, peer, client, decision.reason)

    # -- address work --------------------------------------------------------------------------

    @staticmethod
    def _duid(msg: Dhcp6Message) -> bytes:
        duid = msg.client_duid
        assert duid is not None, "validate() lets no address message through without one"
        return duid.raw

    def _answer_with_addresses(self, kind: str, msg: Dhcp6Message, peer: Peer,
                               client: ClientInfo, *, commit: bool,
                               rapid_commit: bool = False) -> None:
        """Advertise addresses (Solicit) or bind them (Request, Rapid Commit) and reply."""
        self._received(kind, msg, peer, client)
        client = self._with_candidate(msg, client)
        decision = self._decide(msg, peer, client)
        if decision is None:
            return
        ias = self._assign(msg, client, commit=commit)
        reply_type = MessageType.REPLY if commit else MessageType.ADVERTISE
        reply = build_reply(msg, reply_type, self.duid, self.settings, ias=ias,
                            decision=decision, client=client, rapid_commit=rapid_commit)
        why = decision.reason + (" (rapid commit)" if rapid_commit else "")
        self._send(msg, reply, peer, client, why)

    def _give_back(self, msg: Dhcp6Message, give: Callable[[bytes, int, IPv6Address], bool],
                   ) -> tuple[list[str], tuple[IaNa, ...]]:
        """Each address of ``msg``'s IA_NAs handed to ``give`` (release or decline): the
        addresses it took, and a NoBinding IA_NA for each IA that held not all of its own."""
        duid = self._duid(msg)
        taken: list[str] = []
        unknown: list[IaNa] = []
        for ia in msg.all(IaNa):
            held = [a for a in ia.addresses if give(duid, ia.iaid, a.address)]
            taken += [str(a.address) for a in held]
            if len(held) < len(ia.addresses) or not ia.addresses:
                unknown.append(failed_ia(ia.iaid, Status.NO_BINDING, "no such binding"))
        return taken, tuple(unknown)

    def _with_candidate(self, msg: Dhcp6Message, client: ClientInfo) -> ClientInfo:
        """``client`` with the address its first IA would get, for {ip} in boot templates."""
        ia = msg.get(IaNa)
        if ia is None:
            return client
        address = self.leases.candidate(self._duid(msg), ia.iaid, client.mac or None,
                                        [a.address for a in ia.addresses])
        return replaced(client, client_address=_text(address)) if address else client

    def _assign(self, msg: Dhcp6Message, client: ClientInfo, *,
                commit: bool) -> tuple[IaNa, ...]:
        """One IA_NA per IA_NA asked for: an address, or NoAddrsAvail (RFC 8415 18.3.1/2)."""
        duid = self._duid(msg)
        mac = client.mac or None
        out: list[IaNa] = []
        for ia in msg.all(IaNa):
            hints = [a.address for a in ia.addresses]
            get = self.leases.bind if commit else self.leases.offer
            binding = get(duid, ia.iaid, mac, hints)
            if binding is None:
                out.append(failed_ia(ia.iaid, Status.NO_ADDRS_AVAIL,
                                     f"pool {self.leases.first}-{self.leases.last} is full"))
            else:
                out.append(assigned_ia(ia.iaid, binding, self.settings))
        return tuple(out)

    def _extend(self, kind: str, msg: Dhcp6Message, peer: Peer, client: ClientInfo) -> None:
        """Renew (RFC 8415 18.3.4) or Rebind (18.3.5) every IA_NA in ``msg``."""
        self._received(kind, msg, peer, client)
        decision = self._decide(msg, peer, client)
        if decision is None:
            return
        duid = self._duid(msg)
        ias = tuple(self._extend_ia(duid, ia, client, rebind=kind == "rebind")
                    for ia in msg.all(IaNa))
        client = replaced(client, client_address=next(
            (_text(a.address) for ia in ias for a in ia.addresses if a.valid), ""))
        reply = build_reply(msg, MessageType.REPLY, self.duid, self.settings, ias=ias,
                            decision=decision, client=client)
        self._send(msg, reply, peer, client, f"{kind}: {decision.reason}")

    def _extend_ia(self, duid: bytes, ia: IaNa, client: ClientInfo, *, rebind: bool) -> IaNa:
        held = self.leases.lookup(duid, ia.iaid)
        asked = [a.address for a in ia.addresses] or ([held.address] if held else [])
        for address in asked:
            binding = self.leases.renew(duid, ia.iaid, address)
            if binding is None and rebind and self.leases.candidate(
                    duid, ia.iaid, client.mac or None, [address]) == address:
                # The binding is gone (a restarted server) but the address is free: keep it.
                binding = self.leases.bind(duid, ia.iaid, client.mac or None, [address])
            if binding is not None:
                stale = tuple(IaAddress(a, 0, 0) for a in asked if a != address)
                return assigned_ia(ia.iaid, binding, self.settings, stale)
        # Lifetimes 0 tell the client to stop using what it asked about.
        zeroed = tuple(IaAddress(a, 0, 0) for a in asked)
        if rebind:
            return IaNa(ia.iaid, 0, 0, zeroed)
        return failed_ia(ia.iaid, Status.NO_BINDING, "no binding for this IA", zeroed)

    # -- decisions, sending, events --------------------------------------------------------------

    def _decide(self, msg: Dhcp6Message, peer: Peer, client: ClientInfo) -> BootDecision | None:
        reason = self.faults.withhold(client)
        decision = BootDecision.withheld(reason) if reason else self.policy.decide_dhcp6(client)
        if decision.withhold:
            # Nothing was leased: the address the client would have got is only a candidate.
            details = self._details(msg, peer, client) | {
                "address": None, "candidate": client.client_address or None}
            self.events.emit("dhcp6", "withheld", client=client.mac or peer.host,
                             mac=client.mac or "",
                             request=self._summary(msg, peer, client), reason=decision.reason,
                             details=details)
            return None
        return decision

    def _send(self, request: Dhcp6Message, reply: Dhcp6Message, peer: Peer,
              client: ClientInfo, reason: str, **extra: Any) -> None:
        kind = reply.msg_type.label
        verdict = self.faults.packet(f"dhcp6.{kind}", client.mac, client)
        if verdict.drop:
            return
        if edits := self.faults.reply_options(f"dhcp6.{kind}", client.mac, client):
            reply = edit_options(reply, edits)
            extra |= {"omitted_options": sorted(edits.omit),
                      "added_options": [code for code, _ in edits.add]}
        data = codec.encode(reply)
        if verdict.delay:
            asyncio.get_running_loop().call_later(verdict.delay, self._transmit, data, peer)
        else:
            self._transmit(data, peer)
        ias = reply.all(IaNa)
        addresses = [_text(a.address) for ia in ias for a in ia.addresses if a.valid]
        url = reply.get(BootFileUrl)
        echo = reply.get(VendorClass)
        status = reply.status or next((ia.status for ia in ias if ia.status), None)
        answer = f"{reply.msg_type.name} " + (", ".join(addresses) or "no address")
        if url:
            answer += f" url={url.url}"
        details = self._details(request, peer, client) | {
            "address": addresses[0] if addresses else None,
            "addresses": addresses,
            "vendor_class_echo": echo.data[0].decode("latin-1") if echo and echo.data
            else None,
            "status": status_name(status.status) if status else None,
            "rapid_commit": reply.has(OptionCode.RAPID_COMMIT),
            "in_reply_to": request.msg_type.label,
            "destination": peer.reply_to,
            "delayed": verdict.delay or None,
        } | extra
        self.events.emit("dhcp6", kind, client=client.mac or peer.host,
                         mac=client.mac or "",
                         file=url.url if url else "",
                         request=self._summary(request, peer, client), answer=answer,
                         reason=reason, details=details)
        log.debug("%s -> %s: %s (%s)", client.mac, peer, answer, reason)

    def _transmit(self, data: bytes, peer: Peer) -> None:
        if self.transport is None or self.transport.is_closing():
            return  # a delayed reply outlived the server
        self.transport.sendto(data, peer.destination)

    def _received(self, kind: str, msg: Dhcp6Message, peer: Peer, client: ClientInfo) -> None:
        self.events.emit("dhcp6", kind, client=client.mac or peer.host,
                         mac=client.mac or "",
                         request=self._summary(msg, peer, client),
                         details=self._details(msg, peer, client))

    def _details(self, msg: Dhcp6Message, peer: Peer, client: ClientInfo) -> dict[str, Any]:
        """What every event about ``msg`` says about it; ``address``: the client's, else asked."""
        memo = self._about(msg, peer, client)
        return {"address": client.client_address or memo.asked} | memo.details

    def _summary(self, msg: Dhcp6Message, peer: Peer, client: ClientInfo) -> str:
        return self._about(msg, peer, client).summary

    def _about(self, msg: Dhcp6Message, peer: Peer, client: ClientInfo) -> _About:
        """The event texts of ``msg``, made once: a message has two or three events.

        Only the client's address changes between them (candidate, lease), and
        :meth:`_details` sets it for each event.
        """
        memo = self._memo
        if memo is None or memo.msg is not msg:
            memo = self._memo = _About(msg, client.summary(), *_message_details(msg, peer, client))
        return memo

    def _drop(self, client: str, reason: str, mac: str = "", **details: Any) -> None:
        self.events.emit("dhcp6", "drop", client=client, mac=mac, reason=reason, details=details)


@dataclass(frozen=True)
class _About:
    """One message's event texts (see :meth:`Dhcp6Protocol._about`)."""

    msg: Dhcp6Message
    summary: str
    asked: str | None  # the first address the client asked for
    details: dict[str, Any]  # without "address"


def _message_details(msg: Dhcp6Message, peer: Peer,
                     client: ClientInfo) -> tuple[str | None, dict[str, Any]]:
    duid = msg.client_duid
    ias = msg.all(IaNa)
    vendor = msg.get(VendorClass)
    asked = next((_text(a.address) for ia in ias for a in ia.addresses), None)
    return asked, {
        "arch": client.arch,
        "vendor_class": client.vendor_class,
        "vendor_enterprise": vendor.enterprise if vendor else None,
        "user_classes": list(client.user_classes),
        "duid": duid.hex() if duid else None,
        "duid_type": duid.describe() if duid else None,
        "iaid": ias[0].iaid if ias else None,
        "iaids": [ia.iaid for ia in ias],
        "xid": msg.xid,
        "message_type": msg.msg_type.label,
        "requested_options": list(msg.requested),
        "rapid_commit_asked": msg.has(OptionCode.RAPID_COMMIT),
        "elapsed_seconds": client.secs,
        "peer": str(peer),
    }
