"""Read a lab file (``*.pxelab.toml``) and check every key before anything starts.

Each mistake is a :class:`~pxelab.core.errors.ConfigError` naming the file, the key
path (``guest[2].mode``) and the fix, in the words of
:mod:`pxelab.server.config_reader`, which reads pxelab's own server sections too.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pxelab.core.errors import ConfigError
from pxelab.daemons.spec import DaemonSpec, check_daemons, parse_daemon
from pxelab.daemons.stack import make_daemon
from pxelab.labfile.dataroot import VALUE_NAMES, check_templates
from pxelab.machine.console import FailurePattern, Milestone
from pxelab.machine.fwsets import parse_set_names
from pxelab.machine.keystrokes import parse_keys
from pxelab.machine.netboot import RELEASES as NETBOOT_RELEASES
from pxelab.machine.network import LabNetwork
from pxelab.scenarios.cases import MAX_GUESTS, BootMode, IpVersion
from pxelab.scenarios.system import SystemUnderTest
from pxelab.server.config import InterfaceAddresses, LabConfig, lab_config
from pxelab.server.config_keys import LAB_TABLES
from pxelab.server.config_reader import Origin, Table, did_you_mean, toml_type

from .keys import TABLES

SUFFIX = ".pxelab.toml"
SERVER_SECTIONS = tuple(t.name for t in LAB_TABLES if t.name != "server")
BOOT_SERVERS = ("pxelab", "daemons")
STAGES = ("firmware", "pxelab_payload", "initramfs_tools")
_WORD = re.compile(r"[A-Za-z0-9_.-]+")
_MAC = re.compile(r"[0-9a-f]{2}(?::[0-9a-f]{2}){5}")


@dataclass(frozen=True)
class GuestEntry:
    """One ``[[guest]]``: a machine that boots once per NIC model and firmware set."""

    mode: BootMode
    ip: IpVersion
    name: str = ""
    nic_models: tuple[str, ...] = ()
    firmware_sets: tuple[str, ...] = ()
    memory_mib: int | None = None
    qemu_args: tuple[str, ...] = ()
    # After the file's own milestones: what only this guest's boot prints.
    milestones: tuple[Milestone, ...] = ()
    # The guest's own [expect] (one NIC known to fail where another boots); None:
    # the file's.
    expect: tuple[str | None, str | None] | None = None
    # None: the built-in scenario's (pxelab.machine.qemu.GuestSpec.mac).
    mac: str | None = None
    # Machines like this one powered on together in one lab (pxelab.multiboot).
    guests: int = 1

    @property
    def case(self) -> str:
        """The built-in scenario that gives this guest its machine: ``uefi_http_ipv6``."""
        return f"{self.mode}_{self.ip}"


@dataclass(frozen=True)
class LabFile:
    path: Path
    name: str
    description: str
    guests: tuple[GuestEntry, ...]
    system: SystemUnderTest
    # Built-in milestone tables (STAGES): the firmware's come before the file's own
    # milestones, the others after them; the success milestone comes last.
    stages: tuple[str, ...]
    milestones: tuple[Milestone, ...]
    success: Milestone | None


def load_lab_file(path: Path | str) -> LabFile:
    """Read and check the lab file at ``path``."""
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the lab file ({exc.strerror}); check the "
                          "path") from None
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"{path}: not a valid TOML file ({exc}); fix the syntax there "
                          "(strings need quotes, tables are [name], arrays of tables "
                          "[[name]])") from None
    return lab_file(data, Origin(str(path), path.resolve().parent), path)


def lab_file(data: Mapping[str, Any], origin: Origin, path: Path) -> LabFile:
    """Build a LabFile from parsed TOML."""
    _check_sections(origin, data)
    tables = {name: Table(origin, name, data.get(name, {}), TABLES[name].names)
              for name in ("lab", "data_root", "nfs", "boot_server", "success", "expect")}
    name = tables["lab"].text("name", 'name = "classic"') or _stem(path)
    if not _WORD.fullmatch(name):
        tables["lab"].fail("name", f"{name!r} has characters a test id cannot hold",
                           "use letters, digits, '-', '_' and '.'")
    guests = tuple(_guest(origin, index, entry)
                   for index, entry in enumerate(_array(origin, data, "guest"), 1))
    if not guests:
        origin.fail("guest", "no [[guest]] in the file",
                    'add one: [[guest]] with mode = "legacy_pxe"')
    system, stages = _system(origin, data, tables, path)
    milestones = tuple(_milestone(origin, f"milestone[{index}]", entry)
                       for index, entry in enumerate(_array(origin, data, "milestone"), 1))
    return LabFile(path, name, tables["lab"].text("description") or "", guests,
                   system, stages, milestones, _success(tables["success"], stages))


def _stem(path: Path) -> str:
    return path.name.removesuffix(SUFFIX).removesuffix(".toml")


def _check_sections(origin: Origin, data: Mapping[str, Any]) -> None:
    for key, value in data.items():
        table = TABLES.get(key)
        if table is None and key not in SERVER_SECTIONS:
            fix = ('the lab sets the server\'s interface, addresses and data root; use '
                   '[data_root] path for your files' if key == "server" else
                   did_you_mean(key, [*TABLES, *SERVER_SECTIONS], "the sections are"))
            origin.fail(key, "unknown section", fix)
        array = table.array if table else key in ("rule", "host", "fault")
        if array and not (isinstance(value, list) and all(isinstance(v, dict) for v in value)):
            origin.fail(key, f"expected an array of tables, got {toml_type(value)}",
                        f"write [[{key}]] (two pairs of brackets) before each one")
        if not array and not isinstance(value, dict):
            origin.fail(key, f"expected a table, got {toml_type(value)}",
                        f"write a [{key}] section header (one pair of brackets)")


def _array(origin: Origin, data: Mapping[str, Any], name: str) -> list[Mapping[str, Any]]:
    return list(data.get(name, []))


def _guest(origin: Origin, index: int, entry: Mapping[str, Any]) -> GuestEntry:
    table = Table(origin, f"guest[{index}]", entry, TABLES["guest"].names)
    mode = table.choice("mode", [str(m) for m in BootMode])
    if mode is None:
        table.fail("mode", "missing", 'say how the firmware boots: mode = "legacy_pxe" '
                   f"(one of {', '.join(BootMode)})")
    ip = table.choice("ip", [str(v) for v in IpVersion]) or "ipv4"
    name = table.text("name", 'name = "menu"') or ""
    if name and not _WORD.fullmatch(name):
        table.fail("name", f"{name!r} cannot be part of a test id",
                   "use letters, digits, '-', '_' and '.'")
    nics = tuple(text for _, text in table.strings("nic_models", 'nic_models = ["e1000"]') or ())
    sets = tuple(text for _, text in table.strings("firmware_sets",
                                                   'firmware_sets = ["trixie"]') or ())
    if sets:
        try:
            sets = parse_set_names(",".join(str(origin.base / s) if s.endswith(".toml")
                                            else s for s in sets))
        except ConfigError as exc:
            table.fail("firmware_sets", str(exc), "name a Debian release or a set file")
    args = tuple(text for _, text in table.strings("qemu_args", 'qemu_args = ["-device", "..."]')
                 or ())
    own = table.array("milestone", "[[guest.milestone]] (after its [[guest]])") or []
    milestones = tuple(_milestone(origin, f"{table.where}.milestone[{number}]", entry)
                       for number, entry in enumerate(own, 1))
    mac = table.text("mac", 'mac = "52:54:00:00:06:01"')
    if mac is not None and not _MAC.fullmatch(mac):
        table.fail("mac", f"{mac!r} is not a MAC address",
                   'write six lower-case hex pairs with colons: mac = "52:54:00:00:06:01"')
    return GuestEntry(BootMode(mode), IpVersion(ip), name, nics, sets,
                      table.integer("memory", 64, 65536), args, milestones,
                      _guest_expect(table), mac, table.integer("guests", 1, MAX_GUESTS) or 1)


def _guest_expect(guest: Table) -> tuple[str | None, str | None] | None:
    """``expect = { stage = "...", cause = "..." }`` of one guest, checked as [expect] is."""
    value = guest.data.get("expect")
    if value is None:
        return None
    if not isinstance(value, dict) or not value:
        guest.wrong_type("expect", "a table with stage and/or cause",
                         'expect = { stage = "initramfs_dhcp", cause = "..." }')
    table = Table(guest.origin, guest.at("expect"), value, TABLES["expect"].names)
    return table.text("stage"), table.text("cause")


def _system(origin: Origin, data: Mapping[str, Any], tables: dict[str, Table],
            path: Path) -> tuple[SystemUnderTest, tuple[str, ...]]:
    root_table, nfs = tables["data_root"], tables["nfs"]
    root = _directory(root_table, "path", origin)
    payload = bool(root_table.flag("payload"))
    firmware = _firmware_files(root_table)
    verbatim = tuple(t for _, t in root_table.strings("verbatim", 'verbatim = ["*.iso"]') or ())
    netboot = root_table.choice("netboot", sorted(NETBOOT_RELEASES))
    if root is not None:
        check_templates(root, verbatim)
    nfs_root = _directory(nfs, "root", origin)
    own, daemons = _boot_server(origin, data, tables["boot_server"])
    success, expect = tables["success"], tables["expect"]
    stages = tuple(t for _, t in success.strings("stages", 'stages = ["firmware"]') or ())
    for where, stage in success.strings("stages", "") or ():
        if stage not in STAGES:
            origin.fail(where, f"{stage!r} is not a milestone table",
                        did_you_mean(stage, STAGES, "the tables are"))
    if not stages:
        stages = ("firmware", "pxelab_payload") if payload and not success.has("console") \
            else ("firmware",)
    system = SystemUnderTest(
        source=path.resolve(), data_root=root, firmware_files=firmware, payload=payload,
        netboot=netboot,
        verbatim=verbatim, nfs_root=nfs_root, nfs3=bool(nfs.flag("nfsv3")), own_server=own,
        daemons=daemons, needs_marker=payload and not success.has("console")
        and "pxelab_payload" in stages,
        expect_stage=expect.text("stage"), expect_cause=expect.text("cause"))
    return system, stages


def _directory(table: Table, key: str, origin: Origin) -> Path | None:
    text = table.text(key, f'{key} = "srv/tftp"')
    if text is None:
        return None
    path = (origin.base / text).resolve()
    if not path.is_dir():
        table.fail(key, f"{path} is not a directory", "give a directory relative to the lab "
                   "file, or an absolute path")
    return path


def _firmware_files(table: Table) -> tuple[tuple[str, str], ...]:
    value = table.data.get("firmware", {})
    if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
        table.wrong_type("firmware", "a table of strings",
                         'firmware = { "undionly.kpxe" = "undionly.kpxe" }')
    for name in value:
        if name.startswith("/") or ".." in Path(name).parts:
            table.fail("firmware", f"{name!r} is not a path inside the data root",
                       "use a relative name such as \"ipxe/undionly.kpxe\"")
    return tuple(sorted(value.items()))


def _boot_server(origin: Origin, data: Mapping[str, Any], table: Table
                 ) -> tuple[LabConfig | None, tuple[DaemonSpec, ...]]:
    kind = table.choice("type", BOOT_SERVERS) or "pxelab"
    sections = [name for name in SERVER_SECTIONS if name in data]
    entries = _array(origin, data, "daemon")
    if kind == "pxelab":
        if entries:
            origin.fail("daemon", "[[daemon]] entries, but [boot_server] type is \"pxelab\"",
                        'set [boot_server] type = "daemons" to run them')
        return _own_server(origin, {name: data[name] for name in sections}), ()
    if sections:
        origin.fail(sections[0], "pxelab's server section, but [boot_server] type is "
                    '"daemons"', "configure your daemons in their own files, or set "
                    'type = "pxelab"')
    if not entries:
        origin.fail("daemon", "no [[daemon]] for [boot_server] type = \"daemons\"",
                    'add [[daemon]] entries with type = "dnsmasq" and config = "dnsmasq.conf"')
    specs = tuple(parse_daemon(entry, f"{origin.name}: daemon[{index}]", origin.base)
                  for index, entry in enumerate(entries, 1))
    check_daemons(specs, origin.name)
    for spec in specs:  # a {{ name }} no lab provides fails now, not when the lab is up
        make_daemon(spec, dict.fromkeys(VALUE_NAMES, ""), None, Path("/nonexistent"))
    return None, specs


def _own_server(origin: Origin, sections: Mapping[str, Any]) -> LabConfig:
    """pxelab's server as the file's sections configure it, on a lab's addresses."""
    def lab_addresses(interface: str) -> InterfaceAddresses:
        return LabNetwork.ipv4, LabNetwork.ipv6

    return lab_config(sections, origin, interface=LabNetwork.bridge, data_root=Path("/"),
                      resolve=lab_addresses)


