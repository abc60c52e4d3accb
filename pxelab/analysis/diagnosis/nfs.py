"""Rules for the NFS root: no server, no such export, access refused, the wrong version.

Each reads witnesses that need no pxelab server: the capture (connection attempts to
port 2049 and, for NFSv3, 111 and 20048; the error replies of the RPC pass in
:mod:`pxelab.analysis.evidence.nfswire`), the guest's own line (``pxelab-init: FAILED
nfs: ...``, mount's ``mounting X on /newroot failed: <why>``) and ganesha's log. The lab
runs ganesha with NFS_V4 and EXPORT at INFO (:data:`pxelab.machine.nfs.LOG_BLOCK`): it
then says why it refused a client ("Access not allowed on Export_Id 1 /pxelab for
client ...", "Export /pxelab does not support AUTH_UNIX") and which minor version it
does not serve. It says nothing at that level of a path that is not exported or of an
NFS version it does not serve (only DEBUG / FULL_DEBUG, which log every request): those
stay with the capture; the patterns below still read them from a log at that level.

Only a boot whose root was never mounted (no ``nfs_root`` milestone) is looked at:
once it is, userspace looks up names that are not there (NFS4ERR_NOENT) as a matter of
course, and the console's "nfs root mounted" line can arrive after the first of them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from pxelab.analysis.diagnosis import query as q
from pxelab.analysis.diagnosis.asks import NFS_SERVICES, REFUSED, Stuck, stuck
from pxelab.analysis.diagnosis.model import Cause
from pxelab.analysis.evidence import Evidence, LogLine, PacketRecord
from pxelab.analysis.evidence.daemonlog import GANESHA

# pxelab-init's reachability check, and mount's error (busybox and util-linux wording);
# the reason is the text after the line's last ": " (nc's own "can't connect ...: why").
_CONNECT = re.compile(r"cannot connect to (?P<host>\S+) port (?P<port>\d+)(?P<rest>[^\r\n]*)")
_MOUNT = re.compile(r"mount(?:ing)?:? (?:mounting )?(?P<source>\S+:/\S*) on \S+ failed"
                    r"(?P<rest>[^\r\n]*)")
# Any other reason pxelab-init gives (busybox mount: "mount: permission denied (are you
# root?)" for EPERM/EACCES).
_FAILED = re.compile(r"FAILED nfs: (?P<rest>[^\r\n]*)")
_FRAMING = re.compile(r"['\"]\)$")  # the end of the console watcher's "(console: '...')"
_NFS_LINE = re.compile(r"[^\r\n]*nfs[^\r\n]*", re.IGNORECASE)
# strerror texts a failed NFS mount ends on, by the rule that explains them.
_WHY = {
    "no_server": ("Connection refused", "No route to host", "Host is unreachable",
                  "Network is unreachable", "timed out"),
    "export_not_found": ("No such file or directory",),
    "permission_denied": ("Permission denied", "Operation not permitted"),
    "version_mismatch": ("Protocol not supported", "Program version wrong",
                         "requested NFS version or transport protocol is not supported"),
}
# nfsstat4 / nfsstat3 / mountstat3 numbers (RFC 7530 section 13.1, RFC 1813).
NOENT = 2
WRONGSEC = 10016
DENIED = {1, 13, WRONGSEC}  # PERM, ACCESS, WRONGSEC
MINOR_VERS_MISMATCH = 10021
# ganesha's lines, by the rule they support (4.3 to 6.2: src/support/nfs_creds.c
# nfs4_export_check_access, exports.c export_check_security, nfs4_Compound.c, DEBUG
# nfs4_op_lookup; nfs_worker_thread.c nfs_rpc_novers at FULL_DEBUG).
GANESHA_DENIED = re.compile(r"(?:Access|auth|Non-reserved Port \d+ is|NFS4 over \S+) not "
                            r"allowed on Export_Id|does not support (?:AUTH_|RPCSEC_GSS|unknown)"
                            r"|NFS4ERR_ACCESS Hiding Export_Id")
GANESHA_VERSION = re.compile(r"Unsupported minor version|Bad Minor Version|NFS4 not allowed "
                             r"on Export_Id|Invalid protocol Version \d+ for Program number "
                             r"100003")
GANESHA_NOENT = re.compile(r"Status of OP_LOOKUP in position \d+ = NFS4ERR_NOENT")
GANESHA_FATAL = re.compile(r"^\S+(?: \S+)* FATAL: ")
FIX_EXPORT = ("mount the path the server exports (the kernel command line's nfsroot=), or "
              "export the path the guest asks for")


@dataclass(frozen=True)
class GuestSays:
    """The guest's NFS failure line and what it names."""

    line: str
    why: str
    source: str = ""  # "192.0.2.1:/pxelab", from mount's line
    host: str = ""  # from the reachability check


