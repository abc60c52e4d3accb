"""Diagnosis rules for what comes after the NBP: the files it fetches, and how.

Most rules start where the network boot program (pxelinux.0, syslinux.efi,
ipxe.efi, grubx64.efi) was delivered and look at what the loader asked for
next. A refusal or a silence that later requests made good (PXELINUX's config
search answers "file not found" for pxelinux.cfg/01-<mac>, C000022x, ... before
it finds "default"; GRUB's 404s for its *.lst files) is normal: what matters is
the request the boot stopped on.
"""

from __future__ import annotations

import posixpath
import re

from pxelab.analysis.diagnosis import query as q
from pxelab.analysis.diagnosis.files import similar_names
from pxelab.analysis.diagnosis.model import Cause
from pxelab.analysis.evidence import Evidence, PacketRecord
from pxelab.core.events import Event
from pxelab.server.tftp import codec

LDLINUX = ("ldlinux.c32", "ldlinux.e64")
# IP + UDP + TFTP DATA headers around a block of blksize bytes.
OVERHEAD_IPV4 = 20 + 8 + 4
OVERHEAD_IPV6 = 40 + 8 + 4
_RRQ_FILE = re.compile(r"^tftp\.rrq #\d+ \((?P<file>.+)\)$")


def _requested(evidence: Evidence, since: float) -> set[str]:
    """The files asked for after ``since``: requests the server heard, RRQs on the wire,
    RRQs a fault dropped."""
    heard = [e for e in q.events(evidence, "tftp", "rrq") + q.events(evidence, "http", "get",
                                                                       "head")
             if e.time > since]
    names = {q.event_file(e) for e in heard}
    names |= {q.file_key(str(q.field(p, "file", ""))) for p in q.packets(evidence, "tftp", "rrq")
              if p.time > since}
    names |= {q.file_key(m["file"]) for e in q.events(evidence, "fault", "injected")
              if e.time > since and (m := _RRQ_FILE.match(e.request))}
    return names - {""}


def _loader(evidence: Evidence) -> str:
    return evidence.facts.loader or "the loader"


def _later_delivery(evidence: Evidence, name: str, since: float) -> bool:
    return any(q.base(q.event_file(e)) == q.base(name)
               for e in q.after(q.delivered(evidence), since))


def _ended_badly(evidence: Evidence, name: str, since: float) -> Event | None:
    """The transfer of ``name`` that began at ``since`` and did not complete (its event)."""
    return next((e for e in q.after(q.events(evidence, "tftp", "aborted", "error"), since)
                 if q.event_file(e) == name), None)


# -- missing and unanswered ----------------------------------------------------------------------

def next_file_missing(evidence: Evidence) -> Cause | None:
    """After the NBP, the file the boot stopped on was not found (TFTP error 1, HTTP 404)."""
    start = q.nbp_delivery(evidence)
    if start is None or q.reached_linux(evidence):
        return None
    done = [e for e in q.after(q.delivered(evidence), start.time) if e is not start]
    last_ok = max((e.time for e in done), default=start.time)
    streak = [e for e in q.refusals(evidence) if e.time > last_ok]
    if not streak:
        return None
    names = list(dict.fromkeys(q.event_file(e) for e in streak))
    if _requested(evidence, streak[-1].time) - set(names):
        return None  # the loader went on to another file: these were not where it stopped
    # Tries of one name in several directories: the first is the one beside the NBP.
    # A search through several names (pxelinux.cfg/01-<mac>, ..., default): the last.
    same = len({posixpath.basename(n) for n in names}) == 1
    culprit = next(e for e in (streak if same else reversed(streak))
                   if q.event_file(e) == (names[0] if same else names[-1]))
    name = q.event_file(culprit)
    if _client_closed(evidence, posixpath.basename(name)):
        return None  # it was there and read, then refused: tftp.ldlinux_mismatch's case
    where = q.searched_directory(evidence, culprit)
    server = "HTTP" if culprit.source == "http" else "TFTP"
    others = [n for n in names if n != name]
    also = (f"; also tried: {', '.join(others[:3])}" + (" ..." if len(others) > 3 else "")
            if others else "")
    elsewhere = [f for f in evidence.facts.data_files
                 if posixpath.basename(f) == posixpath.basename(name) and f != name]
    close = similar_names(name, evidence.facts.data_files)
    there = (f" (the data root has {elsewhere[0]}: a path prefix mismatch?)" if elsewhere
             else f" (the data root has {', '.join(close)}: {_mismatch(name, close[0])})"
             if close else "")
    fix = (f"put {posixpath.basename(name)} into {where}" + (
        f" from the same syslinux build as {q.event_file(start)}"
        if posixpath.basename(name) in LDLINUX else "")
           + f", or make {_loader(evidence)} ask for a file the server has")
    summary = (f"{name} was not found: the {server} server looked in {where} after "
               f"{q.event_file(start)} was sent{there}{also}")
    if elsewhere and _is_shim(q.event_file(start)):
        summary, fix = _shim_second_stage(q.event_file(start), name, elsewhere[0], server)
    return Cause(
        "file.not_found", evidence.timeline.failed_stage or "bootloader", summary,
        q.lines(evidence, [start, *streak[:2], culprit]),
        fix)


