"""pxelab as a user installs it: a wheel in a fresh venv outside the checkout.

The wheel is built from the checkout's files (copied first, so the build's ``build/``
and ``*.egg-info`` stay out of the checkout and parallel runs do not share them) and
installed with ``--no-deps`` into a venv under pytest's temporary directory. The
venv gets pxelab's dependencies (pytest, pexpect, scapy, pyroute2, virt-firmware)
through a ``.pth`` file naming the running interpreter's site-packages, so no index
is needed; pxelab itself must come from the wheel, and every command runs in a
directory of its own, never in the checkout. Payloads and firmware sets come from the
same cache as every other boot (``$PXELAB_CACHE``), so nothing is built twice.

A new way to use the installed pxelab is one more test: ``installed.pytest(directory)``
runs plain pytest in a directory the test filled (a test file, a copied lab file).
"""

from __future__ import annotations

import importlib.metadata
import os
import shutil
import signal
import site
import subprocess
import sys
import tomllib
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest
from packaging.requirements import Requirement

import pxelab
from pxelab.core.errors import HostCapabilityError
from pxelab.machine.payload import default_cache_dir

pytestmark = [pytest.mark.qemu, pytest.mark.netns, pytest.mark.slow]

CHECKOUT = Path(pxelab.__file__).resolve().parents[1]
# What the build reads: pyproject.toml names README.md (the long description).
BUILD_INPUTS = ("pyproject.toml", "README.md", "pxelab")
STEP_TIMEOUT = 300  # seconds; a wheel build, an install or one boot under TCG
# Variables that could make the venv read the checkout's code or data instead of its own.
LEADS_TO_THE_CHECKOUT = frozenset({"PYTHONPATH", "PYTHONHOME", "PXELAB_FIXTURES",
                                   "PXELAB_FIRMWARE_CATALOG", "PXELAB_FIXED_WAITS"})
# What a boot in the venv needs of the host, checked here: a subprocess cannot skip.
BOOTS = pytest.mark.pxelab_requires(root=True, tools=("qemu-system-x86_64",))

# Which pxelab the venv imports, then every sys.path entry holding a pxelab package.
WHERE_FROM = ("import os, sys, pxelab; print(pxelab.__file__); print(*[p for p in sys.path "
              "if os.path.isfile(os.path.join(p or '.', 'pxelab', '__init__.py'))], sep='\\n')")
BOOT_TEST = '''\
def test_boot(boot_scenario):
    result = boot_scenario("legacy_pxe_ipv4")
    assert result.ok, f"stage {result.timeline.failed_stage}: {result.timeline.failure}"
'''


@dataclass(frozen=True)
class InstalledPxelab:
    """A venv holding pxelab from a wheel, and how to run its commands."""

    venv: Path
    wheel: Path

    @property
    def python(self) -> Path:
        return self.venv / "bin" / "python"

    def environment(self) -> dict[str, str]:
        """This process's environment without what would lead back into the checkout."""
        env = {k: v for k, v in os.environ.items() if k not in LEADS_TO_THE_CHECKOUT}
        env["PATH"] = f"{self.venv / 'bin'}{os.pathsep}{env.get('PATH', '')}"
        env["VIRTUAL_ENV"] = str(self.venv)
        env["PXELAB_CACHE"] = str(default_cache_dir())  # share the payload cache
        return env

    def run(self, argv: Sequence[str | Path], cwd: Path) -> subprocess.CompletedProcess[str]:
        """Run ``argv`` (a command of the venv's bin/ or any other) in ``cwd``.

        Past STEP_TIMEOUT it gets SIGINT, as from Ctrl-C, so that pxelab (and pytest
        under it) tears its lab down; SIGKILL only if that does not end it.
        """
        args = [str(a) for a in argv]
        with subprocess.Popen(args, cwd=cwd, env=self.environment(), text=True,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE) as process:
            try:
                stdout, stderr = process.communicate(timeout=STEP_TIMEOUT)
            except subprocess.TimeoutExpired:
                process.send_signal(signal.SIGINT)
                try:
                    stdout, stderr = process.communicate(timeout=60)
                except subprocess.TimeoutExpired:
                    process.kill()
                    stdout, stderr = process.communicate()
                stderr += f"\n(stopped after {STEP_TIMEOUT} s)"
        return subprocess.CompletedProcess(args, process.returncode, stdout, stderr)

    def pytest(self, directory: Path, *args: str) -> subprocess.CompletedProcess[str]:
        """Plain pytest in ``directory``: its own rootdir, pxelab's plugin by entry point."""
        return self.run([self.python, "-m", "pytest", "-p", "no:cacheprovider", "-q",
                         "--pxelab-strict", *args], cwd=directory)


def output(done: subprocess.CompletedProcess[str]) -> str:
    return f"exit {done.returncode}\n--- stdout\n{done.stdout}\n--- stderr\n{done.stderr}"


