"""Benchmark: what Secure Boot costs a network boot under TCG, measured way by way.

For each Secure Boot case on a firmware set (``CASE@SET``; default
uefi_tftp_ipv4_secureboot on host and trixie, uefi_tftp_ipv6_secureboot on host, the
HTTP cases on trixie: bookworm's signed GRUB has no http module), N runs, every way
interleaved:

  secure         the case as the tests run it: OVMF's Secure Boot build with Microsoft's
                 keys (smm=on, secure pflash), shim -> signed GRUB -> signed kernel
  smm            the same chain on the same Secure Boot OVMF code with the set's VARS
                 template without keys: SMM on, Secure Boot not enforced, nothing verified
  chain          the same chain on the set's OVMF without Secure Boot (no SMM)
  counterpart    the case without Secure Boot (uefi_tftp_ipv4, uefi_http_ipv4): the
                 matrix's own boot program for that transport
and once per set and run (QEMU -kernel/-initrd: no network boot, so a set's cases share them):
  secure-direct  the Secure Boot machine: the case's direct boot, its physical limit
  smm-direct     the SMM machine without keys
  plain-direct   OVMF without Secure Boot: the counterpart's direct boot

Each way proves its Secure Boot state from the kernel's line ("Secure boot enabled" or
"... disabled"). Reported: medians (range) to userspace, the ratios that isolate each
cost, median seconds at each milestone, and the files the boot server sent (when each
transfer ran, its block size and window).

Each boot holds the boot lock (``--lock``, flock) only while it runs, so other sessions'
guests wait between boots rather than for the whole benchmark.

    .venv/bin/python bench/secureboot_bench.py -n 3 [--target CASE@SET ...] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import tempfile
from collections.abc import Iterable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import asdict, dataclass, replace
from enum import StrEnum
from pathlib import Path
from typing import Any

from pxelab.core.errors import ConfigError
from pxelab.core.events import Event
from pxelab.lab import BootRun
from pxelab.machine.fwsets import HOST, load_firmware_set
from pxelab.machine.payload.cache import file_lock
from pxelab.scenarios import milestones as ms
from pxelab.scenarios.cases import Scenario, get_scenario

DEFAULT_TARGETS = ("uefi_tftp_ipv4_secureboot@host", "uefi_tftp_ipv4_secureboot@trixie",
                   "uefi_http_ipv4_secureboot@trixie", "uefi_tftp_ipv6_secureboot@host",
                   "uefi_http_ipv6_secureboot@trixie")
SUFFIX = "_secureboot"
LOCK = Path("/tmp/pxelab-boots.lock")


class Way(StrEnum):
    SECURE = "secure"
    SMM = "smm"
    CHAIN = "chain"
    COUNTERPART = "counterpart"
    SECURE_DIRECT = "secure-direct"
    SMM_DIRECT = "smm-direct"
    PLAIN_DIRECT = "plain-direct"

    @property
    def direct(self) -> bool:
        return self.value.endswith("-direct")


CASE_WAYS = (Way.SECURE, Way.SMM, Way.CHAIN, Way.COUNTERPART)
DIRECT_WAYS = (Way.SECURE_DIRECT, Way.SMM_DIRECT, Way.PLAIN_DIRECT)
# (numerator, denominator, what the ratio isolates)
RATIOS = (
    (Way.SECURE, Way.SECURE_DIRECT, "the network boot chain on the Secure Boot machine"),
    (Way.COUNTERPART, Way.PLAIN_DIRECT, "the counterpart's chain on the plain machine"),
    (Way.SECURE_DIRECT, Way.PLAIN_DIRECT, "SMM + Secure Boot, firmware and kernel alone"),
    (Way.SMM_DIRECT, Way.PLAIN_DIRECT, "SMM alone, firmware and kernel alone"),
    (Way.SMM, Way.CHAIN, "SMM on the shim + GRUB chain"),
    (Way.SECURE, Way.SMM, "Secure Boot's verifications on that chain"),
    (Way.SECURE, Way.COUNTERPART, "the Secure Boot case against its counterpart"),
)


@dataclass(frozen=True)
class Target:
    """A Secure Boot case on a firmware set."""

    case: str
    fwset: str

    @classmethod
    def parse(cls, text: str) -> Target:
        case, at, fwset = text.partition("@")
        if not case.endswith(SUFFIX):
            raise ConfigError(f"target {text!r}: the case must be a Secure Boot case "
                              f"(its name ends in {SUFFIX}), e.g. {DEFAULT_TARGETS[0]}")
        return cls(case, fwset if at and fwset else HOST)

    @property
    def counterpart(self) -> str:
        """The same transport without Secure Boot: the name less its suffix."""
        return self.case.removesuffix(SUFFIX)

    def __str__(self) -> str:
        return f"{self.case}@{self.fwset}"


@dataclass(frozen=True)
class Transfer:
    """A file the boot server sent, in seconds since the guest's power-on."""

    protocol: str
    file: str
    start: float
    end: float
    bytes: int
    blksize: int | None = None
    windowsize: int | None = None


