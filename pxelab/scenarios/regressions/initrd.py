"""Area ``initrd``: an initramfs without the NIC's driver ("no devices", panic).

The field report behind both entries: a network-booted live system whose kernel
and initrd loaded fine, then "ipconfig: no devices to configure" over and over
and "Kernel panic - not syncing: Attempted to kill init!". The NIC's driver was
not in the initrd — and not even in the kernel package the initrd was built
from, so MODULES=most did not help either; the package with the extra drivers
did.

- ``initrd-no-nic-driver``: pxelab's own initramfs built without the NIC's
  module. Its /init finds no network device, says "no devices to configure" and
  exits; the kernel panics.
- ``initramfs-tools-no-nic-driver``: the realistic one, Debian's initramfs-tools
  initrd (``boot=nfs``, MODULES=netboot or most) for Debian's cloud kernel, which
  ships no e1000 driver at all, booted on an e1000 NIC. The fix is the kernel
  flavour that has the driver (amd64), with MODULES=netboot.
"""

from __future__ import annotations

from dataclasses import replace

from pxelab.core.errors import ConfigError
from pxelab.machine.console import Milestone
from pxelab.machine.payload import Initramfs
from pxelab.machine.payload.builder import MKINITRAMFS_MODULES
from pxelab.machine.payload.nics import nic_driver, payload_for_nic
from pxelab.scenarios.cases import IpVersion, Scenario
from pxelab.scenarios.milestones import LINUX_INITRAMFS_TOOLS_NFSROOT
from pxelab.scenarios.regressions.registry import Regression, register

# The flavour whose package lacks drivers other flavours have (pxelab/machine/payload/nics.py).
CLOUD_FLAVOUR = "cloud-amd64"


# -- pxelab's initramfs without the NIC driver ------------------------------------------

def _no_nic_driver(scenario: Scenario, argument: str | None) -> Scenario:
    modules = nic_driver(scenario.nic_model).modules
    return replace(scenario, payload=replace(
        scenario.payload, omit_modules=(*scenario.payload.omit_modules, *modules)))


# -- initramfs-tools' initrd for a kernel without the NIC driver ----------------------

def linux_table(scenario: Scenario, table: tuple[Milestone, ...]) -> tuple[Milestone, ...]:
    """``scenario``'s milestones with everything from "kernel" on replaced by ``table``."""
    names = [milestone.name for milestone in scenario.milestones]
    if "kernel" not in names:
        raise ConfigError(f"scenario {scenario.name} has no 'kernel' milestone to follow "
                          "with the initramfs-tools table")
    return (*scenario.milestones[:names.index("kernel")], *table)


def with_initramfs_tools(scenario: Scenario, modules: str = "netboot") -> Scenario:
    """``scenario`` booting Debian's initramfs-tools initrd (MODULES=``modules``)."""
    if scenario.ip is not IpVersion.IPV4:
        raise ConfigError(f"scenario {scenario.name}: initramfs-tools mounts an NFS root over "
                          "IPv4 only (klibc nfsmount); pick an ..._ipv4 scenario")
    if modules not in MKINITRAMFS_MODULES:
        raise ConfigError(f"MODULES={modules!r}: choose one of {', '.join(MKINITRAMFS_MODULES)}")
    payload = replace(scenario.payload, initramfs=Initramfs.INITRAMFS_TOOLS,
                      mkinitramfs_modules=modules)
    return replace(scenario, payload=payload,
                   milestones=linux_table(scenario, LINUX_INITRAMFS_TOOLS_NFSROOT))


def _initramfs_tools_no_driver(scenario: Scenario, argument: str | None) -> Scenario:
    driver = nic_driver(scenario.nic_model)
    if CLOUD_FLAVOUR in driver.flavours:
        raise ConfigError(
            f"NIC {scenario.nic_model}: Debian's {CLOUD_FLAVOUR} kernel has its driver "
            f"({', '.join(driver.modules)}), so nothing would fail; use a NIC it lacks, "
            "e.g. legacy_pxe_ipv4[e1000]")
    faulted = with_initramfs_tools(scenario, argument or "netboot")
    return replace(faulted, payload=replace(faulted.payload, kernel_flavour=CLOUD_FLAVOUR))


def _initramfs_tools_fixed(scenario: Scenario) -> Scenario:
    """The kernel flavour that ships the NIC's driver, initramfs-tools with MODULES=netboot."""
    fixed = with_initramfs_tools(scenario, "netboot")
    return replace(fixed, payload=payload_for_nic(fixed.payload, scenario.nic_model))


register(
    Regression(
        name="initrd-no-nic-driver",
        summary="pxelab's initramfs without the NIC's driver module: no network device, "
                "'no devices to configure', kernel panic",
        scenario="legacy_pxe_ipv4",
        stage="initramfs_dhcp",
        cause="initrd.no_network_driver",
        apply=_no_nic_driver,
        report="ipconfig: no devices to configure / Kernel panic - not syncing: Attempted to "
               "kill init! (the initrd lacks the Ethernet driver module)",
    ),
    Regression(
        name="initramfs-tools-no-nic-driver",
        summary="Debian initramfs-tools initrd (boot=nfs, MODULES=ARGS) for the cloud kernel, "
                "which has no e1000 driver, on an e1000 NIC",
        scenario="legacy_pxe_ipv4[e1000]",
        stage="initramfs_dhcp",
        cause="initrd.no_network_driver",
        apply=_initramfs_tools_no_driver,
        fixed=_initramfs_tools_fixed,
        argument="netboot|most",
        default="netboot",
        report="ipconfig: no devices to configure (repeated), /init: can't open "
               "'/run/net-*.conf', Kernel panic - not syncing: Attempted to kill init! — "
               "the NIC's driver is not in the kernel package (linux-image-extra), so "
               "MODULES=most does not help",
    ),
)
