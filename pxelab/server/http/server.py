"""A small HTTP/1.1 file server on asyncio streams: GET and HEAD from the data root.

What it does, with the RFC 9110/9112 rules behind it (see :mod:`pxelab.server.http.codec`):

- Every answer carries Content-Length, Date and Connection; answers are HTTP/1.1.
- One byte range -> 206 with Content-Range; a range past the end -> 416 with
  ``Content-Range: bytes */size``; several ranges -> 200 with the whole file;
  Range on HEAD is ignored (RFC 9110 14.2: only GET has range semantics).
- Persistent connections per RFC 9112 9.3 (1.1 by default, 1.0 with
  ``Connection: keep-alive``), pipelined requests answered in order, an idle
  timeout between requests, a send timeout while the client takes no data,
  a lingering close (RFC 9112 9.6) so a pipelining client gets its last answer.
- Oversized heads -> 431, malformed ones -> 400, other methods -> 405 with Allow.
- Paths are percent-decoded, then resolved inside the data root
  (:class:`~pxelab.server.tftp.files.DataRoot`: ``..``, NUL, absolute names and
  symlinks out of the root -> 403); the opened descriptor is checked once more
  (``/proc/self/fd``) so a file swapped in meanwhile cannot lead outside.
  The query string is ignored for plain files.
- Per-client templates: a request for ``name`` is answered from
  ``name.tmpl`` when that exists (the template wins over a plain ``name``),
  rendered with :mod:`pxelab.server.http.template` for the client; the client is
  looked up in the :class:`~pxelab.server.clients.ClientDirectory` by peer address,
  ``?mac=``, ``?arch=``, ``?hostname=``, ``?ip=`` override. A placeholder
  that is unknown or has no value -> 500 naming it.
- Faults (:class:`~pxelab.server.faults.FaultInjector`): ``packet("http.request")``
  drops (close without answering) or delays a request; ``http_status`` answers
  an error; ``truncate`` sends only the first N bytes of the file under the
  real Content-Length, then closes.

Events (source ``http``): ``get``/``head`` (every answered request, with
status and bytes), ``error`` (refused heads: 400, 405, 431), ``drop``
(dropped by a fault), ``timeout`` (idle or stalled connections closed).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
import socket
import stat
import time
import traceback
from dataclasses import dataclass, field
from email.utils import formatdate
from ipaddress import ip_address
from pathlib import Path
from typing import Any, BinaryIO

from pxelab.core.events import EventLog
from pxelab.server.clients import ClientDirectory, ClientRecord
from pxelab.server.faults import FaultInjector
from pxelab.server.http import template
from pxelab.server.http.codec import (
    ByteRange,
    HttpRequest,
    HttpRequestError,
    RangeNotSatisfiableError,
    RangeOutcome,
    parse_range,
    parse_request,
    reason_phrase,
    status_line,
)
from pxelab.server.match import url_host
from pxelab.server.policy import ClientInfo
from pxelab.server.tftp.files import DataRoot, FileMissingError, PathDeniedError

__all__ = ["HttpServer", "HttpSettings", "open_tcp_socket"]

log = logging.getLogger(__name__)

TEMPLATE_SUFFIX = ".tmpl"
MAX_TEMPLATE_BYTES = 1 << 20
_TEXT_SUFFIXES = {".ipxe", ".txt", ".cfg", ".conf", ".cfg32", ".sh"}
_HOSTNAME = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9.-]{0,251}[A-Za-z0-9])?$")
_MAC = re.compile(r"^[0-9a-f]{2}([:-][0-9a-f]{2}){5}$")
# Connections the kernel holds for us until the loop accepts them. asyncio's default of 100
# overflowed when 200 clients connected at once (the rest waited for their SYN's resend,
# 1 s later); nginx's is 511. The kernel caps it at net.core.somaxconn (4096).
LISTEN_BACKLOG = 1024


@dataclass(frozen=True)
class HttpSettings:
    max_head_bytes: int = 16384  # a longer request head is answered 431
    idle_timeout: float = 30.0  # close a connection that sends no request this long
    send_timeout: float = 30.0  # close a connection that takes no data this long
    linger: float = 0.5  # read what a closing client still sends, up to this long
    chunk_bytes: int = 1 << 20  # sendfile() per step; the send timeout applies per step


def open_tcp_socket(family: socket.AddressFamily, host: str, port: int,
                    interface: str | None) -> socket.socket:
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        if interface:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, interface.encode())
        sock.bind((host, port))
        sock.listen(LISTEN_BACKLOG)
        sock.setblocking(False)
    except BaseException:
        sock.close()
        raise
    return sock


class _RefusedError(Exception):
    """Answer ``status`` and close the connection (the head is not trustworthy)."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


