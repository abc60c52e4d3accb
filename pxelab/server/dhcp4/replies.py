"""DHCPv4 replies as pure functions: request + boot decision -> reply message.

The fields follow RFC 2131 section 4.3.1 table 3 (what a server puts in an
OFFER, ACK and NAK), BOOTP replies RFC 951 and RFC 1542, proxyDHCP offers and
PXE boot server ACKs the PXE specification 2.1 (tables 2-2 and 2-3) as dnsmasq
and pixiecore implement them. Which options go in follows what the firmware
reads (see shared/notes/firmware-facts.md):

- UEFI PXE in full DHCP mode gets no option 60: ``PXEClient`` there would make
  the offer a PXE10/BINL offer and send the client to port 4011.
- UEFI HTTP boot needs option 60 ``HTTPClient`` and the URL in option 67.
- Lease-related options (3, 6, 66) are sent when the client asks for them in
  option 55, or to clients without option 55 (BOOTP, old ROMs).
- Policy ``extra_options`` (PXELINUX 209/210, ...) are always sent: the PXE ROM
  that asks for the address never lists them, PXELINUX reads them if present.
- Options 61 (RFC 6842), 82 (RFC 3046 2.2) and, for PXE clients, 97 (PXE 2.1
  table 2-2, "Client UUID/GUID") are echoed.

Reply faults (:class:`~pxelab.server.faults.OmitOption`, :class:`~pxelab.server.faults.AddOption`)
edit a built reply with :func:`apply_edits`, so a fault changes exactly the options
it names and the reply is otherwise what the policy decided.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from functools import lru_cache
from ipaddress import IPv4Address, IPv4Network

from pxelab.core.frozen import assemble
from pxelab.core.memo import memoized
from pxelab.server.dhcp4 import codec, pxe
from pxelab.server.dhcp4.codec import DhcpMessage, MessageType, Op, option
from pxelab.server.faults import ReplyEdits
from pxelab.server.policy import BootDecision, ClientInfo

__all__ = [
    "CLIENT_PORT",
    "SERVER_PORT",
    "Dhcp4Settings",
    "apply_edits",
    "build_bootp_reply",
    "build_proxy_reply",
    "build_reply",
    "client_info",
    "encode_to_fit",
    "fit_to_size",
    "is_pxe_client",
    "max_reply_size",
    "reply_destination",
]

SERVER_PORT, CLIENT_PORT = 67, 68
BROADCAST = IPv4Address("255.255.255.255")
_BROADCAST_TEXT = str(BROADCAST)
_ZERO = codec.ZERO_ADDRESS  # the decoder's own 0.0.0.0, which codec.is_unset tells by identity
# iPXE option 175 carrying sub-option 176 (no-pxedhcp) = 1: skip the 2 s proxyDHCP wait.
_IPXE_NO_PXEDHCP = bytes((176, 1, 1))
# RFC 2131 section 2: a client accepts 576-byte IP datagrams; 28 of them are IP and UDP
# headers. Option 57 is read the same way (dnsmasq subtracts 28 too) to stay on the safe side.
_MIN_DATAGRAM, _IP_UDP = 576, 28
# Options a reply keeps however little room the client gives (RFC 2131 table 3 musts,
# what PXE and HTTP boot firmware reads, the echoes RFC 6842 and RFC 3046 require).
_ESSENTIAL = frozenset({53, 54, 51, 58, 59, 1, 56, 60, 43, 67, 97, 61, 82})
_TYPE_OPTIONS = {mtype: option(53, mtype) for mtype in MessageType}


@dataclass(frozen=True)
class Dhcp4Settings:
    """What the DHCPv4 protocol needs to know about the lab."""

    server: IPv4Address
    network: IPv4Network
    lease_seconds: int = 3600
    router: IPv4Address | None = None
    dns: tuple[IPv4Address, ...] = ()

    # The options every reply carries the same way, encoded once.

    @memoized
    def server_text(self) -> str:
        return str(self.server)

    @memoized
    def server_option(self) -> tuple[int, bytes]:
        return option(54, self.server)

    @memoized
    def lease_options(self) -> tuple[tuple[int, bytes], ...]:
        seconds = self.lease_seconds
        return option(51, seconds), option(58, seconds // 2), option(59, seconds * 7 // 8)

    @memoized
    def netmask_option(self) -> tuple[int, bytes]:
        return option(1, self.network.netmask)

    @memoized
    def router_option(self) -> tuple[int, bytes] | None:
        return option(3, [self.router]) if self.router is not None else None

    @memoized
    def dns_option(self) -> tuple[int, bytes] | None:
        return option(6, self.dns) if self.dns else None


def is_pxe_client(client: ClientInfo) -> bool:
    """Option 60 starts ``PXEClient`` (PXE 2.1 section 2.2.1)."""
    return (client.vendor_class or "").startswith("PXEClient")


def client_info(msg: DhcpMessage, server: IPv4Address | str,
                address: IPv4Address | None = None) -> ClientInfo:
    """Boil a request down to what a policy decides on; ``address``: the client's, if known."""
    arch = msg.get(93)
    params = msg.get(55)
    user_class = msg.raw(77)
    mtype = msg.message_type
    return assemble(  # ClientInfo(...), built the cheaper way: one per request
        ClientInfo,
        mac=msg.mac,
        protocol="dhcp4",
        message_type=codec.MESSAGE_TYPE_NAMES[mtype] if mtype else "BOOTP",
        arch=arch[0] if isinstance(arch, tuple) and arch else None,
        vendor_class=msg.text(60),
        user_classes=codec.user_classes(user_class) if user_class else (),
        client_id=msg.raw(61),
        uuid=msg.raw(97),
        secs=msg.secs,
        requested_options=params if isinstance(params, tuple) else (),
        ipxe_options=msg.raw(175) is not None,
        server_address=server if isinstance(server, str) else str(server),
        client_address=codec.address_text(address) if address is not None else "",
    )


