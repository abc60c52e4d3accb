"""Debian's netboot tree: the package and path of each release, unpacking into the cache
once, the offline fallback and the layout check.

A fake package built with ``dpkg-deb -b`` stands in for the archive's, so nothing here
downloads anything.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from pxelab.core.errors import ConfigError, PayloadError
from pxelab.machine import netboot
from pxelab.machine.netboot import (
    REQUIRED,
    NetbootFlavour,
    NetbootTree,
    netboot_tree,
    package_name,
    tree_path,
)
from pxelab.machine.payload import debs
from pxelab.machine.payload.archive import AptRoot

pytestmark = pytest.mark.unit

VERSION = "20230607+deb12u15"


def test_package_and_tree_of_each_release() -> None:
    assert package_name("bookworm") == "debian-installer-12-netboot-amd64"
    assert package_name("trixie") == "debian-installer-13-netboot-amd64"
    assert str(tree_path("trixie", NetbootFlavour.TEXT)) == \
        "usr/lib/debian-installer/images/13/amd64/text"
    assert str(tree_path("bookworm", NetbootFlavour.GTK)) == \
        "usr/lib/debian-installer/images/12/amd64/gtk"


def test_an_unknown_release_names_the_known_ones() -> None:
    with pytest.raises(ConfigError, match="bookworm, trixie"):
        package_name("buster")


def fake_deb(tmp_path: Path, release: str = "bookworm") -> Path:
    """A package laid out as the archive's: files in debian-installer/amd64, symlinks
    to them at the top of the tree."""
    if shutil.which("dpkg-deb") is None:
        pytest.skip("dpkg-deb not installed")
    build = tmp_path / "build"
    tree = build / tree_path(release, NetbootFlavour.TEXT)
    for name in REQUIRED:
        if "/" in name and not name.startswith("pxelinux.cfg"):
            (tree / name).parent.mkdir(parents=True, exist_ok=True)
            (tree / name).write_text(name)
    boot = tree / "debian-installer/amd64"
    (boot / "boot-screens").mkdir()
    (boot / "boot-screens/ldlinux.c32").write_text("ldlinux")
    (boot / "pxelinux.0").write_text("pxelinux")
    (boot / "pxelinux.cfg").mkdir()
    (boot / "pxelinux.cfg/default").symlink_to("../boot-screens/syslinux.cfg")
    (boot / "boot-screens/syslinux.cfg").write_text("default vesamenu.c32")
    for name, target in (("pxelinux.0", "debian-installer/amd64/pxelinux.0"),
                         ("ldlinux.c32", "debian-installer/amd64/boot-screens/ldlinux.c32"),
                         ("pxelinux.cfg", "debian-installer/amd64/pxelinux.cfg")):
        (tree / name).symlink_to(target)
    (build / "DEBIAN").mkdir()
    (build / "DEBIAN/control").write_text(
        f"Package: {package_name(release)}\nVersion: {VERSION}\nArchitecture: all\n"
        "Maintainer: pxelab tests <tests@example.org>\nDescription: fake netboot tree\n")
    deb = tmp_path / "fake.deb"
    subprocess.run(["dpkg-deb", "--root-owner-group", "-b", str(build), str(deb)],
                   check=True, capture_output=True)
    return deb


@pytest.fixture
def archive(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The archive as seen by netboot_tree: one package version, downloads counted."""
    deb = fake_deb(tmp_path)
    downloads: list[str] = []

    def show(apt: AptRoot, *names: str) -> dict[str, dict[str, str]]:
        return {name: {"Package": name, "Version": VERSION} for name in names}

    def download(apt: AptRoot, package: debs.DebPackage, debs_dir: Path) -> Path:
        downloads.append(f"{package.name}={package.version}")
        return deb

    monkeypatch.setattr(AptRoot, "refresh", lambda self, max_age=0: None)
    monkeypatch.setattr(debs, "show", show)
    monkeypatch.setattr(debs, "download", download)
    return downloads


def test_the_tree_is_unpacked_once_and_keeps_its_symlinks(tmp_path: Path,
                                                         archive: list[str]) -> None:
    cache = tmp_path / "cache"
    tree = netboot_tree("bookworm", cache)
    assert tree == NetbootTree("bookworm", VERSION, NetbootFlavour.TEXT,
                               cache / "netboot" / f"bookworm-{VERSION}" / "root"
                               / tree_path("bookworm", NetbootFlavour.TEXT))
    assert os.readlink(tree.root / "pxelinux.0") == "debian-installer/amd64/pxelinux.0"
    assert (tree.root / "pxelinux.cfg/default").read_text() == "default vesamenu.c32"
    assert tree.package == "debian-installer-12-netboot-amd64"
    assert netboot_tree("bookworm", cache) == tree
    assert archive == [f"debian-installer-12-netboot-amd64={VERSION}"]


def test_offline_the_newest_unpacked_tree_serves(tmp_path: Path, archive: list[str],
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    cache = tmp_path / "cache"
    tree = netboot_tree("bookworm", cache)

    def offline(apt: AptRoot, *names: str) -> dict[str, dict[str, str]]:
        raise PayloadError("apt-cache show failed: no lists")

    monkeypatch.setattr(debs, "show", offline)
    assert netboot_tree("bookworm", cache) == tree
    with pytest.raises(PayloadError, match="no lists"):
        netboot_tree("bookworm", tmp_path / "empty-cache")


def test_a_tree_without_a_boot_file_says_which(tmp_path: Path) -> None:
    root = tmp_path / "text"
    (root / "debian-installer/amd64").mkdir(parents=True)
    (root / netboot.KERNEL).write_text("linux")
    tree = NetbootTree("trixie", "20250803+deb13u8", NetbootFlavour.TEXT, root)
    with pytest.raises(PayloadError, match=r"has no pxelinux\.0, .*bootnetx64\.efi"):
        tree.check()
