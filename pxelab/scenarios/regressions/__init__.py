"""The regression catalog: named faults that reproduce field failures.

Each :class:`CatalogFault` turns a scenario into the broken configuration a
field report describes (a file missing from the TFTP root, a DHCP server with
``min-secs``, an initramfs without the NIC driver, ...), names the stage that
then fails and the :class:`~pxelab.diagnosis.Cause` code the diagnosis must
give, and knows the fixed configuration that boots again. ``pxelab faults``
lists them; ``pxelab boot SCENARIO --fault NAME[=ARGS]`` applies them; each
has a regression test that boots all three ways.

Entries live in one module per area (``pxelab.catalog.<area>``) and register
themselves with :func:`register` when imported below.
"""

from __future__ import annotations

import shlex
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace

from pxelab.errors import ConfigError
from pxelab.faults import Fault
from pxelab.scenarios import Scenario

# (scenario, argument or None) -> the scenario with the fault in it.
Apply = Callable[[Scenario, str | None], Scenario]


@dataclass(frozen=True)
class CatalogFault:
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

    def applied_to(self, scenario: Scenario, argument: str | None = None) -> Scenario:
        """``scenario`` with this fault in it, recorded in ``applied``."""
        if argument is not None and not self.argument:
            raise ConfigError(f"fault {self.name!r} takes no argument; write --fault "
                              f"{self.name}")
        chosen = argument if argument is not None else self.default
        if self.argument and chosen is None:
            raise ConfigError(f"fault {self.name!r} needs an argument: --fault "
                              f"{self.name}=<{self.argument}>")
        spec = self.name if argument is None else f"{self.name}={argument}"
        changed = self.apply(scenario, chosen)
        return replace(changed, applied=(*scenario.applied, spec))

    def fixed_for(self, scenario: Scenario) -> Scenario:
        return scenario if self.fixed is None else self.fixed(scenario)


CATALOG: dict[str, CatalogFault] = {}


def register(*faults: CatalogFault) -> None:
    for fault in faults:
        if fault.name in CATALOG:
            raise ConfigError(f"catalog fault {fault.name!r} is registered twice")
        CATALOG[fault.name] = fault


def get_fault(name: str) -> CatalogFault:
    try:
        return CATALOG[name]
    except KeyError:
        known = ", ".join(sorted(CATALOG)) or "none"
        raise ConfigError(f"unknown fault {name!r}; `pxelab faults` lists them: "
                          f"{known}") from None


def parse_spec(spec: str) -> tuple[CatalogFault, str | None]:
    """``NAME`` or ``NAME=ARGS`` -> the catalog entry and its argument."""
    name, equals, argument = spec.partition("=")
    if not name.strip():
        raise ConfigError(f"--fault {spec!r}: write NAME or NAME=ARGS (see `pxelab faults`)")
    return get_fault(name.strip()), (argument if equals else None)


def apply_faults(scenario: Scenario, specs: Iterable[str]) -> Scenario:
    """``scenario`` with every ``NAME[=ARGS]`` of ``specs`` applied, in order."""
    for spec in specs:
        fault, argument = parse_spec(spec)
        scenario = fault.applied_to(scenario, argument)
    return scenario


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


def reproduce_command(scenario: Scenario, artifacts: str = "pxelab-artifacts") -> str:
    """The shell command that boots ``scenario`` (with its catalogued faults) by hand."""
    words = ["pxelab", "boot", scenario.name]
    for spec in scenario.applied:
        words += ["--fault", spec]
    words += ["--artifacts", artifacts]
    return shlex.join(words)


# Importing an area module registers its entries (keep this list sorted).
from pxelab.catalog import areas as _areas  # noqa: E402,F401