def _wants(client: ClientInfo | None, code: int) -> bool:
    """Send ``code``: the client asked for it, or asked for nothing in particular."""
    return client is None or not client.requested_options or code in client.requested_options


def _merge(options: list[tuple[int, bytes]],
           extra: tuple[tuple[int, bytes], ...]) -> list[tuple[int, bytes]]:
    """``options`` with ``extra`` added; an extra option replaces ours of the same code."""
    if not extra:
        return options
    codes = {code for code, _ in extra}
    return [pair for pair in options if pair[0] not in codes] + list(extra)


def _echoes(request: DhcpMessage, client: ClientInfo | None,
            *, uuid: bool) -> list[tuple[int, bytes]]:
    echoes: list[tuple[int, bytes]] = []
    uuid_value = request.raw(97)
    if uuid and uuid_value is not None and client is not None and (
            is_pxe_client(client) and len(uuid_value) == 17):
        echoes.append((97, uuid_value))
    client_id = request.raw(61)
    if client_id is not None:
        echoes.append((61, client_id))
    return echoes


def _relay(request: DhcpMessage) -> list[tuple[int, bytes]]:
    agent = request.raw(82)
    return [(82, agent)] if agent is not None else []


def _boot(decision: BootDecision, client: ClientInfo | None,
          settings: Dhcp4Settings) -> tuple[IPv4Address, str, list[tuple[int, bytes]]]:
    """siaddr, the ``file`` field and options 66/67 for ``decision``'s boot file."""
    next_server = decision.next_server
    siaddr = next_server or settings.server
    options: list[tuple[int, bytes]] = []
    file = ""
    if decision.boot_file:
        if "://" not in decision.boot_file and _wants(client, 66):
            options.append(_text_option(
                66, str(next_server) if next_server else settings.server_text))
        options.append(_text_option(67, decision.boot_file))
        # The legacy BOOTP field too: PXE ROMs read it; long URLs go in option 67 only.
        if len(decision.boot_file.encode("latin-1")) < 128:
            file = decision.boot_file
    return siaddr, file, options


@lru_cache(maxsize=256)
def _text_option(code: int, text: str) -> tuple[int, bytes]:
    """A string option, encoded once: a lab hands out a few boot file names to every client."""
    return option(code, text)


