"""The policy half of a lab file: ``[policy]``, ``[[rule]]``, ``[[host]]``, ``[[fault]]``.

Builds a :class:`~pxelab.server.policy.RulePolicy`. User rules come before the
profile's rules, so a lab file refines the classic decision tree instead of
replacing it; ``profile = "empty"`` starts from nothing. Boot-file templates
are checked here, at load time, so a typo in ``{{ mac_hypen }}`` is an error
naming the file, the rule and the names there are, not a crash at the first client.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from ipaddress import IPv4Address, IPv4Interface
from typing import Any, Literal

from pxelab.core.errors import ConfigError
from pxelab.core.template import placeholders
from pxelab.server.config_keys import FAULT_KEYS, MATCH_KEYS, keys_of
from pxelab.server.config_reader import Origin, Table, did_you_mean
from pxelab.server.dhcp4.codec import MessageType as Dhcp4Type
from pxelab.server.dhcp6.codec import MessageType as Dhcp6Type
from pxelab.server.faults import (
    DelayPacket,
    DropPacket,
    Fault,
    HttpError,
    LieTsize,
    OackFault,
    OackMode,
    TruncateFile,
    WithholdOffers,
)
from pxelab.server.policy import (
    BOOT_FILE_NAMES,
    HostRule,
    Match,
    Rule,
    RulePolicy,
    default_profile,
    normalize_mac,
    old_fields,
)

__all__ = ["MATCH_KEYS", "PACKET_KINDS", "PROFILES", "build_faults", "build_policy"]

PROFILES = ("default", "empty")
# The packet kinds the protocol servers count (see pxelab.server.faults): every DHCP message
# type by name. A kind outside this list would never fire, so a typo is an error.
PACKET_KINDS = (*(f"dhcp4.{t.name.lower()}" for t in Dhcp4Type), "dhcp4.bootp",
                "dhcp4.bootreply", *(f"dhcp6.{t.label}" for t in Dhcp6Type),
                "tftp.rrq", "tftp.oack", "tftp.data", "http.request", "ra.advert")
OPTION_PXELINUX_CONFIG = 209  # RFC 5071 section 4: PXELINUX configuration file
OPTION_PXELINUX_PREFIX = 210  # RFC 5071 section 5: path prefix


def build_policy(origin: Origin, policy: Table, *, subnet: IPv4Interface, min_secs: int,
                 rules: Sequence[Mapping[str, Any]],
                 hosts: Sequence[Mapping[str, Any]]) -> tuple[RulePolicy, str]:
    """The RulePolicy a lab file describes, and the profile it started from."""
    profile = policy.choice("profile", PROFILES) or "default"
    script = _ipxe_script(policy)
    own_rules = _rules(origin, rules)
    host_rules = _hosts(origin, hosts, subnet)
    if profile == "empty":
        result = RulePolicy(arch_rules=(), rules=own_rules, hosts=host_rules, min_secs=min_secs,
                            ipxe_script=script or None)
        return result, profile
    base = default_profile(hosts=host_rules, min_secs=min_secs)
    profile_rules = base.rules
    if script is False:  # the iPXE ROM *is* the firmware here; it gets the NBP like any PXE
        profile_rules = tuple(r for r in profile_rules if r.name != "ipxe-script")
    elif script is not None:
        profile_rules = tuple(replace(r, boot_file=script) if r.name == "ipxe-script" else r
                              for r in profile_rules)
    return replace(base, rules=own_rules + profile_rules), profile


def build_faults(origin: Origin, faults: Sequence[Mapping[str, Any]]) -> tuple[Fault, ...]:
    """The faults a lab file's ``[[fault]]`` tables describe, in order."""
    return tuple(_fault(Table(origin, f"fault[{i}]", raw, _fault_keys(origin, i, raw)))
                 for i, raw in enumerate(faults))


def _ipxe_script(policy: Table) -> str | Literal[False] | None:
    value = policy.data.get("ipxe_script")
    if value is None or value is False:
        return None if value is None else False
    if not isinstance(value, str) or not value:
        policy.wrong_type("ipxe_script", "a file name or URL, or false",
                          'ipxe_script = "http://{{ server }}/script.ipxe"')
    return check_template(policy, "ipxe_script", value)


def check_template(table: Table, key: str, template: str, owner: str = "") -> str:
    """Refuse a boot-file template with a name pxelab does not fill in (docs/templates.md).

    ``owner`` says whose boot file it is ("rule 'bios'") when the key path does not.
    """
    names = ", ".join(BOOT_FILE_NAMES)
    whose = f"{owner}: " if owner else ""
    old = old_fields(template)
    if old:
        table.fail(key, f"{whose}{{{old[0]}}} is the old template syntax",
                   f"write {{{{ {old[0]} }}}}; the names are {names} (docs/templates.md)")
    for name in sorted(placeholders(template) - set(BOOT_FILE_NAMES)):
        hint = did_you_mean(name, BOOT_FILE_NAMES, "use one of")
        table.fail(key, f"{whose}{{{{ {name} }}}} is not a value pxelab fills into a boot file",
                   f"{hint} (the names are {names}; docs/templates.md)"
                   if hint.startswith("did") else f"{hint} (docs/templates.md)")
    return template


