"""The lab's NFS server: nfs-ganesha serving one directory over NFSv4/TCP inside a namespace.

There is no kernel NFS server here, and ganesha is a userspace one, so each lab runs
its own ``ganesha.nfsd`` in the foreground inside the lab's network namespace. What
it would otherwise share with other instances on the host is moved into ``workdir``:
config, log, pid file, NFSv4 recovery directory (default /var/lib/nfs/ganesha),
Kerberos credential cache (default /var/run/ganesha) and the libblkid cache
(BLKID_FILE, default /run/blkid/blkid.tab). NFSv3, NLM, RQUOTA and UDP are off, so
nothing needs rpcbind; ganesha 4.3 still unregisters program 100003 and registers
NFSv4 with the portmapper, first through /run/rpcbind.sock (a path: NOT namespaced),
then at [::1]:111 inside the namespace (refused: "Cannot register NFS V4 on TCP",
harmless). On a host that runs rpcbind, every lab's ganesha therefore rewrites the
host's NFS registration; NFSv4 clients never consult it, so labs do not disturb each
other, but a host kernel nfsd serving NFSv3 would lose its rpcbind entry. D-Bus is
absent on lab hosts (CRIT lines in the log, harmless); a unique Dbus_Name_Prefix
keeps instances apart where it is present.

Readiness, probed from a thread inside the namespace: the process is alive, an NFS
NULL call (RFC 5531, program 100003 version 4) is answered, and an NFSv4.0 COMPOUND
PUTROOTFH + LOOKUP of the pseudo path returns NFS4_OK. The last step matters:
ganesha keeps running without the export when the EXPORT block is rejected (it only
logs "CONFIG :CRIT" lines), and a NULL call alone would call that ready.
"""

from __future__ import annotations

import functools
import itertools
import logging
import os
import re
import shutil
import socket
import struct
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO, TypeVar

from pxelab.core.errors import ConfigError, HostCapabilityError, NfsError
from pxelab.core.netns import exec_prefix, thread_in_namespace
from pxelab.core.process import terminate
from pxelab.core.resource import Resource

NFS_PORT = 2049
NFS_PROGRAM = 100003
NFS_VERSION = 4
GANESHA = "ganesha.nfsd"
# NFSv3 (for klibc nfsmount, initramfs-tools' NFS root): the MOUNT service on a fixed
# port, named to clients by pxelab's own portmapper (see Portmapper).
MOUNT_PROGRAM = 100005
MOUNT_VERSION = 3
MOUNT_PORT = 20048
PMAP_PROGRAM = 100000
PMAP_VERSION = 2
PMAP_PORT = 111
# ganesha 6.0 on calls prctl(PR_SET_IO_FLUSHER) at start and stops when it fails
# with EPERM (no CAP_SYS_RESOURCE: containers, sandboxes); 6.1 added this
# NFS_CORE_PARAM key to go on instead. Older releases refuse the unknown key
# ("Unknown parameter", fatal in 4.3), so it is written only for those that know it.
IO_FLUSHER_KEY = "Allow_Set_Io_Flusher_Fail"
IO_FLUSHER_KEY_SINCE = (6, 1)
# What ganesha logs about a client it refuses. At its default level (EVENT) it writes
# nothing when a client may not access an export, uses the wrong security flavour or
# an NFSv4 minor version it does not serve: those lines are INFO. EXPORT and NFS_V4
# (component names 4.3 to 6.2 share; both parse the same LOG block) at INFO add to a
# healthy boot's log only two "Export N pseudo (...)" lines and the echo of the levels
# (legacy_pxe_ipv4, measured: 9.1 KB before, 11.1 KB with this block and its longer
# stamps). DEBUG would also log a LOOKUP of a path that does not exist, but it logs
# every operation (75 KB more for the same boot, growing with the guest's I/O), and a
# wrong NFS version is only logged at DISPATCH FULL_DEBUG: those two are left to the
# capture. syslog_usec stamps carry microseconds and the UTC offset (the default has
# whole seconds of local time), so the lines merge into the boot's timeline; a Format
# block turns file name and line number on unless it says otherwise.
LOG_BLOCK = """\
LOG {
    Components {
        NFS_V4 = INFO;
        EXPORT = INFO;
    }
    Format {
        Date_Format = syslog_usec;
        Time_Format = syslog_usec;
        File_Name = false;
        Line_Num = false;
    }
}
"""
# Lines every lab's ganesha 4.3 writes at start and that mean nothing for a boot (no
# D-Bus, no rpcbind in the namespace, no Kerberos, no RADOS; see the module docstring),
# its echo of the levels set above and the export lines it writes at start (what it
# exports is in the evidence's facts): matched against the function and the message.
HARMLESS_LOG_LINES = re.compile(
    r"gsh_dbus|DBUS|Cannot register NFS V4 on TCP|Missing RADOS URLs|keytab|default realm|"
    r"gssd_refresh_krb5_machine_credential|SetComponentLogLevel|ReadExports")
