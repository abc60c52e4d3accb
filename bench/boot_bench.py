"""Benchmark: time to userspace of every scenario, pxelab's server against real boot stacks.

Runs, N times each, interleaved, in one run, for each scenario:
  pxelab      the scenario as the tests run it (pxelab's boot server, its rules)
  dnsmasq     the same lab, data root and ganesha, served by dnsmasq + nginx
  isc         the same, served by ISC dhcpd (+ dhcpd6) + radvd + tftpd-hpa + nginx
  direct      the same kernel+initramfs+NFS root started with QEMU -kernel/-initrd
              (the physical limit: no network boot at all)
The peer stacks are real daemons (pxelab.daemons) from the configuration files in
bench/peers/ (stacks.toml says which serve which scenario, and why not the
others). A variant that fails is reported with its stage and cause and is not
run again for that scenario; the others go on. Prints the median seconds to
userspace as a Markdown table, and each scenario's milestones.

    .venv/bin/python bench/boot_bench.py                     # every scenario, 1 run
    .venv/bin/python bench/boot_bench.py legacy_pxe_ipv4 -n 3 --variants pxelab,dnsmasq
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from peer_stacks import PeerStack, load_stacks, stack_server

from pxelab.lab import BootResult, BootRun, ServerFactory
from pxelab.scenarios.cases import SCENARIOS, get_scenario

OWN = ("pxelab", "direct")


@dataclass(frozen=True)
class Outcome:
    """One boot of one variant: its milestones, or where and why it failed."""

    scenario: str
    variant: str
    run: int
    seconds: dict[str, float]
    failure: str = ""
    artifacts: str = ""

    @property
    def ok(self) -> bool:
        return not self.failure

    @property
    def userspace(self) -> float | None:
        return self.seconds.get("userspace") if self.ok else None


def boot(scenario_name: str, variant: str, stacks: dict[str, PeerStack], run: int,
         workdir: Path) -> Outcome:
    """Boot one variant once; a failure (also one that raises) becomes its Outcome."""
    scenario = get_scenario(scenario_name)
    server: ServerFactory | None = None
    if variant not in OWN:
        server = stack_server(stacks[variant].case(scenario_name).daemons, scenario, workdir)
    try:
        result = BootRun(scenario, workdir, server=server,
                         direct_kernel=variant == "direct").run()
    except Exception as error:  # a daemon that did not start, a lab that broke
        return Outcome(scenario_name, variant, run, {}, f"{type(error).__name__}: "
                       f"{str(error).splitlines()[0]}", str(workdir))
    seconds = {hit.name: hit.seconds for hit in result.timeline.hits}
    if result.ok:
        return Outcome(scenario_name, variant, run, seconds)
    return Outcome(scenario_name, variant, run, seconds, _failure(result), str(workdir))


def _failure(result: BootResult) -> str:
    timeline, diagnosis = result.timeline, result.diagnosis
    cause = diagnosis.cause if diagnosis else None
    why = f"{cause.code}: {cause.summary}" if cause else (timeline.failure or "no marker")
    return f"failed at {timeline.failed_stage}: {why}"


def not_applicable(variant: str, scenario: str, stacks: dict[str, PeerStack]) -> str:
    return "" if variant in OWN else stacks[variant].case(scenario).not_applicable


def run_all(scenarios: list[str], variants: list[str], runs: int,
            stacks: dict[str, PeerStack], tmp: Path, *, keep: bool = False) -> list[Outcome]:
    outcomes: list[Outcome] = []
    failed: set[tuple[str, str]] = set()
    for index in range(runs):
        for scenario in scenarios:
            for variant in variants:  # interleaved, so drift hits all variants alike
                if not_applicable(variant, scenario, stacks) or (scenario, variant) in failed:
                    continue
                workdir = tmp / f"{scenario}-{variant}-{index}"
                started = time.monotonic()
                outcome = boot(scenario, variant, stacks, index, workdir)
                outcomes.append(outcome)
                took = time.monotonic() - started
                if outcome.ok:
                    if not keep:
                        shutil.rmtree(workdir, ignore_errors=True)
                    print(f"run {index + 1}/{runs} {scenario} {variant}: "
                          f"{outcome.userspace:.2f}s ({took:.0f}s wall)", flush=True)
                else:
                    failed.add((scenario, variant))
                    print(f"run {index + 1}/{runs} {scenario} {variant}: {outcome.failure} "
                          f"(artifacts {outcome.artifacts})", flush=True)
    return outcomes


def cell(outcomes: list[Outcome], scenario: str, variant: str,
         stacks: dict[str, PeerStack]) -> str:
    reason = not_applicable(variant, scenario, stacks)
    if reason:
        return f"n/a: {reason}"
    mine = [o for o in outcomes if o.scenario == scenario and o.variant == variant]
    times = [o.userspace for o in mine if o.userspace is not None]
    failures = [o.failure for o in mine if not o.ok]
    if failures:
        return failures[0] + (f" (ok {len(times)}x)" if times else "")
    if not times:
        return "-"
    spread = f" ({min(times):.2f}-{max(times):.2f})" if len(times) > 1 else ""
    return f"{statistics.median(times):.2f}{spread}"


def label(variant: str, stacks: dict[str, PeerStack]) -> str:
    return {"pxelab": "pxelab", "direct": "direct (limit)"}.get(
        variant, stacks[variant].label if variant in stacks else variant)


def report(outcomes: list[Outcome], scenarios: list[str], variants: list[str],
           stacks: dict[str, PeerStack], runs: int) -> None:
    order = ["direct", *(v for v in variants if v != "direct")] if "direct" in variants \
        else variants
    print(f"\nseconds to userspace, median over {runs} run(s) (range):\n")
    print("| scenario | " + " | ".join(label(v, stacks) for v in order) + " |")
    print("|---|" + "---|" * len(order))
    for scenario in scenarios:
        print(f"| {scenario} | " + " | ".join(cell(outcomes, scenario, v, stacks)
                                                for v in order) + " |")
    for scenario in scenarios:
        milestones(outcomes, scenario, order)


def milestones(outcomes: list[Outcome], scenario: str, variants: list[str]) -> None:
    """Median seconds to each milestone of the variants that reached userspace."""
    medians: dict[str, dict[str, float]] = {}
    for variant in variants:
        good = [o.seconds for o in outcomes
                if o.scenario == scenario and o.variant == variant and o.ok]
        if good:
            medians[variant] = {name: statistics.median(s[name] for s in good if name in s)
                                for name in good[0]}
    if not medians:
        return
    names = list(dict.fromkeys(n for m in medians.values() for n in m))
    print(f"\n{scenario}: median seconds to each milestone")
    print(f"{'milestone':<16}" + "".join(f"{v:>9}" for v in medians))
    for name in names:
        print(f"{name:<16}" + "".join(
            f"{m[name]:9.2f}" if name in m else f"{'-':>9}" for m in medians.values()))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("scenarios", nargs="*", help="default: every scenario")
    parser.add_argument("-n", "--runs", type=int, default=1)
    parser.add_argument("--variants", default="pxelab,dnsmasq,isc,direct",
                        help="comma-separated; the peers are bench/peers/stacks.toml's")
    parser.add_argument("--json", type=Path, help="write every outcome here")
    parser.add_argument("--keep", action="store_true",
                        help="keep the artifacts of every boot (failed ones are always kept)")
    args = parser.parse_args()
    stacks = load_stacks()
    variants = args.variants.split(",")
    unknown = [v for v in variants if v not in OWN and v not in stacks]
    if unknown:
        parser.error(f"unknown variant {unknown[0]!r}; choose from "
                     f"{', '.join([*OWN, *stacks])}")
    scenarios = args.scenarios or list(SCENARIOS)
    for name in scenarios:
        get_scenario(name)
    tmp = Path(tempfile.mkdtemp(prefix="pxelab-bench-"))
    outcomes = run_all(scenarios, variants, args.runs, stacks, tmp, keep=args.keep)
    report(outcomes, scenarios, variants, stacks, args.runs)
    if args.json:
        args.json.write_text(json.dumps([asdict(o) for o in outcomes], indent=2))
    if any(tmp.iterdir()):
        print(f"\nartifacts kept in {tmp}")
    else:
        tmp.rmdir()


if __name__ == "__main__":
    main()
