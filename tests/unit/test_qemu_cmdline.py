"""qemu_command, OVMF descriptor parsing and GuestSpec checks, without starting QEMU."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from pxelab.core.errors import ConfigError, HostCapabilityError
from pxelab.machine import kvm
from pxelab.machine.firmware import OvmfImage, find_ovmf
from pxelab.machine.qemu import Accel, Firmware, Guest, GuestSpec, qemu_command

pytestmark = pytest.mark.unit


def descriptor(code: Path, template: Path, features: list[str],
               machines: tuple[str, ...] = ("pc-i440fx-*", "pc-q35-*")) -> dict[str, object]:
    return {
        "description": "test firmware",
        "interface-types": ["uefi"],
        "mapping": {"device": "flash",
                    "executable": {"filename": str(code), "format": "raw"},
                    "nvram-template": {"filename": str(template), "format": "raw"}},
        "targets": [{"architecture": "x86_64", "machines": list(machines)}],
        "features": features,
        "tags": [],
    }


@pytest.fixture
def descriptor_dir(tmp_path: Path) -> Path:
    """Function: a QEMU firmware descriptor dir shaped like Debian's ovmf package."""
    images = tmp_path / "OVMF"
    images.mkdir()
    for name in ("CODE_4M.fd", "CODE_4M.secboot.fd", "VARS_4M.fd", "VARS_4M.ms.fd"):
        (images / name).write_bytes(b"\0" * 16)
    directory = tmp_path / "firmware"
    directory.mkdir()
    entries = {
        "40-edk2-x86_64-secure-enrolled.json": descriptor(
            images / "CODE_4M.secboot.fd", images / "VARS_4M.ms.fd",
            ["enrolled-keys", "requires-smm", "secure-boot"], ("pc-q35-*",)),
        "50-edk2-x86_64-secure.json": descriptor(
            images / "CODE_4M.secboot.fd", images / "VARS_4M.fd",
            ["requires-smm", "secure-boot"], ("pc-q35-*",)),
        "60-edk2-x86_64.json": descriptor(
            images / "CODE_4M.fd", images / "VARS_4M.fd", ["acpi-s3", "verbose-dynamic"]),
    }
    for name, content in entries.items():
        (directory / name).write_text(json.dumps(content))
    return directory


def test_find_ovmf_skips_secure_boot_descriptors(descriptor_dir: Path) -> None:
    image = find_ovmf([descriptor_dir])
    assert image.code.name == "CODE_4M.fd"
    assert image.vars_template.name == "VARS_4M.fd"
    assert image.descriptor.name == "60-edk2-x86_64.json"


def test_find_ovmf_secure_boot_on_request(descriptor_dir: Path) -> None:
    image = find_ovmf([descriptor_dir], secure_boot=True)
    assert image.code.name == "CODE_4M.secboot.fd"


def test_earlier_descriptor_dir_overrides_same_name(descriptor_dir: Path,
                                                    tmp_path: Path) -> None:
    override = tmp_path / "etc"
    override.mkdir()
    (override / "60-edk2-x86_64.json").write_text(json.dumps({"interface-types": ["bios"]}))
    with pytest.raises(HostCapabilityError, match="apt-get install ovmf"):
        find_ovmf([override, descriptor_dir])


def test_find_ovmf_skips_descriptor_whose_files_are_missing(descriptor_dir: Path) -> None:
    (descriptor_dir.parent / "OVMF" / "CODE_4M.fd").unlink()
    with pytest.raises(HostCapabilityError, match="ovmf"):
        find_ovmf([descriptor_dir])


def test_find_ovmf_without_descriptors_names_the_package(tmp_path: Path) -> None:
    with pytest.raises(HostCapabilityError, match="apt-get install ovmf"):
        find_ovmf([tmp_path / "nowhere"])


def test_seabios_command_line(tmp_path: Path) -> None:
    command = qemu_command(GuestSpec(), "tap0", tmp_path, Accel.TCG)
    assert command == [
        "qemu-system-x86_64", "-nodefaults", "-no-user-config", "-name", "pxelab-tap0",
        "-machine", "pc,graphics=off", "-accel", "tcg", "-m", "512", "-smp", "1",
        "-display", "none", "-chardev", "stdio,id=console,signal=off",
        "-serial", "chardev:console", "-monitor", "none", "-no-reboot",
        "-netdev", "tap,id=net0,ifname=tap0,script=no,downscript=no",
        "-device", "virtio-net-pci,netdev=net0,mac=52:54:00:12:34:56,bootindex=1",
        "-device", "virtio-rng-pci",
    ]


def test_ovmf_command_line(descriptor_dir: Path, tmp_path: Path) -> None:
    spec = GuestSpec(firmware=Firmware.OVMF, nic_romfile="",
                     fw_cfg=(("opt/org.tianocore/IPv4PXESupport", "n"),))
    ovmf = find_ovmf([descriptor_dir])
    workdir = tmp_path / "guest"
    command = qemu_command(spec, "tap1", workdir, Accel.KVM, ovmf=ovmf)
    assert command[command.index("-machine") + 1] == "q35,graphics=off"
    assert command[command.index("-accel") + 1] == "kvm"
    drives = [command[i + 1] for i, arg in enumerate(command) if arg == "-drive"]
    assert drives == [
        f"if=pflash,unit=0,format=raw,readonly=on,file={ovmf.code}",
        f"if=pflash,unit=1,format=raw,file={workdir / 'ovmf-vars.fd'}",
    ]
    # The debug port goes to a FIFO read live (pxelab.machine.firmware_log).
    assert f"file,id=ovmfdebug,path={workdir / 'ovmf-debug.fifo'}" in command
    devices = [command[i + 1] for i, arg in enumerate(command) if arg == "-device"]
    assert devices == [
        "isa-debugcon,iobase=0x402,chardev=ovmfdebug",
        "virtio-net-pci,netdev=net0,mac=52:54:00:12:34:56,bootindex=1,romfile=",
        "virtio-rng-pci",
    ]
    assert command[command.index("-fw_cfg") + 1] == (
        "name=opt/org.tianocore/IPv4PXESupport,string=n")


