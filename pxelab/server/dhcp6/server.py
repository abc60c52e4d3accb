"""The DHCPv6 protocol: one method per message type, decisions from the policy.

The protocol object speaks RFC 8415 as a server on one link (no relays);
which boot URL a client gets, or whether it gets an answer at all, is the
:class:`~pxelab.server.policy.BootPolicy`'s business; addresses come from
:class:`~pxelab.server.dhcp6.leases.Lease6Pool`. What real firmware needs (EDK2
NetworkPkg Dhcp6Dxe, UefiPxeBcDxe/PxeBcDhcp6.c, HttpBootDxe/HttpBootDhcp6.c;
iPXE src/net/udp/dhcpv6.c):

- IA_NA echoing the client's IAID, with an IAADDR (valid >= preferred, or
  EDK2 drops the address), no Status Code (see :func:`assigned_ia`); T1 <= T2.
- Option 59 as a URL; for UEFI HTTP an option 16 whose data starts
  ``HTTPClient`` (else no Request follows). Never ``PXEClient``: EDK2 then
  takes the offer as a BINL one and asks a boot server on port 4011.
- Rapid Commit only when the client asked for it (EDK2 rejects a Reply
  carrying it otherwise); a Preference of 255 so EDK2 requests at once
  instead of collecting Advertises for its first retransmission time.
- A Reply to Release (OVMF waits ~60 s for it before starting the NBP) and
  to Information-request (the second, stateless client an RA with M/O starts).

Faults (:class:`~pxelab.server.faults.FaultInjector`): ``packet("dhcp6.<type>")`` for
every message that comes in (``dhcp6.release`` drops a Release unanswered) and
every Advertise/Reply that goes out; ``reply_options("dhcp6.advertise" or
"dhcp6.reply")`` edits the built reply (:func:`edit_options`), so
``OmitOption("dhcp6.*", 16)`` sends an HTTP client no HTTPClient echo.

Events (source ``dhcp6``): what came in (``solicit``, ``request``, ``renew``,
``rebind``, ``release``, ``decline``, ``confirm``, ``inform``), what went out
(``advertise``, ``reply``), and ``withheld``, ``drop``, ``error``.
"""

from __future__ import annotations

import asyncio
import fcntl
import logging
import socket
import struct
import traceback
import uuid
from collections.abc import Callable
from dataclasses import dataclass, replace
from functools import lru_cache
from ipaddress import IPv6Address, IPv6Network
from typing import Any, cast

from pxelab.core.events import EventLog
from pxelab.core.memo import memoized
from pxelab.server.dhcp6 import codec
from pxelab.server.dhcp6.codec import (
    ALL_DHCP_RELAY_AGENTS_AND_SERVERS,
    CLIENT_PORT,
    ENTERPRISE_PXE,
    SERVER_PORT,
    BootFileUrl,
    ClientArch,
    ClientId,
    Dhcp6DecodeError,
    Dhcp6Message,
    DnsServers,
    Duid,
    ElapsedTime,
    IaAddress,
    IaNa,
    MessageType,
    Option,
    OptionCode,
    Preference,
    RapidCommit,
    RelayMessage,
    ServerId,
    Status,
    StatusCode,
    UnknownOption,
    UserClass,
    VendorClass,
)
from pxelab.server.dhcp6.leases import Binding, Lease6Pool
from pxelab.server.faults import FaultInjector, ReplyEdits
from pxelab.server.policy import BootDecision, BootPolicy, ClientInfo

__all__ = [
    "Dhcp6Protocol",
    "Dhcp6Settings",
    "Peer",
    "build_reply",
    "client_info",
    "client_mac",
    "edit_options",
    "interface_mac",
    "open_dhcp6_socket",
    "server_duid",
    "validate",
]

log = logging.getLogger(__name__)

SIOCGIFHWADDR = 0x8927
_IA_CODES = (3, 4, 25)  # IA_NA, IA_TA, IA_PD (RFC 8415 21.4, 21.5, 21.21)
# What a server takes, and the RFC 8415 section that says when to discard it.
_SECTIONS = {MessageType.SOLICIT: "16.2", MessageType.REQUEST: "16.4",
             MessageType.CONFIRM: "16.5", MessageType.RENEW: "16.6",
             MessageType.REBIND: "16.7", MessageType.DECLINE: "16.8",
             MessageType.RELEASE: "16.9", MessageType.INFORMATION_REQUEST: "16.12"}
_SERVER_BOUND = frozenset(_SECTIONS)
# str() of an IPv6Address takes microseconds; a lab's clients keep their few addresses.
_text = lru_cache(maxsize=4096)(str)