def _is_shim(nbp: str) -> bool:
    return posixpath.basename(nbp).lower().startswith("shim")


def _shim_second_stage(shim: str, name: str, there: str, server: str) -> tuple[str, str]:
    """What to say when shim asked for its second stage where it is not, and the data
    root has it elsewhere: shim fetches it from the directory of its own boot file (its
    DEFAULT_LOADER there), never from the root or another directory."""
    directory, found_in = posixpath.dirname(shim), posixpath.dirname(there)
    return (f"{name} was not found: shim ({shim}) asked the {server} server for its second "
            f"stage {posixpath.basename(name)} in {_folder(directory)}, the directory of its "
            f"own boot file; the data root has it only as {there}, in {_folder(found_in)}",
            f"put {posixpath.basename(name)} beside {shim} (copy {there} to {name}), or "
            f"make DHCP name a shim in {_folder(found_in)} as the boot file, beside it")


def _folder(directory: str) -> str:
    return f"{directory}/" if directory else "the top of the data root"


def _mismatch(name: str, found: str) -> str:
    if posixpath.basename(name).lower() == posixpath.basename(found).lower():
        return "file names on the server are case-sensitive"
    return "a typo?"


# -- delivered but unusable ----------------------------------------------------------------------

def ldlinux_mismatch(evidence: Evidence) -> Cause | None:
    """ldlinux.c32/.e64 arrived in full, and PXELINUX still could not load it."""
    loads = sorted([e for e in q.delivered(evidence) if q.base(q.event_file(e)) in LDLINUX]
                   + [e for name in LDLINUX for e in _client_closed(evidence, name)],
                   key=lambda e: e.time)
    if not loads or q.reached_linux(evidence) or q.hit(evidence, "kernel_fetch"):
        return None
    last = loads[-1]
    name = q.event_file(last)
    if _announced(evidence, name, last.time) > int(q.detail(last, "bytes", 0)) and (
            last.kind == "sent"):
        return None  # a file cut short (fewer bytes than its tsize), not another build
    says = "Failed to load ldlinux" in q.console(evidence)
    later = [n for n in _requested(evidence, last.time) if posixpath.basename(n) not in LDLINUX]
    if later or not (says or evidence.timeline.failed_stage in ("bootloader", "config")):
        return None  # ldlinux ran: it asked for its config
    nbp = q.nbp(evidence) or "pxelinux.0"
    return Cause(
        "tftp.ldlinux_mismatch", evidence.timeline.failed_stage or "config",
        f"{name} ({_how_much(last)}) reached the client but "
        f"{_loader(evidence) if evidence.facts.loader else 'PXELINUX'} failed to load it"
        + (" ('Failed to load ldlinux')" if says else " (no request followed it)")
        + f": it is from another syslinux build than {nbp}",
        q.lines(evidence, [q.nbp_delivery(evidence), last]),
        f"serve {name} from the same syslinux release as {nbp} (Debian: pxelinux.0 from "
        "package pxelinux and ldlinux.c32 from syslinux-common, both of one version)")


def _announced(evidence: Evidence, name: str, until: float) -> int:
    """The tsize the last OACK for ``name`` before ``until`` announced (0: none): the
    file's size as the server knew it, which a transfer cut short does not reach."""
    oacks = [str(q.detail(e, "options", {}).get("tsize", "")) for e in q.events(
        evidence, "tftp", "oack") if q.event_file(e) == name and e.time <= until]
    oacks += [str(q.field(p, "options", {}).get("tsize", "")) for p in q.packets(
        evidence, "tftp", "oack") if q.file_key(str(q.field(p, "file", ""))) == name
        and p.time <= until]
    sizes = [int(t) for t in oacks if t.isdigit()]
    return sizes[-1] if sizes else 0


def _client_closed(evidence: Evidence, basename: str) -> list[Event]:
    """Transfers of ``basename`` the client ended early with ERROR 0 ("file close"):
    PXELINUX reads the head of ldlinux.c32, finds it is not its own build, and stops."""
    return [e for e in q.events(evidence, "tftp", "aborted")
            if posixpath.basename(q.event_file(e)) == basename and "ERROR 0" in e.reason]


