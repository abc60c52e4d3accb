"""Labs of several guests booting at once: :class:`LabRun` and its :class:`LabResult`."""

from pxelab.multiboot.result import LabResult
from pxelab.multiboot.run import MAX_GUESTS, LabRun, guest_mac, timeout_factor

__all__ = ["MAX_GUESTS", "LabResult", "LabRun", "guest_mac", "timeout_factor"]