@dataclass(frozen=True)
class Dhcp6Settings:
    """What the DHCPv6 protocol needs to know about the lab."""

    server: IPv6Address  # our global address: boot URLs point at it
    network: IPv6Network  # the on-link prefix, for Confirm (RFC 8415 18.3.3)
    valid_seconds: int = 3600
    preferred_seconds: int = 1800
    dns: tuple[IPv6Address, ...] = ()
    rapid_commit: bool = True
    preference: int | None = 255  # Advertise preference; None: send no option 7

    @property
    def preferred(self) -> int:
        """Never above the valid lifetime: EDK2 drops an IAADDR whose preferred > valid."""
        return min(self.preferred_seconds, self.valid_seconds)

    @property
    def t1(self) -> int:
        """RFC 8415 21.4 recommends T1 = 0.5 and T2 = 0.8 times the preferred lifetime."""
        return self.preferred // 2

    @property
    def t2(self) -> int:
        return self.preferred * 4 // 5

    @memoized
    def server_text(self) -> str:
        return str(self.server)


@dataclass(frozen=True)
class Peer:
    """Where a message came from; replies go to its address, port 546, same scope."""

    address: IPv6Address
    port: int
    scope_id: int = 0

    @classmethod
    def from_addr(cls, addr: tuple[Any, ...]) -> Peer:
        host = str(addr[0]).split("%", 1)[0]
        return cls(IPv6Address(host), int(addr[1]), int(addr[3]) if len(addr) > 3 else 0)

    # A client sends several messages from one address: the texts are made once per peer
    # (see _peer), as parsing and formatting an IPv6 address costs microseconds.

    @memoized
    def host(self) -> str:
        return str(self.address)

    @memoized
    def destination(self) -> tuple[str, int, int, int]:
        """RFC 8415 7.2: clients listen on port 546, whatever port they sent from."""
        return self.host, CLIENT_PORT, 0, self.scope_id

    @memoized
    def reply_to(self) -> str:
        """The destination as events show it."""
        return f"[{self.host}%{self.scope_id}]:{CLIENT_PORT}"

    @memoized
    def _text(self) -> str:
        scope = f"%{self.scope_id}" if self.scope_id else ""
        return f"[{self.host}{scope}]:{self.port}"

    def __str__(self) -> str:
        return self._text


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
        sock.bind(("::", port))
        # RFC 8415 7.1: clients send to All_DHCP_Relay_Agents_and_Servers on the link.
        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_JOIN_GROUP,
                        ALL_DHCP_RELAY_AGENTS_AND_SERVERS.packed + struct.pack("=I", index))
        sock.setblocking(False)
    except BaseException:
        sock.close()
        raise
    return sock


def interface_mac(sock: socket.socket, interface: str) -> bytes | None:
    """The interface's hardware address, asked through ``sock``'s network namespace.

    An ioctl, not /sys/class/net: /sys shows the mount namespace's view, which
    in a namespace thread is not the network namespace the socket lives in.
    """
    try:
        info = fcntl.ioctl(sock.fileno(), SIOCGIFHWADDR,
                           struct.pack("256s", interface.encode()[:15]))
    except OSError:
        return None
    mac = info[18:24]
    return mac if any(mac) else None


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


def client_mac(msg: Dhcp6Message, peer: Peer) -> str:
    """The client's MAC: from a DUID-LL/LLT, else its EUI-64 link-local address, else ""."""
    duid = msg.client_duid
    if duid is not None and duid.mac:
        return duid.mac
    return codec.mac_from_link_local(peer.address) or ""


def client_info(msg: Dhcp6Message, peer: Peer, settings: Dhcp6Settings,
                address: IPv6Address | None = None) -> ClientInfo:
    """Boil a request down to what a policy decides on."""
    arch = msg.get(ClientArch)
    vendor = msg.get(VendorClass)
    users = msg.get(UserClass)
    elapsed = msg.get(ElapsedTime)
    duid = msg.client_duid
    return ClientInfo(
        mac=client_mac(msg, peer),
        protocol="dhcp6",
        message_type=msg.msg_type.name,
        arch=arch.types[0] if arch and arch.types else None,
        vendor_class=vendor.data[0].decode("latin-1") if vendor and vendor.data else None,
        user_classes=tuple(u.decode("latin-1") for u in users.classes) if users else (),
        client_id=duid.raw if duid else None,
        uuid=duid.uuid if duid else None,
        secs=elapsed.hundredths // 100 if elapsed else 0,
        requested_options=msg.requested,
        server_address=settings.server_text,
        client_address=str(address) if address else "",
    )


def boot_url(decision: BootDecision, client: ClientInfo) -> str | None:
    """The decision's boot file as a URL (RFC 5970 3.1); a bare name becomes tftp://."""
    file = decision.boot_file
    if file is None or "://" in file:
        return file
    return f"tftp://{client.url_host}/{file.lstrip('/')}"


