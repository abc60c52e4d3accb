"""collect(): BootFacts from a scenario and an artifact directory; BootRun's error path."""

from __future__ import annotations

import json
import shutil
import time
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace

import pytest

from pxelab import lab
from pxelab.analysis.evidence import Evidence, LogLine
from pxelab.analysis.evidence.collect import (
    NFS_CONFIG,
    NO_DEBUG_OUTPUT,
    collect,
    module_names,
    nfs_export,
)
from pxelab.core.errors import HostCapabilityError
from pxelab.core.events import Event
from pxelab.core.paths import fixtures_dir
from pxelab.lab import BootRun
from pxelab.machine import firmware
from pxelab.machine.console import MilestoneHit, Timeline
from pxelab.machine.nfs import ganesha_config
from pxelab.machine.payload import Payload
from pxelab.scenarios.cases import get_scenario
from pxelab.scenarios.system import SystemUnderTest

pytestmark = pytest.mark.unit

POWER_ON = 1_800_000_000.0


def payload(tmp_path: Path) -> Payload:
    return Payload(kernel=tmp_path / "vmlinuz", initrd=tmp_path / "initrd.img",
                   rootfs=tmp_path / "rootfs", kernel_version="6.1.0-56-cloud-amd64",
                   packages={}, modules=("kernel/drivers/virtio/virtio.ko",
                                         "kernel/drivers/net/virtio_net.ko.xz"))


@pytest.fixture(autouse=True)
def firmware_versions(monkeypatch: pytest.MonkeyPatch) -> None:
    """Function, autouse: firmware package versions without asking this host's dpkg."""
    versions = {"seabios": "1.16.2-1", "ovmf-code": "2025.02-8+deb13u1"}
    monkeypatch.setattr(firmware, "versions_in_use", lambda names: {
        name.removesuffix("-code"): versions[name] for name in names if name in versions})


@pytest.fixture
def artifacts(tmp_path: Path) -> Path:
    """Function: an artifact directory with a data root and a small lab.pcap."""
    directory = tmp_path / "boots" / "legacy_pxe_ipv4-20261121-130727"
    for name in ("pxelinux.0", "ldlinux.c32", "pxelinux.cfg/default"):
        (directory / "data" / name).parent.mkdir(parents=True, exist_ok=True)
        (directory / "data" / name).write_bytes(b"x")
    shutil.copy(fixtures_dir() / "packets" / "ipxe-bios-dhcp4.pcap", directory / "lab.pcap")
    return directory


def test_facts_of_a_legacy_boot(artifacts: Path) -> None:
    scenario = get_scenario("legacy_pxe_ipv4")
    events = [Event("tftp", "sent", time=POWER_ON + 2), Event("dhcp4", "offer",
                                                              time=POWER_ON + 1)]
    evidence = collect(scenario, artifacts, Timeline(scenario.name), events,
                       started_wall=POWER_ON, payload=payload(artifacts),
                       artifact_paths={"serial log": artifacts / "serial.log"})
    facts = evidence.facts
    assert (facts.scenario, facts.firmware, facts.mode, facts.ip) == (
        "legacy_pxe_ipv4", "seabios", "legacy_pxe", "ipv4")
    assert (facts.loader, facts.nbp, facts.link_mtu) == ("pxelinux", "pxelinux.0", 1500)
    assert (facts.nic_model, facts.nic_driver) == ("virtio-net-pci", "virtio_net")
    assert facts.data_root == str(artifacts / "data")
    assert facts.data_files == ("ldlinux.c32", "pxelinux.0", "pxelinux.cfg/default")
    assert facts.initrd_modules == ("virtio", "virtio_net")
    assert facts.reproduce == f"pxelab boot legacy_pxe_ipv4 --artifacts {artifacts.parent}"
    assert facts.notes == () and facts.faults == ()
    assert facts.rng_device == "virtio-rng-pci"
    assert facts.firmware_packages == {"seabios": "1.16.2-1"}
    assert [p.kind for p in evidence.packets] == ["discover", "request"]
    assert [e.kind for e in evidence.events] == ["offer", "sent"]  # by time
    assert evidence.artifacts == {"serial log": str(artifacts / "serial.log")}
    assert Evidence.from_dict(json.loads(json.dumps(evidence.to_dict()))) == evidence


@pytest.mark.parametrize(("own_payload", "modules"), [(True, ("virtio", "virtio_net")),
                                                      (False, ())])
def test_a_lab_file_booting_its_own_initrd_has_no_payload_modules(
        artifacts: Path, own_payload: bool, modules: tuple[str, ...]) -> None:
    """pxelab's payload is built for every case, but only ``payload = true`` boots it:
    its modules are not those of the user's initrd."""
    system = SystemUnderTest(source=artifacts / "live.pxelab.toml", payload=own_payload)
    scenario = replace(get_scenario("legacy_pxe_ipv4"), system=system)
    evidence = collect(scenario, artifacts, Timeline(scenario.name), [],
                       started_wall=POWER_ON, payload=payload(artifacts))
    assert evidence.facts.initrd_modules == modules


