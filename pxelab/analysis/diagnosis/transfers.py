"""Rules for transfers that ended short: the guest got less of a file than there is.

A file cut short breaks the boot later and somewhere else: a kernel that does not
start, "Initramfs unpacking failed", a loader that hangs. What shows the cause is the
transfer itself: bytes sent against the file's size, from the server's events or,
without them (a third-party server), from the packet capture's HTTP response
(Content-Length against the body bytes on the wire).
"""

from __future__ import annotations

from dataclasses import dataclass

from pxelab.analysis.diagnosis import query as q
from pxelab.analysis.diagnosis.model import Cause
from pxelab.analysis.evidence import Evidence, PacketRecord
from pxelab.core.events import Event


@dataclass(frozen=True)
class Short:
    """One response whose body ended before its length."""

    item: Event | PacketRecord
    file: str
    sent: int
    size: int
    time: float

    @property
    def protocol(self) -> str:
        source = self.item.source if isinstance(self.item, Event) else self.item.proto
        return source.upper()

    @property
    def announced(self) -> str:
        if self.protocol == "TFTP":
            return ", though the server's OACK announced tsize " + str(self.size)
        return ", though its Content-Length said " + str(self.size)


def short(evidence: Evidence) -> Cause | None:
    """An HTTP response ended before its Content-Length, or a TFTP transfer before the
    size its OACK announced (tsize), and the file never came whole."""
    found = sorted(_short_events(evidence) or _short_packets(evidence), key=lambda s: s.time)
    found += _short_tftp(evidence)
    # A later whole delivery of the file made good (a TFTP "sent" is the short one itself).
    whole = {q.event_file(e): e.time for e in q.delivered(evidence)}
    found = [s for s in found if whole.get(s.file, float("-inf")) <= s.time]
    if not found:
        return None
    last = found[-1]
    percent = 100 * last.sent // last.size if last.size else 0
    return Cause(
        "transfer.short", evidence.timeline.failed_stage or "kernel",
        f"{last.file} came short over {last.protocol}: {last.sent} of {last.size} bytes "
        f"({percent}%){last.announced}",
        q.lines(evidence, [s.item for s in found[-2:]]),
        f"make the {last.protocol} server send all of {last.file} (its log says why it "
        "stopped: a timeout, a proxy's size limit, a file changed while being sent)")


def _short_events(evidence: Evidence) -> list[Short]:
    return [Short(e, q.event_file(e), int(q.detail(e, "bytes", 0)), int(q.detail(e, "size")),
                  e.time)
            for e in q.events(evidence, "http", "get")
            if q.detail(e, "status") == 200 and q.detail(e, "size") is not None
            and int(q.detail(e, "bytes", 0)) < int(q.detail(e, "size"))]


def _short_packets(evidence: Evidence) -> list[Short]:
    found = []
    for packet in q.packets(evidence, "http", "response"):
        # What the client acknowledged counts too: a capture can lose segments it got.
        length = q.field(packet, "length")
        body = max(q.field(packet, "body_bytes", 0), q.field(packet, "body_acked", 0))
        # A response to HEAD has the length of the body it leaves out (RFC 9110 9.3.2).
        if (q.field(packet, "status") == 200 and length is not None and body < length
                and q.field(packet, "method") != "HEAD"):
            found.append(Short(packet, q.file_key(str(q.field(packet, "path", ""))), body,
                               length, packet.time))
    return found


def _short_tftp(evidence: Evidence) -> list[Short]:
    """TFTP transfers that ended (a short last block) below the tsize their OACK gave."""
    announced: dict[str, int] = {}
    offered = [(q.event_file(e), q.detail(e, "options", {}))
               for e in q.events(evidence, "tftp", "oack")]
    offered += [(q.file_key(str(q.field(p, "file", ""))), q.field(p, "options", {}))
                for p in q.packets(evidence, "tftp", "oack")]
    for name, options in offered:
        tsize = str(options.get("tsize", ""))
        if tsize.isdigit() and int(tsize) and name:
            announced[name] = int(tsize)
    found = []
    for event in q.events(evidence, "tftp", "sent"):
        name, sent = q.event_file(event), int(q.detail(event, "bytes", 0))
        if sent < announced.get(name, 0) and not _all_blocks(event, announced[name]):
            found.append(Short(event, name, sent, announced[name], event.time))
    return found


def _all_blocks(event: Event, tsize: int) -> bool:
    """Whether a transfer read from the capture reached the last block ``tsize`` needs:
    its byte count is what the capture kept, and a busy capture drops frames."""
    last, blksize = q.detail(event, "last_block"), q.detail(event, "blksize")
    if not isinstance(last, int) or not isinstance(blksize, int) or blksize <= 0:
        return False
    return last >= tsize // blksize + 1  # a file of k * blksize bytes ends in an empty block
