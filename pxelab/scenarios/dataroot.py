"""Fill a lab's data root: the one directory TFTP and HTTP both serve.

Large files (kernel, initrd) are hard-linked from the payload cache when the
file systems allow it, so a lab costs no copy; symlinks are never used because
the servers refuse links that lead out of the root. The menus and scripts come
from the templates pxelab ships (``pxelab/data/templates/``, read as package data so
an installed wheel has them), filled in with :func:`menu_values`.

:func:`apply_file_faults` then breaks the filled root as a scenario's data-root
faults say (a file removed, replaced by another build's, or its signature taken
off), before any server starts.
"""

from __future__ import annotations

import logging
import os
import shutil
from collections.abc import Iterable, Mapping
from importlib.resources import files
from importlib.resources.abc import Traversable
from pathlib import Path
from urllib.parse import urlsplit

from pxelab.core import template
from pxelab.core.errors import ConfigError
from pxelab.core.events import EventLog
from pxelab.machine import nbp, pe
from pxelab.machine.fwsets import FirmwareSet, load_firmware_set
from pxelab.machine.payload import Payload
from pxelab.scenarios.cases import BootLoader
from pxelab.server.faults import Fault, RemoveFile, ReplaceFile, StripSignature

log = logging.getLogger(__name__)

KERNEL_NAME = "vmlinuz"
INITRD_NAME = "initrd.img"
# SYSLINUX's network boot programs and the core module each loads from beside itself.
BIOS_SYSLINUX = ("pxelinux.0", "ldlinux.c32")
EFI_SYSLINUX = ("syslinux.efi", "ldlinux.e64")
IPXE_SCRIPT_NAME = "boot.ipxe"
# What shim (built for Debian) fetches from beside itself: its DEFAULT_LOADER.
SHIM_SECOND_STAGE = "grubx64.efi"
# The templates pxelab renders into every data root, by their path under templates_dir().
PXELINUX_CONFIG = "pxelinux/default.cfg"
SYSLINUX_EFI_CONFIG = "syslinux-efi/default.cfg"
GRUB_CONFIG = "grub/grub.cfg"
IPXE_SCRIPT = "ipxe/boot.ipxe"
SHIPPED = (PXELINUX_CONFIG, SYSLINUX_EFI_CONFIG, GRUB_CONFIG, IPXE_SCRIPT)


def templates_dir() -> Traversable:
    """Where pxelab's own templates are: package data, in a source tree or a wheel."""
    return files("pxelab") / "data" / "templates"


def place(source: Path, target: Path) -> None:
    """Put ``source`` at ``target`` by hard link, or by copy across file systems."""
    target.parent.mkdir(parents=True, exist_ok=True)
    target.unlink(missing_ok=True)
    try:
        os.link(source, target)
    except OSError:
        shutil.copyfile(source, target)


def menu_values(files_base: str, append: str) -> dict[str, str]:
    """What pxelab's menus and scripts are filled with (docs/templates.md).

    ``kernel`` and ``initrd`` are where the boot loader fetches them: ``files_base``
    (a URL or GRUB device ending in "/", or empty: beside the NBP) and the file name.
    """
    return {"kernel": files_base + KERNEL_NAME, "initrd": files_base + INITRD_NAME,
            "initrd_name": INITRD_NAME, "append": append}


def render_template(name: str, values: Mapping[str, object]) -> str:
    """The shipped template ``name`` (one of :data:`SHIPPED`) filled in with ``values``."""
    resource = templates_dir()
    for part in name.split("/"):
        resource = resource / part
    try:
        text = resource.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"pxelab's template {name} is not in {templates_dir()}; the "
                          "installation is incomplete: reinstall pxelab") from None
    return template.render(text, values, source=f"pxelab/data/templates/{name}")


def populate(root: Path, loader: BootLoader, payload: Payload, append: str,
             files_base: str = "", *, fwset: FirmwareSet | None = None,
             cache_dir: Path | None = None) -> Path:
    """Write everything ``loader`` needs to boot ``payload`` into ``root``.

    ``files_base`` is the URL iPXE scripts fetch kernel and initrd from
    (see :func:`render_ipxe_script`); ``cache_dir`` is where images pxelab
    builds (the GRUB one) are cached (None: the payload cache's default).
    """
    fwset = fwset or load_firmware_set("host")
    root.mkdir(parents=True, exist_ok=True)
    place(payload.kernel, root / KERNEL_NAME)
    place(payload.initrd, root / INITRD_NAME)
    if loader is BootLoader.PXELINUX:
        # pxelinux.0 hands URLs to the iPXE ROM under it (PXENV_FILE_OPEN): kernel and
        # initrd come over iPXE's HTTP, not PXELINUX's lock-step TFTP (bench/README.md).
        _populate_syslinux(root, fwset.syslinux_files(BIOS_SYSLINUX), PXELINUX_CONFIG,
                           append, files_base)
    elif loader is BootLoader.SYSLINUX_EFI:
        # syslinux.efi reads the same pxelinux.cfg/ names as pxelinux.0, but prints to
        # the UEFI console, which OVMF itself mirrors to the serial port.
        _populate_syslinux(root, fwset.syslinux_files(EFI_SYSLINUX), SYSLINUX_EFI_CONFIG,
                           append, files_base)
    elif loader is BootLoader.IPXE_SCRIPT:
        _write_ipxe_script(root, files_base, append)
    elif loader is BootLoader.IPXE_EFI:
        place(fwset.locate("snponly.efi"), root / loader.nbp)
        _write_ipxe_script(root, files_base, append)
    elif loader is BootLoader.GRUB:
        _populate_grub(root, append, fwset, cache_dir, files_base)
    elif loader is BootLoader.SHIM_GRUB:
        _populate_shim_grub(root, append, fwset, files_base)
    log.info("data root %s ready for %s", root, loader)
    return root


