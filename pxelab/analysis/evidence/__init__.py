"""A boot's evidence merged on one clock: console, server events, packets, firmware log."""

from pxelab.evidence.model import (
    EVIDENCE_FILE,
    BootFacts,
    Entry,
    Evidence,
    LogLine,
    PacketRecord,
    Source,
)

__all__ = ["EVIDENCE_FILE", "BootFacts", "Entry", "Evidence", "LogLine", "PacketRecord",
           "Source"]
