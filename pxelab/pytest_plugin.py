"""pxelab's pytest plugin: fixtures that boot scenarios in isolated labs.

Installed through the ``pytest11`` entry point, so any project that installs
pxelab gets these fixtures. Each is a thin layer over a class that works
without pytest. Artifacts of a boot are kept, and listed in the report, when
its test fails; those of passing tests are removed unless
``--pxelab-keep-artifacts`` is given.

The scenario matrix: a test that takes the argument ``pxelab_scenario`` runs
once per case of :func:`pxelab.scenarios.matrix.cases` (every scenario on each of its NIC
models), with ids like ``legacy_pxe_ipv4[e1000]`` and the markers of
:data:`pxelab.scenarios.matrix.MARKS` (``-m "uefi and ipv6"``). ``--pxelab-nic`` and
``--pxelab-firmware`` deselect the other cases. Every boot records its case,
accelerator, kernel and package versions as junit properties.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Generator, Iterable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any, Protocol, overload

import pytest

from pxelab.analysis.report.text import render_boot
from pxelab.core.errors import ConfigError, HostCapabilityError
from pxelab.lab import BootResult, BootRun
from pxelab.labfile import SUFFIX
from pxelab.machine.backend import DEFAULT_LIBVIRT_URI, Backend
from pxelab.machine.fwsets import parse_set_names
from pxelab.machine.network import LabNetwork
from pxelab.machine.payload import default_cache_dir
from pxelab.multiboot import LabResult, LabRun
from pxelab.pytest_labfiles import LabFileCollector, LabItem
from pxelab.pytest_support import (
    FIRMWARE_SETS,
    LAB_RESULTS,
    REPORTS,
    RESULTS,
    fresh_dir,
    guest_backend,
    host_capability,
    junit_properties,
    lab_junit_properties,
    safe,
    set_label,
)
from pxelab.scenarios import matrix
from pxelab.scenarios.cases import Scenario

SELECTION = pytest.StashKey[matrix.Selection]()
# The argument a test takes to run once per case of the scenario matrix.
CASE_ARG = "pxelab_scenario"

MARKERS = {
    "unit": "pure code, no privileges",
    "netns": "needs root and network namespaces",
    "qemu": "starts real QEMU guests",
    "slow": "takes more than a few seconds",
    "pxelab_requires": "pxelab_requires(root=False, tools=(), hint=''): what the host must "
                       "have; missing, the test is skipped (fails with --pxelab-strict)",
}


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("pxelab")
    group.addoption("--pxelab-strict", action="store_true",
                    help="fail instead of skip when the host lacks a capability (use in CI)")
    group.addoption("--pxelab-artifacts", type=Path, metavar="DIR",
                    help="put boot artifacts under DIR (default: pytest's temporary dir)")
    group.addoption("--pxelab-keep-artifacts", action="store_true",
                    help="keep the artifacts of passing boots too")
    group.addoption("--pxelab-nic", metavar="MODELS",
                    help="run the scenario matrix only on these QEMU NIC models "
                    "(comma-separated, e.g. virtio-net-pci,e1000)")
    group.addoption("--pxelab-firmware-set", metavar="SETS",
                    help="run the scenario matrix once per firmware set: host, bookworm, "
                    "trixie, sid or a TOML file of your own builds (comma-separated; ids and "
                    "markers carry the set, e.g. -k 'uefi_http_ipv6 and trixie')")
    group.addoption("--pxelab-backend", choices=[str(b) for b in Backend],
                    default=str(Backend.QEMU),
                    help="start the guests with QEMU in the lab (default) or as transient "
                    "libvirt domains on a host bridge joined to the lab")
    group.addoption("--pxelab-libvirt-uri", default=DEFAULT_LIBVIRT_URI, metavar="URI",
                    help=f"the libvirt daemon of --pxelab-backend libvirt (default "
                    f"{DEFAULT_LIBVIRT_URI})")
    group.addoption("--pxelab-firmware", metavar="NAMES",
                    help="run the scenario matrix only with this firmware (seabios, ovmf)")


def pytest_configure(config: pytest.Config) -> None:
    for name, text in (MARKERS | matrix.MARKS).items():
        config.addinivalue_line("markers", f"{name}: {text}")
    try:
        config.stash[SELECTION] = matrix.Selection.parse(
            config.getoption("pxelab_nic"), config.getoption("pxelab_firmware"))
        sets = config.getoption("pxelab_firmware_set")
        config.stash[FIRMWARE_SETS] = parse_set_names(sets) if sets else ()
    except ConfigError as error:
        raise pytest.UsageError(str(error)) from None
    for name in config.stash[FIRMWARE_SETS]:
        config.addinivalue_line("markers", f"{set_label(name)}: firmware set {name}")
    if not hasattr(config, "workerinput"):  # the xdist controller or a plain run
        config.pluginmanager.register(BootsSummary(), "pxelab-boots-summary")


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """A test taking ``pxelab_scenario`` runs once per case, marked with its words."""
    if CASE_ARG not in metafunc.fixturenames:
        return
    sets = metafunc.config.stash.get(FIRMWARE_SETS, ())
    metafunc.parametrize(CASE_ARG, [
        pytest.param(case, id=case.name, marks=[getattr(pytest.mark, w) for w in case.keywords])
        for case in matrix.cases()] if not sets else [
        pytest.param(replace(case, firmware_set=name), id=f"{case.name}-{set_label(name)}",
                     marks=[getattr(pytest.mark, w) for w in (*case.keywords, set_label(name))])
        for case in matrix.cases() for name in sets])


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Deselect the cases --pxelab-nic / --pxelab-firmware leave out (reported as such)."""
    selection = config.stash[SELECTION]
    keep: list[pytest.Item] = []
    dropped: list[pytest.Item] = []
    for item in items:
        case = _case_of(item)
        (keep if case is None or selection.accepts(case) else dropped).append(item)
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = keep


