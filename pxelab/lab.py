"""One boot of one scenario in a fresh lab, with all its evidence kept.

:class:`BootRun` wires the parts together — lab network, boot server, NFS
server, guest, console watcher — and tears every one of them down, in reverse
order, whatever happens. Each part stays usable on its own.

After the lab is gone (so the packet capture is complete) it collects the
boot's evidence and diagnoses it (``evidence.json``, ``diagnosis.json``),
also when the run raised after the guest had started: best effort, the
original error is what propagates.
"""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Callable, Iterable, Sequence
from contextlib import AbstractContextManager, ExitStack
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from pxelab.analysis.diagnosis import Diagnosis, diagnose
from pxelab.analysis.evidence import EVIDENCE_FILE, Evidence
from pxelab.analysis.evidence.collect import collect
from pxelab.analysis.live import live_guards
from pxelab.analysis.livewire import wire_guards
from pxelab.core.events import Event, EventLog
from pxelab.daemons.stack import DaemonStack
from pxelab.labfile.dataroot import fill_data_root, lab_values
from pxelab.machine.backend import GuestBackend
from pxelab.machine.console import (
    ConsoleWatcher,
    Milestone,
    MilestoneHit,
    OnHit,
    StageGuard,
    Timeline,
)
from pxelab.machine.fwsets import FirmwareSet, load_firmware_set
from pxelab.machine.hostlink import HostBridge
from pxelab.machine.libvirt.connection import check_connection, domain_name
from pxelab.machine.libvirt.guest import DOMAIN_FILE, VIRSH_FILE, LibvirtGuest
from pxelab.machine.network import PCAP_NAME, LabNetwork
from pxelab.machine.nfs import Ganesha
from pxelab.machine.payload import USERSPACE, Payload, build_payload
from pxelab.machine.qemu import Guest, GuestSpec
from pxelab.machine.terminal import serial_log_tail
from pxelab.scenarios import dataroot
from pxelab.scenarios.cases import IpVersion, Scenario, for_firmware_set
from pxelab.scenarios.edits import edit_data_root, serves_nfs
from pxelab.scenarios.milestones import (
    ANY_STAGE,
    LINUX_NFSROOT,
    LINUX_NFSROOT_IPV6,
    secure_boot_state,
    with_secure_boot,
)
from pxelab.server.bootserver import BootServer, ServerConfig
from pxelab.server.policy import BootPolicy

DIAGNOSIS_FILE = "diagnosis.json"
# Artifact name -> file under the artifacts directory (what reports and summaries list).
ARTIFACT_FILES = {"serial log": "serial.log", "server events": "events.jsonl",
                  "ganesha log": "nfs/ganesha.log", "qemu command": "qemu-cmdline.txt",
                  "packet capture": "lab.pcap", "timeline": "timeline.json",
                  "firmware log": "ovmf-debug.log", "evidence": EVIDENCE_FILE,
                  "diagnosis": DIAGNOSIS_FILE, "domain xml": DOMAIN_FILE,
                  "virsh commands": VIRSH_FILE}
# The guest of either backend (pxelab.machine.backend): the same interface to the lab.
LabGuest = Guest | LibvirtGuest


@dataclass(frozen=True)
class BootResult:
    """The outcome of one boot and where its evidence lies."""

    scenario: str
    timeline: Timeline
    artifacts: Path
    events: tuple[Event, ...]
    nfs_source: str
    # False for a lab file whose own success pattern is the proof (pxelab.labfile).
    needs_marker: bool = True
    # Filled after the boot (pxelab.analysis.evidence.collect, pxelab.analysis.diagnosis.diagnose).
    evidence: Evidence | None = None
    diagnosis: Diagnosis | None = None

    @property
    def marker(self) -> dict[str, str] | None:
        """root and fstype printed by userspace, if it got that far."""
        for hit in self.timeline.hits:
            if found := USERSPACE.search(hit.text):
                return found.groupdict()
        return None

    @property
    def ok(self) -> bool:
        """True only if userspace ran from the lab's NFS export."""
        marker = self.marker
        if not self.needs_marker:
            return self.timeline.ok
        return (self.timeline.ok and marker is not None
                and marker["root"] == self.nfs_source and marker["fstype"].startswith("nfs"))

    def artifact_paths(self) -> dict[str, Path]:
        found = {k: self.artifacts / v for k, v in ARTIFACT_FILES.items()
                 if (self.artifacts / v).exists()}
        # A lab file's daemons: each one's log and rendered configuration.
        for path in sorted((self.artifacts / "daemons").glob("*.log")):
            found[f"{path.stem} log"] = path
            if path.with_suffix(".conf").exists():
                found[f"{path.stem} config"] = path.with_suffix(".conf")
        return found

    def to_dict(self) -> dict[str, Any]:
        return {"scenario": self.scenario, "ok": self.ok, "marker": self.marker,
                "timeline": self.timeline.to_dict(),
                "artifacts": {k: str(v) for k, v in self.artifact_paths().items()},
                "events": [json.loads(e.to_json()) for e in self.events]}


