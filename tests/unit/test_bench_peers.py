"""The boot benchmark's peer stacks (bench/peers/stacks.toml): complete and renderable.

Every scenario is either served by each stack or listed with the reason it is not,
and every configuration file renders with a lab's values, so a typo shows here and
not twenty minutes into a benchmark run.
"""

from __future__ import annotations

import importlib.util
import sys
from ipaddress import IPv4Interface, IPv6Interface
from pathlib import Path
from types import ModuleType

import pytest

from pxelab.daemons.stack import make_daemon
from pxelab.labfile.dataroot import lab_values
from pxelab.scenarios.cases import SCENARIOS, IpVersion

pytestmark = pytest.mark.unit

REPO = Path(__file__).resolve().parents[2]


def peer_stacks() -> ModuleType:
    spec = importlib.util.spec_from_file_location("peer_stacks", REPO / "bench/peer_stacks.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("peer_stacks", module)
    spec.loader.exec_module(module)
    return module


def test_every_stack_serves_or_excuses_every_scenario() -> None:
    stacks = peer_stacks().load_stacks()
    assert set(stacks) == {"dnsmasq", "isc"}
    for stack in stacks.values():
        for name in SCENARIOS:
            case = stack.case(name)
            assert bool(case.daemons) != bool(case.not_applicable), (stack.name, name)
            assert "no configuration" not in case.not_applicable, (stack.name, name)


def test_every_configuration_renders_with_the_lab_values(tmp_path: Path) -> None:
    values = lab_values(IPv4Interface("192.0.2.1/24"), IPv6Interface("2001:db8::1/64"),
                        IpVersion.IPV6, interface="br0", data_root=tmp_path / "data",
                        nfs_source="", mac="52:54:00:12:34:56", append="")
    for stack in peer_stacks().load_stacks().values():
        for case in stack.cases.values():
            for spec in case.daemons:
                daemon = make_daemon(spec, values, None, tmp_path)
                assert "{{" not in daemon.rendered, spec.where
                assert daemon.ports(), spec.where


def test_tftpd_settings_come_from_the_default_file(tmp_path: Path) -> None:
    defaults = tmp_path / "tftpd-hpa"
    defaults.write_text('# comment\nTFTP_USERNAME="tftp"\nTFTP_DIRECTORY="/srv/tftp"\n'
                        'TFTP_ADDRESS=":69"\nTFTP_OPTIONS="--secure -v"\n')
    assert peer_stacks().read_tftpd_defaults(defaults) == {
        "directory": "/srv/tftp", "address": ":69", "options": "--secure -v"}
