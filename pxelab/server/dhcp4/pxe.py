"""PXE vendor options: the sub-options inside DHCPv4 option 43 (pure, no sockets).

Layout from the PXE specification 2.1 (Intel, 1999), table 2-1 "PXE DHCP
options" and section 2.2.5; the same table is what EDK2 parses
(NetworkPkg/UefiPxeBcDxe/PxeBcDhcp4.c, PxeBcParseVendorOptions) and what
dnsmasq writes (src/rfc2131.c, pxe_opts). Option 43 only means this when
option 60 is ``PXEClient`` (RFC 2132 8.4: the vendor class decides).

The classic answer of dnsmasq and pixiecore is a single sub-option 6 with
bit 3 set: "the offer has a boot file; download it, no menu, no boot server
discovery". EDK2 then skips boot server discovery (PxeBcSelectBootPrompt
returns EFI_ABORTED when bit 3 is set and a boot file is present).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from enum import IntEnum, IntFlag
from ipaddress import IPv4Address

from pxelab.server.dhcp4.codec import DhcpDecodeError

__all__ = [
    "BootItem",
    "BootServers",
    "DiscoveryControl",
    "MenuItem",
    "MenuPrompt",
    "PxeOptions",
    "SubOption",
    "decode_pxe",
    "encode_pxe",
]


class SubOption(IntEnum):
    """Option 43 sub-option codes for ``PXEClient`` (PXE 2.1 table 2-1)."""

    MTFTP_IP = 1
    MTFTP_CPORT = 2
    MTFTP_SPORT = 3
    MTFTP_TMOUT = 4
    MTFTP_DELAY = 5
    DISCOVERY_CONTROL = 6
    DISCOVERY_MCAST_ADDR = 7
    BOOT_SERVERS = 8
    BOOT_MENU = 9
    MENU_PROMPT = 10
    MCAST_ADDRS_ALLOC = 11
    CREDENTIAL_TYPES = 12
    BOOT_ITEM = 71


class DiscoveryControl(IntFlag):
    """Sub-option 6 bits (PXE 2.1 table 2-1, PXE_DISCOVERY_CONTROL)."""

    NO_BROADCAST = 1  # bit 0: do not broadcast boot server discovery
    NO_MULTICAST = 2  # bit 1: do not multicast it
    SERVER_LIST_ONLY = 4  # bit 2: only use/accept servers in BOOT_SERVERS
    USE_BOOT_FILE = 8  # bit 3: boot file present -> download it, no prompt/menu/discovery


@dataclass(frozen=True)
class BootServers:
    """One entry of sub-option 8: a boot server type and its addresses."""

    type: int
    addresses: tuple[IPv4Address, ...]


@dataclass(frozen=True)
class MenuItem:
    """One entry of sub-option 9: boot server type and what the menu shows."""

    type: int
    description: str


@dataclass(frozen=True)
class MenuPrompt:
    """Sub-option 10: seconds to wait (0: take the first item, 255: wait forever), text."""

    timeout: int
    prompt: str


@dataclass(frozen=True)
class BootItem:
    """Sub-option 71: the boot server type and layer a discovery request asks for."""

    type: int
    layer: int


@dataclass(frozen=True)
class PxeOptions:
    """Option 43 for ``PXEClient``: the sub-options pxelab reads and writes.

    Unknown sub-options (MTFTP 1-5, 7, 11, 12, vendor ones) stay raw in ``other``.
    """

    discovery_control: DiscoveryControl | None = None
    boot_servers: tuple[BootServers, ...] = ()
    menu: tuple[MenuItem, ...] = ()
    prompt: MenuPrompt | None = None
    boot_item: BootItem | None = None
    other: tuple[tuple[int, bytes], ...] = ()

    @classmethod
    def use_boot_file(cls) -> PxeOptions:
        """dnsmasq's and pixiecore's answer: no discovery, boot the offered file."""
        return cls(discovery_control=DiscoveryControl.USE_BOOT_FILE)


_PAD, _END = 0, 255


def _walk(raw: bytes) -> list[tuple[int, bytes]]:
    pairs: list[tuple[int, bytes]] = []
    i = 0
    while i < len(raw):
        code = raw[i]
        if code == _PAD:
            i += 1
            continue
        if code == _END:
            break
        if i + 1 >= len(raw) or i + 2 + raw[i + 1] > len(raw):
            raise DhcpDecodeError(f"option 43: sub-option {code} at offset {i} overruns "
                                  f"the {len(raw)}-byte option")
        pairs.append((code, raw[i + 2:i + 2 + raw[i + 1]]))
        i += 2 + raw[i + 1]
    return pairs


def _boot_servers(value: bytes) -> tuple[BootServers, ...]:
    entries: list[BootServers] = []
    i = 0
    while i < len(value):
        if i + 3 > len(value):
            raise DhcpDecodeError("option 43.8: truncated boot server entry")
        kind, count = int.from_bytes(value[i:i + 2], "big"), value[i + 2]
        end = i + 3 + 4 * count
        if end > len(value):
            raise DhcpDecodeError(f"option 43.8: type {kind} lists {count} addresses, "
                                  f"{(len(value) - i - 3) // 4} present")
        entries.append(BootServers(kind, tuple(
            IPv4Address(value[j:j + 4]) for j in range(i + 3, end, 4))))
        i = end
    return tuple(entries)


def _menu(value: bytes) -> tuple[MenuItem, ...]:
    items: list[MenuItem] = []
    i = 0
    while i < len(value):
        if i + 3 > len(value) or i + 3 + value[i + 2] > len(value):
            raise DhcpDecodeError("option 43.9: truncated boot menu entry")
        size = value[i + 2]
        items.append(MenuItem(int.from_bytes(value[i:i + 2], "big"),
                              value[i + 3:i + 3 + size].decode("latin-1")))
        i += 3 + size
    return tuple(items)


def _fixed(code: int, value: bytes, size: int) -> bytes:
    if len(value) != size:
        raise DhcpDecodeError(f"option 43.{code}: expected {size} bytes, got {len(value)}")
    return value


def decode_pxe(raw: bytes) -> PxeOptions:
    """Parse option 43 as PXE sub-options; raise DhcpDecodeError if malformed."""
    result = PxeOptions()
    other: list[tuple[int, bytes]] = []
    for code, value in _walk(raw):
        if code == SubOption.DISCOVERY_CONTROL:
            control = DiscoveryControl(_fixed(code, value, 1)[0] & 0x0F)
            result = replace(result, discovery_control=control)
        elif code == SubOption.BOOT_SERVERS:
            result = replace(result, boot_servers=_boot_servers(value))
        elif code == SubOption.BOOT_MENU:
            result = replace(result, menu=_menu(value))
        elif code == SubOption.MENU_PROMPT:
            if not value:
                raise DhcpDecodeError("option 43.10: empty menu prompt (needs a timeout byte)")
            result = replace(result, prompt=MenuPrompt(value[0], value[1:].decode("latin-1")))
        elif code == SubOption.BOOT_ITEM:
            item = _fixed(code, value, 4)
            result = replace(result, boot_item=BootItem(int.from_bytes(item[:2], "big"),
                                                        int.from_bytes(item[2:], "big")))
        else:
            other.append((code, value))
    return replace(result, other=tuple(other))


def _sub(code: int, value: bytes) -> bytes:
    if len(value) > 255:
        raise ValueError(f"option 43.{code} is {len(value)} bytes; a sub-option holds 255")
    return bytes((code, len(value))) + value


def encode_pxe(options: PxeOptions) -> bytes:
    """Option 43 bytes for ``options``, ending in PXE_END (255) as the spec's examples do."""
    out = bytearray()
    if options.discovery_control is not None:
        out += _sub(SubOption.DISCOVERY_CONTROL, bytes((int(options.discovery_control),)))
    if options.boot_servers:
        out += _sub(SubOption.BOOT_SERVERS, b"".join(
            entry.type.to_bytes(2, "big") + bytes((len(entry.addresses),))
            + b"".join(address.packed for address in entry.addresses)
            for entry in options.boot_servers))
    if options.menu:
        items = [(item.type, item.description.encode("latin-1")) for item in options.menu]
        out += _sub(SubOption.BOOT_MENU, b"".join(
            kind.to_bytes(2, "big") + bytes((len(text),)) + text for kind, text in items))
    if options.prompt is not None:
        out += _sub(SubOption.MENU_PROMPT, bytes((options.prompt.timeout,))
                    + options.prompt.prompt.encode("latin-1"))
    if options.boot_item is not None:
        out += _sub(SubOption.BOOT_ITEM, options.boot_item.type.to_bytes(2, "big")
                    + options.boot_item.layer.to_bytes(2, "big"))
    for code, value in options.other:
        out += _sub(code, value)
    out.append(_END)
    return bytes(out)
