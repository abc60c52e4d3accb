"""Which ports a process group has bound, read from /proc (no ss, no netlink).

``/proc/<pid>/net/{udp,udp6,tcp,tcp6,raw6}`` lists the sockets of that
process's network namespace; the socket inodes behind ``/proc/<pid>/fd`` say
which of them the daemon itself holds, so a port taken by another process in
the lab does not count as the daemon's.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

TCP_LISTEN = "0A"  # include/net/tcp_states.h: TCP_LISTEN = 10
PROC = Path("/proc")


class Proto(StrEnum):
    """A socket table of /proc/net; for raw sockets the "port" is the IP protocol."""

    UDP = "udp"
    TCP = "tcp"
    RAW = "raw"


@dataclass(frozen=True, order=True)
class Port:
    """A port a daemon binds: ``67/udp``; ``58/raw`` is a raw ICMPv6 socket."""

    number: int
    proto: Proto = Proto.UDP

    def __str__(self) -> str:
        return f"{self.number}/{self.proto}"


def parse_proc_net(text: str, proto: Proto) -> dict[int, Port]:
    """Socket inode -> local port of a /proc/net/{udp,tcp,raw}[6] table.

    TCP sockets count only when listening; the header line is skipped.
    """
    found: dict[int, Port] = {}
    for line in text.splitlines()[1:]:
        fields = line.split()
        if len(fields) < 10:
            continue
        local, state, inode = fields[1], fields[3], int(fields[9])
        if proto is Proto.TCP and state != TCP_LISTEN:
            continue
        found[inode] = Port(int(local.rsplit(":", 1)[1], 16), proto)
    return found


def group_pids(pgid: int) -> list[int]:
    """The processes of process group ``pgid`` (a daemon and the children it forked)."""
    pids = []
    for entry in PROC.iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError, IndexError, ValueError):
            stat = (entry / "stat").read_text()
            # Field 5 is pgrp; comm (field 2) may hold spaces, so split after its ')'.
            if int(stat.rsplit(")", 1)[1].split()[2]) == pgid:
                pids.append(int(entry.name))
    return pids


def _socket_inodes(pid: int) -> set[int]:
    inodes = set()
    fd_dir = PROC / str(pid) / "fd"
    with contextlib.suppress(OSError):
        for fd in os.listdir(fd_dir):
            with contextlib.suppress(OSError):
                target = os.readlink(fd_dir / fd)
                if target.startswith("socket:["):
                    inodes.add(int(target[8:-1]))
    return inodes


def bound_ports(pgid: int) -> set[Port]:
    """The ports the processes of group ``pgid`` hold in their network namespace."""
    pids = group_pids(pgid)
    if not pids:
        return set()
    inodes = set().union(*(_socket_inodes(pid) for pid in pids))
    table: dict[int, Port] = {}
    for name, proto in (("udp", Proto.UDP), ("tcp", Proto.TCP), ("raw", Proto.RAW)):
        for suffix in ("", "6"):
            with contextlib.suppress(OSError):
                text = (PROC / str(pids[0]) / "net" / f"{name}{suffix}").read_text()
                table.update(parse_proc_net(text, proto))
    return {port for inode, port in table.items() if inode in inodes}
