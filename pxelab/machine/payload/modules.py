"""Kernel module dependency resolution from ``modules.dep`` (pure) plus depmod and unpacking.

Debian kernel packages ship no ``modules.dep``; :func:`run_depmod` makes one for the
extracted tree. Each line of modules.dep is ``path: dep-path dep-path ...`` (see
modules.dep(5)); the right-hand side is the *complete* set of modules the left one
needs. We do not rely on depmod's ordering of that list: :func:`load_order` sorts
topologically itself, so dependencies always come before their users.
"""

from __future__ import annotations

import gzip
import logging
import lzma
import shutil
import subprocess
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

from pxelab.core.errors import HostCapabilityError, PayloadError

log = logging.getLogger(__name__)

MODULE_SUFFIXES = (".ko", ".ko.xz", ".ko.zst", ".ko.gz")

ModuleDeps = Mapping[str, Sequence[str]]


def module_name(path: str) -> str:
    """``kernel/drivers/net/virtio_net.ko.xz`` -> ``virtio_net`` (dashes read as underscores).

    A bare name works too: ``virtio-net`` -> ``virtio_net``.
    """
    base = path.strip().rsplit("/", 1)[-1]
    for suffix in MODULE_SUFFIXES:
        if base.endswith(suffix):
            base = base[: -len(suffix)]
            break
    return normalize(base)


def normalize(name: str) -> str:
    """The kernel treats ``-`` and ``_`` in module names as the same character."""
    return name.replace("-", "_")


def parse_modules_dep(text: str) -> dict[str, tuple[str, ...]]:
    """Parse modules.dep text into ``{module path: (dependency paths...)}``."""
    deps: dict[str, tuple[str, ...]] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip() or line.startswith("#"):
            continue
        path, sep, rest = line.partition(":")
        if not sep:
            raise ValueError(f"modules.dep line {number} has no ':': {line!r}")
        deps[path.strip()] = tuple(rest.split())
    return deps


def parse_builtin(text: str) -> frozenset[str]:
    """Names of the modules listed in modules.builtin (compiled into the kernel)."""
    return frozenset(module_name(line.strip()) for line in text.splitlines() if line.strip())


def load_order(
    deps: ModuleDeps, wanted: Iterable[str], builtin: Iterable[str] = ()
) -> list[str]:
    """Module paths to insmod, dependencies first, for the module *names* in ``wanted``.

    Names that are built into the kernel need nothing and are skipped; an unknown
    name raises ``LookupError`` naming it, a dependency cycle ``ValueError``.
    """
    by_name = {module_name(path): path for path in deps}
    builtins = {normalize(name) for name in builtin}
    order: list[str] = []
    state: dict[str, str] = {}  # path -> "visiting" | "done"

    def visit(path: str, chain: tuple[str, ...]) -> None:
        if state.get(path) == "done":
            return
        if state.get(path) == "visiting":
            raise ValueError("module dependency cycle: " + " -> ".join((*chain, path)))
        state[path] = "visiting"
        for dep in deps.get(path, ()):
            if dep not in deps:
                raise LookupError(f"{path} depends on {dep}, which modules.dep does not list")
            visit(dep, (*chain, path))
        state[path] = "done"
        order.append(path)

    for name in wanted:
        key = normalize(name)
        if key in by_name:
            visit(by_name[key], ())
        elif key not in builtins:
            raise LookupError(f"kernel module {name!r} is neither in modules.dep nor built in")
    return order


def find_modules_dir(root: Path, kernel_version: str) -> Path:
    """``root/lib/modules/<version>``, or ``root/usr/lib/modules/<version>`` (usr-merged).

    Debian 13's kernel packages ship their modules under /usr/lib only.
    """
    for lib in (root / "lib", root / "usr" / "lib"):
        if (lib / "modules" / kernel_version).is_dir():
            return lib / "modules" / kernel_version
    raise PayloadError(f"neither lib/modules/{kernel_version} nor usr/lib/modules/"
                       f"{kernel_version} in the extracted kernel package ({root}); is "
                       "the kernel version the part of the image package name after "
                       "linux-image-?")


def merge_usr(root: Path) -> None:
    """Link ``root/lib`` to ``usr/lib`` if the tree has only the latter, as on a usr-merged host.

    ``depmod -b ROOT`` looks in ROOT plus its own module directory, /lib/modules
    or, where kmod was built for it, /usr/lib/modules; with the link both exist,
    and so does the /lib/modules path mkinitramfs's bind mount reads.
    """
    if not (root / "lib").exists() and (root / "usr" / "lib").is_dir():
        (root / "lib").symlink_to("usr/lib")


def run_depmod(root: Path, kernel_version: str) -> None:
    """Write modules.dep (and friends) for the modules of ``kernel_version`` in tree ``root``."""
    depmod = shutil.which("depmod") or "/usr/sbin/depmod"
    if not Path(depmod).exists():
        raise HostCapabilityError("depmod not found: install the Debian package 'kmod'")
    merge_usr(root)
    command = [depmod, "-b", str(root), kernel_version]
    log.info("running %s", " ".join(command))
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise PayloadError(f"{' '.join(command)} failed ({result.returncode}): {result.stderr}")


def read_module(path: Path) -> bytes:
    """The uncompressed module: busybox insmod cannot load compressed ones."""
    name = path.name
    if name.endswith(".ko"):
        return path.read_bytes()
    if name.endswith(".ko.xz"):
        return lzma.decompress(path.read_bytes())
    if name.endswith(".ko.gz"):
        return gzip.decompress(path.read_bytes())
    if name.endswith(".ko.zst"):
        zstd = shutil.which("zstd")
        if zstd is None:
            raise HostCapabilityError(f"{path} is zstd-compressed: install the package 'zstd'")
        result = subprocess.run([zstd, "-dc", str(path)], capture_output=True, check=False)
        if result.returncode != 0:
            raise PayloadError(f"zstd -dc {path} failed: {result.stderr.decode(errors='replace')}")
        return result.stdout
    raise PayloadError(f"{path} is not a kernel module ({', '.join(MODULE_SUFFIXES)})")


def uncompressed_name(path: str) -> str:
    """``kernel/drivers/net/virtio_net.ko.xz`` -> ``virtio_net.ko`` (its name in the initramfs)."""
    return path.rsplit("/", 1)[-1].split(".ko", 1)[0] + ".ko"
