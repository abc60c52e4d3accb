"""The ``pxelab`` command line."""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
import threading
import time
from dataclasses import replace
from pathlib import Path
from types import FrameType
from typing import TextIO

from pxelab.analysis.report.html import write_report
from pxelab.analysis.report.text import render_causes
from pxelab.core.errors import ConfigError, PxelabError
from pxelab.core.events import WINDOW, Event, EventLog
from pxelab.core.paths import new_artifacts_dir
from pxelab.lab import BootResult, BootRun, expectation_problem
from pxelab.labfile import lab_cases, load_lab_file
from pxelab.machine.backend import DEFAULT_LIBVIRT_URI, Backend, GuestBackend
from pxelab.machine.console import MilestoneHit
from pxelab.machine.fwsets import HOST, RELEASES, SET_ENTRIES, load_firmware_set, parse_set_names
from pxelab.machine.nbp import build_grub_image
from pxelab.machine.payload import build_payload
from pxelab.machine.payload.archive import DEFAULT_SUITE, SUITES
from pxelab.multiboot import LabResult, LabRun, lab_expectation_problem
from pxelab.scenarios.cases import (
    DEFAULT_SCENARIO,
    MAX_GUESTS,
    BootLoader,
    Scenario,
    for_firmware_set,
)
from pxelab.scenarios.limits import known_limit
from pxelab.scenarios.matrix import Selection, cases, describe, find_case
from pxelab.scenarios.regressions import REGRESSIONS, Regression, apply_regressions
from pxelab.server.bootserver import BootServer
from pxelab.server.config import LabConfig, lab_config, load_lab_config


class Signalled(KeyboardInterrupt):
    """The KeyboardInterrupt SIGINT or SIGTERM raise here; it remembers which signal."""

    def __init__(self, signum: int) -> None:
        super().__init__(f"signal {signum}")
        self.signum = signum