def guest_says(evidence: Evidence) -> GuestSays | None:
    """The guest's last NFS failure line (console failure text or tail), if any."""
    text = q.console(evidence)
    for pattern in (_MOUNT, _CONNECT, _FAILED):
        found = list(pattern.finditer(text))
        if found:
            match = found[-1]
            line = next((m.group(0) for m in _NFS_LINE.finditer(text)
                         if m.start() <= match.start() < m.end()), match.group(0))
            groups = match.groupdict()
            rest = _FRAMING.sub("", groups["rest"])
            why = (rest.rsplit("mount: ", 1)[-1] if "mount: " in rest
                   else rest.rsplit(": ", 1)[-1]).strip()
            return GuestSays(_clean(line), why, groups.get("source") or "",
                             groups.get("host") or "")
    return None


def _clean(line: str) -> str:
    """The line without the console watcher's framing ("... (console: '...')")."""
    found = re.search(r"\(console: ['\"](?P<line>.*)['\"]\)$", line)
    return (found["line"] if found else line).strip()


def _says(evidence: Evidence, rule: str) -> GuestSays | None:
    said = None if q.hit(evidence, "nfs_root") else guest_says(evidence)
    if said is None or not any(w.lower() in said.why.lower() for w in _WHY[rule]):
        return None
    return said


def errors(evidence: Evidence) -> list[PacketRecord]:
    """The NFS error replies of a boot whose root was never mounted (none otherwise)."""
    if q.hit(evidence, "nfs_root"):
        return []
    return q.packets(evidence, "nfs", "error")


def _stage(evidence: Evidence) -> str:
    return evidence.timeline.failed_stage or "nfs_root"


def _less(evidence: Evidence, said: GuestSays | None, wire: list[PacketRecord]) -> str:
    """What the cause rests on, when it lacks a witness."""
    if not wire and said is not None:
        return " (from the guest's line alone: the capture shows no NFS exchange)"
    if wire and said is None:
        return " (from the capture alone: the guest printed no NFS error line)"
    return ""


def _export(evidence: Evidence) -> str:
    exported = evidence.facts.nfs_export
    return f"; the lab's server exports {exported}" if exported else ""


def _quote(said: GuestSays | None) -> str:
    return f" (the guest: {said.why!r})" if said else ""


def _path(source: str) -> str:
    """The path of a mount source ("192.0.2.1:/pxelab", "[2001:db8::1]:/pxelab")."""
    at = source.find(":/")
    return source[at + 1:].rstrip("/") or "/" if at >= 0 else ""


def _asked(said: GuestSays | None, wire: list[PacketRecord]) -> str:
    """The path the guest mounts: its line's, else the LOOKUPs of the refused call."""
    if said is not None and said.source:
        return _path(said.source)
    if wire:
        return "/" + "/".join(str(n) for n in q.field(wire[0], "lookups", []))
    return ""


def _hidden(evidence: Evidence, said: GuestSays | None, wire: list[PacketRecord]) -> bool:
    """NOENT for the very path the lab exports: the export is there, not for this client.

    ganesha (4.3, seen) leaves an export out of a client's pseudo file system when its
    Access_Type or CLIENT list gives that client no access: LOOKUP answers NOENT.
    """
    exported = _path(evidence.facts.nfs_export)
    return bool(exported) and _asked(said, wire) == exported


def _noent(evidence: Evidence) -> tuple[GuestSays | None, list[PacketRecord]]:
    return (_says(evidence, "export_not_found"),
            [p for p in errors(evidence) if q.field(p, "status") == NOENT])


