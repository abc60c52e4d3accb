"""Benchmark: the scenario matrix — time to userspace per case against its physical limit,
per firmware set, and the wall time of the whole matrix test, serially and under
pytest-xdist.

Per case (scenario on one NIC model) and firmware set, N runs each, interleaved:
  boot     the case as the tests run it (the set's firmware and NBP, pxelab's boot server)
  direct   the same set's firmware (SeaBIOS or OVMF), QEMU -kernel/-initrd with the same
           payload, same NFS root: no network boot program, no TFTP/HTTP
The case's physical limit is its direct boot plus the fixed waits of the set's firmware
on the case's path (Scenario.fixed_waits; seconds and EDK2 source per release in
pxelab/data/firmware/fixed-waits.toml): what the case needs at least with a boot server
that answers at once. Reported: medians of seconds to ``kernel`` and ``userspace``,
boot/direct and boot/limit (the goal: no case above 2x its limit), one table per set
and, for several sets, the ratios of every case side by side.

Then the matrix test itself (tests/boot/test_scenarios.py, with the same sets) is run
once serially and once with ``-n 2``, and its wall time is reported (the goal: a
developer on 2 cores runs the whole matrix before lunch).

    .venv/bin/python bench/matrix_bench.py -n 3 [--firmware-set bookworm,trixie,sid]
        [--only legacy_pxe_ipv4 ...] [--nic virtio-net-pci] [--firmware ovmf] [--no-wall]
        [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from dataclasses import replace
from pathlib import Path
from typing import Any

from pxelab.core.errors import ConfigError
from pxelab.lab import BootRun
from pxelab.machine import fixed_waits
from pxelab.machine.fwsets import (
    HOST,
    SET_ENTRIES,
    FirmwareSet,
    is_set_file,
    load_firmware_set,
    parse_set_names,
)
from pxelab.scenarios import matrix
from pxelab.scenarios.cases import Scenario, for_firmware_set

REPO = Path(__file__).resolve().parent.parent
MATRIX_TEST = REPO / "tests" / "boot" / "test_scenarios.py"
WAYS = ("boot", "direct")
GOAL = 2.0  # no case above 2x its physical limit


def label(reference: str) -> str:
    """A set's word in test ids and paths: its name, or a set file's stem (as the plugin's)."""
    return Path(reference).stem if is_set_file(reference) else reference


def ovmf_version(fwset: FirmwareSet) -> str:
    """The version of the set's OVMF (a user's own build: the version they gave it)."""
    return next(iter(fwset.versions(["ovmf-code"]).values()))


def describe_set(fwset: FirmwareSet) -> dict[str, Any]:
    """What a result is recorded with: the set's name, origin, versions and EDK2 release."""
    version = ovmf_version(fwset)
    release = fixed_waits.table().release_of(version)
    return {"name": fwset.name, "reference": fwset.reference, "origin": fwset.origin,
            "versions": fwset.versions(SET_ENTRIES), "ovmf": version,
            "edk2": release.tag if release else None}


def boot_once(case: Scenario, way: str, workdir: Path) -> dict[str, Any] | None:
    """Seconds since power-on of each milestone of one boot; None if it failed."""
    result = BootRun(case, workdir, direct_kernel=way == "direct").run()
    if not result.ok:
        print(f"  {case.name} @{case.firmware_set} ({way}) FAILED at "
              f"{result.timeline.failed_stage}: {result.timeline.failure} "
              f"(artifacts kept in {workdir})", flush=True)
        return None
    shutil.rmtree(workdir, ignore_errors=True)
    properties = result.timeline.properties
    return {hit.name: hit.seconds for hit in result.timeline.hits} | {
        "accelerator": properties.get("accelerator", "?"),
        "packages": properties.get("packages", {})}


def measure(case: Scenario, fwsets: list[FirmwareSet], runs: int, tmp: Path
            ) -> list[dict[str, Any] | None]:
    """One row per set (None: a way that never booted); runs interleave sets and ways."""
    samples: dict[tuple[str, str], list[dict[str, Any]]] = {
        (s.reference, way): [] for s in fwsets for way in WAYS}
    failures = dict.fromkeys((s.reference for s in fwsets), 0)
    slug = case.name.replace("[", "-").rstrip("]")
    for index in range(runs):
        for fwset in fwsets:  # interleaved, so drift hits every set and way alike
            on_set = replace(case, firmware_set=fwset.reference)
            for way in WAYS:
                workdir = tmp / f"{slug}-{label(fwset.reference)}-{way}-{index}"
                sample = boot_once(on_set, way, workdir)
                if sample is None:
                    failures[fwset.reference] += 1
                    continue
                samples[fwset.reference, way].append(sample)
                print(f"  {case.name} @{fwset.name} {way} run {index + 1}/{runs}: "
                      f"{sample['userspace']:.2f}s", flush=True)
    rows: list[dict[str, Any] | None] = []
    for fwset in fwsets:
        by_way = {way: samples[fwset.reference, way] for way in WAYS}
        if not all(by_way.values()):
            print(f"  {case.name} @{fwset.name}: no successful boot of some way; left out",
                  flush=True)
            rows.append(None)
            continue
        rows.append(summarise(case, fwset, by_way, runs, failures[fwset.reference]))
    return rows


def summarise(case: Scenario, fwset: FirmwareSet, samples: dict[str, list[dict[str, Any]]],
              runs: int, failures: int) -> dict[str, Any]:
    """Medians, the case's physical limit on this set and both ratios."""
    row: dict[str, Any] = {"case": case.name, "firmware_set": fwset.reference, "runs": runs,
                           "failures": failures,
                           "accelerator": samples["boot"][0]["accelerator"],
                           # what each way booted with (timeline.json's packages)
                           "packages": {way: samples[way][0]["packages"] for way in WAYS}}
    for way in WAYS:
        for milestone in ("kernel", "userspace"):
            row[f"{way}_{milestone}"] = statistics.median(s[milestone] for s in samples[way])
        row[f"{way}_samples"] = [s["userspace"] for s in samples[way]]
        row[f"{way}_milestones"] = {  # medians, for where-the-time-goes (--json)
            name: statistics.median(s[name] for s in samples[way])
            for name in samples[way][0] if name not in ("accelerator", "packages")}
    row["ratio"] = row["boot_userspace"] / row["direct_userspace"]
    row |= physical_limit(for_firmware_set(case, fwset), fwset, row["direct_userspace"])
    limit = row["limit_userspace"]
    row["limit_ratio"] = None if limit is None else row["boot_userspace"] / limit
    return row


def physical_limit(case: Scenario, fwset: FirmwareSet, direct: float) -> dict[str, Any]:
    """The direct boot plus the fixed waits on ``case``'s path (``case`` as it boots on
    ``fwset``: which waits an iPXE ROM case has depends on the set's ROM)."""
    if not case.fixed_waits:
        return {"fixed_waits": {}, "edk2": None, "limit_userspace": direct,
                "limit_unknown": ""}
    waits = fixed_waits.on_path(case.fixed_waits, ovmf_version(fwset))
    seconds = waits.seconds
    return {"fixed_waits": {name: (waits.release.wait(name).seconds if waits.release else None)
                            for name in waits.names},
            "edk2": waits.release.tag if waits.release else None,
            "limit_userspace": None if seconds is None else direct + seconds,
            "limit_unknown": waits.problem}


def matrix_wall(workers: int, cases: list[Scenario], sets: tuple[str, ...] | None,
                tmp: Path) -> dict[str, Any]:
    """Run the matrix test once; wall seconds and how many cases passed."""
    junit = tmp / f"matrix-n{workers}.xml"
    command = [sys.executable, "-m", "pytest", str(MATRIX_TEST), "-q", "-p", "no:cacheprovider",
               "--pxelab-strict", "--pxelab-artifacts", str(tmp / f"art-n{workers}"),
               "--junitxml", str(junit), "-k", " or ".join(_k_terms(cases, sets))]
    if sets:
        command += ["--pxelab-firmware-set", ",".join(sets)]
    if workers > 1:
        command += ["-n", str(workers)]
    print(f"matrix test, {'serially' if workers == 1 else f'-n {workers}'}: "
          f"{' '.join(command[2:])}", flush=True)
    started = time.monotonic()
    done = subprocess.run(command, cwd=REPO, capture_output=True, text=True, check=False)
    wall = time.monotonic() - started
    tests = list(ET.parse(junit).iter("testcase")) if junit.exists() else []
    failed = [t.get("name") for t in tests if t.find("failure") is not None
              or t.find("error") is not None]
    print(f"  {wall:.1f}s, {len(tests)} cases, {len(failed)} failed {failed or ''}", flush=True)
    if done.returncode not in (0, 1):
        print(done.stdout[-2000:], done.stderr[-2000:], sep="\n")
    return {"workers": workers, "sets": list(sets or ()), "wall": wall, "cases": len(tests),
            "failed": failed}


def _k_terms(cases: list[Scenario], sets: tuple[str, ...] | None) -> list[str]:
    # -k matches substrings; the id in brackets picks exactly this case (on this set).
    if not sets:
        return [f"[{case.name}]" for case in cases]
    return [f"[{case.name}-{label(name)}]" for case in cases for name in sets]


def _waits_cell(row: dict[str, Any]) -> str:
    if not row["fixed_waits"]:
        return "-"
    return " + ".join(f"{name} {'?' if s is None else f'{s:g}'}"
                      for name, s in row["fixed_waits"].items())


def _limit_ratio(row: dict[str, Any]) -> str:
    ratio = row["limit_ratio"]
    if ratio is None:
        return "?"
    return f"**{ratio:.2f}x >{GOAL:g}x**" if ratio > GOAL else f"{ratio:.2f}x"


def set_header(info: dict[str, Any]) -> str:
    versions = ", ".join(f"{package} {version}" for package, version
                         in sorted(info["versions"].items()))
    edk2 = f" (OVMF from {info['edk2']})" if info["edk2"] else " (OVMF from an EDK2 release " \
        "pxelab/data/firmware/fixed-waits.toml does not list)"
    return f"Firmware set `{info['name']}` ({info['origin']}){edk2}: {versions}."


def report_set(info: dict[str, Any], rows: list[dict[str, Any]]) -> str:
    lines = [set_header(info), "",
             "| case | accel | kernel (boot) | userspace (boot) | kernel (direct) | "
             "userspace (direct) | fixed waits (s) | limit | boot/direct | boot/limit |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    notes: list[str] = []
    for row in rows:
        limit = row["limit_userspace"]
        failed = f" ({row['failures']} failed boot(s) left out)" if row["failures"] else ""
        lines.append(
            f"| `{row['case']}` | {row['accelerator']} | {row['boot_kernel']:.2f} | "
            f"**{row['boot_userspace']:.2f}** | {row['direct_kernel']:.2f} | "
            f"{row['direct_userspace']:.2f} | {_waits_cell(row)} | "
            f"{'?' if limit is None else f'{limit:.2f}'} | {row['ratio']:.2f}x | "
            f"{_limit_ratio(row)}{failed} |")
        if row["limit_unknown"]:
            notes.append(f"`{row['case']}`: limit unknown: {row['limit_unknown']}.")
    if rows:
        total = sum(r["boot_userspace"] for r in rows)
        lines.append(f"\nSum of the medians to userspace: {total:.1f} s over {len(rows)} "
                     "cases. Limit = direct + fixed waits "
                     "(pxelab/data/firmware/fixed-waits.toml).")
    return "\n".join(lines + notes)


def report_sets(sets: list[dict[str, Any]], rows: list[dict[str, Any]]) -> str:
    """Every case's boot/direct on every set, boot/limit in brackets where they differ."""
    by_key = {(row["case"], row["firmware_set"]): row for row in rows}
    lines = ["| case | " + " | ".join(f"`{info['name']}`" for info in sets) + " |",
             "|---|" + "---|" * len(sets)]
    for case in sorted({row["case"] for row in rows}):
        cells = []
        for info in sets:
            row = by_key.get((case, info["reference"]))
            if row is None:
                cells.append("-")
            elif row["fixed_waits"]:
                cells.append(f"{row['ratio']:.2f}x ({_limit_ratio(row)})")
            else:
                cells.append(_limit_ratio(row))
        lines.append(f"| `{case}` | " + " | ".join(cells) + " |")
    lines.append("\nboot/direct; in brackets boot/limit where the firmware has fixed waits "
                 "on the case's path.")
    return "\n".join(lines)


def report_walls(walls: list[dict[str, Any]]) -> str:
    lines = []
    for wall in walls:
        how = "serially" if wall["workers"] == 1 else f"with `-n {wall['workers']}`"
        failed = f", failed: {', '.join(wall['failed'])}" if wall["failed"] else ""
        sets = f" (sets {', '.join(wall['sets'])})" if wall["sets"] else ""
        lines.append(f"Matrix test {how}{sets}: {wall['wall']:.0f} s wall for {wall['cases']} "
                     f"cases{failed}.")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-n", "--runs", type=int, default=3, help="boots per case, set and way")
    parser.add_argument("--firmware-set", metavar="SETS",
                        help="firmware sets to run every case on: host, bookworm, trixie, "
                        "sid or a TOML file (comma-separated; default: host)")
    parser.add_argument("--only", nargs="+", metavar="CASE", help="only these case names")
    parser.add_argument("--nic", help="only these NIC models (comma-separated)")
    parser.add_argument("--firmware", help="only this firmware (seabios, ovmf)")
    parser.add_argument("--no-wall", action="store_true", help="skip the matrix test runs")
    parser.add_argument("--no-cases", action="store_true", help="only the matrix test runs")
    parser.add_argument("--json", type=Path, help="write sets, rows and wall times here")
    args = parser.parse_args()
    if args.runs < 1:
        parser.error("-n must be at least 1")
    try:
        selection = matrix.Selection.parse(args.nic, args.firmware)
        set_names = parse_set_names(args.firmware_set) if args.firmware_set else None
        fwsets = [load_firmware_set(name) for name in set_names or (HOST,)]
        sets = [describe_set(fwset) for fwset in fwsets]
    except ConfigError as error:
        raise SystemExit(f"matrix_bench: {error}") from None
    cases = [c for c in matrix.cases() if selection.accepts(c)
             and (not args.only or c.name in args.only)]
    if not cases:
        raise SystemExit("no case selected; see `pxelab scenarios`")
    print(f"cases: {', '.join(c.name for c in cases)}", flush=True)
    for info in sets:
        print(set_header(info), flush=True)
    tmp = Path(tempfile.mkdtemp(prefix="pxelab-matrix-bench-"))
    measured = [] if args.no_cases else [
        row for case in cases for row in measure(case, fwsets, args.runs, tmp)]
    rows = [row for row in measured if row is not None]
    walls = [] if args.no_wall else [matrix_wall(w, cases, set_names, tmp) for w in (1, 2)]
    parts = [report_set(info, [r for r in rows if r["firmware_set"] == info["reference"]])
             for info in sets]
    if len(sets) > 1 and rows:
        parts.append(report_sets(sets, rows))
    if walls:
        parts.append(report_walls(walls))
    print("\n" + "\n\n".join(parts))
    if args.json:
        args.json.write_text(json.dumps({"sets": sets, "cases": [c.name for c in cases],
                                         "rows": rows, "walls": walls}, indent=2))
    if any(r is None or r["failures"] for r in measured) or any(w["failed"] for w in walls):
        print(f"artifacts of failed boots kept in {tmp}")
    else:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