def _lease_options(settings: Dhcp4Settings, client: ClientInfo | None,
                   *, lease: bool) -> list[tuple[int, bytes]]:
    options = list(settings.lease_options) if lease else []
    options.append(settings.netmask_option)
    if settings.router_option is not None and _wants(client, 3):
        options.append(settings.router_option)
    if settings.dns_option is not None and _wants(client, 6):
        options.append(settings.dns_option)
    return options


def build_reply(request: DhcpMessage, mtype: MessageType, settings: Dhcp4Settings, *,
                yiaddr: IPv4Address = _ZERO, decision: BootDecision | None = None,
                client: ClientInfo | None = None, message: str = "") -> DhcpMessage:
    """The full-DHCP OFFER, ACK (``yiaddr`` 0: the answer to an INFORM) or NAK for ``request``.

    ``message`` goes in option 56 of a NAK (RFC 2131 table 3: SHOULD).
    """
    options = [_TYPE_OPTIONS[mtype], settings.server_option]
    if mtype is MessageType.NAK:
        if message:
            options.append(option(56, message[:255]))
        options += _echoes(request, client, uuid=False) + _relay(request)
        return DhcpMessage(op=Op.BOOTREPLY, xid=request.xid, chaddr=request.chaddr,
                           htype=request.htype, flags=request.flags, giaddr=request.giaddr,
                           options=tuple(options))
    # RFC 2131 4.3.5: no lease time in the answer to an INFORM.
    options += _lease_options(settings, client, lease=not codec.is_unset(yiaddr))
    siaddr, file = _ZERO, ""
    if decision is not None:
        if decision.vendor_class:
            options.append(_text_option(60, decision.vendor_class))
        siaddr, file, boot = _boot(decision, client, settings)
        options += boot
        if decision.no_proxy_wait and client is not None and (
                client.ipxe_options or client.is_ipxe):
            options.append(option(175, _IPXE_NO_PXEDHCP))
    options += _echoes(request, client, uuid=True)
    if decision is not None:
        options = _merge(options, decision.extra_options)
    return assemble(  # DhcpMessage(...): one per answer, so built the cheaper way
        DhcpMessage, op=Op.BOOTREPLY, xid=request.xid, chaddr=request.chaddr,
        htype=request.htype, hops=0, secs=0, flags=request.flags, yiaddr=yiaddr,
        siaddr=siaddr, giaddr=request.giaddr, sname="", file=file,
        options=tuple(options + _relay(request)),
        ciaddr=request.ciaddr if mtype is MessageType.ACK else _ZERO)


def build_bootp_reply(request: DhcpMessage, settings: Dhcp4Settings, yiaddr: IPv4Address,
                      decision: BootDecision, client: ClientInfo | None = None) -> DhcpMessage:
    """A BOOTREPLY (RFC 951) with RFC 1497 vendor extensions: no 53, no lease times."""
    options = _lease_options(settings, client, lease=False)
    siaddr, file, boot = _boot(decision, client, settings)
    options = _merge(options + boot, decision.extra_options)
    return DhcpMessage(
        op=Op.BOOTREPLY, xid=request.xid, chaddr=request.chaddr, htype=request.htype,
        flags=request.flags, yiaddr=yiaddr, siaddr=siaddr, giaddr=request.giaddr,
        file=file, options=tuple(options + _relay(request)))


def build_proxy_reply(request: DhcpMessage, mtype: MessageType, settings: Dhcp4Settings,
                      decision: BootDecision, client: ClientInfo) -> DhcpMessage:
    """A proxyDHCP OFFER (port 67) or PXE boot server ACK (port 4011): boot file, no address.

    yiaddr stays 0.0.0.0, which is what makes EDK2 and iPXE take it as a proxy
    offer. PXE clients get option 60 ``PXEClient`` and option 43 with discovery
    control 8 (boot the offered file, no menu, no boot server discovery);
    an option 43 among the decision's ``extra_options`` replaces ours. UEFI HTTP
    clients get ``HTTPClient`` and the URL (EDK2 HttpBootDhcp4.c: a proxy
    offer with an IP-expressed URI). No lease options (PXE 2.1 table 2-2).
    """
    http = not is_pxe_client(client)
    vendor = decision.vendor_class or ("HTTPClient" if http else "PXEClient")
    options = [_TYPE_OPTIONS[mtype], settings.server_option, option(60, vendor)]
    if not http:
        item = _boot_item(request)
        options.append(option(43, pxe.encode_pxe(
            pxe.PxeOptions(discovery_control=pxe.DiscoveryControl.USE_BOOT_FILE,
                           boot_item=item))))
    siaddr, file, boot = _boot(decision, client, settings)
    options += boot + _echoes(request, client, uuid=True)
    options = _merge(options, decision.extra_options)
    discover = mtype is MessageType.OFFER
    return DhcpMessage(
        op=Op.BOOTREPLY, xid=request.xid, chaddr=request.chaddr, htype=request.htype,
        # dnsmasq sets the broadcast bit on proxy offers: the client has no address yet.
        flags=request.flags | (codec.BROADCAST_FLAG if discover else 0),
        ciaddr=_ZERO if discover else request.ciaddr, siaddr=siaddr, giaddr=request.giaddr,
        file=file, options=tuple(options + _relay(request)))