def logged(evidence: Evidence, pattern: re.Pattern[str]) -> list[LogLine]:
    """ganesha's lines matching ``pattern`` of a boot whose root was never mounted."""
    if q.hit(evidence, "nfs_root"):
        return []
    return q.daemon_lines(evidence, GANESHA, pattern)


def _ganesha(lines: list[LogLine]) -> str:
    """What ganesha said, for a summary: its first line's message."""
    return f"ganesha: {lines[0].text.partition(': ')[2]!r}" if lines else ""


# -- the rules ---------------------------------------------------------------------------------

def no_server(evidence: Evidence) -> Cause | None:
    """Nothing answered on the NFS port: refused, unanswered, or the host never found."""
    if q.hit(evidence, "nfs_root"):
        return None
    said = _says(evidence, "no_server")
    found = unreached(evidence, said)
    if not found and said is None:
        return None
    wire = [a.item for s in found for a in s.asks]
    if found:
        last = found[-1]
        target = last.key.split(" ", 1)[1]
        if last.outcome == REFUSED:
            what = f"nothing listens on {target}: {q.plural(len(last.asks), 'connection')} refused"
        elif last.key.startswith(("arp", "ns")):
            what = (f"no host answers for {target} ({last.label} sent "
                    f"{q.plural(last.sends, 'time')}): the server's address is not on the "
                    "guest's link")
        else:
            what = (f"{target} never answered ({q.plural(last.sends, 'SYN')} in "
                    f"{q.plural(len(last.asks), 'attempt')}, none answered)")
        if last.first.service in ("portmap", "mount"):
            what += (" (an NFSv3 client asks the port mapper and MOUNT first; a server that "
                     "offers NFSv4 only has neither)")
    else:
        assert said is not None
        what = f"the guest could not connect to {said.host or 'the NFS server'} ({said.why})"
    died = logged(evidence, GANESHA_FATAL)  # a server that stopped during the boot
    return Cause(
        "nfs.no_server", _stage(evidence),
        f"no NFS server: {what}{_export(evidence)}{_quote(said)}{_less(evidence, said, wire)}"
        + (f"; {_ganesha(died)}" if died else ""),
        q.lines(evidence, [*wire[:2], *wire[-1:], *died[:1]]),
        "start the NFS server (ganesha.nfsd, nfs-kernel-server) on the address in the "
        "kernel command line's nfsroot=, or point nfsroot= at the server's address")


def unreached(evidence: Evidence, said: GuestSays | None = None) -> list[Stuck]:
    """The requests that found no NFS server: connections to its ports refused or
    unanswered, ARP/NS for its address unanswered (its root never mounted)."""
    if q.hit(evidence, "nfs_root"):
        return []
    said = said or guest_says(evidence)
    return [s for s in stuck(evidence) if (s.outcome == REFUSED or s.sends >= 2) and (
        s.first.service in NFS_SERVICES or (s.key.split(" ")[0] in ("arp", "ns") and _nfs_host(
            evidence, s.key.split(" ", 1)[1], said)))]


def _nfs_host(evidence: Evidence, host: str, said: GuestSays | None) -> bool:
    """Whether ``host`` is the NFS server's (the guest's line, the export, the stage)."""
    if said is not None and said.host:
        return q.host(said.host) == host
    exported = evidence.facts.nfs_export
    if exported and q.host(exported.rsplit(":", 1)[0]) == host:
        return True
    # Without the guest's line: the stage it failed in says whom it was looking for.
    return evidence.timeline.failed_stage == "nfs_root"


def export_not_found(evidence: Evidence) -> Cause | None:
    """The server answered, and has no export at the path the guest mounts."""
    said, wire = _noent(evidence)
    log = logged(evidence, GANESHA_NOENT)  # only when ganesha logs NFS_V4 at DEBUG
    if not wire and said is None and not log:
        return None
    # ganesha answers NOENT for an export it hides from a client it refuses, and says why.
    if _hidden(evidence, said, wire) or logged(evidence, GANESHA_DENIED) \
            or logged(evidence, GANESHA_VERSION):
        return None
    asked = said.source if said and said.source else _asked(said, wire)
    looked = f": {wire[0].summary.split(' answered ', 1)[-1]}" if wire else ""
    return Cause(
        "nfs.export_not_found", _stage(evidence),
        f"the NFS server has no export {asked or 'at the path the guest mounts'}{looked}"
        f"{_export(evidence)}{_quote(said)}{_less(evidence, said, wire)}"
        + (f"; {_ganesha(log)}" if log else ""),
        q.lines(evidence, [*wire[:2], *log[:1]]), FIX_EXPORT)