def apply_file_faults(root: Path, faults: Iterable[Fault], events: EventLog | None = None) -> None:
    """Carry out the data-root faults among ``faults`` on the filled ``root``.

    Each is a ``fault.injected`` event (on ``events``), as the servers' faults are;
    faults of other kinds are the servers' and are left alone.
    """
    for fault in faults:
        if not isinstance(fault, RemoveFile | ReplaceFile | StripSignature):
            continue
        _carry_out(fault, root)
        log.info("data root %s: %s", root, fault.describe())
        if events is not None:
            events.emit("fault", "injected", request=f"data root {fault.path}",
                        file=fault.path, reason=fault.describe(),
                        details={"fault": type(fault).__name__})


def _carry_out(fault: RemoveFile | ReplaceFile | StripSignature, root: Path) -> None:
    target = root / fault.path
    if isinstance(fault, ReplaceFile):
        if not fault.source.is_file():
            raise ConfigError(f"fault {fault.describe()!r}: {fault.source} is not a "
                              "file; fetch it first (see the fault's regression entry)")
        # A copy, not a link: the source may sit in a cache another lab links from.
        target.unlink(missing_ok=True)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(fault.source, target)
        return
    if not target.is_file():
        raise ConfigError(f"fault {fault.describe()!r}: there is no {fault.path} in the "
                          f"data root {root}")
    if isinstance(fault, RemoveFile):
        target.unlink()
        return
    try:
        unsigned = pe.strip_signature(target.read_bytes())
    except ConfigError as error:
        raise ConfigError(f"fault {fault.describe()!r}: {target}: {error}") from None
    target.unlink()  # a hard link into the payload cache must keep its bytes
    target.write_bytes(unsigned)


def _populate_syslinux(root: Path, files: dict[str, Path], config_name: str, append: str,
                       files_base: str = "") -> None:
    """The NBP, its ldlinux module and the template ``config_name`` as pxelinux.cfg/default.

    ``files_base`` (a URL ending in "/", or empty: TFTP beside the NBP) goes in front
    of the kernel and initrd names.
    """
    for name, path in files.items():
        place(path, root / name)
    config = render_template(config_name, menu_values(files_base, append))
    (root / "pxelinux.cfg").mkdir(exist_ok=True)
    (root / "pxelinux.cfg" / "default").write_text(config)


def _populate_grub(root: Path, append: str, fwset: FirmwareSet, cache_dir: Path | None,
                   files_base: str = "") -> None:
    """pxelab's GRUB network image and grub.cfg where its $prefix points (grub/).

    Kernel and initrd come from ``files_base`` (a URL such as ``http://[2001:db8::1]/``,
    as a GRUB device ``(http,2001:db8::1)``), or with an empty one from GRUB's $root:
    the server and protocol that sent the image.
    """
    place(nbp.build_grub_image(fwset=fwset, cache_dir=cache_dir).path, root / nbp.GRUB_IMAGE_NAME)
    _write_grub_config(root, append, files_base)


def _populate_shim_grub(root: Path, append: str, fwset: FirmwareSet, files_base: str) -> None:
    """shim, Debian's signed GRUB network image beside it, and grub/grub.cfg.

    shim fetches its second stage by the name it was built with (grubx64.efi) from its
    own directory; the signed image's built-in prefix is /grub, as pxelab's own.
    """
    place(fwset.locate("shimx64.efi"), root / BootLoader.SHIM_GRUB.nbp)
    place(fwset.locate("grubnetx64.efi"), root / SHIM_SECOND_STAGE)
    _write_grub_config(root, append, files_base)


def _write_grub_config(root: Path, append: str, files_base: str) -> None:
    config = render_template(GRUB_CONFIG, menu_values(grub_device(files_base), append))
    directory = root / nbp.GRUB_PREFIX.strip("/")
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "grub.cfg").write_text(config)


def grub_device(files_base: str) -> str:
    """GRUB's path prefix for the URL ``files_base``: "(http,2001:db8::1)/"; "" gives "/"."""
    if not files_base:
        return "/"
    url = urlsplit(files_base)
    if url.scheme not in ("http", "tftp") or not url.hostname:
        raise ConfigError(f"files URL {files_base!r} is not http:// or tftp:// with a host; "
                          "GRUB can fetch files only over those")
    return f"({url.scheme},{url.hostname}){url.path or '/'}"


def render_ipxe_script(files_base: str, append: str) -> str:
    """The iPXE script that fetches kernel and initrd from ``files_base`` and boots them.

    ``files_base`` is a URL prefix such as ``http://192.0.2.1/`` or
    ``tftp://[2001:db8::1]/``; empty means relative to the script's own URL.
    """
    if files_base and not files_base.endswith("/"):
        files_base += "/"
    return render_template(IPXE_SCRIPT, menu_values(files_base, append))


def _write_ipxe_script(root: Path, files_base: str, append: str) -> None:
    (root / IPXE_SCRIPT_NAME).write_text(render_ipxe_script(files_base, append))
