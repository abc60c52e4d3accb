"""Debian's official netboot tree, unchanged, boots to the installer's first screen on the
serial console, on BIOS and on UEFI, from pxelab's boot server.

The tree is what ``debian-installer-<N>-netboot-amd64`` holds (pxelab.machine.netboot);
the keys typed at its menus and the milestones are pxelab.scenarios.debian_installer's.
Each boot takes one to two minutes under TCG (most of it the 40 MB initrd over TFTP).
"""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from pxelab.core.events import EventLog
from pxelab.machine.console import ConsoleWatcher
from pxelab.machine.netboot import INITRD, KERNEL, netboot_tree
from pxelab.machine.network import LabNetwork
from pxelab.machine.qemu import Firmware, Guest
from pxelab.pytest_plugin import pxelab_requires
from pxelab.scenarios import debian_installer as di
from pxelab.scenarios.milestones import ANY_STAGE
from pxelab.server.bootserver import BootServer, ServerConfig
from pxelab.server.policy import RulePolicy

pytestmark = [pytest.mark.qemu, pytest.mark.slow]

log = logging.getLogger(__name__)


@pytest.fixture(autouse=True)
def _needs_root_and_qemu() -> None:
    pxelab_requires(root=True, tools=["qemu-system-x86_64", "dpkg-deb"],
                    hint="apt-get install qemu-system-x86 dpkg")


@pytest.mark.parametrize("release", ["bookworm", "trixie"])
@pytest.mark.parametrize("firmware", [Firmware.SEABIOS, Firmware.OVMF], ids=["bios", "uefi"])
def test_the_installer_shows_its_first_screen(firmware: Firmware, release: str,
                                              tmp_path: Path) -> None:
    tree = netboot_tree(release)
    events = EventLog(tmp_path / "events.jsonl", window=None)
    try:
        with LabNetwork(artifacts_dir=tmp_path) as lab:
            config = ServerConfig(interface=lab.bridge, ipv4=lab.ipv4, ipv6=lab.ipv6,
                                  data_root=tree.root, tftp=di.TFTP)
            with BootServer(config, RulePolicy(rules=di.RULES), events,
                            namespace=lab.namespace), \
                    Guest(di.guest(firmware), lab.add_tap(), tmp_path, lab.namespace) as guest:
                watcher = ConsoleWatcher(guest.console, guest.started_at, ANY_STAGE)
                timeline = watcher.run(f"debian-netboot-{release}-{firmware}",
                                       di.milestones(firmware))
    finally:
        events.close()
    log.info("%s %s:\n%s", tree.package, tree.version, timeline.render())
    assert timeline.ok, f"{timeline.render()}\n{timeline.console_tail}"
    sent = {event.file.lstrip("/") for event in events
            if event.source == "tftp" and event.kind == "sent"}
    assert {KERNEL, INITRD} <= sent
    missing = {event.file for event in events if event.source == "tftp"
               and event.kind == "not_found" and not event.file.startswith("pxelinux.cfg/")}
    assert missing <= set(di.EXPECTED_MISSES)