def transfers(events: Iterable[Event], started_wall: float) -> list[Transfer]:
    """Every whole file the server sent (TFTP "sent", HTTP GET 200), oldest first."""
    found = []
    for event in events:
        details = event.details
        whole = (event.source == "tftp" and event.kind == "sent") or (
            event.source == "http" and event.kind == "get" and details.get("status") == 200)
        if not whole or "seconds" not in details:
            continue
        end = event.time - started_wall
        found.append(Transfer(event.source, event.file.lstrip("/"), end - details["seconds"],
                              end, int(details.get("bytes", 0)), details.get("blksize"),
                              details.get("windowsize")))
    return sorted(found, key=lambda t: t.start)


def stages(milestones: dict[str, float]) -> list[tuple[str, float, float]]:
    """(milestone, seconds since power-on, seconds since the one before) in time order."""
    rows, before = [], 0.0
    for name, at in sorted(milestones.items(), key=lambda item: item[1]):
        rows.append((name, at, at - before))
        before = at
    return rows


def medians(samples: list[dict[str, float]]) -> dict[str, float]:
    """Per key, the median over the samples that have it (keys in first-seen order)."""
    keys = dict.fromkeys(k for sample in samples for k in sample)
    return {k: statistics.median(s[k] for s in samples if k in s) for k in keys}


def transfer_medians(runs: list[list[Transfer]]) -> list[dict[str, Any]]:
    """Per file (first-seen order): median start, end and seconds over the runs."""
    by_file: dict[str, list[Transfer]] = {}
    for run in runs:
        for transfer in run:
            by_file.setdefault(transfer.file, []).append(transfer)
    return [{"file": name, "protocol": seen[0].protocol, "bytes": seen[0].bytes,
             "blksize": seen[0].blksize, "windowsize": seen[0].windowsize,
             "start": statistics.median(t.start for t in seen),
             "end": statistics.median(t.end for t in seen),
             "seconds": statistics.median(t.end - t.start for t in seen)}
            for name, seen in by_file.items()]


def smm_set_text(base: str, code: Path, template: Path, version: str) -> str:
    """A firmware set file: ``base`` with its Secure Boot OVMF code and a VARS template
    without keys, so the machine has SMM and a secure pflash but enforces nothing."""
    return (f'name = "{base}-smm-nokeys"\nbase = "{base}"\n\n'
            f'[files.ovmf-code-sb]\npath = "{code}"\nversion = "{version}"\n'
            f'[files.ovmf-vars-sb]\npath = "{template}"\n'
            f'version = "{version} (VARS without keys)"\n')


def smm_set(fwset_name: str, tmp: Path) -> str:
    """Write the SMM-without-keys set file of ``fwset_name``; its path."""
    base = load_firmware_set(fwset_name)
    version = next(iter(base.versions(["ovmf-code-sb"]).values()))
    path = tmp / f"{fwset_name}-smm-nokeys.toml"
    path.write_text(smm_set_text(fwset_name, base.ovmf(secure_boot=True).code,
                                 base.ovmf(secure_boot=False).vars_template, version))
    return str(path)


def _secure_boot_off(case: Scenario) -> tuple[ms.Milestone, ...]:
    return tuple(ms.SECURE_BOOT_OFF if m is ms.SECURE_BOOT_ON else m for m in case.milestones)


def scenario_for(way: Way, target: Target, smm_set_file: str) -> Scenario:
    """The scenario a way boots (the direct ways: the machine whose -kernel boot it is)."""
    case = get_scenario(target.case)
    if way in (Way.SECURE, Way.SECURE_DIRECT):
        return replace(case, firmware_set=target.fwset)
    if way in (Way.SMM, Way.SMM_DIRECT):
        return replace(case, firmware_set=smm_set_file, milestones=_secure_boot_off(case))
    if way is Way.CHAIN:
        return replace(case, firmware_set=target.fwset, milestones=_secure_boot_off(case),
                       guest=replace(case.guest, secure_boot=False),
                       firmware=tuple("ovmf-code" if f == "ovmf-code-sb" else f
                                      for f in case.firmware))
    return replace(get_scenario(target.counterpart), firmware_set=target.fwset)


