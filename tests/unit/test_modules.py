"""Kernel module dependency resolution from modules.dep text."""

from __future__ import annotations

import gzip
import lzma
import subprocess
from pathlib import Path

import pytest

from pxelab.machine.payload.modules import (
    load_order,
    module_name,
    parse_builtin,
    parse_modules_dep,
    read_module,
    uncompressed_name,
)

pytestmark = pytest.mark.unit

# Excerpt of depmod's output for Debian's 6.1.0 cloud-amd64 kernel.
MODULES_DEP = """\
kernel/fs/nfs/nfsv4.ko: kernel/net/dns_resolver/dns_resolver.ko kernel/fs/nfs/nfs.ko \
kernel/fs/lockd/lockd.ko kernel/fs/nfs_common/grace.ko kernel/net/sunrpc/sunrpc.ko \
kernel/fs/fscache/fscache.ko kernel/fs/netfs/netfs.ko
kernel/fs/nfs/nfs.ko: kernel/fs/lockd/lockd.ko kernel/fs/nfs_common/grace.ko \
kernel/net/sunrpc/sunrpc.ko kernel/fs/fscache/fscache.ko kernel/fs/netfs/netfs.ko
kernel/fs/lockd/lockd.ko: kernel/fs/nfs_common/grace.ko kernel/net/sunrpc/sunrpc.ko
kernel/fs/nfs_common/grace.ko:
kernel/net/sunrpc/sunrpc.ko:
kernel/fs/fscache/fscache.ko: kernel/fs/netfs/netfs.ko
kernel/fs/netfs/netfs.ko:
kernel/net/dns_resolver/dns_resolver.ko:
kernel/drivers/virtio/virtio_pci_modern_dev.ko:
kernel/drivers/virtio/virtio_pci_legacy_dev.ko:
kernel/drivers/virtio/virtio_pci.ko: kernel/drivers/virtio/virtio_pci_legacy_dev.ko \
kernel/drivers/virtio/virtio_pci_modern_dev.ko kernel/drivers/virtio/virtio.ko \
kernel/drivers/virtio/virtio_ring.ko
kernel/drivers/virtio/virtio.ko:
kernel/drivers/virtio/virtio_ring.ko:
kernel/drivers/net/virtio_net.ko: kernel/drivers/net/net_failover.ko kernel/net/core/failover.ko \
kernel/drivers/virtio/virtio.ko kernel/drivers/virtio/virtio_ring.ko
kernel/drivers/net/net_failover.ko: kernel/net/core/failover.ko
kernel/net/core/failover.ko:
kernel/drivers/net/ethernet/realtek/8139too.ko.xz: kernel/drivers/net/mii.ko.xz
kernel/drivers/net/mii.ko.xz:
""".replace("\\\n", "")

DEPS = parse_modules_dep(MODULES_DEP)


def names(paths: list[str]) -> list[str]:
    return [module_name(p) for p in paths]


def assert_dependencies_first(order: list[str]) -> None:
    for index, path in enumerate(order):
        for dep in DEPS[path]:
            assert order.index(dep) < index, f"{dep} must come before {path}"


def test_parse_reads_paths_and_full_dependency_lists() -> None:
    assert DEPS["kernel/fs/nfs_common/grace.ko"] == ()
    assert DEPS["kernel/drivers/net/net_failover.ko"] == ("kernel/net/core/failover.ko",)
    assert len(DEPS["kernel/fs/nfs/nfsv4.ko"]) == 7


def test_parse_rejects_a_line_without_colon() -> None:
    with pytest.raises(ValueError, match="line 2"):
        parse_modules_dep("a.ko:\nb.ko b.ko\n")


@pytest.mark.parametrize(("path", "name"), [
    ("kernel/drivers/net/virtio_net.ko", "virtio_net"),
    ("kernel/drivers/net/ethernet/realtek/8139too.ko.xz", "8139too"),
    ("kernel/x/snd-hda-intel.ko.zst", "snd_hda_intel"),
])
def test_module_name(path: str, name: str) -> None:
    assert module_name(path) == name


def test_uncompressed_name() -> None:
    assert uncompressed_name("kernel/drivers/net/mii.ko.xz") == "mii.ko"


def test_nfsv4_closure_is_complete_and_ordered() -> None:
    order = load_order(DEPS, ["nfsv4"])
    assert set(names(order)) == {"nfsv4", "nfs", "lockd", "grace", "sunrpc", "fscache",
                                 "netfs", "dns_resolver"}
    assert order[-1] == "kernel/fs/nfs/nfsv4.ko"
    assert_dependencies_first(order)


def test_virtio_net_with_its_bus_driver() -> None:
    order = load_order(DEPS, ["virtio_pci", "virtio_net", "nfsv4"])
    assert len(order) == len(set(order)) == 16
    assert_dependencies_first(order)


def test_dashes_and_underscores_are_one_name_and_duplicates_load_once() -> None:
    assert load_order(DEPS, ["net-failover", "net_failover"]) == [
        "kernel/net/core/failover.ko", "kernel/drivers/net/net_failover.ko"]


def test_compressed_modules_resolve() -> None:
    assert names(load_order(DEPS, ["8139too"])) == ["mii", "8139too"]


def test_builtin_modules_are_skipped() -> None:
    builtin = parse_builtin("kernel/drivers/net/e1000/e1000.ko\nkernel/net/packet/af_packet.ko\n")
    assert load_order(DEPS, ["e1000", "af-packet"], builtin) == []


def test_unknown_module_is_named() -> None:
    with pytest.raises(LookupError, match="'e1000e'"):
        load_order(DEPS, ["e1000e"])


def test_cycle_is_reported() -> None:
    deps = parse_modules_dep("a.ko: b.ko\nb.ko: a.ko\n")
    with pytest.raises(ValueError, match="cycle"):
        load_order(deps, ["a"])


def test_dependency_missing_from_modules_dep_is_reported() -> None:
    with pytest.raises(LookupError, match=r"c\.ko"):
        load_order(parse_modules_dep("a.ko: c.ko\n"), ["a"])


@pytest.mark.parametrize("suffix", [".ko", ".ko.xz", ".ko.gz"])
def test_read_module_decompresses(tmp_path: Path, suffix: str) -> None:
    data = b"\x7fELF module" * 100
    packed = {".ko": data, ".ko.xz": lzma.compress(data), ".ko.gz": gzip.compress(data)}[suffix]
    path = tmp_path / f"virtio_net{suffix}"
    path.write_bytes(packed)
    assert read_module(path) == data


@pytest.mark.pxelab_requires(tools=["zstd"])
def test_read_module_decompresses_zstd(tmp_path: Path) -> None:
    data = b"\x7fELF module" * 100
    (tmp_path / "m.ko").write_bytes(data)
    subprocess.run(["zstd", "-q", str(tmp_path / "m.ko"), "-o", str(tmp_path / "m.ko.zst")],
                   check=True)
    assert read_module(tmp_path / "m.ko.zst") == data