def _unwind_on_signals() -> None:
    """Make SIGINT and SIGTERM unwind the stack, so every lab part is torn down.

    Only in this process: pyroute2 forks short-lived helpers that inherit the
    handler, and a forked copy unwinding our stack would tear down the lab
    under our feet (it did: SIGTERM to such a helper removed the namespace).
    """
    owner = os.getpid()

    def interrupt(signum: int, frame: FrameType | None) -> None:
        if os.getpid() != owner:
            os._exit(128 + signum)
        raise Signalled(signum)

    signal.signal(signal.SIGINT, interrupt)
    signal.signal(signal.SIGTERM, interrupt)


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    _unwind_on_signals()
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.WARNING,
                        format="%(asctime)s %(name)s %(levelname)s %(message)s")
    try:
        return int(args.func(args))
    except PxelabError as error:
        print(f"pxelab: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("pxelab: interrupted; the lab was torn down", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `pxelab faults | head`: the reader has all it wanted
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="pxelab", description=__doc__)
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(required=True, metavar="COMMAND")

    boot = sub.add_parser("boot", help="boot a scenario and print its timeline")
    boot.add_argument("scenario", nargs="?",
                      help=f"scenario name (default {DEFAULT_SCENARIO}; see 'pxelab scenarios'), "
                      "optionally with a NIC model: legacy_pxe_ipv4[e1000]; with --lab, the "
                      "lab file's cases whose name starts with this (default: all)")
    boot.add_argument("--lab", type=Path, metavar="FILE",
                      help="boot your own system: a lab file (*.pxelab.toml, see "
                      "docs/lab-files.md), each of its cases in turn")
    boot.add_argument("--nic", metavar="MODEL",
                      help="boot on this QEMU NIC model (virtio-net-pci, e1000, rtl8139); the "
                      "initramfs gets its driver")
    boot.add_argument("--json", type=Path, metavar="FILE",
                      help="write the timeline and server events as JSON")
    boot.add_argument("--artifacts", type=Path, default=Path("pxelab-artifacts"),
                      metavar="DIR", help="where to keep this boot's evidence")
    boot.add_argument("--fault", action="append", default=[], metavar="NAME[=ARGS]",
                      help="apply a catalogued fault to the case (repeatable; see "
                      "'pxelab faults')")
    boot.add_argument("--payload-suite", choices=SUITES, metavar="SUITE",
                      help="boot a kernel and busybox from this Debian release (default: "
                      f"the scenario's, {DEFAULT_SUITE}; one of {', '.join(SUITES)})")
    boot.add_argument("--firmware-set", metavar="SET",
                      help="take firmware, NIC ROM and boot programs from this set: host "
                      f"(default), {', '.join(RELEASES)} (fetched from Debian's archive) or a "
                      "TOML file naming your own builds; with --lab, replaces the file's sets "
                      "(comma-separated)")
    boot.add_argument("--backend", choices=[str(b) for b in Backend], default=Backend.QEMU,
                      help="start the guest with QEMU in the lab (default) or as a transient "
                      "libvirt domain on a host bridge joined to the lab")
    boot.add_argument("--libvirt-uri", default=DEFAULT_LIBVIRT_URI, metavar="URI",
                      help=f"the libvirt daemon of --backend libvirt (default "
                      f"{DEFAULT_LIBVIRT_URI})")
    boot.add_argument("--guests", type=_guest_count, metavar="N",
                      help="power on N guests of the case at once in one lab (a boot storm: "
                      "one boot server, each guest its own MAC and diagnosis), print them "
                      "side by side; with --lab, replaces the file's guests = N")
    boot.set_defaults(func=_boot)

    sets = sub.add_parser("firmware", help="fetch firmware sets and list what each holds "
                          "(versions and files), e.g. before a nightly matrix")
    sets.add_argument("sets", nargs="?", default=",".join((HOST, *RELEASES)), metavar="SETS",
                      help="comma-separated sets (default: host and every Debian release)")
    sets.set_defaults(func=_firmware)

    faults = sub.add_parser("faults", help="list the regression catalog: faults that "
                            "reproduce field failures, for 'pxelab boot --fault'")
    faults.add_argument("--json", action="store_true", help="one JSON object per line")
    faults.set_defaults(func=_faults)

    report = sub.add_parser("report", help="render a boot's artifacts, or a tree of boots "
                            "(a matrix run), as a self-contained HTML page")
    report.add_argument("artifacts", type=Path, metavar="ARTIFACT_DIR",
                        help="a boot's artifacts directory, or a directory holding many")
    report.add_argument("-o", "--output", type=Path, metavar="FILE",
                        help="where to write the page (default ARTIFACT_DIR/report.html)")
    report.set_defaults(func=_report)

    scenarios = sub.add_parser("scenarios", help="list the scenario matrix: each scenario "
                               "on each NIC model, with firmware, mode and IP version")
    scenarios.add_argument("--lab", type=Path, metavar="FILE",
                           help="list a lab file's cases instead (checks the file)")
    scenarios.add_argument("--nic", metavar="MODELS",
                           help="only these NIC models (comma-separated)")
    scenarios.add_argument("--firmware", metavar="NAMES",
                           help="only this firmware (seabios, ovmf; comma-separated)")
    scenarios.add_argument("--json", action="store_true", help="one JSON object per line")
    scenarios.set_defaults(func=_scenarios)

    payload = sub.add_parser("payload", help="build (or find cached) the guest payloads")
    payload.add_argument("--suite", choices=SUITES, default=DEFAULT_SUITE, metavar="SUITE",
                         help="the Debian release the kernel and busybox come from "
                         f"(default {DEFAULT_SUITE}; one of {', '.join(SUITES)})")
    payload.set_defaults(func=_payload)

    serve = sub.add_parser("serve", help="run the boot server on a real interface until "
                           "Ctrl-C or SIGTERM")
    serve.add_argument("--interface", metavar="IFACE",
                       help="interface to serve on (overrides the config's [server] interface)")
    serve.add_argument("--config", type=Path, metavar="FILE",
                       help="lab file (TOML; see fixtures/labs/); optional with --data-root")
    serve.add_argument("--data-root", type=Path, metavar="DIR",
                       help="directory served over TFTP and HTTP (overrides the config's)")
    serve.add_argument("--json", action="store_true",
                       help="print events as JSON lines (other messages go to stderr)")
    serve.add_argument("--events", type=Path, metavar="FILE",
                       help="also append every event to FILE as JSON lines")
    serve.add_argument("--events-in-memory", type=int, default=WINDOW, metavar="N",
                       help=f"keep the last N events in memory (default {WINDOW}, about "
                       "1 KiB each); --events gets them all")
    serve.set_defaults(func=_serve)
    return parser


def _guest_count(text: str) -> int:
    if not text.isdigit() or not 1 <= int(text) <= MAX_GUESTS:
        raise argparse.ArgumentTypeError(f"{text!r}: give a number of guests from 1 to "
                                         f"{MAX_GUESTS}")
    return int(text)


def _print_hit(hit: MilestoneHit) -> None:
    print(f"{hit.seconds:7.2f}s  {hit.name:<16} {hit.text[:90]}", flush=True)


