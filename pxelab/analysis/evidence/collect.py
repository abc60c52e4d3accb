"""Gather a boot's evidence after it ended: facts, events, packets, firmware and daemon
logs, paths.

    evidence = collect(scenario, artifacts, timeline, events, started_wall=guest.started_wall,
                       payload=payload, firmware_log=guest.firmware_log)
    evidence.write(artifacts)            # evidence.json

Run it after the lab network is gone: tcpdump has then flushed and closed
``lab.pcap``. Everything here reads what the boot left behind; nothing fails
the boot: what cannot be read becomes a note in :attr:`BootFacts.notes`.
"""

from __future__ import annotations

import logging
import os
import re
import time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

from pxelab.analysis.evidence.daemons import daemon_settings, daemons_of, read_daemon_logs
from pxelab.analysis.evidence.model import BootFacts, Evidence, PacketRecord
from pxelab.core.errors import ConfigError, GuestError, HostCapabilityError, PayloadError
from pxelab.core.events import Event
from pxelab.machine.backend import GuestBackend
from pxelab.machine.console import Timeline
from pxelab.machine.firmware_log import LogLine, read_log
from pxelab.machine.fwsets import FirmwareSet, load_firmware_set
from pxelab.machine.guestbase import OVMF_DEBUG_LOG
from pxelab.machine.network import PCAP_NAME
from pxelab.machine.nvram import read_variables
from pxelab.machine.payload import Payload
from pxelab.machine.payload.modules import module_name
from pxelab.machine.payload.nics import nic_driver
from pxelab.machine.qemu import OVMF_VARS
from pxelab.machine.sbat import SBAT_LEVEL_NAME, SHIM_LOCK_GUID, read_sbat
from pxelab.scenarios.cases import Scenario, reproduce_command

log = logging.getLogger(__name__)

DATA_DIR = "data"  # where BootRun populates the data root, under the artifacts
# A debug build of OVMF prints tens of thousands of lines; the evidence keeps the last
# ones (all of them stay in ovmf-debug.log).
MAX_FIRMWARE_LINES = 5000
MAX_DATA_FILES = 500
NO_DEBUG_OUTPUT = ("firmware debug port (isa-debugcon 0x402): no output (release build; "
                   "Debian's OVMF prints nothing there)")


def collect(scenario: Scenario, artifacts: Path, timeline: Timeline, events: Iterable[Event],
            *, started_wall: float, payload: Payload | None = None,
            firmware_log: Sequence[LogLine] | None = None,
            artifact_paths: Mapping[str, Path] | None = None,
            firmware_set: FirmwareSet | None = None,
            backend: GuestBackend | None = None) -> Evidence:
    """The :class:`Evidence` of the boot of ``scenario`` whose artifacts are in ``artifacts``.

    ``started_wall`` is the guest's power-on (``Guest.started_wall``);
    ``firmware_log`` the debug port lines (default: read ``ovmf-debug.log``);
    ``artifact_paths`` the files worth naming (default: none); ``firmware_set`` the
    set the guest booted (default: the scenario's); ``backend`` what started the guest
    (default: QEMU), for the reproduce command.
    """
    notes: list[str] = []
    packets = _packets(artifacts / PCAP_NAME, scenario.guest.mac, notes)
    lines = tuple(firmware_log) if firmware_log is not None \
        else read_log(artifacts / OVMF_DEBUG_LOG)
    if scenario.guest.firmware.is_uefi() and not lines:
        notes.append(NO_DEBUG_OUTPUT)
    if len(lines) > MAX_FIRMWARE_LINES:
        notes.append(f"firmware debug port: {len(lines)} lines, the evidence keeps the last "
                     f"{MAX_FIRMWARE_LINES} (all are in {OVMF_DEBUG_LOG})")
        lines = lines[-MAX_FIRMWARE_LINES:]
    daemon_log = read_daemon_logs(artifacts, packets, notes)
    return Evidence(
        facts=boot_facts(scenario, artifacts, payload, notes, firmware_set,
                         backend=backend),
        started_wall=started_wall, timeline=timeline,
        events=tuple(sorted(events, key=lambda e: e.time)), packets=tuple(packets),
        firmware_log=lines, daemon_log=daemon_log,
        artifacts={name: str(path) for name, path in (artifact_paths or {}).items()})