_RELEASE = re.compile(r"Release = V(?P<major>\d+)(?:\.(?P<minor>\d+))?")

_T = TypeVar("_T")
_instances = itertools.count(1)

# ---------------------------------------------------------------------------------------
# ONC RPC over TCP (RFC 5531) and two NFSv4.0 requests (RFC 7530/7531): a pure codec.
# Call: xid, msg_type=CALL(0), rpcvers=2, prog, vers, proc, cred, verf  (RFC 5531 s. 9)
# Reply: xid, msg_type=REPLY(1), reply_stat=MSG_ACCEPTED(0), verf, accept_stat=SUCCESS(0)
# Over TCP each record is prefixed by a 4-byte mark: last-fragment bit | length (s. 11).
# ---------------------------------------------------------------------------------------
_LAST_FRAGMENT = 0x80000000
AUTH_NONE = 0
AUTH_SYS = 1
PROC_NULL = 0
PROC_COMPOUND = 1
OP_LOOKUP = 15
OP_PUTROOTFH = 24
NFS4_OK = 0
NFS4ERR_DELAY = 10008
NFS4ERR_GRACE = 10013


def _xdr_opaque(data: bytes) -> bytes:
    """Variable-length opaque/string: length, bytes, zero padding to 4 (RFC 4506 s. 4.10)."""
    return struct.pack(">I", len(data)) + data + b"\0" * (-len(data) % 4)


def auth_sys(machine: str = "pxelab", uid: int = 0, gid: int = 0) -> tuple[int, bytes]:
    """AUTH_SYS credential body: stamp, machinename, uid, gid, gids<> (RFC 5531 s. A.1)."""
    return AUTH_SYS, struct.pack(">I", 0) + _xdr_opaque(machine.encode()) + struct.pack(
        ">III", uid, gid, 0)


def rpc_call(xid: int, procedure: int, args: bytes = b"", *,
             cred: tuple[int, bytes] = (AUTH_NONE, b""),
             program: int = NFS_PROGRAM, version: int = NFS_VERSION) -> bytes:
    """One record-marked RPC call (verifier AUTH_NONE)."""
    body = (struct.pack(">6I", xid, 0, 2, program, version, procedure)
            + struct.pack(">I", cred[0]) + _xdr_opaque(cred[1])
            + struct.pack(">II", AUTH_NONE, 0) + args)
    return struct.pack(">I", _LAST_FRAGMENT | len(body)) + body


def rpc_null_call(xid: int, program: int = NFS_PROGRAM, version: int = NFS_VERSION) -> bytes:
    return rpc_call(xid, PROC_NULL, program=program, version=version)


def compound_lookup_args(path: str, tag: str = "pxelab") -> bytes:
    """COMPOUND4args (minorversion 0): PUTROOTFH, then LOOKUP of each component of ``path``."""
    components = [c for c in path.split("/") if c]
    ops = struct.pack(">I", OP_PUTROOTFH) + b"".join(
        struct.pack(">I", OP_LOOKUP) + _xdr_opaque(c.encode()) for c in components)
    return _xdr_opaque(tag.encode()) + struct.pack(">II", 0, 1 + len(components)) + ops