def _backend(args: argparse.Namespace) -> GuestBackend:
    return GuestBackend(Backend(args.backend), args.libvirt_uri)


def _boot(args: argparse.Namespace) -> int:
    if args.lab is not None:
        return _boot_lab(args)
    # The set's ROM decides the way first, so that faults apply to the way it boots.
    # A fault that needs a certain firmware says here why it does not apply to this one.
    set_name = args.firmware_set or HOST
    fwset = load_firmware_set(set_name)
    case = replace(find_case(args.scenario or DEFAULT_SCENARIO, args.nic),
                   firmware_set=set_name)
    case = for_firmware_set(case, fwset)
    scenario = _with_suite(apply_regressions(case, args.fault, fwset), args.payload_suite)
    label = scenario.name.replace("[", "-").replace("]", "")  # no brackets in paths
    artifacts = new_artifacts_dir(args.artifacts, label)
    print(f"booting {scenario.name}: {scenario.description}", flush=True)
    if scenario.applied:
        print(f"with faults: {', '.join(scenario.applied)}", flush=True)
    limit = known_limit(scenario, fwset)
    if limit is not None:
        print(limit.describe(fwset), flush=True)
    if args.guests is not None:
        lab = _boot_guests(scenario, artifacts, args.guests, args)
        return 0 if lab.passed else 1
    result = BootRun(scenario, artifacts, on_hit=_print_hit, backend=_backend(args)).run()
    if args.json:
        data = result.to_dict()
        if result.diagnosis is not None:
            data.setdefault("diagnosis", result.diagnosis.to_dict())
        args.json.write_text(json.dumps(data, indent=2))
    _summarise(result)
    return 0 if result.ok else 1


def _boot_lab(args: argparse.Namespace) -> int:
    """Boot every case of a lab file (those named ``args.scenario``...), one after another."""
    if args.fault or args.payload_suite:
        raise ConfigError("--fault and --payload-suite are for built-in scenarios; a lab "
                          "file's own configuration is what a lab-file boot tests")
    lab = load_lab_file(args.lab)
    sets = parse_set_names(args.firmware_set) if args.firmware_set else ()
    every = [case for case in lab_cases(lab, sets)
             if not args.nic or case.nic_model == args.nic]
    # A whole case name (what the reproduce command gives) is that case alone; else
    # every case it begins ("legacy_pxe_ipv4" also runs "legacy_pxe_ipv4[e1000]").
    chosen = [case for case in every if case.name == args.scenario] or [
        case for case in every if not args.scenario or case.name.startswith(args.scenario)]
    if not chosen:
        names = ", ".join(case.name for case in lab_cases(lab, sets))
        raise ConfigError(f"{args.lab}: no case matches {args.scenario or ''} "
                          f"{args.nic or ''}; the cases are: {names}")
    failed = 0
    for case in chosen:
        label = f"{lab.name}-{case.name}-{case.firmware_set}".replace("[", "-").replace("]", "")
        print(f"booting {lab.name}: {case.name} on firmware set {case.firmware_set}",
              flush=True)
        guests = args.guests or case.guests
        if guests > 1:
            storm = _boot_guests(case, new_artifacts_dir(args.artifacts, label), guests, args)
            problem = lab_expectation_problem(case, storm)
            failed += problem is not None
            print(f"NOT AS EXPECTED: {problem}" if problem else "as the lab file expects")
            continue
        result = BootRun(case, new_artifacts_dir(args.artifacts, label),
                         on_hit=_print_hit, backend=_backend(args)).run()
        _summarise(result)
        problem = expectation_problem(case, result)
        if problem is not None:
            print(f"NOT AS EXPECTED: {problem}")
            failed += 1
        elif not result.ok:
            print("as the lab file expects, it failed there")
    print(f"{lab.name}: {len(chosen) - failed} of {len(chosen)} cases as the lab file expects")
    return 1 if failed else 0


def _boot_guests(scenario: Scenario, artifacts: Path, guests: int,
                 args: argparse.Namespace) -> LabResult:
    """Boot ``guests`` of ``scenario`` at once; print each milestone as a guest reaches it,
    then the guests side by side (also in the artifacts, lab-result.txt and .json)."""
    printing = threading.Lock()

    def hit(number: int, found: MilestoneHit) -> None:
        with printing:
            print(f"guest {number:<3}", end="")
            _print_hit(found)

    print(f"{guests} guests at once", flush=True)
    lab = LabRun(scenario, artifacts, guests=guests, on_guest_hit=hit,
                 backend=_backend(args)).run_lab()
    if args.json:
        args.json.write_text(json.dumps(lab.to_dict(), indent=2))
    print()
    print(lab.table())
    for number, guest in enumerate(lab.guests, 1):
        if not guest.ok and guest.diagnosis is not None and not guest.diagnosis.ok:
            print(f"--- guest {number} ({guest.artifacts}) ---")
            print(render_causes(guest.diagnosis))
    print(f"artifacts: {artifacts} (each guest's in guest-NN/)")
    return lab


