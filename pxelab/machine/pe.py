"""PE/COFF images (EFI programs, EFI-stub kernels): their Authenticode signature.

Pure functions on the bytes of an image. A signed image carries its signatures in
the *certificate table*, data directory 4 of the optional header, whose "address"
is a file offset (not an RVA) and which sits at the end of the file, outside every
section (Microsoft PE/COFF specification, "The Attribute Certificate Table (Image
Only)"). Taking the signature off, as ``sbattach --remove`` does, is zeroing that
directory entry and cutting the file at its offset: the image is then exactly the
bytes the signature covered. The header's CheckSum is computed again for the new
bytes, as ``osslsigncode remove-signature`` does (UEFI ignores it; tools compare it).
"""

from __future__ import annotations

import struct
import sys
from array import array
from dataclasses import dataclass

from pxelab.core.errors import ConfigError

__all__ = ["CertificateTable", "certificate_table", "checksum", "is_signed", "section",
           "strip_signature"]

# The offset of the PE header is at 0x3c of the MS-DOS stub ("e_lfanew").
_LFANEW = 0x3C
_PE_SIGNATURE = b"PE\0\0"
_COFF_HEADER = 20  # Machine ... Characteristics
# Optional header magic -> offset of NumberOfRvaAndSizes in it; the data directories
# follow that field (8 bytes each: address, size).
_RVA_COUNT_AT = {0x10B: 92, 0x20B: 108}  # PE32, PE32+
_CERTIFICATE_DIRECTORY = 4
_CHECKSUM_AT = 64  # of the optional header, in PE32 and PE32+ alike


@dataclass(frozen=True)
class CertificateTable:
    """Where an image's certificate table is: ``entry`` is the file offset of its data
    directory entry, ``offset`` and ``size`` the table's own (both 0: unsigned)."""

    entry: int
    offset: int
    size: int
    checksum: int  # the file offset of the header's CheckSum field


def certificate_table(image: bytes) -> CertificateTable:
    """The certificate table of the PE image ``image``; ConfigError if it is no PE image."""
    if image[:2] != b"MZ" or len(image) < _LFANEW + 4:
        raise ConfigError("not a PE image (no 'MZ' header): give an EFI program or an "
                          "EFI-stub kernel")
    (pe,) = struct.unpack_from("<I", image, _LFANEW)
    if image[pe:pe + 4] != _PE_SIGNATURE:
        raise ConfigError(f"not a PE image: no 'PE\\0\\0' signature at offset {pe:#x}")
    optional = pe + 4 + _COFF_HEADER
    (magic,) = struct.unpack_from("<H", image, optional)
    if magic not in _RVA_COUNT_AT:
        raise ConfigError(f"PE optional header magic {magic:#x} is neither PE32 (0x10b) "
                          "nor PE32+ (0x20b)")
    (count,) = struct.unpack_from("<I", image, optional + _RVA_COUNT_AT[magic])
    entry = optional + _RVA_COUNT_AT[magic] + 4 + 8 * _CERTIFICATE_DIRECTORY
    checksum_at = optional + _CHECKSUM_AT
    if count <= _CERTIFICATE_DIRECTORY:
        return CertificateTable(entry, 0, 0, checksum_at)  # too few directories to have one
    offset, size = struct.unpack_from("<II", image, entry)
    if size and offset + size > len(image):
        raise ConfigError(f"PE certificate table at {offset:#x} (+{size}) runs past the end "
                          f"of the image ({len(image)} bytes): the file is cut short")
    return CertificateTable(entry, offset, size, checksum_at)


def is_signed(image: bytes) -> bool:
    """Whether the PE image carries an Authenticode certificate table."""
    return certificate_table(image).size > 0


def strip_signature(image: bytes) -> bytes:
    """``image`` without its certificate table: the directory entry zeroed, the file cut
    where the table began. An unsigned image raises ConfigError (nothing to take off)."""
    table = certificate_table(image)
    if not table.size:
        raise ConfigError("the PE image carries no signature to take off")
    stripped = bytearray(image[:table.offset])
    stripped[table.entry:table.entry + 8] = bytes(8)
    struct.pack_into("<I", stripped, table.checksum, checksum(stripped, table.checksum))
    return bytes(stripped)


def checksum(image: bytes | bytearray, field: int) -> int:
    """The PE CheckSum of ``image`` whose CheckSum field is at ``field``: its 16-bit
    little-endian words (the field taken as 0) added with end-around carry, plus the
    file's length (the algorithm of Windows' imagehlp CheckSumMappedFile)."""
    words = array("H", bytes(image[:field]) + bytes(4) + bytes(image[field + 4:])
                  + bytes(len(image) % 2))
    if sys.byteorder == "big":
        words.byteswap()
    total = sum(words)
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return total + len(image)


# SizeOfRawData, PointerToRawData, ...
_SECTION = struct.Struct("<8sIIII")


def section(data: bytes, name: str) -> bytes | None:
    """The raw data of the section ``name`` of the PE image ``data`` (None: no such section).

    Cut to its VirtualSize as shim reads .sbat: the on-disk size is padded to the
    file alignment.
    """
    if len(data) < 0x40 or data[:2] != b"MZ":
        return None
    (pe,) = struct.unpack_from("<I", data, 0x3C)
    if data[pe:pe + 4] != b"PE\0\0" or pe + 24 > len(data):
        return None
    (count,) = struct.unpack_from("<H", data, pe + 6)
    (optional,) = struct.unpack_from("<H", data, pe + 20)
    table = pe + 24 + optional
    wanted = name.encode().ljust(8, b"\0")
    for index in range(count):
        at = table + index * 40
        if at + _SECTION.size > len(data):
            return None
        raw_name, virtual_size, _, raw_size, raw_at = _SECTION.unpack_from(data, at)
        if raw_name == wanted:
            size = min(virtual_size or raw_size, raw_size)
            return data[raw_at:raw_at + size]
    return None
