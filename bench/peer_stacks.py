"""The real boot stacks boot_bench.py runs beside pxelab's server (bench/peers/stacks.toml).

Each stack is a benchmark variant: per scenario, the daemons (pxelab.daemons, started
from the configuration files under bench/peers/ with the lab's template values) or
the reason it cannot serve that scenario. Not part of the product.
"""

from __future__ import annotations

import shlex
import tomllib
from collections.abc import Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path

from pxelab.core.errors import ConfigError
from pxelab.core.events import EventLog
from pxelab.daemons.spec import DaemonSpec, check_daemons, parse_daemon
from pxelab.daemons.stack import DaemonStack
from pxelab.lab import ServerFactory
from pxelab.labfile.dataroot import lab_values
from pxelab.machine.network import LabNetwork
from pxelab.scenarios.cases import Scenario

PEERS_DIR = Path(__file__).parent / "peers"
STACKS_FILE = PEERS_DIR / "stacks.toml"
# /etc/default/tftpd-hpa's names -> the keys of a lab file's tftpd-hpa [[daemon]].
TFTPD_SETTINGS = {"TFTP_DIRECTORY": "directory", "TFTP_ADDRESS": "address",
                  "TFTP_OPTIONS": "options"}


@dataclass(frozen=True)
class PeerCase:
    """How a stack serves one scenario: its daemons, or why it cannot."""

    daemons: tuple[DaemonSpec, ...] = ()
    not_applicable: str = ""


@dataclass(frozen=True)
class PeerStack:
    name: str
    label: str
    cases: Mapping[str, PeerCase] = field(default_factory=dict)

    def case(self, scenario: str) -> PeerCase:
        return self.cases.get(scenario, PeerCase(
            not_applicable=f"no configuration for {scenario} in {STACKS_FILE.name}"))


def load_stacks(path: Path = STACKS_FILE) -> dict[str, PeerStack]:
    """Every ``[[variant]]`` of ``path``, checked (configs exist, roles unique)."""
    data = tomllib.loads(path.read_text(encoding="utf-8"))
    stacks = {}
    for variant in data.get("variant", []):
        name = variant["name"]
        cases: dict[str, PeerCase] = {}
        for index, entry in enumerate(variant.get("case", []), 1):
            where = f"{path}: variant {name!r} case {index}"
            case = _case(entry, where, path.parent)
            for scenario in entry["scenarios"]:
                if scenario in cases:
                    raise ConfigError(f"{where}: {scenario} is already in an earlier case; "
                                      "name each scenario once per variant")
                cases[scenario] = case
        stacks[name] = PeerStack(name, variant.get("label", name), cases)
    return stacks


def _case(entry: Mapping[str, object], where: str, base: Path) -> PeerCase:
    reason = entry.get("not_applicable")
    if isinstance(reason, str):
        return PeerCase(not_applicable=reason)
    daemons = entry.get("daemons")
    if not isinstance(daemons, list):
        raise ConfigError(f"{where}: give daemons = [...] or not_applicable = \"why\"")
    specs = tuple(parse_daemon(_daemon_entry(d, base), f"{where} daemon {n}", base)
                  for n, d in enumerate(daemons, 1))
    check_daemons(specs, where)
    return PeerCase(daemons=specs)


def _daemon_entry(entry: Mapping[str, object], base: Path) -> dict[str, object]:
    """A lab file's [[daemon]] table; ``settings`` (tftpd-hpa) read from its file."""
    entry = dict(entry)
    settings = entry.pop("settings", None)
    if isinstance(settings, str):
        entry.update(read_tftpd_defaults(base / settings))
    return entry


def read_tftpd_defaults(path: Path) -> dict[str, str]:
    """directory, address and options from a file in /etc/default/tftpd-hpa's form."""
    values = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        words = shlex.split(line, comments=True)
        if not words:
            continue
        key, _, value = words[0].partition("=")
        if key in TFTPD_SETTINGS:
            values[TFTPD_SETTINGS[key]] = value
    return values


def stack_server(specs: tuple[DaemonSpec, ...], scenario: Scenario,
                 artifacts: Path) -> ServerFactory:
    """A BootRun server factory that runs ``specs`` in the lab, daemon logs under
    ``artifacts/daemons/``."""
    def start(net: LabNetwork, data_root: Path, events: EventLog
              ) -> AbstractContextManager[object]:
        del events  # the daemons record none: the evidence comes from the capture
        values = lab_values(net.ipv4, net.ipv6, scenario.ip, interface=net.bridge,
                            data_root=data_root.resolve(), nfs_source="",
                            mac=scenario.guest.mac, append="")
        return DaemonStack(specs, values, net.namespace, artifacts)
    return start
