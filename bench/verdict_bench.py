"""Benchmark: how soon a failed boot gets its verdict, over the regression catalog's tests
and the field failures outside it (tests/boot/failures.py).

For every failed boot: the stage, the first cause, what ended the stage (a console
line, a live guard on the server's evidence, a landmark, a timeout) and the seconds
from the symptom to the verdict (``verdict_latency``: from the console line or the
server-side evidence that showed the boot was lost, to the end of the stage). The
goal is 5 s or less for every failure the guest can see; a stage that ran into its
timeout shows its whole wait.

It runs the boot tests once with their artifacts kept, then reads each boot's
timeline.json and diagnosis.json:

    .venv/bin/python bench/verdict_bench.py [-n 2] [--tests tests/boot/test_field_failures.py]
    .venv/bin/python bench/verdict_bench.py --from /tmp/pxelab-artifacts   # read only
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

TESTS = ("tests/boot/test_field_failures.py", "tests/boot/test_regress_dhcp4.py",
         "tests/boot/test_regress_dhcp6.py", "tests/boot/test_regress_tftp.py",
         "tests/boot/test_regress_initrd.py", "tests/boot/test_regress_firmware.py")
TARGET = 5.0


@dataclass(frozen=True)
class Verdict:
    boot: str
    case: str
    stage: str
    cause: str
    ended_by: str
    latency: float | None

    def row(self) -> str:
        seconds = "-" if self.latency is None else f"{self.latency:.2f}"
        flag = "" if self.latency is not None and self.latency <= TARGET else " **"
        return (f"| {self.boot} | {self.case} | {self.stage} | {self.cause} | {self.ended_by} "
                f"| {seconds}{flag} |")


def verdicts(root: Path) -> list[Verdict]:
    """One per failed boot whose artifacts lie under ``root``."""
    found = []
    for timeline_file in sorted(root.glob("**/timeline.json")):
        result = json.loads(timeline_file.read_text())
        timeline = result["timeline"]
        if timeline["ok"]:
            continue
        diagnosis_file = timeline_file.with_name("diagnosis.json")
        causes = (json.loads(diagnosis_file.read_text())["causes"]
                  if diagnosis_file.exists() else [])
        found.append(Verdict(
            timeline_file.parent.name, timeline["properties"].get("case", result["scenario"]),
            timeline["failed_stage"], causes[0]["code"] if causes else "unknown",
            str(timeline.get("ended_by") or "?"),
            timeline["properties"].get("verdict_latency")))
    return found


def table(found: list[Verdict]) -> str:
    lines = ["| boot | case | stage | cause | ended by | symptom to verdict (s) |",
             "|---|---|---|---|---|---|", *(v.row() for v in found)]
    late = [v for v in found if v.latency is None or v.latency > TARGET]
    lines.append(f"\n{len(found)} failed boots; {len(found) - len(late)} with their verdict "
                 f"within {TARGET:.0f} s of the symptom" + (" (** : not)" if late else ""))
    return "\n".join(lines)


def run_tests(root: Path, tests: list[str], workers: int) -> None:
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
               "--pxelab-artifacts", str(root), "--pxelab-keep-artifacts", *tests]
    if workers > 1:
        command += ["-n", str(workers)]
    print("+", " ".join(command), flush=True)
    subprocess.run(command, check=False)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--from", dest="source", type=Path,
                        help="read the artifacts of an earlier run instead of booting")
    parser.add_argument("--tests", nargs="*", default=list(TESTS))
    parser.add_argument("-n", type=int, default=1, help="pytest-xdist workers")
    args = parser.parse_args()
    root = args.source
    if root is None:
        root = Path(tempfile.mkdtemp(prefix="pxelab-verdicts-"))
        run_tests(root, args.tests, args.n)
    print(table(verdicts(root)))


if __name__ == "__main__":
    main()
