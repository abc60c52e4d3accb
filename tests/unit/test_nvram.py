"""pxelab.machine.nvram: EDK2's Ip6Config variable, checked against one OVMF wrote itself."""

from __future__ import annotations

import struct
import uuid
from pathlib import Path

import pytest

from pxelab.core.errors import ConfigError, GuestError
from pxelab.machine.firmware import find_ovmf
from pxelab.machine.nvram import (
    IP6_CONFIG_ATTRIBUTES,
    IP6_CONFIG_GUID,
    Ip6Policy,
    Ip6Settings,
    NvVariable,
    decode_ip6_config,
    default_iaid,
    ip6_config_variable,
    mac_string,
    netblock_checksum,
    read_variables,
    write_vars,
)
from pxelab.machine.qemu import Accel, Firmware, GuestSpec, qemu_command

pytestmark = pytest.mark.unit

MAC = "52:54:00:12:34:56"
# The "525400123456" Ip6Config variable OVMF 2022.11 left in a guest's VARS after a
# uefi_tftp_ipv6 boot: PXEv6 had set the manual policy, the leased 2001:db8::1:0 and the
# RA's router as gateway. Records: 1 alt. interface id, 2 policy, 3 DAD transmits,
# 4 manual address, 5 gateway; record padding is what EDK2's pool held (0xafaf).
OVMF_WRITTEN = bytes.fromhex(
    "7fde0ffa35be05006e00afaf08000000010000006a00afaf04000000020000006600afaf04000000"
    "030000005400afaf12000000040000004400afaf1000000005000000fe80000000000000000000ff"
    "fe00000120010db800000000000000000001000000000100000000000000505400fffe123456")


def u32(data: bytes) -> int:
    return int(struct.unpack("<I", data)[0])


def test_decodes_the_variable_ovmf_wrote() -> None:
    records = decode_ip6_config(OVMF_WRITTEN)
    assert sorted(records) == [1, 2, 3, 4, 5]
    assert u32(records[2]) == 0 and u32(records[3]) == 1  # manual, one DAD probe
    assert records[4][:16] == bytes.fromhex("20010db8000000000000000000010000")
    assert records[5] == bytes.fromhex("fe80000000000000000000fffe000001")


def test_encodes_policy_and_dad_transmits_as_edk2_reads_them() -> None:
    variable = ip6_config_variable(MAC, Ip6Settings(Ip6Policy.AUTOMATIC, dad_transmits=0))
    assert variable.name == "525400123456" and variable.guid == IP6_CONFIG_GUID
    assert variable.attributes == IP6_CONFIG_ATTRIBUTES == 3
    assert netblock_checksum(variable.data) == 0xFFFF  # ~sum == 0, EDK2's check
    records = decode_ip6_config(variable.data)
    assert {kind: u32(value) for kind, value in records.items()} == {2: 1, 3: 0}
    # Same header and record layout as OVMF's own: IaId, checksum, count, 12-byte records.
    assert len(variable.data) == 8 + 2 * 12 + 2 * 4
    assert struct.unpack_from("<I", variable.data)[0] == default_iaid(MAC)


def test_defaults_are_edk2s() -> None:
    records = decode_ip6_config(ip6_config_variable(MAC, Ip6Settings()).data)
    assert (u32(records[2]), u32(records[3])) == (0, 1)


def test_corrupt_variable_is_refused() -> None:
    broken = bytearray(OVMF_WRITTEN)
    broken[-1] ^= 0x01
    with pytest.raises(GuestError, match="corrupt"):
        decode_ip6_config(bytes(broken))


def test_names_and_iaid_follow_edk2() -> None:
    assert mac_string("52:54:00:ab:cd:ef") == "525400ABCDEF"
    # Bytes 0-3 land in bytes 0-3 of the IAID, bytes 4-5 are OR-ed into bytes 0-1.
    assert default_iaid(MAC) == 0x12005452 | 0x5634


def test_settings_are_checked() -> None:
    with pytest.raises(ConfigError, match="dad_transmits"):
        Ip6Settings(dad_transmits=-1)
    with pytest.raises(ConfigError, match="boot_menu_wait_ms"):
        GuestSpec(firmware=Firmware.OVMF, boot_menu_wait_ms=70000)
    with pytest.raises(ConfigError, match="OVMF NVRAM settings"):
        GuestSpec(firmware=Firmware.SEABIOS, ip6_settings=Ip6Settings())


def test_boot_menu_wait_becomes_splash_time(tmp_path: Path) -> None:
    spec = GuestSpec(firmware=Firmware.SEABIOS, boot_menu_wait_ms=1000)
    command = qemu_command(spec, "tap0", tmp_path, Accel.TCG)
    assert command[command.index("-boot") + 1] == "menu=on,splash-time=1000"
    assert "-boot" not in qemu_command(GuestSpec(), "tap0", tmp_path, Accel.TCG)


def test_firmware_settings_are_recorded_as_one_line() -> None:
    spec = GuestSpec(firmware=Firmware.OVMF, fw_cfg=(("opt/org.tianocore/IPv4PXESupport", "n"),),
                     boot_menu_wait_ms=1000, ip6_settings=Ip6Settings(Ip6Policy.AUTOMATIC, 0))
    assert spec.firmware_settings() == (
        "opt/org.tianocore/IPv4PXESupport=n,boot-menu-wait=1000ms,"
        "ip6-policy=automatic,ip6-dad-transmits=0,rng=virtio-rng-pci")
    assert GuestSpec().firmware_settings() == "rng=virtio-rng-pci"


def test_write_vars_adds_the_variable_and_keeps_the_rest(tmp_path: Path) -> None:
    template = find_ovmf().vars_template
    variable = ip6_config_variable(MAC, Ip6Settings(Ip6Policy.AUTOMATIC, 0))
    # EDK2's IPv4 settings share the MAC as name; both must survive side by side.
    ip4 = NvVariable(variable.name, uuid.UUID("5b446ed1-e30b-4faa-871a-3654eca36080"), 3,
                     bytes.fromhex("3a5001001000afaf040000000100000000000000"))
    output = tmp_path / "vars.fd"
    write_vars(template, output, (variable, ip4))
    before, after = read_variables(template), read_variables(output)
    assert output.stat().st_size == template.stat().st_size
    assert set(after) == set(before) | {variable, ip4}
    # Written again over itself: the same variable replaced, not added twice.
    again = tmp_path / "again.fd"
    write_vars(template, again, (variable,))
    write_vars(again, again, (replace_data(variable, b"x"),))
    mine = [v for v in read_variables(again) if v.name == variable.name]
    assert [v.data for v in mine] == [b"x"]
    # A store holding both same-named variables cannot go through virt-firmware's list.
    with pytest.raises(GuestError, match="two variables of the same name"):
        write_vars(output, tmp_path / "lost.fd", ())


def replace_data(variable: NvVariable, data: bytes) -> NvVariable:
    return NvVariable(variable.name, variable.guid, variable.attributes, data)


def test_write_vars_refuses_a_file_that_is_no_varstore(tmp_path: Path) -> None:
    junk = tmp_path / "junk.fd"
    junk.write_bytes(b"\xff" * 8192)
    with pytest.raises(GuestError, match="not a raw EDK2 variable store"):
        write_vars(junk, tmp_path / "out.fd", ())
