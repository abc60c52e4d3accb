"""PE images' Authenticode certificate table (pxelab.machine.pe): found, and taken off.

A tiny synthetic image checks the layout (PE32 and PE32+); the host's signed shim
and GRUB (shim-signed, grub-efi-amd64-signed) a real one. The payload kernel is
checked where a boot has it: tests/boot/test_regress_secureboot.py.
"""

from __future__ import annotations

import struct

import pytest

from pxelab.core.errors import ConfigError
from pxelab.machine import firmware, pe

pytestmark = pytest.mark.unit

LFANEW = 0x40
DIRECTORIES = 16
CHECKSUM_AT = LFANEW + 4 + 20 + 64  # the optional header's CheckSum field


def synthetic_pe(body: bytes = b"\x90" * 301, certificate: bytes = b"",
                 magic: int = 0x20B) -> bytes:
    """An MS-DOS stub, PE header and optional header with 16 data directories, ``body``
    padded to 8 bytes, then ``certificate`` as the certificate table (if any)."""
    dos = bytearray(LFANEW)
    dos[:2] = b"MZ"
    struct.pack_into("<I", dos, 0x3C, LFANEW)
    rva_count_at = 92 if magic == 0x10B else 108
    optional = bytearray(rva_count_at + 4 + 8 * DIRECTORIES)
    struct.pack_into("<HI", optional, 0, magic, 0)
    struct.pack_into("<I", optional, rva_count_at, DIRECTORIES)
    coff = struct.pack("<HHIIIHH", 0x8664, 0, 0, 0, 0, len(optional), 0x22)
    image = bytearray(dos + b"PE\0\0" + coff + optional + body)
    image += bytes(-len(image) % 8)
    if certificate:
        entry = LFANEW + 4 + 20 + rva_count_at + 4 + 8 * 4
        struct.pack_into("<II", image, entry, len(image), len(certificate))
    return bytes(image + certificate)


@pytest.mark.parametrize("magic", [0x10B, 0x20B], ids=["pe32", "pe32+"])
def test_a_signed_image_loses_its_table_and_is_the_unsigned_image(magic: int) -> None:
    unsigned = synthetic_pe(magic=magic)
    signed = synthetic_pe(certificate=b"\x30\x82" + bytes(98), magic=magic)
    table = pe.certificate_table(signed)
    assert (table.offset, table.size) == (len(unsigned), 100)
    assert pe.is_signed(signed) and not pe.is_signed(unsigned)
    stripped = pe.strip_signature(signed)
    at = CHECKSUM_AT
    assert stripped[:at] + stripped[at + 4:] == unsigned[:at] + unsigned[at + 4:]
    assert struct.unpack_from("<I", stripped, at)[0] == pe.checksum(stripped, at)


def test_the_checksum_adds_words_with_end_around_carry_and_the_length() -> None:
    # 0xffff + 0x0002 = 0x10001 -> 0x0002 after the carry; plus the 8 bytes of length.
    image = b"\xff\xff\x02\x00" + b"\x12\x34\x56\x78"  # the field (at 4) counts as 0
    assert pe.checksum(image, 4) == 0x0002 + 8


def test_an_unsigned_image_has_nothing_to_take_off() -> None:
    with pytest.raises(ConfigError, match="no signature"):
        pe.strip_signature(synthetic_pe())


@pytest.mark.parametrize(("image", "says"), [
    (b"\x7fELF" + bytes(100), "no 'MZ'"),
    (b"MZ" + bytes(0x3A) + struct.pack("<I", 0x40) + bytes(64), "no 'PE"),
])
def test_other_files_are_no_pe_image(image: bytes, says: str) -> None:
    with pytest.raises(ConfigError, match=says):
        pe.certificate_table(image)


def test_a_table_past_the_end_says_the_file_is_cut() -> None:
    signed = synthetic_pe(certificate=bytes(64))
    with pytest.raises(ConfigError, match="cut short"):
        pe.certificate_table(signed[:-10])


@pytest.mark.parametrize("name", ["shimx64.efi", "grubnetx64.efi"])
def test_the_distributions_signed_efi_programs(name: str) -> None:
    image = firmware.locate(name).read_bytes()  # a HostCapabilityError skips
    table = pe.certificate_table(image)
    assert table.size > 0 and table.offset + table.size <= len(image)
    stripped = pe.strip_signature(image)
    assert len(stripped) == table.offset and not pe.is_signed(stripped)
