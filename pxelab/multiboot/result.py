"""The outcome of a lab of several guests: each guest's own result, side by side, and
what the lab as a whole must hold (no address leased twice, no transfer lost)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pxelab.lab import BootResult, expectation_problem
from pxelab.multiboot.checks import Leases, Transfers
from pxelab.scenarios.cases import Scenario

RESULT_TEXT = "lab-result.txt"
RESULT_JSON = "lab-result.json"
# The table's milestone columns: the first stage of each group the guest reached.
MAIN_STAGES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("DHCP", ("fw_dhcp", "rom_dhcp", "ipxe_dhcp")),
    ("NBP", ("nbp", "nbp_start", "nbp_url")),
    ("kernel", ("kernel",)),
    ("userspace", ("userspace", "success")),
)


@dataclass(frozen=True)
class LabResult:
    """Every guest's :class:`BootResult` (in power-on order) and the lab-wide checks."""

    scenario: str
    artifacts: Path
    guests: tuple[BootResult, ...]
    macs: tuple[str, ...]
    leases: tuple[Leases, ...]
    transfers: tuple[Transfers, ...]
    # The factor the stage timeouts were scaled by (pxelab.multiboot.run.timeout_factor).
    timeout_factor: float = 1.0
    # False for a lab of the user's daemons: no server events, so transfers are unchecked
    # (leases are read from the wire too).
    server_events: bool = True
    # Each address bound to a guest while another held it (pxelab.multiboot.checks).
    collisions: tuple[str, ...] = ()

    @property
    def lost_transfers(self) -> tuple[str, ...]:
        """Each transfer a guest started that did not end whole, with the guest's MAC."""
        return tuple(f"{t.mac}: {text}" for t in self.transfers for text in t.lost)

    @property
    def all_booted(self) -> bool:
        return all(guest.ok for guest in self.guests)

    @property
    def passed(self) -> bool:
        """Every guest booted, every guest its own address, no transfer lost."""
        return self.all_booted and not self.collisions and not self.lost_transfers

    def failed(self) -> tuple[BootResult, ...]:
        return tuple(guest for guest in self.guests if not guest.ok)

    def problems(self) -> list[str]:
        found = [f"guest {i} ({mac}) {_verdict(guest)}"
                 for i, (mac, guest) in enumerate(zip(self.macs, self.guests, strict=True), 1)
                 if not guest.ok]
        found += [f"lease collision: {text}" for text in self.collisions]
        found += [f"transfer lost: {text}" for text in self.lost_transfers]
        return found

    def table(self) -> str:
        """One row per guest: MAC, leases, stage reached, seconds to the main milestones,
        transfers ended of started, verdict; then the lab's problems, if any."""
        head = ["#", "guest (MAC)", "IPv4", "IPv6", "reached",
                *(name for name, _ in MAIN_STAGES), "xfers", "verdict"]
        rows = [head] + [self._row(i) for i in range(len(self.guests))]
        widths = [max(len(row[c]) for row in rows) for c in range(len(head) - 1)]
        lines = ["  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=False))
                 + "  " + row[-1] for row in rows]
        moved = (f"{len(self.lost_transfers) or 'no'} transfers lost" if self.server_events
                 else "transfers unchecked (no server events)")
        summary = (f"{self.scenario}: {sum(g.ok for g in self.guests)} of {len(self.guests)} "
                   f"guests booted; {len(self.collisions) or 'no'} lease collisions; {moved} "
                   f"(stage timeouts x{self.timeout_factor:g})")
        return "\n".join([*lines, summary, *(f"  {p}" for p in self.problems())])

    def _row(self, index: int) -> list[str]:
        guest, lease, moved = self.guests[index], self.leases[index], self.transfers[index]
        hits = guest.timeline.hits
        cells = [str(index + 1), self.macs[index], lease.ipv4[-1] if lease.ipv4 else "-",
                 lease.ipv6[-1] if lease.ipv6 else "-", hits[-1].name if hits else "-"]
        for _, names in MAIN_STAGES:
            seconds = next((hit.seconds for hit in hits if hit.name in names), None)
            cells.append(f"{seconds:.1f}" if seconds is not None else "-")
        cells.append(f"{moved.ended}/{moved.started}" if self.server_events else "-")
        cells.append(_verdict(guest))
        return cells

    def to_dict(self) -> dict[str, Any]:
        return {"scenario": self.scenario, "passed": self.passed,
                "server_events": self.server_events,
                "timeout_factor": self.timeout_factor,
                "collisions": list(self.collisions), "lost_transfers": list(self.lost_transfers),
                "guests": [{"mac": mac, "ok": guest.ok, "verdict": _verdict(guest),
                            "ipv4": list(lease.ipv4), "ipv6": list(lease.ipv6),
                            "transfers": {"started": moved.started, "ended": moved.ended,
                                          "lost": list(moved.lost)},
                            "failed_stage": guest.timeline.failed_stage,
                            "cause": _cause(guest),
                            "milestones": {hit.name: hit.seconds
                                           for hit in guest.timeline.hits},
                            "artifacts": str(guest.artifacts)}
                           for mac, guest, lease, moved in zip(
                               self.macs, self.guests, self.leases, self.transfers,
                               strict=True)]}

    def write(self) -> None:
        """``lab-result.txt`` (the table) and ``lab-result.json`` in the lab's artifacts."""
        (self.artifacts / RESULT_TEXT).write_text(self.table() + "\n", encoding="utf-8")
        (self.artifacts / RESULT_JSON).write_text(json.dumps(self.to_dict(), indent=2),
                                                  encoding="utf-8")


def _cause(guest: BootResult) -> str | None:
    diagnosis = guest.diagnosis
    return diagnosis.cause.code if diagnosis and diagnosis.cause else None


def _verdict(guest: BootResult) -> str:
    if guest.ok:
        return "ok"
    timeline = guest.timeline
    cause = _cause(guest)
    return (f"failed at {timeline.failed_stage or 'userspace'}: "
            + (cause or timeline.failure or "marker wrong"))


def lab_expectation_problem(case: Scenario, lab: LabResult) -> str | None:
    """What is wrong with a lab of several guests: each guest as the file says, and,
    where the file expects success, no address leased twice and no transfer lost."""
    problems = [f"guest {number} ({mac}): {problem}"
                for number, (mac, guest) in enumerate(zip(lab.macs, lab.guests, strict=True), 1)
                if (problem := expectation_problem(case, guest)) is not None]
    system = case.system
    if system is None or (system.expect_stage is None and system.expect_cause is None):
        problems += [f"lease collision: {text}" for text in lab.collisions]
        problems += [f"transfer lost: {text}" for text in lab.lost_transfers]
    if not problems:
        return None
    return "\n".join([*problems, "", lab.table()])
