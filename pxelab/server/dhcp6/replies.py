"""DHCPv6 replies as pure functions: request + boot decision -> Advertise or Reply.

RFC 8415 section 18.3 says what a server's Advertise and Reply carry; which boot
URL goes in is the :class:`~pxelab.server.policy.BootPolicy`'s decision. What
real firmware needs of them (EDK2 NetworkPkg Dhcp6Dxe, UefiPxeBcDxe/PxeBcDhcp6.c,
HttpBootDxe/HttpBootDhcp6.c; iPXE src/net/udp/dhcpv6.c):

- IA_NA echoing the client's IAID, with an IAADDR (valid >= preferred, or
  EDK2 drops the address), no Status Code (see :func:`assigned_ia`); T1 <= T2.
- Option 59 as a URL; for UEFI HTTP an option 16 whose data starts
  ``HTTPClient`` (else no Request follows). Never ``PXEClient``: EDK2 then
  takes the offer as a BINL one and asks a boot server on port 4011.
- Rapid Commit only when the client asked for it (EDK2 rejects a Reply
  carrying it otherwise); a Preference of 255 so EDK2 requests at once
  instead of collecting Advertises for its first retransmission time.

Reply faults edit a built reply with :func:`edit_options`, so a fault changes
exactly the options it names. The protocol that receives the requests and
sends these replies is :mod:`pxelab.server.dhcp6.server`.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from ipaddress import IPv6Address, IPv6Network
from typing import Any

from pxelab.core.memo import memoized
from pxelab.server.dhcp6 import codec
from pxelab.server.dhcp6.codec import (
    CLIENT_PORT,
    ENTERPRISE_PXE,
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
    ServerId,
    Status,
    StatusCode,
    UnknownOption,
    UserClass,
    VendorClass,
)
from pxelab.server.dhcp6.leases import Binding
from pxelab.server.faults import ReplyEdits
from pxelab.server.match import boot_url
from pxelab.server.policy import BootDecision, ClientInfo

__all__ = [
    "Dhcp6Settings",
    "Peer",
    "assigned_ia",
    "build_reply",
    "client_info",
    "client_mac",
    "edit_options",
    "failed_ia",
    "status_name",
    "vendor_echo",
]


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
        url = boot_url(decision.boot_file, client)
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
