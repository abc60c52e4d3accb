"""The scenario matrix: NIC variants, names and marks that compose, narrowing options."""

from __future__ import annotations

from dataclasses import replace

import pytest

from pxelab.core.errors import ConfigError
from pxelab.machine.payload import PayloadSpec
from pxelab.machine.payload.nics import NICS, payload_for_nic
from pxelab.machine.qemu import Firmware, GuestSpec
from pxelab.scenarios import matrix
from pxelab.scenarios import milestones as ms
from pxelab.scenarios.cases import SCENARIOS, BootLoader, BootMode, IpVersion, Scenario

pytestmark = pytest.mark.unit

pytest_plugins = ["pytester"]


def scenario(name: str, mode: BootMode, ip: IpVersion, firmware: Firmware,
             variants: tuple[str, ...] = ()) -> Scenario:
    return Scenario(name=name, description=name, guest=GuestSpec(firmware=firmware),
                    loader=BootLoader.PXELINUX, milestones=ms.SEABIOS, mode=mode, ip=ip,
                    nic_variants=variants)


# A matrix shaped like the issue's, independent of what SCENARIOS holds today.
FAKE = {s.name: s for s in (
    scenario("legacy_pxe_ipv4", BootMode.LEGACY_PXE, IpVersion.IPV4, Firmware.SEABIOS,
             ("e1000", "rtl8139")),
    scenario("legacy_pxe_ipv6", BootMode.LEGACY_PXE, IpVersion.IPV6, Firmware.SEABIOS),
    scenario("legacy_http_ipv4", BootMode.LEGACY_HTTP, IpVersion.IPV4, Firmware.SEABIOS),
    scenario("uefi_tftp_ipv4", BootMode.UEFI_TFTP, IpVersion.IPV4, Firmware.OVMF),
    scenario("uefi_http_ipv4", BootMode.UEFI_HTTP, IpVersion.IPV4, Firmware.OVMF),
    scenario("uefi_http_ipv6", BootMode.UEFI_HTTP, IpVersion.IPV6, Firmware.OVMF),
    scenario("uefi_ipxe_ipv4", BootMode.UEFI_IPXE, IpVersion.IPV4, Firmware.OVMF, ("e1000",)),
)}


def test_cases_expand_nic_variants_sorted() -> None:
    names = [c.name for c in matrix.cases(FAKE)]
    assert names == sorted(names)
    assert {"legacy_pxe_ipv4", "legacy_pxe_ipv4[e1000]", "legacy_pxe_ipv4[rtl8139]",
            "uefi_ipxe_ipv4[e1000]"} <= set(names)
    assert len(names) == len(FAKE) + 3


def test_every_scenario_on_main_is_in_the_matrix() -> None:
    names = {c.name for c in matrix.cases()}
    assert set(SCENARIOS) <= names
    assert {c.base_name for c in matrix.cases()} == set(SCENARIOS)


def test_with_nic_changes_driver_kernel_rom_and_name() -> None:
    base = FAKE["legacy_pxe_ipv4"]
    e1000 = base.with_nic("e1000")
    assert e1000.name == "legacy_pxe_ipv4[e1000]" and e1000.base_name == "legacy_pxe_ipv4"
    assert e1000.nic_model == "e1000" and e1000.guest.mac == base.guest.mac
    assert e1000.payload == PayloadSpec(kernel_flavour="amd64", nic_modules=("e1000",))
    assert "rom-e1000" in e1000.firmware and "rom-virtio" not in e1000.firmware
    assert e1000.nic_variants == () and e1000.milestones == base.milestones
    assert e1000.keywords == base.keywords
    assert base.with_nic("virtio-net-pci") is base
    assert base.with_nic("rtl8139").payload.nic_modules == ("8139cp",)


def test_with_nic_no_rom_when_the_firmware_drives_the_nic() -> None:
    native = replace(FAKE["uefi_http_ipv4"], firmware=("ovmf-code", "qemu"),
                     guest=GuestSpec(firmware=Firmware.OVMF, nic_romfile=""))
    assert native.with_nic("e1000").firmware == ("ovmf-code", "qemu")


def test_with_nic_unknown_model() -> None:
    with pytest.raises(ConfigError, match="e1000, rtl8139, virtio-net-pci"):
        FAKE["legacy_pxe_ipv4"].with_nic("ne2k_pci")


def test_payload_for_nic_keeps_a_flavour_that_has_the_driver() -> None:
    assert payload_for_nic(PayloadSpec(), "virtio-net-pci") == PayloadSpec()
    amd64 = PayloadSpec(kernel_flavour="amd64")
    assert payload_for_nic(amd64, "virtio-net-pci").kernel_flavour == "amd64"
    assert payload_for_nic(PayloadSpec(), "e1000").kernel_flavour == "amd64"
    assert all(n.rom.startswith("rom-") for n in NICS.values())


