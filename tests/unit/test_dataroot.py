"""The data root each boot loader gets: files, rendered configs and iPXE scripts."""

from __future__ import annotations

from ipaddress import IPv4Address, IPv6Address
from pathlib import Path

import pytest

from pxelab.core.errors import ConfigError
from pxelab.machine.payload import Payload
from pxelab.scenarios import dataroot
from pxelab.scenarios.cases import SCENARIOS, BootLoader

pytestmark = pytest.mark.unit

APPEND = "console=ttyS0 panic=-1 pxelab.nfsroot=192.0.2.1:/pxelab"


@pytest.fixture
def payload(tmp_path: Path) -> Payload:
    """Function: a fake payload (kernel and initrd are a few bytes each)."""
    (tmp_path / "vmlinuz").write_bytes(b"kernel")
    (tmp_path / "initrd.img").write_bytes(b"initrd")
    return Payload(kernel=tmp_path / "vmlinuz", initrd=tmp_path / "initrd.img",
                   rootfs=tmp_path / "rootfs", kernel_version="6.1.0-test", packages={})


def script_lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line and not line.startswith("#")]


@pytest.mark.parametrize(("base", "url"), [
    ("http://192.0.2.1/", "http://192.0.2.1/"),
    ("tftp://[2001:db8::1]", "tftp://[2001:db8::1]/"),
    ("", ""),  # relative to the script's own URL
])
def test_ipxe_script_fetches_kernel_and_initrd_from_the_base_url(base: str, url: str) -> None:
    lines = script_lines(dataroot.render_ipxe_script(base, APPEND))
    assert lines == [
        "echo pxelab: ipxe script running",
        f"kernel {url}vmlinuz initrd=initrd.img {APPEND}",
        f"initrd {url}initrd.img",
        "boot",
    ]


def test_ipxe_script_loader_writes_boot_ipxe(tmp_path: Path, payload: Payload) -> None:
    root = dataroot.populate(tmp_path / "root", BootLoader.IPXE_SCRIPT, payload, APPEND,
                             "http://192.0.2.1/")
    assert sorted(p.name for p in root.iterdir()) == ["boot.ipxe", "initrd.img", "vmlinuz"]
    assert "kernel http://192.0.2.1/vmlinuz " in (root / "boot.ipxe").read_text()


def test_ipxe_efi_loader_adds_snponly(tmp_path: Path, payload: Payload) -> None:
    root = dataroot.populate(tmp_path / "root", BootLoader.IPXE_EFI, payload, APPEND,
                             "http://192.0.2.1/")
    assert (root / "snponly.efi").read_bytes()[:2] == b"MZ"
    assert (root / "boot.ipxe").exists()


def test_syslinux_efi_loader(tmp_path: Path, payload: Payload) -> None:
    root = dataroot.populate(tmp_path / "root", BootLoader.SYSLINUX_EFI, payload, APPEND)
    assert (root / "syslinux.efi").exists() and (root / "ldlinux.e64").exists()
    config = (root / "pxelinux.cfg" / "default").read_text()
    assert "SAY pxelab: syslinux.efi config loaded" in config
    assert f"APPEND {APPEND} nokaslr" in config
    assert "KERNEL vmlinuz" in config and "INITRD initrd.img" in config


def test_every_loader_names_its_first_file() -> None:
    assert all(loader.nbp for loader in BootLoader)
    assert (BootLoader.SYSLINUX_EFI.nbp, BootLoader.IPXE_SCRIPT.nbp, BootLoader.IPXE_EFI.nbp) \
        == ("syslinux.efi", "boot.ipxe", "snponly.efi")


def test_script_scenarios_fetch_their_files_from_the_lab_server() -> None:
    v4, v6 = IPv4Address("192.0.2.1"), IPv6Address("2001:db8::1")
    assert SCENARIOS["legacy_http_ipv4"].files_base(v4, v6) == "http://192.0.2.1/"
    assert SCENARIOS["uefi_http_ipv4"].files_base(v4, v6) == "http://192.0.2.1/"


@pytest.mark.parametrize("loader", [BootLoader.PXELINUX, BootLoader.SYSLINUX_EFI])
def test_syslinux_configs_fetch_kernel_from_files_url(tmp_path: Path, payload: Payload,
                                                      loader: BootLoader) -> None:
    root = dataroot.populate(tmp_path / "root", loader, payload, APPEND,
                             "http://192.0.2.1/")
    config = (root / "pxelinux.cfg" / "default").read_text()
    assert "KERNEL http://192.0.2.1/vmlinuz" in config
    assert "INITRD http://192.0.2.1/initrd.img" in config


@pytest.mark.parametrize(("url", "device"), [
    ("", "/"),
    ("http://[2001:db8::1]/", "(http,2001:db8::1)/"),
    ("http://192.0.2.1/", "(http,192.0.2.1)/"),
    ("tftp://[2001:db8::1]/boot/", "(tftp,2001:db8::1)/boot/"),
])
def test_grub_device_from_files_url(url: str, device: str) -> None:
    assert dataroot.grub_device(url) == device


def test_grub_device_refuses_other_schemes() -> None:
    with pytest.raises(ConfigError, match="http:// or tftp://"):
        dataroot.grub_device("ftp://192.0.2.1/")