def _firmware(args: argparse.Namespace) -> int:
    """Fetch each set and print its versions and the files QEMU would get."""
    for name in parse_set_names(args.sets):
        fwset = load_firmware_set(name)
        print(f"{fwset.name} ({fwset.origin})")
        for package, version in sorted(fwset.versions(SET_ENTRIES).items()):
            print(f"  {package:<20} {version}")
        ovmf, secure = fwset.ovmf(), fwset.ovmf(secure_boot=True)
        for what, path in (("OVMF code", ovmf.code), ("OVMF vars", ovmf.vars_template),
                           ("OVMF SB code", secure.code), ("OVMF SB vars", secure.vars_template),
                           ("SeaBIOS", fwset.locate("seabios")),
                           ("virtio ROM", fwset.locate("rom-virtio")),
                           ("shim", fwset.locate("shimx64.efi")),
                           ("signed GRUB", fwset.locate("grubnetx64.efi"))):
            print(f"  {what:<20} {path}")
    return 0


def _with_suite(scenario: Scenario, suite: str | None) -> Scenario:
    """``scenario`` with its payload from Debian release ``suite`` (None: unchanged)."""
    if suite is None:
        return scenario
    return replace(scenario, payload=replace(scenario.payload, suite=suite))


def _summarise(result: BootResult) -> None:
    timeline = result.timeline
    print()
    if result.ok:
        last = timeline.hits[-1]
        reached = "userspace on NFS root" if result.needs_marker else f"'{last.name}'"
        print(f"OK: {result.scenario} reached {reached} in {last.seconds:.1f}s "
              f"({timeline.properties.get('accelerator', '?')})")
        print(f"    {last.text}")
    else:
        stage = timeline.failed_stage or "userspace"
        print(f"FAILED: {result.scenario} at stage {stage!r}: {timeline.failure or 'marker wrong'}")
        print("--- last console lines ---")
        print(timeline.console_tail)
        print("---")
        if result.diagnosis is not None and not result.diagnosis.ok:
            print(render_causes(result.diagnosis))
    print(f"artifacts: {result.artifacts}")
    for name, path in result.artifact_paths().items():
        print(f"  {name:<15} {path}")
    if not result.ok and result.evidence is not None and result.evidence.facts.reproduce:
        print(f"reproduce: {result.evidence.facts.reproduce}")


def _faults(args: argparse.Namespace) -> int:
    """The regression catalog, one fault a line, sorted by name."""
    entries = [REGRESSIONS[name] for name in sorted(REGRESSIONS)]
    if args.json:
        for fault in entries:
            print(json.dumps({"name": fault.name, "argument": fault.argument,
                              "default": fault.default, "scenario": fault.scenario,
                              "stage": fault.stage, "cause": fault.cause,
                              "summary": fault.summary}))
        return 0
    if not entries:
        print("no faults are catalogued")
        return 0
    # NAME=ARG: the argument is needed; NAME[=ARG]: it has a default.
    names = [f.name + ("" if not f.argument else "=ARG" if f.default is None else "[=ARG]")
             for f in entries]
    scenarios = [f.scenario for f in entries]
    name_width = max(len("NAME"), *map(len, names))
    case_width = max(len("SCENARIO"), *map(len, scenarios))
    print(f"{'NAME'.ljust(name_width)}  {'SCENARIO'.ljust(case_width)}  SUMMARY")
    for name, case, fault in zip(names, scenarios, entries, strict=True):
        print(f"{name.ljust(name_width)}  {case.ljust(case_width)}  {_fault_summary(fault)}")
    return 0


def _fault_summary(fault: Regression) -> str:
    if not fault.argument:
        return fault.summary
    default = "" if fault.default is None else f", default {fault.default}"
    return f"{fault.summary} (ARG: {fault.argument}{default})"


def _report(args: argparse.Namespace) -> int:
    """Write the HTML report of a boot or a run and print where it went."""
    print(write_report(args.artifacts, args.output))
    return 0