def test_find_case() -> None:
    assert matrix.find_case("legacy_pxe_ipv4").name == "legacy_pxe_ipv4"
    assert matrix.find_case("legacy_pxe_ipv4[e1000]").nic_model == "e1000"
    assert matrix.find_case("legacy_pxe_ipv4", "rtl8139").name == "legacy_pxe_ipv4[rtl8139]"
    assert matrix.find_case("legacy_pxe_ipv4[e1000]", "e1000").nic_model == "e1000"
    with pytest.raises(ConfigError, match="names NIC e1000"):
        matrix.find_case("legacy_pxe_ipv4[e1000]", "rtl8139")
    for bad in ("legacy_pxe_ipv4[e1000", "legacy_pxe_ipv4[]"):
        with pytest.raises(ConfigError, match="SCENARIO"):
            matrix.find_case(bad)
    with pytest.raises(ConfigError, match="unknown scenario"):
        matrix.find_case("nope[e1000]")


def test_selection() -> None:
    cases = matrix.cases(FAKE)
    everything = matrix.Selection.parse()
    assert all(everything.accepts(c) for c in cases) and str(everything) == "everything"
    only = matrix.Selection.parse(" virtio-net-pci , e1000", "ovmf")
    assert [c.name for c in cases if only.accepts(c)] == [
        "uefi_http_ipv4", "uefi_http_ipv6", "uefi_ipxe_ipv4", "uefi_ipxe_ipv4[e1000]",
        "uefi_tftp_ipv4"]
    assert str(only) == "NIC e1000,virtio-net-pci; firmware ovmf"
    with pytest.raises(ConfigError, match="known"):
        matrix.Selection.parse("tulip")
    with pytest.raises(ConfigError, match="seabios, ovmf"):
        matrix.Selection.parse(firmware="coreboot")
    with pytest.raises(ConfigError, match="selects nothing"):
        matrix.Selection.parse(",")


def test_every_keyword_is_a_mark() -> None:
    for case in matrix.cases(FAKE):
        assert set(case.keywords) <= set(matrix.MARKS)


# --- the pytest plugin: ids, marks and options over a fake matrix ----------------

TEST_FILE = """
def test_case(pxelab_scenario):
    assert pxelab_scenario.name
"""


@pytest.fixture
def fake_matrix(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> pytest.Pytester:
    original = matrix.cases
    monkeypatch.setattr(matrix, "cases", lambda scenarios=None: original(scenarios or FAKE))
    pytester.makepyfile(test_fake=TEST_FILE)
    return pytester


def selected(pytester: pytest.Pytester, *args: str) -> set[str]:
    result = pytester.inline_run("--collect-only", "-p", "no:cacheprovider",
                                 "--strict-markers", *args)
    items = result.getcalls("pytest_collection_finish")[0].session.items
    return {item.callspec.id for item in items}


@pytest.mark.parametrize(("args", "expected"), [
    (("-k", "uefi"), {"uefi_tftp_ipv4", "uefi_http_ipv4", "uefi_http_ipv6", "uefi_ipxe_ipv4",
                      "uefi_ipxe_ipv4[e1000]"}),
    (("-k", "ipv6"), {"legacy_pxe_ipv6", "uefi_http_ipv6"}),
    (("-k", "http and not legacy"), {"uefi_http_ipv4", "uefi_http_ipv6"}),
    (("-k", "uefi_http_ipv6"), {"uefi_http_ipv6"}),
    (("-k", "legacy_pxe_ipv4[e1000]"), {"legacy_pxe_ipv4[e1000]"}),
    (("-m", "ovmf and ipv4 and not ipxe"), {"uefi_tftp_ipv4", "uefi_http_ipv4"}),
    (("-m", "pxe"), {"legacy_pxe_ipv4", "legacy_pxe_ipv4[e1000]", "legacy_pxe_ipv4[rtl8139]",
                     "legacy_pxe_ipv6"}),
    (("--pxelab-nic", "e1000"), {"legacy_pxe_ipv4[e1000]", "uefi_ipxe_ipv4[e1000]"}),
    (("--pxelab-nic", "e1000", "--pxelab-firmware", "seabios"), {"legacy_pxe_ipv4[e1000]"}),
])
def test_plugin_selects_what_users_expect(fake_matrix: pytest.Pytester, args: tuple[str, ...],
                                          expected: set[str]) -> None:
    assert selected(fake_matrix, *args) == expected


def test_plugin_rejects_unknown_nic(fake_matrix: pytest.Pytester) -> None:
    result = fake_matrix.runpytest_inprocess("--collect-only", "--pxelab-nic", "tulip")
    result.stderr.fnmatch_lines(["*no guest driver known for NIC model 'tulip'*"])
    assert result.ret == pytest.ExitCode.USAGE_ERROR
