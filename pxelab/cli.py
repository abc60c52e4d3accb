"""The ``pxelab`` command line."""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
from pathlib import Path
from types import FrameType

from pxelab.console import MilestoneHit
from pxelab.errors import PxelabError
from pxelab.lab import BootResult, BootRun
from pxelab.paths import new_artifacts_dir
from pxelab.payload import build_payload
from pxelab.scenarios import DEFAULT_SCENARIO, SCENARIOS, get_scenario


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
        raise KeyboardInterrupt(f"signal {signum}")

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


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="pxelab", description=__doc__)
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(required=True, metavar="COMMAND")

    boot = sub.add_parser("boot", help="boot a scenario and print its timeline")
    boot.add_argument("scenario", nargs="?", default=DEFAULT_SCENARIO,
                      help=f"scenario name (default {DEFAULT_SCENARIO}; see 'pxelab scenarios')")
    boot.add_argument("--json", type=Path, metavar="FILE",
                      help="write the timeline and server events as JSON")
    boot.add_argument("--artifacts", type=Path, default=Path("pxelab-artifacts"),
                      metavar="DIR", help="where to keep this boot's evidence")
    boot.set_defaults(func=_boot)

    scenarios = sub.add_parser("scenarios", help="list the known scenarios")
    scenarios.set_defaults(func=_scenarios)

    payload = sub.add_parser("payload", help="build (or find cached) the guest payloads")
    payload.set_defaults(func=_payload)
    return parser


def _print_hit(hit: MilestoneHit) -> None:
    print(f"{hit.seconds:7.2f}s  {hit.name:<16} {hit.text[:90]}", flush=True)


def _boot(args: argparse.Namespace) -> int:
    scenario = get_scenario(args.scenario)
    artifacts = new_artifacts_dir(args.artifacts, scenario.name)
    print(f"booting {scenario.name}: {scenario.description}", flush=True)
    result = BootRun(scenario, artifacts, on_hit=_print_hit).run()
    if args.json:
        args.json.write_text(json.dumps(result.to_dict(), indent=2))
    _summarise(result)
    return 0 if result.ok else 1


def _summarise(result: BootResult) -> None:
    timeline = result.timeline
    print()
    if result.ok:
        last = timeline.hits[-1]
        print(f"OK: {result.scenario} reached userspace on NFS root in {last.seconds:.1f}s "
              f"({timeline.properties.get('accelerator', '?')})")
        print(f"    {last.text}")
    else:
        stage = timeline.failed_stage or "userspace"
        print(f"FAILED: {result.scenario} at stage {stage!r}: {timeline.failure or 'marker wrong'}")
        print("--- last console lines ---")
        print(timeline.console_tail)
        print("---")
    print(f"artifacts: {result.artifacts}")
    for name, path in result.artifact_paths().items():
        print(f"  {name:<15} {path}")


def _scenarios(args: argparse.Namespace) -> int:
    for name, scenario in sorted(SCENARIOS.items()):
        print(f"{name:<20} {scenario.description}")
    return 0


def _payload(args: argparse.Namespace) -> int:
    """Build every payload the scenarios use, so tests and boots find them cached."""
    for spec in dict.fromkeys(s.payload for s in SCENARIOS.values()):
        payload = build_payload(spec)
        print(f"kernel  {payload.kernel} ({payload.kernel_version})")
        print(f"initrd  {payload.initrd}")
        print(f"rootfs  {payload.rootfs}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