def boot_lock(path: Path | None) -> AbstractContextManager[None]:
    """Hold ``path``'s flock (what `flock FILE cmd` takes) for one boot; None: no lock."""
    return file_lock(path) if path is not None else nullcontext()


def boot_once(case: Scenario, way: Way, workdir: Path, lock: Path | None
              ) -> dict[str, Any] | None:
    """Milestones and transfers of one boot; None (artifacts kept) if it failed."""
    with boot_lock(lock):
        result = BootRun(case, workdir, direct_kernel=way.direct).run()
    if not result.ok:
        print(f"  {case.name} ({way}) FAILED at {result.timeline.failed_stage}: "
              f"{result.timeline.failure} (artifacts kept in {workdir})", flush=True)
        return None
    started = result.evidence.started_wall if result.evidence else None
    sample = {"milestones": {hit.name: hit.seconds for hit in result.timeline.hits},
              "transfers": [] if started is None else transfers(result.events, started),
              "packages": result.timeline.properties.get("packages", {}),
              "accelerator": result.timeline.properties.get("accelerator", "?")}
    shutil.rmtree(workdir, ignore_errors=True)
    return sample


def measure(targets: list[Target], runs: int, tmp: Path, lock: Path | None,
            dump: Path | None = None) -> dict[str, dict[str, list[dict[str, Any]]]]:
    """Samples by (target or set) and way; runs interleave every way of every target.
    ``dump``: written after every boot, so an interrupted run keeps what it measured."""
    smm_files = {t.fwset: smm_set(t.fwset, tmp) for t in targets}
    first: dict[str, Target] = {}  # a set's directs boot its first case
    for target in targets:
        first.setdefault(target.fwset, target)
    samples: dict[str, dict[str, list[dict[str, Any]]]] = {}
    for index in range(runs):
        for fwset, representative in first.items():
            jobs = [(f"@{fwset}", way, representative) for way in DIRECT_WAYS]
            jobs += [(str(t), way, t) for t in targets if t.fwset == fwset for way in CASE_WAYS]
            for key, way, target in jobs:
                case = scenario_for(way, target, smm_files[fwset])
                workdir = tmp / f"{key.replace('@', '-').strip('-')}-{way}-{index}"
                sample = boot_once(case, way, workdir, lock)
                samples.setdefault(key, {}).setdefault(way, [])
                if sample is not None:
                    samples[key][way].append(sample)
                    print(f"  {key} {way} run {index + 1}/{runs}: "
                          f"{sample['milestones']['userspace']:.2f}s", flush=True)
                if dump is not None:
                    dump.write_text(to_json(samples))
    return samples


def to_json(samples: dict[str, dict[str, list[dict[str, Any]]]]) -> str:
    return json.dumps({key: {way: [s | {"transfers": [asdict(t) for t in s["transfers"]]}
                                   for s in runs] for way, runs in by_way.items()}
                       for key, by_way in samples.items()}, indent=2)


def from_json(text: str) -> dict[str, dict[str, list[dict[str, Any]]]]:
    """Samples as :func:`to_json` wrote them (``--from``: report an earlier run)."""
    return {key: {way: [s | {"transfers": [Transfer(**t) for t in s["transfers"]]}
                        for s in runs] for way, runs in by_way.items()}
            for key, by_way in json.loads(text).items()}


def userspace(samples: list[dict[str, Any]]) -> list[float]:
    return [s["milestones"]["userspace"] for s in samples]


def cell(times: list[float]) -> str:
    if not times:
        return "failed"
    spread = f" ({min(times):.2f}-{max(times):.2f})" if len(times) > 1 else ""
    return f"{statistics.median(times):.2f}{spread}"


def ways_of(target: Target, samples: dict[str, dict[str, list[dict[str, Any]]]]
            ) -> dict[Way, list[float]]:
    """Seconds to userspace per way: the target's own, then its set's direct boots."""
    own = samples.get(str(target), {}) | samples.get(f"@{target.fwset}", {})
    return {way: userspace(own.get(way, [])) for way in (*CASE_WAYS, *DIRECT_WAYS)}


