"""A small HTTP/1.1 file server on asyncio streams: GET and HEAD from the data root.

Keep-alive, Content-Length always, one byte range (206/416), 404 for missing
files, 403 for names that escape the root, 400 for junk. Bodies go out with
``loop.sendfile`` (zero-copy ``sendfile(2)``). Events (source ``http``):
``get``/``head`` (every answered request, with status and bytes), ``error``
(malformed requests and other methods).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import time
import traceback
from dataclasses import dataclass
from pathlib import Path

from pxelab.events import EventLog
from pxelab.http.codec import (
    HttpRequest,
    HttpRequestError,
    RangeNotSatisfiableError,
    parse_range,
    parse_request,
    status_line,
)
from pxelab.tftp.files import DataRoot, FileMissingError, PathDeniedError

__all__ = ["HttpServer", "HttpSettings", "open_tcp_socket"]

log = logging.getLogger(__name__)

_TEXT_SUFFIXES = {".ipxe", ".txt", ".cfg", ".conf", ".cfg32", ".sh"}


@dataclass(frozen=True)
class HttpSettings:
    max_head_bytes: int = 16384
    idle_timeout: float = 30.0  # close a keep-alive connection idle this long


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
        sock.listen(64)
        sock.setblocking(False)
    except BaseException:
        sock.close()
        raise
    return sock


@dataclass
class _Answer:
    status: int
    reason: str = ""
    path: Path | None = None
    first: int = 0
    length: int = 0
    size: int = 0


class HttpServer:
    """Serves ``root`` over HTTP; :meth:`handle` is the asyncio stream callback."""

    def __init__(self, root: DataRoot, events: EventLog,
                 settings: HttpSettings | None = None) -> None:
        self.root = root
        self.events = events
        self.settings = settings or HttpSettings()

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = writer.get_extra_info("peername") or ("?", 0)
        client = str(peer[0])
        try:
            while await self._one_request(reader, writer, client):
                pass
        except (ConnectionError, asyncio.IncompleteReadError, TimeoutError):
            pass
        except Exception as exc:
            log.exception("HTTP connection from %s failed", client)
            self.events.emit("http", "error", client=client, reason=repr(exc),
                             details={"traceback": traceback.format_exc()})
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError, OSError):
                await writer.wait_closed()

    async def _one_request(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                           client: str) -> bool:
        """Answer one request; True if the connection stays open."""
        try:
            async with asyncio.timeout(self.settings.idle_timeout):
                head = await reader.readuntil(b"\r\n\r\n")
        except asyncio.IncompleteReadError as exc:
            if exc.partial.strip():
                await self._refuse(writer, client, 400, "connection closed mid-request")
            return False
        except asyncio.LimitOverrunError:
            await self._refuse(writer, client, 431, "request head too large")
            return False
        started = time.monotonic()
        try:
            request = parse_request(head)
            path_text = request.path
        except (HttpRequestError, UnicodeDecodeError) as exc:
            await self._refuse(writer, client, 400, str(exc))
            return False
        if request.method not in ("GET", "HEAD"):
            await self._refuse(writer, client, 405, f"method {request.method} not served",
                               request=f"{request.method} {request.target}")
            return False
        if (request.header("content-length") or "0") != "0" or request.header(
                "transfer-encoding"):
            await self._refuse(writer, client, 400, "GET/HEAD with a body",
                               request=f"{request.method} {request.target}")
            return False
        answer = self._locate(path_text, request)
        keep = request.keep_alive  # error answers carry a Content-Length too
        sent, reason = 0, answer.reason
        try:
            sent = await self._respond(writer, request, answer, keep)
        except (ConnectionError, OSError) as exc:
            reason, keep = f"client went away: {exc}", False
        summary = f"{request.method} {request.target}"
        if request.header("range"):
            summary += f" Range: {request.header('range')}"
        self.events.emit(
            "http", request.method.lower(), client=client, request=summary,
            answer=f"{answer.status} {sent} bytes", reason=reason,
            details={"status": answer.status, "bytes": sent, "path": path_text,
                     "size": answer.size, "seconds": round(time.monotonic() - started, 6),
                     "keep_alive": keep})
        return keep

    def _locate(self, path_text: str, request: HttpRequest) -> _Answer:
        name = path_text.lstrip("/")
        if not name:
            return _Answer(404, "no index for /")
        try:
            path = self.root.resolve(name)
        except PathDeniedError as exc:
            return _Answer(403, f"denied: {exc}")
        except FileMissingError as exc:
            return _Answer(404, str(exc))
        size = path.stat().st_size
        try:
            wanted = parse_range(request.header("range"), size)
        except RangeNotSatisfiableError as exc:
            return _Answer(416, str(exc), size=size)
        if wanted is None:
            return _Answer(200, "", path, 0, size, size)
        first, last = wanted
        return _Answer(206, f"bytes {first}-{last}/{size}", path, first, last - first + 1, size)

    async def _respond(self, writer: asyncio.StreamWriter, request: HttpRequest,
                       answer: _Answer, keep: bool) -> int:
        headers = [("Server", "pxelab"), ("Connection", "keep-alive" if keep else "close")]
        if answer.path is None:
            body = f"{answer.status} {answer.reason}\n".encode() if answer.status != 416 else b""
            headers += [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))]
            if answer.status == 416:
                headers.append(("Content-Range", f"bytes */{answer.size}"))
            self._write_head(writer, request.version, answer.status, headers)
            if request.method == "GET":
                writer.write(body)
            await writer.drain()
            return len(body) if request.method == "GET" else 0
        kind = "text/plain" if answer.path.suffix in _TEXT_SUFFIXES else "application/octet-stream"
        headers += [("Content-Type", kind), ("Content-Length", str(answer.length)),
                    ("Accept-Ranges", "bytes")]
        if answer.status == 206:
            headers.append(("Content-Range",
                            f"bytes {answer.first}-{answer.first + answer.length - 1}"
                            f"/{answer.size}"))
        self._write_head(writer, request.version, answer.status, headers)
        await writer.drain()
        if request.method == "HEAD" or answer.length == 0:
            return 0
        loop = asyncio.get_running_loop()
        with answer.path.open("rb") as file:
            sent = await loop.sendfile(writer.transport, file, answer.first, answer.length)
        return sent

    @staticmethod
    def _write_head(writer: asyncio.StreamWriter, version: str, status: int,
                    headers: list[tuple[str, str]]) -> None:
        text = status_line(version, status) + "".join(f"{k}: {v}\r\n" for k, v in headers)
        writer.write((text + "\r\n").encode("ascii"))

    async def _refuse(self, writer: asyncio.StreamWriter, client: str, status: int,
                      reason: str, request: str = "") -> None:
        self.events.emit("http", "error", client=client, request=request,
                         answer=f"{status}", reason=reason, details={"status": status})
        body = f"{status} {reason}\n".encode("ascii", "replace")
        headers = [("Server", "pxelab"), ("Connection", "close"),
                   ("Content-Type", "text/plain"), ("Content-Length", str(len(body)))]
        if status == 405:
            headers.append(("Allow", "GET, HEAD"))
        self._write_head(writer, "HTTP/1.1", status, headers)
        writer.write(body)
        await writer.drain()