def _scenarios(args: argparse.Namespace) -> int:
    """The matrix as `pytest tests/boot/test_scenarios.py` runs it, one case a line."""
    selection = Selection.parse(args.nic, args.firmware)
    chosen = lab_cases(load_lab_file(args.lab)) if args.lab else cases()
    rows = [describe(case) | {"firmware_set": case.firmware_set}
            for case in chosen if selection.accepts(case)]
    if args.json:
        for row in rows:
            print(json.dumps(row))
        return 0
    columns = ("name", "firmware", "mode", "ip", "nic", "kernel", "firmware_set")
    widths = {c: max([len(c), *(len(r[c]) for r in rows)]) for c in columns}
    print("  ".join(c.upper().ljust(widths[c]) for c in columns) + "  DESCRIPTION")
    for row in rows:
        print("  ".join(row[c].ljust(widths[c]) for c in columns) + "  " + row["description"])
    return 0


def _payload(args: argparse.Namespace) -> int:
    """Build every payload the scenarios use, so tests and boots find them cached."""
    for spec in dict.fromkeys(case.payload for case in cases()):  # NIC variants too
        payload = build_payload(replace(spec, suite=args.suite))
        print(f"kernel  {payload.kernel} ({payload.kernel_version}, {payload.suite})")
        print(f"initrd  {payload.initrd}")
        print(f"rootfs  {payload.rootfs}")
    if any(case.loader is BootLoader.GRUB for case in cases()):
        print(f"grub    {build_grub_image().path}")
    return 0


class _ServeOutput:
    """One line per event on stdout; notes on stdout too, or on stderr with --json.

    Events arrive from the server thread: lines are written under a lock, and a
    closed pipe (``pxelab serve | head``) silences the output, never the server.
    """

    def __init__(self, as_json: bool) -> None:
        self.as_json = as_json
        self._lock = threading.Lock()
        self._closed = False

    def note(self, text: str) -> None:
        self._write(sys.stderr if self.as_json else sys.stdout, f"pxelab serve: {text}")

    def event(self, event: Event) -> None:
        if self.as_json:
            self._write(sys.stdout, event.to_json())
            return
        stamp = time.strftime("%H:%M:%S", time.localtime(event.time))
        self._write(sys.stdout, f"{stamp}.{int(event.time * 1000) % 1000:03d} "
                                f"{event.summary()}")

    def _write(self, stream: TextIO, line: str) -> None:
        with self._lock:
            if self._closed:
                return
            try:
                print(line, file=stream, flush=True)
            except (OSError, ValueError):
                self._closed = True


def _serve_config(args: argparse.Namespace) -> LabConfig:
    if args.config is None and args.data_root is None:
        raise ConfigError("nothing to serve; pass --config FILE (a lab file, see "
                          "fixtures/labs/), or --interface IFACE --data-root DIR")
    if args.config is not None:
        lab = load_lab_config(args.config, interface=args.interface, data_root=args.data_root)
    else:
        lab = lab_config({}, interface=args.interface, data_root=args.data_root)
    if not lab.server.data_root.is_dir():
        raise ConfigError(f"data root {lab.server.data_root} is not a directory; create it, "
                          "or point [server] data_root or --data-root at the boot files")
    return lab


def _serve(args: argparse.Namespace) -> int:
    """Serve until SIGINT/SIGTERM (exit 0) or until the server dies by itself (exit 1)."""
    lab = _serve_config(args)
    try:
        events = EventLog(args.events, window=args.events_in_memory)
    except ValueError as exc:
        raise ConfigError(f"--events-in-memory: {exc}") from None
    except OSError as exc:
        raise ConfigError(f"cannot write events to {args.events}: {exc.strerror}; "
                          "give --events a file in an existing, writable directory") from None
    out = _ServeOutput(args.json)
    for line in [f"config {lab.source}", *lab.describe()]:
        out.note(line)
    events.subscribe(out.event)
    ended = threading.Event()
    events.subscribe(lambda e: ended.set() if (e.source, e.kind) == ("server", "stopped")
                     else None)
    server = BootServer(lab.server, lab.policy, events, faults=lab.faults)
    started = time.monotonic()
    try:
        server.start()
        out.note(f"ready: serving on {lab.server.interface}; stop with Ctrl-C or SIGTERM")
        ended.wait()  # a signal interrupts this wait with Signalled
        out.note("the server stopped by itself; the events above say why")
        return 1
    except KeyboardInterrupt as interrupt:
        signum = getattr(interrupt, "signum", signal.SIGINT)
        server.stop()
        out.note(f"stopped on {signal.Signals(signum).name} after "
                 f"{time.monotonic() - started:.1f}s, {events.recorded} events")
        return 0
    finally:
        server.stop()
        events.close()


if __name__ == "__main__":
    sys.exit(main())
