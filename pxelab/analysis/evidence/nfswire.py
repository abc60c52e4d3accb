"""ONC RPC on the NFS ports of a capture: the calls and the replies that refused them.

A pure codec (bytes in, values out) plus :class:`RpcStream`, which follows one
direction of one TCP connection so that only segments that begin a record are read.

- Record marking over TCP (RFC 5531 section 11): a 4-byte mark, last-fragment bit |
  length, before each fragment. A READ reply spans many segments; the next record
  starts 4 + length bytes after the mark, so a segment is read only at that sequence
  number (a retransmission or the middle of a record is skipped).
- Call (RFC 5531 section 9): xid, msg_type CALL(0), rpcvers 2, prog, vers, proc,
  cred and verf (flavor, opaque body).
- Reply: xid, msg_type REPLY(1), reply_stat: MSG_ACCEPTED(0) with verf and accept_stat
  (SUCCESS 0, PROG_UNAVAIL 1, PROG_MISMATCH 2 with low/high, PROC_UNAVAIL 3,
  GARBAGE_ARGS 4, SYSTEM_ERR 5), or MSG_DENIED(1) with reject_stat (RPC_MISMATCH 0,
  AUTH_ERROR 1 with auth_stat).
- The results of NFSv4 COMPOUND (RFC 7530 section 16.2, RFC 8881 section 18.1.3),
  of every NFSv3 procedure but NULL (RFC 1813) and of MOUNTv3 MNT (RFC 1813 appendix
  I) begin with a status word: nfsstat4 / nfsstat3 / mountstat3, 0 for OK, sharing
  the numbers read here (PERM 1, NOENT 2, ACCESS 13).
- COMPOUND4args: tag, minorversion, argarray of (op, args); the ops whose arguments
  are skipped here are those a mount sends before its LOOKUPs (PUTROOTFH, LOOKUP,
  GETFH, GETATTR, SEQUENCE, PUTFH, ACCESS, SECINFO_NO_NAME); at any other the list stops.
"""

from __future__ import annotations

import struct
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

from pxelab.analysis.evidence.model import PacketRecord
from pxelab.analysis.evidence.tcpwire import where

LAST_FRAGMENT = 0x80000000
CALL, REPLY = 0, 1
NFS_PROGRAM, MOUNT_PROGRAM, PMAP_PROGRAM = 100003, 100005, 100000
PROC_NULL, NFS4_COMPOUND = 0, 1
MAX_RECORD = 1 << 24  # larger marks are not record marks (the middle of a record)

ACCEPT_STATS = {1: "PROG_UNAVAIL", 2: "PROG_MISMATCH", 3: "PROC_UNAVAIL",
                4: "GARBAGE_ARGS", 5: "SYSTEM_ERR"}
REJECT_STATS = {0: "RPC_MISMATCH", 1: "AUTH_ERROR"}
# nfsstat4 (RFC 7530 section 13.1, RFC 8881 section 15.1); the low numbers are nfsstat3's
# and mountstat3's too.
NFS_STATUS = {1: "NFS4ERR_PERM", 2: "NFS4ERR_NOENT", 5: "NFS4ERR_IO", 13: "NFS4ERR_ACCESS",
              20: "NFS4ERR_NOTDIR", 70: "NFS4ERR_STALE", 10001: "NFS4ERR_BADHANDLE",
              10004: "NFS4ERR_NOTSUPP", 10008: "NFS4ERR_DELAY",
              10013: "NFS4ERR_GRACE", 10016: "NFS4ERR_WRONGSEC",
              10021: "NFS4ERR_MINOR_VERS_MISMATCH", 10022: "NFS4ERR_RESOURCE",
              10029: "NFS4ERR_SYMLINK"}
NFS3_STATUS = {1: "NFS3ERR_PERM", 2: "NFS3ERR_NOENT", 13: "NFS3ERR_ACCES",
               70: "NFS3ERR_STALE", 10004: "NFS3ERR_NOTSUPP"}
