"""A lab file's [[guest]] keys that change the machine: mac, and the legacy ROM's first file."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from pxelab.core.errors import ConfigError
from pxelab.labfile.expand import ROM_FIRST_FILE, lab_cases
from pxelab.labfile.parse import load_lab_file

pytestmark = pytest.mark.unit

LAB = """
[[guest]]
mode = "legacy_pxe"
nic_models = ["virtio-net-pci"]
{mac}

[success]
console = "login:"
"""


def _lab(tmp_path: Path, mac: str = "") -> Path:
    path = tmp_path / "t.pxelab.toml"
    path.write_text(LAB.format(mac=mac), encoding="utf-8")
    return path


def test_guest_mac_reaches_the_machine(tmp_path: Path) -> None:
    (case,) = lab_cases(load_lab_file(_lab(tmp_path, 'mac = "52:54:00:00:06:01"')))
    assert case.guest.mac == "52:54:00:00:06:01"


def test_guest_without_mac_keeps_the_builtin_one(tmp_path: Path) -> None:
    (case,) = lab_cases(load_lab_file(_lab(tmp_path)))
    assert case.guest.mac == "52:54:00:12:34:56"


def test_bad_mac_names_key_and_form(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"guest\[1\]\.mac.*six lower-case hex pairs"):
        load_lab_file(_lab(tmp_path, 'mac = "52-54-00-00-06-01"'))


@pytest.mark.parametrize("line", ["pxelinux.0 : 42430 bytes [PXE-NBP]",
                                  "script.ipxe : 1354 bytes [script]"])
def test_legacy_rom_first_file_is_an_nbp_or_a_script(line: str) -> None:
    assert re.search(ROM_FIRST_FILE.pattern, line)