@dataclass
class _Answer:
    """What to send for one request: an error, an in-memory body or a slice of a file."""

    status: int
    reason: str = ""
    file: BinaryIO | None = None
    body: bytes = b""
    first: int = 0
    length: int = 0
    size: int = 0  # of the whole representation
    send_limit: int | None = None  # truncation fault: body bytes to send before closing
    content_type: str = "text/plain"
    headers: list[tuple[str, str]] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)

    def close(self) -> None:
        if self.file is not None:
            self.file.close()


@dataclass(frozen=True)
class _Peer:
    """The requesting client as far as we know it."""

    address: str
    server: str  # URL authority of the address the request reached
    server_ip: str
    record: ClientRecord | None

    @property
    def mac(self) -> str:
        """The client's MAC ("" if unknown): from the client directory or the query."""
        return self.record.mac or "" if self.record else ""

    def info(self) -> ClientInfo:
        record = self.record
        if record is None:
            return ClientInfo(mac="", protocol="http", client_address=self.address,
                              server_address=self.server_ip)
        return ClientInfo(mac=record.mac or "", protocol=record.protocol, arch=record.arch,
                          vendor_class=record.vendor_class, user_classes=record.user_classes,
                          client_address=self.address, server_address=self.server_ip)


class HttpServer:
    """Serves ``root`` over HTTP; :meth:`handle` is the asyncio stream callback."""

    def __init__(self, root: DataRoot, events: EventLog, settings: HttpSettings | None = None,
                 *, clients: ClientDirectory | None = None,
                 faults: FaultInjector | None = None) -> None:
        self.root = root
        self.events = events
        self.settings = settings or HttpSettings()
        # "is None", not "or": both are falsy while empty.
        self.clients = ClientDirectory() if clients is None else clients
        self.faults = FaultInjector((), events) if faults is None else faults
        self._connections: set[asyncio.Task[None]] = set()  # held until done

    async def serve(self, sock: socket.socket) -> asyncio.Server:
        """Start accepting on a listening socket (see :func:`open_tcp_socket`)."""
        return await asyncio.start_server(self._connected, sock=sock, backlog=LISTEN_BACKLOG,
                                          limit=self.settings.max_head_bytes)

    def _connected(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        # Our own task, not a coroutine for asyncio to wrap: Python 3.11's wrapper calls
        # task.exception() on it, which raises (and is logged) once the server stopping
        # cancels a connection, as it must.
        task = asyncio.get_running_loop().create_task(self.handle(reader, writer))
        self._connections.add(task)
        task.add_done_callback(self._connections.discard)

    # -- connection ------------------------------------------------------------------------

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = writer.get_extra_info("peername") or ("?", 0)
        client = str(peer[0]).split("%")[0]
        linger, answered = True, 0
        try:
            while await self._one_request(reader, writer, client, answered):
                answered += 1
        except (ConnectionError, asyncio.IncompleteReadError):
            linger = False
        except asyncio.CancelledError:
            # The server is stopping with this connection open (a boot loader's keep-alive):
            # close it at once (below), and let whoever cancelled see the task cancelled.
            linger = False
            raise
        except Exception as exc:
            log.exception("HTTP connection from %s failed", client)
            self.events.emit("http", "error", client=client, reason=repr(exc),
                             details={"traceback": traceback.format_exc()})
        finally:
            await self._close(reader, writer, linger)

    async def _close(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                     linger: bool) -> None:
        """Half-close, read what the client still sends, then close (RFC 9112 9.6).

        Closing with unread data makes the kernel send RST, which can destroy the
        answer still in flight to a client that pipelined requests after it.
        """
        try:
            with contextlib.suppress(ConnectionError, OSError, RuntimeError, TimeoutError):
                if linger and writer.can_write_eof() and not writer.is_closing():
                    await writer.drain()
                    writer.write_eof()
                    async with asyncio.timeout(self.settings.linger):
                        while await reader.read(65536):
                            pass
        finally:
            # Also when the server stops during the linger (CancelledError): a client still
            # waiting for the rest of a body cut short never closes its side.
            writer.close()
        with contextlib.suppress(ConnectionError, OSError):
            await writer.wait_closed()

    async def _read_head(self, reader: asyncio.StreamReader, client: str,
                         answered: int) -> bytes | None:
        """The next request head; None when the connection should end quietly.

        ``answered``: requests this connection was answered before. The first byte is
        read apart, to tell a request that never completed from a kept-alive connection
        nobody used again: a boot loader that started its kernel never closes the
        connection it kept for the next file, and that lost nothing.
        """
        first = b""
        try:
            async with asyncio.timeout(self.settings.idle_timeout):
                first = await reader.readexactly(1)
                return first + await reader.readuntil(b"\r\n\r\n")
        except TimeoutError:
            idle = not first and answered > 0
            what = (f"kept-alive connection unused for {self.settings.idle_timeout}s after "
                    f"{answered} request(s)" if idle else
                    f"no complete request within {self.settings.idle_timeout}s")
            self.events.emit("http", "timeout", client=client, reason=f"{what}; connection closed",
                             details={"timeout": self.settings.idle_timeout, "idle": idle,
                                      "requests": answered})
            return None
        except asyncio.IncompleteReadError as exc:
            if (first + exc.partial).strip():
                raise _RefusedError(400, "connection closed mid-request") from None
            return None  # the client closed between requests: normal end of keep-alive
        except asyncio.LimitOverrunError:
            raise _RefusedError(431, f"request head exceeds {self.settings.max_head_bytes} "
                                "bytes") from None

    async def _one_request(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                           client: str, answered: int) -> bool:
        """Answer one request; True if the connection stays open."""
        request: HttpRequest | None = None
        try:
            head = await self._read_head(reader, client, answered)
            if head is None:
                return False
            started = time.monotonic()
            request = self._check(head)
            peer = self._peer(writer, client, request)
        except _RefusedError as refused:
            summary = f"{request.method} {request.target}" if request else ""
            await self._refuse(writer, client, refused.status, refused.reason, summary)
            return False
        verdict = self.faults.packet("http.request", client, peer.info())
        if verdict.drop:
            self.events.emit("http", "drop", client=client, mac=peer.mac,
                             file=_path_or_target(request),
                             request=f"{request.method} {request.target}",
                             reason="fault: request dropped, connection closed unanswered")
            return False
        if verdict.delay:
            await asyncio.sleep(verdict.delay)
        answer = self._answer(request, peer)
        try:
            return await self._send(writer, request, answer, peer, started)
        finally:
            answer.close()

    def _check(self, head: bytes) -> HttpRequest:
        """Parse and vet a head; raise _RefusedError for anything not to be answered normally."""
        try:
            request = parse_request(head)
        except HttpRequestError as exc:
            raise _RefusedError(400, str(exc)) from None
        if request.method not in ("GET", "HEAD"):
            raise _RefusedError(405, f"method {request.method} not served (GET and HEAD only)")
        length = request.header("content-length")
        if request.header("transfer-encoding") or (length is not None and length != "0"):
            raise _RefusedError(400, "GET/HEAD with a body")
        return request

    def _peer(self, writer: asyncio.StreamWriter, client: str,
              request: HttpRequest) -> _Peer:
        """Who asked: the directory's record for ``client``, overridden by the query."""
        sockname = writer.get_extra_info("sockname") or ("", 80)
        server_ip = str(sockname[0]).split("%")[0]
        host = url_host(server_ip)
        server = host if sockname[1] == 80 else f"{host}:{sockname[1]}"
        try:
            query = request.query
        except (UnicodeDecodeError, ValueError) as exc:
            raise _RefusedError(400, f"query string is not UTF-8 form data: {exc}") from None
        record = self.clients.by_address(client)
        mac = query.get("mac")
        if mac is not None:
            if not _MAC.match(mac.lower()):
                raise _RefusedError(400, f"query mac={mac!r} is not a MAC address")
            mac = mac.lower().replace("-", ":")
            known = self.clients.by_mac(mac) or record
            record = ClientRecord(client, mac, *_rest(known))
        if record is None and any(k in query for k in ("arch", "hostname", "ip")):
            record = ClientRecord(client, None, "http")
        if record is not None:
            record = _override(record, query)
        return _Peer(client, server, server_ip, record)

    # -- choosing the answer ---------------------------------------------------------------

    def _answer(self, request: HttpRequest, peer: _Peer) -> _Answer:
        try:
            path_text = request.path
        except UnicodeDecodeError:
            return _Answer(400, "percent-escapes in the path are not UTF-8")
        name = path_text.lstrip("/")
        status = self.faults.http_status(name, peer.address) if name else None
        if status is not None:
            return _Answer(status, f"fault: HTTP {status} for {name}")
        if not name:
            return _Answer(404, "no index for /")
        try:
            rendered = self._render(name, peer)
        except PathDeniedError as exc:
            return _Answer(403, f"denied: {exc}")
        except template.TemplateError as exc:
            return _Answer(500, f"template {name}{TEMPLATE_SUFFIX}: {exc}",
                           details={"placeholder": exc.name})
        if rendered is not None:
            return self._select(request, _Answer(
                200, f"rendered from {name}{TEMPLATE_SUFFIX}", body=rendered,
                size=len(rendered), content_type=_content_type(name),
                details={"template": f"{name}{TEMPLATE_SUFFIX}"}))
        try:
            file, size, mtime = self._open(name)
        except PathDeniedError as exc:
            return _Answer(403, f"denied: {exc}")
        except FileMissingError as exc:
            return _Answer(404, str(exc))
        answer = _Answer(200, "", file=file, size=size, content_type=_content_type(name),
                         headers=[("Last-Modified", formatdate(mtime, usegmt=True))])
        answer = self._select(request, answer)
        if request.method == "GET" and answer.status in (200, 206):
            cut = self.faults.truncate(name, peer.address)
            if cut is not None:
                answer.send_limit = max(0, min(answer.length, cut - answer.first))
                answer.reason = (f"fault: truncated to {answer.send_limit} of "
                                 f"{answer.length} bytes, then closed")
        return answer

    def _select(self, request: HttpRequest, answer: _Answer) -> _Answer:
        """Apply the Range header (GET only) to a 200 answer of ``answer.size`` bytes."""
        answer.length = answer.size
        header = request.header("range") if request.method == "GET" else None
        try:
            wanted = parse_range(header, answer.size)
        except RangeNotSatisfiableError as exc:
            answer.close()
            return _Answer(416, str(exc), size=answer.size,
                           headers=[("Content-Range", f"bytes */{answer.size}")])
        if isinstance(wanted, ByteRange):
            answer.status, answer.first, answer.length = 206, wanted.first, wanted.length
            answer.headers.append(("Content-Range",
                                   f"bytes {wanted.first}-{wanted.last}/{answer.size}"))
            answer.reason = answer.reason or f"bytes {wanted.first}-{wanted.last}"
        elif wanted is not RangeOutcome.ABSENT:
            answer.reason = answer.reason or wanted.value
        if request.method == "HEAD" and request.header("range"):
            answer.reason = answer.reason or "Range ignored on HEAD (RFC 9110 14.2)"
        return answer

    def _render(self, name: str, peer: _Peer) -> bytes | None:
        """The rendered ``name.tmpl``, or None when there is no such template."""
        if self._nothing_at(name + TEMPLATE_SUFFIX):
            return None
        try:
            file, size, _ = self._open(name + TEMPLATE_SUFFIX)
        except FileMissingError:
            return None
        with file:
            if size > MAX_TEMPLATE_BYTES:
                raise template.TemplateError("-", f"template is {size} bytes, over "
                                                  f"{MAX_TEMPLATE_BYTES}")
            text = file.read(MAX_TEMPLATE_BYTES + 1).decode("utf-8", "replace")
        values, missing = _values(peer)
        return template.render(text, values, missing,
                               source=name + TEMPLATE_SUFFIX).encode("utf-8")

    def _nothing_at(self, name: str) -> bool:
        """Whether no directory entry at all is where ``name`` would be: one ``lstat``.

        Most requests are for plain files, and resolving the ``.tmpl`` name that is not
        there (a ``realpath``, an ``lstat`` per component) was a fifth of a request's
        CPU. Anything this cannot rule out goes through :meth:`_open`'s checks, and the
        plain name is resolved and checked there in any case.
        """
        try:
            os.lstat(os.path.join(self.root.root, name))
        except FileNotFoundError:
            return True
        except (OSError, ValueError):  # NUL, a name too long, a file on the way: let _open say
            pass
        return False

    def _open(self, name: str) -> tuple[BinaryIO, int, float]:
        """Open ``name`` inside the root: the file, its size and mtime.

        The descriptor itself is checked (its /proc/self/fd link and type), so a
        symlink or FIFO swapped in after :meth:`DataRoot.resolve` is refused.
        """
        path = self.root.resolve(name)
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK)
        except FileNotFoundError:
            raise FileMissingError(f"{name!r} vanished") from None
        except OSError as exc:
            raise PathDeniedError(f"cannot open {name!r}: {exc.strerror}") from None
        try:
            info = os.fstat(fd)
            real = Path(os.readlink(f"/proc/self/fd/{fd}"))
            if not real.is_relative_to(self.root.root):
                raise PathDeniedError(f"{name!r} opened as {real}, outside {self.root.root}")
            if not stat.S_ISREG(info.st_mode):
                raise FileMissingError(f"{name!r} is not a regular file")
            os.set_blocking(fd, True)
        except BaseException:
            os.close(fd)
            raise
        return os.fdopen(fd, "rb"), info.st_size, info.st_mtime

    # -- sending ---------------------------------------------------------------------------

    async def _send(self, writer: asyncio.StreamWriter, request: HttpRequest, answer: _Answer,
                    peer: _Peer, started: float) -> bool:
        keep = request.keep_alive and answer.send_limit is None and answer.status != 400
        sent, reason = 0, answer.reason
        try:
            sent = await self._respond(writer, request, answer, keep)
        except (ConnectionError, OSError) as exc:
            reason, keep = f"client went away: {exc}", False
        except TimeoutError:
            reason, keep = f"client took no data for {self.settings.send_timeout}s", False
            self.events.emit("http", "timeout", client=peer.address, mac=peer.mac, reason=reason,
                             details={"timeout": self.settings.send_timeout})
        summary = f"{request.method} {request.target}"
        if request.header("range"):
            summary += f" Range: {request.header('range')}"
        record = peer.record
        self.events.emit(
            "http", request.method.lower(), client=peer.address, mac=peer.mac,
            file=_path_or_target(request), request=summary,
            answer=f"{answer.status} {sent} bytes", reason=reason,
            details={"status": answer.status, "bytes": sent,
                     "size": answer.size, "seconds": round(time.monotonic() - started, 6),
                     "keep_alive": keep,
                     "arch": record.arch if record else None} | answer.details)
        return keep

    async def _respond(self, writer: asyncio.StreamWriter, request: HttpRequest,
                       answer: _Answer, keep: bool) -> int:
        """Write the head and body; the number of body bytes sent."""
        if answer.file is None and not answer.body and answer.status >= 400:
            if answer.status != 416:
                answer.body = f"{answer.status} {reason_phrase(answer.status)}: " \
                              f"{answer.reason}\n".encode("utf-8", "replace")
            answer.length = len(answer.body)
        headers = [("Content-Type", answer.content_type),
                   ("Content-Length", str(answer.length)), *answer.headers]
        if answer.status in (200, 206):
            headers.append(("Accept-Ranges", "bytes"))
        self._write_head(writer, answer.status, keep, headers)
        await self._drain(writer)
        if request.method == "HEAD" or answer.length == 0:
            return 0
        count = answer.length if answer.send_limit is None else answer.send_limit
        if answer.file is None:
            writer.write(answer.body[answer.first:answer.first + count])
            await self._drain(writer)
            return count
        return await self._send_file(writer, answer.file, answer.first, count)

    async def _send_file(self, writer: asyncio.StreamWriter, file: BinaryIO, first: int,
                         count: int) -> int:
        """``sendfile(2)`` in steps, each under the send timeout."""
        loop = asyncio.get_running_loop()
        sent = 0
        while sent < count:
            step = min(self.settings.chunk_bytes, count - sent)
            async with asyncio.timeout(self.settings.send_timeout):
                done = await loop.sendfile(writer.transport, file, first + sent, step)
            if done == 0:
                break  # the file shrank under us: the client sees a short body
            sent += done
        return sent

    async def _drain(self, writer: asyncio.StreamWriter) -> None:
        async with asyncio.timeout(self.settings.send_timeout):
            await writer.drain()

    @staticmethod
    def _write_head(writer: asyncio.StreamWriter, status: int, keep: bool,
                    headers: list[tuple[str, str]]) -> None:
        headers = [("Server", "pxelab"), ("Date", formatdate(usegmt=True)),
                   ("Connection", "keep-alive" if keep else "close"), *headers]
        text = status_line(status) + "".join(f"{k}: {v}\r\n" for k, v in headers)
        writer.write((text + "\r\n").encode("latin-1", "replace"))

    async def _refuse(self, writer: asyncio.StreamWriter, client: str, status: int,
                      reason: str, request: str = "") -> None:
        self.events.emit("http", "error", client=client, request=request,
                         answer=f"{status}", reason=reason, details={"status": status})
        body = f"{status} {reason_phrase(status)}: {reason}\n".encode("utf-8", "replace")
        headers = [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))]
        if status == 405:
            headers.append(("Allow", "GET, HEAD"))
        self._write_head(writer, status, False, headers)
        writer.write(body)
        await self._drain(writer)


