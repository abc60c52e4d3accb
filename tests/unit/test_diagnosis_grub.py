"""grub.no_http_module: a GRUB that came over HTTP and could fetch nothing the same way (the
console and events of uefi_http_ipv6_secureboot on Debian 12's signed GRUB 2.06)."""

from __future__ import annotations

from pathlib import Path

import pytest
from test_diagnosis import SERVER6, Boot, only
from test_grubimage import grub_image

from pxelab.analysis.diagnosis import diagnose, grub

pytestmark = pytest.mark.unit

PROMPT = ("Welcome to GRUB!\n\nGNU GRUB  version 2.06-13+deb12u2\n\n   Minimal BASH-like line "
          "editing is supported.\n\ngrub> ")
FAILURE = ("GRUB stopped at its prompt: no grub.cfg ran to the end (is it at <data "
           "root>/grub/grub.cfg?) (console: 'grub>')")


def shim_http6_boot(data_root: Path, *, grub_modules: tuple[str, ...] | None = ("tftp",),
                    asked: tuple[str, ...] = ()) -> Boot:
    """shim over HTTPv6, its revocation probes, GRUB as //grubx64.efi, then ``asked``."""
    boot = Boot("uefi_http_ipv6_secureboot", firmware="ovmf", loader="shim-grub",
                nbp="shimx64.efi", data_root=str(data_root))
    if grub_modules is not None:
        (data_root / "grubx64.efi").write_bytes(grub_image(*grub_modules))
    boot.dhcp6(5.5, "advertise", "solicit", url=f"http://[{SERVER6}]/shimx64.efi",
               answered=True)
    boot.dhcp6(5.8, "reply", "request", url=f"http://[{SERVER6}]/shimx64.efi", answered=True)
    boot.hit(6.3, "nbp_url", f"  URI: http://[{SERVER6}]/shimx64.efi")
    boot.http(6.4, "/shimx64.efi", 200, 1048504, method="head")
    boot.http(6.5, "/shimx64.efi", 200, 1048504)
    boot.hit(6.8, "nbp_start", 'BdsDxe: starting Boot0002 "UEFI HTTPv6 (MAC:525400123456)"')
    for name in ("revocations_sku.efi", "revocations_sbat.efi", "shim_certificate_0.efi"):
        boot.http(7.0, f"/{name}", 404)
    boot.http(7.2, "//grubx64.efi", 200, 2_400_000)
    for at, name in enumerate(asked):
        boot.http(7.5 + at, name, 200 if name.endswith(".cfg") else 404)
    return boot


def test_grub_without_http_that_came_over_http(tmp_path: Path) -> None:
    evidence = shim_http6_boot(tmp_path).evidence("bootloader", FAILURE, 9.6, PROMPT)
    cause = only(grub.http_module_missing, evidence, "grub.no_http_module")
    assert cause.stage == "bootloader"
    assert "GRUB 2.06-13+deb12u2 (grubx64.efi) came over HTTP" in cause.summary
    assert "no http module (read from the data root's copy)" in cause.summary
    assert "//grubx64.efi" in cause.evidence[0] and "TFTP" in cause.fix
    assert diagnose(evidence).codes[0] == "grub.no_http_module"


def test_without_the_image_it_says_most_likely(tmp_path: Path) -> None:
    evidence = shim_http6_boot(tmp_path, grub_modules=None).evidence(
        "bootloader", FAILURE, 9.6, PROMPT)
    cause = only(grub.http_module_missing, evidence, "grub.no_http_module")
    assert "most likely, no http module" in cause.summary


@pytest.mark.parametrize(("modules", "asked"), [
    (("tftp", "http"), ()),  # it has http: something else kept it quiet
    (("tftp",), ("/grub/x86_64-efi/command.lst",)),  # it did ask: it could reach the server
], ids=["has-http", "asked-after"])
def test_quiet_when_grub_could_fetch(tmp_path: Path, modules: tuple[str, ...],
                                     asked: tuple[str, ...]) -> None:
    evidence = shim_http6_boot(tmp_path, grub_modules=modules, asked=asked).evidence(
        "bootloader", FAILURE, 9.6, PROMPT)
    assert grub.http_module_missing(evidence) is None


def test_quiet_when_grub_came_over_tftp(tmp_path: Path) -> None:
    boot = Boot("uefi_tftp_ipv6_secureboot", firmware="ovmf", loader="shim-grub",
                nbp="shimx64.efi", data_root=str(tmp_path))
    boot.tftp_get(5.0, "shimx64.efi", 1048504)
    boot.tftp_get(6.0, "/grubx64.efi", 2_400_000)
    assert grub.http_module_missing(boot.evidence("bootloader", FAILURE, 9.0, PROMPT)) is None


def test_quiet_without_the_prompt(tmp_path: Path) -> None:
    evidence = shim_http6_boot(tmp_path).evidence("bootloader", "timeout after 60 s", 70.0,
                                                  "Welcome to GRUB!")
    assert grub.http_module_missing(evidence) is None
