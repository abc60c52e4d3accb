"""pxelab's run-time data ships in the package (pxelab/data/), found without the source tree.

The wheel itself is built and installed in tests/boot/test_installed_wheel.py; these
check the cheap half: where the loaders look, the overrides, and that pyproject.toml's
package-data takes every file under pxelab/data/.
"""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

import pxelab
from pxelab.core.paths import data_path
from pxelab.machine.firmware import CATALOG_VARIABLE, load_catalog
from pxelab.machine.fixed_waits import TABLE_VARIABLE, load_table

pytestmark = pytest.mark.unit

PACKAGE = Path(pxelab.__file__).resolve().parent
PYPROJECT = PACKAGE.parent / "pyproject.toml"


def test_data_path_is_inside_the_imported_package() -> None:
    path = data_path("firmware", "catalog.toml")
    assert path.resolve() == PACKAGE / "data" / "firmware" / "catalog.toml"
    assert path.is_file()


def test_the_loaders_default_to_the_package_data(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(CATALOG_VARIABLE, raising=False)
    monkeypatch.delenv(TABLE_VARIABLE, raising=False)
    assert load_catalog().path == data_path("firmware", "catalog.toml")
    assert load_table().path == data_path("firmware", "fixed-waits.toml")


def test_the_environment_overrides_the_package_data(tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    catalog = tmp_path / "catalog.toml"
    catalog.write_text('[seabios]\npackage = "seabios"\nkind = "firmware"\npaths = ["/x"]\n')
    waits = tmp_path / "waits.toml"
    waits.write_text('["2025.02"]\nread_at = "r"\nnote = ""\n')
    monkeypatch.setenv(CATALOG_VARIABLE, str(catalog))
    monkeypatch.setenv(TABLE_VARIABLE, str(waits))
    assert load_catalog().path == catalog
    assert list(load_catalog().artifacts) == ["seabios"]
    assert load_table().path == waits


def test_package_data_takes_every_data_file() -> None:
    if not PYPROJECT.is_file():
        pytest.skip(f"pxelab is installed, not a checkout: no {PYPROJECT}")
    config = tomllib.loads(PYPROJECT.read_text(encoding="utf-8"))
    patterns = config["tool"]["setuptools"]["package-data"]["pxelab"]
    shipped = {path for pattern in patterns for path in PACKAGE.glob(pattern)}
    data = {path for path in (PACKAGE / "data").rglob("*")
            if path.is_file() and "__pycache__" not in path.parts}
    assert data, "pxelab/data/ is empty"
    assert data <= shipped, f"not in package-data {patterns}: {sorted(data - shipped)}"
