"""Who a boot client is and which clients a rule or fault applies to.

A protocol server turns a request into a :class:`ClientInfo`; a :class:`Match`
says whether a client is one a policy rule (:mod:`pxelab.server.policy`) or a
fault (:mod:`pxelab.server.faults`) is meant for. Both of those import this
module, and neither imports the other for it.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum
from functools import lru_cache

from pxelab.core.errors import ConfigError
from pxelab.core.mac import parse_mac

__all__ = ["Arch", "ClientInfo", "Match", "arch_label", "boot_url", "normalize_mac", "url_host"]


class Arch(IntEnum):
    """Client system architecture (RFC 4578 2.1, IANA "Processor Architecture Types")."""

    BIOS = 0
    EFI_IA32 = 6
    EFI_X64 = 7  # IANA says "EFI BC"; EDK2 and every x64 PXE ROM send 7
    EFI_X64_ALT = 9  # "EFI x86-64" in RFC 4578; seen from a few old ROMs
    EFI_ARM32 = 10
    EFI_ARM64 = 11
    EFI_IA32_HTTP = 15
    EFI_X64_HTTP = 16
    EFI_ARM64_HTTP = 19

    def is_uefi(self) -> bool:
        return self is not Arch.BIOS

    def is_http(self) -> bool:
        return self in (Arch.EFI_IA32_HTTP, Arch.EFI_X64_HTTP, Arch.EFI_ARM64_HTTP)


_ARCH_LABELS = {
    Arch.BIOS: "BIOS", Arch.EFI_IA32: "UEFI ia32", Arch.EFI_X64: "UEFI x64",
    Arch.EFI_X64_ALT: "UEFI x64", Arch.EFI_ARM32: "UEFI arm32", Arch.EFI_ARM64: "UEFI arm64",
    Arch.EFI_IA32_HTTP: "UEFI ia32 HTTP", Arch.EFI_X64_HTTP: "UEFI x64 HTTP",
    Arch.EFI_ARM64_HTTP: "UEFI arm64 HTTP",
}


@lru_cache(maxsize=128)  # every decision and every event summary names the arch
def arch_label(arch: int | None) -> str:
    """``"arch 0 (BIOS)"``, ``"arch 16 (UEFI x64 HTTP)"``, ``"no arch"``."""
    if arch is None:
        return "no arch (option 93 absent)"
    try:
        return f"arch {arch} ({_ARCH_LABELS[Arch(arch)]})"
    except ValueError:
        return f"arch {arch}"


def normalize_mac(mac: str) -> str:
    """Lower-case, colon-separated; raise ConfigError for anything else."""
    text = parse_mac(mac)
    if text is None:
        raise ConfigError(f"MAC address {mac!r} is not six hex pairs like 52:54:00:12:34:56")
    return text


@dataclass(frozen=True)
class ClientInfo:
    """What a boot client told us about itself, protocol details stripped."""

    mac: str
    protocol: str = "dhcp4"
    message_type: str = ""
    arch: int | None = None
    vendor_class: str | None = None
    user_classes: tuple[str, ...] = ()
    client_id: bytes | None = None
    uuid: bytes | None = None
    secs: int = 0
    requested_options: tuple[int, ...] = ()
    ipxe_options: bool = False  # DHCP option 175 present: an iPXE build
    server_address: str = ""  # the address of ours the request reached, for URL templates
    client_address: str = ""  # the address the client has or is offered, if known

    @property
    def family(self) -> str:
        """``"ipv6"`` for DHCPv6 clients, ``"ipv4"`` otherwise."""
        return "ipv6" if self.protocol == "dhcp6" else "ipv4"

    @property
    def url_host(self) -> str:
        """Our address as a URL host: ``192.0.2.1`` or ``[2001:db8::1]``."""
        return url_host(self.server_address)

    @property
    def is_ipxe(self) -> bool:
        return "iPXE" in self.user_classes

    @property
    def is_http_client(self) -> bool:
        return bool(self.vendor_class and self.vendor_class.startswith("HTTPClient")) or (
            self.arch is not None and self.arch in (15, 16, 19))

    def summary(self) -> str:
        parts = [self.message_type or self.protocol, arch_label(self.arch)]
        if self.vendor_class:
            parts.append(f"vendor-class={self.vendor_class}")
        if self.user_classes:
            parts.append(f"user-class={','.join(self.user_classes)}")
        if self.secs:
            parts.append(f"secs={self.secs}")
        return " ".join(parts)


@dataclass(frozen=True)
class Match:
    """Which clients a :class:`Rule` applies to; every given condition must hold.

    ``arch``: any of these option 93/61 values; ``vendor_class``: a prefix of
    option 60/16 (``PXEClient``, ``HTTPClient``); ``user_class``: one of the
    option 77/15 strings (``iPXE``); ``mac``; ``family``: ``ipv4`` or ``ipv6``.
    An empty Match matches every client.
    """

    arch: tuple[int, ...] = ()
    vendor_class: str | None = None
    user_class: str | None = None
    mac: str | None = None
    family: str | None = None

    def __post_init__(self) -> None:
        if self.mac is not None:
            object.__setattr__(self, "mac", normalize_mac(self.mac))
        if self.family not in (None, "ipv4", "ipv6"):
            raise ConfigError(f"match family={self.family!r}: use 'ipv4' or 'ipv6'")

    def matches(self, client: ClientInfo) -> bool:
        if self.arch and (client.arch if client.arch is not None else 0) not in self.arch:
            return False
        if self.vendor_class is not None and not (
                client.vendor_class or "").startswith(self.vendor_class):
            return False
        if self.user_class is not None and self.user_class not in client.user_classes:
            return False
        if self.mac is not None and client.mac != self.mac:
            return False
        return self.family is None or client.family == self.family

    def describe(self) -> str:
        parts = [f"arch in {list(self.arch)}"] if self.arch else []
        parts += [f"{name}={value}" for name, value in (
            ("vendor-class", self.vendor_class), ("user-class", self.user_class),
            ("mac", self.mac), ("family", self.family)) if value is not None]
        return " ".join(parts) or "every client"


def url_host(address: str) -> str:
    """An IP address as the host of a URL: ``192.0.2.1`` or ``[2001:db8::1]`` (RFC 3986 3.2.2)."""
    return f"[{address}]" if ":" in address else address


def boot_url(file: str | None, client: ClientInfo) -> str | None:
    """``file`` as a boot file URL (RFC 5970 3.1): a bare name becomes tftp:// on the
    server address ``client`` reached; a URL (or None) stays as it is."""
    if file is None or "://" in file:
        return file
    return f"tftp://{client.url_host}/{file.lstrip('/')}"
