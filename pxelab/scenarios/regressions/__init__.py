"""The regressions: named faults that reproduce field failures.

Each :class:`Regression` turns a scenario into the broken configuration a
field report describes (a file missing from the TFTP root, a DHCP server with
``min-secs``, an initramfs without the NIC driver, ...), names the stage that
then fails and the :class:`~pxelab.analysis.diagnosis.Cause` code the diagnosis must
give, and knows the fixed configuration that boots again. ``pxelab faults``
lists them; ``pxelab boot SCENARIO --fault NAME[=ARGS]`` applies them; each
has a regression test that boots all three ways.

Entries live in one module per area (``pxelab.scenarios.regressions.<area>``) and register
themselves with :func:`~pxelab.scenarios.regressions.registry.register` when
:mod:`~pxelab.scenarios.regressions.areas` imports them.
"""

from __future__ import annotations

from collections.abc import Iterable

from pxelab.core.errors import ConfigError
from pxelab.machine.fwsets import FirmwareSet
from pxelab.scenarios.cases import Scenario
from pxelab.scenarios.regressions import areas as _areas  # noqa: F401  (registers the entries)
from pxelab.scenarios.regressions.registry import (
    REGRESSIONS,
    Apply,
    Precondition,
    Regression,
    register,
    with_faults,
    with_stage_timeout,
)

__all__ = [
    "REGRESSIONS",
    "Apply",
    "Precondition",
    "Regression",
    "apply_regressions",
    "get_regression",
    "parse_spec",
    "register",
    "with_faults",
    "with_stage_timeout",
]


def get_regression(name: str) -> Regression:
    try:
        return REGRESSIONS[name]
    except KeyError:
        known = ", ".join(sorted(REGRESSIONS)) or "none"
        raise ConfigError(f"unknown fault {name!r}; `pxelab faults` lists them: "
                          f"{known}") from None


def parse_spec(spec: str) -> tuple[Regression, str | None]:
    """``NAME`` or ``NAME=ARGS`` -> the regression and its argument."""
    name, equals, argument = spec.partition("=")
    if not name.strip():
        raise ConfigError(f"--fault {spec!r}: write NAME or NAME=ARGS (see `pxelab faults`)")
    return get_regression(name.strip()), (argument if equals else None)


def apply_regressions(scenario: Scenario, specs: Iterable[str],
                      fwset: FirmwareSet | None = None) -> Scenario:
    """``scenario`` with every ``NAME[=ARGS]`` of ``specs`` applied, in order.

    ``fwset`` is the firmware set it boots on (default: the scenario's own); a
    fault that does not apply there raises NotApplicableError with the reason.
    """
    for spec in specs:
        fault, argument = parse_spec(spec)
        scenario = fault.applied_to(scenario, argument, fwset)
    return scenario
