"""Which modules a GRUB EFI image has built in (pure: bytes in, names out).

A signed GRUB cannot load a module from elsewhere under Secure Boot, so what it can
do is what ``grub-mkimage`` packed into it: Debian 12's signed ``grubnetx64.efi`` has
``tftp`` but no ``http``. The image is a PE file whose ``mods`` section holds
``struct grub_module_info64`` and then one ``struct grub_module_header`` per object
(grub-core/kern/efi/init.c, include/grub/kernel.h); each ELF module names itself in
its ``.modname`` section (util/grub-module-verifier).
"""

from __future__ import annotations

import struct
from pathlib import Path

from pxelab.core.errors import ConfigError
from pxelab.machine import pe

_MODULE_INFO_MAGIC = 0x676D696D  # "mimg"
_OBJ_TYPE_ELF = 0
_ELF_MAGIC = b"\x7fELF"


def modules_of(path: Path) -> frozenset[str]:
    """The names of the modules built into the GRUB EFI image at ``path``."""
    try:
        return grub_modules(path.read_bytes())
    except OSError as error:
        raise ConfigError(f"cannot read GRUB image {path}: {error.strerror}") from None


def grub_modules(image: bytes) -> frozenset[str]:
    """The names of the modules built into a GRUB EFI image."""
    try:
        return _modules(image)
    except struct.error:
        raise ConfigError("not a GRUB image: its headers are cut short") from None


def _modules(image: bytes) -> frozenset[str]:
    mods = pe.section(image, "mods")
    if mods is None:
        raise ConfigError("not a GRUB image: no mods section (or not an EFI program)")
    magic, _, offset, size = struct.unpack_from("<IIQQ", mods)
    if magic != _MODULE_INFO_MAGIC:
        raise ConfigError("not a GRUB image: its mods section has no module info")
    names: set[str] = set()
    at, end = offset, min(size, len(mods))
    while at + 8 <= end:
        kind, length = struct.unpack_from("<II", mods, at)
        if length < 8:
            break
        if kind == _OBJ_TYPE_ELF:
            name = _modname(mods[at + 8:at + length])
            if name:
                names.add(name)
        at += length
    return frozenset(names)


def _modname(elf: bytes) -> str:
    """The ``.modname`` of a 64-bit ELF GRUB module, "" if it has none."""
    if elf[:4] != _ELF_MAGIC or len(elf) < 64:
        return ""
    shoff = struct.unpack_from("<Q", elf, 0x28)[0]
    entsize, count, names_index = struct.unpack_from("<HHH", elf, 0x3A)
    if not shoff or entsize < 64 or shoff + entsize * count > len(elf):
        return ""

    def section(index: int) -> tuple[int, bytes]:
        header = shoff + entsize * index
        name_at = struct.unpack_from("<I", elf, header)[0]
        start, size = struct.unpack_from("<QQ", elf, header + 0x18)
        return name_at, elf[start:start + size]

    _, names = section(names_index)
    for index in range(count):
        name_at, data = section(index)
        if names[name_at:names.find(b"\0", name_at)] == b".modname":
            return data.split(b"\0", 1)[0].decode("ascii", "replace")
    return ""
