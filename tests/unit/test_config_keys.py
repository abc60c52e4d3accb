"""The one table of lab-file keys drives the reader and the key list in the README."""

from __future__ import annotations

from pathlib import Path

import pytest

from pxelab.core.errors import ConfigError
from pxelab.server import config_keys
from pxelab.server.config import lab_config
from pxelab.server.config_keys import FAULT_KEYS, LAB_TABLES, keys_of

pytestmark = pytest.mark.unit

README = Path(__file__).parents[2] / "fixtures" / "labs" / "README.md"
SERVER = {"interface": "eth0", "ipv4": "192.0.2.1/24", "ipv6": False, "data_root": "/srv"}


def test_the_readme_lists_the_keys_of_the_table() -> None:
    text = README.read_text(encoding="utf-8")
    assert config_keys.with_table(text) == text, (
        "fixtures/labs/README.md is out of date with pxelab/server/config_keys.py; run "
        "`python -m pxelab.server.config_keys fixtures/labs/README.md`")


def test_without_markers_the_readme_cannot_be_made() -> None:
    with pytest.raises(ValueError, match="markers"):
        config_keys.with_table("no markers here\n")


@pytest.mark.parametrize("table", [t for t in LAB_TABLES if not t.array],
                         ids=lambda t: t.name)
def test_a_key_outside_the_table_is_refused_naming_the_tables_keys(
        table: config_keys.LabTable) -> None:
    data: dict[str, object] = {"server": SERVER, table.name: {"no_such_key": 1}}
    if table.name == "server":
        data["server"] = SERVER | {"no_such_key": 1}
    with pytest.raises(ConfigError, match=rf"{table.name}\.no_such_key: unknown key.*"
                                          rf"the keys of {table.name} are: .*"
                                          rf"{sorted(table.names)[0]}"):
        lab_config(data)


@pytest.mark.parametrize("kind", list(FAULT_KEYS))
def test_each_fault_type_takes_the_keys_of_the_table(kind: str) -> None:
    data = {"server": SERVER, "fault": [{"type": kind, "no_such_key": 1}]}
    with pytest.raises(ConfigError, match=r"fault\[0\]\.no_such_key: unknown key"):
        lab_config(data)
    assert keys_of(f"fault.{kind}")[0] == "type"


def test_rule_and_host_keys_come_from_the_table() -> None:
    for name, bad in (("rule", {"bootfile": "x"}), ("host", {"mac": "52:54:00:12:34:56",
                                                            "adress": "192.0.2.9"})):
        with pytest.raises(ConfigError, match=rf"{name}\[0\]\.\w+: unknown key"):
            lab_config({"server": SERVER, name: [bad]})
    assert "address" in keys_of("host") and "arch" in keys_of("rule")