def boot_facts(scenario: Scenario, artifacts: Path, payload: Payload | None,
               notes: Sequence[str] = (), firmware_set: FirmwareSet | None = None,
               *, backend: GuestBackend | None = None) -> BootFacts:
    """What the lab of this boot was (no packets or logs read)."""
    data_root = artifacts / DATA_DIR
    notes = list(notes)
    packages = _firmware_packages(scenario, firmware_set, notes)
    # A lab file boots the user's programs: its NBP is what DHCP named, its initrd
    # pxelab's only if the file asks for pxelab's payload.
    own = scenario.system is None
    files = data_files(data_root)
    return BootFacts(
        scenario=scenario.name, firmware=str(scenario.guest.firmware), mode=str(scenario.mode),
        ip=str(scenario.ip), nic_model=scenario.nic_model,
        loader=str(scenario.loader) if own else "", nbp=scenario.loader.nbp if own else "",
        link_mtu=scenario.link_mtu or 1500,
        data_root=str(data_root), data_files=files,
        initrd_modules=module_names(payload.modules) if payload and _boots(scenario) else (),
        nic_driver=_nic_driver(scenario.nic_model), faults=tuple(scenario.applied),
        # --artifacts is the directory a new timestamped one is made under.
        reproduce=reproduce_command(scenario, str(artifacts.parent), backend, artifacts),
        rng_device=scenario.guest.rng_device,
        firmware_set=firmware_set.name if firmware_set else scenario.firmware_set,
        firmware_packages=packages, nfs_export=nfs_export(artifacts / NFS_CONFIG),
        daemons=daemons_of(artifacts), daemon_settings=daemon_settings(artifacts),
        sbat_level=sbat_level(artifacts / OVMF_VARS, notes),
        efi_sbat=efi_sbat(data_root, files), notes=tuple(notes))


# The config pxelab.machine.nfs.Ganesha writes into the boot's nfs/ directory: what the
# lab served, also when the guest asked for something else.
NFS_CONFIG = "nfs/ganesha.conf"
_BIND = re.compile(r"^\s*Bind_addr\s*=\s*(?P<value>[^;\s]+)\s*;", re.MULTILINE)
_PSEUDO = re.compile(r"^\s*Pseudo\s*=\s*\"(?P<value>[^\"]+)\"\s*;", re.MULTILINE)


def sbat_level(vars_file: Path, notes: list[str]) -> str:
    """shim's SbatLevel in the guest's VARS flash after its boot ("" if none or no OVMF)."""
    if not vars_file.is_file():
        return ""
    try:
        variables = read_variables(vars_file)
    except (OSError, ValueError, GuestError) as error:
        notes.append(f"SbatLevel unknown: {vars_file} unreadable ({error})")
        return ""
    for variable in variables:
        if variable.name == SBAT_LEVEL_NAME and variable.guid == SHIM_LOCK_GUID:
            return variable.data.decode("ascii", "replace")
    return ""


def efi_sbat(root: Path, files: Iterable[str]) -> dict[str, str]:
    """The .sbat section of each EFI binary among ``files`` under ``root`` that has one."""
    found = {}
    for name in files:
        if name.lower().endswith(".efi"):
            try:
                text = read_sbat(root / name)
            except OSError:
                continue
            if text:
                found[name] = text
    return found


def nfs_export(config: Path) -> str:
    """The export of a ganesha.conf as a client mounts it ("192.0.2.1:/pxelab"), or ""."""
    try:
        text = config.read_text(encoding="utf-8")
    except OSError:
        return ""
    bind, pseudo = _BIND.search(text), _PSEUDO.search(text)
    if bind is None or pseudo is None:
        return ""
    host = bind["value"]
    return f"[{host}]:{pseudo['value']}" if ":" in host else f"{host}:{pseudo['value']}"


def _firmware_packages(scenario: Scenario, fwset: FirmwareSet | None,
                       notes: list[str]) -> dict[str, str]:
    """The package versions of the scenario's firmware files in its set (a note if unknown)."""
    try:
        fwset = fwset or load_firmware_set(scenario.firmware_set)
        return fwset.versions(scenario.firmware)
    except (ConfigError, HostCapabilityError, PayloadError) as error:
        notes.append(f"firmware package versions unknown: {error}")
        return {}


def data_files(root: Path) -> tuple[str, ...]:
    """The files under the data root, as sorted relative paths (symlinks included)."""
    found: list[str] = []
    for directory, _, files in os.walk(root):
        base = Path(directory).relative_to(root)
        found += [(base / name).as_posix() for name in files]
        if len(found) > MAX_DATA_FILES:
            break
    return tuple(sorted(found)[:MAX_DATA_FILES])


def module_names(paths: Iterable[str]) -> tuple[str, ...]:
    """Kernel module names from paths under lib/modules ("kernel/.../e1000.ko.xz" -> "e1000")."""
    return tuple(module_name(path) for path in paths)


def _boots(scenario: Scenario) -> bool:
    """Whether the guest boots pxelab's payload: a lab file without ``payload = true``
    boots the user's initrd, whose modules pxelab does not know."""
    return scenario.system is None or scenario.system.payload


def _nic_driver(model: str) -> str:
    try:
        return ",".join(nic_driver(model).modules)
    except ConfigError:
        return ""


def _packets(pcap: Path, mac: str, notes: list[str]) -> list[PacketRecord]:
    if not pcap.exists():
        notes.append(f"no packet capture ({pcap.name} missing)")
        return []
    # scapy takes about a second to import: only a boot that is collected pays for it.
    from pxelab.analysis.evidence.packets import summarise_pcap  # noqa: PLC0415

    started = time.perf_counter()
    packets = summarise_pcap(pcap, {mac})
    log.debug("summarised %s (%d bytes) into %d records in %.2fs", pcap,
              pcap.stat().st_size, len(packets), time.perf_counter() - started)
    return packets