def _case_of(item: pytest.Item) -> Scenario | None:
    if isinstance(item, LabItem):
        return item.case
    callspec = getattr(item, "callspec", None)
    case = callspec.params.get(CASE_ARG) if callspec is not None else None
    return case if isinstance(case, Scenario) else None


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
        item: pytest.Item, call: pytest.CallInfo[None]) -> Generator[None, pytest.TestReport,
                                                                     pytest.TestReport]:
    report = yield
    item.stash.setdefault(REPORTS, {})[report.when] = report
    if report.failed:
        for result in item.stash.get(RESULTS, []):
            report.sections.append((f"pxelab {result.scenario}", _describe(result)))
        for lab in item.stash.get(LAB_RESULTS, []):
            report.sections.append((f"pxelab {lab.scenario} x{len(lab.guests)}",
                                    _describe_lab(lab)))
    return report


_GUEST_KEY = re.compile(r"pxelab\.(?P<guest>(?:lab\d+\.)?guest\d+)\.(?P<key>.+)")
# The firmware and boot-program packages the boots summary shows, when a boot used them.
SUMMARY_PACKAGES = ("ovmf", "ovmf-generic", "seabios", "ipxe-qemu", "ipxe", "grub-efi-amd64-bin",
                    "syslinux-efi", "pxelinux", "qemu-system-x86")


