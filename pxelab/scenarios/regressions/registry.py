"""The regressions and their registry, which each area module fills.

:class:`Regression` is one entry; :func:`register` adds entries to
:data:`REGRESSIONS`; :func:`with_faults` and :func:`with_stage_timeout` are what the
area modules build their entries from.

An entry whose failure needs a certain firmware (a release that has the bug) says
so with a :data:`Precondition`: applied where it would not reproduce its failure,
it raises :class:`~pxelab.core.errors.NotApplicableError` with the reason instead
of booting a case that would only pass. The area modules import this module,
and the package imports them, so the package and its areas do not import each
other.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

from pxelab.core.errors import ConfigError, NotApplicableError
from pxelab.machine.fwsets import FirmwareSet, load_firmware_set
from pxelab.scenarios.cases import Scenario
from pxelab.server.faults import Fault

# (scenario, argument or None) -> the scenario with the fault in it.
Apply = Callable[[Scenario, str | None], Scenario]
# (scenario, the firmware set it boots on) -> why the fault would not reproduce its
# failure there ("OVMF 2022.11 predates ..."), or None where it would.
Precondition = Callable[[Scenario, FirmwareSet], str | None]


@dataclass(frozen=True)
class Regression:
    """A field failure pxelab can reproduce on demand."""

    name: str  # what --fault takes: lower-case words joined by "-"
    summary: str  # one line for `pxelab faults`
    scenario: str  # the case it reproduces the field report in (a matrix case name)
    stage: str  # the milestone that then fails
    cause: str  # the Cause.code the diagnosis must name
    apply: Apply
    # The fixed configuration (applied to the faulted case's base scenario); None: the
    # scenario without the fault boots.
    fixed: Callable[[Scenario], Scenario] | None = None
    argument: str = ""  # what ARGS means ("" : the fault takes none)
    default: str | None = None  # ARGS when none is given
    report: str = ""  # the field failure, in the words people search for
    # Where the failure reproduces at all (None: wherever apply accepts the scenario).
    precondition: Precondition | None = None

    def reason_not_applicable(self, scenario: Scenario,
                              fwset: FirmwareSet | None = None) -> str | None:
        """Why this fault would not reproduce its failure on ``scenario`` booted on
        ``fwset`` (default: the scenario's own set), or None if it would."""
        if self.precondition is None:
            return None
        return self.precondition(scenario, fwset or load_firmware_set(scenario.firmware_set))

    def applied_to(self, scenario: Scenario, argument: str | None = None,
                   fwset: FirmwareSet | None = None) -> Scenario:
        """``scenario`` with this fault in it, recorded in ``applied``.

        ``fwset`` is the firmware set the scenario boots on (default: its own);
        where the fault does not apply, a NotApplicableError says why.
        """
        if argument is not None and not self.argument:
            raise ConfigError(f"fault {self.name!r} takes no argument; write --fault "
                              f"{self.name}")
        chosen = argument if argument is not None else self.default
        if self.argument and chosen is None:
            raise ConfigError(f"fault {self.name!r} needs an argument: --fault "
                              f"{self.name}=<{self.argument}>")
        reason = self.reason_not_applicable(scenario, fwset)
        if reason is not None:
            raise NotApplicableError(f"fault {self.name!r} does not apply to {scenario.name} "
                                     f"on firmware set {fwset or scenario.firmware_set}: "
                                     f"{reason}")
        spec = self.name if argument is None else f"{self.name}={argument}"
        changed = self.apply(scenario, chosen)
        return replace(changed, applied=(*scenario.applied, spec))

    def fixed_for(self, scenario: Scenario) -> Scenario:
        return scenario if self.fixed is None else self.fixed(scenario)


REGRESSIONS: dict[str, Regression] = {}


def register(*faults: Regression) -> None:
    for fault in faults:
        if fault.name in REGRESSIONS:
            raise ConfigError(f"regression {fault.name!r} is registered twice")
        REGRESSIONS[fault.name] = fault


def with_faults(scenario: Scenario, *faults: Fault) -> Scenario:
    """``scenario`` with ``faults`` added to the ones it injects already."""
    return replace(scenario, faults=(*scenario.faults, *faults))


def with_stage_timeout(scenario: Scenario, stage: str, seconds: float) -> Scenario:
    """``scenario`` giving up on milestone ``stage`` after at most ``seconds``.

    A faulted boot whose failure is silence (no offer taken, a stall) ends there
    instead of waiting out the stage's own timeout; the evidence of the first
    seconds shows the cause as well as a full minute would. A scenario without
    that stage (the fault applied elsewhere by hand) stays as it is.
    """
    return replace(scenario, milestones=tuple(
        replace(m, timeout=min(m.timeout, seconds)) if m.name == stage else m
        for m in scenario.milestones))
