"""pxelab's pytest plugin: fixtures that boot scenarios in isolated labs.

Installed through the ``pytest11`` entry point, so any project that installs
pxelab gets these fixtures. Each is a thin layer over a class that works
without pytest. Artifacts of a boot are kept, and listed in the report, when
its test fails; those of passing tests are removed unless
``--pxelab-keep-artifacts`` is given.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Generator, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from pxelab.errors import HostCapabilityError
from pxelab.lab import BootResult, BootRun
from pxelab.network import LabNetwork
from pxelab.payload import default_cache_dir
from pxelab.scenarios import Scenario, get_scenario

REPORTS = pytest.StashKey[dict[str, pytest.TestReport]]()
RESULTS = pytest.StashKey[list[BootResult]]()

MARKERS = {
    "unit": "pure code, no privileges",
    "netns": "needs root and network namespaces",
    "qemu": "starts real QEMU guests",
    "slow": "takes more than a few seconds",
}


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("pxelab")
    group.addoption("--pxelab-strict", action="store_true",
                    help="fail instead of skip when the host lacks a capability (use in CI)")
    group.addoption("--pxelab-artifacts", type=Path, metavar="DIR",
                    help="put boot artifacts under DIR (default: pytest's temporary dir)")
    group.addoption("--pxelab-keep-artifacts", action="store_true",
                    help="keep the artifacts of passing boots too")


def pytest_configure(config: pytest.Config) -> None:
    for name, text in MARKERS.items():
        config.addinivalue_line("markers", f"{name}: {text}")


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
        item: pytest.Item, call: pytest.CallInfo[None]) -> Generator[None, pytest.TestReport,
                                                                     pytest.TestReport]:
    report = yield
    item.stash.setdefault(REPORTS, {})[report.when] = report
    if report.failed:
        for result in item.stash.get(RESULTS, []):
            report.sections.append((f"pxelab {result.scenario}", _describe(result)))
    return report


def _describe(result: BootResult) -> str:
    lines = [result.timeline.render(), "", "artifacts:"]
    lines += [f"  {name:<15} {path}" for name, path in result.artifact_paths().items()]
    if not result.timeline.ok:
        lines += ["", "last console lines:", result.timeline.console_tail]
    return "\n".join(lines)


@contextmanager
def host_capability(config: pytest.Config) -> Iterator[None]:
    """Turn a missing host capability into a skip (or a failure with --pxelab-strict)."""
    try:
        yield
    except HostCapabilityError as missing:
        if config.getoption("pxelab_strict"):
            pytest.fail(f"host capability missing: {missing}")
        pytest.skip(f"host capability missing: {missing}")


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


BootFactory = Callable[[str | Scenario], BootResult]


@pytest.fixture
def boot_scenario(request: pytest.FixtureRequest, pxelab_artifacts_root: Path,
                  pxelab_cache_dir: Path) -> Iterator[BootFactory]:
    """Function: ``boot_scenario(name)`` boots a scenario in a fresh lab, returns the result.

    Depends on pxelab_artifacts_root and pxelab_cache_dir. Artifacts of a failed
    test are kept and listed in its report.
    """
    results = request.node.stash.setdefault(RESULTS, [])
    directories: list[Path] = []

    def boot(scenario: str | Scenario) -> BootResult:
        chosen = get_scenario(scenario) if isinstance(scenario, str) else scenario
        artifacts = pxelab_artifacts_root / f"{_safe(request.node.name)}-{len(directories)}"
        directories.append(artifacts)
        with host_capability(request.config):
            result = BootRun(chosen, artifacts, pxelab_cache_dir).run()
        results.append(result)
        return result

    yield boot
    reports = request.node.stash.get(REPORTS, {})
    passed = all(r.passed for r in reports.values()) and "call" in reports
    if passed and not request.config.getoption("pxelab_keep_artifacts"):
        for directory in directories:
            shutil.rmtree(directory, ignore_errors=True)


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name)[:80]