def permission_denied(evidence: Evidence) -> Cause | None:
    """The server refused the guest access to the export (or its security flavour), or
    hid from it the export the lab serves."""
    said = _says(evidence, "permission_denied")
    wire = [p for p in errors(evidence) if q.field(p, "status") in DENIED
            or (q.field(p, "reject_stat") == 1)]
    log = logged(evidence, GANESHA_DENIED)
    hidden = ""
    if not wire and said is None:
        said, wire = _noent(evidence)
        if not log:
            if (not wire and said is None) or not _hidden(evidence, said, wire) \
                    or logged(evidence, GANESHA_VERSION):
                return None
            hidden = (f"the lab exports {evidence.facts.nfs_export}, the very path the guest "
                      "mounts, and the server answers that it is not there: it hides the "
                      "export from this client (ganesha leaves an export a client may not "
                      "access out of its pseudo file system)")
    what = _logged_denial(log, wire) if log else hidden or (
        _denial(wire[0]) if wire else said.why if said else "")
    return Cause(
        "nfs.permission_denied", _stage(evidence),
        f"the NFS server refused the guest's mount: {what}"
        f"{_export(evidence) if not hidden else ''}{_quote(said)}"
        f"{_less(evidence, said, wire)}",
        q.lines(evidence, [*wire[:2], *log[:2]]),
        "let the guest's address mount the export (ganesha: the EXPORT's Access_Type and "
        "CLIENT Clients; /etc/exports for the kernel server) with the security flavour it "
        "uses (sec=sys needs ganesha's SecType = sys, or sec=sys in /etc/exports)")


def _logged_denial(log: list[LogLine], wire: list[PacketRecord]) -> str:
    """ganesha's reason, and what it answered the guest."""
    if not wire:
        return _ganesha(log)
    if q.field(wire[0], "status") == NOENT:
        return (f"{_ganesha(log)} (it answers NFS4ERR_NOENT: ganesha leaves an export a "
                "client may not access out of its pseudo file system)")
    return f"{_ganesha(log)} ({_denial(wire[0])})"


def _denial(error: PacketRecord) -> str:
    """What a refusal reply means, for people."""
    name = str(q.field(error, "error"))
    status = q.field(error, "status")
    if status == WRONGSEC:
        return (f"the export wants another security flavour than the guest's ({name}: "
                "e.g. krb5 against sec=sys)")
    if q.field(error, "reject_stat") == 1:
        return f"the server rejected the guest's credentials ({name})"
    return f"access denied ({name})"


def version_mismatch(evidence: Evidence) -> Cause | None:
    """The server does not speak the NFS version (or minor version) the guest asks for."""
    said = _says(evidence, "version_mismatch")
    wire = [p for p in errors(evidence)
            if q.field(p, "status") == MINOR_VERS_MISMATCH or q.field(p, "mismatch")]
    log = logged(evidence, GANESHA_VERSION)
    if not wire and said is None and not log:
        return None
    what = ""
    if wire:
        first = wire[0]
        version = q.field(first, "version")
        minor = q.field(first, "minorversion")
        asked = f"NFSv{version}" + (f".{minor}" if minor is not None else "") if version else ""
        what = f"{asked + ' ' if asked else ''}refused: {q.field(first, 'error')}"
    elif said is not None:
        what = said.why
    if log:
        what = _ganesha(log) + (f" ({what})" if what else "")
    return Cause(
        "nfs.version_mismatch", _stage(evidence),
        f"the NFS server does not speak the version the guest asks for: {what}"
        f"{_export(evidence)}{_quote(said)}{_less(evidence, said, wire)}",
        q.lines(evidence, [*wire[:2], *log[:1]]),
        "mount with a version the server offers (nfsvers=/vers= in the mount options), or "
        "turn that version on in the server (ganesha: NFS_CORE_PARAM Protocols, NFSV4 "
        "Minor_Versions)")