def build_wheel(source: Path, out: Path) -> Path:
    """``pip wheel`` of ``source``: offline if this interpreter has the build backend."""
    requires = tomllib.loads((source / "pyproject.toml").read_text())["build-system"]
    offline = all(_installed(Requirement(text)) for text in requires["requires"])
    argv = [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(out)]
    done = subprocess.run([*argv, *(["--no-build-isolation"] if offline else []), str(source)],
                          capture_output=True, text=True, timeout=STEP_TIMEOUT, check=False)
    if done.returncode != 0 and not offline and "matching distribution" in done.stderr:
        raise HostCapabilityError(f"pip cannot fetch the build backend {requires['requires']} "
                                  f"from its index; install it into {sys.prefix} to build "
                                  f"offline:\n{done.stderr[-1000:]}")
    assert done.returncode == 0, output(done)
    return next(out.glob("pxelab-*.whl"))


def _installed(requirement: Requirement) -> bool:
    try:
        version = importlib.metadata.version(requirement.name)
    except importlib.metadata.PackageNotFoundError:
        return False
    return requirement.specifier.contains(version, prereleases=True)


def make_venv(venv: Path, wheel: Path) -> InstalledPxelab:
    """A fresh venv with ``wheel`` installed and this interpreter's packages beside it."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True,
                   timeout=STEP_TIMEOUT)
    lib = next((venv / "lib").glob("python3*/site-packages"))
    # The dependencies, from the interpreter running this test; a .pth line is only
    # appended to sys.path, so the wheel's pxelab (in lib itself) comes first.
    (lib / "pxelab-test-deps.pth").write_text("\n".join(site.getsitepackages()) + "\n")
    done = subprocess.run([sys.executable, "-m", "pip", "--python", str(venv / "bin" / "python"),
                           "install", "--no-deps", "--no-index", "-q", str(wheel)],
                          capture_output=True, text=True, timeout=STEP_TIMEOUT, check=False)
    assert done.returncode == 0, output(done)
    return InstalledPxelab(venv, wheel)


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> InstalledPxelab:
    """Module: pxelab built into a wheel from the checkout and installed in a fresh venv."""
    if not (CHECKOUT / "pyproject.toml").is_file():
        pytest.skip(f"pxelab at {CHECKOUT} is installed, not a checkout: nothing to build")
    source = tmp_path_factory.mktemp("source")
    for name in BUILD_INPUTS:
        if (CHECKOUT / name).is_dir():
            shutil.copytree(CHECKOUT / name, source / name,
                            ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        else:
            shutil.copy2(CHECKOUT / name, source / name)
    wheel = build_wheel(source, tmp_path_factory.mktemp("wheel"))
    return make_venv(tmp_path_factory.mktemp("venv") / "venv", wheel)


def test_the_wheel_ships_the_data_and_no_tests(installed: InstalledPxelab) -> None:
    names = set(zipfile.ZipFile(installed.wheel).namelist())
    data = {f"pxelab/{p.relative_to(CHECKOUT / 'pxelab').as_posix()}"
            for p in (CHECKOUT / "pxelab" / "data").rglob("*") if p.is_file()}
    assert {"pxelab/data/firmware/catalog.toml", "pxelab/data/firmware/fixed-waits.toml",
            "pxelab/py.typed"} <= names
    assert data <= names, f"not in the wheel: {sorted(data - names)}"
    assert not [n for n in names if n.split("/")[0] in {"tests", "fixtures", "bench", "tools"}]


def test_pxelab_comes_from_the_venv(installed: InstalledPxelab, tmp_path: Path) -> None:
    done = installed.run([installed.python, "-c", WHERE_FROM], cwd=tmp_path)
    assert done.returncode == 0, output(done)
    where, *importable = done.stdout.splitlines()
    assert Path(where).is_relative_to(installed.venv) and "site-packages" in Path(where).parts
    # Only the venv's copy could be imported: no sys.path entry leads to another one.
    assert len(importable) == 1 and Path(where).is_relative_to(importable[0]), importable


def test_scenarios_are_listed(installed: InstalledPxelab, tmp_path: Path) -> None:
    done = installed.run(["pxelab", "scenarios"], cwd=tmp_path)
    assert done.returncode == 0, output(done)
    assert "legacy_pxe_ipv4" in done.stdout and "uefi_http_ipv6" in done.stdout


@BOOTS
def test_pxelab_boot_reaches_userspace(installed: InstalledPxelab, tmp_path: Path) -> None:
    done = installed.run(["pxelab", "boot", "legacy_pxe_ipv4"], cwd=tmp_path)
    assert done.returncode == 0, output(done)
    assert "PXELAB-USERSPACE" in done.stdout, output(done)
    assert (tmp_path / "pxelab-artifacts").is_dir()  # the default, relative to the cwd


@BOOTS
def test_plain_pytest_boots_with_the_plugin(installed: InstalledPxelab, tmp_path: Path) -> None:
    (tmp_path / "test_my_boot.py").write_text(BOOT_TEST)
    done = installed.pytest(tmp_path)
    assert done.returncode == 0, output(done)
    assert "1 passed" in done.stdout, output(done)


@BOOTS
def test_plain_pytest_runs_a_lab_file(installed: InstalledPxelab, tmp_path: Path) -> None:
    example = CHECKOUT / "examples" / "pxelinux-menu"
    if not example.is_dir():
        pytest.skip(f"no {example}: the example lab file is part of the checkout")
    shutil.copytree(example, tmp_path / example.name)
    done = installed.pytest(tmp_path, "-k", "not e1000")  # one boot is proof enough
    assert done.returncode == 0, output(done)
    assert "1 passed" in done.stdout, output(done)