def _success(success: Table, stages: tuple[str, ...]) -> Milestone | None:
    pattern = success.text("console", 'console = "login:"')
    if pattern is None:
        if "pxelab_payload" not in stages:
            success.fail("console", "missing", 'say what proves the boot worked: console = '
                         '"login:" (or [data_root] payload = true for pxelab\'s userspace)')
        return None
    _regex(success, "console", pattern)
    return Milestone("success", pattern, success.number("timeout", 0, 3600) or 120.0,
                     _failures(success, "failures"), "the file's success pattern",
                     landmark=True)


def _milestone(origin: Origin, where: str, entry: Mapping[str, Any]) -> Milestone:
    if not isinstance(entry, dict):
        origin.fail(where, f"expected a table, got {toml_type(entry)}",
                    "write [[milestone]] (or [[guest.milestone]]) before its keys")
    table = Table(origin, where, entry, TABLES["milestone"].names)
    name, pattern = table.text("name"), table.text("pattern")
    if not name or not _WORD.fullmatch(name):
        table.fail("name", "missing or not one word", 'name = "menu"')
    if pattern is None:
        table.fail("pattern", "missing", 'pattern = "Booting from network"')
    _regex(table, "pattern", pattern)
    try:
        answer = parse_keys(table.text("answer", 'answer = "<Enter>"') or "")
    except ConfigError as exc:
        table.fail("answer", str(exc), "use the key names listed in docs/lab-files.md")
    return Milestone(name, pattern, table.number("timeout", 0, 3600) or 60.0,
                     _failures(table, "failures"), table.text("description") or "",
                     answer=answer)


def _failures(table: Table, key: str) -> tuple[FailurePattern, ...]:
    items = table.array(key, 'failures = [{ pattern = "Kernel panic", cause = "..." }]') or []
    result = []
    for index, item in enumerate(items):
        where = f"{table.at(key)}[{index}]"
        if not (isinstance(item, dict) and set(item) == {"pattern", "cause"}
                and all(isinstance(v, str) for v in item.values())):
            table.origin.fail(where, "expected { pattern = \"...\", cause = \"...\" }",
                              "give both, as strings")
        _regex(table, key, item["pattern"], where)
        result.append(FailurePattern(item["pattern"], item["cause"]))
    return tuple(result)


def _regex(table: Table, key: str, pattern: str, where: str | None = None) -> None:
    try:
        re.compile(pattern)
    except re.error as exc:
        table.origin.fail(where or table.at(key), f"not a regular expression ({exc})",
                          "escape special characters with \\\\ (TOML: use '...' strings)")
