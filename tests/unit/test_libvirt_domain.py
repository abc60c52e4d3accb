"""The libvirt domain XML of every built-in scenario, checked against libvirt's schema."""

from __future__ import annotations

import os
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from pxelab.core.errors import ConfigError, HostCapabilityError
from pxelab.machine.backend import Backend, GuestBackend
from pxelab.machine.fwsets import HOST, FirmwareSet, load_firmware_set
from pxelab.machine.libvirt.connection import domain_name, open_connection, process_start
from pxelab.machine.libvirt.domain import (
    QEMU_NS,
    DomainFiles,
    Owner,
    domain_xml,
    owner_of,
)
from pxelab.machine.nvram import IP6_CONFIG_GUID, read_variables
from pxelab.machine.qemu import Accel, Firmware, GuestSpec, write_guest_vars
from pxelab.scenarios import matrix
from pxelab.scenarios.cases import SCENARIOS, for_firmware_set, reproduce_command

pytestmark = pytest.mark.unit

FILES = DomainFiles(nvram=Path("/var/lib/libvirt/qemu/nvram/pxelab-t_VARS.fd"),
                    debug_fifo=Path("/tmp/boot/ovmf-debug.fifo"),
                    console=Path("/run/pxelab-libvirt/pxelab-t.console"))
OWNER = Owner(pid=4242, start_ticks=123456)


@pytest.fixture(scope="module")
def host_set() -> FirmwareSet:
    return load_firmware_set(HOST)


def _xml(spec: GuestSpec, **kwargs: object) -> ET.Element:
    text = domain_xml(spec, name="pxelab-t", bridge="pxhabc", accel=Accel.TCG, files=FILES,
                      owner=OWNER, **kwargs)  # type: ignore[arg-type]
    return ET.fromstring(text)


def _qemu_args(root: ET.Element) -> list[str]:
    return [arg.get("value", "") for arg in root.iter(f"{{{QEMU_NS}}}arg")]


@pytest.mark.pxelab_requires(tools=["virt-xml-validate"], hint="apt-get install libvirt-clients")
@pytest.mark.parametrize("name", [case.name for case in matrix.cases()])
def test_every_scenario_validates_against_libvirts_schema(
        name: str, host_set: FirmwareSet, tmp_path: Path) -> None:
    """Every built-in case (SCENARIOS and their NIC variants) as it boots on the host set."""
    spec = for_firmware_set(matrix.find_case(name), host_set).guest
    path = tmp_path / "domain.xml"
    path.write_text(domain_xml(spec, name="pxelab-t", bridge="pxhabc", accel=Accel.TCG,
                               files=FILES, owner=OWNER))
    checked = subprocess.run(["virt-xml-validate", str(path), "domain"], capture_output=True,
                             text=True, check=False)
    assert checked.returncode == 0, checked.stderr + checked.stdout


def test_seabios_domain(host_set: FirmwareSet) -> None:
    spec = for_firmware_set(SCENARIOS["legacy_pxe_ipv4"], host_set).guest
    root = _xml(spec)
    assert root.get("type") == "qemu"
    assert root.findtext("os/type") == "hvm"
    assert root.find("os/type").get("machine") == "pc"  # type: ignore[union-attr]
    loader = root.find("os/loader")
    assert loader is not None and loader.get("type") == "rom"
    assert loader.text == str(spec.bios)
    assert root.find("os/bios").get("useserial") == "yes"  # type: ignore[union-attr]
    assert root.find("os/nvram") is None
    interface = root.find("devices/interface")
    assert interface is not None and interface.get("type") == "bridge"
    assert interface.find("source").get("bridge") == "pxhabc"  # type: ignore[union-attr]
    assert interface.find("mac").get("address") == spec.mac  # type: ignore[union-attr]
    assert interface.find("model").get("type") == "virtio-non-transitional"  # type: ignore[union-attr]
    assert interface.find("rom").get("file") == str(spec.nic_rom)  # type: ignore[union-attr]
    assert interface.find("boot").get("order") == "1"  # type: ignore[union-attr]
    assert root.find("devices/rng/backend").get("model") == "builtin"  # type: ignore[union-attr]
    assert root.find("devices/serial").get("type") == "unix"  # type: ignore[union-attr]
    assert root.find("features/acpi") is not None
    assert root.find("features/smm") is None
    assert _qemu_args(root) == []  # no debug port on SeaBIOS
    assert [root.findtext(e) for e in ("on_poweroff", "on_reboot")] == ["destroy"] * 2


def test_ovmf_domain_has_nvram_fw_cfg_and_debug_port(host_set: FirmwareSet) -> None:
    spec = for_firmware_set(SCENARIOS["uefi_http_ipv6"], host_set).guest
    root = _xml(spec)
    assert spec.ovmf is not None
    loader = root.find("os/loader")
    assert loader is not None and loader.text == str(spec.ovmf.code)
    assert (loader.get("type"), loader.get("readonly"), loader.get("secure")) == \
        ("pflash", "yes", "no")
    assert root.findtext("os/nvram") == str(FILES.nvram)
    assert root.find("sysinfo").get("type") == "fwcfg"  # type: ignore[union-attr]
    entries = {e.get("name"): e.text for e in root.iterfind("sysinfo/entry")}
    assert entries == dict(spec.fw_cfg)
    assert root.find("devices/interface/rom").get("enabled") == "no"  # type: ignore[union-attr]
    assert _qemu_args(root) == [
        "-chardev", f"file,id=ovmfdebug,path={FILES.debug_fifo}",
        "-device", "isa-debugcon,iobase=0x402,chardev=ovmfdebug"]