def test_secure_boot_machine_has_smm_and_a_secure_pflash(descriptor_dir: Path,
                                                           tmp_path: Path) -> None:
    spec = GuestSpec(firmware=Firmware.OVMF, nic_romfile="", secure_boot=True)
    command = qemu_command(spec, "tap1", tmp_path, Accel.TCG, ovmf=find_ovmf([descriptor_dir]))
    assert command[command.index("-machine") + 1] == "q35,graphics=off,smm=on"
    assert command[command.index("-global") + 1] == (
        "driver=cfi.pflash01,property=secure,value=on")
    assert spec.firmware_settings().endswith(",secure-boot=on")
    plain = qemu_command(replace(spec, secure_boot=False), "tap1", tmp_path, Accel.TCG,
                         ovmf=find_ovmf([descriptor_dir]))
    assert "-global" not in plain and "secure-boot" not in GuestSpec().firmware_settings()
    with pytest.raises(ConfigError, match="SeaBIOS has no Secure Boot"):
        GuestSpec(secure_boot=True)


def test_a_guest_without_rng_gets_no_rng_device(tmp_path: Path) -> None:
    # EDK2 >= stable202405 hides its network boot options without EFI_RNG_PROTOCOL:
    # rng=False reproduces such a machine.
    command = qemu_command(GuestSpec(rng=False), "tap0", tmp_path, Accel.TCG)
    assert not [arg for arg in command if "rng" in arg]
    assert GuestSpec(rng=False).firmware_settings() == "rng=none"


def test_option_values_escape_commas(tmp_path: Path) -> None:
    spec = GuestSpec(nic_model="e1000", nic_romfile="/roms/a,b.rom",
                     fw_cfg=(("opt/pxelab/x", "1,2"),))
    command = qemu_command(spec, "tap0", tmp_path, Accel.TCG)
    assert "e1000,netdev=net0,mac=52:54:00:12:34:56,bootindex=1,romfile=/roms/a,,b.rom" \
        in command
    assert "name=opt/pxelab/x,string=1,,2" in command


def test_direct_kernel_boot_drops_network_boot_order(tmp_path: Path) -> None:
    spec = GuestSpec(kernel=Path("/k/vmlinuz"), initrd=Path("/k/initrd.img"),
                     append="console=ttyS0 quiet")
    command = qemu_command(spec, "tap0", tmp_path, Accel.TCG)
    assert command[-6:] == ["-kernel", "/k/vmlinuz", "-initrd", "/k/initrd.img",
                            "-append", "console=ttyS0 quiet"]
    assert not any("bootindex" in arg for arg in command)


def test_unresolved_accelerator_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="resolve"):
        qemu_command(GuestSpec(), "tap0", tmp_path, Accel.AUTO)


@pytest.mark.parametrize("fields", [
    {"mac": "52:54:00:12:34"},
    {"mac": "52-54-00-12-34-56"},
    {"memory_mib": 1},
    {"cpus": 0},
    {"initrd": Path("/k/initrd.img")},
    {"append": "quiet"},
    {"fw_cfg": (("etc/boot-menu-wait", "1"),)},
])
def test_guest_spec_rejects_bad_values(fields: dict[str, object]) -> None:
    with pytest.raises(ConfigError):
        GuestSpec(**fields)  # type: ignore[arg-type]


def test_firmware_predicates() -> None:
    assert Firmware.OVMF.is_uefi() and not Firmware.SEABIOS.is_uefi()
    assert Firmware.OVMF.machine() == "q35" and Firmware.SEABIOS.machine() == "pc"


def test_guest_command_runs_in_the_namespace(tmp_path: Path) -> None:
    guest = Guest(GuestSpec(accel=Accel.TCG), "tap0", tmp_path, "pxl-m-1-0")
    assert guest.command[:5] == ["ip", "netns", "exec", "pxl-m-1-0", "qemu-system-x86_64"]
    assert guest.accel is Accel.TCG
    assert guest.serial_log == tmp_path / "serial.log"


def test_kvm_probe_without_device_is_false(monkeypatch: pytest.MonkeyPatch,
                                           tmp_path: Path) -> None:
    monkeypatch.setattr(kvm, "KVM_DEVICE", tmp_path / "kvm")
    assert kvm.run_probe() == (False, f"{tmp_path / 'kvm'} missing or not read-writable")


def test_kvm_probe_cache_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "kvm-probe.json"
    assert kvm._read_cache(path, "k") is None
    kvm._write_cache(path, "k", False, "pause too slow")
    assert kvm._read_cache(path, "k") is False
    assert kvm._read_cache(path, "other kernel") is None


def test_kvm_probe_command_is_a_timed_seabios_pause() -> None:
    command = kvm.probe_command()
    assert command[command.index("-accel") + 1] == "kvm"
    assert f"menu=on,splash-time={kvm.PAUSE_MS}" in command


def test_ovmf_image_is_frozen(tmp_path: Path) -> None:
    image = OvmfImage(tmp_path, tmp_path / "c", tmp_path / "v")
    with pytest.raises(AttributeError):
        image.code = tmp_path  # type: ignore[misc]
