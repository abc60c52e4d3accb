"""Firmware sets: where each catalog entry's file is, which version it is, and what QEMU gets.

A fake Debian set is a directory laid out as the unpacked packages are, so nothing
here downloads anything.
"""

from __future__ import annotations

import json
import os
from dataclasses import replace
from pathlib import Path

import pytest

from pxelab.core.errors import ConfigError, HostCapabilityError
from pxelab.machine.fwsets import HOST, FirmwareSet, UserFile, parse_set_names
from pxelab.machine.fwsets.debian import MANIFEST, _prune, packages_of, set_key
from pxelab.machine.fwsets.model import host_set
from pxelab.machine.fwsets.user import user_set
from pxelab.machine.ipxerom import OVERRIDE_VARIABLE, RomKind
from pxelab.machine.qemu import Accel, qemu_command
from pxelab.scenarios.cases import SCENARIOS, for_firmware_set, reproduce_command

pytestmark = pytest.mark.unit

VERSIONS = {"ovmf-generic": "2026.08+ds-2", "seabios": "1.17.0-1", "ipxe-qemu": "2.0.0+dfsg-5",
            "ipxe": "2.0.0+dfsg-5", "pxelinux": "3:6.04-3.2", "syslinux-common": "3:6.04-3.2",
            "syslinux-efi": "3:6.04-3.2"}
FILES = ("usr/share/OVMF/OVMF_CODE_4M.fd", "usr/share/OVMF/OVMF_VARS_4M.fd",
         "usr/share/seabios/bios-256k.bin", "usr/share/qemu/efi-virtio.rom",
         "usr/share/qemu/efi-e1000.rom", "usr/lib/ipxe/snponly.efi",
         "usr/lib/PXELINUX/pxelinux.0", "usr/lib/syslinux/modules/bios/ldlinux.c32",
         "usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2", "usr/bin/grub-mkimage")


def descriptor() -> dict[str, object]:
    return {"interface-types": ["uefi"], "features": ["acpi-s3", "verbose-dynamic"],
            "targets": [{"architecture": "x86_64", "machines": ["pc-q35-*"]}],
            "mapping": {"device": "flash",
                        "executable": {"filename": "/usr/share/OVMF/OVMF_CODE_4M.fd"},
                        "nvram-template": {"filename": "/usr/share/OVMF/OVMF_VARS_4M.fd"}}}


