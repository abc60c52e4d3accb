"""EDK2 releases from Debian's OVMF versions, and which of them need an RNG device."""

from __future__ import annotations

import pytest

from pxelab.machine.edk2 import NEEDS_RNG, Edk2Release, ovmf_release

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(("version", "release"), [
    ("2022.11-6+deb12u2", Edk2Release(2022, 11)),  # bookworm
    ("2025.02-8+deb13u1", Edk2Release(2025, 2)),  # trixie
    ("2026.08+ds-2", Edk2Release(2026, 8)),  # sid's ovmf-generic
    ("1:2025.02-8", Edk2Release(2025, 2)),  # an epoch
    ("2024.05-1~bpo12+1", Edk2Release(2024, 5)),
])
def test_release_is_the_upstream_year_and_month(version: str, release: Edk2Release) -> None:
    assert Edk2Release.of(version) == release


@pytest.mark.parametrize("version", [
    "", "0~20191122.bd85bf54-2", "2025.13-1", "2025.021-1", "edk2 ci 42 (/srv/my.toml)"])
def test_a_version_that_names_no_release_gives_none(version: str) -> None:
    assert Edk2Release.of(version) is None


def test_releases_compare_by_date_not_by_the_debian_revision() -> None:
    assert Edk2Release(2022, 11) < NEEDS_RNG <= Edk2Release(2024, 5) < Edk2Release(2025, 2)
    assert Edk2Release(2023, 12) < Edk2Release(2024, 1)  # year first
    assert Edk2Release.of("2022.11-99") == Edk2Release.of("2022.11-6+deb12u2")


@pytest.mark.parametrize(("version", "needs"), [
    ("2022.11-6+deb12u2", False), ("2024.02-2", False), ("2024.05-1", True),
    ("2025.02-8+deb13u1", True), ("2026.08+ds-2", True)])
def test_needs_rng_from_stable202405_on(version: str, needs: bool) -> None:
    release = Edk2Release.of(version)
    assert release is not None and release.needs_rng() is needs


def test_names() -> None:
    assert str(Edk2Release(2025, 2)) == "2025.02"
    assert NEEDS_RNG.tag == "edk2-stable202405"


def test_ovmf_release_reads_either_package_name() -> None:
    assert ovmf_release({"ovmf": "2025.02-8+deb13u1"}) == Edk2Release(2025, 2)
    assert ovmf_release({"ovmf-generic": "2026.08+ds-2", "seabios": "1.16.3"}) \
        == Edk2Release(2026, 8)
    assert ovmf_release({"seabios": "1.16.3"}) is None
    assert ovmf_release({"ovmf": "edk2 ci 42 (/srv/my.toml)"}) is None