def _rest(record: ClientRecord | None) -> tuple[str, int | None, str | None, tuple[str, ...],
                                                str | None]:
    """The fields of ``record`` after address and mac (for a record with another MAC)."""
    if record is None:
        return "http", None, None, (), None
    return (record.protocol, record.arch, record.vendor_class, record.user_classes,
            record.hostname)


def _override(record: ClientRecord, query: dict[str, str]) -> ClientRecord:
    """Apply ``?arch=``, ``?hostname=``, ``?ip=`` to ``record``; _RefusedError if malformed."""
    arch, hostname, address = record.arch, record.hostname, record.address
    if "arch" in query:
        if not query["arch"].isdigit() or int(query["arch"]) > 0xFFFF:
            raise _RefusedError(400, f"query arch={query['arch']!r} is not a number 0..65535")
        arch = int(query["arch"])
    if "hostname" in query:
        if not _HOSTNAME.match(query["hostname"]):
            raise _RefusedError(400, f"query hostname={query['hostname']!r} is not a host name")
        hostname = query["hostname"]
    if "ip" in query:
        try:
            address = str(ip_address(query["ip"]))
        except ValueError:
            raise _RefusedError(400, f"query ip={query['ip']!r} is not an IP address") from None
    return ClientRecord(address, record.mac, record.protocol, arch, record.vendor_class,
                        record.user_classes, hostname)