def vendor_echo(decision: BootDecision) -> VendorClass | None:
    """Option 16 to send, if the decision echoes a class other than PXEClient (see module doc)."""
    vendor = decision.vendor_class
    if not vendor or vendor.startswith("PXEClient"):
        return None
    return VendorClass(ENTERPRISE_PXE, (vendor.encode("latin-1"),))


def build_reply(request: Dhcp6Message, msg_type: MessageType, ours: Duid,
                settings: Dhcp6Settings, *, ias: tuple[IaNa, ...] = (),
                status: StatusCode | None = None, decision: BootDecision | None = None,
                client: ClientInfo | None = None, rapid_commit: bool = False) -> Dhcp6Message:
    """The Advertise or Reply to ``request`` (pure: RFC 8415 18.3 plus the boot decision)."""
    options: list[Option] = []
    if (client_id := request.get(ClientId)) is not None:
        options.append(client_id)
    options.append(ServerId(ours))
    options.extend(ias)
    if status is not None:
        options.append(status)
    if msg_type is MessageType.ADVERTISE and settings.preference is not None:
        options.append(Preference(settings.preference))
    if rapid_commit:
        options.append(RapidCommit())
    requested = request.requested
    if settings.dns and OptionCode.DNS_SERVERS in requested:
        options.append(DnsServers(settings.dns))
    if decision is not None and client is not None:
        url = boot_url(decision, client)
        if url and OptionCode.BOOTFILE_URL in requested:
            options.append(BootFileUrl(url))
        if (echo := vendor_echo(decision)) is not None:
            options.append(echo)
    return Dhcp6Message(msg_type, request.xid, tuple(options))


def edit_options(reply: Dhcp6Message, edits: ReplyEdits) -> Dhcp6Message:
    """``reply`` without the top-level options ``edits`` omits, with those it adds.

    An added option takes the place of one with its code (or goes last). Its
    bytes are sent as given, parsed when the codec knows the layout (so events
    show an added option 16 as the echo) and kept raw when they do not fit it:
    a fault may put in what the codec would never build. Options inside an
    IA_NA are not touched.
    """
    added = {code: _added_option(code, value) for code, value in edits.add
             if code not in edits.omit}
    options: list[Option] = []
    for opt in reply.options:
        if opt.code in edits.omit:
            continue
        options.append(added.pop(opt.code, opt))
    options += added.values()
    return replace(reply, options=tuple(options))


def _added_option(code: int, value: bytes) -> Option:
    kind = codec.OPTIONS.get(code)
    if kind is not None:
        try:
            return kind.parse(value, 0)
        except Dhcp6DecodeError:
            pass
    return UnknownOption(code, value)


def status_name(code: int) -> str:
    try:
        return Status(code).name
    except ValueError:
        return str(code)


def assigned_ia(iaid: int, binding: Binding, settings: Dhcp6Settings,
                extra: tuple[IaAddress, ...] = ()) -> IaNa:
    """IA_NA with the bound address, lifetimes and T1/T2, and no Status Code.

    No status means Success (RFC 8415 21.13). A Success status inside the IA_NA
    breaks Debian's OVMF 2022.11-6+deb12u1 and later: its CVE-2023-45229 patch
    (edk2 1dbb10cc52) made Dhcp6UpdateIaInfo read the status option's *length*
    as the code, so it rejects the Advertise and never sends a Request (edk2
    1c440a5ece fixed that upstream; Debian did not take it).
    """
    address = IaAddress(binding.address, settings.preferred, settings.valid_seconds)
    return IaNa(iaid, settings.t1, settings.t2, (address, *extra))


