"""A boot as the reports see it: read back from its artifact directory.

A boot leaves ``evidence.json`` (and ``diagnosis.json``) in its artifact
directory; older boots only ``timeline.json``. :func:`load_boot` reads either
into a :class:`BootRecord`, :func:`find_boots` finds every boot under a tree
(a pytest ``--pxelab-artifacts`` directory, a bench run), and :func:`stages`
cuts a timeline into the stretches a chart draws.
"""

from __future__ import annotations

import json
import os
import shlex
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pxelab.analysis.diagnosis.model import Cause, Diagnosis
from pxelab.analysis.evidence import EVIDENCE_FILE, BootFacts, Evidence
from pxelab.core.errors import ConfigError
from pxelab.core.events import Event
from pxelab.machine.console import MilestoneHit, Timeline
from pxelab.machine.fwsets import HOST

DIAGNOSIS_FILE = "diagnosis.json"
TIMELINE_FILE = "timeline.json"
REPORT_FILE = "report.html"

# Files a boot directory may hold, by the names BootResult.artifact_paths() gives them.
KNOWN_ARTIFACTS = {
    "serial log": "serial.log", "server events": "events.jsonl",
    "ganesha log": "nfs/ganesha.log", "qemu command": "qemu-cmdline.txt",
    "packet capture": "lab.pcap", "timeline": TIMELINE_FILE, "evidence": EVIDENCE_FILE,
    "diagnosis": DIAGNOSIS_FILE, "firmware log": "ovmf-debug.log",
}


@dataclass(frozen=True)
class Stage:
    """One stretch of a boot: from the previous milestone (or power-on) to this one."""

    name: str
    start: float
    end: float
    failed: bool = False

    @property
    def seconds(self) -> float:
        return max(0.0, self.end - self.start)


def stages(timeline: Timeline) -> list[Stage]:
    """Each milestone reached as a stage, then the failed one (to where it was given up)."""
    found: list[Stage] = []
    start = 0.0
    for hit in timeline.hits:
        found.append(Stage(hit.name, start, hit.seconds))
        start = hit.seconds
    if timeline.failed_stage:
        end = timeline.failed_at if timeline.failed_at is not None else start
        found.append(Stage(timeline.failed_stage, start, max(start, end), failed=True))
    return found


def reproduce_of(evidence: Evidence) -> str:
    """The command that boots this case again: the recorded one, else rebuilt from the facts."""
    facts = evidence.facts
    if facts.reproduce:
        return facts.reproduce
    words = ["pxelab", "boot", facts.scenario]
    for spec in facts.faults:
        words += ["--fault", spec]
    return shlex.join([*words, "--artifacts", "pxelab-artifacts"])


@dataclass(frozen=True)
class BootRecord:
    """One boot read back from its artifact directory."""

    directory: Path
    evidence: Evidence
    diagnosis: Diagnosis | None = None
    # False when rebuilt from timeline.json: the guest's power-on time is not known
    # there, so server events are placed by the server's start (a fraction of a second
    # early).
    exact_clock: bool = True
    # BootResult.ok as timeline.json recorded it (userspace ran from the lab's root).
    result_ok: bool | None = None

    @property
    def timeline(self) -> Timeline:
        return self.evidence.timeline

    @property
    def scenario(self) -> str:
        return self.evidence.scenario

    @property
    def firmware_set(self) -> str:
        """The firmware set the boot ran with; boots from before sets ran the host's."""
        name = self.timeline.properties.get("firmware_set")
        return str(name) if name else HOST

    @property
    def case(self) -> str:
        """The case and the faults applied to it: a row of the firmware-set table."""
        return " ".join([self.scenario, *self._fault_words()])

    @property
    def label(self) -> str:
        """The case, its firmware set unless the host's, its faults: what tells boots apart."""
        fwset = [] if self.firmware_set == HOST else [f"@{self.firmware_set}"]
        return " ".join([self.scenario, *fwset, *self._fault_words()])

    def _fault_words(self) -> list[str]:
        return [f"--fault {f}" for f in self.evidence.facts.faults]

    @property
    def ok(self) -> bool:
        return self.timeline.ok and self.result_ok is not False

    @property
    def cause(self) -> Cause | None:
        return self.diagnosis.cause if self.diagnosis else None

    @property
    def seconds(self) -> float:
        """Seconds to userspace, or to where the boot was given up."""
        ends = [stage.end for stage in stages(self.timeline)]
        return max(ends, default=0.0)

    @property
    def reproduce(self) -> str:
        return reproduce_of(self.evidence)

    def artifacts(self) -> dict[str, Path]:
        """Name -> file of every artifact present in the directory (where it is now)."""
        found: dict[str, Path] = {}
        for name, path in self.evidence.artifacts.items():
            if (here := _relocate(Path(path), self.directory)) is not None:
                found[name] = here
        for name, file in KNOWN_ARTIFACTS.items():
            known = self.directory / file
            if known.is_file() and known not in found.values():
                found.setdefault(name, known)
        return found


