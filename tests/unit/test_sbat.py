"""pxelab.machine.sbat and the SbatLevel in NVRAM: the codecs, the rule's comparison as
shim makes it, and the variable as shim writes it."""

from __future__ import annotations

import struct
from dataclasses import replace
from pathlib import Path

import pytest

from pxelab.analysis.diagnosis import diagnose
from pxelab.analysis.diagnosis.sbat import sbat_revoked
from pxelab.analysis.evidence import BootFacts, Evidence
from pxelab.core.errors import ConfigError
from pxelab.core.events import Event
from pxelab.machine import pe
from pxelab.machine.console import Timeline
from pxelab.machine.firmware import find_ovmf
from pxelab.machine.nvram import read_variables, sbat_level_variable, write_vars
from pxelab.machine.qemu import Firmware, GuestSpec
from pxelab.machine.sbat import (
    SHIM_LOCK_GUID,
    SbatEntry,
    SbatLevel,
    parse_sbat_level,
    parse_sbat_section,
    read_sbat,
)

pytestmark = pytest.mark.unit

# The .sbat section of Debian 12's grubnetx64.efi.signed (2.06-13+deb12u2), as objdump
# -j .sbat -s shows it, with the NUL padding to the file alignment it has on disk.
BOOKWORM_GRUB = (
    "sbat,1,SBAT Version,sbat,1,https://github.com/rhboot/shim/blob/main/SBAT.md\n"
    "grub,5,Free Software Foundation,grub,2.06,https://www.gnu.org/software/grub/\n"
    "grub.debian,5,Debian,grub2,2.06-13+deb12u2,https://tracker.debian.org/pkg/grub2\n"
    "grub.debian12,1,Debian,grub2,2.06-13+deb12u2,https://tracker.debian.org/pkg/grub2\n"
    + "\0" * 40)
# shim 16.1's built-in "automatic" level (Debian's shimx64.efi .sbatlevel section).
SHIM_AUTOMATIC = "sbat,1,2025021800\nshim,4\ngrub,5\n"


def test_section_rows_are_read_without_the_format_row_and_padding() -> None:
    assert parse_sbat_section(BOOKWORM_GRUB) == (
        SbatEntry("grub", 5, "Free Software Foundation", "grub", "2.06"),
        SbatEntry("grub.debian", 5, "Debian", "grub2", "2.06-13+deb12u2"),
        SbatEntry("grub.debian12", 1, "Debian", "grub2", "2.06-13+deb12u2"))
    assert parse_sbat_section("") == ()
    assert parse_sbat_section(BOOKWORM_GRUB)[0].describe() == "grub,5 (grub 2.06)"


def test_level_round_trips_as_shim_writes_it() -> None:
    level = parse_sbat_level(SHIM_AUTOMATIC)
    assert level == SbatLevel("2025021800", (("shim", 4), ("grub", 5)))
    assert level.text() == SHIM_AUTOMATIC
    assert level.describe() == "2025021800 shim,4 grub,5"
    # A variable read back may end in a NUL (shim's allocations do).
    assert parse_sbat_level(SHIM_AUTOMATIC + "\0") == level


@pytest.mark.parametrize("text", ["", "grub,5\n", "sbat,1\n", "sbat,1,2025\n",
                                  "sbat,1,2025021800\ngrub\n", "sbat,1,2025021800\ngrub,x\n"])
def test_malformed_levels_are_refused(text: str) -> None:
    with pytest.raises(ConfigError):
        parse_sbat_level(text)


def test_a_level_revokes_lower_generations_of_the_components_it_names() -> None:
    grub = parse_sbat_section(BOOKWORM_GRUB)
    assert parse_sbat_level(SHIM_AUTOMATIC).revokes(grub) == ()
    newer = SbatLevel("2026010100", (("shim", 4), ("grub", 6)))
    assert newer.revokes(grub) == ((grub[0], 6),)
    # A vendor's own component: only its own row counts.
    assert SbatLevel("2026010100", (("grub.debian", 6),)).revokes(grub) == ((grub[1], 6),)
    # Rows for components the binary does not carry revoke nothing (shim's own, here).
    assert SbatLevel("2026010100", (("shim", 5),)).revokes(grub) == ()
    # As shim: the first variable row of a component is the one compared.
    assert SbatLevel("2026010100", (("grub", 4), ("grub", 9))).revokes(grub) == ()


def test_variable_is_shims_name_guid_attributes_and_text() -> None:
    variable = sbat_level_variable(SbatLevel("2026010100", (("shim", 4), ("grub", 6))))
    assert variable.name == "SbatLevel"
    assert str(variable.guid) == "605dab50-e046-4300-abb6-3dd810dd8b23" == str(SHIM_LOCK_GUID)
    assert variable.attributes == 0x3  # non-volatile, boot services: shim keeps no other
    assert variable.data == b"sbat,1,2026010100\nshim,4\ngrub,6\n"


def test_level_is_written_into_the_secure_boot_vars_and_keeps_the_keys(tmp_path: Path) -> None:
    template = find_ovmf(secure_boot=True).vars_template
    variable = sbat_level_variable(SbatLevel("2026010100", (("grub", 6),)))
    output = tmp_path / "vars.fd"
    write_vars(template, output, (variable,))
    before, after = read_variables(template), read_variables(output)
    assert set(after) == set(before) | {variable}
    assert {"PK", "KEK", "db", "dbx"} <= {v.name for v in after}