@pytest.fixture
def sid(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> FirmwareSet:
    monkeypatch.delenv(OVERRIDE_VARIABLE, raising=False)
    root = tmp_path / "sid" / "root"
    for name in FILES:
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(name.encode())
    (root / "usr/share/qemu/firmware").mkdir()
    (root / "usr/share/qemu/firmware/60-edk2-x86_64.json").write_text(json.dumps(descriptor()))
    return FirmwareSet("sid", "Debian sid", root, packages=VERSIONS,
                       renames={"ovmf": "ovmf-generic"})


def test_entries_are_found_under_the_set_root(sid: FirmwareSet) -> None:
    assert sid.locate("seabios") == sid.root / "usr/share/seabios/bios-256k.bin"
    assert sid.locate("rom-virtio") == sid.root / "usr/share/qemu/efi-virtio.rom"
    image = sid.ovmf()
    assert (image.code, image.vars_template) == (sid.root / "usr/share/OVMF/OVMF_CODE_4M.fd",
                                                 sid.root / "usr/share/OVMF/OVMF_VARS_4M.fd")
    assert sid.locate("ovmf-vars") == image.vars_template


def test_an_entry_the_set_lacks_names_the_package(sid: FirmwareSet) -> None:
    with pytest.raises(ConfigError, match=r"syslinux.efi is not in firmware set sid.*"
                                          r"syslinux-efi 3:6.04-3.2 does not ship it"):
        sid.locate("syslinux.efi")


def test_versions_are_the_sets_own_under_the_shipping_package(sid: FirmwareSet) -> None:
    assert sid.versions(["ovmf-code", "rom-virtio", "pxelinux.0", "ldlinux.c32"]) == {
        "ovmf-generic": "2026.08+ds-2", "ipxe-qemu": "2.0.0+dfsg-5",
        "pxelinux": "3:6.04-3.2", "syslinux-common": "3:6.04-3.2"}


def test_syslinux_files_of_one_build(sid: FirmwareSet) -> None:
    assert sid.syslinux_files(["pxelinux.0", "ldlinux.c32"]) == {
        "pxelinux.0": sid.root / "usr/lib/PXELINUX/pxelinux.0",
        "ldlinux.c32": sid.root / "usr/lib/syslinux/modules/bios/ldlinux.c32"}
    mixed = replace(sid, packages={**VERSIONS, "syslinux-common": "3:6.03-1"})
    with pytest.raises(HostCapabilityError, match="one build"):
        mixed.syslinux_files(["pxelinux.0", "ldlinux.c32"])
    with pytest.raises(ConfigError, match="not part of the syslinux build"):
        sid.syslinux_files(["snponly.efi"])


def test_the_rom_kind_follows_the_sets_ipxe_qemu(sid: FirmwareSet,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    assert sid.rom_kind("rom-virtio") is RomKind.SNP_ONLY
    old = replace(sid, packages={**VERSIONS, "ipxe-qemu": "1.0.0+git-20190125.36a4c85-5.1"})
    assert old.rom_kind("rom-virtio") is RomKind.IPXE
    assert replace(old, rom=RomKind.SNP_ONLY).rom_kind("rom-virtio") is RomKind.SNP_ONLY
    monkeypatch.setenv(OVERRIDE_VARIABLE, "ipxe")
    assert sid.rom_kind("rom-virtio") is RomKind.IPXE


def test_set_tools_run_under_the_sets_own_loader(sid: FirmwareSet) -> None:
    loader = sid.root / "usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2"
    command = sid.tool_command("grub-mkimage")
    assert command[0] == str(loader) and command[1] == "--library-path"
    assert command[-1] == str(sid.root / "usr/bin/grub-mkimage")


def test_a_case_on_a_set_gets_every_file_from_it(sid: FirmwareSet) -> None:
    legacy = for_firmware_set(SCENARIOS["legacy_pxe_ipv4"], sid)
    assert legacy.guest.bios == sid.locate("seabios")
    assert legacy.guest.nic_rom == sid.locate("rom-virtio")
    assert legacy.firmware_set == "sid"
    command = qemu_command(legacy.guest, "tap0", Path("/w"), Accel.TCG)
    assert command[command.index("-bios") + 1] == str(sid.locate("seabios"))
    assert command[command.index("-L") + 1] == "/w/roms"
    assert "romfile" not in command[command.index("-netdev") + 3]  # QEMU's default ROM name
    uefi = for_firmware_set(SCENARIOS["uefi_http_ipv4"], sid)
    assert uefi.guest.ovmf == sid.ovmf() and uefi.guest.nic_rom is None  # romfile="": none
    ipxe = for_firmware_set(SCENARIOS["uefi_ipxe_ipv4"], sid)
    assert ipxe == replace(SCENARIOS["uefi_ipxe_ipv4"].on_rom(RomKind.SNP_ONLY),
                           guest=ipxe.guest, firmware_set="sid")


def test_a_direct_boot_on_a_set_gets_the_sets_firmware_too(sid: FirmwareSet) -> None:
    # BootRun(direct_kernel=True) boots the case as it is on the set, with -kernel added.
    for name in ("uefi_tftp_ipv4", "legacy_pxe_ipv4"):
        guest = for_firmware_set(SCENARIOS[name], sid).guest
        direct = replace(guest, kernel=Path("/p/vmlinuz"), initrd=Path("/p/initrd.img"))
        command = " ".join(qemu_command(direct, "tap0", Path("/w"), Accel.TCG))
        firmware = sid.ovmf().code if guest.firmware.is_uefi() else sid.locate("seabios")
        assert str(firmware) in command and "-kernel /p/vmlinuz" in command


def test_the_reproduce_command_carries_the_set() -> None:
    case = replace(SCENARIOS["uefi_http_ipv6"], firmware_set="trixie")
    assert reproduce_command(case, "art") == ("pxelab boot uefi_http_ipv6 --firmware-set trixie "
                                              "--artifacts art")
    assert "--firmware-set" not in reproduce_command(SCENARIOS["uefi_http_ipv6"])


def write_user_set(tmp_path: Path, text: str) -> Path:
    for name in ("OVMF_CODE.fd", "OVMF_VARS.fd"):
        (tmp_path / name).write_bytes(b"x")
    path = tmp_path / "my-ovmf.toml"
    path.write_text(text)
    return path


USER_SET = """
base = "sid"
ipxe_rom = "ipxe"
[files.ovmf-code]
path = "OVMF_CODE.fd"
version = "edk2 ci 42"
[files.ovmf-vars]
path = "OVMF_VARS.fd"
version = "edk2 ci 42"
"""


def test_a_user_set_overrides_entries_of_its_base(sid: FirmwareSet, tmp_path: Path) -> None:
    path = write_user_set(tmp_path, USER_SET)
    mine = user_set(path, {"sid": sid}.__getitem__)
    assert mine.name == "my-ovmf" and mine.origin == str(path) and mine.reference == str(path)
    assert mine.ovmf().code == tmp_path / "OVMF_CODE.fd"
    assert mine.locate("seabios") == sid.locate("seabios")
    assert mine.rom_kind("rom-virtio") is RomKind.IPXE
    versions = mine.versions(["ovmf-code", "seabios"])
    assert versions == {"ovmf": f"edk2 ci 42 ({path})", "seabios": "1.17.0-1"}
    assert mine.files["ovmf-vars"] == UserFile(tmp_path / "OVMF_VARS.fd", "edk2 ci 42")


@pytest.mark.parametrize(("text", "error"), [
    ("colour = 'red'", "unknown keys"),
    ("[files.ovmf-code]\npath = 'OVMF_CODE.fd'\nversion = '1'", "together"),
    ("[files.no-such-entry]\npath = 'OVMF_CODE.fd'\nversion = '1'", "not in the firmware catalog"),
    ("[files.seabios]\npath = 'missing.bin'\nversion = '1'", "does not exist"),
    ("[files.seabios]\npath = 'OVMF_CODE.fd'", "give the version"),
    ("ipxe_rom = 'maybe'", "choose one of"),
    ("base = 'other.toml'", "not another file"),
    ("base = [", "not valid TOML"),
])
def test_a_wrong_user_set_says_what_is_wrong(tmp_path: Path, text: str, error: str) -> None:
    path = write_user_set(tmp_path, text)
    with pytest.raises(ConfigError, match=error):
        user_set(path, lambda name: host_set())


def test_set_names_are_checked() -> None:
    assert parse_set_names("bookworm, trixie,sid,bookworm") == ("bookworm", "trixie", "sid")
    assert parse_set_names(HOST) == (HOST,)
    with pytest.raises(ConfigError, match="unknown firmware set 'buster'"):
        parse_set_names("buster")
    with pytest.raises(ConfigError, match="not found"):
        parse_set_names("./nowhere.toml")
    with pytest.raises(ConfigError, match="selects nothing"):
        parse_set_names(" , ")


def test_debian_sets_are_keyed_by_their_versions() -> None:
    assert "ovmf-generic" in packages_of("sid") and "grub2-common" in packages_of("sid")
    assert "ovmf" in packages_of("trixie") and "libc6" in packages_of("trixie")
    assert set_key("sid", VERSIONS) != set_key("sid", {**VERSIONS, "seabios": "1.17.1-1"})


def test_older_sets_of_a_release_are_pruned_after_a_day(tmp_path: Path) -> None:
    sets = tmp_path / "firmware"
    for name, age in (("sid-old", 3 * 86400), ("sid-recent", 600), ("sid-new", 0),
                      ("trixie-old", 3 * 86400)):
        (sets / name).mkdir(parents=True)
        (sets / name / MANIFEST).write_text("{}")
        stamp = (sets / name / MANIFEST).stat().st_mtime - age
        os.utime(sets / name / MANIFEST, (stamp, stamp))
    _prune("sid", tmp_path, sets / "sid-new")
    assert sorted(p.name for p in sets.iterdir()) == ["sid-new", "sid-recent", "trixie-old"]
