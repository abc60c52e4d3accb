"""Benchmark: time to each milestone of a scenario, against its physical limit and dnsmasq.

Runs, N times each, in one run:
  pxelab      the scenario served by pxelab's boot server
  dnsmasq     the same scenario, DHCP+TFTP served by dnsmasq, same ganesha
  direct      the same kernel+initramfs+NFS root started with QEMU -kernel/-initrd
              (the physical limit: no firmware, no boot loader, no TFTP)
and prints the median seconds to each milestone and the ratios.

    .venv/bin/python bench/boot_bench.py legacy_pxe_ipv4 -n 3
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from peers import Dnsmasq

from pxelab.core.events import EventLog
from pxelab.lab import BootRun
from pxelab.machine.network import LabNetwork
from pxelab.scenarios.cases import get_scenario

VARIANTS = ("pxelab", "dnsmasq", "direct")


def run_variant(variant: str, scenario_name: str, workdir: Path) -> dict[str, float]:
    scenario = get_scenario(scenario_name)

    def dnsmasq(net: LabNetwork, data_root: Path, events: EventLog) -> Dnsmasq:
        return Dnsmasq(net.namespace, net.bridge, net.ipv4, data_root=data_root,
                       boot_file=scenario.loader.nbp, workdir=workdir)

    run = BootRun(scenario, workdir, server=dnsmasq if variant == "dnsmasq" else None,
                  direct_kernel=variant == "direct")
    result = run.run()
    if not result.ok:
        raise SystemExit(f"{variant}: boot failed at {result.timeline.failed_stage}: "
                         f"{result.timeline.failure} (artifacts {workdir})")
    return {hit.name: hit.seconds for hit in result.timeline.hits}


def median_table(samples: list[dict[str, float]]) -> dict[str, float]:
    names = samples[0].keys()
    return {name: statistics.median(s[name] for s in samples) for name in names}


def report(scenario: str, medians: dict[str, dict[str, float]], runs: int) -> None:
    milestones = list(medians["pxelab"])
    print(f"\n{scenario}: median seconds since power-on over {runs} run(s)")
    print(f"{'milestone':<16}{'pxelab':>9}{'dnsmasq':>9}{'direct':>9}")
    for name in milestones:
        cells = [medians[v].get(name) for v in VARIANTS]
        print(f"{name:<16}" + "".join(f"{c:9.2f}" if c is not None else f"{'-':>9}"
                                      for c in cells))
    total = {v: medians[v][milestones[-1]] for v in VARIANTS}
    print(f"\nto userspace: pxelab/direct = {total['pxelab'] / total['direct']:.2f}x, "
          f"pxelab/dnsmasq = {total['pxelab'] / total['dnsmasq']:.2f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("scenario", nargs="?", default="legacy_pxe_ipv4")
    parser.add_argument("-n", "--runs", type=int, default=3)
    parser.add_argument("--json", type=Path, help="write the raw samples here")
    args = parser.parse_args()
    samples: dict[str, list[dict[str, float]]] = {v: [] for v in VARIANTS}
    tmp = tempfile.mkdtemp(prefix="pxelab-bench-")
    for index in range(args.runs):
        for variant in VARIANTS:  # interleaved, so drift hits all variants alike
            workdir = Path(tmp) / f"{variant}-{index}"
            samples[variant].append(run_variant(variant, args.scenario, workdir))
            print(f"run {index + 1}/{args.runs} {variant}: "
                  f"{list(samples[variant][-1].values())[-1]:.2f}s", flush=True)
    shutil.rmtree(tmp)  # kept when a boot fails: run_variant exits first
    report(args.scenario, {v: median_table(s) for v, s in samples.items()}, args.runs)
    if args.json:
        args.json.write_text(json.dumps(samples, indent=2))


if __name__ == "__main__":
    main()
