"""Which kernel modules (and which Debian kernel flavour) drive each emulated NIC model.

The guest's initramfs must carry the driver of the NIC it boots on. Debian's
``cloud-amd64`` kernel boots fastest here (bench/README.md) but has only the
virtio and cloud NIC drivers: its config says ``# CONFIG_E1000 is not set`` and
has no 8139 driver at all. The ``amd64`` kernel has them as modules, so a NIC
that needs it switches the payload to that flavour, and only that NIC does.

    spec = payload_for_nic(PayloadSpec(), "e1000")   # amd64 kernel, e1000.ko
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from pxelab.core.errors import ConfigError
from pxelab.machine.payload.builder import PayloadSpec


@dataclass(frozen=True)
class NicDriver:
    """One QEMU NIC model and what the guest and the firmware need for it."""

    model: str  # the QEMU -device name
    modules: tuple[str, ...]  # loaded by the initramfs (dependencies are resolved)
    # Debian kernel flavours whose packages ship ``modules``, preferred first.
    flavours: tuple[str, ...]
    # Firmware catalog entry of the iPXE ROM QEMU 7.2 loads for the model when
    # romfile= is unset (`info qtree` shows romfile = "efi-e1000.rom" for both
    # -machine pc and q35: the combined BIOS + EFI image).
    rom: str


NICS: dict[str, NicDriver] = {n.model: n for n in (
    NicDriver("virtio-net-pci", ("virtio_net",), ("cloud-amd64", "amd64"), "rom-virtio"),
    NicDriver("e1000", ("e1000",), ("amd64",), "rom-e1000"),
    # QEMU's rtl8139 is an RTL8139C+ (PCI revision 0x20): 8139too refuses those
    # ("is an enhanced 8139C+ chip, use 8139cp"), so 8139cp is the driver.
    NicDriver("rtl8139", ("8139cp",), ("amd64",), "rom-rtl8139"),
)}


def nic_driver(model: str) -> NicDriver:
    """The table entry for QEMU NIC ``model``; a ConfigError lists the known ones."""
    try:
        return NICS[model]
    except KeyError:
        known = ", ".join(sorted(NICS))
        raise ConfigError(f"no guest driver known for NIC model {model!r}; choose one of: "
                          f"{known} (or add it to pxelab/machine/payload/nics.py)") from None


def payload_for_nic(spec: PayloadSpec, model: str) -> PayloadSpec:
    """``spec`` with the driver of ``model`` as its NIC modules, on a kernel that has it.

    The flavour of ``spec`` is kept if its kernel ships the driver; otherwise the
    first flavour that does is used.
    """
    driver = nic_driver(model)
    flavour = spec.kernel_flavour if spec.kernel_flavour in driver.flavours \
        else driver.flavours[0]
    return replace(spec, kernel_flavour=flavour, nic_modules=driver.modules)