# Builds the boot server for a lab: (network, data root, events) -> context manager.
ServerFactory = Callable[[LabNetwork, Path, EventLog], AbstractContextManager[object]]


class BootRun:
    """Boot ``scenario`` once in a fresh lab; artifacts go to ``artifacts``.

    ``server`` replaces pxelab's boot server (benchmarks run dnsmasq there);
    ``direct_kernel`` skips firmware and boot loader and starts the payload's
    kernel with QEMU's -kernel/-initrd: the physical limit of this payload.
    ``backend`` starts the guest with QEMU in the lab namespace (default) or as a
    libvirt domain on a host bridge joined to the lab's.
    """

    def __init__(self, scenario: Scenario, artifacts: Path, cache_dir: Path | None = None, *,
                 on_hit: OnHit | None = None, server: ServerFactory | None = None,
                 direct_kernel: bool = False, backend: GuestBackend | None = None) -> None:
        self.scenario = scenario
        self.artifacts = artifacts
        self.cache_dir = cache_dir
        self.on_hit = on_hit
        self.server_factory: ServerFactory = server or self._server
        self.direct_kernel = direct_kernel
        self.backend = backend or GuestBackend()
        self.log = logging.getLogger(f"{__name__}.{scenario.name}")
        # What the evidence needs of a run, kept also when the run raises.
        self._guest: LabGuest | None = None
        self._milestones = scenario.milestones
        self._hits: list[MilestoneHit] = []
        # The lab's values for the templates of a lab file's files and daemons.
        self._values: dict[str, str] = {}
        self.fwset: FirmwareSet = load_firmware_set(scenario.firmware_set, cache_dir)

    def run(self) -> BootResult:
        # Every firmware file comes from the scenario's firmware set, and which way an
        # iPXE-ROM scenario boots depends on that set's ROM.
        self.scenario = for_firmware_set(self.scenario, self.fwset)
        self._milestones = self.scenario.milestones
        self.artifacts.mkdir(parents=True, exist_ok=True)
        if self.backend.kind.is_libvirt():  # no lab built for a daemon that is not there
            check_connection(self.backend.libvirt_uri)
        payload = build_payload(self.scenario.payload, self.cache_dir)
        # A boot ends: its evidence and diagnosis read every event it had, from memory.
        events = EventLog(self.artifacts / "events.jsonl", window=None)
        self._guest, self._hits = None, []
        try:
            timeline, nfs_source = self._boot(payload, events)
        except Exception as error:
            events.close()
            self._evidence_of_error(error, payload, events)
            raise
        finally:
            events.close()
        return self.judge(timeline, payload, events, nfs_source)

    def judge(self, timeline: Timeline, payload: Payload, events: Iterable[Event],
              nfs_source: str) -> BootResult:
        """The result of the boot the guest ran: what ran, evidence, diagnosis and
        ``timeline.json``. ``events`` are this boot's (a multi-guest lab hands each
        guest its own)."""
        events = tuple(events)
        timeline.properties.update(self._case(timeline) | self._versions(payload, timeline))
        system = self.scenario.system
        result = BootResult(self.scenario.name, timeline, self.artifacts, events,
                            nfs_source, needs_marker=system is None or system.needs_marker)
        evidence, diagnosis = self._evidence(timeline, payload, events)
        result = replace(result, evidence=evidence, diagnosis=diagnosis)
        (self.artifacts / "timeline.json").write_text(json.dumps(result.to_dict(), indent=2))
        self.log.info("boot %s; artifacts in %s", "reached userspace" if result.ok
                      else f"failed at {timeline.failed_stage}: {timeline.failure}",
                      self.artifacts)
        return result

    def _boot(self, payload: Payload, events: EventLog) -> tuple[Timeline, str]:
        # Listening before the server starts: the guards see every event of this boot.
        guards = self._guards(events, self.scenario.guest.mac)
        with ExitStack() as stack:
            net, nfs_source, cmdline = self._lab(stack, payload, events)
            spec, milestones = self.scenario.guest, self.scenario.milestones
            if self.direct_kernel:
                spec = replace(spec, kernel=payload.kernel, initrd=payload.initrd, append=cmdline)
                milestones = (LINUX_NFSROOT_IPV6 if self.scenario.ip is IpVersion.IPV6
                              else LINUX_NFSROOT)
                # The same machine proves the same Secure Boot state as the case.
                if (state := secure_boot_state(self.scenario.milestones)) is not None:
                    milestones = with_secure_boot(milestones, state)
            self._milestones = milestones
            guest = self._new_guest(stack, net, spec)
            stack.enter_context(guest)
            self._guest = guest
            return self.watched(guest, milestones, guards, self._hit), nfs_source

    def _guards(self, events: EventLog, mac: str,
                mine: Callable[[Event], bool] | None = None) -> tuple[StageGuard, ...]:
        """The live guards of the guest with ``mac`` (``mine``: which events are its)."""
        guards = live_guards(events, mac, mine)
        system = self.scenario.system
        if system is not None and system.own_server is None:
            # The user's daemons send no events: the capture is the live evidence.
            guards += wire_guards(self.artifacts / PCAP_NAME, mac)
        return guards

    def watched(self, guest: LabGuest, milestones: Sequence[Milestone],
                 guards: Sequence[StageGuard], hit: OnHit) -> Timeline:
        """Read ``guest``'s console through ``milestones``: the timeline, with the
        machine's properties. A boot that passed and must power off is waited for."""
        watcher = ConsoleWatcher(guest.console, guest.started_at, ANY_STAGE, guards)
        timeline = watcher.run(self.scenario.name, milestones, hit)
        timeline.properties["accelerator"] = str(guest.accel)
        timeline.properties.update(guest.properties)
        system = self.scenario.system
        if timeline.ok and (system is None or system.needs_marker):
            guest.wait_exit(self.scenario.poweroff_timeout)
        return timeline

    def _lab(self, stack: ExitStack, payload: Payload, events: EventLog
             ) -> tuple[LabNetwork, str, str]:
        """The lab without its guests, entered on ``stack``: network, NFS server, data root
        and boot server; the network, the NFS mount source and the kernel command line."""
        system = self.scenario.system
        net = stack.enter_context(LabNetwork(artifacts_dir=self.artifacts))
        # The root is mounted over the scenario's IP version: [2001:db8::1]:/pxelab
        # makes the initramfs take a SLAAC address instead of a DHCPv4 lease.
        nfs_address = net.ipv6.ip if self.scenario.ip is IpVersion.IPV6 else net.ipv4.ip
        export = system.nfs_root if system and system.nfs_root else payload.rootfs
        nfs = Ganesha(export_dir=export, workdir=self.artifacts / "nfs",
                      namespace=net.namespace, bind_address=str(nfs_address),
                      nfs3=payload.nfs_version == 3 or bool(system and system.nfs3))
        cmdline = payload.kernel_cmdline(nfs.mount_source)
        data_root = self._data_root(net, payload, cmdline, nfs.mount_source)
        dataroot.apply_file_faults(data_root, self.scenario.faults, events)
        edit_data_root(data_root, self.scenario.edits)
        if serves_nfs(self.scenario.edits) and (system is None or system.serves_nfs):
            stack.enter_context(nfs)
        stack.enter_context(self.server_factory(net, data_root, events))
        return net, nfs.mount_source, cmdline

    def _new_guest(self, stack: ExitStack, net: LabNetwork, spec: GuestSpec) -> LabGuest:
        """The guest on the lab's link: a tap in the namespace for QEMU, a host bridge
        joined to the lab bridge for a libvirt domain (libvirtd's QEMU is outside it)."""
        mtu = self.scenario.link_mtu
        if not self.backend.kind.is_libvirt():
            return Guest(spec, net.add_tap(mtu=mtu), self.artifacts, net.namespace)
        link = stack.enter_context(HostBridge(net, mtu=mtu))
        return LibvirtGuest(spec, link.bridge, self.artifacts, self.backend.libvirt_uri,
                            name=domain_name(net.namespace))

    def _data_root(self, net: LabNetwork, payload: Payload, cmdline: str,
                   nfs_source: str) -> Path:
        """pxelab's data root for the scenario's loader, or the lab file's files."""
        root = self.artifacts / "data"
        system = self.scenario.system
        if system is None:
            return dataroot.populate(
                root, self.scenario.loader, payload, cmdline,
                self.scenario.files_base(net.ipv4.ip, net.ipv6.ip), fwset=self.fwset,
                cache_dir=self.cache_dir)
        self._values = lab_values(net.ipv4, net.ipv6, self.scenario.ip, interface=net.bridge,
                                  data_root=root.resolve(), nfs_source=nfs_source,
                                  mac=self.scenario.guest.mac, append=cmdline)
        return fill_data_root(root, system, self._values, fwset=self.fwset, payload=payload,
                              cache_dir=self.cache_dir)

    def _hit(self, hit: MilestoneHit) -> None:
        self._hits.append(hit)
        if self.on_hit is not None:
            self.on_hit(hit)

    def _evidence(self, timeline: Timeline, payload: Payload, events: Iterable[Event]
                  ) -> tuple[Evidence | None, Diagnosis | None]:
        """Collect, diagnose and write evidence.json and diagnosis.json; None what fails."""
        guest = self._guest
        if guest is None:  # the guest never started: nothing happened on its clock
            return None, None
        started = time.monotonic()
        try:
            evidence = collect(self.scenario, self.artifacts, timeline, events,
                               firmware_set=self.fwset, backend=self.backend,
                               started_wall=guest.started_wall, payload=payload,
                               firmware_log=guest.firmware_log,
                               artifact_paths={k: self.artifacts / v
                                               for k, v in ARTIFACT_FILES.items()
                                               if k in ("timeline", "evidence", "diagnosis")
                                               or (self.artifacts / v).exists()})
            evidence = self._own(evidence)
            evidence.write(self.artifacts)
        except Exception:
            self.log.warning("could not collect this boot's evidence", exc_info=True)
            return None, None
        try:
            diagnosis = diagnose(evidence)
            (self.artifacts / DIAGNOSIS_FILE).write_text(
                json.dumps(diagnosis.to_dict(), indent=2))
        except Exception:
            self.log.warning("could not diagnose this boot", exc_info=True)
            return evidence, None
        self.log.info("evidence collected and diagnosed in %.2fs",
                      time.monotonic() - started)
        return evidence, diagnosis

    def _own(self, evidence: Evidence) -> Evidence:
        """This boot's part of the lab's evidence: all of it, in a lab of one guest."""
        return evidence

    def _evidence_of_error(self, error: Exception, payload: Payload,
                           events: Iterable[Event]) -> None:
        """Evidence of a run that raised after the guest started, as far as it got."""
        guest = self._guest
        if guest is None:
            return
        try:
            timeline = raised_timeline(self.scenario.name, self._milestones, self._hits,
                                       error, guest)
            self._evidence(timeline, payload, events)
        except Exception:  # never mask the run's own error
            self.log.warning("could not collect the evidence of the failed run", exc_info=True)

    def _server(self, net: LabNetwork, data_root: Path, events: EventLog
                ) -> AbstractContextManager[object]:
        """pxelab's own boot server deciding with the scenario's policy, or the lab
        file's: its own policy for pxelab's server, or the user's daemons."""
        system = self.scenario.system
        if system is not None and system.own_server is None:
            return DaemonStack(system.daemons, self._values, net.namespace, self.artifacts)
        if system is not None and system.own_server is not None:
            own = system.own_server
            return BootServer(replace(own.server, interface=net.bridge, data_root=data_root),
                              own.policy, events, namespace=net.namespace, faults=own.faults)
        config = ServerConfig(interface=net.bridge, ipv4=net.ipv4, ipv6=net.ipv6,
                              data_root=data_root, **self.scenario.server)
        policy: BootPolicy = self.scenario.policy()
        return BootServer(config, policy, events, namespace=net.namespace,
                          faults=self.scenario.faults)

    def _case(self, timeline: Timeline) -> dict[str, Any]:
        """What ran, recorded beside the versions so results compare across the matrix."""
        scenario = self.scenario
        return {"case": scenario.name, "lab": scenario.lab_name or None,
                "firmware": str(scenario.guest.firmware),
                "firmware_set": self.fwset.name, "firmware_set_origin": self.fwset.origin,
                "mode": str(scenario.mode), "ip": str(scenario.ip),
                "nic_model": scenario.nic_model, "firmware_files": ",".join(scenario.firmware),
                "firmware_settings": scenario.guest.firmware_settings(),
                "kernel_flavour": scenario.payload.kernel_flavour,
                "direct_kernel": self.direct_kernel,
                "faults": " ".join(scenario.applied),
                "edits": "; ".join(edit.describe() for edit in scenario.edits),
                # A lab file's success pattern is its userspace line when it has its own.
                "seconds_to_userspace": timeline.seconds("userspace")
                or timeline.seconds("success")}

    def _versions(self, payload: Payload, timeline: Timeline) -> dict[str, Any]:
        firmware = self.fwset.versions(self.scenario.firmware)
        system = self.scenario.system
        if system is not None and not system.payload:
            # A lab file booting its own kernel: pxelab's payload versions would be wrong.
            return {"kernel_version": booted_kernel(timeline), "payload_suite": "lab file's",
                    "packages": firmware}
        return {"kernel_version": payload.kernel_version, "payload_suite": payload.suite,
                "packages": payload.packages | firmware}


