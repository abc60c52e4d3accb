"""The declarative lab configuration: one TOML file -> ServerConfig + RulePolicy.

A complete file can be as short as::

    [server]
    interface = "eth0"
    data_root = "/srv/tftp"

Addresses not given are read from the interface (its first global IPv4 and
IPv6 address); the DHCPv4 pool defaults to the upper half of the subnet, the
DHCPv6 pool to ``<prefix>::1:0-<prefix>::1:ffff`` as in the classic dhcpd6.conf.
Without an IPv6 address DHCPv6 and RA stay off. The policy defaults to the
classic ISC dhcpd decision tree (:func:`pxelab.server.policy.default_profile`).

The sections and their keys are :data:`pxelab.server.config_keys.LAB_TABLES` (listed
in ``fixtures/labs/README.md``).

Every mistake is a :class:`~pxelab.core.errors.ConfigError` naming the file, the key
path (``dhcp4.pool[1]``) and the fix; see :mod:`pxelab.server.config_reader`.
"""

from __future__ import annotations

import socket
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Interface, IPv6Address, IPv6Interface, ip_interface
from pathlib import Path
from typing import Any, Literal

from pxelab.core.errors import ConfigError
from pxelab.server.bootserver import ServerConfig
from pxelab.server.config_keys import ARRAYS, LAB_TABLES
from pxelab.server.config_policy import build_faults, build_policy
from pxelab.server.config_reader import Origin, Table, did_you_mean, toml_type
from pxelab.server.faults import Fault
from pxelab.server.match import url_host
from pxelab.server.policy import RulePolicy
from pxelab.server.settings import (
    Dhcp4Config,
    Dhcp4Mode,
    Dhcp6Config,
    HttpConfig,
    RaConfig,
    TftpConfig,
)

__all__ = ["InterfaceAddresses", "LabConfig", "interface_addresses", "lab_config",
           "load_lab_config"]

InterfaceAddresses = tuple[IPv4Interface | None, IPv6Interface | None]
Resolver = Callable[[str], InterfaceAddresses]

SECTIONS: dict[str, tuple[str, ...]] = {t.name: t.names for t in LAB_TABLES if not t.array}
IFA_F_DADFAILED = 0x08
RT_SCOPE_UNIVERSE = 0


@dataclass(frozen=True)
class LabConfig:
    """A lab file, parsed once: what the server serves and how it decides."""

    server: ServerConfig
    policy: RulePolicy
    source: str = "(defaults)"
    profile: str = "default"
    faults: tuple[Fault, ...] = ()  # handed to the BootServer beside the policy

    def describe(self) -> list[str]:
        """What is served where, one line per service, for a person starting the server."""
        cfg, policy = self.server, self.policy
        lines = [f"interface {cfg.interface}: IPv4 {cfg.ipv4}, "
                 f"IPv6 {cfg.ipv6 or 'none (DHCPv6 and RA off)'}",
                 f"data root {cfg.data_root} (TFTP and HTTP)"]
        dhcp4, dhcp6, ra = cfg.dhcp4, cfg.dhcp6, cfg.ra
        if dhcp4.mode is Dhcp4Mode.OFF:
            lines.append("DHCPv4 off")
        elif dhcp4.mode is Dhcp4Mode.PROXY:
            lines.append("DHCPv4 proxy: boot files only, beside another DHCP server "
                         "(ports 67 and 4011)")
        else:
            extra = "".join(f", {name} {value}" for name, value in (
                ("router", dhcp4.router), ("dns", ",".join(map(str, dhcp4.dns)))) if value)
            lines.append(f"DHCPv4 full: pool {dhcp4.pool[0]}-{dhcp4.pool[1]}, lease "
                         f"{cfg.lease_seconds}s{extra}")
        if dhcp6.enabled and cfg.ipv6 is not None:
            lines.append(f"DHCPv6: pool {dhcp6.pool[0]}-{dhcp6.pool[1]}, preferred "
                         f"{dhcp6.preferred_seconds}s, rapid commit "
                         f"{'on' if dhcp6.rapid_commit else 'off'}")
        else:
            lines.append("DHCPv6 off")
        if ra.enabled and cfg.ipv6 is not None:
            lines.append(f"RA for {cfg.ipv6.network} every {ra.interval:g}s "
                         f"(M={int(ra.managed)} O={int(ra.other)})")
        else:
            lines.append("router advertisements off")
        hosts = [url_host(str(ip)) for ip in (cfg.ipv4.ip, cfg.ipv6.ip if cfg.ipv6 else None) if ip]
        if cfg.tftp.enabled:
            lines.append(f"TFTP on port {cfg.tftp.port}: " + ", ".join(
                f"tftp://{h}/" for h in hosts))
        if cfg.http.enabled:
            port = "" if cfg.http.port == 80 else f":{cfg.http.port}"
            lines.append(f"HTTP on port {cfg.http.port}: " + ", ".join(
                f"http://{h}{port}/" for h in hosts))
        lines.append(f"policy: profile {self.profile}, {_count(policy.rules, 'rule')}, "
                     f"{_count(policy.hosts, 'host')}, {_count(self.faults, 'fault')}"
                     + (f", min_secs {policy.min_secs}" if policy.min_secs else ""))
        lines += [f"fault: {fault.describe()}" for fault in self.faults]
        return lines


