"""What the regressions' boot tests (test_regress_*.py) share.

Each test boots an entry's case with the fault, checks that it failed the way
the regression says (stage, then cause), and boots the fixed configuration. Fixed
configurations that are the same boot are booted once per test module.
"""

from __future__ import annotations

from dataclasses import replace

from pxelab.lab import BootResult
from pxelab.machine.fwsets import FirmwareSet
from pxelab.pytest_plugin import BootFactory
from pxelab.scenarios.cases import Scenario, for_firmware_set
from pxelab.scenarios.matrix import find_case
from pxelab.scenarios.regressions import Regression, apply_regressions


def faulted_case(entry: Regression, argument: str | None = None,
                 fwset: FirmwareSet | None = None) -> Scenario:
    """The entry's case with its fault, as ``pxelab boot CASE --fault NAME[=ARGUMENT]``
    (``--firmware-set`` ``fwset``: on that set; default the host's)."""
    spec = entry.name if argument is None else f"{entry.name}={argument}"
    case = find_case(entry.scenario)
    if fwset is not None:
        case = for_firmware_set(case, fwset)
    return apply_regressions(case, [spec], fwset)


def assert_failed_at_stage(result: BootResult, entry: Regression) -> None:
    timeline = result.timeline
    assert not result.ok
    assert timeline.failed_stage == entry.stage, (
        f"failed at {timeline.failed_stage!r}, not {entry.stage!r}: {timeline.failure}\n"
        f"{timeline.console_tail}")


def assert_diagnosed(result: BootResult, entry: Regression) -> None:
    assert result.diagnosis is not None, "BootRun diagnoses every boot"
    assert entry.cause in result.diagnosis.codes, result.diagnosis.render()


def assert_fails_as_recorded(result: BootResult, entry: Regression) -> None:
    assert_failed_at_stage(result, entry)
    assert_diagnosed(result, entry)


def boot_as_recorded(boot_scenario: BootFactory, entry: Regression,
                     fwset: FirmwareSet | None = None) -> BootResult:
    """The entry's case booted with its fault (on ``fwset``, default the host's); it failed
    at the entry's stage, of its cause."""
    result = boot_scenario(faulted_case(entry, fwset=fwset))
    assert_fails_as_recorded(result, entry)
    return result


def assert_boots(result: BootResult) -> None:
    timeline = result.timeline
    assert result.ok, (f"stage {timeline.failed_stage} failed: {timeline.failure}\n"
                       f"{timeline.console_tail}")


class FixedBoots:
    """One module's boots of fixed configurations, by configuration."""

    def __init__(self) -> None:
        self._results: dict[str, BootResult] = {}

    def boot(self, boot_scenario: BootFactory, entry: Regression) -> BootResult:
        """The entry's fixed configuration booted (or its earlier boot); it must boot."""
        scenario = entry.fixed_for(find_case(entry.scenario))
        key = repr(replace(scenario, applied=()))  # scenarios hold dicts: repr as the key
        if key not in self._results:
            self._results[key] = boot_scenario(scenario)
        result = self._results[key]
        assert_boots(result)
        return result