MOUNT_STATUS = {1: "MNT3ERR_PERM", 2: "MNT3ERR_NOENT", 13: "MNT3ERR_ACCES",
                20: "MNT3ERR_NOTDIR", 10004: "MNT3ERR_NOTSUPP"}

# NFSv4 operations (RFC 7530 section 16, RFC 8881 section 18) and the bytes of their
# arguments: a number, "opaque" (length + bytes), "bitmap" (count + words); others stop.
OP_NAMES = {3: "ACCESS", 9: "GETATTR", 10: "GETFH", 15: "LOOKUP", 22: "PUTFH",
            24: "PUTROOTFH", 35: "SETCLIENTID", 36: "SETCLIENTID_CONFIRM", 42: "EXCHANGE_ID",
            43: "CREATE_SESSION", 52: "SECINFO_NO_NAME", 53: "SEQUENCE"}
_OP_ARGS: dict[int, int | str] = {3: 4, 9: "bitmap", 10: 0, 15: "opaque", 22: "opaque",
                                  24: 0, 52: 4, 53: 32}
OP_LOOKUP = 15


@dataclass(frozen=True)
class Call:
    """What a call asked: program, version, procedure; for COMPOUND its ops and names."""

    xid: int
    program: int
    version: int
    procedure: int
    minorversion: int | None = None
    ops: tuple[str, ...] = ()
    lookups: tuple[str, ...] = ()  # the components LOOKUP asked for, in order


@dataclass(frozen=True)
class Reply:
    """A reply: accepted or not, and the first word of its results (a status)."""

    xid: int
    accepted: bool
    accept_stat: int = 0  # with accepted
    reject_stat: int = 0  # without
    mismatch: tuple[int, int] | None = None  # PROG_/RPC_MISMATCH: (low, high)
    auth_stat: int | None = None
    result: bytes = b""  # the procedure's results (SUCCESS)

    def status(self) -> int | None:
        """The results' leading status word (None: no results)."""
        return struct.unpack(">I", self.result[:4])[0] if len(self.result) >= 4 else None


def _words(data: bytes, offset: int, count: int) -> tuple[int, ...]:
    end = offset + 4 * count
    if len(data) < end:
        raise ValueError("RPC message ends early")
    return struct.unpack(f">{count}I", data[offset:end])


def _opaque_end(data: bytes, offset: int) -> int:
    (length,) = _words(data, offset, 1)
    return offset + 4 + (length + 3) // 4 * 4


def parse_message(body: bytes) -> Call | Reply:
    """One RPC message (a record without its mark); ValueError if it is none."""
    xid, kind = _words(body, 0, 2)
    if kind == CALL:
        return _call(xid, body)
    if kind != REPLY:
        raise ValueError(f"msg_type {kind} is neither CALL nor REPLY")
    (reply_stat,) = _words(body, 8, 1)
    if reply_stat == 1:  # MSG_DENIED
        (reject,) = _words(body, 12, 1)
        if reject == 0:
            return Reply(xid, False, reject_stat=0, mismatch=_pair(body, 16))
        return Reply(xid, False, reject_stat=reject, auth_stat=_words(body, 16, 1)[0])
    offset = _opaque_end(body, 16)  # past the verifier's flavor and body
    (accept,) = _words(body, offset, 1)
    if accept == 2:
        return Reply(xid, True, accept_stat=2, mismatch=_pair(body, offset + 4))
    return Reply(xid, True, accept_stat=accept, result=body[offset + 4:])


def _pair(body: bytes, offset: int) -> tuple[int, int]:
    low, high = _words(body, offset, 2)
    return low, high