class BootsSummary:
    """Collects each boot's junit properties from the test reports (which reach the
    xdist controller too) and prints one line per boot at the end of the session."""

    def __init__(self) -> None:
        self.boots: list[dict[str, str]] = []

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        props = dict(report.user_properties)
        if report.when != "call":
            return
        if "pxelab.case" in props:
            self.boots.append({key.removeprefix("pxelab."): str(value)
                               for key, value in props.items()})
        # A lab of several guests: one line per guest (pxelab.guestN.*, pxelab.labM.guestN.*).
        guests: dict[str, dict[str, str]] = {}
        for key, value in props.items():
            if found := _GUEST_KEY.match(key):
                guests.setdefault(found["guest"], {})[found["key"]] = str(value)
        for boot in guests.values():  # "legacy_pxe_ipv4 guest-02/8"
            boot["case"] = f"{boot.get('case', '?')} {boot.get('guest')}/{boot.get('guests')}"
            self.boots.append(boot)

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        if not self.boots:
            return
        terminalreporter.section("pxelab boots")
        for boot in sorted(self.boots, key=lambda b: b.get("case", "")):
            terminalreporter.write_line(boot_line(boot))


def boot_line(boot: dict[str, str]) -> str:
    """Case, verdict, seconds to userspace, kernel and firmware versions of one boot."""
    seconds = boot.get("seconds_to_userspace", "")
    took = f"{float(seconds):6.1f}s" if seconds else "      -"
    verdict = "ok" if boot.get("ok") == "True" else "FAILED"
    packages = " ".join(f"{name} {boot[f'package.{name}']}" for name in SUMMARY_PACKAGES
                        if f"package.{name}" in boot)
    case = boot.get("case", "?")
    if boot.get("firmware_set", "host") != "host":
        case += f" @{boot['firmware_set']}"
    line = (f"{case:<28} {verdict:<6} {took}  kernel "
            f"{boot.get('kernel_version', '?')} ({boot.get('payload_suite', '?')})  {packages}")
    if boot.get("faults"):  # a regression test's boot: failing is what it is for
        line += f"\n    --fault {' --fault '.join(boot['faults'].split())}"
    if verdict == "FAILED":
        line += (f"\n    failed at {boot.get('failed_stage') or '?'}: "
                 f"{boot.get('cause') or 'no cause named'}")
    return line


def _describe(result: BootResult) -> str:
    """The boot for the test report: on failure its stage, causes, evidence and rerun command."""
    return render_boot(result.timeline, result.artifact_paths(), evidence=result.evidence,
                       diagnosis=result.diagnosis)


def _describe_lab(lab: LabResult) -> str:
    """A lab for the test report: the guests side by side, then each failed guest."""
    parts = [lab.table()]
    parts += [f"--- guest {number} ({mac}) ---\n{_describe(guest)}"
              for number, (mac, guest) in enumerate(zip(lab.macs, lab.guests, strict=True), 1)
              if not guest.ok]
    parts.append(f"lab artifacts: {lab.artifacts}")
    return "\n".join(parts)


def pxelab_requires(*, root: bool = False, tools: Iterable[str] = (), hint: str = "") -> None:
    """Raise :class:`HostCapabilityError` naming what the host lacks: root, tools on PATH.

    Tests and fixtures call this (or use the marker of the same name) instead of
    ``pytest.skip``: the plugin turns the error into a skip, or into a failure with
    ``--pxelab-strict``, wherever it is raised.
    """
    missing = ["root (network namespaces, tap devices)"] if root and os.geteuid() != 0 else []
    missing += [f"{tool} (not on PATH)" for tool in tools if shutil.which(tool) is None]
    if missing:
        raise HostCapabilityError("needs " + ", ".join(missing) + (f"; {hint}" if hint else ""))


@pytest.hookimpl(wrapper=True)
def pytest_runtest_setup(item: pytest.Item) -> Generator[None, None, None]:
    with host_capability(item.config):
        for mark in item.iter_markers("pxelab_requires"):
            pxelab_requires(*mark.args, **mark.kwargs)
        return (yield)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Generator[None, None, None]:
    with host_capability(item.config):
        return (yield)


