"""build_payload: Debian kernel + busybox -> kernel, initramfs and NFS root, cached by inputs."""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import shutil
import time
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

from pxelab.core.errors import ConfigError, PayloadError
from pxelab.machine.payload import debs, initramfs_tools, scripts
from pxelab.machine.payload.archive import DEFAULT_SUITE, AptRoot, known_suite
from pxelab.machine.payload.cache import build_once, default_cache_dir
from pxelab.machine.payload.contract import initramfs_tools_cmdline, kernel_cmdline
from pxelab.machine.payload.initramfs import write_initramfs
from pxelab.machine.payload.modules import (
    find_modules_dir,
    load_order,
    module_name,
    normalize,
    parse_builtin,
    parse_modules_dep,
    run_depmod,
)
from pxelab.machine.payload.rootfs import build_rootfs

log = logging.getLogger(__name__)

# Bump when the builder's output changes for the same inputs (part of the cache key).
BUILDER_VERSION = 1
MANIFEST = "payload.json"
BUSYBOX_PACKAGE = "busybox-static"

# Modules a NIC driver needs but that modules.dep does not name (the bus driver).
COMPANION_MODULES: dict[str, tuple[str, ...]] = {
    "virtio_net": ("virtio_pci",),
}


class Initramfs(StrEnum):
    """Which initramfs the payload boots, and so how the guest is told where its root is."""

    # pxelab's busybox /init (pxelab.machine.payload.scripts): pxelab.nfsroot=, NFSv4 root.
    PXELAB = "pxelab"
    # Debian's, built by mkinitramfs (pxelab.machine.payload.initramfs_tools): boot=nfs
    # nfsroot=, klibc ipconfig + nfsmount, which speaks NFSv3 only.
    INITRAMFS_TOOLS = "initramfs-tools"


# initramfs-tools' MODULES= settings (initramfs.conf(5)).
MKINITRAMFS_MODULES = ("most", "netboot", "dep", "list")


@dataclass(frozen=True)
class PayloadSpec:
    """What to build. Every field is part of the cache key."""

    # Debian linux-image-<ver>-<flavour>; "amd64" also has e1000, e1000e, 8139too, 8139cp.
    kernel_flavour: str = "cloud-amd64"
    nic_modules: tuple[str, ...] = ("virtio_net",)
    nfs_modules: tuple[str, ...] = ("nfsv4",)
    extra_modules: tuple[str, ...] = ()
    # Modules pxelab's initramfs leaves out although the fields above name them (with
    # their companions): an initrd built without the NIC's driver (regression
    # initrd-no-nic-driver).
    omit_modules: tuple[str, ...] = ()
    initramfs: Initramfs = Initramfs.PXELAB
    # MODULES= for Initramfs.INITRAMFS_TOOLS (extra_modules go to its modules file).
    mkinitramfs_modules: str = "netboot"
    # The Debian release the kernel and busybox come from (pxelab.machine.payload.archive),
    # whatever release the host runs.
    suite: str = DEFAULT_SUITE

    def __post_init__(self) -> None:
        known_suite(self.suite)  # a ConfigError names the known suites
        if not self.kernel_flavour or any(c.isspace() for c in self.kernel_flavour):
            raise ConfigError(f"kernel_flavour {self.kernel_flavour!r}: use e.g. 'cloud-amd64'")
        for name in ("nic_modules", "nfs_modules", "extra_modules", "omit_modules"):
            value = getattr(self, name)
            if isinstance(value, str) or not all(isinstance(m, str) and m for m in value):
                raise ConfigError(f"{name}={value!r} must be a tuple of module names")
        try:  # a plain string ("initramfs-tools", from a config file) becomes the enum
            object.__setattr__(self, "initramfs", Initramfs(self.initramfs))
        except ValueError:
            raise ConfigError(f"initramfs={self.initramfs!r}: choose one of "
                              f"{', '.join(Initramfs)}") from None
        if self.mkinitramfs_modules not in MKINITRAMFS_MODULES:
            raise ConfigError(f"mkinitramfs_modules={self.mkinitramfs_modules!r}: choose one "
                              f"of {', '.join(MKINITRAMFS_MODULES)} (initramfs.conf(5))")

    def wanted_modules(self) -> tuple[str, ...]:
        """Module names to load, before dependency resolution (companions added).

        A name in ``omit_modules`` is left out, and so are the companions of an
        omitted module.
        """
        omitted = {normalize(name) for name in self.omit_modules}
        wanted: list[str] = []
        for module in (*self.nic_modules, *self.nfs_modules, *self.extra_modules):
            if normalize(module) in omitted:
                continue
            for name in (*COMPANION_MODULES.get(normalize(module), ()), module):
                if name not in wanted and normalize(name) not in omitted:
                    wanted.append(name)
        return tuple(wanted)


