"""Pure parts of the payload builder: apt output parsing, cache keys, spec, kernel cmdline."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from pxelab.core.errors import ConfigError, PayloadError
from pxelab.machine.payload import (
    INIT_DHCP,
    INIT_FAILED,
    INIT_IPV6,
    INIT_NFS_MOUNTED,
    USERSPACE,
    PayloadSpec,
    debs,
    default_cache_dir,
    kernel_cmdline,
    userspace_line,
)
from pxelab.machine.payload.builder import cache_key
from pxelab.machine.payload.cache import build_once
from pxelab.machine.payload.initramfs import applet_entries

pytestmark = pytest.mark.unit

APT_SHOW = """\
Package: linux-image-cloud-amd64
Source: linux-signed-amd64 (6.1.192+2)
Version: 6.1.192-2
Depends: linux-image-6.1.0-56-cloud-amd64 (= 6.1.192-2)
Description: Linux for x86-64 cloud (meta-package)
 This package depends on the latest Linux kernel and modules for use on
 cloud platforms.

Package: busybox-static
Version: 1:1.35.0-4+deb12u1+b1
Depends: libc6 (>= 2.34) | libc6-udeb, foo:any
"""


def test_parse_stanzas_and_continuation_lines() -> None:
    meta, busybox = debs.parse_stanzas(APT_SHOW)
    assert meta["Version"] == "6.1.192-2"
    assert meta["Description"].endswith("cloud platforms.")
    assert busybox["Package"] == "busybox-static"


def test_parse_depends_keeps_exact_versions_only() -> None:
    assert debs.parse_depends("a (= 1.0), b (>= 2) | c, d:any, e") == {
        "a": "1.0", "b": "", "d": "", "e": ""}


def test_kernel_image_from_metapackage() -> None:
    meta = debs.parse_stanzas(APT_SHOW)[0]
    assert debs.kernel_image("cloud-amd64", meta) == debs.DebPackage(
        "linux-image-6.1.0-56-cloud-amd64", "6.1.192-2")


def test_kernel_image_rejects_other_flavour() -> None:
    meta = debs.parse_stanzas(APT_SHOW)[0]
    with pytest.raises(PayloadError, match="flavour"):
        debs.kernel_image("amd64", meta)


def test_deb_filename_escapes_epoch() -> None:
    assert debs.DebPackage("busybox-static", "1:1.35").filename == "busybox-static_1%3a1.35.deb"


PACKAGES = {"linux-image-6.1.0-56-cloud-amd64": "6.1.192-2", "busybox-static": "1:1.35"}


def test_cache_key_depends_on_every_input() -> None:
    base = cache_key(PayloadSpec(), PACKAGES)
    assert base == cache_key(PayloadSpec(), dict(reversed(PACKAGES.items())))
    assert base != cache_key(PayloadSpec(nic_modules=("e1000",)), PACKAGES)
    assert base != cache_key(replace(PayloadSpec(), kernel_flavour="amd64"), PACKAGES)
    assert base != cache_key(PayloadSpec(), PACKAGES | {"busybox-static": "1:1.36"})


def test_spec_adds_the_virtio_bus_driver() -> None:
    assert PayloadSpec().wanted_modules() == ("virtio_pci", "virtio_net", "nfsv4")
    spec = PayloadSpec(nic_modules=("e1000", "8139too"))
    assert spec.wanted_modules() == ("e1000", "8139too", "nfsv4")


@pytest.mark.parametrize("kwargs", [{"nic_modules": "virtio_net"}, {"nfs_modules": ("",)},
                                    {"kernel_flavour": "cloud amd64"}])
def test_spec_rejects_bad_values(kwargs: dict[str, object]) -> None:
    with pytest.raises(ConfigError):
        PayloadSpec(**kwargs)  # type: ignore[arg-type]


def test_default_cache_dir(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PXELAB_CACHE", str(tmp_path / "a"))
    assert default_cache_dir() == tmp_path / "a"
    monkeypatch.delenv("PXELAB_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "x"))
    assert default_cache_dir() == tmp_path / "x" / "pxelab"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert default_cache_dir() == tmp_path / "home" / ".cache" / "pxelab"


def test_build_once_builds_once_and_cleans_up_failures(tmp_path: Path) -> None:
    calls: list[Path] = []

    def build(tmp: Path) -> None:
        calls.append(tmp)
        (tmp / "done").write_text("x")

    final = tmp_path / "payloads" / "p1"
    final.parent.mkdir()
    assert build_once(final, "done", build) is True
    assert build_once(final, "done", build) is False
    assert len(calls) == 1 and not calls[0].exists() and (final / "done").exists()

    def broken(tmp: Path) -> None:
        (tmp / "half").write_text("x")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        build_once(tmp_path / "payloads" / "p2", "done", broken)
    assert sorted(p.name for p in final.parent.iterdir()) == ["p1", "p1.lock", "p2.lock"]


def test_applet_links_are_relative_to_bin_busybox() -> None:
    entries = {e.name: e for e in applet_entries(["bin/sh", "sbin/ip", "usr/bin/awk",
                                                  "sbin/init", "linuxrc"])}
    assert entries["bin/sh"].data == b"../bin/busybox"
    assert entries["sbin/ip"].data == b"../bin/busybox"
    assert entries["usr/bin/awk"].data == b"../../bin/busybox"
    assert "sbin/init" not in entries and "linuxrc" not in entries
    assert {"sbin", "usr", "usr/bin"} <= entries.keys()


def test_kernel_cmdline() -> None:
    assert kernel_cmdline("192.0.2.1:/pxelab") == (
        "console=ttyS0 panic=-1 pxelab.nfsroot=192.0.2.1:/pxelab")
    assert kernel_cmdline("192.0.2.1:/x", " loglevel=4 ").endswith("/x loglevel=4")
    assert kernel_cmdline("[2001:db8::1]:/pxelab") == (
        "console=ttyS0 panic=-1 pxelab.nfsroot=[2001:db8::1]:/pxelab")


@pytest.mark.parametrize("bad", ["192.0.2.1", "host:/x", "192.0.2.1:x", "192.0.2.1:/a b",
                                 "2001:db8::1:/x", "[192.0.2.1]:/x", "[2001:db8::1]/x",
                                 "[2001:db8::1]:x", "[host]:/x", "[2001:db8::1:/x"])
def test_kernel_cmdline_rejects_what_init_cannot_mount(bad: str) -> None:
    with pytest.raises(ConfigError, match=r"server-ipv4.*server-ipv6"):
        kernel_cmdline(bad)


def test_console_patterns_match_the_lines_the_scripts_print() -> None:
    dhcp = INIT_DHCP.fullmatch("pxelab-init: dhcp eth0 192.0.2.111/24")
    assert dhcp and dhcp["iface"] == "eth0" and dhcp["prefix"] == "24"
    slaac = INIT_IPV6.fullmatch("pxelab-init: ipv6 eth0 2001:db8::5054:ff:fe12:3456/64 by slaac")
    assert slaac and slaac["address"] == "2001:db8::5054:ff:fe12:3456" and slaac["prefix"] == "64"
    assert INIT_DHCP.search("pxelab-init: ipv6 eth0 2001:db8::5/64 by slaac") is None
    nfs = INIT_NFS_MOUNTED.fullmatch(
        "pxelab-init: nfs root mounted 192.0.2.1:/pxelab on /newroot type nfs4")
    assert nfs and nfs["source"] == "192.0.2.1:/pxelab" and nfs["fstype"] == "nfs4"
    failed = INIT_FAILED.fullmatch("pxelab-init: FAILED dhcp: udhcpc on eth0 got no lease")
    assert failed and failed["stage"] == "dhcp"
    failed = INIT_FAILED.fullmatch("pxelab-init: FAILED ipv6: no global IPv6 address on eth0")
    assert failed and failed["stage"] == "ipv6"
    marker = USERSPACE.fullmatch(userspace_line("192.0.2.1:/pxelab"))
    assert marker and marker["root"] == "192.0.2.1:/pxelab" and marker["fstype"] == "nfs4"