def rpc_reply_result(record: bytes, xid: int) -> bytes:
    """The procedure's results in a record-marked reply to ``xid``; ValueError if refused."""
    if len(record) < 4 + 24:
        raise ValueError(f"RPC reply too short ({len(record)} bytes)")
    mark, got_xid, msg_type, reply_stat, _flavor, verf_len = struct.unpack(">6I", record[:24])
    if not mark & _LAST_FRAGMENT:
        raise ValueError("RPC reply is fragmented; pxelab only reads single-fragment replies")
    if (got_xid, msg_type) != (xid, 1):
        raise ValueError(f"not a reply to xid {xid:#x}: xid={got_xid:#x} msg_type={msg_type}")
    if reply_stat != 0:
        raise ValueError(f"RPC call denied (reply_stat={reply_stat})")
    offset = 24 + (verf_len + 3) // 4 * 4
    if len(record) < offset + 4:
        raise ValueError("RPC reply ends before accept_stat")
    (accept_stat,) = struct.unpack(">I", record[offset:offset + 4])
    if accept_stat != 0:
        raise ValueError(f"RPC call not accepted (accept_stat={accept_stat}; 2=PROG_MISMATCH)")
    return record[offset + 4:]


def _rpc_exchange(address: str, port: int, timeout: float, request: bytes) -> bytes:
    with socket.create_connection((address, port), timeout=timeout) as sock:
        sock.sendall(request)
        reply = b""
        while len(reply) < 4 or len(reply) < 4 + (struct.unpack(">I", reply[:4])[0] & 0x7FFFFFFF):
            chunk = sock.recv(65536)
            if not chunk:
                raise ValueError(f"connection closed after {len(reply)} bytes of RPC reply")
            reply += chunk
    return reply


def nfs_null_ping(address: str, port: int = NFS_PORT, timeout: float = 1.0, *,
                  program: int = NFS_PROGRAM, version: int = NFS_VERSION) -> None:
    """NULL call (default: NFSv4) over TCP in the caller's namespace; OSError or ValueError."""
    xid = int.from_bytes(os.urandom(4), "big")
    request = rpc_null_call(xid, program, version)
    rpc_reply_result(_rpc_exchange(address, port, timeout, request), xid)


# ---------------------------------------------------------------------------------------
# Port mapper / rpcbind, program 100000 (RFC 1833): versions 2 (portmap) to 4 (rpcbind).
# Procedures 0 NULL, 1 SET, 2 UNSET and 3 (v2 GETPORT, v3/v4 GETADDR) share numbers.
# GETPORT args: mapping { prog, vers, prot, port } (4 x uint32); result: uint32 port,
# 0 when nothing is registered (s. 3.2). GETADDR's result is a universal address
# string, "" when not registered (s. 2.2). SET/UNSET return a bool. Reply header
# (RFC 5531 s. 9): xid, REPLY(1), MSG_ACCEPTED(0), verf AUTH_NONE, accept_stat.
# ---------------------------------------------------------------------------------------
PROC_SET = 1
PROC_UNSET = 2
PMAPPROC_GETPORT = 3
PMAP_VERSIONS = (2, 3, 4)
IPPROTO_TCP = 6
IPPROTO_UDP = 17
ACCEPT_SUCCESS = 0
ACCEPT_PROG_UNAVAIL = 1
ACCEPT_PROG_MISMATCH = 2
ACCEPT_PROC_UNAVAIL = 3
ACCEPT_GARBAGE_ARGS = 4


def parse_rpc_call(body: bytes) -> tuple[int, int, int, int, bytes]:
    """(xid, program, version, procedure, args) of a call record body (no record mark)."""
    if len(body) < 24:
        raise ValueError(f"RPC call too short ({len(body)} bytes)")
    xid, msg_type, rpcvers, program, version, procedure = struct.unpack(">6I", body[:24])
    if msg_type != 0 or rpcvers != 2:
        raise ValueError(f"not an RPC v2 call (msg_type={msg_type}, rpcvers={rpcvers})")
    offset = 24
    for _ in ("cred", "verf"):
        if len(body) < offset + 8:
            raise ValueError("RPC call ends inside its credential or verifier")
        (length,) = struct.unpack(">I", body[offset + 4:offset + 8])
        offset += 8 + (length + 3) // 4 * 4
    if len(body) < offset:
        raise ValueError("RPC call ends inside its credential or verifier")
    return xid, program, version, procedure, body[offset:]