# -- [[rule]] and [[host]] ------------------------------------------------------------------------

def read_match(table: Table) -> Match:
    """The match keys of a rule or fault: ``arch``, ``vendor_class``, ``user_class``, ..."""
    arch: tuple[int, ...] = ()
    if table.has("arch"):
        value = table.data["arch"]
        items = value if isinstance(value, list) else [value]
        for index, item in enumerate(items):
            where = f"{table.at('arch')}[{index}]" if isinstance(value, list) else table.at(
                "arch")
            if isinstance(item, bool) or not isinstance(item, int):
                table.wrong_type("arch", "an architecture number (RFC 4578: 0 BIOS, 6/7 UEFI, "
                                 "15/16 UEFI HTTP)", "arch = [7, 9]", item, where)
            if not 0 <= item <= 0xFFFF:
                table.origin.fail(where, f"{item} is outside 0..65535",
                                  "use an option 93/61 value such as 0, 6, 7, 9, 15 or 16")
        arch = tuple(items)
    mac = table.text("mac", 'mac = "52:54:00:12:34:56"')
    if mac is not None:
        mac = _mac(table, "mac", mac)
    family = table.choice("family", ("ipv4", "ipv6"))
    return Match(arch=arch, vendor_class=table.text("vendor_class", 'vendor_class = "HTTPClient"'),
                 user_class=table.text("user_class", 'user_class = "iPXE"'), mac=mac,
                 family=family)


def _mac(table: Table, key: str, text: str) -> str:
    try:
        return normalize_mac(text)
    except ConfigError:
        table.fail(key, f"{text!r} is not a MAC address",
                   'write six hex pairs like "52:54:00:12:34:56"')


def _rules(origin: Origin, raw: Sequence[Mapping[str, Any]]) -> tuple[Rule, ...]:
    rules: list[Rule] = []
    names: dict[str, str] = {}
    for index, data in enumerate(raw):
        table = Table(origin, f"rule[{index}]", data, keys_of("rule"))
        name = table.text("name", 'name = "uefi-x64"') or ""
        if name in names:
            table.fail("name", f"{name!r} is already the name of {names[name]}",
                       "give every rule its own name, so events say which one decided")
        if name:
            names[name] = table.where
        rules.append(_rule(table, name))
    return tuple(rules)


def _rule(table: Table, name: str) -> Rule:
    match = read_match(table)
    withhold = bool(table.flag("withhold"))
    boot_file = table.text("boot_file", 'boot_file = "ipxe.efi"')
    if boot_file is not None:
        if withhold:
            table.fail("boot_file", "a rule with withhold = true answers nothing",
                       "remove boot_file or withhold")
        check_template(table, "boot_file", boot_file, f"rule {name!r}" if name else "")
    echo: str | None = None  # None: the policy's default ("HTTPClient" to HTTP clients)
    if table.has("echo_vendor_class"):
        value = table.data["echo_vendor_class"]
        if value is True or not isinstance(value, str | bool):
            table.wrong_type("echo_vendor_class", "a string, or false for no option 60/16",
                             'echo_vendor_class = "HTTPClient"')
        echo = value if isinstance(value, str) else ""  # "": no option 60/16 at all
    extra = tuple((code, value) for code, value in (
        (OPTION_PXELINUX_CONFIG, _pxelinux(table, "pxelinux_config")),
        (OPTION_PXELINUX_PREFIX, _pxelinux(table, "pxelinux_prefix"))) if value is not None)
    return Rule(match, boot_file, name=name, withhold=withhold, extra_options=extra,
                vendor_class=echo)


def _pxelinux(table: Table, key: str) -> bytes | None:
    value = table.text(key, f'{key} = "pxelinux.cfg/lab"')
    if value is None:
        return None
    if not value or not value.isascii() or not value.isprintable() or len(value) > 255:
        table.fail(key, f"{value!r} cannot go into a DHCP option",
                   "use 1 to 255 printable ASCII characters")
    if key == "pxelinux_prefix" and not value.endswith("/"):
        # PXELINUX glues the prefix to each file name as-is: "boot" + "ldlinux.c32".
        table.fail(key, f"{value!r} does not end in '/'; PXELINUX would ask for "
                   f"'{value}ldlinux.c32'", f'write "{value}/"')
    return value.encode("ascii")