def report_times(targets: list[Target], samples: dict[str, dict[str, list[dict[str, Any]]]]
                 ) -> str:
    order = (Way.SECURE_DIRECT, Way.SECURE, Way.SMM_DIRECT, Way.SMM, Way.PLAIN_DIRECT,
             Way.CHAIN, Way.COUNTERPART)
    lines = ["| case @ set | " + " | ".join(f"`{way}`" for way in order) + " |",
             "|---|" + "---|" * len(order)]
    for target in targets:
        times = ways_of(target, samples)
        lines.append(f"| `{target.case}` @ {target.fwset} | "
                     + " | ".join(cell(times[way]) for way in order) + " |")
    return "\n".join(lines)


def ratio(times: dict[Way, list[float]], over: Way, under: Way) -> float | None:
    if not times[over] or not times[under]:
        return None
    return statistics.median(times[over]) / statistics.median(times[under])


def report_ratios(targets: list[Target], samples: dict[str, dict[str, list[dict[str, Any]]]]
                  ) -> str:
    lines = ["| ratio | what it isolates | " + " | ".join(
        f"`{t.case}` @ {t.fwset}" for t in targets) + " |",
        "|---|---|" + "---|" * len(targets)]
    times = [ways_of(t, samples) for t in targets]
    for over, under, meaning in RATIOS:
        cells = [ratio(t, over, under) for t in times]
        lines.append(f"| {over} / {under} | {meaning} | " + " | ".join(
            "-" if r is None else f"{r:.2f}x" for r in cells) + " |")
    return "\n".join(lines)


def report_stages(key: str, by_way: dict[str, list[dict[str, Any]]]) -> str:
    """Median seconds at each milestone and in each stage, per way; then the transfers."""
    parts = []
    for way, runs in by_way.items():
        if not runs:
            continue
        rows = stages(medians([s["milestones"] for s in runs]))
        parts.append(f"{key} {way}: milestone, median s since power-on, s since the one "
                     "before\n" + "\n".join(f"  {name:<16}{at:8.2f}{took:8.2f}"
                                             for name, at, took in rows))
        sent = transfer_medians([s["transfers"] for s in runs])
        if sent:
            parts.append(f"{key} {way}: files sent, median start-end (seconds)\n" + "\n".join(
                f"  {t['protocol']:<5}{t['file']:<28}{t['start']:7.2f}-{t['end']:5.2f} "
                f"({t['seconds']:.2f}) {t['bytes']} bytes"
                + (f" blksize {t['blksize']} window {t['windowsize']}" if t["blksize"] else "")
                for t in sent))
    return "\n\n".join(parts)


def report(targets: list[Target], samples: dict[str, dict[str, list[dict[str, Any]]]]
           ) -> None:
    print("\nseconds to userspace, median of each way (range):\n")
    print(report_times(targets, samples))
    print("\n" + report_ratios(targets, samples) + "\n")
    for key, by_way in samples.items():
        print(report_stages(key, by_way) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-n", "--runs", type=int, default=3, help="boots per target and way")
    parser.add_argument("--target", nargs="+", metavar="CASE@SET",
                        help=f"default: {' '.join(DEFAULT_TARGETS)}")
    parser.add_argument("--lock", type=Path, default=LOCK,
                        help=f"flock held during each boot (default {LOCK})")
    parser.add_argument("--no-lock", action="store_true", help="boot without the lock")
    parser.add_argument("--json", type=Path, help="write every sample here (after each boot)")
    parser.add_argument("--from", dest="source", type=Path,
                        help="only report the samples an earlier run's --json wrote")
    args = parser.parse_args()
    if args.runs < 1:
        parser.error("-n must be at least 1")
    try:
        targets = [Target.parse(text) for text in args.target or DEFAULT_TARGETS]
        for target in targets:
            get_scenario(target.case)
            get_scenario(target.counterpart)
    except ConfigError as error:
        raise SystemExit(f"secureboot_bench: {error}") from None
    if args.source:
        report(targets, from_json(args.source.read_text()))
        return
    tmp = Path(tempfile.mkdtemp(prefix="pxelab-sb-bench-"))
    samples = measure(targets, args.runs, tmp, None if args.no_lock else args.lock, args.json)
    report(targets, samples)
    if any(path.is_dir() for path in tmp.iterdir()):
        print(f"artifacts of failed boots kept in {tmp}")
    else:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