@pytest.fixture(scope="session")
def pxelab_artifacts_root(request: pytest.FixtureRequest,
                          tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Session: the directory under which each test's boot artifacts go."""
    chosen: Path | None = request.config.getoption("pxelab_artifacts")
    if chosen:
        chosen.mkdir(parents=True, exist_ok=True)
        return chosen
    return tmp_path_factory.mktemp("pxelab")


@pytest.fixture(scope="session")
def pxelab_cache_dir() -> Path:
    """Session: the payload cache (shared by xdist workers; builds are locked)."""
    return default_cache_dir()


@pytest.fixture
def lab_network(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[LabNetwork]:
    """Function: a fresh lab network (namespace, bridge, capture), removed afterwards."""
    with host_capability(request.config), LabNetwork(artifacts_dir=tmp_path) as network:
        yield network


class BootFactory(Protocol):
    """``boot_scenario(name)`` boots one guest; ``boot_scenario(name, guests=N)`` N at once."""

    @overload
    def __call__(self, scenario: str | Scenario) -> BootResult: ...

    @overload
    def __call__(self, scenario: str | Scenario, *, guests: int) -> LabResult: ...

    def __call__(self, scenario: str | Scenario, *,
                 guests: int | None = None) -> BootResult | LabResult: ...


@pytest.fixture
def boot_scenario(request: pytest.FixtureRequest, pxelab_artifacts_root: Path,
                  pxelab_cache_dir: Path) -> Iterator[BootFactory]:
    """Function: ``boot_scenario(name)`` boots a scenario in a fresh lab, returns the result.

    ``name`` is a case name ("legacy_pxe_ipv4", "legacy_pxe_ipv4[e1000]") or a
    Scenario. ``boot_scenario(name, guests=8)`` powers on 8 guests of it at once in
    one lab and returns a :class:`~pxelab.multiboot.LabResult` (``.guests``, one
    BootResult each; ``.passed``; ``.table()``). Depends on pxelab_artifacts_root and
    pxelab_cache_dir. Artifacts of a failed test are kept and listed in its report;
    each boot's case, versions, accelerator and seconds to userspace become junit
    properties (pxelab.*; a lab's pxelab.lab.* and pxelab.guestN.*).
    """
    results = request.node.stash.setdefault(RESULTS, [])
    labs = request.node.stash.setdefault(LAB_RESULTS, [])
    directories: list[Path] = []

    def artifacts_dir() -> Path:
        directory = fresh_dir(pxelab_artifacts_root,
                              f"{safe(request.node.name)}-{len(directories)}")
        directories.append(directory)
        return directory

    def boot(scenario: str | Scenario, *, guests: int | None = None) -> Any:
        chosen = matrix.find_case(scenario) if isinstance(scenario, str) else scenario
        if guests is not None:
            return boot_lab(chosen, guests)
        artifacts = artifacts_dir()
        with host_capability(request.config):
            result = BootRun(chosen, artifacts, pxelab_cache_dir,
                             backend=guest_backend(request.config)).run()
        prefix = "pxelab." if not results else f"pxelab.boot{len(results)}."
        request.node.user_properties.extend(
            (prefix + key, value) for key, value in junit_properties(result).items())
        results.append(result)
        return result

    def boot_lab(chosen: Scenario, guests: int) -> LabResult:
        artifacts = artifacts_dir()
        with host_capability(request.config):
            lab = LabRun(chosen, artifacts, pxelab_cache_dir, guests=guests,
                         backend=guest_backend(request.config)).run_lab()
        prefix = "pxelab." if not labs else f"pxelab.lab{len(labs)}."
        request.node.user_properties.extend(
            (prefix + key, value) for key, value in lab_junit_properties(lab).items())
        labs.append(lab)
        return lab

    yield boot
    reports = request.node.stash.get(REPORTS, {})
    passed = all(r.passed for r in reports.values()) and "call" in reports
    if passed and not request.config.getoption("pxelab_keep_artifacts"):
        for directory in directories:
            shutil.rmtree(directory, ignore_errors=True)


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> pytest.Collector | None:
    """A lab file (``*.pxelab.toml``) under the test paths is a test module of boots."""
    if file_path.name.endswith(SUFFIX):
        return LabFileCollector.from_parent(parent, path=file_path)
    return None
