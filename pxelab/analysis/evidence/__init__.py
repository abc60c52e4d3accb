"""A boot's evidence merged on one clock: console, server events, packets, firmware and
daemon logs."""

from pxelab.analysis.evidence.model import (
    EVIDENCE_FILE,
    BootFacts,
    Entry,
    Evidence,
    PacketRecord,
    Source,
    log_entry,
)
from pxelab.machine.firmware_log import LogLine

__all__ = ["EVIDENCE_FILE", "BootFacts", "Entry", "Evidence", "LogLine", "PacketRecord",
           "Source", "log_entry"]
