"""bench/secureboot_bench.py's pure parts: targets, the ways' machines, transfers from the
server's events, stages, medians, the SMM-without-keys set file and the tables."""

from __future__ import annotations

import importlib.util
import sys
import tomllib
from pathlib import Path
from types import ModuleType

import pytest

from pxelab.core.errors import ConfigError
from pxelab.core.events import Event
from pxelab.scenarios import milestones as ms
from pxelab.scenarios.milestones import secure_boot_state, with_secure_boot

pytestmark = pytest.mark.unit

REPO = Path(__file__).resolve().parents[2]


def bench() -> ModuleType:
    spec = importlib.util.spec_from_file_location("secureboot_bench",
                                                  REPO / "bench/secureboot_bench.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("secureboot_bench", module)
    spec.loader.exec_module(module)
    return module


def test_a_target_is_a_secure_boot_case_on_a_set_and_names_its_counterpart() -> None:
    sb = bench()
    target = sb.Target.parse("uefi_http_ipv4_secureboot@trixie")
    assert (target.case, target.fwset, target.counterpart) == (
        "uefi_http_ipv4_secureboot", "trixie", "uefi_http_ipv4")
    assert sb.Target.parse("uefi_tftp_ipv4_secureboot").fwset == "host"
    assert str(target) == "uefi_http_ipv4_secureboot@trixie"
    with pytest.raises(ConfigError, match="Secure Boot case"):
        sb.Target.parse("uefi_tftp_ipv4@host")


def test_each_way_boots_the_machine_it_names() -> None:
    sb = bench()
    target = sb.Target.parse("uefi_tftp_ipv4_secureboot@trixie")
    secure = sb.scenario_for(sb.Way.SECURE, target, "/x/smm.toml")
    assert secure.guest.secure_boot and secure.firmware_set == "trixie"
    assert secure_boot_state(secure.milestones) is ms.SECURE_BOOT_ON
    smm = sb.scenario_for(sb.Way.SMM_DIRECT, target, "/x/smm.toml")
    assert smm.guest.secure_boot and smm.firmware_set == "/x/smm.toml"
    assert secure_boot_state(smm.milestones) is ms.SECURE_BOOT_OFF
    chain = sb.scenario_for(sb.Way.CHAIN, target, "/x/smm.toml")
    assert not chain.guest.secure_boot and chain.loader is secure.loader
    assert secure_boot_state(chain.milestones) is ms.SECURE_BOOT_OFF
    assert "ovmf-code" in chain.firmware and "ovmf-code-sb" not in chain.firmware
    plain = sb.scenario_for(sb.Way.PLAIN_DIRECT, target, "/x/smm.toml")
    assert plain.name == "uefi_tftp_ipv4" and not plain.guest.secure_boot
    assert [w for w in sb.Way if w.direct] == list(sb.DIRECT_WAYS)


def test_the_direct_boot_checks_the_cases_secure_boot_state() -> None:
    linux = ms.LINUX_NFSROOT
    assert secure_boot_state(linux) is None
    for state in ms.SECURE_BOOT_STATES:
        names = [m.name for m in with_secure_boot(linux, state)]
        assert names[names.index("kernel") + 1] == state.name
        assert secure_boot_state(with_secure_boot(linux, state)) is state


def test_transfers_are_whole_files_on_the_guests_clock() -> None:
    sb = bench()
    events = [
        Event("tftp", "rrq", file="shimx64.efi", time=107.0),
        Event("tftp", "aborted", file="shimx64.efi", time=107.1,
              details={"seconds": 0.001, "bytes": 0}),
        Event("http", "get", file="/vmlinuz", time=112.0,
              details={"status": 200, "seconds": 1.5, "bytes": 14}),
        Event("http", "get", file="/revocations.efi", time=108.0,
              details={"status": 404, "seconds": 0.01, "bytes": 20}),
        Event("tftp", "sent", file="/grub/grub.cfg", time=109.0,
              details={"seconds": 0.25, "bytes": 888, "blksize": 1024, "windowsize": 1}),
    ]
    found = sb.transfers(events, started_wall=100.0)
    assert found == [sb.Transfer("tftp", "grub/grub.cfg", 8.75, 9.0, 888, 1024, 1),
                     sb.Transfer("http", "vmlinuz", 10.5, 12.0, 14)]


def test_stages_and_medians() -> None:
    sb = bench()
    rows = sb.stages({"kernel": 14.5, "fw_dhcp": 7.25, "bootloader": 9.0})
    assert rows == [("fw_dhcp", 7.25, 7.25), ("bootloader", 9.0, 1.75),
                    ("kernel", 14.5, 5.5)]
    assert sb.medians([{"a": 1.0, "b": 5.0}, {"a": 3.0}, {"a": 2.0, "b": 7.0}]) == {
        "a": 2.0, "b": 6.0}
    runs = [[sb.Transfer("tftp", "vmlinuz", 9.0, 11.0, 10, 1024, 1)],
            [sb.Transfer("tftp", "vmlinuz", 9.0, 12.0, 10, 1024, 1)]]
    (kernel,) = sb.transfer_medians(runs)
    assert (kernel["file"], kernel["end"], kernel["seconds"], kernel["blksize"]) == (
        "vmlinuz", 11.5, 2.5, 1024)


def test_the_smm_set_file_is_a_set_file_with_the_secure_boot_pair(tmp_path: Path) -> None:
    sb = bench()
    text = sb.smm_set_text("trixie", Path("/c/OVMF_CODE_4M.ms.fd"),
                           Path("/c/OVMF_VARS_4M.fd"), "2025.02-8")
    data = tomllib.loads(text)
    assert data["base"] == "trixie" and data["name"] == "trixie-smm-nokeys"
    assert data["files"]["ovmf-code-sb"]["path"] == "/c/OVMF_CODE_4M.ms.fd"
    assert data["files"]["ovmf-vars-sb"]["path"] == "/c/OVMF_VARS_4M.fd"
    assert set(data["files"]["ovmf-vars-sb"]) == {"path", "version"}


def test_tables_show_each_way_and_ratio() -> None:
    sb = bench()
    target = sb.Target.parse("uefi_tftp_ipv4_secureboot@host")

    def runs(*seconds: float) -> list[dict[str, object]]:
        return [{"milestones": {"userspace": s}, "transfers": []} for s in seconds]

    samples = {str(target): {"secure": runs(18.0, 20.0), "smm": runs(16.0),
                             "chain": runs(14.0), "counterpart": runs(21.0)},
               "@host": {"secure-direct": runs(9.5), "smm-direct": runs(9.0),
                         "plain-direct": runs(7.0), "extra": runs(1.0)}}
    times = sb.report_times([target], samples)
    assert "| `uefi_tftp_ipv4_secureboot` @ host | 9.50 | 19.00 (18.00-20.00) | 9.00 |" \
        in times
    ratios = sb.report_ratios([target], samples)
    assert "| secure / secure-direct | the network boot chain on the Secure Boot machine " \
           "| 2.00x |" in ratios
    assert "| smm / chain | SMM on the shim + GRUB chain | 1.14x |" in ratios
    assert sb.cell([]) == "failed"
    assert sb.ratio({sb.Way.SECURE: [], sb.Way.SMM: [1.0]}, sb.Way.SECURE, sb.Way.SMM) is None


def test_samples_survive_the_json_file() -> None:
    sb = bench()
    samples = {"uefi_tftp_ipv4_secureboot@host": {"secure": [
        {"milestones": {"userspace": 18.0}, "packages": {}, "accelerator": "tcg",
         "transfers": [sb.Transfer("tftp", "vmlinuz", 9.0, 11.0, 10, 1024, 1)]}]}}
    assert sb.from_json(sb.to_json(samples)) == samples
