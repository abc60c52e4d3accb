"""Benchmark: the scenario matrix — time to userspace per case against its physical limit,
and the wall time of the whole matrix test, serially and under pytest-xdist.

Per case (scenario on one NIC model), N runs each, interleaved:
  boot     the case as the tests run it (firmware, NBP, pxelab's boot server)
  direct   the same firmware, QEMU -kernel/-initrd with the same payload, same NFS
           root: the case's physical limit (no network boot program, no TFTP/HTTP)
and the medians of seconds to the ``kernel`` and ``userspace`` milestones, with
boot/direct as the ratio (the goal: no case above 2x).

Then the matrix test itself (tests/boot/test_scenarios.py) is run once serially
and once with ``-n 2``, and its wall time is reported (the goal: a developer on
2 cores runs the whole matrix before lunch).

    .venv/bin/python bench/matrix_bench.py -n 3 [--only legacy_pxe_ipv4 ...]
        [--nic virtio-net-pci] [--firmware ovmf] [--no-wall] [--json FILE]
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
from pathlib import Path
from typing import Any

from pxelab.lab import BootRun
from pxelab.scenarios import matrix
from pxelab.scenarios.cases import Scenario

REPO = Path(__file__).resolve().parent.parent
MATRIX_TEST = REPO / "tests" / "boot" / "test_scenarios.py"
WAYS = ("boot", "direct")


def boot_once(case: Scenario, way: str, workdir: Path) -> dict[str, Any] | None:
    """Seconds since power-on of each milestone of one boot; None if it failed."""
    result = BootRun(case, workdir, direct_kernel=way == "direct").run()
    if not result.ok:
        print(f"  {case.name} ({way}) FAILED at {result.timeline.failed_stage}: "
              f"{result.timeline.failure} (artifacts kept in {workdir})", flush=True)
        return None
    shutil.rmtree(workdir, ignore_errors=True)
    return {hit.name: hit.seconds for hit in result.timeline.hits} | {
        "accelerator": result.timeline.properties.get("accelerator", "?")}


def measure(case: Scenario, runs: int, tmp: Path) -> dict[str, Any] | None:
    samples: dict[str, list[dict[str, Any]]] = {way: [] for way in WAYS}
    failures = 0
    for index in range(runs):
        for way in WAYS:  # interleaved, so drift hits both alike
            workdir = tmp / f"{case.name.replace('[', '-').rstrip(']')}-{way}-{index}"
            sample = boot_once(case, way, workdir)
            if sample is None:
                failures += 1
                continue
            samples[way].append(sample)
            print(f"  {case.name} {way} run {index + 1}/{runs}: "
                  f"{sample['userspace']:.2f}s", flush=True)
    if not all(samples.values()):
        print(f"  {case.name}: no successful boot of some way; left out", flush=True)
        return None
    row: dict[str, Any] = {"case": case.name, "runs": runs, "failures": failures,
                           "accelerator": samples["boot"][0]["accelerator"]}
    for way in WAYS:
        for milestone in ("kernel", "userspace"):
            row[f"{way}_{milestone}"] = statistics.median(s[milestone] for s in samples[way])
        row[f"{way}_samples"] = [s["userspace"] for s in samples[way]]
        row[f"{way}_milestones"] = {  # medians, for where-the-time-goes (--json)
            name: statistics.median(s[name] for s in samples[way])
            for name in samples[way][0] if name != "accelerator"}
    row["ratio"] = row["boot_userspace"] / row["direct_userspace"]
    return row


def matrix_wall(workers: int, cases: list[Scenario], tmp: Path) -> dict[str, Any]:
    """Run the matrix test once; wall seconds and how many cases passed."""
    junit = tmp / f"matrix-n{workers}.xml"
    command = [sys.executable, "-m", "pytest", str(MATRIX_TEST), "-q", "-p", "no:cacheprovider",
               "--pxelab-strict", "--pxelab-artifacts", str(tmp / f"art-n{workers}"),
               "--junitxml", str(junit), "-k", " or ".join(_k_term(c) for c in cases)]
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
    return {"workers": workers, "wall": wall, "cases": len(tests), "failed": failed}


def _k_term(case: Scenario) -> str:
    # -k matches substrings; the id in brackets picks exactly this case.
    return f"[{case.name}]"


def report(rows: list[dict[str, Any]], walls: list[dict[str, Any]]) -> str:
    lines = ["| case | accel | kernel (boot) | userspace (boot) | kernel (direct) | "
             "userspace (direct) | boot/direct |", "|---|---|---|---|---|---|---|"]
    for row in rows:
        flag = " **>2x**" if row["ratio"] > 2 else ""
        if row["failures"]:
            flag += f" ({row['failures']} failed boot(s) left out)"
        lines.append(f"| `{row['case']}` | {row['accelerator']} | {row['boot_kernel']:.2f} | "
                     f"**{row['boot_userspace']:.2f}** | {row['direct_kernel']:.2f} | "
                     f"{row['direct_userspace']:.2f} | {row['ratio']:.2f}x{flag} |")
    if rows:
        total = sum(r["boot_userspace"] for r in rows)
        lines.append(f"\nSum of the medians to userspace: {total:.1f} s over {len(rows)} "
                     "cases.")
    for wall in walls:
        how = "serially" if wall["workers"] == 1 else f"with `-n {wall['workers']}`"
        failed = f", failed: {', '.join(wall['failed'])}" if wall["failed"] else ""
        lines.append(f"Matrix test {how}: {wall['wall']:.0f} s wall for {wall['cases']} "
                     f"cases{failed}.")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-n", "--runs", type=int, default=3, help="boots per case and way")
    parser.add_argument("--only", nargs="+", metavar="CASE", help="only these case names")
    parser.add_argument("--nic", help="only these NIC models (comma-separated)")
    parser.add_argument("--firmware", help="only this firmware (seabios, ovmf)")
    parser.add_argument("--no-wall", action="store_true", help="skip the matrix test runs")
    parser.add_argument("--no-cases", action="store_true", help="only the matrix test runs")
    parser.add_argument("--json", type=Path, help="write rows and wall times here")
    args = parser.parse_args()
    selection = matrix.Selection.parse(args.nic, args.firmware)
    cases = [c for c in matrix.cases() if selection.accepts(c)
             and (not args.only or c.name in args.only)]
    if not cases:
        raise SystemExit("no case selected; see `pxelab scenarios`")
    print(f"cases: {', '.join(c.name for c in cases)}", flush=True)
    tmp = Path(tempfile.mkdtemp(prefix="pxelab-matrix-bench-"))
    measured = [] if args.no_cases else [measure(case, args.runs, tmp) for case in cases]
    rows = [row for row in measured if row is not None]
    walls = [] if args.no_wall else [matrix_wall(w, cases, tmp) for w in (1, 2)]
    print("\n" + report(rows, walls))
    if args.json:
        args.json.write_text(json.dumps({"cases": [c.name for c in cases], "rows": rows,
                                         "walls": walls}, indent=2))
    if any(r is None or r["failures"] for r in measured) or any(w["failed"] for w in walls):
        print(f"artifacts of failed boots kept in {tmp}")
    else:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
