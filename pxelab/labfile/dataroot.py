"""A lab's data root from the user's files, and the values their templates take.

The user's directory is copied file by file (hard links where the file systems
allow, as pxelab's own data root is): a UTF-8 text file with ``{{ name }}``
placeholders is written filled in, every other file as it is. Links are
followed, so the copy holds only regular files inside the root the servers serve.
"""

from __future__ import annotations

import logging
import os
from fnmatch import fnmatch
from ipaddress import IPv4Interface, IPv6Interface
from pathlib import Path

from pxelab.core.errors import ConfigError
from pxelab.core.template import is_template, render
from pxelab.machine.fwsets import FirmwareSet
from pxelab.machine.netboot import netboot_tree
from pxelab.machine.payload import Payload
from pxelab.scenarios.cases import IpVersion
from pxelab.scenarios.dataroot import INITRD_NAME, KERNEL_NAME, place
from pxelab.scenarios.system import SystemUnderTest
from pxelab.server.match import url_host

log = logging.getLogger(__name__)

# Larger files are never templates (kernels, initrds, ISO images); reading them as
# text would only cost time.
TEMPLATE_LIMIT = 1 << 20


# The names lab_values gives, checked when a lab file is read.
VALUE_NAMES = frozenset({
    "interface", "server_ipv4", "server_ipv6", "server", "subnet4", "netmask4", "prefix4",
    "subnet6", "prefix6", "pool4_first", "pool4_last", "pool6_first", "pool6_last",
    "data_root", "nfs_server", "nfs_export", "nfs_root", "mac", "mac_hyphen", "append"})


def check_templates(source: Path, verbatim: tuple[str, ...]) -> None:
    """Fail on the first ``{{ name }}`` in ``source``'s files that no lab provides."""
    values = dict.fromkeys(VALUE_NAMES, "")
    for path, relative in _files(source):
        if not any(fnmatch(str(relative), g) for g in verbatim):
            text = _text(path.resolve())
            if text is not None:
                render(text, values, source=str(path))


def _files(source: Path) -> list[tuple[Path, Path]]:
    """Every file under ``source``, through linked directories too (Debian's netboot
    tree links pxelinux.cfg/ into place), each directory once."""
    found, seen = [], set()
    for top, dirs, names in os.walk(source, followlinks=True):
        real = os.path.realpath(top)
        if real in seen:  # a link back up the tree
            dirs.clear()
            continue
        seen.add(real)
        found += [Path(top, name) for name in names]
    return sorted((path, path.relative_to(source)) for path in found)


def lab_values(ipv4: IPv4Interface, ipv6: IPv6Interface, ip: IpVersion, *, interface: str,
               data_root: Path, nfs_source: str, mac: str, append: str) -> dict[str, str]:
    """The names ``{{ name }}`` takes in the user's files and daemon configurations."""
    net4, net6 = ipv4.network, ipv6.network
    server = ipv6.ip if ip is IpVersion.IPV6 else ipv4.ip
    nfs_host, _, nfs_export = nfs_source.rpartition(":")
    return {
        "interface": interface,
        "server_ipv4": str(ipv4.ip), "server_ipv6": str(ipv6.ip),
        "server": url_host(str(server)),
        "subnet4": str(net4.network_address), "netmask4": str(net4.netmask),
        "prefix4": str(net4), "subnet6": str(net6.network_address), "prefix6": str(net6),
        # The upper part of the subnet, as pxelab's own server leases by default.
        "pool4_first": str(net4[100]), "pool4_last": str(net4[199]),
        "pool6_first": str(net6.network_address + 0x10000),
        "pool6_last": str(net6.network_address + 0x1FFFF),
        "data_root": str(data_root),
        "nfs_server": nfs_host.strip("[]"), "nfs_export": nfs_export, "nfs_root": nfs_source,
        "mac": mac, "mac_hyphen": mac.replace(":", "-"), "append": append,
    }


def fill_data_root(root: Path, system: SystemUnderTest, values: dict[str, str], *,
                   fwset: FirmwareSet, payload: Payload | None,
                   cache_dir: Path | None = None) -> Path:
    """Write the data root of one boot of ``system`` into ``root``."""
    root.mkdir(parents=True, exist_ok=True)
    if system.netboot is not None:  # the release's tree as it is: nothing filled in
        _copy_tree(netboot_tree(system.netboot, cache_dir).root, root, {}, ("*",))
    if system.data_root is not None:
        _copy_tree(system.data_root, root, values, system.verbatim)
    for name, entry in system.firmware_files:
        place(fwset.locate(entry), root / name)
    if system.payload:
        if payload is None:
            raise ConfigError(f"{system.source}: [data_root] payload = true, but no payload "
                              "was built")
        place(payload.kernel, root / KERNEL_NAME)
        place(payload.initrd, root / INITRD_NAME)
    log.info("data root %s ready from %s", root, system.source)
    return root


def _copy_tree(source: Path, root: Path, values: dict[str, str],
               verbatim: tuple[str, ...]) -> None:
    for path, relative in _files(source):
        if not path.is_file():
            raise ConfigError(f"{path}: not a regular file (a broken link or a device); "
                              "a data root holds only files")
        real = path.resolve()
        text = None if any(fnmatch(str(relative), g) for g in verbatim) else _text(real)
        target = root / relative
        if text is not None and is_template(text):
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(render(text, values, source=str(path)), encoding="utf-8")
        else:
            place(real, target)


def _text(path: Path) -> str | None:
    if path.stat().st_size > TEMPLATE_LIMIT:
        return None
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        return None
