"""pxelab's own apt configuration, the kernel packages of Debian 12, 13 and 14, usr-merged
trees."""

from __future__ import annotations

import json
import os
import re
import time
from dataclasses import replace
from pathlib import Path

import pytest

from pxelab.cli import _parser, _with_suite
from pxelab.core.errors import ConfigError, HostCapabilityError, PayloadError
from pxelab.machine.payload import PayloadSpec, debs, load_payload
from pxelab.machine.payload.archive import SUITES, AptRoot, known_suite, sources
from pxelab.machine.payload.builder import MANIFEST, cache_key, find_busybox, find_vmlinuz
from pxelab.machine.payload.modules import find_modules_dir, merge_usr
from pxelab.scenarios.matrix import find_case

pytestmark = pytest.mark.unit

PACKAGES = {"linux-image-6.1.0-57-cloud-amd64": "6.1.192-3", "busybox-static": "1:1.35"}


def _entries(text: str) -> list[dict[str, str]]:
    return debs.parse_stanzas(text)


def test_bookworm_sources_name_updates_and_security_signed_by_the_archive_keyring() -> None:
    main, security = _entries(sources(known_suite("bookworm")))
    assert main == {"Types": "deb", "URIs": "http://deb.debian.org/debian",
                    "Suites": "bookworm bookworm-updates", "Components": "main",
                    "Architectures": "amd64",
                    "Signed-By": "/usr/share/keyrings/debian-archive-keyring.gpg"}
    assert security["URIs"] == "http://deb.debian.org/debian-security"
    assert security["Suites"] == "bookworm-security"
    assert security["Signed-By"] == main["Signed-By"]


def test_trixie_and_sid_sources() -> None:
    trixie = _entries(sources(known_suite("trixie")))
    assert [e["Suites"] for e in trixie] == ["trixie trixie-updates", "trixie-security"]
    (sid,) = _entries(sources(known_suite("sid")))  # no updates or security suite
    assert sid["Suites"] == "sid"


@pytest.mark.parametrize("name", ["", "stable", "buster", "bookworm-security", "Trixie"])
def test_unknown_suite_is_a_config_error_naming_the_known_ones(name: str) -> None:
    with pytest.raises(ConfigError, match="choose one of bookworm, trixie, sid"):
        known_suite(name)
    with pytest.raises(ConfigError, match="payload suite"):
        PayloadSpec(suite=name)


def test_suite_is_part_of_the_cache_key() -> None:
    assert PayloadSpec().suite == "bookworm"
    assert cache_key(PayloadSpec(), PACKAGES) != cache_key(PayloadSpec(suite="trixie"),
                                                            PACKAGES)


