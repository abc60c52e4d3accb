"""The boot scenarios pxelab knows, by name (the pytest ids and CLI names).

A scenario says which guest boots, through which firmware and boot program,
what the boot server hands out, and which milestones prove each stage.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from pxelab import milestones as ms
from pxelab.console import Milestone
from pxelab.errors import ConfigError
from pxelab.payload import PayloadSpec
from pxelab.policy import BootPolicy, RulePolicy
from pxelab.qemu import Firmware, GuestSpec


class BootLoader(StrEnum):
    """The network boot program that loads the kernel."""

    PXELINUX = "pxelinux"

    @property
    def nbp(self) -> str:
        return {BootLoader.PXELINUX: "pxelinux.0"}[self]


@dataclass(frozen=True)
class Scenario:
    name: str
    description: str
    guest: GuestSpec
    loader: BootLoader
    milestones: tuple[Milestone, ...]
    payload: PayloadSpec = field(default_factory=PayloadSpec)
    # Seconds QEMU gets to power off by itself after the last milestone.
    poweroff_timeout: float = 60.0

    # Firmware catalog entries whose package versions are recorded with every result.
    firmware: tuple[str, ...] = ("seabios", "rom-virtio", "pxelinux.0", "ldlinux.c32", "qemu")
    # None: the iPXE ROM is the firmware's PXE client and gets the NBP like any BIOS.
    ipxe_script: str | None = None

    def policy(self) -> BootPolicy:
        """The boot server's per-client decisions for this scenario."""
        return RulePolicy(ipxe_script=self.ipxe_script)


SCENARIOS: dict[str, Scenario] = {
    s.name: s
    for s in (
        Scenario(
            name="legacy_pxe_ipv4",
            description="SeaBIOS + iPXE ROM, DHCPv4, TFTP pxelinux.0, kernel+initrd, NFSv4 root",
            guest=GuestSpec(firmware=Firmware.SEABIOS),
            loader=BootLoader.PXELINUX,
            milestones=ms.SEABIOS + ms.IPXE_ROM + ms.PXELINUX + ms.LINUX_NFSROOT,
        ),
    )
}

DEFAULT_SCENARIO = "legacy_pxe_ipv4"


def get_scenario(name: str) -> Scenario:
    try:
        return SCENARIOS[name]
    except KeyError:
        known = ", ".join(sorted(SCENARIOS))
        raise ConfigError(f"unknown scenario {name!r}; choose one of: {known}") from None
