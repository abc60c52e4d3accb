"""Lab files as pytest tests: ``*.pxelab.toml`` under the test paths is collected.

Each file is a collector; each of its cases (guest x NIC model x firmware set) an
item with the case's id (``uefi_http_ipv6[e1000]-trixie``) and markers, so ``-k``
and ``-m`` select lab-file boots as they do built-in scenarios. A mistake in the
file is a collection error naming the file, the key and the fix: nothing boots.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pxelab.core.errors import ConfigError
from pxelab.lab import BootResult, BootRun, expectation_problem
from pxelab.labfile.expand import lab_cases
from pxelab.labfile.parse import load_lab_file
from pxelab.machine.fwsets import HOST
from pxelab.multiboot import LabRun, lab_expectation_problem
from pxelab.pytest_support import (
    FIRMWARE_SETS,
    LAB_RESULTS,
    REPORTS,
    RESULTS,
    fresh_artifacts_dir,
    guest_backend,
    host_capability,
    junit_properties,
    lab_junit_properties,
    set_label,
)
from pxelab.scenarios.cases import Scenario


class LabFileError(AssertionError):
    """A lab file's boot did not end as the file says it must."""


class LabFileCollector(pytest.File):
    """One lab file: its cases, or a collection error that says what to fix."""

    def collect(self) -> Iterator[LabItem]:
        try:
            lab = load_lab_file(self.path)
            cases = lab_cases(lab, self.config.stash.get(FIRMWARE_SETS, ()))
        except ConfigError as error:
            raise self.CollectError(str(error)) from None
        for case in cases:
            label = set_label(case.firmware_set)
            name = case.name if case.firmware_set == HOST else f"{case.name}-{label}"
            item = LabItem.from_parent(self, name=name, case=case)
            for word in (*case.keywords, *([label] if case.firmware_set != HOST else [])):
                item.add_marker(word)
            yield item


class LabItem(pytest.Item):
    """One boot of a lab file's case, checked against the file's success or [expect]."""

    def __init__(self, *, case: Scenario, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.case = case
        self.artifacts: Path | None = None

    def runtest(self) -> None:
        self.artifacts = fresh_artifacts_dir(self)
        if self.case.guests > 1:
            self._run_lab(self.artifacts)
            return
        with host_capability(self.config):
            result = BootRun(self.case, self.artifacts,
                             backend=guest_backend(self.config)).run()
        self.user_properties.extend(
            ("pxelab." + key, value) for key, value in junit_properties(result).items())
        self.stash.setdefault(RESULTS, []).append(result)
        check_result(self.case, result)

    def _run_lab(self, artifacts: Path) -> None:
        """``guests = N``: N of the machine at once in one lab, each checked."""
        with host_capability(self.config):
            lab = LabRun(self.case, artifacts, guests=self.case.guests,
                         backend=guest_backend(self.config)).run_lab()
        self.user_properties.extend(
            ("pxelab." + key, value) for key, value in lab_junit_properties(lab).items())
        self.stash.setdefault(LAB_RESULTS, []).append(lab)
        problem = lab_expectation_problem(self.case, lab)
        if problem is not None:
            raise LabFileError(problem)

    def teardown(self) -> None:
        reports = self.stash.get(REPORTS, {})
        passed = "call" in reports and all(r.passed for r in reports.values())
        if passed and self.artifacts and not self.config.getoption("pxelab_keep_artifacts"):
            shutil.rmtree(self.artifacts, ignore_errors=True)

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException],
                     style: Any = None) -> str:
        if isinstance(excinfo.value, LabFileError | ConfigError):
            return str(excinfo.value)
        return str(super().repr_failure(excinfo, style))

    def reportinfo(self) -> tuple[Path, int | None, str]:
        return self.path, None, f"{self.parent.name if self.parent else ''}::{self.name}"


def check_result(case: Scenario, result: BootResult) -> None:
    """Raise :class:`LabFileError` unless ``result`` is what the lab file asks for."""
    problem = expectation_problem(case, result)
    if problem is not None:
        raise LabFileError(problem)