def _option_values(apt: AptRoot) -> dict[str, str]:
    options = apt.options()
    assert options[::2] == ["-o"] * (len(options) // 2)
    return dict(arg.split("=", 1) for arg in options[1::2])


def test_apt_options_replace_every_host_source_list_and_state(tmp_path: Path) -> None:
    apt = AptRoot.in_cache(tmp_path, "trixie")
    assert apt.root == tmp_path / "apt" / "trixie"
    values = _option_values(apt)
    for key in ("Dir::Etc::SourceList", "Dir::Etc::SourceParts", "Dir::Etc::Preferences",
                "Dir::Etc::PreferencesParts", "Dir::State", "Dir::State::lists",
                "Dir::State::status", "Dir::Cache"):
        assert Path(values[key]).is_relative_to(apt.root), key
    assert values["APT::Architectures"] == "amd64"


def test_apt_options_keep_the_host_apt_conf_parts(tmp_path: Path) -> None:
    # The host's proxy and validity settings live in apt.conf.d; pxelab needs them.
    values = _option_values(AptRoot.in_cache(tmp_path, "bookworm"))
    assert not any(key in values for key in ("Dir", "Dir::Etc", "Dir::Etc::Parts",
                                             "Dir::Etc::Main"))


def test_apt_command_puts_the_options_before_the_verb(tmp_path: Path) -> None:
    apt = AptRoot.in_cache(tmp_path, "sid")
    command = apt.command("apt-cache", "show", "busybox-static")
    assert command[0] == "apt-cache"
    assert command[-2:] == ["show", "busybox-static"]
    assert command[1:-2] == apt.options()


def test_lists_are_fresh_for_a_day_and_only_for_the_same_sources(tmp_path: Path) -> None:
    apt = AptRoot.in_cache(tmp_path, "bookworm")
    now = time.time()
    assert not apt.fresh(now)  # never updated
    stamp = apt.root / "state" / "updated"
    stamp.parent.mkdir(parents=True)
    stamp.write_text(sources(apt.suite), encoding="utf-8")
    assert apt.fresh(now)
    os.utime(stamp, (now - 25 * 3600, now - 25 * 3600))
    assert not apt.fresh(now)  # older than a day
    os.utime(stamp, (now, now))
    stamp.write_text(sources(known_suite("trixie")), encoding="utf-8")
    assert not apt.fresh(now)  # updated from other sources


def test_refresh_without_the_archive_keyring_says_what_to_install(tmp_path: Path) -> None:
    apt = replace(AptRoot.in_cache(tmp_path, "bookworm"), keyring=tmp_path / "no-keyring.gpg")
    with pytest.raises(HostCapabilityError, match="apt-get install debian-archive-keyring"):
        apt.refresh()


META_DEPENDS = {
    "bookworm": ("linux-image-6.1.0-57-cloud-amd64 (= 6.1.192-3)",
                 debs.DebPackage("linux-image-6.1.0-57-cloud-amd64", "6.1.192-3")),
    "trixie": ("linux-image-6.12.117+deb13-cloud-amd64 (= 6.12.117-1)",
               debs.DebPackage("linux-image-6.12.117+deb13-cloud-amd64", "6.12.117-1")),
}


@pytest.mark.parametrize("release", META_DEPENDS)
def test_kernel_image_of_debian_12_and_13_metapackages(release: str) -> None:
    depends, expected = META_DEPENDS[release]
    assert debs.kernel_image("cloud-amd64", {"Depends": depends}) == expected


@pytest.mark.parametrize("name", [
    "linux-image-6.12.117+deb13-amd64",  # another flavour
    "linux-image-6.12.117+deb13-cloud-amd64-dbg",
    "linux-image-6.12.117+deb13-cloud-amd64-unsigned",
    "linux-image-6.12.117-cloud-amd64",  # neither ABI number nor +debN
    "linux-image-6.12.117+debian-cloud-amd64",
    "linux-image-6.12+deb13-cloud-amd64",
    "linux-image-cloud-amd64",
    "linux-headers-6.12.117+deb13-cloud-amd64",
])
def test_kernel_image_pattern_rejects_other_names(name: str) -> None:
    assert debs.kernel_image_pattern("cloud-amd64").fullmatch(name) is None


def test_kernel_image_without_exact_version_is_left_to_apt() -> None:
    meta = {"Depends": "linux-image-6.12.117+deb13-cloud-amd64, initramfs-tools"}
    assert debs.kernel_image("cloud-amd64", meta).version == ""


def test_kernel_parts_of_a_split_debian_14_image() -> None:
    image = debs.DebPackage("linux-image-7.2.13+deb14-cloud-amd64", "7.2.13-1")
    stanza = {"Depends": "dracut | initramfs-tools (>= 0.120+deb8u2), "
              "linux-base-7.2.13+deb14-cloud-amd64 (= 7.2.13-1), "
              "linux-binary-7.2.13+deb14-cloud-amd64 (= 7.2.13-1), "
              "linux-modules-7.2.13+deb14-cloud-amd64 (= 7.2.13-1), "
              "linux-modules-7.2.12+deb14-cloud-amd64 (= 7.2.12-1)"}
    assert debs.kernel_parts(image, stanza) == tuple(
        debs.DebPackage(f"{part}-7.2.13+deb14-cloud-amd64", "7.2.13-1")
        for part in ("linux-base", "linux-binary", "linux-modules"))
    trixie = {"Depends": "kmod, linux-base (>= 4.3~), initramfs-tools (>= 0.120+deb8u2)"}
    assert debs.kernel_parts(debs.DebPackage("linux-image-6.12.117+deb13-cloud-amd64",
                                             "6.12.117-1"), trixie) == ()


def _tree(root: Path, *files: str) -> Path:
    for name in files:
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text("", encoding="utf-8")
    return root


@pytest.mark.parametrize("lib", ["lib", "usr/lib"])
def test_modules_dir_in_lib_or_usr_lib(tmp_path: Path, lib: str) -> None:
    version = "6.12.117+deb13-cloud-amd64"
    root = _tree(tmp_path, f"{lib}/modules/{version}/modules.order")
    assert find_modules_dir(root, version) == root / lib / "modules" / version
    with pytest.raises(PayloadError, match=re.escape("neither lib/modules/6.1.0-57-cloud-amd64")):
        find_modules_dir(root, "6.1.0-57-cloud-amd64")


@pytest.mark.parametrize("vmlinuz", ["boot/vmlinuz-v", "usr/lib/modules/v/vmlinuz"])
def test_vmlinuz_in_boot_or_the_modules_dir(tmp_path: Path, vmlinuz: str) -> None:
    root = _tree(tmp_path, vmlinuz, "usr/lib/modules/v/modules.order")
    assert find_vmlinuz(root, "v", find_modules_dir(root, "v")) == root / vmlinuz
    (root / vmlinuz).unlink()
    with pytest.raises(PayloadError, match="neither boot/vmlinuz-v nor usr/lib/modules/v"):
        find_vmlinuz(root, "v", root / "usr/lib/modules/v")


@pytest.mark.parametrize("bindir", ["bin", "usr/bin"])
def test_busybox_in_bin_or_usr_bin(tmp_path: Path, bindir: str) -> None:
    root = _tree(tmp_path / "busybox", f"{bindir}/busybox")
    assert find_busybox(root) == root / bindir / "busybox"
    with pytest.raises(PayloadError, match="neither bin/busybox nor usr/bin/busybox"):
        find_busybox(tmp_path / "empty")


def test_merge_usr_links_lib_for_depmod_only_in_usr_merged_trees(tmp_path: Path) -> None:
    merged = _tree(tmp_path / "merged", "usr/lib/modules/v/modules.order")
    merge_usr(merged)
    assert (merged / "lib").readlink() == Path("usr/lib")
    assert (merged / "lib" / "modules" / "v" / "modules.order").exists()
    classic = _tree(tmp_path / "classic", "lib/modules/v/modules.order", "usr/lib/x")
    merge_usr(classic)
    assert not (classic / "lib").is_symlink()


def test_payload_records_its_suite(tmp_path: Path) -> None:
    manifest = {"key": "k", "kernel_version": "6.12.117+deb13-cloud-amd64",
                "packages": {"busybox-static": "1:1.37.0-6+b9"}, "modules": [],
                "suite": "trixie"}
    (tmp_path / MANIFEST).write_text(json.dumps(manifest), encoding="utf-8")
    assert load_payload(tmp_path).suite == "trixie"
    del manifest["suite"]  # built before pxelab had its own sources
    (tmp_path / MANIFEST).write_text(json.dumps(manifest), encoding="utf-8")
    assert load_payload(tmp_path).suite == ""


def test_cli_chooses_the_payload_suite() -> None:
    assert _parser().parse_args(["payload"]).suite == "bookworm"
    assert _parser().parse_args(["payload", "--suite", "trixie"]).suite == "trixie"
    args = _parser().parse_args(["boot", "legacy_pxe_ipv4", "--payload-suite", "sid"])
    scenario = _with_suite(find_case(args.scenario), args.payload_suite)
    assert scenario.payload == replace(find_case("legacy_pxe_ipv4").payload, suite="sid")
    assert _with_suite(find_case("legacy_pxe_ipv4"), None) == find_case("legacy_pxe_ipv4")
    assert set(SUITES) == {"bookworm", "trixie", "sid"}
