"""Secure Boot refusals (diagnosis.secureboot) and shim's second stage not found beside it
(diagnosis.tftp, file.not_found), on evidence shaped like uefi_tftp_ipv4_secureboot's
boots with the sb-* regressions: the console lines are shim 16.1's and Debian GRUB's."""

from __future__ import annotations

from pathlib import Path

import pytest
from test_diagnosis import NORMAL_BOOTS, UEFI_CLASS, Boot, only
from test_pe import synthetic_pe

from pxelab.analysis.diagnosis import diagnose, secureboot, tftp
from pxelab.analysis.evidence import Evidence

pytestmark = pytest.mark.unit

VIOLATION = "Verification failed: (0x1A) Security Violation"
SHIM_REFUSED = ("shim refused its second stage: it is not signed by a key shim trusts "
                f"(console: '{VIOLATION}')")
BAD_SIGNATURE = "error: bad shim signature."
REVOCATIONS = ("revocations_sku.efi", "revocations_sbat.efi", "shim_certificate_0.efi")


def shim_boot(root: Path, shim: str = "shimx64.efi", **files: bytes) -> Boot:
    """OVMF PXEv4 -> ``shim`` (its revocation files not found beside it); ``files`` are
    the data root's (path -> bytes), written under ``root``."""
    for name, data in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(data)
    boot = Boot("uefi_tftp_ipv4_secureboot", firmware="ovmf", loader="shim-grub",
                nbp=shim, data_root=str(root), data_files=tuple(sorted(files)))
    boot.hit(1.0, "firmware", ">>Start PXE over IPv4.")
    boot.dhcp4_round(4.0, file=shim, vendor_class=UEFI_CLASS, arch=7, user_classes=())
    boot.tftp_get(4.3, shim, 1048504, {"blksize": "1468", "windowsize": "4"})
    boot.hit(4.4, "nbp", "  NBP file downloaded successfully.")
    folder = shim.rpartition("/")[0]
    for at, name in enumerate(REVOCATIONS):
        boot.tftp_missing(4.5 + at / 100, f"{folder}/{name}" if folder else name)
    return boot


def unsigned_grub(root: Path, grub: bytes) -> Evidence:
    boot = shim_boot(root, **{"shimx64.efi": b"shim", "grubx64.efi": grub})
    boot.tftp_get(4.6, "grubx64.efi", len(grub), {"blksize": "512", "windowsize": "4"})
    tail = f"Fetching Netboot Image grubx64.efi\n ERROR \n {VIOLATION} \n OK"
    return boot.evidence("bootloader", SHIM_REFUSED, 4.7, tail)


def test_an_unsigned_second_stage_is_named_and_found_unsigned(tmp_path: Path) -> None:
    evidence = unsigned_grub(tmp_path, synthetic_pe())
    cause = only(secureboot.unsigned_second_stage, evidence,
                 "secureboot.unsigned_second_stage")
    assert "refused grubx64.efi" in cause.summary and "shimx64.efi" in cause.summary
    assert "no Authenticode signature" in cause.summary
    assert "grubnetx64.efi.signed" in cause.fix and "MOK" in cause.fix
    assert any("tftp.sent" in line and "grubx64.efi" in line for line in cause.evidence)
    assert diagnose(evidence).codes == ("secureboot.unsigned_second_stage",)


def test_a_second_stage_signed_by_another_key_says_so(tmp_path: Path) -> None:
    evidence = unsigned_grub(tmp_path, synthetic_pe(certificate=bytes(64)))
    cause = only(secureboot.unsigned_second_stage, evidence,
                 "secureboot.unsigned_second_stage")
    assert "carries an Authenticode signature, but not one shim trusts" in cause.summary


def test_without_the_data_root_the_refusal_is_still_named(tmp_path: Path) -> None:
    evidence = unsigned_grub(tmp_path, synthetic_pe())
    (tmp_path / "grubx64.efi").unlink()
    cause = only(secureboot.unsigned_second_stage, evidence,
                 "secureboot.unsigned_second_stage")
    assert cause.summary.endswith("grubx64.efi, the second stage it fetched next: "
                                  f"'{VIOLATION}': it is not signed by a key shim trusts")


def test_an_unsigned_kernel_is_named(tmp_path: Path) -> None:
    boot = shim_boot(tmp_path, **{"shimx64.efi": b"", "grubx64.efi": b"",
                                  "vmlinuz": synthetic_pe()})
    boot.tftp_get(4.6, "grubx64.efi", 3843520, {"blksize": "512", "windowsize": "4"})
    boot.tftp_get(6.0, "/grub/grub.cfg", 888)
    boot.hit(6.1, "bootloader", "pxelab: grub config loaded")
    boot.tftp_get(6.2, "/vmlinuz", 14189056)
    failure = f"GRUB refused the kernel (console: '{BAD_SIGNATURE}')"
    evidence = boot.evidence("kernel_fetch", failure, 9.0, f"{BAD_SIGNATURE}\n")
    cause = only(secureboot.unsigned_kernel, evidence, "secureboot.unsigned_kernel")
    assert cause.summary.startswith("GRUB loaded vmlinuz and shim refused it")
    assert "no Authenticode signature" in cause.summary
    assert "Debian Secure Boot Signer" in cause.fix
    assert diagnose(evidence).codes == ("secureboot.unsigned_kernel",)


def test_the_second_stage_not_beside_shim_names_both_paths(tmp_path: Path) -> None:
    boot = shim_boot(tmp_path, "efi/boot/shimx64.efi",
                     **{"efi/boot/shimx64.efi": b"", "grubx64.efi": b""})
    boot.tftp_missing(4.6, "efi/boot/grubx64.efi")
    failure = ("shim could not fetch its second stage (console: 'Unable to fetch TFTP image: "
               "Not Found')")
    evidence = boot.evidence("bootloader", failure, 4.7, "Unable to fetch TFTP image")
    cause = only(tftp.next_file_missing, evidence, "file.not_found")
    assert cause.summary.startswith("efi/boot/grubx64.efi was not found: shim "
                                    "(efi/boot/shimx64.efi) asked")
    assert "in efi/boot/, the directory of its own boot file" in cause.summary
    assert "has it only as grubx64.efi, in the top of the data root" in cause.summary
    assert "copy grubx64.efi to efi/boot/grubx64.efi" in cause.fix


@pytest.mark.parametrize("name", sorted(NORMAL_BOOTS))
def test_quiet_on_normal_boots(name: str) -> None:
    evidence = NORMAL_BOOTS[name]().evidence("userspace", "timeout", 90.0)
    assert secureboot.unsigned_second_stage(evidence) is None
    assert secureboot.unsigned_kernel(evidence) is None
