"""The Secure Boot regressions as scenario transformations (no boots; those are
tests/boot/test_regress_secureboot.py)."""

from __future__ import annotations

import pytest

from pxelab.core.errors import ConfigError
from pxelab.scenarios.edits import RenameFile
from pxelab.scenarios.matrix import find_case
from pxelab.scenarios.regressions import apply_regressions, get_regression
from pxelab.server.faults import RemoveFile, ReplaceFile, StripSignature

pytestmark = pytest.mark.unit

CASE = "uefi_tftp_ipv4_secureboot"


def test_unsigned_grub_replaces_the_second_stage_with_pxelabs_own_build() -> None:
    (fault,) = apply_regressions(find_case(CASE), ["sb-unsigned-grub"]).faults
    assert isinstance(fault, ReplaceFile) and fault.path == "grubx64.efi"
    assert fault.source.is_file()  # built (or found in the cache) when applied
    assert fault.describe() == "replace grubx64.efi with pxelab's unsigned grub-mkimage build"


def test_unsigned_kernel_strips_the_kernels_signature() -> None:
    scenario = apply_regressions(find_case(CASE), ["sb-unsigned-kernel"])
    assert scenario.faults == (StripSignature("vmlinuz"),)
    assert scenario.applied == ("sb-unsigned-kernel",)


def test_second_stage_path_moves_shim_and_leaves_grub_at_the_root() -> None:
    base = find_case(CASE)
    scenario = apply_regressions(base, ["sb-second-stage-path"])
    assert [rule.boot_file for rule in scenario.rules] == ["efi/boot/shimx64.efi"]
    moved, removed = scenario.faults
    assert isinstance(moved, ReplaceFile) and moved.path == "efi/boot/shimx64.efi"
    assert removed == RemoveFile("shimx64.efi")
    fixed = get_regression("sb-second-stage-path").fixed_for(base)
    assert fixed.edits == (RenameFile("shimx64.efi", "efi/boot/shimx64.efi"),
                           RenameFile("grubx64.efi", "efi/boot/grubx64.efi"))
    assert fixed.rules == scenario.rules and not fixed.faults


@pytest.mark.parametrize("name", ["sb-unsigned-grub", "sb-unsigned-kernel",
                                  "sb-second-stage-path"])
def test_a_case_without_shim_is_refused(name: str) -> None:
    with pytest.raises(ConfigError, match="_secureboot case"):
        apply_regressions(find_case("uefi_tftp_ipv4"), [name])


def test_second_stage_path_needs_tftp() -> None:
    with pytest.raises(ConfigError, match="TFTP root"):
        apply_regressions(find_case("uefi_http_ipv4_secureboot"), ["sb-second-stage-path"])
