"""OVMF's NVRAM: firmware settings a guest starts with, written into its VARS copy.

Real machines keep network settings in their firmware's NVRAM, set once in the
setup screens (OVMF: Device Manager > Network Device List > IPv6 Network
Configuration). A scenario states them here as data; :func:`write_vars` puts
them into the guest's copy of the VARS flash before QEMU starts, with the
variable store code of virt-firmware (``virt.firmware.varstore.edk2``).

The SbatLevel (:mod:`pxelab.machine.sbat`) is shim's revocation level, as a firmware
or OS update leaves it in NVRAM.

The IPv6 settings are EDK2's Ip6Config NV variable, one per NIC, named after its
MAC address (NetworkPkg/Ip6Dxe/Ip6ConfigImpl.c, Ip6ConfigReadConfigData and
Ip6ConfigWriteConfigData; layout in Ip6ConfigImpl.h, tag edk2-stable202211).
"""

from __future__ import annotations

import struct
import uuid
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from virt.firmware.efi import efivar, ucs16  # type: ignore[import-untyped]
from virt.firmware.varstore.edk2 import Edk2VarStore  # type: ignore[import-untyped]

from pxelab.core.errors import ConfigError, GuestError
from pxelab.machine.sbat import SBAT_LEVEL_ATTRIBUTES, SBAT_LEVEL_NAME, SHIM_LOCK_GUID, SbatLevel

# gEfiIp6ConfigProtocolGuid (MdePkg/MdePkg.dec): the vendor GUID of the variable.
IP6_CONFIG_GUID = uuid.UUID("937fe521-95ae-4d1a-8929-48bcd90ad31a")
# IP6_CONFIG_VARIABLE_ATTRIBUTE: EFI_VARIABLE_NON_VOLATILE | EFI_VARIABLE_BOOTSERVICE_ACCESS.
IP6_CONFIG_ATTRIBUTES = 0x1 | 0x2
# EFI_IP6_CONFIG_DATA_TYPE values of the two records written (UEFI 2.x, Ip6Config.h).
_TYPE_POLICY = 2
_TYPE_DAD_TRANSMITS = 3
# IP6_CONFIG_VARIABLE header (packed): IaId u32, Checksum u16, DataRecordCount u16.
_HEADER = struct.Struct("<IHH")
# IP6_CONFIG_DATA_RECORD is not packed: Offset u16, 2 bytes padding, DataSize u32,
# DataType u32 (an enum) = 12 bytes.
_RECORD = struct.Struct("<H2xII")


class Ip6Policy(StrEnum):
    """EFI_IP6_CONFIG_POLICY: how EDK2 configures the NIC's IPv6 before anyone asks."""

    MANUAL = "manual"  # EDK2's default: no router discovery until a boot client asks
    AUTOMATIC = "automatic"  # router discovery and SLAAC as soon as the NIC is connected

    @property
    def code(self) -> int:
        return 0 if self is Ip6Policy.MANUAL else 1


@dataclass(frozen=True)
class Ip6Settings:
    """The IPv6 settings OVMF keeps for one NIC (its "IPv6 Network Configuration" form).

    ``dad_transmits`` is the DAD Transmit Count: how many Neighbor Solicitations EDK2
    sends to check each address before it uses it; 0 turns duplicate address
    detection off, so link-local and leased addresses are usable at once.
    """

    policy: Ip6Policy = Ip6Policy.MANUAL
    dad_transmits: int = 1

    def __post_init__(self) -> None:
        if not 0 <= self.dad_transmits <= 0xFFFFFFFF:
            raise ConfigError(f"Ip6Settings.dad_transmits={self.dad_transmits} must be "
                              "0..2**32-1 (0 turns duplicate address detection off)")


@dataclass(frozen=True)
class NvVariable:
    """One UEFI variable: name, vendor GUID, attributes and data."""

    name: str
    guid: uuid.UUID
    attributes: int
    data: bytes


def mac_string(mac: str) -> str:
    """EDK2's name for a NIC in variable names: its MAC in upper-case hex, no separators
    (NetLibGetMacString; a VLAN would add a suffix, pxelab's guests have none)."""
    return mac.replace(":", "").upper()


def default_iaid(mac: str) -> int:
    """The IAID EDK2 derives from the MAC (Ip6ConfigInitInstance), without its random part."""
    iaid = 0
    for index, byte in enumerate(bytes.fromhex(mac_string(mac))):
        iaid |= byte << ((index << 3) & 31)
    return iaid


