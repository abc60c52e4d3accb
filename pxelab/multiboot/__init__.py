"""Labs of several guests booting at once: :class:`LabRun` and its :class:`LabResult`."""

from pxelab.multiboot.result import LabResult, lab_expectation_problem
from pxelab.multiboot.run import LabRun, guest_mac, timeout_factor

__all__ = ["LabResult", "LabRun", "guest_mac", "lab_expectation_problem", "timeout_factor"]
