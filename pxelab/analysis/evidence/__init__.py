"""A boot's evidence merged on one clock: console, server events, packets, firmware log."""

from pxelab.analysis.evidence.model import (
    EVIDENCE_FILE,
    BootFacts,
    Entry,
    Evidence,
    PacketRecord,
    Source,
)
from pxelab.machine.firmware_log import LogLine

__all__ = ["EVIDENCE_FILE", "BootFacts", "Entry", "Evidence", "LogLine", "PacketRecord",
           "Source"]