def netblock_checksum(data: bytes) -> int:
    """EDK2's NetblockChecksum: the folded 16-bit sum of little-endian words."""
    total = data[-1] if len(data) % 2 else 0
    total += sum(int(word) for word in struct.unpack_from(f"<{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return total


def ip6_config_variable(mac: str, settings: Ip6Settings) -> NvVariable:
    """The Ip6Config variable that makes EDK2 start the NIC with ``settings``.

    Only the policy and DAD transmit count are written; EDK2 keeps its defaults for
    the items a variable leaves out (no manual address, gateway or DNS server).
    """
    values = ((_TYPE_POLICY, settings.policy.code),
              (_TYPE_DAD_TRANSMITS, settings.dad_transmits))
    size = _HEADER.size + len(values) * (_RECORD.size + 4)
    records, heap, offset = b"", b"", size
    for data_type, value in values:  # EDK2 fills its heap from the end, in type order
        offset -= 4
        records += _RECORD.pack(offset, 4, data_type)
        heap = struct.pack("<I", value) + heap
    body = records + heap
    unsigned = _HEADER.pack(default_iaid(mac), 0, len(values)) + body
    checksum = ~netblock_checksum(unsigned) & 0xFFFF
    data = _HEADER.pack(default_iaid(mac), checksum, len(values)) + body
    return NvVariable(mac_string(mac), IP6_CONFIG_GUID, IP6_CONFIG_ATTRIBUTES, data)


def sbat_level_variable(level: SbatLevel) -> NvVariable:
    """The SbatLevel variable as shim itself writes it (name, GUID, attributes, data)."""
    return NvVariable(SBAT_LEVEL_NAME, SHIM_LOCK_GUID, SBAT_LEVEL_ATTRIBUTES,
                      level.text().encode("ascii"))


def decode_ip6_config(data: bytes) -> dict[int, bytes]:
    """The records of an Ip6Config variable by EFI_IP6_CONFIG_DATA_TYPE, checksum verified
    as EDK2 does before it uses them (Ip6ConfigReadConfigData)."""
    if len(data) < _HEADER.size or netblock_checksum(data) != 0xFFFF:
        raise GuestError(f"Ip6Config variable of {len(data)} bytes is corrupt (EDK2 would "
                         "delete it and use its defaults); write it with ip6_config_variable()")
    _, _, count = _HEADER.unpack_from(data)
    records: dict[int, bytes] = {}
    for index in range(count):
        offset, size, data_type = _RECORD.unpack_from(data, _HEADER.size + index * _RECORD.size)
        if offset + size > len(data):
            raise GuestError(f"Ip6Config record {data_type} points past the variable's end")
        records[data_type] = data[offset:offset + size]
    return records


def read_variables(path: Path) -> tuple[NvVariable, ...]:
    """Every valid variable in the VARS flash at ``path``, e.g. a guest's after its boot."""
    return _variables(Edk2VarStore(str(path)))


def _variables(store: Edk2VarStore) -> tuple[NvVariable, ...]:
    """The store's valid variables, walked here with its offsets.

    virt-firmware's own list is keyed by name and keeps one of EDK2's two variables
    named after the MAC (Ip4Config2's and Ip6Config's).
    AUTHENTICATED_VARIABLE_HEADER is 60 bytes, name and data follow, the next header
    is 4-byte aligned; State 0x3f is VAR_ADDED and not deleted.
    """
    found, position = [], store.start
    while position < store.end:
        magic, state, attributes = struct.unpack_from("<HBxL", store.filedata, position)
        if magic != 0x55AA:
            break
        name_size, data_size = struct.unpack_from("<LL", store.filedata, position + 36)
        name_at = position + 60
        if state == 0x3F:
            name = store.filedata[name_at:name_at + name_size].decode("utf-16-le")
            data_at = name_at + name_size
            guid = uuid.UUID(bytes_le=store.filedata[position + 44:position + 60])
            found.append(NvVariable(name.rstrip("\0"), guid, attributes,
                                    store.filedata[data_at:data_at + data_size]))
        position = (name_at + name_size + data_size + 3) & ~3
    return tuple(found)


def write_vars(template: Path, output: Path, variables: tuple[NvVariable, ...]) -> None:
    """Copy the VARS flash ``template`` to ``output`` with ``variables`` set in it."""
    if not Edk2VarStore.probe(str(template)):
        raise GuestError(f"{template} is not a raw EDK2 variable store; pick an OVMF "
                         "build whose VARS template is raw (Debian's *_VARS*.fd are)")
    store = Edk2VarStore(str(template))
    varlist = store.get_varlist()  # keyed by name; writes each entry under its own name
    if len(varlist) != len(_variables(store)):
        raise GuestError(f"{template} holds two variables of the same name (EDK2 names its "
                         "IPv4 and IPv6 settings after the MAC); rewriting it would lose one: "
                         "start from OVMF's fresh VARS template")
    for variable in variables:
        key = variable.name
        same_name = varlist.get(key)
        if same_name is not None and same_name.guid != variable.guid:
            key = f"{variable.guid}:{variable.name}"  # keep both, as EDK2 does
        varlist[key] = efivar.EfiVar(ucs16.from_string(variable.name), guid=str(variable.guid),
                                     attr=variable.attributes, data=variable.data)
    store.write_varstore(str(output), varlist)
