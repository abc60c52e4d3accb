"""The firmware's fixed waits: the table, which cases have which, and the bench's limit.

A case's physical limit is its direct boot plus the fixed waits of its firmware on its
path (pxelab/data/firmware/fixed-waits.toml, Scenario.fixed_waits); bench/matrix_bench.py
computes it per firmware set.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

from pxelab.core.errors import ConfigError
from pxelab.machine.fixed_waits import load_table, on_path, table
from pxelab.machine.fwsets import FirmwareSet, UserFile
from pxelab.machine.ipxerom import RomKind
from pxelab.scenarios import matrix
from pxelab.scenarios.cases import SCENARIOS

pytestmark = pytest.mark.unit

REPO = Path(__file__).resolve().parents[2]
# The OVMF of each Debian firmware set (pxelab.machine.fwsets) and the EDK2 release behind it.
DEBIAN_OVMF = {"2022.11-6+deb12u2": "edk2-stable202211", "2025.02-8+deb13u1": "edk2-stable202502",
               "2026.08+ds-2": "edk2-stable202608"}


def bench() -> ModuleType:
    spec = importlib.util.spec_from_file_location("matrix_bench", REPO / "bench/matrix_bench.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("matrix_bench", module)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize(("version", "tag"), DEBIAN_OVMF.items())
def test_each_debian_ovmf_has_its_edk2_release(version: str, tag: str) -> None:
    release = table().release_of(version)
    assert release is not None and release.tag == tag
    for wait in release.waits.values():
        assert wait.seconds > 0 and wait.what
        assert all(":" in cite and cite.startswith("NetworkPkg/") for cite in wait.cite)


def test_every_wait_a_case_names_is_in_every_release() -> None:
    named = {name for case in matrix.cases() for name in case.fixed_waits}
    named |= {name for s in SCENARIOS.values() if s.snp_only for name in s.snp_only.fixed_waits}
    assert named == {"pxe4-offers", "default-address-offers", "http4-offers"}
    for release in table().releases.values():
        assert named <= set(release.waits), release.tag


@pytest.mark.parametrize("version", DEBIAN_OVMF)
def test_uefi_tftp_ipv4_waits_two_dhcp4_offer_windows(version: str) -> None:
    waits = on_path(SCENARIOS["uefi_tftp_ipv4"].fixed_waits, version)
    assert waits.seconds == 8.0
    assert [w.name for w in waits.waits] == ["pxe4-offers", "default-address-offers"]


def test_which_cases_have_fixed_waits() -> None:
    waits = {case.name: case.fixed_waits for case in matrix.cases() if case.fixed_waits}
    assert waits == {"uefi_tftp_ipv4": ("pxe4-offers", "default-address-offers"),
                     "uefi_http_ipv4": ("http4-offers",), "uefi_http_ipv6": ("http4-offers",),
                     "uefi_tftp_ipv4_secureboot": ("pxe4-offers",),
                     "uefi_http_ipv4_secureboot": ("http4-offers",),
                     "uefi_http_ipv6_secureboot": ("http4-offers",)}
    # An iPXE ROM whose EFI driver is SNP only: OVMF's PXEv4 chain-loads iPXE first.
    ipxe = SCENARIOS["uefi_ipxe_ipv4"]
    assert ipxe.on_rom(RomKind.IPXE).fixed_waits == ()
    assert ipxe.on_rom(RomKind.SNP_ONLY).fixed_waits == ("pxe4-offers",)


def test_a_path_without_waits_or_with_an_unknown_ovmf() -> None:
    assert on_path((), "whatever").seconds == 0.0
    unknown = on_path(("pxe4-offers",), "2031.05-1")
    assert unknown.seconds is None and unknown.waits == ()
    assert "OVMF 2031.05-1" in unknown.problem and "2025.02" in unknown.problem
    with pytest.raises(ConfigError, match="no fixed wait 'tftp-offers'"):
        on_path(("tftp-offers",), "2025.02-8+deb13u1")


@pytest.mark.parametrize(("text", "error"), [
    ('["2025"]\nread_at = "r"\nnote = ""', "key it by the EDK2 release as YYYY.MM"),
    ('["2025.2"]\nread_at = "r"\nnote = ""', "key it by the EDK2 release as YYYY.MM"),
    ('["2025.02"]\nnote = ""', "missing keys \\['read_at'\\]"),
    ('["2025.02"]\nread_at = "r"\nnote = ""\ntag = "t"', "unknown keys \\['tag'\\]"),
    ('["2025.02"]\nread_at = "r"\nnote = ""\n["2025.02".w]\nseconds = -1\n'
     'what = ""\ncite = ["f:1 F: x"]', "seconds must be a number >= 0"),
    ('["2025.02"]\nread_at = "r"\nnote = ""\n["2025.02".w]\nseconds = 4\n'
     'what = ""\ncite = []', "cite must list where the source says so"),
])
def test_a_wrong_table_says_what_is_wrong(tmp_path: Path, text: str, error: str) -> None:
    path = tmp_path / "waits.toml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=error):
        load_table(path)


def _set(ovmf: str, files: dict[str, UserFile] | None = None) -> FirmwareSet:
    return FirmwareSet("trixie", "Debian trixie", Path("/nonexistent"),
                       packages={"ovmf": ovmf}, files=files or {})


def test_the_bench_limit_is_the_direct_boot_plus_the_waits_of_the_sets_ovmf() -> None:
    limit = bench().physical_limit(SCENARIOS["uefi_tftp_ipv4"], _set("2025.02-8+deb13u1"), 9.5)
    assert limit == {"fixed_waits": {"pxe4-offers": 4.0, "default-address-offers": 4.0},
                     "edk2": "edk2-stable202502", "limit_userspace": 17.5, "limit_unknown": ""}
    legacy = bench().physical_limit(SCENARIOS["legacy_pxe_ipv4"], _set("whatever"), 4.5)
    assert legacy["limit_userspace"] == 4.5 and legacy["fixed_waits"] == {}


def test_the_bench_limit_of_a_users_own_ovmf_is_unknown(tmp_path: Path) -> None:
    own = {name: UserFile(tmp_path / name, "edk2 ci 42") for name in ("ovmf-code", "ovmf-vars")}
    limit = bench().physical_limit(SCENARIOS["uefi_http_ipv4"], _set("2025.02-8", own), 9.0)
    assert limit["limit_userspace"] is None and limit["fixed_waits"] == {"http4-offers": None}
    assert "edk2 ci 42" in limit["limit_unknown"]


def test_the_bench_reports_every_case_on_every_set() -> None:
    module = bench()
    row = {"case": "uefi_tftp_ipv4", "firmware_set": "trixie", "ratio": 2.2,
           "limit_ratio": 1.19, "fixed_waits": {"pxe4-offers": 4.0}}
    plain = {"case": "legacy_pxe_ipv4", "firmware_set": "trixie", "ratio": 2.1,
             "limit_ratio": 2.1, "fixed_waits": {}}
    sets = [{"name": name, "reference": name} for name in ("bookworm", "trixie")]
    text = module.report_sets(sets, [row, plain])
    assert "| `legacy_pxe_ipv4` | - | **2.10x >2x** |" in text
    assert "| `uefi_tftp_ipv4` | - | 2.20x (1.19x) |" in text
