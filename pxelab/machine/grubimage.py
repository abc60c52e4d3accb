"""The modules built into a GRUB EFI image: which protocols it can fetch files with.

A signed GRUB (Debian's grubnetx64.efi) cannot load a module at run time under
Secure Boot (its shim_lock verifier refuses unsigned code), so the modules
grub-mkimage packed into it are all it has: Debian 12's 2.06 network image has
``tftp`` but no ``http``, Debian 13's 2.12 has both.

Layout (GRUB's include/grub/kernel.h and util/mkimage.c): the PE section ``mods``
starts with a ``grub_module_info64`` (magic "mimg", padding, then the offset of the
first module header and the size of the whole area, both u64); each module header
is (type u32, size u32, the header included), and a type 0 module is an ELF object
whose ``.modname`` section holds the module's name.
"""

from __future__ import annotations

import struct

_PE_OFFSET = 0x3C  # e_lfanew in the DOS header
_PE_SECTION = struct.Struct("<8sIIII")  # name, virtual size, address, raw size, raw offset
_MODULE_INFO = struct.Struct("<4s4xQQ")  # grub_module_info64
_MODULE_HEADER = struct.Struct("<II")  # grub_module_header
_OBJ_TYPE_ELF = 0
_ELF64_SHOFF = struct.Struct("<Q")  # e_shoff, at 0x28
_ELF64_SHTABLE = struct.Struct("<HHH")  # e_shentsize, e_shnum, e_shstrndx, at 0x3A
_ELF64_SECTION = struct.Struct("<IIQQQQ")  # sh_name, sh_type, flags, addr, sh_offset, sh_size


def grub_modules(image: bytes) -> frozenset[str] | None:
    """The names of the modules built into the GRUB EFI ``image``; None if it is not one
    (no ``mods`` section starting with "mimg")."""
    area = _mods_section(image)
    if area is None or not area.startswith(b"mimg"):
        return None
    _, first, size = _MODULE_INFO.unpack_from(area)
    names, at, end = set(), first, min(size, len(area))
    while at + _MODULE_HEADER.size <= end:
        kind, length = _MODULE_HEADER.unpack_from(area, at)
        if length < _MODULE_HEADER.size:
            break  # a corrupt header: what was read so far is all there is
        if kind == _OBJ_TYPE_ELF:
            name = _elf_modname(area[at + _MODULE_HEADER.size:at + length])
            if name:
                names.add(name)
        at += length
    return frozenset(names)


def _mods_section(image: bytes) -> bytes | None:
    try:
        (pe,) = struct.unpack_from("<I", image, _PE_OFFSET)
        if image[pe:pe + 4] != b"PE\0\0":
            return None
        (count,) = struct.unpack_from("<H", image, pe + 6)  # NumberOfSections
        (optional,) = struct.unpack_from("<H", image, pe + 20)  # SizeOfOptionalHeader
        table = pe + 24 + optional
        for index in range(count):
            name, _, _, raw_size, raw = _PE_SECTION.unpack_from(image, table + 40 * index)
            if name.rstrip(b"\0") == b"mods":
                return image[raw:raw + raw_size]
    except struct.error:
        return None
    return None


def _elf_modname(elf: bytes) -> str:
    """The ``.modname`` of one module's ELF object ("" if it has none)."""
    try:
        if not elf.startswith(b"\x7fELF\x02"):
            return ""
        (shoff,) = _ELF64_SHOFF.unpack_from(elf, 0x28)
        entsize, count, strndx = _ELF64_SHTABLE.unpack_from(elf, 0x3A)
        strings = _ELF64_SECTION.unpack_from(elf, shoff + strndx * entsize)[4]
        for index in range(count):
            name_at, _, _, _, offset, size = _ELF64_SECTION.unpack_from(
                elf, shoff + index * entsize)
            start = strings + name_at
            if elf[start:elf.index(b"\0", start)] == b".modname":
                return elf[offset:offset + size].rstrip(b"\0").decode("ascii", "replace")
    except (struct.error, ValueError):
        return ""
    return ""
