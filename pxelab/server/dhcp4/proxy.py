"""proxyDHCP: boot files beside another DHCP server that hands out the addresses.

Two endpoints, as in PXE 2.1 section 2.2.3 and dnsmasq's ``dhcp-range=...,proxy``:

- UDP 67: a PXE client's DISCOVER gets a proxy OFFER (yiaddr 0.0.0.0, option 60
  ``PXEClient``, option 43 discovery control 8, siaddr and boot file). UEFI
  HTTP clients get one with ``HTTPClient`` and the URL (EDK2 HttpBootDhcp4.c
  accepts such "proxy URI" offers). Everything else on this port (REQUESTs to
  the real DHCP server, non-PXE clients) is someone else's business.
- UDP 4011, the PXE boot service: a client that got a proxy offer without PXE
  options (iPXE, dhcp_proxy_tx) or a BINL-style one (EDK2,
  PxeBcRetryBinlOffer) unicasts a REQUEST here and wants an ACK with the boot
  file, from port 4011 back to where it came from (iPXE drops replies from
  any other port).

No address is ever handed out: the replies carry yiaddr 0.0.0.0.
"""

from __future__ import annotations

from ipaddress import IPv4Address

from pxelab.core.events import EventLog
from pxelab.server.dhcp4.codec import DhcpMessage, MessageType
from pxelab.server.dhcp4.replies import SERVER_PORT, Dhcp4Settings, build_proxy_reply, is_pxe_client
from pxelab.server.dhcp4.server import ETHERNET_LEN, BaseDhcp4Protocol, Handler
from pxelab.server.faults import FaultInjector
from pxelab.server.policy import BootDecision, BootPolicy, ClientInfo

__all__ = ["PXE_PORT", "ProxyDhcp4Protocol"]

PXE_PORT = 4011
# EDK2 may put the SMBIOS GUID in chaddr (hlen 16) of boot server requests (Mode->SendGUID).
_GUID_LEN = 16


class ProxyDhcp4Protocol(BaseDhcp4Protocol):
    """proxyDHCP on port 67 (offers) or the PXE boot service on port 4011 (ACKs)."""

    def __init__(self, settings: Dhcp4Settings, policy: BootPolicy, events: EventLog,
                 faults: FaultInjector | None = None, *, port: int = SERVER_PORT) -> None:
        if port not in (SERVER_PORT, PXE_PORT):
            raise ValueError(f"proxyDHCP listens on {SERVER_PORT} or {PXE_PORT}, not {port}")
        super().__init__(settings, policy, events, faults)
        self.port = port
        if port == PXE_PORT:
            self.hardware_lengths = (ETHERNET_LEN, _GUID_LEN)

    @property
    def role(self) -> str:
        return "proxyDHCP server" if self.port == SERVER_PORT else "PXE boot server"

    def handler_for(self, mtype: MessageType | None) -> Handler | None:
        if self.port == SERVER_PORT:
            return self.on_discover if mtype is MessageType.DISCOVER else self.on_other
        # dnsmasq answers INFORM on 4011 too: some ROMs send it once they have an address.
        if mtype in (MessageType.REQUEST, MessageType.INFORM):
            return self.on_boot_request
        return None

    def ours(self, msg: DhcpMessage, client: ClientInfo) -> bool:
        """Port 67: DISCOVERs of PXE and UEFI HTTP clients. Port 4011: PXE clients asking us."""
        if self.port == SERVER_PORT and msg.message_type is not MessageType.DISCOVER:
            reason = (f"proxy mode: {client.message_type} is for the DHCP server that hands "
                      "out addresses")
        elif self.port == SERVER_PORT and not _boots(client):
            reason = ("proxy mode answers PXE clients only (option 60 PXEClient or "
                      f"HTTPClient); this one sent {client.vendor_class or 'none'}")
        elif self.port == PXE_PORT and not is_pxe_client(client):
            reason = "PXE boot server: option 60 does not start PXEClient"
        elif self.port == PXE_PORT and msg.ipv4(54) not in (None, self.settings.server):
            reason = f"PXE boot server: {client.message_type} names server {msg.ipv4(54)}"
        else:
            return True
        self._ignore(client, reason)
        return False

    def on_discover(self, msg: DhcpMessage, addr: tuple[str, int], client: ClientInfo) -> None:
        """Port 67: a proxy OFFER with the boot file and no address."""
        decision = self._boot_file_decision(client, "proxy mode")
        if decision is None:
            return
        reply = build_proxy_reply(msg, MessageType.OFFER, self.settings, decision, client)
        self.send(msg, reply, client, decision, proxy=True)

    def on_other(self, msg: DhcpMessage, addr: tuple[str, int], client: ClientInfo) -> None:
        """Never called: :meth:`ours` turns these away before faults and handlers."""

    def on_boot_request(self, msg: DhcpMessage, addr: tuple[str, int],
                        client: ClientInfo) -> None:
        """Port 4011: the ACK with the boot file, unicast back to the request's source."""
        decision = self._boot_file_decision(client, "PXE boot server")
        if decision is None:
            return
        reply = build_proxy_reply(msg, MessageType.ACK, self.settings, decision, client)
        source = IPv4Address(addr[0])
        # The source is the client's own address; 0.0.0.0 (no address yet) cannot be
        # answered by unicast, so such a client gets the reply on the broadcast address.
        where = (str(source), addr[1]) if int(source) else ("255.255.255.255", addr[1])
        self.send(msg, reply, client, decision, destination=where, proxy=True)

    def _boot_file_decision(self, client: ClientInfo, role: str) -> BootDecision | None:
        """The policy's decision if it names a boot file: without one a proxy has nothing
        to say, so the client is withheld (``role`` says which of ours in the event)."""
        decision = self.decide(client)
        if decision is None:
            return None
        if not decision.boot_file:
            self._withheld(client, f"{role}: no boot file for this client "
                                   f"({decision.reason or 'policy gave none'})")
            return None
        return decision

    def _withheld(self, client: ClientInfo, reason: str) -> None:
        self.events.emit("dhcp4", "withheld", client=client.mac, request=client.summary(),
                         reason=reason, details=self._client_details(client))


def _boots(client: ClientInfo) -> bool:
    """A network boot client: option 60 ``PXEClient`` or ``HTTPClient``."""
    vendor = client.vendor_class or ""
    return vendor.startswith(("PXEClient", "HTTPClient"))