def _hosts(origin: Origin, raw: Sequence[Mapping[str, Any]],
           subnet: IPv4Interface) -> tuple[HostRule, ...]:
    hosts: list[HostRule] = []
    seen: dict[str, str] = {}
    taken: dict[IPv4Address, str] = {subnet.ip: "the server ([server] ipv4)"}
    for index, data in enumerate(raw):
        table = Table(origin, f"host[{index}]", data, keys_of("host"))
        text = table.text("mac", 'mac = "52:54:00:12:34:56"')
        if text is None:
            table.fail("mac", "missing", 'every [[host]] needs mac = "52:54:00:12:34:56"')
        mac = _mac(table, "mac", text)
        if mac in seen:
            table.fail("mac", f"{mac} already has a [[host]] entry ({seen[mac]})",
                       "merge the two entries")
        seen[mac] = table.where
        kwargs: dict[str, Any] = {"mac": mac, "withhold": bool(table.flag("withhold")),
                                  "reason": table.text("reason") or ""}
        boot_file = table.text("boot_file", 'boot_file = "special.efi"')
        if boot_file is not None:
            if kwargs["withhold"]:
                table.fail("boot_file", "a host with withhold = true gets no answer",
                           "remove boot_file or withhold")
            kwargs["boot_file"] = check_template(table, "boot_file", boot_file, f"host {mac}")
        text = table.text("address", 'address = "192.0.2.77"')
        if text is not None:
            kwargs["address"] = address = _fixed_address(table, text, subnet)
            if address in taken:
                table.fail("address", f"{address} is already taken by {taken[address]}",
                           "give every host its own address")
            taken[address] = table.where
        hosts.append(HostRule(**kwargs))
    return tuple(hosts)


def _fixed_address(table: Table, text: str, subnet: IPv4Interface) -> IPv4Address:
    address = table.address4(table.at("address"), text)
    network = subnet.network
    if address not in network or (network.prefixlen < 31 and address in (
            network.network_address, network.broadcast_address)):
        table.fail("address", f"{address} is not a host address in {network} (the server's "
                   f"subnet; the server is {subnet})",
                   f"choose an address from {network[1]} to {network[-2]}")
    return address


# -- [[fault]] ------------------------------------------------------------------------------------

FAULT_TYPES = tuple(FAULT_KEYS)


def _fault_keys(origin: Origin, index: int, raw: Mapping[str, Any]) -> tuple[str, ...]:
    kind = raw.get("type")
    where = f"fault[{index}].type"
    if kind is None:
        origin.fail(where, "missing", f"say which fault, type = one of {', '.join(FAULT_TYPES)}")
    if not isinstance(kind, str):
        origin.fail(where, f"expected a string, got {kind!r}", 'write it like type = "drop"')
    if kind not in FAULT_KEYS:
        origin.fail(where, f"unknown fault type {kind!r}",
                    did_you_mean(kind, FAULT_TYPES, "the fault types are"))
    return keys_of(f"fault.{kind}")


def _required(table: Table, key: str, value: Any, example: str) -> Any:
    if value is None:
        table.fail(key, "missing", f"a {table.data['type']} fault needs {example}")
    return value


def _make(table: Table, cls: Callable[..., Fault], *args: Any, **kwargs: Any) -> Fault:
    try:
        return cls(*args, **kwargs)
    except ConfigError as exc:  # a check of the fault's own that ours missed
        table.origin.fail(table.where, str(exc), "fix the values of this [[fault]]")


def _fault(table: Table) -> Fault:
    kind = table.data["type"]
    if kind in ("drop", "delay"):
        packet = _required(table, "kind", table.choice("kind", PACKET_KINDS),
                           'kind = "dhcp4.offer"')
        nth = table.integer("nth", 1, 1_000_000) or 1
        count = table.integer("count", 0, 1_000_000)
        match = read_match(table)
        common: dict[str, Any] = {"nth": nth, "count": 1 if count is None else count,
                                  "match": match if match != Match() else None}
        if table.has("file"):
            if not packet.startswith("tftp."):
                table.fail("file", f"{packet} packets carry no file name",
                           "remove file, or use a tftp.* kind such as tftp.rrq")
            common["file"] = table.text("file", 'file = "ldlinux.c32"')
        if kind == "drop":
            return _make(table, DropPacket, packet, **common)
        seconds = _required(table, "seconds", table.number("seconds", 0, 600), "seconds = 2")
        return _make(table, DelayPacket, packet, seconds, **common)
    if kind == "withhold":
        return _make(table, WithholdOffers, read_match(table),
                     reason=table.text("reason") or "")
    file = table.text("file", 'file = "ldlinux.c32"') or "*"
    if kind == "oack":
        mode = _required(table, "mode", table.choice("mode", [m.value for m in OackMode]),
                         'mode = "refuse"')
        option = _oack_option(table)
        return _make(table, OackFault, OackMode(mode), file=file,
                     **({"option": option} if option else {}))
    if kind == "tsize":
        return _make(table, LieTsize, _required(
            table, "tsize", table.integer("tsize", 0, 2**63 - 1), "tsize = 1000"), file=file)
    if kind == "truncate":
        return _make(table, TruncateFile, _required(
            table, "size", table.integer("size", 0, 2**63 - 1), "size = 4096"), file=file)
    status = _required(table, "status", table.integer("status", 400, 599), "status = 404")
    return _make(table, HttpError, status, path=table.text("path", 'path = "ipxe.efi"') or "*")


def _oack_option(table: Table) -> tuple[str, str] | None:
    pair = table.strings("option", 'option = ["windowsize", "64"]')
    if pair is None:
        return None
    if len(pair) != 2:
        table.fail("option", f"gives {len(pair)} strings, not 2",
                   'give a name and a value, like option = ["windowsize", "64"]')
    return pair[0][1], pair[1][1]