def _boot_item(request: DhcpMessage) -> pxe.BootItem | None:
    """The PXE_BOOT_ITEM (43.71) a boot server request asked for, echoed in the ACK."""
    raw = request.raw(43)
    if raw is None or not (request.text(60) or "").startswith("PXEClient"):
        return None
    try:
        return pxe.decode_pxe(raw).boot_item
    except codec.DhcpDecodeError:
        return None


def apply_edits(reply: DhcpMessage, edits: ReplyEdits) -> DhcpMessage:
    """``reply`` without the options ``edits`` omits, with the ones it adds (at the end).

    An added option replaces one of the same code (the last addition of a code
    wins); adding wins over omitting the same code.
    """
    if not edits:
        return reply
    added = dict(edits.add)
    kept = [pair for pair in reply.options if pair[0] not in edits.omit and pair[0] not in added]
    return replace(reply, options=tuple(kept + list(added.items())))


def max_reply_size(request: DhcpMessage) -> int:
    """The largest reply ``request``'s sender takes: option 57, at least 576, minus IP+UDP."""
    value = request.get(57)
    size = value if isinstance(value, int) and value >= _MIN_DATAGRAM else _MIN_DATAGRAM
    return size - _IP_UDP


def fit_to_size(reply: DhcpMessage, limit: int,
                requested: tuple[int, ...] = ()) -> tuple[DhcpMessage, tuple[int, ...]]:
    """``reply`` trimmed to ``limit`` bytes, and the option codes left out to get there.

    Unrequested options go first, then requested non-essential ones (last
    added first), then option 67 when the ``file`` field carries the same name.
    """
    fitted, dropped, _ = encode_to_fit(reply, limit, requested)
    return fitted, dropped


def encode_to_fit(reply: DhcpMessage, limit: int, requested: tuple[int, ...] = ()
                  ) -> tuple[DhcpMessage, tuple[int, ...], bytes]:
    """:func:`fit_to_size`, and the fitted reply's bytes: each reply is encoded once."""
    data = codec.encode(reply)
    if len(data) <= limit:
        return reply, (), data
    codes = [code for code, _ in reply.options]
    order = [c for c in reversed(codes) if c not in _ESSENTIAL and c not in requested]
    order += [c for c in reversed(codes) if c not in _ESSENTIAL and c in requested]
    if reply.file and reply.text(67) == reply.file:
        order.append(67)
    dropped: list[int] = []
    for code in order:
        reply = replace(reply, options=tuple(p for p in reply.options if p[0] != code))
        dropped.append(code)
        data = codec.encode(reply)
        if len(data) <= limit:
            break
    return reply, tuple(dropped), data


def reply_destination(request: DhcpMessage, reply: DhcpMessage) -> tuple[str, int]:
    """Where a reply goes (RFC 2131 4.1), minus unicast-to-yiaddr.

    Unicasting to an address the client does not have yet needs an ARP entry
    we cannot add from a UDP socket; broadcasting is what every PXE ROM,
    iPXE, udhcpc and dhclient accept.
    """
    if not codec.is_unset(request.giaddr):
        return str(request.giaddr), SERVER_PORT
    if reply.message_type is not MessageType.NAK and not codec.is_unset(request.ciaddr):
        return str(request.ciaddr), CLIENT_PORT
    return _BROADCAST_TEXT, CLIENT_PORT