def rpc_accepted_reply(xid: int, accept_stat: int, result: bytes = b"") -> bytes:
    """A record-marked MSG_ACCEPTED reply with verifier AUTH_NONE."""
    body = struct.pack(">6I", xid, 1, 0, AUTH_NONE, 0, accept_stat) + result
    return struct.pack(">I", _LAST_FRAGMENT | len(body)) + body


def pmap_reply(body: bytes, ports: dict[tuple[int, int, int], int]) -> bytes:
    """The reply to one port mapper call; ``ports`` maps (prog, vers, prot) to a port.

    SET and UNSET are acknowledged and change nothing: the table is fixed (the
    server's ports are configured, not discovered). GETADDR (v3/v4) answers "".
    """
    xid, program, version, procedure, args = parse_rpc_call(body)
    if program != PMAP_PROGRAM:
        return rpc_accepted_reply(xid, ACCEPT_PROG_UNAVAIL)
    if version not in PMAP_VERSIONS:
        return rpc_accepted_reply(xid, ACCEPT_PROG_MISMATCH,
                                  struct.pack(">II", PMAP_VERSIONS[0], PMAP_VERSIONS[-1]))
    if procedure == PROC_NULL:
        return rpc_accepted_reply(xid, ACCEPT_SUCCESS)
    if procedure in (PROC_SET, PROC_UNSET):
        return rpc_accepted_reply(xid, ACCEPT_SUCCESS, struct.pack(">I", 1))
    if procedure != PMAPPROC_GETPORT:
        return rpc_accepted_reply(xid, ACCEPT_PROC_UNAVAIL)
    if version != PMAP_VERSION:
        return rpc_accepted_reply(xid, ACCEPT_SUCCESS, struct.pack(">I", 0))  # GETADDR: ""
    if len(args) < 16:
        return rpc_accepted_reply(xid, ACCEPT_GARBAGE_ARGS)
    prog, vers, prot, _port = struct.unpack(">4I", args[:16])
    return rpc_accepted_reply(xid, ACCEPT_SUCCESS,
                              struct.pack(">I", ports.get((prog, vers, prot), 0)))


def pmap_getport_call(xid: int, program: int, version: int, prot: int = IPPROTO_TCP) -> bytes:
    """A record-marked GETPORT call (for tests and probes)."""
    return rpc_call(xid, PMAPPROC_GETPORT, struct.pack(">4I", program, version, prot, 0),
                    program=PMAP_PROGRAM, version=PMAP_VERSION)


def nfs4_lookup_status(address: str, path: str, port: int = NFS_PORT,
                       timeout: float = 1.0) -> int:
    """nfsstat4 of PUTROOTFH + LOOKUP ``path`` as root (AUTH_SYS): 0 if the path exists."""
    xid = int.from_bytes(os.urandom(4), "big")
    request = rpc_call(xid, PROC_COMPOUND, compound_lookup_args(path), cred=auth_sys())
    result = rpc_reply_result(_rpc_exchange(address, port, timeout, request), xid)
    if len(result) < 4:
        raise ValueError("COMPOUND reply has no status")
    return int(struct.unpack(">I", result[:4])[0])


def call_in_namespace(namespace: str | None, function: Callable[[], _T]) -> _T:
    """Run ``function`` in a short-lived thread inside ``namespace``; return or re-raise."""
    outcome: list[_T] = []
    failure: list[BaseException] = []

    def target() -> None:
        try:
            with thread_in_namespace(namespace):
                outcome.append(function())
        except BaseException as error:  # re-raised in the caller's thread
            failure.append(error)

    thread = threading.Thread(target=target, name=f"pxelab-netns-{namespace}", daemon=True)
    thread.start()
    thread.join()
    if failure:
        raise failure[0]
    return outcome[0]