def _relocate(path: Path, directory: Path) -> Path | None:
    """``path`` as it lies in ``directory`` now (artifact directories get moved or copied)."""
    if path.is_file() and path.resolve().is_relative_to(directory.resolve()):
        return path
    for keep in (1, 2, 3):
        candidate = directory.joinpath(*path.parts[-keep:])
        if candidate.is_file():
            return candidate
    return None


def is_boot_dir(directory: Path) -> bool:
    return (directory / EVIDENCE_FILE).is_file() or (directory / TIMELINE_FILE).is_file()


def find_boots(root: Path) -> list[Path]:
    """Every boot directory at or under ``root``, sorted (a boot's own subtree is not searched)."""
    if not root.is_dir():
        raise ConfigError(f"{root} is not a directory; give the artifacts directory of a boot "
                          "(pxelab boot --artifacts) or of a test run (--pxelab-artifacts)")
    return sorted(_walk(root))


def _walk(root: Path) -> Iterator[Path]:
    for top, dirs, _files in os.walk(root):
        here = Path(top)
        if is_boot_dir(here):
            dirs[:] = []  # data/ and nfs/ of a boot hold no boots
            yield here
        else:
            dirs.sort()


def load_boot(directory: Path) -> BootRecord:
    """The boot in ``directory``: from evidence.json, else from timeline.json."""
    try:
        saved = _read_json(directory / TIMELINE_FILE)
        if (directory / EVIDENCE_FILE).is_file():
            evidence = Evidence.from_dict(_read_json(directory / EVIDENCE_FILE) or {})
            exact = True
        elif saved is not None:
            evidence, exact = _evidence_from_timeline(saved), False
        else:
            raise ConfigError(f"{directory} holds neither {EVIDENCE_FILE} nor {TIMELINE_FILE}; "
                              "it is not a boot's artifact directory")
        diagnosis_data = _read_json(directory / DIAGNOSIS_FILE)
    except (KeyError, TypeError, ValueError) as error:
        raise ConfigError(f"cannot read the boot in {directory}: {error!r}; its JSON files "
                          "are damaged or from another pxelab version") from None
    diagnosis = diagnosis_from_dict(diagnosis_data) if diagnosis_data else None
    result_ok = saved.get("ok") if saved else None
    return BootRecord(directory, evidence, diagnosis, exact,
                      result_ok if isinstance(result_ok, bool) else None)


def _read_json(path: Path) -> Any:
    if not path.is_file():
        return None
    return json.loads(path.read_text(encoding="utf-8", errors="replace"))


def diagnosis_from_dict(data: dict[str, Any]) -> Diagnosis:
    """A :class:`Diagnosis` from its ``to_dict()`` form (diagnosis.json)."""
    causes = tuple(Cause(**{**c, "evidence": tuple(c.get("evidence", ()))})
                   for c in data.get("causes", ()))
    return Diagnosis(scenario=data["scenario"], ok=bool(data["ok"]),
                     failed_stage=data.get("failed_stage"), failure=data.get("failure"),
                     causes=causes, gaps=tuple(data.get("gaps", ())),
                     had=tuple(data.get("had", ())), daemons=tuple(data.get("daemons", ())))


def _evidence_from_timeline(saved: dict[str, Any]) -> Evidence:
    """Evidence from a BootResult's timeline.json (no packets, no firmware log)."""
    raw = dict(saved["timeline"])
    raw.pop("ok", None)
    timeline = Timeline(**{**raw, "hits": [MilestoneHit(**h) for h in raw.get("hits", ())]})
    events = tuple(Event.from_dict(e) for e in saved.get("events", ()))
    props = timeline.properties
    facts = BootFacts(scenario=str(saved.get("scenario", timeline.scenario)),
                      firmware=str(props.get("firmware", "")), mode=str(props.get("mode", "")),
                      ip=str(props.get("ip", "")), nic_model=str(props.get("nic_model", "")))
    # The server is started right before the guest: the best anchor timeline.json has.
    ready = [e.time for e in events if (e.source, e.kind) == ("server", "ready")]
    started = ready[-1] if ready else min((e.time for e in events), default=0.0)
    return Evidence(facts=facts, started_wall=started, timeline=timeline, events=events,
                    artifacts={k: str(v) for k, v in saved.get("artifacts", {}).items()})