def _count(items: tuple[object, ...], noun: str) -> str:
    return f"{len(items)} {noun}{'' if len(items) == 1 else 's'}"


def interface_addresses(interface: str) -> InterfaceAddresses:
    """The first global IPv4 and IPv6 address of ``interface`` in the current namespace."""
    from pyroute2 import IPRoute  # noqa: PLC0415 - netlink only when addresses are missing
    from pyroute2.netlink.exceptions import NetlinkError  # noqa: PLC0415

    try:
        with IPRoute() as ipr:
            index = ipr.link_lookup(ifname=interface)
            if not index:
                raise ConfigError(f"there is no interface {interface!r} in this network "
                                  "namespace; check `ip link`")
            found: list[IPv4Interface | IPv6Interface | None] = []
            for family in (socket.AF_INET, socket.AF_INET6):
                found.append(next((
                    ip_interface(f"{msg.get('IFA_ADDRESS')}/{msg['prefixlen']}")
                    for msg in ipr.get_addr(index=index[0], family=family)
                    if msg['scope'] == RT_SCOPE_UNIVERSE
                    and not (msg.get('IFA_FLAGS') or msg['flags']) & IFA_F_DADFAILED), None))
    except (OSError, NetlinkError) as exc:
        raise ConfigError(f"cannot read the addresses of {interface!r}: {exc}") from None
    v4, v6 = found
    return (v4 if isinstance(v4, IPv4Interface) else None,
            v6 if isinstance(v6, IPv6Interface) else None)