def failed_ia(iaid: int, status: Status, message: str,
              extra: tuple[IaAddress, ...] = ()) -> IaNa:
    return IaNa(iaid, 0, 0, (*extra, StatusCode(status, message)))


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
            self._drop(who, problem, **self._details(msg, peer, client))
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
            self.events.emit("dhcp6", "error", client=client.mac, reason=repr(exc),
                             details={"traceback": traceback.format_exc()})

    # -- one method per message type -------------------------------------------------------------

    def on_solicit(self, msg: Dhcp6Message, peer: Peer, client: ClientInfo) -> None:
        self._received("solicit", msg, peer, client)
        client = self._with_candidate(msg, client)
        decision = self._decide(msg, peer, client)
        if decision is None:
            return
        rapid = msg.has(OptionCode.RAPID_COMMIT) and self.settings.rapid_commit
        ias = self._assign(msg, client, commit=rapid)
        reply_type = MessageType.REPLY if rapid else MessageType.ADVERTISE
        reply = build_reply(msg, reply_type, self.duid, self.settings, ias=ias,
                            decision=decision, client=client, rapid_commit=rapid)
        why = decision.reason + (" (rapid commit)" if rapid else "")
        self._send(msg, reply, peer, client, why)

    def on_request(self, msg: Dhcp6Message, peer: Peer, client: ClientInfo) -> None:
        self._received("request", msg, peer, client)
        client = self._with_candidate(msg, client)
        decision = self._decide(msg, peer, client)
        if decision is None:
            return
        ias = self._assign(msg, client, commit=True)
        reply = build_reply(msg, MessageType.REPLY, self.duid, self.settings, ias=ias,
                            decision=decision, client=client)
        self._send(msg, reply, peer, client, decision.reason)

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
        duid = self._duid(msg)
        unknown: list[IaNa] = []
        released: list[str] = []
        for ia in msg.all(IaNa):
            missing = [a for a in ia.addresses
                       if not self.leases.release(duid, ia.iaid, a.address)]
            released += [str(a.address) for a in ia.addresses if a not in missing]
            if missing or not ia.addresses:
                unknown.append(failed_ia(ia.iaid, Status.NO_BINDING, "no such binding"))
        # RFC 8415 18.3.7: Success at the top whatever happened; NoBinding per unknown IA.
        reply = build_reply(msg, MessageType.REPLY, self.duid, self.settings,
                            ias=tuple(unknown), status=StatusCode(Status.SUCCESS, "released"))
        reason = (f"released {', '.join(released)}" if released else "nothing to release")
        self._send(msg, reply, peer, client, reason, released=released)

    def on_decline(self, msg: Dhcp6Message, peer: Peer, client: ClientInfo) -> None:
        self._received("decline", msg, peer, client)
        duid = self._duid(msg)
        unknown: list[IaNa] = []
        declined: list[str] = []
        for ia in msg.all(IaNa):
            held = [a for a in ia.addresses if self.leases.decline(duid, ia.iaid, a.address)]
            declined += [str(a.address) for a in held]
            if len(held) < len(ia.addresses) or not ia.addresses:
                unknown.append(failed_ia(ia.iaid, Status.NO_BINDING, "no such binding"))
        reply = build_reply(msg, MessageType.REPLY, self.duid, self.settings,
                            ias=tuple(unknown), status=StatusCode(Status.SUCCESS, "declined"))
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

    def _with_candidate(self, msg: Dhcp6Message, client: ClientInfo) -> ClientInfo:
        """``client`` with the address its first IA would get, for {ip} in boot templates."""
        ia = msg.get(IaNa)
        if ia is None:
            return client
        address = self.leases.candidate(self._duid(msg), ia.iaid, client.mac or None,
                                        [a.address for a in ia.addresses])
        return replace(client, client_address=_text(address)) if address else client

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
        client = replace(client, client_address=next(
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
            "boot_url": url.url if url else None,
            "vendor_class_echo": echo.data[0].decode("latin-1") if echo and echo.data
            else None,
            "status": status_name(status.status) if status else None,
            "rapid_commit": reply.has(OptionCode.RAPID_COMMIT),
            "in_reply_to": request.msg_type.label,
            "destination": peer.reply_to,
            "delayed": verdict.delay or None,
        } | extra
        self.events.emit("dhcp6", kind, client=client.mac or peer.host,
                         request=self._summary(request, peer, client), answer=answer,
                         reason=reason, details=details)
        log.debug("%s -> %s: %s (%s)", client.mac, peer, answer, reason)

    def _transmit(self, data: bytes, peer: Peer) -> None:
        if self.transport is None or self.transport.is_closing():
            return  # a delayed reply outlived the server
        self.transport.sendto(data, peer.destination)

    def _received(self, kind: str, msg: Dhcp6Message, peer: Peer, client: ClientInfo) -> None:
        self.events.emit("dhcp6", kind, client=client.mac or peer.host,
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

    def _drop(self, client: str, reason: str, **details: Any) -> None:
        self.events.emit("dhcp6", "drop", client=client, reason=reason, details=details)


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
        "mac": client.mac or None,
        "arch": client.arch,
        "vendor_class": client.vendor_class,
        "vendor_enterprise": vendor.enterprise if vendor else None,
        "user_classes": list(client.user_classes),
        "duid": duid.hex() if duid else None,
        "duid_type": duid.describe() if duid else None,
        "iaid": ias[0].iaid if ias else None,
        "iaids": [ia.iaid for ia in ias],
        "boot_url": None,
        "xid": msg.xid,
        "message_type": msg.msg_type.label,
        "requested_options": list(msg.requested),
        "rapid_commit_asked": msg.has(OptionCode.RAPID_COMMIT),
        "elapsed_seconds": client.secs,
        "peer": str(peer),
    }