def _values(peer: _Peer) -> tuple[dict[str, str | None], dict[str, str]]:
    """Template values for ``peer`` and, for the unknown ones, why they are unknown."""
    record = peer.record
    mac = record.mac if record else None
    unknown = (f"client {peer.address} is unknown: no DHCP lease seen for it and no "
               "?mac= in the URL")
    values: dict[str, str | None] = {
        "mac": mac,
        "mac_hyphen": mac.replace(":", "-") if mac else None,
        "mac_hex": mac.replace(":", "") if mac else None,
        "ip": record.address if record else peer.address,
        "arch": str(record.arch or 0) if record else None,
        "server": peer.server,
        "server_ip": peer.server_ip,
        # A name the client sent over DHCP goes into a script only if it is a plain host name.
        "hostname": (record.hostname if record and _HOSTNAME.match(record.hostname or "")
                     else f"pxe-{mac.replace(':', '')}" if mac else None),
        "protocol": record.protocol if record and record.protocol != "http" else None,
    }
    missing = {name: unknown for name, value in values.items() if value is None}
    return values, missing


def _content_type(name: str) -> str:
    return "text/plain" if Path(name).suffix in _TEXT_SUFFIXES else "application/octet-stream"


def _path_or_target(request: HttpRequest) -> str:
    try:
        return request.path
    except UnicodeDecodeError:
        return request.target
