"""Network boot programs pxelab builds itself: a GRUB EFI network boot image.

``grub-mkimage`` (Debian grub-common) packs the x86_64-efi modules of Debian's
grub-efi-amd64-bin and a small embedded early config into one EFI program,
``grubx64.efi``, that OVMF fetches over TFTP (PXE) or HTTP and starts:

    image = build_grub_image()          # cached by its inputs, like the payload
    dataroot.place(image.path, root / GRUB_IMAGE_NAME)

How the image finds its boot server: GRUB's efinet driver reads the firmware's
network boot answer (the PXE base code's cached DHCPv4/DHCPv6 reply; for HTTP
boot, a reply GRUB makes up from the boot device path's URI) and sets
``$prefix`` to ``(tftp,<server>)/grub`` or ``(http,<server>)/grub`` — the
server that sent the image, over the same protocol and IP version. GRUB then
runs the embedded early config and, in normal mode, ``$prefix/grub.cfg`` (the
data root's ``grub/grub.cfg``, rendered from pxelab's template of that name). The
early config runs in GRUB's rescue parser (kern/main.c grub_load_config):
plain commands only, ``if`` is "Unknown command". ``net_bootp6`` is no
fallback: GRUB's own Solicit asks no option 59, so it learns no boot server.

Where GRUB prints: to the EFI console (ConOut). OVMF here has no video device
and its console is the serial port, so GRUB's lines reach ttyS0 through OVMF's
terminal (with its ANSI colour codes). A ``terminal_output serial`` would
write to the UART directly as well and print every line twice.
"""

from __future__ import annotations

import hashlib
import json
import logging
import subprocess
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from pxelab.core.errors import ConfigError, PayloadError
from pxelab.machine.fwsets import FirmwareSet, load_firmware_set
from pxelab.machine.payload.cache import build_once, default_cache_dir

log = logging.getLogger(__name__)

# Bump when the image changes for the same inputs (part of the cache key).
BUILDER_VERSION = 1
MANIFEST = "grub-image.json"
GRUB_IMAGE_NAME = "grubx64.efi"
# Data root directory of grub.cfg: $prefix is (<proto>,<server>)GRUB_PREFIX.
GRUB_PREFIX = "/grub"
GRUB_FORMAT = "x86_64-efi"
# Catalog entries of the inputs; their package versions go into the cache key.
GRUB_PARTS = ("grub-x86_64-efi", "grub-mkimage")

# efinet + net: the NIC through the firmware's SNP, and the firmware's boot answer;
# tftp/http: the two ways to the boot server; normal: the script language and
# grub.cfg; linux: linux/initrd (EFI handover protocol); echo: pxelab's console lines.
GRUB_MODULES = ("efinet", "net", "tftp", "http", "normal", "configfile", "echo", "linux",
                "test", "true")

# The early config runs in GRUB's rescue parser: plain commands, no comments, no
# if. efinet has set $prefix from the firmware's network boot answer; normal mode
# reads $prefix/grub.cfg right after. gfxpayload=text: the guests have no display,
# and without it `boot` prints "error: no suitable video mode found." Keep echo
# lines under 80 columns: GRUB wraps them at the EFI console's width.
EARLY_CONFIG = """\
set gfxpayload=text
echo "pxelab-grub: image started, prefix $prefix"
"""


@dataclass(frozen=True)
class GrubImageSpec:
    """What goes into the image. Every field is part of the cache key."""

    modules: tuple[str, ...] = GRUB_MODULES
    prefix: str = GRUB_PREFIX
    early_config: str = EARLY_CONFIG
    format: str = GRUB_FORMAT

    def __post_init__(self) -> None:
        if isinstance(self.modules, str) or not all(
                isinstance(m, str) and m and m.isidentifier() for m in self.modules):
            raise ConfigError(f"GrubImageSpec.modules={self.modules!r} must be a tuple of "
                              "GRUB module names like 'efinet'")
        if not self.prefix.startswith("/") or any(c.isspace() for c in self.prefix):
            raise ConfigError(f"GrubImageSpec.prefix={self.prefix!r} must be an absolute "
                              "path without spaces, e.g. /grub")


@dataclass(frozen=True)
class GrubImage:
    """A built image and what it was built from."""

    path: Path
    key: str
    packages: dict[str, str]


def grub_mkimage_command(spec: GrubImageSpec, module_dir: Path, config: Path, output: Path,
                         tool: Sequence[str] = ("grub-mkimage",)) -> list[str]:
    """The grub-mkimage argument list that builds ``spec`` into ``output`` (pure).

    ``tool`` is how to run grub-mkimage (a firmware set's runs under its own loader).
    """
    return [*tool, "--format", spec.format, "--directory", str(module_dir),
            "--prefix", spec.prefix, "--config", str(config), "--output", str(output),
            *spec.modules]


def cache_key(spec: GrubImageSpec, packages: dict[str, str]) -> str:
    """Hex digest of everything the image's bytes depend on."""
    inputs = {"builder": BUILDER_VERSION, "spec": asdict(spec),
              "packages": dict(sorted(packages.items()))}
    return hashlib.sha256(json.dumps(inputs, sort_keys=True).encode()).hexdigest()


def build_grub_image(spec: GrubImageSpec = GrubImageSpec(), *,
                     fwset: FirmwareSet | None = None,
                     cache_dir: Path | None = None) -> GrubImage:
    """Build (or find in the cache) the GRUB network image for ``spec``.

    Cached under ``<cache>/nbp/grubx64-<key>/`` and built once even by parallel
    processes (see :func:`pxelab.machine.payload.cache.build_once`).
    """
    cache = cache_dir if cache_dir is not None else default_cache_dir()
    fwset = fwset or load_firmware_set("host")
    module_dir = fwset.locate("grub-x86_64-efi")
    packages = fwset.versions(GRUB_PARTS)
    key = cache_key(spec, packages)
    final = cache / "nbp" / f"grubx64-{key[:16]}"

    def build(tmp: Path) -> None:
        config = tmp / "early.cfg"
        config.write_text(spec.early_config, encoding="utf-8")
        command = grub_mkimage_command(spec, module_dir, config, tmp / GRUB_IMAGE_NAME,
                                       fwset.tool_command("grub-mkimage"))
        log.info("building the GRUB image: %s", " ".join(command))
        result = subprocess.run(command, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            raise PayloadError(f"{' '.join(command)} failed ({result.returncode}): "
                               f"{result.stderr.strip()}; check the module names against "
                               f"{module_dir}")
        manifest = {"key": key, "packages": packages, "spec": asdict(spec),
                    "command": command}
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")

    if build_once(final, MANIFEST, build):
        log.info("built GRUB image %s", final / GRUB_IMAGE_NAME)
    return GrubImage(final / GRUB_IMAGE_NAME, key, packages)
