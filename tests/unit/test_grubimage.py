"""The modules a GRUB EFI image has built in, read from a synthetic image (pure code)."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest

from pxelab.core.errors import ConfigError
from pxelab.machine.fwsets import FirmwareSet
from pxelab.machine.grubimage import grub_modules, modules_of
from pxelab.scenarios.cases import SCENARIOS
from pxelab.scenarios.limits import known_limit

pytestmark = pytest.mark.unit


def elf_module(name: str) -> bytes:
    """A 64-bit ELF with sections: null, .shstrtab, .modname."""
    names = b"\0.shstrtab\0.modname\0"
    modname = name.encode() + b"\0"
    data_at = 64
    names_at, modname_at = data_at, data_at + len(names)
    shoff = modname_at + len(modname)
    header = bytearray(64)
    header[:4] = b"\x7fELF"
    struct.pack_into("<Q", header, 0x28, shoff)
    struct.pack_into("<HHH", header, 0x3A, 64, 3, 1)

    def section(name_at: int, at: int, size: int) -> bytes:
        entry = bytearray(64)
        struct.pack_into("<I", entry, 0, name_at)
        struct.pack_into("<QQ", entry, 0x18, at, size)
        return bytes(entry)

    return (bytes(header) + names + modname + bytes(64) + section(1, names_at, len(names))
            + section(11, modname_at, len(modname)))


def grub_image(*modules: str) -> bytes:
    """A PE file whose mods section holds the module info, the modules and a prefix."""
    objects = b"".join(struct.pack("<II", 0, 8 + len(m)) + m for m in map(elf_module, modules))
    prefix = b"/grub\0\0\0"
    objects += struct.pack("<II", 3, 8 + len(prefix)) + prefix
    mods = struct.pack("<IIQQ", 0x676D696D, 0, 24, 24 + len(objects)) + objects
    pe_at, raw_at = 0x40, 0x200
    image = bytearray(raw_at)
    image[:2] = b"MZ"
    struct.pack_into("<I", image, 0x3C, pe_at)
    image[pe_at:pe_at + 4] = b"PE\0\0"
    struct.pack_into("<H", image, pe_at + 6, 1)  # one section
    struct.pack_into("<H", image, pe_at + 20, 0)  # no optional header
    table = pe_at + 24
    image[table:table + 8] = b"mods\0\0\0\0"
    struct.pack_into("<IIII", image, table + 8, len(mods), 0, len(mods), raw_at)
    return bytes(image) + mods


def test_modules_are_read_from_their_modname_sections() -> None:
    assert grub_modules(grub_image("efinet", "tftp", "normal")) == {"efinet", "tftp", "normal"}


@pytest.mark.parametrize("data", [b"", b"MZ" + bytes(100), b"\x7fELF" + bytes(100)],
                         ids=["empty", "no-sections", "not-pe"])
def test_other_files_are_a_config_error(data: bytes) -> None:
    with pytest.raises(ConfigError):
        grub_modules(data)


def test_signed_grub_without_http_is_a_known_limit_of_http_boot(tmp_path: Path) -> None:
    without, with_http = tmp_path / "old.efi", tmp_path / "new.efi"
    without.write_bytes(grub_image("efinet", "tftp"))
    with_http.write_bytes(grub_image("efinet", "tftp", "http"))
    assert "http" in modules_of(with_http) and "http" not in modules_of(without)

    class Set(FirmwareSet):
        def locate(self, name: str) -> Path:
            assert name == "grubnetx64.efi"
            return self.root

    http, tftp = SCENARIOS["uefi_http_ipv4_secureboot"], SCENARIOS["uefi_tftp_ipv4_secureboot"]
    limit = known_limit(http, Set("old", "test", without))
    assert limit is not None and (limit.stage, limit.cause) == ("bootloader",
                                                                "grub.no_http_module")
    assert known_limit(http, Set("new", "test", with_http)) is None
    assert known_limit(tftp, Set("old", "test", without)) is None