def _call(xid: int, body: bytes) -> Call:
    rpcvers, program, version, procedure = _words(body, 8, 4)
    if rpcvers != 2:
        raise ValueError(f"rpcvers {rpcvers}")
    offset = _opaque_end(body, 28)  # cred: flavor at 24, body at 28
    offset = _opaque_end(body, offset + 4)  # verf
    if (program, version, procedure) != (NFS_PROGRAM, 4, NFS4_COMPOUND):
        return Call(xid, program, version, procedure)
    args = body[offset:]
    try:
        offset = _opaque_end(args, 0)  # tag
        minor, count = _words(args, offset, 2)
    except ValueError:
        return Call(xid, program, version, procedure)
    ops, lookups = _ops(args, offset + 8, min(count, 64))
    return Call(xid, program, version, procedure, minor, ops, lookups)


def _ops(args: bytes, offset: int, count: int) -> tuple[tuple[str, ...], tuple[str, ...]]:
    ops: list[str] = []
    lookups: list[str] = []
    for _ in range(count):
        try:
            (op,) = _words(args, offset, 1)
        except ValueError:
            break
        ops.append(OP_NAMES.get(op, f"op{op}"))
        size = _OP_ARGS.get(op)
        if size is None:
            break  # arguments this parser does not know: the list stops here
        offset += 4
        if op == OP_LOOKUP:
            end = _opaque_end(args, offset) if len(args) >= offset + 4 else offset
            length = _words(args, offset, 1)[0] if end > offset else 0
            lookups.append(args[offset + 4:offset + 4 + length].decode("utf-8", "replace"))
            offset = end
        elif size == "opaque":
            offset = _opaque_end(args, offset)
        elif size == "bitmap":
            offset += 4 + 4 * _words(args, offset, 1)[0]
        else:
            offset += int(size)
    return tuple(ops), tuple(lookups)


def status_name(call: Call | None, status: int) -> str:
    """The name of a results status for the call's program ("NFS4ERR_NOENT")."""
    if call is not None and call.program == MOUNT_PROGRAM:
        return MOUNT_STATUS.get(status, f"mountstat3 {status}")
    if call is not None and call.program == NFS_PROGRAM and call.version == 3:
        return NFS3_STATUS.get(status, f"nfsstat3 {status}")
    return NFS_STATUS.get(status, f"nfsstat4 {status}")


def has_status(call: Call | None) -> bool:
    """Whether the call's results begin with a status word (see the module's notes)."""
    if call is None or call.procedure == PROC_NULL:
        return False
    if call.program == NFS_PROGRAM:
        return True
    return call.program == MOUNT_PROGRAM and call.procedure == 1  # MNT


class RpcStream:
    """One direction of one TCP connection: the RPC records that start in its segments."""

    def __init__(self) -> None:
        self.next_seq: int | None = None  # where the next record mark is

    def segment(self, seq: int, payload: bytes) -> list[bytes]:
        """The whole messages (record bodies) that start in this segment, maybe cut."""
        if not payload:
            return []
        if self.next_seq is not None and seq != self.next_seq:
            # Ahead: a lost segment; behind: a retransmission or a record's middle.
            if 0 < (seq - self.next_seq) & 0xFFFFFFFF < 0x80000000:
                self.next_seq = None  # lost track: look for a mark again
            else:
                return []
        found: list[bytes] = []
        offset = 0
        while offset + 4 <= len(payload):
            (mark,) = struct.unpack(">I", payload[offset:offset + 4])
            length = mark & ~LAST_FRAGMENT
            if length > MAX_RECORD or length < 8:
                self.next_seq = None
                return found
            found.append(payload[offset + 4:offset + 4 + length])
            offset += 4 + length
        self.next_seq = (seq + offset) & 0xFFFFFFFF
        return found


# A boot's userspace looks up many names that are not there (NFS4ERR_NOENT is routine
# after the mount); the evidence keeps the first error replies, where a mount fails.
MAX_ERRORS = 40
_PROGRAMS = {NFS_PROGRAM: "NFS", MOUNT_PROGRAM: "MOUNT", PMAP_PROGRAM: "PORTMAP"}

Endpoint = tuple[bytes, int]