# ---------------------------------------------------------------------------------------
# Configuration (ganesha-core-config(8), ganesha-export-config(8), ganesha 4.3 to 6.x)
# ---------------------------------------------------------------------------------------
def parse_release(text: str) -> tuple[int, int] | None:
    """(major, minor) from ``ganesha.nfsd -v`` ("NFS-Ganesha Release = V4.3"); None if absent.

    A development tag ("V6-dev.19") counts as minor 0.
    """
    found = _RELEASE.search(text)
    if found is None:
        return None
    return int(found["major"]), int(found["minor"] or 0)


@functools.cache
def ganesha_release() -> tuple[int, int] | None:
    """The installed ganesha.nfsd's release, None if it does not say (logged)."""
    result = subprocess.run([GANESHA, "-v"], capture_output=True, text=True, check=False)
    release = parse_release(result.stdout + result.stderr)
    if release is None:
        logging.getLogger(__name__).warning(
            "%s -v printed no release (%r); writing a config for ganesha < %d.%d", GANESHA,
            (result.stdout + result.stderr).strip(), *IO_FLUSHER_KEY_SINCE)
    return release


def knows_io_flusher_key(release: tuple[int, int] | None) -> bool:
    return release is not None and release >= IO_FLUSHER_KEY_SINCE


def ganesha_config(*, export_dir: Path, workdir: Path, bind_address: str, pseudo_path: str,
                   read_only: bool, dbus_prefix: str, nfs3: bool = False,
                   release: tuple[int, int] | None = None) -> str:
    """The ganesha.conf text: NFSv4 over TCP only, one VFS export, all state in ``workdir``.

    ``nfs3`` adds NFSv3 and its MOUNT service on :data:`MOUNT_PORT` (TCP); a v3 client
    mounts the pseudo path too (Mount_Path_Pseudo). NLM stays off: klibc nfsmount
    mounts with nolock. ``release`` is ganesha's (major, minor): from 6.1 on the
    config lets it start without the right to PR_SET_IO_FLUSHER.
    """
    protocols = "3, 4" if nfs3 else "4"
    core_lines = (f"    MNT_Port = {MOUNT_PORT};\n    Mount_Path_Pseudo = true;\n"
                  if nfs3 else "")
    if knows_io_flusher_key(release):
        core_lines += f"    {IO_FLUSHER_KEY} = true;\n"
    return f"""\
# Written by pxelab.machine.nfs.Ganesha; rerun with the command line in the pxelab log.
NFS_CORE_PARAM {{
    Protocols = {protocols};
    Bind_addr = {bind_address};
    NFS_Port = {NFS_PORT};
{core_lines}    Enable_NLM = false;
    Enable_UDP = false;
    Enable_RQUOTA = false;
    Dbus_Name_Prefix = {dbus_prefix};
}}
NFSV4 {{
    Graceless = true;
    RecoveryBackend = fs;
    RecoveryRoot = "{workdir / 'recovery'}";
}}
NFS_KRB5 {{
    Active_krb5 = false;
    CCacheDir = "{workdir / 'krb5'}";
}}
EXPORT {{
    Export_Id = 1;
    Path = "{export_dir}";
    Pseudo = "{pseudo_path}";
    Protocols = {protocols};
    Transports = TCP;
    Access_Type = {"RO" if read_only else "RW"};
    Squash = No_Root_Squash;
    SecType = sys;
    FSAL {{
        Name = VFS;
    }}
}}
{LOG_BLOCK}"""


