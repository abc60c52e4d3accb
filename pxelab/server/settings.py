"""Each protocol's part of the boot server's configuration, as a person sets it.

:class:`~pxelab.server.bootserver.ServerConfig` holds one of these per protocol, so a
setting is named once (``config.tftp.max_blksize``, not ``config.tftp_max_blksize``)
and its default is the protocol's own: the fields the protocol server also takes
default to the value of its settings class (:class:`TftpSettings`, :class:`RaSettings`,
...). What only the running server knows (the interface, its addresses, the shared
lease time) is added by :meth:`settings`, which builds the protocol's settings.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from ipaddress import IPv4Address, IPv4Interface, IPv6Address, IPv6Interface, IPv6Network

from pxelab.core.errors import ConfigError
from pxelab.server.dhcp4.replies import Dhcp4Settings
from pxelab.server.dhcp6.replies import Dhcp6Settings
from pxelab.server.http.server import HttpSettings
from pxelab.server.ra.server import RaSettings
from pxelab.server.tftp.server import TftpSettings

__all__ = ["DEFAULT_POOL", "DEFAULT_POOL6", "Dhcp4Config", "Dhcp4Mode", "Dhcp6Config",
           "HttpConfig", "RaConfig", "TftpConfig"]

DEFAULT_POOL = (IPv4Address("192.0.2.100"), IPv4Address("192.0.2.199"))
DEFAULT_POOL6 = (IPv6Address("2001:db8::1:0"), IPv6Address("2001:db8::1:ffff"))


class Dhcp4Mode(StrEnum):
    """How the DHCPv4 side behaves on the link."""

    FULL = "full"  # addresses and boot files (port 67)
    PROXY = "proxy"  # boot files only, beside another DHCP server (ports 67 and 4011)
    OFF = "off"


@dataclass(frozen=True)
class Dhcp4Config:
    """DHCPv4: addresses from ``pool`` (full mode), boot files (full and proxy mode)."""

    mode: Dhcp4Mode = Dhcp4Mode.FULL
    pool: tuple[IPv4Address, IPv4Address] = DEFAULT_POOL
    router: IPv4Address | None = Dhcp4Settings.router  # option 3; None: we are no gateway
    dns: tuple[IPv4Address, ...] = Dhcp4Settings.dns  # option 6

    @property
    def enabled(self) -> bool:
        return self.mode is not Dhcp4Mode.OFF

    def settings(self, ipv4: IPv4Interface, lease_seconds: int) -> Dhcp4Settings:
        return Dhcp4Settings(ipv4.ip, ipv4.network, lease_seconds, self.router, self.dns)


@dataclass(frozen=True)
class Dhcp6Config:
    """DHCPv6 (needs the server's IPv6 address); the valid lifetime is the lease time."""

    enabled: bool = True
    pool: tuple[IPv6Address, IPv6Address] = DEFAULT_POOL6
    dns: tuple[IPv6Address, ...] = Dhcp6Settings.dns  # option 23; also the RA's RDNSS
    # Honour Rapid Commit (RFC 8415 18.3.1) when asked.
    rapid_commit: bool = Dhcp6Settings.rapid_commit
    preferred_seconds: int = Dhcp6Settings.preferred_seconds  # IA address preferred lifetime

    def settings(self, ipv6: IPv6Interface, lease_seconds: int) -> Dhcp6Settings:
        return Dhcp6Settings(ipv6.ip, ipv6.network, lease_seconds, self.preferred_seconds,
                             self.dns, self.rapid_commit)


@dataclass(frozen=True)
class TftpConfig:
    enabled: bool = True
    port: int = 69
    max_blksize: int = TftpSettings.max_blksize
    max_windowsize: int = TftpSettings.max_windowsize
    timeout: float = TftpSettings.timeout
    retries: int = TftpSettings.retries
    allow_absolute: bool = False  # True: "/x" means <data_root>/x (tftpd-hpa -s; GRUB)

    def __post_init__(self) -> None:
        if not 512 <= self.max_blksize <= 65464:
            raise ConfigError(f"tftp max_blksize={self.max_blksize} is outside 512..65464")
        if not 1 <= self.max_windowsize <= 65535:
            raise ConfigError(f"tftp max_windowsize={self.max_windowsize} is outside "
                              "1..65535")

    def settings(self, interface: str) -> TftpSettings:
        return TftpSettings(interface=interface, max_blksize=self.max_blksize,
                            max_windowsize=self.max_windowsize, timeout=self.timeout,
                            retries=self.retries)


@dataclass(frozen=True)
class HttpConfig:
    enabled: bool = True
    port: int = 80
    idle_timeout: float = HttpSettings.idle_timeout  # close a keep-alive connection idle this long

    def settings(self) -> HttpSettings:
        return HttpSettings(idle_timeout=self.idle_timeout)


@dataclass(frozen=True)
class RaConfig:
    """Router advertisements for the server's IPv6 prefix (see pxelab.server.ra.server)."""

    enabled: bool = True
    managed: bool = RaSettings.managed  # M flag: iPXE then runs stateful DHCPv6 and waits
    other: bool = RaSettings.other  # O flag: iPXE then runs stateless DHCPv6 and waits
    interval: float = RaSettings.interval
    # > 0 makes us a default router, which OVMF HTTPv6 boot needs to skip a 10 s
    # route-table wait.
    router_lifetime: int = RaSettings.router_lifetime
    # Least gap between multicast RAs; a solicitation from :: (OVMF's, after HTTP boot sets
    # its address) is answered only at the next slot.
    min_interval: float = RaSettings.min_interval
    # Retrans Timer in ms (0: unspecified, hosts keep 1000). OVMF waits this long after its
    # DAD solicitation for an address it got by DHCPv6 before it uses it.
    retrans_timer: int = RaSettings.retrans_timer

    def settings(self, interface: str, prefix: IPv6Network,
                 dns: tuple[IPv6Address, ...]) -> RaSettings:
        return RaSettings(interface, prefix, self.managed, self.other, self.interval, dns=dns,
                          router_lifetime=self.router_lifetime,
                          min_interval=self.min_interval, retrans_timer=self.retrans_timer)
