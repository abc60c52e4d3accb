"""What a file server told the guest, read from the capture when the server said nothing.

pxelab's own servers report every answer as an event (``tftp.sent``,
``tftp.not_found``, ``http.get`` with status and byte counts). A third-party
server (tftpd-hpa, dnsmasq, nginx) reports nothing, yet the wire shows the same
answers: a TFTP ERROR 1 is a "not found", a complete TFTP transfer a "sent", an
HTTP status line with its Content-Length and the body bytes that followed a GET.
:func:`with_wire_events` derives those events from the capture's records, marked
``details["from"] = "capture"``, so that the file and transfer rules read one
shape of evidence whoever served the boot.
"""

from __future__ import annotations

from dataclasses import replace

from pxelab.analysis.diagnosis import query as q
from pxelab.analysis.evidence import Evidence, PacketRecord
from pxelab.core.events import Event

FILE_SOURCES = ("tftp", "http")
# TFTP error codes (RFC 1350 section 5) and the server event each is.
_TFTP_ERRORS = {1: "not_found", 2: "denied"}


def with_wire_events(evidence: Evidence) -> Evidence:
    """``evidence`` with TFTP and HTTP events derived from its capture, if it has none."""
    if any(e.source in FILE_SOURCES for e in evidence.events) or not evidence.packets:
        return evidence
    derived = [event for record in evidence.packets
               if (event := _event(record, evidence.packets)) is not None]
    if not derived:
        return evidence
    events = sorted((*evidence.events, *derived), key=lambda e: e.time)
    return replace(evidence, events=tuple(events))


def derived(event: Event) -> bool:
    """Whether ``event`` was read from the capture (not reported by the server)."""
    return event.details.get("from") == "capture"


def _event(record: PacketRecord, packets: tuple[PacketRecord, ...]) -> Event | None:
    if record.proto == "tftp" and record.kind == "transfer":
        return _tftp_transfer(record, packets)
    if record.proto == "tftp" and record.kind == "error" and not record.fields.get("from_client"):
        return _tftp_error(record)
    if record.proto == "http" and record.kind == "response":
        return _http_response(record, packets)
    return None


def _tftp_transfer(record: PacketRecord, packets: tuple[PacketRecord, ...]) -> Event:
    fields = record.fields
    done = bool(fields.get("complete")) or _acked_whole(record, packets)
    size = int(fields.get("bytes") or 0)
    return Event("tftp", "sent" if done else "aborted", client=q.host(record.dst),
                 request=f"RRQ {fields.get('file', '')}",
                 answer=record.summary, reason="" if done else str(fields.get("error", "")),
                 details={"from": "capture", "bytes": size, "size": size if done else None,
                          "blksize": fields.get("blksize"),
                          "last_block": fields.get("last_block")},
                 time=record.time, mac=record.client, file=str(fields.get("file", "")))


def _acked_whole(record: PacketRecord, packets: tuple[PacketRecord, ...]) -> bool:
    """Whether the client acknowledged the last block the OACK's tsize needs, though the
    capture lost that block (a busy tcpdump drops frames; the ACK is the client's word)."""
    fields = record.fields
    if fields.get("error"):
        return False
    name, blksize, acked = fields.get("file"), fields.get("blksize"), fields.get("acked")
    tsizes = [p.fields.get("options", {}).get("tsize", "") for p in packets
              if (p.proto, p.kind) == ("tftp", "oack") and p.fields.get("file") == name
              and p.dst == record.dst and p.time <= record.time]
    tsize = str(tsizes[-1]) if tsizes else ""
    if not (tsize.isdigit() and isinstance(blksize, int) and isinstance(acked, int)):
        return False
    return blksize > 0 and acked >= int(tsize) // blksize + 1


def _tftp_error(record: PacketRecord) -> Event | None:
    fields = record.fields
    kind = _TFTP_ERRORS.get(int(fields.get("code") or 0))
    if kind is None:
        return None
    return Event("tftp", kind, client=q.host(record.dst),
                 request=f"RRQ {fields.get('file', '')}",
                 answer=f"ERROR {fields.get('code')} {fields.get('message', '')}".strip(),
                 reason=f"the server answered ERROR {fields.get('code')}",
                 details={"from": "capture"}, time=record.time, mac=record.client,
                 file=str(fields.get("file", "")))


def _http_response(record: PacketRecord, packets: tuple[PacketRecord, ...]) -> Event:
    fields = record.fields
    method = str(fields.get("method") or "")
    if not method:  # a capture summarised before responses recorded their request's method
        asked = [p for p in packets if p.proto == "http" and p.kind == "request"
                 and p.src == record.dst and p.time <= record.time]
        method = str(asked[-1].fields.get("method", "GET")) if asked else "GET"
    status = fields.get("status")
    length = fields.get("length")
    # What the client acknowledged counts too: a capture can lose segments the client got.
    sent = max(int(fields.get("body_bytes") or 0), int(fields.get("body_acked") or 0))
    sent = 0 if method == "HEAD" else sent
    return Event("http", method.lower(), client=q.host(record.dst),
                 request=f"{method} {fields.get('path', '')}", answer=record.summary,
                 details={"from": "capture", "status": status, "bytes": sent,
                          "size": length if status == 200 else None},
                 time=record.time, mac=record.client, file=str(fields.get("path", "")))
