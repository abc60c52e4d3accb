"""A pure writer (and reader) for the "newc" cpio format the kernel unpacks as initramfs.

Format, as specified by the kernel's ``Documentation/driver-api/early-userspace/
buffer-format.rst`` and libarchive's cpio(5) ("New ASCII Format"): each member is a
110-byte ASCII header, the NUL-terminated name, padding to a multiple of 4, the data,
padding to a multiple of 4. The archive ends with a member named ``TRAILER!!!``.

Bytes in, bytes out: no file system access, so archives are reproducible (all
times are 0 unless given) and the code is testable against GNU cpio.
"""

from __future__ import annotations

import stat
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

MAGIC = b"070701"
TRAILER = "TRAILER!!!"

# Header fields after the magic, each 8 hexadecimal ASCII digits (buffer-format.rst).
HEADER_FIELDS = (
    "ino", "mode", "uid", "gid", "nlink", "mtime", "filesize",
    "devmajor", "devminor", "rdevmajor", "rdevminor", "namesize", "check",
)
HEADER_SIZE = len(MAGIC) + 8 * len(HEADER_FIELDS)  # 110


@dataclass(frozen=True)
class CpioEntry:
    """One archive member. ``name`` is relative ("bin/sh"), ``mode`` includes the type bits."""

    name: str
    mode: int
    data: bytes = b""
    uid: int = 0
    gid: int = 0
    mtime: int = 0
    rdevmajor: int = 0
    rdevminor: int = 0

    @property
    def nlink(self) -> int:
        return 2 if stat.S_ISDIR(self.mode) else 1


def directory(name: str, perm: int = 0o755) -> CpioEntry:
    return CpioEntry(name, stat.S_IFDIR | perm)


def regular(name: str, data: bytes, perm: int = 0o644) -> CpioEntry:
    return CpioEntry(name, stat.S_IFREG | perm, data)


def symlink(name: str, target: str) -> CpioEntry:
    return CpioEntry(name, stat.S_IFLNK | 0o777, target.encode())


def char_device(name: str, major: int, minor: int, perm: int = 0o600) -> CpioEntry:
    return CpioEntry(name, stat.S_IFCHR | perm, rdevmajor=major, rdevminor=minor)


def _pad4(length: int) -> bytes:
    return b"\0" * (-length % 4)


def _member(entry: CpioEntry, ino: int) -> bytes:
    name = entry.name.encode() + b"\0"
    values = {
        "ino": ino, "mode": entry.mode, "uid": entry.uid, "gid": entry.gid,
        "nlink": entry.nlink, "mtime": entry.mtime, "filesize": len(entry.data),
        "devmajor": 0, "devminor": 0, "rdevmajor": entry.rdevmajor,
        "rdevminor": entry.rdevminor, "namesize": len(name), "check": 0,
    }
    for field, value in values.items():
        if not 0 <= value <= 0xFFFFFFFF:
            raise ValueError(f"cpio member {entry.name!r}: {field}={value} does not fit 32 bits")
    header = MAGIC + b"".join(b"%08X" % values[field] for field in HEADER_FIELDS)
    return header + name + _pad4(HEADER_SIZE + len(name)) + entry.data + _pad4(len(entry.data))


def write_newc(entries: Iterable[CpioEntry]) -> bytes:
    """Serialise ``entries`` in order, followed by the trailer. Inode numbers start at 1."""
    parts: list[bytes] = []
    seen: set[str] = set()
    for ino, entry in enumerate(entries, start=1):
        if not entry.name or entry.name.startswith("/") or entry.name == TRAILER:
            raise ValueError(f"cpio member name {entry.name!r}: want a relative path")
        if entry.name in seen:
            raise ValueError(f"cpio member {entry.name!r} appears twice")
        seen.add(entry.name)
        parts.append(_member(entry, ino))
    parts.append(_member(CpioEntry(TRAILER, 0), 0))
    return b"".join(parts)


def read_newc(archive: bytes) -> Iterator[CpioEntry]:
    """Parse a newc archive (as written above) up to its trailer; for tests and inspection."""
    offset = 0
    while True:
        header = archive[offset:offset + HEADER_SIZE]
        if len(header) < HEADER_SIZE or not header.startswith(MAGIC):
            raise ValueError(f"no newc header at offset {offset}")
        fields = {
            field: int(header[6 + 8 * i:14 + 8 * i], 16) for i, field in enumerate(HEADER_FIELDS)
        }
        name_start = offset + HEADER_SIZE
        name = archive[name_start:name_start + fields["namesize"] - 1].decode()
        data_start = name_start + fields["namesize"]
        data_start += -data_start % 4
        data = archive[data_start:data_start + fields["filesize"]]
        offset = data_start + fields["filesize"]
        offset += -offset % 4
        if name == TRAILER:
            return
        yield CpioEntry(
            name, fields["mode"], data, fields["uid"], fields["gid"], fields["mtime"],
            fields["rdevmajor"], fields["rdevminor"],
        )
