"""What a lab file says about one third-party daemon: the checked ``[[daemon]]`` table.

Everything here is checked before anything starts, and every mistake is a
:class:`ConfigError` that starts with the caller's ``where`` (the lab file and
the entry), names the key and says the fix.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from pxelab.core.errors import ConfigError


class DaemonType(StrEnum):
    """The daemons pxelab can start in a lab, by the name a lab file gives them."""

    DNSMASQ = "dnsmasq"
    KEA_DHCP4 = "kea-dhcp4"
    KEA_DHCP6 = "kea-dhcp6"
    DHCPD = "dhcpd"
    DHCPD6 = "dhcpd6"
    RADVD = "radvd"
    TFTPD_HPA = "tftpd-hpa"
    NGINX = "nginx"

    def takes_config(self) -> bool:
        """Whether it is started from a configuration file (in.tftpd takes options only)."""
        return self is not DaemonType.TFTPD_HPA


class Role(StrEnum):
    """A service on the lab link that only one daemon can provide."""

    DHCP4 = "DHCPv4"
    DHCP6 = "DHCPv6"
    TFTP = "TFTP"
    HTTP = "HTTP"


_FIXED_ROLES: dict[DaemonType, frozenset[Role]] = {
    DaemonType.KEA_DHCP4: frozenset({Role.DHCP4}),
    DaemonType.DHCPD: frozenset({Role.DHCP4}),
    DaemonType.KEA_DHCP6: frozenset({Role.DHCP6}),
    DaemonType.DHCPD6: frozenset({Role.DHCP6}),
    DaemonType.TFTPD_HPA: frozenset({Role.TFTP}),
    DaemonType.NGINX: frozenset({Role.HTTP}),
    DaemonType.RADVD: frozenset(),
}


@dataclass(frozen=True)
class TftpdOptions:
    """in.tftpd's settings, as /etc/default/tftpd-hpa names them (each may be templated).

    ``directory`` is TFTP_DIRECTORY, ``address`` TFTP_ADDRESS (``[host]:port``),
    ``options`` TFTP_OPTIONS (split like a shell would).
    """

    directory: str = "{{ data_root }}"
    address: str = ":69"
    options: str = "--secure"


@dataclass(frozen=True)
class DaemonSpec:
    """One daemon of a lab: its type, its configuration file and extra command-line words."""

    type: DaemonType
    config: Path | None = None
    args: tuple[str, ...] = ()
    tftpd: TftpdOptions | None = None
    where: str = ""  # the lab file and entry, for messages about the running daemon
    # Files its configuration includes, filled in like it and written to its workdir
    # (``{{ workdir }}/<name>``): a configuration split in parts, parts shared by labs.
    includes: tuple[Path, ...] = ()

    def roles(self) -> frozenset[Role]:
        """The services it provides on the link (dnsmasq's from its configuration)."""
        if self.type is not DaemonType.DNSMASQ:
            return _FIXED_ROLES[self.type]
        text = self.config.read_text(errors="replace") if self.config else ""
        return dnsmasq_roles(text, self.args)


_KEYS: dict[bool, tuple[str, ...]] = {
    True: ("type", "config", "args", "includes"),
    False: ("type", "directory", "address", "options"),
}
_IPV6_RANGE = re.compile(r"::|constructor:|\{\{\s*\w*6\w*\s*\}\}")
# A range that only advertises the prefix: dnsmasq sends RAs and binds no DHCPv6 port
# for it (dnsmasq 2.90 holds 67, 69 and the raw ICMPv6 socket, not 547).
_RA_ONLY = re.compile(r"(^|,)\s*ra-only\s*(,|$)")


def parse_daemon(entry: Mapping[str, object], where: str, base: Path) -> DaemonSpec:
    """Check one ``[[daemon]]`` table; ``config`` is relative to ``base`` (the lab file's
    directory). Raises :class:`ConfigError` starting with ``where``."""
    kind = _type_of(entry, where)
    allowed = _KEYS[kind.takes_config()]
    for key in entry:
        if key not in allowed:
            raise ConfigError(f"{where}: {_unknown_key(key, kind, allowed)}")
    if not kind.takes_config():
        options = TftpdOptions(**{key: _string(entry, key, where) for key in allowed[1:]
                                  if key in entry})
        return DaemonSpec(kind, tftpd=options, where=where)
    return DaemonSpec(kind, _config_path(entry, kind, where, base), _args(entry, where),
                      where=where, includes=_includes(entry, where, base))


def _type_of(entry: Mapping[str, object], where: str) -> DaemonType:
    names = ", ".join(DaemonType)
    if "type" not in entry:
        raise ConfigError(f"{where}: type is missing; set type to one of: {names}")
    value = entry["type"]
    if isinstance(value, str) and value in set(DaemonType):
        return DaemonType(value)
    raise ConfigError(f"{where}: type = {value!r} is not a daemon pxelab runs; use one "
                      f"of: {names}")


def _unknown_key(key: str, kind: DaemonType, allowed: tuple[str, ...]) -> str:
    if key == "config" and not kind.takes_config():
        return ("unknown key 'config': tftpd-hpa has no configuration file; give its "
                "settings as directory, address and options (TFTP_DIRECTORY, "
                "TFTP_ADDRESS, TFTP_OPTIONS of /etc/default/tftpd-hpa)")
    close = difflib.get_close_matches(key, allowed, n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    return (f"unknown key {key!r}{hint}; the keys of a {kind} daemon are: "
            f"{', '.join(allowed)}")


def _string(entry: Mapping[str, object], key: str, where: str) -> str:
    value = entry[key]
    if not isinstance(value, str):
        raise ConfigError(f"{where}: {key} must be a string, not {type(value).__name__} "
                          f"({value!r}); quote it")
    return value


def _config_path(entry: Mapping[str, object], kind: DaemonType, where: str,
                 base: Path) -> Path:
    if "config" not in entry:
        raise ConfigError(f"{where}: config is missing; set config to your {kind} "
                          f"configuration file, relative to {base}")
    path = base / _string(entry, "config", where)
    if not path.is_file():
        raise ConfigError(f"{where}: config = {entry['config']!r}: {path} is not a file; "
                          f"put your {kind} configuration there or fix the path (relative "
                          f"to the lab file's directory {base})")
    return path


def _includes(entry: Mapping[str, object], where: str, base: Path) -> tuple[Path, ...]:
    value = entry.get("includes", [])
    if not isinstance(value, list) or not all(isinstance(name, str) for name in value):
        raise ConfigError(f"{where}: includes must be a list of file names relative to the "
                          f"lab file, e.g. includes = [\"site.conf\"], not {value!r}")
    paths = tuple(base / name for name in value)
    for path in paths:
        if not path.is_file():
            raise ConfigError(f"{where}: includes: {path} is not a file; put the file "
                              f"there or fix the name (relative to {base})")
    names = [path.name for path in paths]
    twice = sorted({name for name in names if names.count(name) > 1})
    if twice:
        raise ConfigError(f"{where}: includes: {', '.join(twice)} named twice; each lands in "
                          "{{ workdir }} under its file name: rename one")
    return paths


def _args(entry: Mapping[str, object], where: str) -> tuple[str, ...]:
    value = entry.get("args", [])
    if not isinstance(value, list) or not all(isinstance(word, str) for word in value):
        raise ConfigError(f"{where}: args must be a list of strings (extra command-line "
                          f"words), e.g. args = [\"-d\", \"3\"], not {value!r}")
    return tuple(value)


def dnsmasq_roles(text: str, args: Sequence[str] = ()) -> frozenset[Role]:
    """The services a dnsmasq configuration (file text plus command-line words) provides.

    A ``dhcp-range`` with an IPv6 address (``::``), a ``constructor:`` or a
    placeholder with a 6 in its name (``{{ pool6_first }}``) is DHCPv6, any
    other DHCPv4, an ``ra-only`` one neither; ``enable-tftp`` is TFTP.
    """
    roles: set[Role] = set()
    lines = [*text.splitlines(), *(word.removeprefix("--") for word in args)]
    for raw in lines:
        line = raw.split("#", 1)[0].strip()
        key, _, value = line.partition("=")
        key = key.strip()
        if key == "dhcp-range" and not _RA_ONLY.search(value):
            roles.add(Role.DHCP6 if _IPV6_RANGE.search(value) else Role.DHCP4)
        elif key == "enable-tftp":
            roles.add(Role.TFTP)
    return frozenset(roles)


def check_daemons(specs: Sequence[DaemonSpec], where: str) -> None:
    """Check a lab's daemons together: each type once, and each service (DHCPv4,
    DHCPv6, TFTP, HTTP) from one daemon. radvd needs no DHCPv6 server beside it."""
    seen: dict[DaemonType, int] = {}
    for number, spec in enumerate(specs, 1):
        if spec.type in seen:
            raise ConfigError(f"{where}: [[daemon]] {seen[spec.type]} and {number} are both "
                              f"{spec.type}; a lab runs each daemon once: merge their "
                              "configurations into one file")
        seen[spec.type] = number
    providers: dict[Role, tuple[int, DaemonSpec]] = {}
    for number, spec in enumerate(specs, 1):
        for role in sorted(spec.roles()):
            if role in providers:
                first, other = providers[role]
                raise ConfigError(
                    f"{where}: [[daemon]] {first} ({other.type}) and {number} ({spec.type}) "
                    f"both serve {role} on the lab link; a client would take either "
                    f"answer: keep {role} in one of them")
            providers[role] = (number, spec)
