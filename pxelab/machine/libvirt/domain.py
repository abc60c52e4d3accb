"""A :class:`~pxelab.machine.qemu.GuestSpec` as libvirt domain XML (pure, unit tested).

The domain is the machine :func:`pxelab.machine.qemu.qemu_command` describes, in
libvirt's words: the firmware set's SeaBIOS (``<loader type='rom'>``) or OVMF (a
read-only pflash loader and the guest's own NVRAM file, which pxelab writes before
the domain starts), the NIC on the lab's host bridge with its ROM and boot order,
fw_cfg entries (``<sysinfo type='fwcfg'>``), the virtio RNG, Secure Boot (a secure
loader and SMM), one serial port on a pty. libvirt has no element for QEMU's
isa-debugcon, so OVMF's debug port is passed through ``<qemu:commandline>``, as are
a lab file's own extra QEMU arguments.

QEMU runs as root without relabelling (a static DAC label): the firmware set's files
live under root's cache and the artifacts under the caller's directories, which
libvirt's ``libvirt-qemu`` user cannot reach and should not chown.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

from pxelab.core.errors import ConfigError
from pxelab.machine.qemu import OVMF_DEBUG_PORT, Accel, GuestSpec

QEMU_NS = "http://libvirt.org/schemas/domain/qemu/1.0"
# Who started a domain, in its <metadata>: a later run destroys the domains whose
# owner is gone (pxelab.machine.libvirt.connection.reap_domains).
OWNER_NS = "urn:pxelab:libvirt:owner:1"
NAME_PREFIX = "pxelab-"
# libvirt's model names for the NIC models pxelab knows. virtio is non-transitional
# (PCI ID 1af4:1041) on both machines: a ROM given as a file gets no PCI ID patching
# (QEMU patches only default ROMs), Debian's efi-virtio.rom says 1af4:1041, and SeaBIOS
# skips a ROM whose IDs differ from the device's. On q35 libvirt puts virtio on a PCIe
# root port, where it is modern-only anyway.
NIC_MODELS = {"virtio-net-pci": "virtio-non-transitional", "e1000": "e1000",
              "e1000e": "e1000e", "rtl8139": "rtl8139"}

ET.register_namespace("qemu", QEMU_NS)
ET.register_namespace("pxelab", OWNER_NS)


@dataclass(frozen=True)
class Owner:
    """The process that owns a domain: its pid and start time (clock ticks since boot,
    /proc/PID/stat field 22), so a recycled pid is not taken for the owner."""

    pid: int
    start_ticks: int


@dataclass(frozen=True)
class DomainFiles:
    """Host files the domain uses, made by the guest before it starts."""

    nvram: Path | None = None  # OVMF's VARS copy with pxelab's settings written
    debug_fifo: Path | None = None  # what OVMF's debug port writes to
    # The serial console's unix socket, which QEMU listens on; None: a pty.
    console: Path | None = None


def nic_model(model: str) -> str:
    """libvirt's name of QEMU NIC device ``model``."""
    try:
        return NIC_MODELS[model]
    except KeyError:
        raise ConfigError(f"the libvirt backend does not know NIC model {model}; "
                          f"known: {', '.join(NIC_MODELS)}") from None


def domain_xml(spec: GuestSpec, *, name: str, bridge: str, accel: Accel,
               files: DomainFiles, owner: Owner | None = None) -> str:
    """The domain XML of ``spec`` as domain ``name`` with its NIC on host ``bridge``.

    ``accel`` must be resolved (KVM or TCG). OVMF needs ``files.nvram``.
    """
    if accel is Accel.AUTO:
        raise ConfigError("domain_xml needs a resolved accelerator (KVM or TCG)")
    if not name.startswith(NAME_PREFIX):
        raise ConfigError(f"domain name {name!r} must start with {NAME_PREFIX!r} "
                          "(reaping finds pxelab's domains by it)")
    domain = ET.Element("domain", type="kvm" if accel is Accel.KVM else "qemu")
    ET.SubElement(domain, "name").text = name
    if owner is not None:
        metadata = ET.SubElement(domain, "metadata")
        ET.SubElement(metadata, f"{{{OWNER_NS}}}owner", pid=str(owner.pid),
                      start=str(owner.start_ticks))
    ET.SubElement(domain, "memory", unit="MiB").text = str(spec.memory_mib)
    ET.SubElement(domain, "vcpu").text = str(spec.cpus)
    if spec.fw_cfg:
        sysinfo = ET.SubElement(domain, "sysinfo", type="fwcfg")
        for key, text in spec.fw_cfg:
            ET.SubElement(sysinfo, "entry", name=key).text = text
    domain.append(_os(spec, files))
    features = ET.SubElement(domain, "features")
    ET.SubElement(features, "acpi")  # without it libvirt passes -no-acpi: no poweroff
    if spec.secure_boot:
        # A Secure Boot OVMF keeps its variables in SMM (docs/secure-boot.md).
        ET.SubElement(features, "smm", state="on")
    ET.SubElement(domain, "clock", offset="utc")
    # The guest's poweroff or reboot ends the domain, as -no-reboot ends QEMU.
    for event in ("on_poweroff", "on_reboot", "on_crash"):
        ET.SubElement(domain, event).text = "destroy"
    domain.append(_devices(spec, bridge, files.console))
    ET.SubElement(domain, "seclabel", type="static", model="dac",
                  relabel="no").append(_text("label", "+0:+0"))
    _qemu_args(domain, spec, files)
    ET.indent(domain)
    return ET.tostring(domain, encoding="unicode") + "\n"


