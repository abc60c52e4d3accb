"""Which machinery starts a lab's guest: QEMU directly, or a libvirt daemon.

Both take the same :class:`~pxelab.machine.qemu.GuestSpec` and give the same guest
interface (console, timings, firmware log); :class:`GuestBackend` is the choice as a
boot is configured with it (``--pxelab-backend``, ``pxelab boot --backend``).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

# libvirt's system daemon: the one that can attach a guest to a host bridge.
DEFAULT_LIBVIRT_URI = "qemu:///system"


class Backend(StrEnum):
    QEMU = "qemu"  # pxelab runs qemu-system-x86_64 inside the lab namespace
    LIBVIRT = "libvirt"  # a transient libvirt domain, linked into the lab by a host bridge

    def is_libvirt(self) -> bool:
        return self is Backend.LIBVIRT


@dataclass(frozen=True)
class GuestBackend:
    """The backend of a boot and, for libvirt, the connection URI."""

    kind: Backend = Backend.QEMU
    libvirt_uri: str = DEFAULT_LIBVIRT_URI
