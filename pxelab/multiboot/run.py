"""Several guests of one scenario powered on together in one lab: a boot storm.

:class:`LabRun` builds the lab once (network, NFS server, data root, the boot server
or the lab file's daemons, as :class:`~pxelab.lab.BootRun` does), then starts N guests
of the scenario at the same moment, each on its own tap with its own MAC
(:func:`guest_mac`), its own directory (serial log, QEMU command line, NVRAM copy),
its own console watcher in a thread of its own and its own live guards. When every
watcher has ended the lab is torn down, and each guest is judged like a single boot,
on its own evidence: the server events and packets of its MAC and addresses
(:class:`~pxelab.multiboot.attribution.Attribution`). A guest that fails, or whose
watcher raises, is judged as failed; the others are judged all the same.

Under TCG the guests share the host's CPUs, so every stage takes longer: the stage
timeouts are scaled by :func:`timeout_factor` (the milestone tables stay as they are).
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field, replace
from pathlib import Path

from pxelab.analysis.evidence import Evidence
from pxelab.core.errors import ConfigError
from pxelab.core.events import Event, EventLog
from pxelab.lab import BootResult, BootRun, raised_timeline
from pxelab.machine.backend import GuestBackend
from pxelab.machine.console import (
    Milestone,
    MilestoneHit,
    StageGuard,
    Timeline,
)
from pxelab.machine.network import PCAP_NAME, LabNetwork
from pxelab.machine.payload import Payload, build_payload
from pxelab.machine.qemu import Guest
from pxelab.multiboot.attribution import Attribution
from pxelab.multiboot.checks import (
    collisions,
    lease_collisions,
    leases,
    merged,
    transfers,
    wire_leases,
)
from pxelab.multiboot.result import LabResult
from pxelab.scenarios.cases import MAX_GUESTS, Scenario, for_firmware_set

# Stage timeouts grow with the guests each CPU runs: 1.5x per guest per CPU (8 guests
# on 2 CPUs: x6), never below the table's own.
TIMEOUT_SCALE_PER_GUEST_PER_CPU = 1.5
# What a lab's guest directory shares with the lab's: read by each guest's evidence.
SHARED = (PCAP_NAME, "data", "nfs", "daemons")

# Called with the guest's number (1-based) and the milestone it reached.
GuestHit = Callable[[int, MilestoneHit], None]


def timeout_factor(guests: int, cpus: int | None = None) -> float:
    """How much longer a stage may take with ``guests`` booting on ``cpus`` (default:
    this host's) than with one guest."""
    cpus = cpus or os.cpu_count() or 1
    return max(1.0, round(TIMEOUT_SCALE_PER_GUEST_PER_CPU * guests / cpus, 2))


def guest_mac(base: str, index: int) -> str:
    """The MAC of guest ``index`` (0-based) of a lab: guest 0 keeps ``base`` (a lab
    file's host entries still match it); the others count up from it in the NIC part,
    with the locally administered bit set (52:54:00:12:34:56 -> ...:57, ...:58)."""
    if not 0 <= index < MAX_GUESTS:
        raise ConfigError(f"guest index {index} out of range: a lab has 1 to {MAX_GUESTS} "
                          "guests")
    octets = [int(part, 16) for part in base.split(":")]
    if index:
        nic = (int.from_bytes(bytes(octets[3:]), "big") + index) % (1 << 24)
        octets = [octets[0] | 0x02, *octets[1:3], *nic.to_bytes(3, "big")]
    return ":".join(f"{octet:02x}" for octet in octets)


def scaled(milestones: Sequence[Milestone], factor: float) -> tuple[Milestone, ...]:
    """``milestones`` with each timeout multiplied by ``factor``."""
    return tuple(replace(m, timeout=m.timeout * factor) for m in milestones)


class GuestBoot(BootRun):
    """One guest of a lab, judged as a boot of its own on its share of the evidence."""

    def __init__(self, scenario: Scenario, artifacts: Path, cache_dir: Path | None,
                 attribution: Attribution, backend: GuestBackend) -> None:
        super().__init__(scenario, artifacts, cache_dir, backend=backend)
        self.attribution = attribution
        self.mac = scenario.guest.mac
        self.guest: Guest | None = None
        self.hits: list[MilestoneHit] = []
        self.timeline: Timeline | None = None
        self.error: BaseException | None = None

    def started(self, guest: Guest) -> None:
        self.guest = self._guest = guest

    def own_timeline(self) -> Timeline | None:
        """The watcher's timeline, or one failed where the watcher raised (None: the
        guest never started)."""
        if self.timeline is not None and self.error is None:
            return self.timeline
        if self.guest is None:
            return None
        return raised_timeline(self.scenario.name, self.scenario.milestones, self.hits,
                               self.error or RuntimeError("the watcher ended without a "
                                                          "timeline"), self.guest)

    def record_error(self, error: Exception, payload: Payload,
                     events: Sequence[Event]) -> None:
        """This guest's evidence as far as it got, when the lab's run raised."""
        self._hits, self._milestones = self.hits, self.scenario.milestones
        self._evidence_of_error(error, payload, events)

    def _own(self, evidence: Evidence) -> Evidence:
        return replace(evidence, packets=self.attribution.packets_of(self.mac,
                                                                     evidence.packets))


@dataclass
class _Watch:
    """What one guest's watcher thread needs and leaves."""

    number: int
    boot: GuestBoot
    guards: tuple[StageGuard, ...] = ()
    thread: threading.Thread | None = field(default=None, repr=False)


class LabRun(BootRun):
    """Boot ``guests`` guests of ``scenario`` at once in one lab; artifacts in
    ``artifacts`` (the lab's: capture, server events, NFS, data root) and
    ``artifacts/guest-NN/`` (each guest's)."""

    def __init__(self, scenario: Scenario, artifacts: Path, cache_dir: Path | None = None, *,
                 guests: int, on_guest_hit: GuestHit | None = None,
                 backend: GuestBackend | None = None, factor: float | None = None) -> None:
        super().__init__(scenario, artifacts, cache_dir, backend=backend)
        if not 1 <= guests <= MAX_GUESTS:
            raise ConfigError(f"guests={guests}: a lab boots 1 to {MAX_GUESTS} guests")
        if self.backend.kind.is_libvirt():
            raise ConfigError("a lab of several guests runs them with QEMU in the lab "
                              "namespace; drop --backend libvirt (--pxelab-backend)")
        self.count = guests
        # Every guest's reproduce command says how many booted beside it.
        self.scenario = replace(self.scenario, guests=guests)
        self.on_guest_hit = on_guest_hit
        self.factor = factor if factor is not None else timeout_factor(guests)
        self.log = logging.getLogger(f"{__name__}.{scenario.name}")

    def run(self) -> BootResult:
        raise ConfigError("LabRun boots several guests: call run_lab(), which returns a "
                          "LabResult (BootRun.run() boots one guest)")

    def run_lab(self) -> LabResult:
        self.scenario = for_firmware_set(self.scenario, self.fwset)
        self.artifacts.mkdir(parents=True, exist_ok=True)
        payload = build_payload(self.scenario.payload, self.cache_dir)
        macs = [guest_mac(self.scenario.guest.mac, i) for i in range(self.count)]
        attribution = Attribution(macs)
        boots = [self._guest_boot(i, mac, attribution) for i, mac in enumerate(macs)]
        events = EventLog(self.artifacts / "events.jsonl", window=None)
        events.subscribe(attribution.observe)
        try:
            nfs_source = self._storm(payload, events, boots, attribution)
        except Exception as error:
            events.close()
            for boot in boots:
                boot.record_error(error, payload, attribution.events_of(boot.mac, events))
            raise
        finally:
            events.close()
        results = tuple(self._judge(boot, payload, events, nfs_source) for boot in boots)
        seen = wire_leases([r.evidence.packets if r.evidence else () for r in results], macs)
        system = self.scenario.system
        server_events = system is None or system.own_server is not None
        # Without server events the wire has no releases: any address bound twice counts.
        clashes = lease_collisions(events, macs) if server_events else collisions(seen)
        result = LabResult(self.scenario.name, self.artifacts, results, tuple(macs),
                           merged(leases(events, macs), seen),
                           transfers(tuple(events), attribution), self.factor,
                           collisions=clashes, server_events=server_events)
        result.write()
        self.log.info("%d of %d guests booted; artifacts in %s",
                      sum(r.ok for r in results), len(results), self.artifacts)
        return result

    def _guest_boot(self, index: int, mac: str, attribution: Attribution) -> GuestBoot:
        scenario = replace(self.scenario, guest=replace(self.scenario.guest, mac=mac),
                           milestones=scaled(self.scenario.milestones, self.factor),
                           poweroff_timeout=self.scenario.poweroff_timeout * self.factor)
        directory = self.artifacts / f"guest-{index + 1:02d}"
        directory.mkdir(parents=True, exist_ok=True)
        for name in SHARED:
            link = directory / name
            if not link.is_symlink():
                link.symlink_to(Path("..") / name)
        return GuestBoot(scenario, directory, self.cache_dir, attribution, self.backend)

    def _storm(self, payload: Payload, events: EventLog, boots: Sequence[GuestBoot],
               attribution: Attribution) -> str:
        watches = [_Watch(number, boot, self._guards(events, boot.mac,
                                                       attribution.mine(boot.mac)))
                   for number, boot in enumerate(boots, 1)]
        with ExitStack() as stack:
            net, nfs_source, _ = self._lab(stack, payload, events)
            # All guests powered on back to back (the storm), each read from its start:
            # the console's arrival times date its milestones.
            for watch in watches:
                watch.boot.started(self._start(stack, net, watch.boot))
                watch.thread = threading.Thread(target=self._watch, args=(watch,),
                                                name=f"guest-{watch.number}", daemon=True)
                watch.thread.start()
            for watch in watches:
                assert watch.thread is not None
                watch.thread.join()
            return nfs_source

    def _start(self, stack: ExitStack, net: LabNetwork, boot: GuestBoot) -> Guest:
        guest = Guest(boot.scenario.guest, net.add_tap(mtu=self.scenario.link_mtu),
                      boot.artifacts, net.namespace)
        stack.enter_context(guest)
        return guest

    def _watch(self, watch: _Watch) -> None:
        """One guest's console, start to finish (its own thread)."""
        boot = watch.boot
        assert boot.guest is not None

        def hit(found: MilestoneHit) -> None:
            boot.hits.append(found)
            if self.on_guest_hit is not None:
                self.on_guest_hit(watch.number, found)

        try:
            boot.timeline = boot.watched(boot.guest, boot.scenario.milestones, watch.guards,
                                          hit)
        except Exception as error:  # judged as this guest's failure; the others go on
            boot.log.warning("guest %d (%s): %s", watch.number, boot.mac, error)
            boot.error = error

    def _judge(self, boot: GuestBoot, payload: Payload, events: EventLog,
               nfs_source: str) -> BootResult:
        own = boot.attribution.events_of(boot.mac, events)
        with (boot.artifacts / "events.jsonl").open("w", encoding="utf-8") as file:
            file.writelines(event.to_json() + "\n" for event in own)
        timeline = boot.own_timeline()
        assert timeline is not None  # every guest started, or _storm raised
        timeline.properties.update({"guest": boot.artifacts.name, "guests": self.count,
                                    "mac": boot.mac, "timeout_factor": self.factor})
        return boot.judge(timeline, payload, own, nfs_source)