def _how_much(event: Event) -> str:
    if event.kind == "aborted":
        return (f"read {q.detail(event, 'bytes', '?')} of {q.detail(event, 'size', '?')} bytes, "
                "then closed by the client")
    return f"{q.detail(event, 'bytes', '?')} bytes, sent in full"


def blksize_above_mtu(evidence: Evidence) -> Cause | None:
    """A transfer stalled with a block size whose packets do not fit the link MTU."""
    mtu = evidence.facts.link_mtu
    for event in q.events(evidence, "tftp", "aborted", "error"):
        blksize = int(q.detail(event, "blksize", 0))
        overhead = OVERHEAD_IPV6 if ":" in event.client else OVERHEAD_IPV4
        name = q.event_file(event)
        if not blksize or blksize + overhead <= mtu or _later_delivery(evidence, name,
                                                                       event.time):
            continue
        block = int(q.detail(event, "blocks", 0)) + 1
        return _mtu_cause(evidence, event, name, blksize=blksize, overhead=overhead, block=block)
    for packet in q.packets(evidence, "tftp", "transfer"):
        blksize = int(q.field(packet, "blksize", 0))
        overhead = OVERHEAD_IPV6 if ":" in q.host(packet.dst) else OVERHEAD_IPV4
        name = q.file_key(str(q.field(packet, "file", "")))
        if (q.field(packet, "complete", True) or not blksize or blksize + overhead <= mtu
                or _later_delivery(evidence, name, packet.time)):
            continue
        # The first block the client never acknowledged; the record's own summary names
        # the last DATA block seen, the same one unless a window was in flight.
        acked = q.field(packet, "acked")
        block = int(acked) + 1 if acked is not None else int(q.field(packet, "last_block", 1))
        return _mtu_cause(evidence, packet, name, blksize=blksize, overhead=overhead,
                          block=block)
    return None


def _mtu_cause(evidence: Evidence, item: Event | PacketRecord, name: str, *, blksize: int,
               overhead: int, block: int) -> Cause:
    mtu = evidence.facts.link_mtu
    oack = [e for e in q.events(evidence, "tftp", "oack")
            if q.event_file(e) == name and e.time <= item.time][-1:]
    return Cause(
        "tftp.blksize_above_mtu", evidence.timeline.failed_stage or "bootloader",
        f"the TFTP transfer of {name} stalled at block {block}: blksize {blksize} makes "
        f"{blksize + overhead}-byte IP packets, more than the link MTU {mtu}",
        q.lines(evidence, [*oack, item]),
        f"cap the TFTP block size at {mtu - overhead} (the server's [tftp] max_blksize; "
        f"dnsmasq: --tftp-mtu or --tftp-no-blocksize), or raise the link MTU to "
        f"{blksize + overhead}")


# -- option negotiation ------------------------------------------------------------------------

def _oack_sent(event: Event) -> tuple[tuple[str, str], ...] | None:
    """The options of the OACK as sent (a faulty one's bytes), None if they do not parse."""
    raw = event.details.get("sent")
    if raw is None:
        return tuple((str(k), str(v)) for k, v in q.detail(event, "options", {}).items())
    try:
        packet = codec.decode(bytes.fromhex(str(raw)))
    except (ValueError, codec.TftpDecodeError):
        return None
    return packet.options if isinstance(packet, codec.OptionAck) else None


def oack_malformed(evidence: Evidence) -> Cause | None:
    """The client gave up right after an OACK the server corrupted (or a refusal instead)."""
    for oack in q.events(evidence, "tftp", "oack"):
        corrupt = q.detail(oack, "fault") == "corrupt" or (
            "sent" in oack.details and _oack_sent(oack) is None)
        if not corrupt:
            continue
        name = q.event_file(oack)
        ended = _ended_badly(evidence, name, oack.time)
        if ended is None or _later_delivery(evidence, name, oack.time):
            continue
        return Cause(
            "tftp.oack_malformed", evidence.timeline.failed_stage or "nbp",
            f"{q.host(oack.client)} {_gave_up(ended.kind == 'aborted')} the transfer of "
            f"{name} right after a malformed OACK (not NUL-terminated name/value pairs): "
            f"{ended.reason or ended.kind}",
            q.lines(evidence, [oack, ended]), _MALFORMED_FIX)
    for refusal in q.events(evidence, "tftp", "refused"):
        name = q.event_file(refusal)
        if "OACK" not in refusal.reason or _later_delivery(evidence, name, refusal.time):
            continue
        return Cause(
            "tftp.oack_malformed", evidence.timeline.failed_stage or "nbp",
            f"the server answered {q.host(refusal.client)}'s RRQ for {name} with "
            f"{refusal.answer} instead of an OACK ({refusal.reason}); the client gave up",
            q.lines(evidence, [refusal]),
            "acknowledge the options the client asked for (blksize, tsize, windowsize) with an "
            "OACK (RFC 2347) instead of refusing them; remove the OACK fault")
    return _wire_malformed(evidence)


