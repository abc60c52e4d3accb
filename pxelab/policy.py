"""Per-client boot decisions, kept apart from the protocol code.

The DHCP server turns a request into a :class:`ClientInfo`, asks a
:class:`BootPolicy` what to answer and carries out the :class:`BootDecision`
it gets back. Tests and scenarios swap the policy, never the protocol (the
aiosmtpd handler pattern). :class:`BootPolicy` is an ABC so that hooks added
later (proxyDHCP, DHCPv6, TFTP faults, minimum ``secs``) come with defaults
and existing policies keep working.
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from dataclasses import dataclass, field, replace
from enum import IntEnum
from ipaddress import IPv4Address

from pxelab.errors import ConfigError

__all__ = [
    "Arch",
    "ArchRule",
    "BootDecision",
    "BootPolicy",
    "ClientInfo",
    "HostRule",
    "RulePolicy",
    "arch_label",
    "normalize_mac",
]


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


def arch_label(arch: int | None) -> str:
    """``"arch 0 (BIOS)"``, ``"arch 16 (UEFI x64 HTTP)"``, ``"no arch"``."""
    if arch is None:
        return "no arch (option 93 absent)"
    try:
        return f"arch {arch} ({_ARCH_LABELS[Arch(arch)]})"
    except ValueError:
        return f"arch {arch}"


_MAC = re.compile(r"^[0-9a-f]{2}(:[0-9a-f]{2}){5}$")


def normalize_mac(mac: str) -> str:
    """Lower-case, colon-separated; raise ConfigError for anything else."""
    text = mac.strip().lower().replace("-", ":")
    if not _MAC.match(text):
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
class BootDecision:
    """What to answer one client, and why.

    ``boot_file`` is a TFTP file name or a URL (None: an address without a boot
    file); ``next_server`` None means this server; ``vendor_class`` is echoed in
    option 60 (UEFI HTTP boot ignores offers without ``HTTPClient``);
    ``no_proxy_wait`` sends iPXE option 175.176 so it does not wait 2 s for
    proxyDHCP offers (ipxe/ipxe src/net/udp/dhcp.c, dhcp_discovery_rx).
    """

    boot_file: str | None = None
    next_server: IPv4Address | None = None
    vendor_class: str | None = None
    withhold: bool = False
    no_proxy_wait: bool = True
    reason: str = ""

    @classmethod
    def withheld(cls, reason: str) -> BootDecision:
        return cls(withhold=True, reason=reason)


class BootPolicy(ABC):
    """Decides, per client, what the boot server answers."""

    @abstractmethod
    def decide_dhcp4(self, client: ClientInfo) -> BootDecision:
        """Answer for a DHCPv4 DISCOVER or REQUEST from ``client``."""


@dataclass(frozen=True)
class ArchRule:
    """Boot file for one architecture; ``{server}``, ``{mac}``, ``{arch}`` are filled in."""

    arch: int
    boot_file: str


@dataclass(frozen=True)
class HostRule:
    """Per-MAC override: another boot file, or no answer at all."""

    mac: str
    boot_file: str | None = None
    withhold: bool = False
    reason: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "mac", normalize_mac(self.mac))


DEFAULT_ARCH_RULES: tuple[ArchRule, ...] = (
    ArchRule(Arch.BIOS, "pxelinux.0"),
    ArchRule(Arch.EFI_IA32, "bootia32.efi"),
    ArchRule(Arch.EFI_X64, "bootx64.efi"),
    ArchRule(Arch.EFI_X64_ALT, "bootx64.efi"),
    ArchRule(Arch.EFI_ARM64, "bootaa64.efi"),
    ArchRule(Arch.EFI_X64_HTTP, "http://{server}/bootx64.efi"),
    ArchRule(Arch.EFI_ARM64_HTTP, "http://{server}/bootaa64.efi"),
)


@dataclass(frozen=True)
class RulePolicy(BootPolicy):
    """Declarative policy: per-MAC rules, then the iPXE script, then per-arch files.

    ``ipxe_script`` (a file name or URL) is what clients with user class "iPXE"
    get; None gives them the normal per-arch answer (the SeaBIOS iPXE ROM *is*
    the PXE firmware and should get pxelinux.0). ``default_file`` serves
    clients whose arch has no rule (None: address only).
    """

    arch_rules: tuple[ArchRule, ...] = DEFAULT_ARCH_RULES
    ipxe_script: str | None = None
    hosts: tuple[HostRule, ...] = ()
    default_file: str | None = None
    next_server: IPv4Address | None = None
    no_proxy_wait: bool = True
    _by_arch: dict[int, str] = field(init=False, repr=False, compare=False)
    _by_mac: dict[str, HostRule] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_by_arch", {r.arch: r.boot_file for r in self.arch_rules})
        object.__setattr__(self, "_by_mac", {h.mac: h for h in self.hosts})

    def with_hosts(self, *hosts: HostRule) -> RulePolicy:
        return replace(self, hosts=self.hosts + hosts)

    def decide_dhcp4(self, client: ClientInfo) -> BootDecision:
        host = self._by_mac.get(client.mac)
        if host is not None and host.withhold:
            return BootDecision.withheld(host.reason or f"host rule for {client.mac}: withhold")
        if host is not None and host.boot_file is not None:
            return self._answer(client, host.boot_file,
                                host.reason or f"host rule for {client.mac}")
        if client.is_ipxe and self.ipxe_script is not None:
            return self._answer(client, self.ipxe_script, "user class iPXE -> iPXE script")
        label = arch_label(client.arch)
        arch = Arch.BIOS if client.arch is None else client.arch
        template = self._by_arch.get(arch)
        if template is not None:
            origin = f"{label}, assumed BIOS" if client.arch is None else label
            return self._answer(client, template, origin)
        if self.default_file is not None:
            return self._answer(client, self.default_file, f"{label} has no rule: default")
        return replace(self._answer(client, None, ""), reason=f"{label} has no rule: address only")

    def _answer(self, client: ClientInfo, template: str | None, why: str) -> BootDecision:
        boot_file = None if template is None else template.format(
            server=client.server_address, mac=client.mac,
            arch=client.arch if client.arch is not None else 0)
        http = client.is_http_client
        reason = f"{why} -> {boot_file}" if boot_file is not None else why
        return BootDecision(
            boot_file=boot_file, next_server=self.next_server,
            vendor_class="HTTPClient" if http else None,
            no_proxy_wait=self.no_proxy_wait, reason=reason)
