"""Which EDK2 release an OVMF build is, and the release that made network boot need an RNG.

Debian's OVMF packages are versioned by the EDK2 stable tag they are built from,
``[epoch:]YYYY.MM[+ds]-REVISION``: ovmf 2022.11-6+deb12u2 (bookworm) is
edk2-stable202211, ovmf 2025.02-8+deb13u1 (trixie) edk2-stable202502 and
ovmf-generic 2026.08+ds-2 (sid, where the images moved to ovmf-generic)
edk2-stable202608. Only that upstream YYYY.MM says what the firmware does; the
Debian revision (``-6+deb12u2``) carries patches on the same release.

From edk2-stable202405 on (the CVE-2023-45237 fix: TCP sequence numbers and DHCP
transaction ids from a real random source) EDK2's network stack does not start
without an EFI_RNG_PROTOCOL, so a machine without an RNG device has no PXE or HTTP
boot option at all (tianocore/edk2 issue 9530).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

__all__ = ["NEEDS_RNG", "OVMF_PACKAGES", "Edk2Release", "ovmf_release"]

# Debian binary packages that hold OVMF's x86_64 images (sid moved them to ovmf-generic).
OVMF_PACKAGES = ("ovmf", "ovmf-generic")
_VERSION = re.compile(r"^(?:\d+:)?(?P<year>\d{4})\.(?P<month>\d{2})(?!\d)")


@dataclass(frozen=True, order=True)
class Edk2Release:
    """An EDK2 stable release, ordered by date: ``Edk2Release(2025, 2)`` is 2025.02."""

    year: int
    month: int

    @classmethod
    def of(cls, version: str) -> Edk2Release | None:
        """The release a Debian OVMF ``version`` is built from (None: not YYYY.MM...)."""
        found = _VERSION.match(version.strip())
        if found is None or not 1 <= int(found["month"]) <= 12:
            return None
        return cls(int(found["year"]), int(found["month"]))

    def __str__(self) -> str:
        return f"{self.year}.{self.month:02d}"

    @property
    def tag(self) -> str:
        """The upstream git tag: ``edk2-stable202405``."""
        return f"edk2-stable{self.year}{self.month:02d}"

    def needs_rng(self) -> bool:
        """Its network boot options need an RNG device (EFI_RNG_PROTOCOL)."""
        return self >= NEEDS_RNG


# The first release whose network stack needs EFI_RNG_PROTOCOL (edk2 issue 9530).
NEEDS_RNG = Edk2Release(2024, 5)


def ovmf_release(packages: Mapping[str, str]) -> Edk2Release | None:
    """The EDK2 release of the OVMF among ``{package: version}`` (None: no OVMF package,
    or a version that names no release, such as a user's own build)."""
    for package in OVMF_PACKAGES:
        release = Edk2Release.of(packages.get(package, ""))
        if release is not None:
            return release
    return None