def test_secure_boot_domain_has_smm_and_a_secure_loader(host_set: FirmwareSet) -> None:
    spec = for_firmware_set(SCENARIOS["uefi_tftp_ipv4_secureboot"], host_set).guest
    assert spec.secure_boot and spec.ovmf is not None
    root = _xml(spec)
    loader = root.find("os/loader")
    assert loader is not None and loader.get("secure") == "yes"
    assert loader.text == str(spec.ovmf.code)
    assert root.find("features/smm").get("state") == "on"  # type: ignore[union-attr]


def test_secure_boot_nvram_is_the_sets_vars_template(host_set: FirmwareSet,
                                                     tmp_path: Path) -> None:
    spec = for_firmware_set(SCENARIOS["uefi_tftp_ipv4_secureboot"], host_set).guest
    assert spec.ovmf is not None
    write_guest_vars(spec, spec.ovmf, tmp_path / "vars.fd")
    assert (tmp_path / "vars.fd").read_bytes() == spec.ovmf.vars_template.read_bytes()


def test_nvram_carries_pxelabs_ip6_settings(host_set: FirmwareSet, tmp_path: Path) -> None:
    spec = for_firmware_set(SCENARIOS["uefi_http_ipv6"], host_set).guest
    assert spec.ovmf is not None and spec.ip6_settings is not None
    write_guest_vars(spec, spec.ovmf, tmp_path / "vars.fd")
    names = {(v.name, v.guid) for v in read_variables(tmp_path / "vars.fd")}
    assert ("525400123456", IP6_CONFIG_GUID) in names


def test_other_nic_models_rom_files_and_boot_menu() -> None:
    spec = GuestSpec(nic_model="e1000", nic_romfile="/roms/own.rom", boot_menu_wait_ms=2500,
                     rng=False, extra_args=("-device", "x"))
    root = _xml(spec)
    assert root.find("devices/interface/model").get("type") == "e1000"  # type: ignore[union-attr]
    assert root.find("devices/interface/rom").get("file") == "/roms/own.rom"  # type: ignore[union-attr]
    assert root.find("os/bootmenu").attrib == {"enable": "yes", "timeout": "2500"}  # type: ignore[union-attr]
    assert root.find("devices/rng") is None
    assert _qemu_args(root) == ["-device", "x"]
    with pytest.raises(ConfigError, match="NIC model"):
        _xml(GuestSpec(nic_model="ne2k_pci"))


def test_direct_kernel_boot_has_no_network_boot_order() -> None:
    spec = GuestSpec(kernel=Path("/k"), initrd=Path("/i"), append="console=ttyS0")
    root = _xml(spec)
    assert [root.findtext(f"os/{e}") for e in ("kernel", "initrd", "cmdline")] == \
        ["/k", "/i", "console=ttyS0"]
    assert root.find("devices/interface/boot") is None


def test_kvm_domain_type_and_refusals() -> None:
    root = ET.fromstring(domain_xml(GuestSpec(), name="pxelab-k", bridge="b", accel=Accel.KVM,
                                    files=DomainFiles()))
    assert root.get("type") == "kvm"
    with pytest.raises(ConfigError, match="resolved accelerator"):
        domain_xml(GuestSpec(), name="pxelab-k", bridge="b", accel=Accel.AUTO,
                   files=DomainFiles())
    with pytest.raises(ConfigError, match="must start with"):
        domain_xml(GuestSpec(), name="mine", bridge="b", accel=Accel.TCG, files=DomainFiles())
    with pytest.raises(ConfigError, match="NVRAM"):
        domain_xml(GuestSpec(firmware=Firmware.OVMF), name="pxelab-k", bridge="b",
                   accel=Accel.TCG, files=DomainFiles())


def test_owner_round_trip_and_console_socket(tmp_path: Path) -> None:
    socket = tmp_path / "pxelab-t.console"
    text = domain_xml(GuestSpec(), name="pxelab-t", bridge="b", accel=Accel.TCG,
                      files=DomainFiles(console=socket), owner=OWNER)
    assert owner_of(text) == OWNER
    assert owner_of("<domain><name>x</name></domain>") is None
    assert owner_of("not xml") is None
    serial = ET.fromstring(text).find("devices/serial")
    assert serial is not None and serial.get("type") == "unix"
    assert serial.find("source").attrib == {"mode": "bind", "path": str(socket)}  # type: ignore[union-attr]


def test_process_start_and_domain_name() -> None:
    assert process_start(os.getpid()) is not None
    assert process_start(2**22 + 1) is None
    assert domain_name("pxl-m-10-0") == "pxelab-pxl-m-10-0"


def test_reproduce_command_of_a_libvirt_boot() -> None:
    case = SCENARIOS["legacy_pxe_ipv4"]
    plain = reproduce_command(case, "out")
    assert "--backend" not in plain
    command = reproduce_command(case, "out", GuestBackend(Backend.LIBVIRT), Path("/a/b"))
    assert "--backend libvirt --artifacts out" in command
    assert "virsh -c qemu:///system create /a/b/domain.xml --console" in command
    other = reproduce_command(case, "out", GuestBackend(Backend.LIBVIRT, "qemu+ssh://h/system"))
    assert "--libvirt-uri qemu+ssh://h/system" in other


def test_an_unreachable_libvirtd_is_a_missing_capability_naming_the_uri() -> None:
    pytest.importorskip("libvirt", reason="the libvirt extra is not installed")
    uri = "qemu+unix:///system?socket=/nonexistent/libvirt-sock"
    with pytest.raises(HostCapabilityError, match="libvirtd -d") as raised:
        open_connection(uri)
    assert uri in str(raised.value) and "--pxelab-libvirt-uri" in str(raised.value)