def load_lab_config(path: Path | str, *, interface: str | None = None,
                    data_root: Path | None = None,
                    resolve: Resolver = interface_addresses) -> LabConfig:
    """Read and check a lab file; ``interface`` and ``data_root`` override the file's."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the lab file ({exc.strerror}); "
                          "check the path given to --config") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not UTF-8 text; save the lab file as UTF-8") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML ({exc}); fix the syntax there "
                          "(strings need quotes, tables are [name])") from None
    return lab_config(data, Origin(str(path), path.resolve().parent), interface=interface,
                      data_root=data_root, resolve=resolve)


def lab_config(data: Mapping[str, Any], origin: Origin | None = None, *,
               interface: str | None = None, data_root: Path | None = None,
               resolve: Resolver = interface_addresses) -> LabConfig:
    """Build a LabConfig from parsed TOML (``{}`` is valid given interface and data_root)."""
    origin = origin or Origin("(command line)", Path.cwd())
    tables, arrays = _split(origin, data)
    server = _server(origin, tables, interface, data_root, resolve)
    min_secs = tables["dhcp4"].integer("min_secs", 0, 65535) or 0
    policy, profile = build_policy(origin, tables["policy"], subnet=server.ipv4, min_secs=min_secs,
                                   rules=arrays["rule"], hosts=arrays["host"])
    return LabConfig(server, policy, origin.name, profile,
                     faults=build_faults(origin, arrays["fault"]))


def _split(origin: Origin, data: Mapping[str, Any]) -> tuple[
        dict[str, Table], dict[str, list[Mapping[str, Any]]]]:
    """Check the top level: known sections as tables, rules/hosts/faults as arrays of tables."""
    for key, value in data.items():
        if key in SECTIONS and not isinstance(value, dict):
            origin.fail(key, f"expected a table, got {toml_type(value)}",
                        f"write a [{key}] section header (one pair of brackets)")
        if key in ARRAYS and not (isinstance(value, list)
                                  and all(isinstance(v, dict) for v in value)):
            origin.fail(key, f"expected an array of tables, got {toml_type(value)}",
                        f"write [[{key}]] (two pairs of brackets) before each {key}")
        if key not in SECTIONS and key not in ARRAYS:
            owner = next((s for s, keys in SECTIONS.items() if key in keys), None)
            fix = (f"put it under [{owner}]" if owner else
                   did_you_mean(key, [*SECTIONS, *ARRAYS], "the sections are"))
            origin.fail(key, "unknown section or key", fix)
    tables = {name: Table(origin, name, data.get(name, {}), keys)
              for name, keys in SECTIONS.items()}
    return tables, {name: list(data.get(name, [])) for name in ARRAYS}


# -- [server] and the addresses -------------------------------------------------------------

def _server(origin: Origin, tables: dict[str, Table], interface: str | None,
            data_root: Path | None, resolve: Resolver) -> ServerConfig:
    server = tables["server"]
    name = interface or server.text("interface", 'interface = "eth0"')
    if not name:
        server.fail("interface", "missing", 'set interface = "eth0" in [server] '
                    "or pass --interface")
    if len(name) > 15 or "/" in name or any(c.isspace() for c in name):
        server.fail("interface", f"{name!r} is not an interface name",
                    "use the name `ip link` shows, like eth0 or br0")
    root = data_root
    if root is None:
        text = server.text("data_root", 'data_root = "/srv/tftp"')
        if text is None:
            server.fail("data_root", "missing", 'set data_root = "/srv/tftp" in [server] '
                        "or pass --data-root")
        root = origin.base / Path(text).expanduser()
    ipv4, ipv6 = _addresses(server, name, resolve)
    kwargs: dict[str, Any] = {"interface": name, "ipv4": ipv4, "ipv6": ipv6,
                              "data_root": root}
    dhcp4 = _dhcp4(tables["dhcp4"], ipv4)
    lease = dhcp4.pop("lease_seconds", ServerConfig.lease_seconds)  # DHCPv6's valid lifetime too
    try:
        return ServerConfig(
            **kwargs, lease_seconds=lease, dhcp4=Dhcp4Config(**dhcp4),
            dhcp6=Dhcp6Config(**_dhcp6(tables["dhcp6"], ipv6, lease)),
            ra=RaConfig(**_ra(tables["ra"], ipv6)), tftp=TftpConfig(**_tftp(tables["tftp"])),
            http=HttpConfig(**_http(tables["http"])))
    except ConfigError as exc:  # a check of ServerConfig's own that ours missed
        origin.fail("server", str(exc), "fix the value named above")


def _addresses(server: Table, interface: str,
               resolve: Resolver) -> tuple[IPv4Interface, IPv6Interface | None]:
    ipv4 = _interface4(server)
    ipv6 = _interface6(server)
    if ipv4 is not None and ipv6 is not None:
        return ipv4, ipv6 or None
    try:
        found4, found6 = resolve(interface)
    except ConfigError as exc:
        server.fail("ipv4" if ipv4 is None else "ipv6", f"not set, and {exc}",
                    "give the address in [server] or create the interface first")
    if ipv4 is None:
        if found4 is None:
            server.fail("ipv4", f"not set, and {interface} has no global IPv4 address",
                        f'set ipv4 = "192.0.2.1/24" or run `ip addr add ... dev {interface}`')
        ipv4 = found4
    return ipv4, found6 if ipv6 is None else ipv6 or None


def _interface4(server: Table) -> IPv4Interface | None:
    text = server.text("ipv4", 'ipv4 = "192.0.2.1/24"')
    if text is None:
        return None
    value = _cidr(server, "ipv4", text, 4)
    assert isinstance(value, IPv4Interface)
    if value.network.prefixlen < 31 and value.ip in (value.network.network_address,
                                                     value.network.broadcast_address):
        server.fail("ipv4", f"{value.ip} is the network or broadcast address of "
                    f"{value.network}", "give the server's own address, like 192.0.2.1/24")
    return value


def _interface6(server: Table) -> IPv6Interface | Literal[False] | None:
    """The [server] ipv6 address; False when the file says ``ipv6 = false``."""
    value = server.data.get("ipv6")
    if value is None or value is False:
        return None if value is None else False
    if not isinstance(value, str):
        server.wrong_type("ipv6", "an address with prefix length, or false",
                          'ipv6 = "2001:db8::1/64" (or ipv6 = false)')
    address = _cidr(server, "ipv6", value, 6)
    assert isinstance(address, IPv6Interface)
    if address.ip.is_link_local or address.ip.is_multicast:
        server.fail("ipv6", f"{address.ip} is not a global unicast address",
                    "DHCPv6 boot URLs need a global (or ULA) address like 2001:db8::1/64")
    return address


def _cidr(table: Table, key: str, text: str, version: int) -> IPv4Interface | IPv6Interface:
    example = "192.0.2.1/24" if version == 4 else "2001:db8::1/64"
    try:
        value = ip_interface(text.strip())
    except ValueError:
        table.fail(key, f"{text!r} is not an IPv{version} address with prefix length",
                   f'write it like "{example}"')
    if value.version != version:
        table.fail(key, f"{text!r} is IPv{value.version}", f'write it like "{example}"')
    if "/" not in text:
        table.fail(key, f"{text!r} has no prefix length",
                   f"add the subnet's length, like \"{text.strip()}/"
                   f"{24 if version == 4 else 64}\"")
    return value


# -- [dhcp4] [dhcp6] [ra] [tftp] [http] -------------------------------------------------------

def _dhcp4(table: Table, ipv4: IPv4Interface) -> dict[str, Any]:
    mode = Dhcp4Mode(table.choice("mode", [m.value for m in Dhcp4Mode]) or Dhcp4Mode.FULL)
    kwargs: dict[str, Any] = {"mode": mode}
    if mode is not Dhcp4Mode.FULL:
        for key in ("pool", "router", "dns"):
            if table.has(key):
                table.fail(key, f"a DHCPv4 server in mode {mode.value!r} hands out no "
                           "addresses or network settings",
                           f'remove {key}, or set mode = "full"')
    pool = _pool4(table, ipv4)
    kwargs["pool"] = pool
    if mode is Dhcp4Mode.FULL and _pool_size(pool, ipv4.ip) == 0:
        where = "pool" if table.has("pool") else "mode"
        table.fail(where, f"no address to lease in {pool[0]}-{pool[1]} besides the server's "
                   f"own", "give a pool with free addresses, a larger subnet, "
                   'or mode = "proxy"')
    lease = table.integer("lease_seconds", 60, 0xFFFFFFFE)
    if lease is not None:
        kwargs["lease_seconds"] = lease  # the server's, not DHCPv4's alone: taken out by _server
    router = table.text("router", 'router = "192.0.2.254"')
    if router is not None:
        kwargs["router"] = _on_link(table, table.at("router"), router, ipv4)
    dns = table.strings("dns", 'dns = ["192.0.2.1"]')
    if dns is not None:
        kwargs["dns"] = tuple(table.address4(where, text) for where, text in dns)
    return kwargs


def _pool4(table: Table, ipv4: IPv4Interface) -> tuple[IPv4Address, IPv4Address]:
    pair = table.strings("pool", 'pool = ["192.0.2.100", "192.0.2.199"]')
    if pair is None:
        return _default_pool4(ipv4)
    _two(table, pair, '["192.0.2.100", "192.0.2.199"]')
    first, last = (_on_link(table, where, text, ipv4) for where, text in pair)
    for (where, _), address in zip(pair, (first, last), strict=True):
        if address in (ipv4.network.network_address, ipv4.network.broadcast_address) and (
                ipv4.network.prefixlen < 31):
            table.origin.fail(where, f"{address} is the network or broadcast address of "
                              f"{ipv4.network}", "pick an address between them")
    if int(last) < int(first):
        table.origin.fail(pair[1][0], f"{last} comes before the pool's first address {first}",
                          f'swap them: pool = ["{last}", "{first}"]')
    return first, last


def _default_pool4(ipv4: IPv4Interface) -> tuple[IPv4Address, IPv4Address]:
    """The upper half of the subnet, without its broadcast address."""
    network = ipv4.network
    if network.num_addresses < 4:
        return ipv4.ip, ipv4.ip  # /31, /32: no room; only proxy or off can use this
    return network[network.num_addresses // 2], network[-2]


def _pool_size(pool: tuple[IPv4Address, IPv4Address], server: IPv4Address) -> int:
    size = int(pool[1]) - int(pool[0]) + 1
    return size - (1 if pool[0] <= server <= pool[1] else 0)


def _on_link(table: Table, where: str, text: str, ipv4: IPv4Interface) -> IPv4Address:
    address = table.address4(where, text)
    if address not in ipv4.network:
        first, last = ipv4.network[1], ipv4.network[-2]
        table.origin.fail(where, f"{address} is not inside {ipv4.network} (the server's "
                          f"subnet; the server is {ipv4})",
                          f"choose an address from {first} to {last}")
    return address


def _two(table: Table, pair: list[tuple[str, str]], example: str) -> None:
    if len(pair) != 2:
        table.fail("pool", f"gives {len(pair)} addresses, not 2", "give the first and the "
                   f"last, like pool = {example}")


def _dhcp6(table: Table, ipv6: IPv6Interface | None, lease: int) -> dict[str, Any]:
    enabled = table.flag("enabled")
    if ipv6 is None:
        if enabled:
            table.fail("enabled", "DHCPv6 needs an IPv6 address and there is none",
                       'set [server] ipv6 = "2001:db8::1/64" or enabled = false')
        _unused(table, "DHCPv6 is off (no IPv6 address)")
        return {"enabled": False}
    if enabled is False:
        _unused(table, "DHCPv6 is off (enabled = false)")
        return {"enabled": False}
    kwargs: dict[str, Any] = {"pool": _pool6(table, ipv6)}
    dns = table.strings("dns", 'dns = ["2001:db8::1"]')
    if dns is not None:
        kwargs["dns"] = tuple(table.address6(where, text) for where, text in dns)
    rapid = table.flag("rapid_commit")
    if rapid is not None:
        kwargs["rapid_commit"] = rapid
    preferred = table.integer("preferred_seconds", 1, 0xFFFFFFFE)
    if preferred is not None:
        if preferred > lease:
            table.fail("preferred_seconds", f"{preferred} is longer than the valid lifetime "
                       f"(dhcp4.lease_seconds = {lease}); RFC 8415 21.6 makes clients "
                       "discard such an address",
                       f"use at most {lease}, or raise [dhcp4] lease_seconds")
        kwargs["preferred_seconds"] = preferred
    return kwargs


def _unused(table: Table, why: str) -> None:
    for key in table.data:
        if key != "enabled":
            table.fail(key, f"has no effect: {why}", f"remove {key} or turn DHCPv6 on")


def _pool6(table: Table, ipv6: IPv6Interface) -> tuple[IPv6Address, IPv6Address]:
    network = ipv6.network
    pair = table.strings("pool", 'pool = ["2001:db8::1:0", "2001:db8::1:ffff"]')
    if pair is None:
        if network.prefixlen <= 111:  # as the classic dhcpd6.conf: <prefix>::1:0-::1:ffff
            return network[0x10000], network[0x1FFFF]
        if network.num_addresses < 4:
            return ipv6.ip, ipv6.ip
        return network[network.num_addresses // 2], network[-1]
    _two(table, pair, '["2001:db8::1:0", "2001:db8::1:ffff"]')
    first, last = (table.address6(where, text) for where, text in pair)
    for (where, _), address in zip(pair, (first, last), strict=True):
        if address not in network:
            table.origin.fail(where, f"{address} is not inside {network} (the server's "
                              f"prefix; the server is {ipv6})",
                              f"choose addresses from {network[1]} to {network[-1]}")
    if int(last) < int(first):
        table.origin.fail(pair[1][0], f"{last} comes before the pool's first address {first}",
                          f'swap them: pool = ["{last}", "{first}"]')
    return first, last


def _ra(table: Table, ipv6: IPv6Interface | None) -> dict[str, Any]:
    enabled = table.flag("enabled")
    if ipv6 is None:
        if enabled:
            table.fail("enabled", "router advertisements need an IPv6 prefix and there is none",
                       'set [server] ipv6 = "2001:db8::1/64" or enabled = false')
        return {"enabled": False}
    kwargs: dict[str, Any] = {"enabled": enabled is not False}
    for key in ("managed", "other"):
        value = table.flag(key)
        if value is not None:
            kwargs[key] = value
    interval = table.number("interval", 0.05, 1800)
    if interval is not None:
        kwargs["interval"] = interval
    # RFC 4861 6.2.1: router lifetime 0..9000 s; MIN_DELAY_BETWEEN_RAS is 3 s by default.
    lifetime = table.integer("router_lifetime", 0, 9000)
    if lifetime is not None:
        kwargs["router_lifetime"] = lifetime
    min_interval = table.number("min_interval", 0, 1800, zero_ok=True)
    if min_interval is not None:
        kwargs["min_interval"] = min_interval
    # RFC 4861 4.2: Retrans Timer in ms, 0 = unspecified. EDK2 waits this long per DAD
    # probe (bench/README.md); 100 shortens every UEFI IPv6 boot by most of a second.
    retrans = table.integer("retrans_timer", 0, 0xFFFFFFFF)
    if retrans is not None:
        kwargs["retrans_timer"] = retrans
    return kwargs


def _tftp(table: Table) -> dict[str, Any]:
    kwargs: dict[str, Any] = {}
    for key, value in (("enabled", table.flag("enabled")),
                       ("port", table.integer("port", 1, 65535)),
                       ("max_blksize", table.integer("max_blksize", 512, 65464)),
                       ("max_windowsize", table.integer("max_windowsize", 1, 65535)),
                       ("timeout", table.number("timeout", 0, 255)),
                       ("retries", table.integer("retries", 1, 100)),
                       ("allow_absolute", table.flag("allow_absolute"))):
        if value is not None:
            kwargs[key] = value
    return kwargs


def _http(table: Table) -> dict[str, Any]:
    kwargs: dict[str, Any] = {}
    enabled, port = table.flag("enabled"), table.integer("port", 1, 65535)
    if enabled is not None:
        kwargs["enabled"] = enabled
    if port is not None:
        kwargs["port"] = port
    return kwargs
