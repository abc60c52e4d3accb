"""Scenarios' server and policy overrides: checked when defined, never mutated."""

from __future__ import annotations

import dataclasses
import pickle

import pytest

from pxelab.core.errors import ConfigError
from pxelab.machine.qemu import GuestSpec
from pxelab.scenarios.cases import (
    SCENARIOS,
    BootLoader,
    PolicyOverrides,
    Scenario,
    ServerOverrides,
)
from pxelab.server.bootserver import Dhcp4Config, Dhcp4Mode, RaConfig, ServerConfig
from pxelab.server.policy import RulePolicy

pytestmark = pytest.mark.unit


def scenario(**changes: object) -> Scenario:
    return Scenario(name="legacy_pxe_ipv4_test", description="test", guest=GuestSpec(),
                    loader=BootLoader.PXELINUX, milestones=(), **changes)  # type: ignore[arg-type]


def test_a_misspelt_server_key_is_an_error_when_the_scenario_is_defined() -> None:
    with pytest.raises(ConfigError, match=r"'dchp4' is not a ServerConfig field; "
                                          r"did you mean 'dhcp4'\?.*valid keys: .*dhcp6"):
        scenario(server=ServerOverrides(dchp4=Dhcp4Config()))


def test_a_misspelt_policy_key_is_an_error_naming_the_valid_ones() -> None:
    with pytest.raises(ConfigError, match=r"'min_sec' is not a RulePolicy field.*min_secs"):
        PolicyOverrides(min_sec=2)


@pytest.mark.parametrize(("key", "value"), [("ra", {"managed": True}), ("tftp", False),
                                            ("dhcp4", RaConfig()), ("lease_seconds", True),
                                            ("lease_seconds", 60.0), ("ready_timeout", "1")])
def test_a_value_of_the_wrong_type_is_an_error(key: str, value: object) -> None:
    with pytest.raises(ConfigError, match=rf"{key}=.*ServerConfig\.{key} takes"):
        ServerOverrides(**{key: value})


def test_values_of_the_right_type_pass() -> None:
    overrides = ServerOverrides(ready_timeout=2, dhcp4=Dhcp4Config(mode=Dhcp4Mode.PROXY),
                                ra=RaConfig(interval=2))
    assert overrides["ra"].interval == 2 and len(overrides) == 3


@pytest.mark.parametrize("key", ["interface", "ipv4", "ipv6", "data_root"])
def test_where_the_lab_serves_is_not_overridable(key: str) -> None:
    with pytest.raises(ConfigError, match=rf"'{key}' is set by the lab itself"):
        ServerOverrides(**{key: None})
    with pytest.raises(ConfigError, match="'rules' is set by the lab itself"):
        PolicyOverrides(rules=())


def test_a_plain_dict_is_refused() -> None:
    with pytest.raises(ConfigError, match="server must be a ServerOverrides"):
        scenario(server={"ra": RaConfig(managed=True)})


def test_the_scenario_and_its_overrides_cannot_be_mutated() -> None:
    case = scenario(server=ServerOverrides(ra=RaConfig(managed=True)),
                    policy_options=PolicyOverrides(min_secs=2))
    with pytest.raises(TypeError):
        case.server["ra"] = RaConfig()  # type: ignore[index]
    with pytest.raises(AttributeError):
        case.server._values = {}  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        case.server = ServerOverrides()  # type: ignore[misc]
    assert case.server == {"ra": RaConfig(managed=True)}
    assert hash(case) == hash(scenario(server=ServerOverrides(ra=RaConfig(managed=True)),
                                       policy_options=PolicyOverrides(min_secs=2)))


def test_changed_copies_leave_the_original_alone() -> None:
    base = PolicyOverrides(min_secs=2, no_proxy_wait=False)
    assert base.with_values(min_secs=5) == {"min_secs": 5, "no_proxy_wait": False}
    assert base.without("min_secs") == {"no_proxy_wait": False}
    assert base == {"min_secs": 2, "no_proxy_wait": False}
    assert pickle.loads(pickle.dumps(base)) == base


def test_every_scenario_builds_its_settings() -> None:
    for case in SCENARIOS.values():
        ServerConfig(**case.server)
        assert isinstance(case.policy(), RulePolicy)