def _text(tag: str, text: str, **attributes: str) -> ET.Element:
    element = ET.Element(tag, attributes)
    element.text = text
    return element


def _os(spec: GuestSpec, files: DomainFiles) -> ET.Element:
    os_element = ET.Element("os")
    os_element.append(_text("type", "hvm", arch="x86_64", machine=spec.firmware.machine()))
    if spec.firmware.is_uefi():
        ovmf = spec.ovmf
        if ovmf is None or files.nvram is None:
            raise ConfigError("an OVMF domain needs GuestSpec.ovmf (the firmware set's, "
                              "through for_firmware_set) and an NVRAM file")
        if (ovmf.code_format, ovmf.vars_format) != ("raw", "raw"):
            raise ConfigError(f"OVMF {ovmf.code} is {ovmf.code_format}/{ovmf.vars_format}; "
                              "libvirt 9.0's loader takes raw images only: pick a raw build")
        os_element.append(_text("loader", str(ovmf.code), readonly="yes", type="pflash",
                                secure="yes" if spec.secure_boot else "no"))
        os_element.append(_text("nvram", str(files.nvram)))
    elif spec.bios is not None:
        os_element.append(_text("loader", str(spec.bios), type="rom"))
    if spec.kernel is not None:
        os_element.append(_text("kernel", str(spec.kernel)))
        if spec.initrd is not None:
            os_element.append(_text("initrd", str(spec.initrd)))
        if spec.append:
            os_element.append(_text("cmdline", spec.append))
    if spec.boot_menu_wait_ms:
        ET.SubElement(os_element, "bootmenu", enable="yes",
                      timeout=str(spec.boot_menu_wait_ms))
    # useserial: QEMU's -machine graphics=off, which turns on SeaBIOS's serial console
    # (and so the iPXE ROM's); OVMF's console is on the serial port either way.
    ET.SubElement(os_element, "bios", useserial="yes")
    return os_element


def _devices(spec: GuestSpec, bridge: str, console: Path | None) -> ET.Element:
    devices = ET.Element("devices")
    ET.SubElement(devices, "controller", type="usb", model="none")
    devices.append(_interface(spec, bridge))
    devices.append(_serial(console))
    if spec.rng:
        rng = ET.SubElement(devices, "rng", model="virtio")
        ET.SubElement(rng, "backend", model="builtin")  # QEMU's rng-builtin: getrandom()
    ET.SubElement(devices, "memballoon", model="none")
    return devices


def _serial(console: Path | None) -> ET.Element:
    """The serial port: on a unix socket QEMU listens on, or a pty. A socket needs no
    devpts in QEMU's private /dev (libvirt's namespaces; a chroot's /dev/pts is not
    always usable there: "Failed to create PTY")."""
    if console is None:
        serial = ET.Element("serial", type="pty")
    else:
        serial = ET.Element("serial", type="unix")
        ET.SubElement(serial, "source", mode="bind", path=str(console))
    ET.SubElement(serial, "target", port="0")
    return serial


def _interface(spec: GuestSpec, bridge: str) -> ET.Element:
    interface = ET.Element("interface", type="bridge")
    ET.SubElement(interface, "source", bridge=bridge)
    ET.SubElement(interface, "mac", address=spec.mac)
    ET.SubElement(interface, "model", type=nic_model(spec.nic_model))
    if spec.nic_romfile == "":
        ET.SubElement(interface, "rom", enabled="no")
    elif spec.nic_romfile is not None:
        ET.SubElement(interface, "rom", file=spec.nic_romfile)
    elif spec.nic_rom is not None:
        ET.SubElement(interface, "rom", file=str(spec.nic_rom))
    if spec.network_boot:
        ET.SubElement(interface, "boot", order="1")
    return interface


def _qemu_args(domain: ET.Element, spec: GuestSpec, files: DomainFiles) -> None:
    """OVMF's debug port and the spec's extra arguments, which libvirt has no element for."""
    args: list[str] = []
    if spec.firmware.is_uefi() and files.debug_fifo is not None:
        path = str(files.debug_fifo).replace(",", ",,")
        args += ["-chardev", f"file,id=ovmfdebug,path={path}",
                 "-device", f"isa-debugcon,iobase={OVMF_DEBUG_PORT},chardev=ovmfdebug"]
    args += spec.extra_args
    if not args:
        return
    commandline = ET.SubElement(domain, f"{{{QEMU_NS}}}commandline")
    for arg in args:
        ET.SubElement(commandline, f"{{{QEMU_NS}}}arg", value=arg)


def owner_of(xml: str) -> Owner | None:
    """The owner recorded in a domain's XML, or None (not started by pxelab)."""
    try:
        root = ET.fromstring(xml)
    except ET.ParseError:
        return None
    found = root.find(f"metadata/{{{OWNER_NS}}}owner")
    if found is None:
        return None
    try:
        return Owner(int(found.get("pid", "")), int(found.get("start", "")))
    except ValueError:
        return None