def test_ovmf_without_debug_output_says_so(artifacts: Path) -> None:
    (artifacts / "lab.pcap").unlink()
    evidence = collect(get_scenario("uefi_http_ipv6"), artifacts, Timeline("uefi_http_ipv6"),
                       [], started_wall=POWER_ON, firmware_log=())
    assert evidence.facts.notes == ("no packet capture (lab.pcap missing)", NO_DEBUG_OUTPUT)
    assert evidence.facts.nbp == "snponly.efi" and evidence.facts.initrd_modules == ()
    assert evidence.facts.firmware_packages == {"ovmf": "2025.02-8+deb13u1"}


def test_unknown_firmware_versions_are_a_note(artifacts: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    def missing(names: object) -> dict[str, str]:
        raise HostCapabilityError("Debian package ovmf is not installed")

    monkeypatch.setattr(firmware, "versions_in_use", missing)
    evidence = collect(get_scenario("uefi_http_ipv4"), artifacts, Timeline("uefi_http_ipv4"),
                       [], started_wall=POWER_ON, firmware_log=())
    assert evidence.facts.firmware_packages == {}
    assert ("firmware package versions unknown: Debian package ovmf is not installed"
            in evidence.facts.notes)


def test_firmware_log_is_read_from_the_artifacts(artifacts: Path) -> None:
    (artifacts / "ovmf-debug.log").write_text(f"{POWER_ON + 1:.6f} PXE: hello\n")
    evidence = collect(get_scenario("uefi_http_ipv6"), artifacts, Timeline("uefi_http_ipv6"),
                       [], started_wall=POWER_ON)
    assert evidence.firmware_log == (LogLine(POWER_ON + 1, "PXE: hello"),)
    assert NO_DEBUG_OUTPUT not in evidence.facts.notes


def test_module_names() -> None:
    assert module_names(["kernel/net/sunrpc/sunrpc.ko", "kernel/x/8139cp.ko.zst"]) == (
        "sunrpc", "8139cp")


def test_a_run_that_raised_after_power_on_leaves_evidence(artifacts: Path) -> None:
    run = BootRun(get_scenario("legacy_pxe_ipv4"), artifacts)
    (artifacts / "serial.log").write_bytes(b"SeaBIOS\r\n\x1b[2Jbooting\r\n")
    run._guest = SimpleNamespace(  # type: ignore[assignment]  # what _evidence reads
        started_wall=POWER_ON, started_at=time.monotonic() - 3.0, firmware_log=(),
        serial_log=artifacts / "serial.log")
    run._hits = [MilestoneHit("firmware", 0.1, "SeaBIOS")]
    run._evidence_of_error(RuntimeError("QEMU still running"), payload(artifacts), [])
    evidence = Evidence.load(artifacts)
    assert evidence.timeline.failed_stage == "rom"  # the first milestone not reached
    assert evidence.timeline.failure == "the boot run raised RuntimeError: QEMU still running"
    assert evidence.timeline.console_tail == "SeaBIOS\nbooting"
    assert evidence.timeline.failed_at is not None and evidence.timeline.failed_at >= 3.0
    diagnosis = json.loads((artifacts / "diagnosis.json").read_text())
    assert diagnosis["ok"] is False and diagnosis["failed_stage"] == "rom"


def test_evidence_errors_never_mask_the_run(artifacts: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*args: object, **kwargs: object) -> Evidence:
        raise OSError("disk full")

    monkeypatch.setattr(lab, "collect", broken)
    run = BootRun(get_scenario("legacy_pxe_ipv4"), artifacts)
    run._guest = SimpleNamespace(  # type: ignore[assignment]
        started_wall=POWER_ON, started_at=time.monotonic(), firmware_log=(),
        serial_log=artifacts / "serial.log")
    run._evidence_of_error(RuntimeError("boom"), payload(artifacts), [])  # no raise
    assert run._evidence(Timeline("x"), payload(artifacts), []) == (None, None)
    assert not (artifacts / "evidence.json").exists()


@pytest.mark.parametrize(("bind", "pseudo", "export"), [
    ("192.0.2.1", "/pxelab", "192.0.2.1:/pxelab"),
    ("2001:db8::1", "/srv/root", "[2001:db8::1]:/srv/root")])
def test_the_nfs_export_is_read_from_the_ganesha_config(tmp_path: Path, bind: str,
                                                         pseudo: str, export: str) -> None:
    # The config Ganesha writes, as a client mounts it; no config (no server): "".
    (tmp_path / "nfs").mkdir()
    (tmp_path / NFS_CONFIG).write_text(ganesha_config(
        export_dir=tmp_path, workdir=tmp_path / "nfs", bind_address=bind, pseudo_path=pseudo,
        read_only=True, dbus_prefix="pxelab_test"))
    assert nfs_export(tmp_path / NFS_CONFIG) == export
    assert nfs_export(tmp_path / "nowhere.conf") == ""