def raised_timeline(scenario: str, milestones: Sequence[Milestone],
                    hits: Sequence[MilestoneHit], error: BaseException,
                    guest: LabGuest) -> Timeline:
    """The timeline of a boot whose run raised ``error`` after ``guest`` started: failed
    at the first milestone not reached."""
    seen = {hit.name for hit in hits}
    stage = next((m.name for m in milestones if m.name not in seen), "poweroff")
    return Timeline(scenario, hits=list(hits), failed_stage=stage,
                    failure=f"the boot run raised {type(error).__name__}: {error}",
                    failed_at=time.monotonic() - guest.started_at,
                    console_tail=serial_log_tail(guest.serial_log))


_LINUX_VERSION = re.compile(r"Linux version (\S+)")


def booted_kernel(timeline: Timeline) -> str | None:
    """The kernel release the guest printed ("Linux version 6.1.0-57-amd64 ..."), if any."""
    for hit in timeline.hits:
        if found := _LINUX_VERSION.search(hit.text):
            return found.group(1)
    return None




def expectation_problem(scenario: Scenario, result: BootResult) -> str | None:
    """What is wrong with ``result`` for ``scenario``, or None: a lab file's [expect]
    asks for a failure at a stage with a cause; else the boot must succeed."""
    system = scenario.system
    stage = system.expect_stage if system else None
    code = system.expect_cause if system else None
    timeline = result.timeline
    cause = result.diagnosis.cause.code if result.diagnosis and result.diagnosis.cause else None
    where = f"(artifacts: {result.artifacts})"
    if stage is None and code is None:
        return None if result.ok else (f"{scenario.name} failed at {timeline.failed_stage}: "
                                       f"{timeline.failure}; cause: {cause or 'none named'} "
                                       + where)
    if result.ok:
        return (f"{scenario.name} booted, but the lab file expects it to fail at "
                f"{stage or 'some stage'}" + (f" with cause {code}" if code else ""))
    problems = []
    if stage is not None and timeline.failed_stage != stage:
        problems.append(f"failed at {timeline.failed_stage}, expected {stage}")
    if code is not None and cause != code:
        problems.append(f"cause {cause or 'none'}, expected {code}")
    return f"{scenario.name}: " + "; ".join(problems) + " " + where if problems else None