class RpcTracker:
    """The RPC calls and error replies on the connections to the NFS ports.

    One record (proto "nfs", kind "error") per refused or failed reply, at most
    :data:`MAX_ERRORS`: fields xid, program, version, procedure, minorversion, ops,
    lookups, accept_stat, reject_stat, mismatch, status, status_name, error (the
    text: "NFS4ERR_NOENT", "PROG_MISMATCH 4..4", ...).
    """

    def __init__(self, ports: Collection[int]) -> None:
        self.ports = frozenset(ports)
        self._streams: dict[tuple[Endpoint, Endpoint], RpcStream] = {}
        self._calls: dict[tuple[Endpoint, Endpoint, int], Call] = {}
        self._records: list[PacketRecord] = []
        self.dropped = 0  # error replies past MAX_ERRORS

    def segment(self, time: float, src: Endpoint, dst: Endpoint, *, seq: int, payload: bytes,
                client: str) -> None:
        stream = self._streams.setdefault((src, dst), RpcStream())
        for body in stream.segment(seq, payload):
            try:
                message = parse_message(body)
            except ValueError:
                continue
            if isinstance(message, Call):
                if len(self._calls) < 4096:
                    self._calls[(src, dst, message.xid)] = message
            else:
                call = self._calls.pop((dst, src, message.xid), None)
                self._reply(time, (src, dst), message, call, client)

    def _reply(self, time: float, ends: tuple[Endpoint, Endpoint], reply: Reply,
               call: Call | None, client: str) -> None:
        src, dst = ends
        error = _error(reply, call)
        if not error:
            return
        if len(self._records) >= MAX_ERRORS:
            self.dropped += 1
            return
        fields: dict[str, Any] = {
            "xid": reply.xid, "program": call.program if call else None,
            "version": call.version if call else None,
            "procedure": call.procedure if call else None,
            "minorversion": call.minorversion if call else None,
            "ops": list(call.ops) if call else [], "lookups": list(call.lookups) if call else [],
            "accept_stat": reply.accept_stat if reply.accepted else None,
            "reject_stat": None if reply.accepted else reply.reject_stat,
            "mismatch": list(reply.mismatch) if reply.mismatch else None,
            "status": reply.status() if reply.accepted and not reply.accept_stat else None,
            "status_name": "", "error": error, "port": src[1]}
        if fields["status"] is not None:
            fields["status_name"] = error
        self._records.append(PacketRecord(
            time, "nfs", "error", where(*src), where(*dst),
            f"{where(*src)} answered {_asked(call)}: {error}", client, fields))

    def records(self) -> list[PacketRecord]:
        return list(self._records)


def _error(reply: Reply, call: Call | None) -> str:
    """What went wrong in ``reply`` ("" if nothing)."""
    if not reply.accepted:
        name = REJECT_STATS.get(reply.reject_stat, f"reject_stat {reply.reject_stat}")
        if reply.mismatch:
            return f"{name} {reply.mismatch[0]}..{reply.mismatch[1]}"
        return f"{name} (auth_stat {reply.auth_stat})"
    if reply.accept_stat:
        name = ACCEPT_STATS.get(reply.accept_stat, f"accept_stat {reply.accept_stat}")
        if reply.mismatch:
            return f"{name} (the server has versions {reply.mismatch[0]}..{reply.mismatch[1]})"
        return name
    status = reply.status()
    if not has_status(call) or not status:
        return ""
    return status_name(call, status)


def _asked(call: Call | None) -> str:
    """The call a reply answers, as a person reads it."""
    if call is None:
        return "reply to an unseen call"
    program = _PROGRAMS.get(call.program, f"program {call.program}")
    if call.minorversion is None:
        return f"{program}v{call.version} procedure {call.procedure}"
    names = iter(call.lookups)
    ops = " ".join(f"LOOKUP {next(names, '?')}" if op == "LOOKUP" else op for op in call.ops)
    return f"NFSv4.{call.minorversion} COMPOUND {ops}"
