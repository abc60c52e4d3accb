"""Data-root faults (RemoveFile, ReplaceFile) and the tftp regressions, without QEMU."""

from __future__ import annotations

from pathlib import Path

import pytest
from test_pe import synthetic_pe

from pxelab.core.errors import ConfigError
from pxelab.core.events import EventLog
from pxelab.machine import pe
from pxelab.scenarios import dataroot
from pxelab.scenarios.matrix import find_case
from pxelab.scenarios.regressions import apply_regressions, get_regression
from pxelab.server.faults import (
    DropPacket,
    FaultInjector,
    OackFault,
    OackMode,
    RemoveFile,
    ReplaceFile,
    StripSignature,
)

pytestmark = pytest.mark.unit


@pytest.fixture
def root(tmp_path: Path) -> Path:
    """Function: a data root with pxelinux.0 and ldlinux.c32 (a few bytes each)."""
    root = tmp_path / "data"
    root.mkdir()
    (root / "pxelinux.0").write_bytes(b"nbp")
    (root / "ldlinux.c32").write_bytes(b"ours")
    return root


def test_remove_file_takes_it_out_and_says_so(root: Path, tmp_path: Path) -> None:
    events = EventLog()
    dataroot.apply_file_faults(root, (RemoveFile("ldlinux.c32"),), events)
    assert sorted(p.name for p in root.iterdir()) == ["pxelinux.0"]
    (event,) = events
    assert (event.source, event.kind) == ("fault", "injected")
    assert event.reason == "remove ldlinux.c32 from the data root"
    assert event.details == {"fault": "RemoveFile"} and event.file == "ldlinux.c32"


def test_replace_file_copies_the_source_and_leaves_a_hard_link_alone(root: Path,
                                                                      tmp_path: Path) -> None:
    shared = tmp_path / "cache-ldlinux.c32"
    shared.write_bytes(b"cached")
    dataroot.place(shared, root / "ldlinux.c32")  # a hard link into a cache, as populate does
    other = tmp_path / "other-build.c32"
    other.write_bytes(b"theirs")
    dataroot.apply_file_faults(root, (ReplaceFile("ldlinux.c32", other, origin="6.03"),))
    assert (root / "ldlinux.c32").read_bytes() == b"theirs"
    assert shared.read_bytes() == b"cached", "the cached file the root linked to is untouched"


def test_server_faults_are_left_to_the_servers(root: Path) -> None:
    dataroot.apply_file_faults(root, (DropPacket("tftp.rrq"), OackFault(OackMode.CORRUPT)))
    assert sorted(p.name for p in root.iterdir()) == ["ldlinux.c32", "pxelinux.0"]


def test_a_missing_target_or_source_is_a_config_error(root: Path, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"no menu\.c32"):
        dataroot.apply_file_faults(root, (RemoveFile("menu.c32"),))
    with pytest.raises(ConfigError, match="is not a file"):
        dataroot.apply_file_faults(root, (ReplaceFile("ldlinux.c32", tmp_path / "nowhere"),))


@pytest.mark.parametrize("path", ["/ldlinux.c32", "../ldlinux.c32", "a/../../b", ""])
def test_data_root_fault_paths_stay_inside_the_root(path: str) -> None:
    with pytest.raises(ConfigError, match="relative to the data root"):
        RemoveFile(path)


def test_the_injector_ignores_data_root_faults() -> None:
    injector = FaultInjector((RemoveFile("ldlinux.c32"),), EventLog())
    assert not injector.packet("tftp.rrq", file="ldlinux.c32")
    assert injector.tftp("ldlinux.c32") == injector.tftp("other")


# -- the regressions ---------------------------------------------------------------------

def test_ldlinux_missing_removes_the_file_beside_pxelinux() -> None:
    scenario = apply_regressions(find_case("legacy_pxe_ipv4"), ["ldlinux-missing"])
    assert scenario.faults == (RemoveFile("ldlinux.c32"),)
    assert scenario.applied == ("ldlinux-missing",)


def test_ldlinux_foreign_takes_a_path_or_the_efi64_build(tmp_path: Path) -> None:
    other = tmp_path / "ldlinux.c32"
    other.write_bytes(b"6.03")
    scenario = apply_regressions(find_case("legacy_pxe_ipv4"), [f"ldlinux-foreign={other}"])
    assert scenario.faults == (ReplaceFile("ldlinux.c32", other, origin=str(other)),)
    with pytest.raises(ConfigError, match="no such file"):
        apply_regressions(find_case("legacy_pxe_ipv4"), [f"ldlinux-foreign={tmp_path / 'x'}"])
    assert get_regression("ldlinux-foreign").default == "efi64"


def test_ldlinux_rrq_dropped_silences_every_path_and_waits_less() -> None:
    base = find_case("legacy_pxe_ipv4")
    scenario = apply_regressions(base, ["ldlinux-rrq-dropped"])
    (fault,) = scenario.faults
    assert isinstance(fault, DropPacket) and fault.count == 0
    injector = FaultInjector(scenario.faults, EventLog())
    for name in ("ldlinux.c32", "/boot/isolinux/ldlinux.c32", "/ldlinux.c32"):
        assert injector.packet("tftp.rrq", file=name).drop
    assert not injector.packet("tftp.rrq", file="pxelinux.0")
    timeouts = {m.name: m.timeout for m in scenario.milestones}
    assert timeouts["config"] < {m.name: m.timeout for m in base.milestones}["config"]


def test_blksize_mtu_sets_the_link_mtu() -> None:
    entry = get_regression("tftp-blksize-mtu")
    base = find_case("legacy_pxe_ipv4")
    assert apply_regressions(base, ["tftp-blksize-mtu"]).link_mtu == 1200
    assert apply_regressions(base, ["tftp-blksize-mtu=1000"]).link_mtu == 1000
    assert entry.fixed_for(base).link_mtu is None
    for bad in ("1500", "big", "40"):
        with pytest.raises(ConfigError):
            apply_regressions(base, [f"tftp-blksize-mtu={bad}"])


@pytest.mark.parametrize(("name", "mode"), [("oack-malformed", OackMode.CORRUPT),
                                            ("oack-extra-option", OackMode.ADD_OPTION)])
def test_oack_entries_fault_ovmf_pxe(name: str, mode: OackMode) -> None:
    entry = get_regression(name)
    (fault,) = apply_regressions(find_case(entry.scenario), [name]).faults
    assert isinstance(fault, OackFault) and fault.mode is mode and fault.file == "*"
    # OVMF asks tsize, blksize and windowsize: the added option must be none of them.
    assert fault.option[0] not in ("tsize", "blksize", "windowsize")


def test_strip_signature_takes_the_table_off_a_copy(root: Path, tmp_path: Path) -> None:
    signed = synthetic_pe(certificate=bytes(64))
    shared = tmp_path / "cache-vmlinuz"
    shared.write_bytes(signed)
    dataroot.place(shared, root / "vmlinuz")  # a hard link into the payload cache
    events = EventLog()
    dataroot.apply_file_faults(root, (StripSignature("vmlinuz"),), events)
    assert (root / "vmlinuz").read_bytes() == pe.strip_signature(signed)
    assert shared.read_bytes() == signed, "the cached kernel the root linked to is untouched"
    (event,) = events
    assert event.reason == "strip the Authenticode signature off vmlinuz"
    with pytest.raises(ConfigError, match="no signature"):
        dataroot.apply_file_faults(root, (StripSignature("vmlinuz"),))