def oack_unrequested_option(evidence: Evidence) -> Cause | None:
    """The OACK carried an option the client had not asked for, and the client gave up."""
    for oack in q.events(evidence, "tftp", "oack"):
        sent = _oack_sent(oack)
        asked = {str(k).lower() for k in q.detail(oack, "requested", {})}
        extra = [(k, v) for k, v in sent or () if k.lower() not in asked]
        name = q.event_file(oack)
        if not extra or _later_delivery(evidence, name, oack.time):
            continue
        ended = _ended_badly(evidence, name, oack.time)
        if ended is None and q.reached_linux(evidence):
            continue
        return _unrequested_cause(evidence, oack, name, extra=extra, asked=sorted(asked),
                                  ended=ended.reason if ended else "", items=[oack, ended])
    return _wire_unrequested(evidence)


def _wire_unrequested(evidence: Evidence) -> Cause | None:
    """The same from the capture alone: an OACK's options against its RRQ's."""
    rrqs = q.packets(evidence, "tftp", "rrq")
    for oack in q.packets(evidence, "tftp", "oack"):
        request = next((r for r in reversed(rrqs) if r.time <= oack.time
                        and q.host(r.src) == q.host(oack.dst)), None)
        if request is None:
            continue
        asked = {str(k).lower() for k in q.field(request, "options", {})}
        extra = [(str(k), str(v)) for k, v in q.field(oack, "options", {}).items()
                 if str(k).lower() not in asked]
        name = q.file_key(str(q.field(oack, "file", "") or q.field(request, "file", "")))
        if not extra or _later_delivery(evidence, name, oack.time):
            continue
        errors = _client_errors(evidence, oack)
        reason = (f"client sent ERROR {q.field(errors[0], 'code')} "
                  f"{q.field(errors[0], 'message', '')!r}" if errors else "")
        return _unrequested_cause(evidence, oack, name, extra=extra, asked=sorted(asked),
                                  ended=reason, items=[request, oack, *errors])
    return None


def _client_errors(evidence: Evidence, oack: PacketRecord) -> list[PacketRecord]:
    """The client's first TFTP ERROR after ``oack`` (a list of none or one)."""
    return [p for p in q.after(q.packets(evidence, "tftp", "error"), oack.time)
            if q.host(p.src) == q.host(oack.dst) and not q.from_server(evidence, p)][:1]


def _wire_malformed(evidence: Evidence) -> Cause | None:
    """An OACK the capture could not read as option pairs, and nothing delivered after it."""
    for oack in q.packets(evidence, "tftp", "oack"):
        name = q.file_key(str(q.field(oack, "file", "")))
        if not q.field(oack, "malformed", False) or _later_delivery(evidence, name, oack.time):
            continue
        errors = _client_errors(evidence, oack)
        said = (f"ERROR {q.field(errors[0], 'code')} {q.field(errors[0], 'message', '')!r}"
                if errors else "it never acknowledged the OACK")
        return Cause(
            "tftp.oack_malformed", evidence.timeline.failed_stage or "nbp",
            f"{q.host(oack.dst)} {_gave_up(bool(errors))} the transfer of {name or 'a file'} "
            f"right after a malformed OACK (not NUL-terminated name/value pairs): {said}",
            q.lines(evidence, [oack, *errors]), _MALFORMED_FIX)
    return None


_MALFORMED_FIX = ("send OACKs of NUL-terminated option/value pairs, only for options the "
                  "client asked for (RFC 2347); remove the OACK fault, or turn option "
                  "negotiation off")


def _gave_up(sent_error: bool) -> str:
    # OVMF queues its ERROR for a bad OACK and tears the session down at once; now and
    # then the ERROR never reaches the wire, and the client just goes silent.
    return "aborted" if sent_error else "went silent on"


def _unrequested_cause(evidence: Evidence, oack: Event | PacketRecord, name: str, *,
                       extra: list[tuple[str, str]], asked: list[str], ended: str,
                       items: list[Event | PacketRecord | None]) -> Cause:
    client = oack.client if isinstance(oack, Event) else q.host(oack.dst)
    added = ", ".join(f"{k}={v}" for k, v in extra)
    return Cause(
        "tftp.oack_unrequested_option", evidence.timeline.failed_stage or "nbp",
        f"the OACK for {name} carried {added}, which {q.host(client)} had not asked for "
        f"(it asked {', '.join(asked) or 'no options'})"
        + (f"; {ended}" if ended else "; the transfer never went on"),
        q.lines(evidence, items),
        f"acknowledge only options the client asked for (RFC 2347: an OACK must not add "
        f"{extra[0][0]}); remove the option from the server's OACK (or its OACK fault)")
