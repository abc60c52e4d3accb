"""The modules built into a GRUB EFI image (pxelab.machine.grubimage), on images made here
in grub-mkimage's layout."""

from __future__ import annotations

import struct

import pytest

from pxelab.machine.grubimage import grub_modules

pytestmark = pytest.mark.unit


def elf_module(name: str) -> bytes:
    """A 64-bit ELF object with the sections a GRUB module's name needs."""
    names = b"\0.shstrtab\0.modname\0"
    body = names + name.encode() + b"\0"
    shoff = 64 + len(body)
    header = b"\x7fELF\x02\x01\x01" + bytes(9) + struct.pack(
        "<HHIQQQIHHHHHH", 1, 62, 1, 0, 0, shoff, 0, 64, 0, 0, 64, 3, 1)
    sections = bytes(64)  # the null section
    sections += struct.pack("<IIQQQQIIQQ", 1, 3, 0, 0, 64, len(names), 0, 0, 1, 0)
    sections += struct.pack("<IIQQQQIIQQ", 11, 1, 0, 0, 64 + len(names), len(name) + 1,
                            0, 0, 1, 0)
    return header + body + sections


def grub_image(*modules: str, other: tuple[tuple[int, bytes], ...] = ()) -> bytes:
    """A PE image whose "mods" section holds ``modules`` (and ``other`` typed objects)."""
    objects = [(0, elf_module(name)) for name in modules] + list(other)
    area = b""
    for kind, data in objects:
        padded = data + bytes(-len(data) % 8)
        area += struct.pack("<II", kind, 8 + len(padded)) + padded
    mods = b"mimg" + bytes(4) + struct.pack("<QQ", 24, 24 + len(area)) + area
    pe, table = 0x40, 0x40 + 24
    raw = table + 40
    image = bytearray(raw + len(mods))
    image[0:2] = b"MZ"
    struct.pack_into("<I", image, 0x3C, pe)
    image[pe:pe + 4] = b"PE\0\0"
    struct.pack_into("<HH", image, pe + 4, 0x8664, 1)  # machine, one section
    struct.pack_into("<8sIIII", image, table, b"mods", len(mods), 0x1000, len(mods), raw)
    image[raw:] = mods
    return bytes(image)


def test_the_names_of_the_modules_built_in() -> None:
    image = grub_image("tftp", "efinet", "normal", other=((2, b"(memdisk)/grub\0"),))
    assert grub_modules(image) == {"tftp", "efinet", "normal"}


def test_a_network_image_with_and_without_http() -> None:
    assert "http" in (grub_modules(grub_image("tftp", "http")) or ())
    assert "http" not in (grub_modules(grub_image("tftp")) or ())


@pytest.mark.parametrize("image", [b"", b"MZ" + bytes(100), grub_image()[:0x80]],
                         ids=["empty", "no-pe", "cut-short"])
def test_not_a_grub_image(image: bytes) -> None:
    assert grub_modules(image) is None


def test_a_pe_image_without_modules_is_not_grub() -> None:
    image = bytearray(grub_image("tftp"))
    at = image.index(b"mods\0")
    image[at:at + 4] = b"text"  # shim's sections: .text, .data, .sbat, ...
    assert grub_modules(bytes(image)) is None