class Portmapper(Resource):
    """A port mapper (RFC 1833) over TCP answering GETPORT from a fixed table.

    klibc's nfsmount asks the server's port 111 for the MOUNT port (it has no option
    for it) and only falls back to UDP, retrying for minutes, when TCP is refused.
    ganesha with NFSv3 on will not start unless it can register (it tries
    /run/rpcbind.sock, then [::1]:111). rpcbind would serve both, but its socket is
    host-global; this listens inside the lab's namespace only, on ``addresses``
    (the server's for guests, ::1 for ganesha), acknowledges registrations and
    answers lookups from ``ports``.
    """

    def __init__(self, addresses: tuple[str, ...], namespace: str | None,
                 ports: dict[tuple[int, int, int], int], port: int = PMAP_PORT) -> None:
        self.addresses, self.namespace, self.port = addresses, namespace, port
        self.ports = dict(ports)
        self.log = logging.getLogger(f"{__name__}.portmapper")
        self._listeners: list[socket.socket] = []
        self._threads: list[threading.Thread] = []
        self._stopping = threading.Event()

    def start(self) -> None:
        self._stopping.clear()
        try:
            for address in self.addresses:
                family = socket.AF_INET6 if ":" in address else socket.AF_INET
                listener = call_in_namespace(self.namespace, functools.partial(
                    socket.create_server, (address, self.port), family=family))
                listener.settimeout(0.2)  # how often the accept loop looks at _stopping
                self._listeners.append(listener)
                thread = threading.Thread(target=self._serve, args=(listener,),
                                          name=f"pxelab-portmapper-{address}", daemon=True)
                thread.start()
                self._threads.append(thread)
        except BaseException:
            self.stop()
            raise
        self.log.info("port mapper on %s port %d: %s", ", ".join(self.addresses), self.port,
                      self.ports)

    def stop(self) -> None:
        self._stopping.set()
        for thread in self._threads:
            thread.join(5)
        for listener in self._listeners:
            listener.close()
        self._threads, self._listeners = [], []

    def _serve(self, listener: socket.socket) -> None:
        while not self._stopping.is_set():
            try:
                connection, peer = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with connection:
                self._answer(connection, peer)

    def _answer(self, connection: socket.socket, peer: object) -> None:
        """Answer the calls on one connection until the client closes it."""
        connection.settimeout(5.0)
        buffer = b""
        try:
            while chunk := connection.recv(4096):
                buffer += chunk
                while len(buffer) >= 4:
                    length = struct.unpack(">I", buffer[:4])[0] & 0x7FFFFFFF
                    if length > 65536:  # port mapper calls are tiny: this is not one
                        raise ValueError(f"record of {length} bytes")
                    if len(buffer) < 4 + length:
                        break
                    body, buffer = buffer[4:4 + length], buffer[4 + length:]
                    reply = pmap_reply(body, self.ports)
                    self.log.info("call from %s answered (%d bytes)", peer, len(reply))
                    connection.sendall(reply)
        except (OSError, ValueError) as error:  # a bad client never stops the service
            self.log.warning("connection from %s dropped: %s", peer, error)


