"""Fill a lab's data root: the one directory TFTP and HTTP both serve.

Large files (kernel, initrd) are hard-linked from the payload cache when the
file systems allow it, so a lab costs no copy; symlinks are never used because
the servers refuse links that lead out of the root.
"""

from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path
from string import Template

from pxelab import firmware
from pxelab.errors import ConfigError
from pxelab.paths import fixtures_dir
from pxelab.payload import Payload
from pxelab.scenarios import BootLoader

log = logging.getLogger(__name__)

KERNEL_NAME = "vmlinuz"
INITRD_NAME = "initrd.img"


def place(source: Path, target: Path) -> None:
    """Put ``source`` at ``target`` by hard link, or by copy across file systems."""
    target.parent.mkdir(parents=True, exist_ok=True)
    target.unlink(missing_ok=True)
    try:
        os.link(source, target)
    except OSError:
        shutil.copyfile(source, target)


def render(template: str, **values: str) -> str:
    path = fixtures_dir() / template
    try:
        return Template(path.read_text()).substitute(values)
    except KeyError as missing:
        raise ConfigError(f"template {path} uses {missing} which pxelab does not provide") from None


def populate(root: Path, loader: BootLoader, payload: Payload, append: str) -> Path:
    """Write everything ``loader`` needs to boot ``payload`` into ``root``."""
    root.mkdir(parents=True, exist_ok=True)
    place(payload.kernel, root / KERNEL_NAME)
    place(payload.initrd, root / INITRD_NAME)
    if loader is BootLoader.PXELINUX:
        _populate_pxelinux(root, append)
    log.info("data root %s ready for %s", root, loader)
    return root


def _populate_pxelinux(root: Path, append: str) -> None:
    for name, path in firmware.syslinux_bios_files().items():
        place(path, root / name)
    config = render("pxelinux/default.cfg", kernel=KERNEL_NAME, initrd=INITRD_NAME,
                    append=append)
    (root / "pxelinux.cfg").mkdir(exist_ok=True)
    (root / "pxelinux.cfg" / "default").write_text(config)