def test_guest_spec_records_the_level_and_needs_uefi() -> None:
    level = SbatLevel("2026010100", (("shim", 4), ("grub", 6)))
    spec = GuestSpec(firmware=Firmware.OVMF, secure_boot=True, sbat_level=level)
    assert spec.firmware_settings() == (
        "rng=virtio-rng-pci,secure-boot=on,sbat-level=2026010100 shim:4 grub:6")
    with pytest.raises(ConfigError, match="sbat_level is a UEFI variable"):
        GuestSpec(sbat_level=level)
    with pytest.raises(ConfigError, match="YYYYMMDDnn"):
        SbatLevel("2026", ())


def _pe(sections: list[tuple[bytes, bytes, int]]) -> bytes:
    """A minimal PE image: DOS stub, PE header, no optional header, ``sections``
    (name, raw data, virtual size) laid out after the table."""
    pe_at, table = 0x40, 0x40 + 24
    at = table + 40 * len(sections)
    headers, body = b"", b""
    for name, raw, virtual in sections:
        headers += struct.pack("<8sIIIIIIHHI", name, virtual, 0x1000, len(raw), at + len(body),
                               0, 0, 0, 0, 0)
        body += raw
    dos = b"MZ" + b"\0" * 0x3A + struct.pack("<I", pe_at)
    coff = b"PE\0\0" + struct.pack("<HHIIIHH", 0x8664, len(sections), 0, 0, 0, 0, 0)
    return dos + coff + headers + body


def test_pe_section_is_cut_to_its_virtual_size(tmp_path: Path) -> None:
    text = b"sbat,1,SBAT Version,sbat,1,x\ngrub,5,FSF,grub,2.06,x\n"
    image = _pe([(b".text\0\0\0", b"\x90" * 16, 16), (b".sbat\0\0\0", text + b"\0" * 32,
                                                       len(text))])
    assert pe.section(image, ".sbat") == text
    assert pe.section(image, ".data") is None
    assert pe.section(b"not a PE image" * 8, ".sbat") is None
    path = tmp_path / "grubx64.efi"
    path.write_bytes(image)
    assert parse_sbat_section(read_sbat(path)) == (SbatEntry("grub", 5, "FSF", "grub", "2.06"),)


# -- the diagnosis rule ------------------------------------------------------------------

T0 = 1_796_624_140.0
REFUSED = ("shim refused its second stage: ... (console: 'ERROR  Verification failed: (0x1A) "
           "Security Violation  OK')")
LEVEL = "sbat,1,2026010100\nshim,4\ngrub,6\n"
SHIM_SBAT = "sbat,1,SBAT Version,sbat,1,x\nshim,4,UEFI shim,shim,1,x\n"


def _evidence(level: str = LEVEL, grub: str = BOOKWORM_GRUB, events: bool = True,
              failure: str = REFUSED) -> Evidence:
    facts = BootFacts("uefi_tftp_ipv4_secureboot", firmware="ovmf", nbp="shimx64.efi",
                      sbat_level=level,
                      efi_sbat={"shimx64.efi": SHIM_SBAT, "grubx64.efi": grub})
    sent = [Event("tftp", "sent", "192.0.2.100", name, "sent", "", {}, T0 + at, file=name)
            for at, name in ((7.9, "shimx64.efi"), (9.0, "grubx64.efi"))] if events else []
    timeline = Timeline(facts.scenario, [], "bootloader", failure, 9.2, "")
    return Evidence(facts, T0, timeline, tuple(sent))


def test_rule_names_the_revoked_binary_generation_and_level() -> None:
    cause = sbat_revoked(_evidence())
    assert cause is not None and cause.code == "secureboot.sbat_revoked"
    assert cause.stage == "bootloader"
    assert cause.summary == (
        "shim refused grubx64.efi: the SbatLevel in the machine's NVRAM (2026010100 shim,4 "
        "grub,6) revokes its SBAT generation grub,5 (grub 2.06), needs grub,6")
    assert "tftp.sent" in cause.evidence[0] and "grubx64.efi" in cause.evidence[0]
    assert "grub >= 6" in cause.fix
    assert diagnose(_evidence()).cause == cause
    # Without the server's events: the one EFI binary of the data root besides the NBP.
    assert sbat_revoked(_evidence(events=False)) is not None


def test_rule_is_silent_where_sbat_is_not_why() -> None:
    assert sbat_revoked(_evidence(level="")) is None  # no SbatLevel known
    assert sbat_revoked(_evidence(level=SHIM_AUTOMATIC)) is None  # grub,5 passes grub,5
    assert sbat_revoked(_evidence(grub="")) is None  # no .sbat: unsigned, not revoked
    # The binary fetched last has no .sbat: not shim's (shim,4) that came before it.
    no_sbat = _evidence(level="sbat,1,2026010100\nshim,5\n")
    no_sbat = replace(no_sbat, facts=replace(no_sbat.facts,
                                             efi_sbat={"shimx64.efi": SHIM_SBAT}))
    assert sbat_revoked(no_sbat) is None
    assert sbat_revoked(_evidence(failure="GRUB stopped at its prompt")) is None
    assert sbat_revoked(_evidence(level="garbage")) is None
