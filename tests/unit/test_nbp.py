"""The GRUB network image builder: command line, cache key, spec checks, and one real build."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from pxelab.core.errors import ConfigError
from pxelab.machine.nbp import (
    EARLY_CONFIG,
    GRUB_IMAGE_NAME,
    GrubImageSpec,
    build_grub_image,
    cache_key,
    grub_mkimage_command,
)
from pxelab.machine.payload import Payload
from pxelab.scenarios import dataroot
from pxelab.scenarios.cases import BootLoader

pytestmark = pytest.mark.unit

PACKAGES = {"grub-common": "2.06-13+deb12u2", "grub-efi-amd64-bin": "2.06-13+deb12u2"}


def test_grub_mkimage_command() -> None:
    spec = GrubImageSpec(modules=("efinet", "tftp"))
    command = grub_mkimage_command(spec, Path("/mods"), Path("/w/early.cfg"), Path("/w/g.efi"),
                                   ("/usr/bin/grub-mkimage",))
    assert command == ["/usr/bin/grub-mkimage", "--format", "x86_64-efi", "--directory", "/mods",
                       "--prefix", "/grub", "--config", "/w/early.cfg", "--output", "/w/g.efi",
                       "efinet", "tftp"]


def test_default_image_has_what_network_boot_needs() -> None:
    modules = set(GrubImageSpec().modules)
    assert {"efinet", "net", "tftp", "http", "normal", "linux", "echo"} <= modules
    # The rescue parser runs the early config: no comments, no if, short echo lines.
    for line in EARLY_CONFIG.splitlines():
        assert not line.startswith("#") and not line.startswith("if ")
        assert len(line) < 80


def test_cache_key_follows_every_input() -> None:
    spec = GrubImageSpec()
    key = cache_key(spec, PACKAGES)
    assert key == cache_key(GrubImageSpec(), dict(reversed(PACKAGES.items())))
    assert key != cache_key(replace(spec, early_config=EARLY_CONFIG + "echo x\n"), PACKAGES)
    assert key != cache_key(replace(spec, modules=(*spec.modules, "sleep")), PACKAGES)
    assert key != cache_key(replace(spec, prefix="/boot/grub"), PACKAGES)
    assert key != cache_key(spec, PACKAGES | {"grub-common": "2.12-1"})


@pytest.mark.parametrize("field, value", [("modules", "efinet"), ("modules", ("efi net",)),
                                          ("modules", ("",)), ("prefix", "grub"),
                                          ("prefix", "/my grub")])
def test_spec_refuses_what_grub_mkimage_would_misread(field: str, value: object) -> None:
    with pytest.raises(ConfigError, match=field):
        GrubImageSpec(**{field: value})  # type: ignore[arg-type]


def test_build_once_into_the_cache(tmp_path: Path) -> None:
    image = build_grub_image(cache_dir=tmp_path)
    assert image.path.name == GRUB_IMAGE_NAME and image.path.parent.parent == tmp_path / "nbp"
    data = image.path.read_bytes()
    assert data[:2] == b"MZ", "an EFI (PE/COFF) program"
    assert b"pxelab-grub: image started" in data, "the early config is embedded"
    assert set(image.packages) == set(PACKAGES)
    built_at = image.path.stat().st_mtime_ns
    assert build_grub_image(cache_dir=tmp_path) == image
    assert image.path.stat().st_mtime_ns == built_at, "the second call found it cached"
    other = build_grub_image(GrubImageSpec(early_config="echo other\n"), cache_dir=tmp_path)
    assert other.path != image.path and other.key != image.key


def test_data_root_for_grub(tmp_path: Path) -> None:
    kernel, initrd = tmp_path / "k", tmp_path / "i"
    kernel.write_bytes(b"kernel")
    initrd.write_bytes(b"initrd")
    payload = Payload(kernel=kernel, initrd=initrd, rootfs=tmp_path, kernel_version="6.1",
                      packages={})
    append = "console=ttyS0 panic=-1 pxelab.nfsroot=[2001:db8::1]:/pxelab"
    root = dataroot.populate(tmp_path / "data", BootLoader.GRUB, payload, append,
                             cache_dir=tmp_path / "cache")
    assert (root / GRUB_IMAGE_NAME).read_bytes()[:2] == b"MZ"
    config = (root / "grub" / "grub.cfg").read_text()
    assert f"linux /vmlinuz {append}\n" in config and "initrd /initrd.img\n" in config
    assert 'echo "pxelab: grub config loaded from $prefix"' in config  # GRUB's, not ours
    assert config.rstrip().endswith("boot")
