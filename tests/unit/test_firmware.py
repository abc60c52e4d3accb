"""The firmware catalog: parsing, locating, versions and the one-build check."""

from __future__ import annotations

from pathlib import Path

import pytest

from pxelab.core.errors import ConfigError, HostCapabilityError
from pxelab.machine import firmware
from pxelab.machine.firmware import Artifact, DescriptorFile, Kind, load_catalog

pytestmark = pytest.mark.unit


def write_catalog(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "catalog.toml"
    path.write_text(text)
    return path


@pytest.fixture
def syslinux_tree(tmp_path: Path) -> firmware.Catalog:
    """Function: a catalog whose pxelinux.0 and ldlinux.c32 exist under tmp_path."""
    for name in ("pxelinux.0", "ldlinux.c32"):
        (tmp_path / name).write_bytes(b"x")
    return load_catalog(write_catalog(tmp_path, f"""
["pxelinux.0"]
package = "pxelinux"
kind = "nbp"
paths = ["{tmp_path}/missing/pxelinux.0", "{tmp_path}/pxelinux.0"]
build = "syslinux"
description = "PXELINUX"

["ldlinux.c32"]
package = "syslinux-common"
kind = "module"
paths = ["{tmp_path}/ldlinux.c32"]
build = "syslinux"
description = "core module"

["undionly.kpxe"]
package = "ipxe"
kind = "nbp"
paths = ["{tmp_path}/undionly.kpxe"]
description = "iPXE over UNDI"
"""))


def fake_dpkg(monkeypatch: pytest.MonkeyPatch, versions: dict[str, str]) -> None:
    def query(package: str) -> tuple[str, str]:
        if package not in versions:
            raise HostCapabilityError(f"Debian package {package} is not installed")
        return versions[package], "syslinux" if package != "ipxe" else "ipxe"
    monkeypatch.setattr(firmware, "_dpkg_query", query)


def test_shipped_catalog_is_valid_and_complete() -> None:
    catalog = load_catalog()
    for name in ("seabios", "ovmf-code", "ovmf-vars", "rom-virtio", "rom-e1000",
                 "rom-rtl8139", "pxelinux.0", "ldlinux.c32", "syslinux.efi",
                 "undionly.kpxe", "ipxe.efi", "snponly.efi", "grub-x86_64-efi"):
        assert name in catalog.artifacts
    assert catalog["ovmf-code"].descriptor is DescriptorFile.EXECUTABLE
    assert catalog["pxelinux.0"].package == "pxelinux"
    assert catalog["ldlinux.c32"].package == "syslinux-common"
    assert catalog["pxelinux.0"].build == catalog["ldlinux.c32"].build == "syslinux"
    assert catalog["seabios"].kind is Kind.FIRMWARE


def test_entries_are_frozen_dataclasses(syslinux_tree: firmware.Catalog) -> None:
    entry = syslinux_tree["pxelinux.0"]
    assert isinstance(entry, Artifact)
    with pytest.raises(AttributeError):
        entry.package = "other"  # type: ignore[misc]


def test_locate_takes_the_first_existing_path(syslinux_tree: firmware.Catalog,
                                              tmp_path: Path) -> None:
    assert firmware.locate("pxelinux.0", syslinux_tree) == tmp_path / "pxelinux.0"


def test_missing_file_names_the_debian_package(syslinux_tree: firmware.Catalog) -> None:
    with pytest.raises(HostCapabilityError, match=r"apt-get install ipxe\b"):
        firmware.locate("undionly.kpxe", syslinux_tree)


def test_unknown_name_is_a_config_error(syslinux_tree: firmware.Catalog) -> None:
    with pytest.raises(ConfigError, match=r"known names: ldlinux\.c32"):
        firmware.locate("grubx64.efi", syslinux_tree)


@pytest.mark.parametrize("entry, complaint", [
    ('package = "p"\nkind = "nbp"', "exactly one of"),
    ('package = "p"\nkind = "nbp"\npaths = ["/a"]\ndescriptor = "executable"', "exactly one"),
    ('package = "p"\nkind = "rom"\npaths = ["/a"]', "'rom' is not a valid Kind"),
    ('kind = "nbp"\npaths = ["/a"]', "missing key 'package'"),
    ('package = "p"\nkind = "nbp"\npaths = ["/a"]\npath = "/b"', "unknown keys"),
])
def test_malformed_entries_are_config_errors(tmp_path: Path, entry: str,
                                             complaint: str) -> None:
    path = write_catalog(tmp_path, f"[thing]\n{entry}\n")
    with pytest.raises(ConfigError, match=complaint):
        load_catalog(path)


def test_missing_catalog_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="PXELAB_FIRMWARE_CATALOG"):
        load_catalog(tmp_path / "nope.toml")


def test_versions_in_use_maps_names_to_packages(syslinux_tree: firmware.Catalog,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    fake_dpkg(monkeypatch, {"pxelinux": "3:6.04-3", "syslinux-common": "3:6.04-3",
                            "ipxe": "1.0.0-5"})
    versions = firmware.versions_in_use(["pxelinux.0", "ldlinux.c32", "ipxe"], syslinux_tree)
    assert versions == {"ipxe": "1.0.0-5", "pxelinux": "3:6.04-3",
                        "syslinux-common": "3:6.04-3"}


def test_versions_in_use_rejects_unknown_names(syslinux_tree: firmware.Catalog) -> None:
    with pytest.raises(ConfigError, match="neither an entry nor a package"):
        firmware.versions_in_use(["grub"], syslinux_tree)


def test_mismatched_syslinux_builds_are_refused(syslinux_tree: firmware.Catalog,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    fake_dpkg(monkeypatch, {"pxelinux": "3:6.04-3", "syslinux-common": "3:6.03-1"})
    with pytest.raises(HostCapabilityError, match="one build") as error:
        firmware.check_same_build(["pxelinux.0", "ldlinux.c32"], syslinux_tree)
    assert "6.03-1" in str(error.value) and "6.04-3" in str(error.value)


@pytest.mark.pxelab_requires(tools=["dpkg-query"], hint="a Debian host")
def test_package_version_of_a_missing_package() -> None:
    with pytest.raises(HostCapabilityError, match="apt-get install pxelab-no-such-package"):
        firmware.package_version("pxelab-no-such-package")
