"""HTTP/1.x request heads and byte ranges (pure, no sockets).

Request line and header fields per RFC 9112 sections 3 and 5, keep-alive per
RFC 9112 section 9.3, single byte ranges per RFC 9110 section 14 (multiple
ranges are ignored: a server may always answer 200 with the whole file).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

__all__ = ["HttpRequest", "HttpRequestError", "RangeNotSatisfiableError", "parse_range",
           "parse_request", "status_line"]


class HttpRequestError(ValueError):
    """The request head is malformed (answer 400)."""


class RangeNotSatisfiableError(ValueError):
    """The Range header names no byte of the file (answer 416)."""


_TOKEN = re.compile(r"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$")
_VERSION = re.compile(r"^HTTP/1\.[01]$")
REASONS = {200: "OK", 206: "Partial Content", 400: "Bad Request", 403: "Forbidden",
           404: "Not Found", 405: "Method Not Allowed", 416: "Range Not Satisfiable",
           431: "Request Header Fields Too Large", 500: "Internal Server Error",
           505: "HTTP Version Not Supported"}


def status_line(version: str, status: int) -> str:
    return f"{version} {status} {REASONS.get(status, 'Unknown')}\r\n"


@dataclass(frozen=True)
class HttpRequest:
    method: str
    target: str
    version: str
    headers: tuple[tuple[str, str], ...]  # names lower-cased

    def header(self, name: str) -> str | None:
        name = name.lower()
        return next((v for k, v in self.headers if k == name), None)

    @property
    def path(self) -> str:
        """Percent-decoded path without query or fragment (absolute-form targets too)."""
        return unquote(urlsplit(self.target).path, errors="strict")

    @property
    def keep_alive(self) -> bool:
        tokens = {t.strip().lower() for t in (self.header("connection") or "").split(",")}
        if self.version == "HTTP/1.0":
            return "keep-alive" in tokens
        return "close" not in tokens


def parse_request(head: bytes) -> HttpRequest:
    """Parse everything up to and including the blank line."""
    try:
        text = head.decode("ascii")
    except UnicodeDecodeError:
        raise HttpRequestError("request head is not ASCII") from None
    lines = text.split("\r\n")
    while lines and lines[-1] == "":
        lines.pop()
    if not lines:
        raise HttpRequestError("empty request")
    parts = lines[0].split(" ")
    if len(parts) != 3:
        raise HttpRequestError(f"request line {lines[0]!r} is not 'METHOD target HTTP/1.x'")
    method, target, version = parts
    if not _TOKEN.match(method):
        raise HttpRequestError(f"method {method!r} is not a token")
    if not _VERSION.match(version):
        raise HttpRequestError(f"version {version!r} is not HTTP/1.0 or HTTP/1.1")
    if not target or not (target.startswith("/") or target.startswith("http://")):
        raise HttpRequestError(f"target {target!r} is neither a path nor an http URL")
    headers: list[tuple[str, str]] = []
    for line in lines[1:]:
        name, sep, value = line.partition(":")
        if not sep or not _TOKEN.match(name):
            raise HttpRequestError(f"header line {line!r} is malformed")
        headers.append((name.lower(), value.strip(" \t")))
    return HttpRequest(method, target, version, tuple(headers))


def parse_range(header: str | None, size: int) -> tuple[int, int] | None:
    """``(first, last)`` inclusive for a single ``bytes=`` range; None = send everything."""
    if header is None:
        return None
    unit, _, spec = header.partition("=")
    if unit.strip().lower() != "bytes" or "," in spec:
        return None
    first_text, dash, last_text = spec.strip().partition("-")
    if not dash:
        return None
    try:
        if first_text == "":  # suffix range: the last N bytes
            length = int(last_text)
            if length <= 0 or size == 0:
                raise RangeNotSatisfiableError(f"suffix range {spec!r} of a {size}-byte file")
            return max(0, size - length), size - 1
        first = int(first_text)
        last = int(last_text) if last_text else max(first, size - 1)
    except ValueError:
        return None  # RFC 9110 14.2: an invalid range is ignored
    if first >= size and last >= first:
        raise RangeNotSatisfiableError(f"range {spec!r} starts beyond the {size}-byte file")
    if first < 0 or last < first:
        return None
    return first, min(last, size - 1)