@dataclass(frozen=True)
class Payload:
    """A built payload; ``rootfs`` is the directory to export over NFS."""

    kernel: Path
    initrd: Path
    rootfs: Path
    kernel_version: str
    packages: dict[str, str]
    # Module paths under lib/modules/<version>/ packed in the initramfs (pxelab's:
    # in the order /init loads them).
    modules: tuple[str, ...] = field(default=())
    key: str = ""
    initramfs: Initramfs = Initramfs.PXELAB
    suite: str = DEFAULT_SUITE  # the Debian release its packages came from

    @property
    def module_names(self) -> tuple[str, ...]:
        """The names of the packed modules ("virtio_net"), for BootFacts.initrd_modules."""
        return tuple(module_name(path) for path in self.modules)

    @property
    def nfs_version(self) -> int:
        """The NFS version the initramfs mounts its root with (klibc nfsmount: 3 at most)."""
        return 3 if self.initramfs is Initramfs.INITRAMFS_TOOLS else 4

    def kernel_cmdline(self, nfsroot: str) -> str:
        """The kernel command line that makes this payload's initramfs mount ``nfsroot``."""
        if self.initramfs is Initramfs.INITRAMFS_TOOLS:
            return initramfs_tools_cmdline(nfsroot)
        return kernel_cmdline(nfsroot)


def scripts_digest() -> str:
    text = "\0".join((scripts.INIT, scripts.UDHCPC, scripts.ROOTFS_INIT))
    return hashlib.sha256(text.encode()).hexdigest()


def cache_key(spec: PayloadSpec, packages: dict[str, str]) -> str:
    """Hex digest of everything the payload's bytes depend on."""
    inputs: dict[str, Any] = {
        "builder": BUILDER_VERSION,
        "spec": asdict(spec),
        "wanted": spec.wanted_modules(),
        "packages": dict(sorted(packages.items())),
        "scripts": scripts_digest(),
    }
    if spec.initramfs is Initramfs.INITRAMFS_TOOLS:
        inputs["initramfs_tools"] = {"netdev_wait": initramfs_tools.NETDEV_WAIT,
                                     "hook": initramfs_tools.netdev_wait_hook()}
    return hashlib.sha256(json.dumps(inputs, sort_keys=True).encode()).hexdigest()


@functools.lru_cache(maxsize=8)
def resolve_packages(apt: AptRoot, kernel_flavour: str) -> tuple[debs.DebPackage, ...]:
    """The suite's kernel image, the packages its files are split into, then busybox-static:
    the candidates, resolved once a process."""
    kernel, parts, (busybox,) = debs.resolve(apt, kernel_flavour, BUSYBOX_PACKAGE)
    return kernel, *parts, busybox


def _kernel_version(package: debs.DebPackage) -> str:
    return package.name.removeprefix("linux-image-")


def build_payload(spec: PayloadSpec = PayloadSpec(), cache_dir: Path | None = None) -> Payload:
    """Build (or find in the cache) the payload for ``spec``."""
    cache = cache_dir if cache_dir is not None else default_cache_dir()
    apt = AptRoot.in_cache(cache, spec.suite)
    kernel_pkg, *kernel_parts, busybox_pkg = resolve_packages(apt, spec.kernel_flavour)
    packages = {p.name: p.version for p in (kernel_pkg, *kernel_parts, busybox_pkg)}
    if spec.initramfs is Initramfs.INITRAMFS_TOOLS:  # the host's tools make that image
        packages |= initramfs_tools.host_versions()
    key = cache_key(spec, packages)
    final = cache / "payloads" / f"{_kernel_version(kernel_pkg)}-{key[:16]}"

    def build(tmp: Path) -> None:
        _build(tmp, spec=spec, apt=apt, kernel_pkg=kernel_pkg, kernel_parts=kernel_parts,
               busybox_pkg=busybox_pkg, debs_dir=cache / "debs", key=key, packages=packages)

    started = time.monotonic()
    if build_once(final, MANIFEST, build):
        log.info("built payload %s in %.1f s", final, time.monotonic() - started)
    return load_payload(final)


