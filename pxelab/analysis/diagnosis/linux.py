"""Diagnosis rule for the Linux stage: an initramfs without the NIC's driver."""

from __future__ import annotations

import re

from pxelab.analysis.diagnosis import query as q
from pxelab.analysis.diagnosis.model import Cause
from pxelab.analysis.evidence import Evidence
from pxelab.machine.payload import contract
from pxelab.machine.payload.modules import module_name
from pxelab.machine.payload.nics import NICS

# Stages of the initramfs up to the root mount; a failure in one of them is the
# initramfs's (a later one means it had the network).
INITRAMFS_STAGES = ("initramfs", "initramfs_dhcp", "initramfs_ipv6", "nfs_root")

# What an initramfs says when it sees no network device, the most telling first: our
# /init (pxelab.machine.payload.scripts: "pxelab-init: PANIC link: no devices to configure: ...",
# before that "FAILED link: no network interface ..."), initramfs-tools' klibc ipconfig.
_NO_DEVICE = (
    re.compile(r"pxelab-init: (?:PANIC|FAILED) link: no (?:devices|network interface)[^\r\n]*"),
    re.compile(r"ipconfig: no devices to configure"),
    re.compile(r"no devices to configure|no network (?:interface|device)"),
)


_RELEASE = re.compile(r"Linux version (\S+)")
# Debian's x86-64 kernel flavours, the longer suffix first (nics.NicDriver.flavours).
_FLAVOURS = ("cloud-amd64", "rt-amd64", "amd64")


def _no_device_line(evidence: Evidence) -> str:
    """The console's words for "no network device" (its tail first, then the watcher's)."""
    timeline = evidence.timeline
    for text in (timeline.console_tail, timeline.failure or ""):
        for pattern in _NO_DEVICE:
            if found := pattern.search(text):
                return found.group(0).strip()
    return ""


def no_network_driver(evidence: Evidence) -> Cause | None:
    """The kernel and its initramfs ran, but the initramfs found no NIC and sent no DHCP."""
    kernel = q.hit(evidence, "kernel")
    stage = evidence.timeline.failed_stage
    if kernel is None or stage not in INITRAMFS_STAGES:
        return None
    facts = evidence.facts
    # The NIC's modules, comma-separated ("virtio_net,net_failover,failover").
    needed = [module_name(m) for m in facts.nic_driver.split(",") if m.strip()]
    modules = {module_name(m) for m in facts.initrd_modules}
    absent = [m for m in needed if m not in modules]
    if needed and modules and not absent:
        return None  # the driver is there: something else kept the network down
    driver = ", ".join(absent if modules else needed)
    since = q.wall(evidence, kernel.seconds)
    if _guest_talked(evidence, since):
        return None
    said = _no_device_line(evidence)
    missing = bool(absent and modules)
    started = q.hit(evidence, "initramfs")
    gave_up = contract.INIT_FAILED.search(q.console(evidence))
    if not (said or missing or (started and not gave_up)):
        return None
    model = f" ({facts.nic_model})" if facts.nic_model and facts.nic_model != driver else ""
    what = f"the NIC's driver {driver}{model}" if driver else "the NIC's driver"
    if missing:
        inside = sorted(modules)
        listed = ", ".join(inside[:4]) + (" ..." if len(inside) > 4 else "")
        known = f"{what} is not among its {q.plural(len(inside), 'module')} ({listed})"
    else:
        known = f"{what} is probably missing from it"
    shown = f" (the console says: {said})" if said else ""
    return Cause(
        "initrd.no_network_driver", stage,
        f"the kernel and the initramfs ran but the initramfs found no network device and "
        f"sent no DHCP{shown}: {known}",
        q.lines(evidence, [kernel, started]),
        f"{_kernel_lacks(evidence, kernel.text, driver)}"
        f"put {driver or 'the NIC driver'} into the initramfs (initramfs-tools: MODULES=netboot "
        f"or most in initramfs.conf, or list it in /etc/initramfs-tools/modules; dracut: "
        f"--add-drivers '{driver.replace(', ', ' ') or '<driver>'}'), or build it into the "
        "kernel")


def _kernel_lacks(evidence: Evidence, kernel_line: str, driver: str) -> str:
    """The first step of the fix when the booted Debian kernel flavour ships no such
    driver at all (cloud-amd64 and e1000): no MODULES= setting can help then."""
    known = NICS.get(evidence.facts.nic_model)
    release = _RELEASE.search(kernel_line)
    if not (driver and known and release):
        return ""
    flavour = next((f for f in _FLAVOURS if release.group(1).endswith(f"-{f}")), None)
    if flavour is None or flavour in known.flavours:
        return ""
    return (f"boot a kernel that has {driver}: Debian's {flavour} kernel "
            f"({release.group(1)}) ships none, so no MODULES= setting can add it (Debian: "
            f"the {' or '.join(known.flavours)} flavour); then ")


def _guest_talked(evidence: Evidence, since: float) -> bool:
    """Whether the guest asked for an address (DHCPv4, DHCPv6, a router solicitation)."""
    for event in q.after(evidence.events, since):
        if event.source in ("dhcp4", "dhcp6") and event.client and q.message_type(event):
            return True
        if event.source == "ra" and event.kind == "solicit":
            return True
    return any(p.proto in ("dhcp4", "dhcp6") or (p.proto == "ra" and p.kind == "rs")
               for p in q.after(evidence.packets, since) if not q.from_server(evidence, p))