class Ganesha(Resource):
    """One ganesha.nfsd exporting ``export_dir`` as ``<bind_address>:<pseudo_path>``.

    Use as a context manager: ``__enter__`` starts it and waits until it answers an
    NFS NULL call and a LOOKUP of the export, ``__exit__`` stops it (SIGTERM, then
    SIGKILL) and reaps it; a failed start stops it too. ``command`` is the exact
    command line (run with ``BLKID_FILE=<workdir>/blkid.tab`` to reproduce by hand).
    The export is read-only by default: payload root file systems are shared cache
    directories that a guest must not change.
    """

    def __init__(  # noqa: PLR0917 - the agreed positional signature
            self, export_dir: Path, workdir: Path, namespace: str | None,
            bind_address: str = "192.0.2.1", pseudo_path: str = "/pxelab",
            ready_timeout: float = 30.0, *, read_only: bool = True,
            stop_timeout: float = 10.0, nfs3: bool = False) -> None:
        if not pseudo_path.startswith("/") or '"' in pseudo_path:
            raise ConfigError(f"pseudo_path {pseudo_path!r} must be an absolute path")
        self.export_dir = Path(export_dir).resolve()
        self.workdir = Path(workdir).resolve()
        self.namespace = namespace
        self.bind_address = bind_address
        self.pseudo_path = pseudo_path
        self.ready_timeout = ready_timeout
        self.stop_timeout = stop_timeout
        self.read_only = read_only
        self.instance = f"pxelab_{os.getpid()}_{next(_instances)}"
        self.log = logging.getLogger(f"{__name__}.{self.instance}")
        self.config_path = self.workdir / "ganesha.conf"
        self.log_path = self.workdir / "ganesha.log"
        self.pid_path = self.workdir / "ganesha.pid"
        self.output_path = self.workdir / "ganesha.out"
        self.nfs3 = nfs3
        ganesha = [GANESHA, "-F", "-L", str(self.log_path), "-f", str(self.config_path),
                   "-p", str(self.pid_path)]
        if nfs3:
            # With NFSv3 on, ganesha registers NFS and MOUNT with the portmapper through
            # /run/rpcbind.sock, a host-global path: a private /run hides it (the lab's
            # Portmapper answers the guest instead).
            ganesha = ["unshare", "--mount", "--propagation", "private", "sh", "-ec",
                       'mount -t tmpfs -o mode=0755 pxelab-run /run; exec "$@"', "sh",
                       *ganesha]
        self.command = [*exec_prefix(namespace), *ganesha]
        self.process: subprocess.Popen[bytes] | None = None
        self._output: IO[bytes] | None = None
        self.portmapper = Portmapper((bind_address, "::1"), namespace, {
            (NFS_PROGRAM, 3, IPPROTO_TCP): NFS_PORT,
            (MOUNT_PROGRAM, MOUNT_VERSION, IPPROTO_TCP): MOUNT_PORT,
        }) if nfs3 else None

    @property
    def mount_source(self) -> str:
        """What a client mounts: ``192.0.2.1:/pxelab`` (IPv6 addresses in brackets)."""
        host = f"[{self.bind_address}]" if ":" in self.bind_address else self.bind_address
        return f"{host}:{self.pseudo_path}"


    def start(self) -> None:
        """Write the config, start ganesha.nfsd and wait until it serves NFSv4."""
        if self.process is not None:
            raise NfsError(f"ganesha {self.instance} is already started")
        if shutil.which(GANESHA) is None:
            raise HostCapabilityError(f"{GANESHA} not found: apt-get install nfs-ganesha "
                                      "nfs-ganesha-vfs")
        if not self.export_dir.is_dir() or '"' in str(self.export_dir):
            raise ConfigError(f"export_dir {self.export_dir} is not a directory (without '\"')")
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.config_path.write_text(ganesha_config(
            export_dir=self.export_dir, workdir=self.workdir, bind_address=self.bind_address,
            pseudo_path=self.pseudo_path, read_only=self.read_only, dbus_prefix=self.instance,
            nfs3=self.nfs3, release=ganesha_release(),
        ), encoding="utf-8")
        env = dict(os.environ, BLKID_FILE=str(self.workdir / "blkid.tab"))
        self.log.info("starting (BLKID_FILE=%s): %s", env["BLKID_FILE"], " ".join(self.command))
        self._output = self.output_path.open("wb")
        try:
            if self.portmapper is not None:  # ganesha registers NFSv3 at start-up
                self.portmapper.start()
            self.process = subprocess.Popen(
                self.command, stdin=subprocess.DEVNULL, stdout=self._output,
                stderr=subprocess.STDOUT, env=env, cwd=self.workdir, start_new_session=True,
            )
            self._wait_ready()
            if self.nfs3:
                self._check_nfs3()
        except BaseException:
            self.stop()
            raise
        self.log.info("serving %s as %s (pid %d)", self.export_dir, self.mount_source,
                      self.process.pid)

    def ping(self, timeout: float = 1.0) -> None:
        """One NFS NULL call from inside the namespace; raises OSError or ValueError."""
        call_in_namespace(self.namespace,
                          lambda: nfs_null_ping(self.bind_address, NFS_PORT, timeout))

    def lookup_status(self, path: str | None = None, timeout: float = 1.0) -> int:
        """nfsstat4 of looking up ``path`` (default: the export) from inside the namespace."""
        target = self.pseudo_path if path is None else path
        return call_in_namespace(
            self.namespace,
            lambda: nfs4_lookup_status(self.bind_address, target, NFS_PORT, timeout))

    def _wait_ready(self) -> None:
        assert self.process is not None
        deadline = time.monotonic() + self.ready_timeout
        last_error: Exception | str = "nothing tried yet"
        while True:
            code = self.process.poll()
            if code is not None:
                tail = self.log_tail()
                raise NfsError(
                    f"{GANESHA} exited with status {code} while starting; "
                    f"command: {' '.join(self.command)}\n{tail}\n{self._exit_hint(tail)}")
            timeout = min(1.0, max(0.1, deadline - time.monotonic()))
            try:
                self.ping(timeout)
                status = self.lookup_status(timeout=timeout)
            except (OSError, ValueError) as error:
                last_error = error
            else:
                if status == NFS4_OK:
                    return
                last_error = f"LOOKUP {self.pseudo_path} returned nfsstat4 {status}"
                if status not in {NFS4ERR_DELAY, NFS4ERR_GRACE}:
                    raise NfsError(
                        f"{GANESHA} answers but does not export {self.pseudo_path} "
                        f"({last_error}; 2=NOENT); it rejected the EXPORT block:\n"
                        f"{self.log_tail(pattern=':CRIT :')}\n"
                        f"Check that {self.export_dir} is a directory ganesha's FSAL VFS can "
                        "export (nfs-ganesha-vfs installed, a local file system)."
                    )
            if time.monotonic() >= deadline:
                raise NfsError(
                    f"{GANESHA} did not serve {self.mount_source} within "
                    f"{self.ready_timeout:.0f} s (last: {last_error}); "
                    f"command: {' '.join(self.command)}\n{self.log_tail()}\n"
                    "Check that the namespace has that address up (bridge configured)."
                )
            time.sleep(0.05)  # poll interval, not a guess at readiness

    def _exit_hint(self, tail: str) -> str:
        """What to check when ganesha exited at start, from what its log says."""
        if "PR_SET_IO_FLUSHER" in tail:  # ganesha 6.0, which has no key to allow it
            since = ".".join(map(str, IO_FLUSHER_KEY_SINCE))
            return (f"This ganesha needs CAP_SYS_RESOURCE for PR_SET_IO_FLUSHER; from "
                    f"{since} on pxelab sets {IO_FLUSHER_KEY} so it starts without it: run "
                    f"pxelab with that capability or install nfs-ganesha >= {since}.")
        return (f"Check that {self.bind_address} is configured in namespace "
                f"{self.namespace or '(host)'} and that nothing else listens on port "
                f"{NFS_PORT} there.")

    def _check_nfs3(self) -> None:
        """NULL calls to NFSv3 and MOUNTv3 (what the portmapper names to guests)."""
        for program, version, port in ((NFS_PROGRAM, 3, NFS_PORT),
                                        (MOUNT_PROGRAM, MOUNT_VERSION, MOUNT_PORT)):
            ping = functools.partial(nfs_null_ping, self.bind_address, port, 2.0,
                                     program=program, version=version)
            try:
                call_in_namespace(self.namespace, ping)
            except (OSError, ValueError) as error:
                raise NfsError(f"{GANESHA} does not answer program {program} version "
                               f"{version} on port {port} ({error}); NFSv3 is on in "
                               f"{self.config_path}:\n{self.log_tail()}") from error

    def stop(self) -> None:
        """SIGTERM, wait up to ``stop_timeout``, then SIGKILL; always reaps. Idempotent."""
        if self.portmapper is not None:
            self.portmapper.stop()
        process, self.process = self.process, None
        if process is not None:
            terminate(process, self.stop_timeout, self.log, GANESHA)
        if self._output is not None:
            self._output.close()
            self._output = None

    def log_tail(self, lines: int = 25, pattern: str = "") -> str:
        """The last ``lines`` (containing ``pattern``) of ganesha's log and stdout/stderr."""
        parts = []
        for path in (self.log_path, self.output_path):
            try:
                text = path.read_text(encoding="utf-8", errors="replace").splitlines()
            except OSError:
                continue
            text = [line for line in text if pattern in line]
            if text:
                parts.append(f"--- last lines of {path} ---\n" + "\n".join(text[-lines:]))
        return "\n".join(parts) or f"(no output in {self.log_path} or {self.output_path})"