def load_payload(directory: Path) -> Payload:
    """The Payload described by ``directory/payload.json``."""
    try:
        manifest: dict[str, Any] = json.loads((directory / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise PayloadError(f"cannot read {directory / MANIFEST}: {error}; delete {directory}"
                           " to rebuild it") from error
    return Payload(
        kernel=directory / "vmlinuz",
        initrd=directory / "initrd.img",
        rootfs=directory / "rootfs",
        kernel_version=manifest["kernel_version"],
        packages=dict(manifest["packages"]),
        modules=tuple(manifest["modules"]),
        key=manifest["key"],
        initramfs=Initramfs(manifest.get("initramfs", Initramfs.PXELAB)),
        # "": built before pxelab had its own sources, from whatever the host's apt chose.
        suite=manifest.get("suite", ""),
    )


def _build(tmp: Path, *, spec: PayloadSpec, apt: AptRoot, kernel_pkg: debs.DebPackage,
           kernel_parts: list[debs.DebPackage], busybox_pkg: debs.DebPackage,
           debs_dir: Path, key: str, packages: dict[str, str]) -> None:
    version = _kernel_version(kernel_pkg)
    tree = tmp / "extract"
    for package in (kernel_pkg, *kernel_parts):
        debs.extract(debs.download(apt, package, debs_dir), tree / "kernel")
    debs.extract(debs.download(apt, busybox_pkg, debs_dir), tree / "busybox")
    modules_dir = find_modules_dir(tree / "kernel", version)
    vmlinuz = find_vmlinuz(tree / "kernel", version, modules_dir)
    busybox = find_busybox(tree / "busybox")
    run_depmod(tree / "kernel", version)
    if spec.initramfs is Initramfs.INITRAMFS_TOOLS:
        modules = list(initramfs_tools.build(
            tmp / "initrd.img", tree / "kernel", version, modules=spec.mkinitramfs_modules,
            extra_modules=spec.extra_modules, workdir=tmp / "mkinitramfs"))
        shutil.rmtree(tmp / "mkinitramfs")
        size = (tmp / "initrd.img").stat().st_size
    else:
        modules = _pxelab_modules(spec, kernel_pkg, modules_dir)
        size = write_initramfs(tmp / "initrd.img", busybox, modules_dir, modules)
    shutil.copyfile(vmlinuz, tmp / "vmlinuz")
    build_rootfs(tmp / "rootfs", busybox)
    shutil.rmtree(tree)
    log.info("payload %s: %d modules, initramfs %d bytes", tmp, len(modules), size)
    manifest = {
        "key": key,
        "kernel_version": version,
        "packages": packages,
        "modules": modules,
        "spec": asdict(spec),
        "initrd_size": size,
        "initramfs": str(spec.initramfs),
        "suite": spec.suite,
    }
    (tmp / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")


def find_vmlinuz(root: Path, version: str, modules_dir: Path) -> Path:
    """boot/vmlinuz-<version>, or vmlinuz in the modules directory (Debian 14's packages)."""
    for path in (root / "boot" / f"vmlinuz-{version}", modules_dir / "vmlinuz"):
        if path.is_file():
            return path
    raise PayloadError(f"neither boot/vmlinuz-{version} nor "
                       f"{modules_dir.relative_to(root)}/vmlinuz in the extracted kernel "
                       f"packages ({root})")


def find_busybox(root: Path) -> Path:
    """bin/busybox of the extracted busybox-static, or usr/bin/busybox (usr-merged, Debian 13)."""
    for path in (root / "bin" / "busybox", root / "usr" / "bin" / "busybox"):
        if path.is_file():
            return path
    raise PayloadError(f"neither bin/busybox nor usr/bin/busybox in {BUSYBOX_PACKAGE} "
                       f"(extracted to {root}); has the package moved it?")


def _pxelab_modules(spec: PayloadSpec, kernel_pkg: debs.DebPackage,
                    modules_dir: Path) -> list[str]:
    """Module paths for pxelab's initramfs, dependencies first."""
    deps = parse_modules_dep((modules_dir / "modules.dep").read_text(encoding="utf-8"))
    builtin_file = modules_dir / "modules.builtin"
    builtin = parse_builtin(builtin_file.read_text(encoding="utf-8")) if builtin_file.exists() \
        else frozenset()
    try:
        return load_order(deps, spec.wanted_modules(), builtin)
    except (LookupError, ValueError) as error:
        raise PayloadError(f"{kernel_pkg.name}: {error}; pick another kernel_flavour "
                           "(the 'amd64' kernel has more NIC drivers)") from error
