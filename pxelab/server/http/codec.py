"""HTTP/1.x request heads and byte ranges (pure, no sockets).

- Request line: RFC 9112 section 3 (``method SP request-target SP HTTP-version``);
  origin-form and absolute-form targets (3.2.1, 3.2.2). The server answers
  every request as HTTP/1.1 (RFC 9110 section 6.2: the highest minor version
  it conforms to).
- Header fields: RFC 9112 section 5 (no whitespace before the colon, 5.1;
  no obsolete line folding, 5.2) and RFC 9110 section 5.5 (no CR, LF or NUL in
  a value). An HTTP/1.1 request needs exactly one Host (RFC 9112 3.2).
- Persistence: RFC 9112 section 9.3 (1.1 persists unless ``Connection: close``;
  1.0 only with ``Connection: keep-alive``).
- Ranges: RFC 9110 section 14. One ``bytes`` range-spec is honoured (206); a
  range that starts past the end is 416; several range-specs are *ignored* and
  the whole file is served (200), as 14.2 allows ("A server MAY ignore the
  Range header field"); an invalid ranges-specifier is ignored too (14.2).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import Enum
from http import HTTPStatus
from urllib.parse import parse_qsl, unquote, urlsplit

__all__ = ["ByteRange", "HttpRequest", "HttpRequestError", "RangeNotSatisfiableError",
           "RangeOutcome", "parse_range", "parse_request", "reason_phrase", "status_line"]


class HttpRequestError(ValueError):
    """The request head is malformed (answer 400)."""


class RangeNotSatisfiableError(ValueError):
    """The Range header names no byte of the file (answer 416)."""


_TOKEN = re.compile(r"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$")  # RFC 9110 5.6.2
_VERSION = re.compile(r"^HTTP/1\.[01]$")
_DIGITS = re.compile(r"^[0-9]+$")
_BAD_VALUE = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")  # CTLs except HTAB (RFC 9110 5.5)
_BAD_TARGET = re.compile(r"[\x00-\x20\x7f#]")  # no whitespace, CTL or fragment in a target


_RFC9110_PHRASES = {413: "Content Too Large", 416: "Range Not Satisfiable"}  # 15.5.14, 15.5.17


def reason_phrase(status: int) -> str:
    if status in _RFC9110_PHRASES:
        return _RFC9110_PHRASES[status]
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Unknown"


def status_line(status: int) -> str:
    return f"HTTP/1.1 {status} {reason_phrase(status)}\r\n"


@dataclass(frozen=True)
class HttpRequest:
    method: str
    target: str
    version: str
    headers: tuple[tuple[str, str], ...]  # names lower-cased

    def header(self, name: str) -> str | None:
        name = name.lower()
        return next((v for k, v in self.headers if k == name), None)

    def header_count(self, name: str) -> int:
        name = name.lower()
        return sum(1 for k, _ in self.headers if k == name)

    @property
    def path(self) -> str:
        """Percent-decoded path without the query (absolute-form targets too).

        Raises UnicodeDecodeError when the escapes are not UTF-8.
        """
        return unquote(self._parts()[0], errors="strict")

    @property
    def query(self) -> dict[str, str]:
        """Query parameters, percent-decoded; the last of repeated names wins."""
        return dict(parse_qsl(self._parts()[1], keep_blank_values=True, errors="strict"))

    def _parts(self) -> tuple[str, str]:
        """(path, query) of the target. An origin-form target is split at "?" only:
        "//grubx64.efi" (shim 16.1 over HTTP asks for that) is a path with an empty
        first segment, which urlsplit would read as a host name (RFC 9112 3.2.1)."""
        if self.target.startswith("/"):
            path, _, query = self.target.partition("?")
            return path, query
        url = urlsplit(self.target)
        return url.path, url.query

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
    method, target, version = _request_line(lines[0])
    headers: list[tuple[str, str]] = []
    for line in lines[1:]:
        headers.append(_field_line(line))
    request = HttpRequest(method, target, version, tuple(headers))
    hosts = request.header_count("host")
    if hosts > 1 or (hosts == 0 and version == "HTTP/1.1"):
        raise HttpRequestError(f"HTTP/1.1 needs exactly one Host header, got {hosts} "
                               "(RFC 9112 3.2)")
    return request


def _request_line(line: str) -> tuple[str, str, str]:
    parts = line.split(" ")
    if len(parts) != 3:
        raise HttpRequestError(f"request line {line!r} is not 'METHOD target HTTP/1.x'")
    method, target, version = parts
    if not _TOKEN.match(method):
        raise HttpRequestError(f"method {method!r} is not a token")
    if not _VERSION.match(version):
        raise HttpRequestError(f"version {version!r} is not HTTP/1.0 or HTTP/1.1")
    if not (target.startswith("/") or target.lower().startswith("http://")):
        raise HttpRequestError(f"target {target!r} is neither a path nor an http URL")
    if _BAD_TARGET.search(target):
        raise HttpRequestError(f"target {target!r} holds a control character or '#'")
    return method, target, version


def _field_line(line: str) -> tuple[str, str]:
    if line[:1] in (" ", "\t"):
        raise HttpRequestError(f"obsolete line folding in {line!r} (RFC 9112 5.2)")
    name, sep, value = line.partition(":")
    if not sep or not _TOKEN.match(name):
        raise HttpRequestError(f"header line {line!r} is malformed")
    value = value.strip(" \t")
    if _BAD_VALUE.search(value):
        raise HttpRequestError(f"header {name} holds a control character")
    return name.lower(), value


class RangeOutcome(Enum):
    """Why a Range header did not select a part of the file."""

    ABSENT = "no Range header"
    IGNORED = "Range ignored: not a valid bytes range"
    MULTIPLE = "several ranges asked: whole file served"


@dataclass(frozen=True)
class ByteRange:
    first: int
    last: int  # inclusive

    @property
    def length(self) -> int:
        return self.last - self.first + 1


def parse_range(header: str | None, size: int) -> ByteRange | RangeOutcome:
    """The byte range to send of a ``size``-byte file, or why the whole file goes out.

    Raises RangeNotSatisfiableError when the one range names no byte of the file.
    """
    if header is None:
        return RangeOutcome.ABSENT
    unit, eq, spec = header.partition("=")
    if not eq or unit.strip().lower() != "bytes":
        return RangeOutcome.IGNORED
    specs = [s.strip(" \t") for s in spec.split(",")]
    specs = [s for s in specs if s]  # RFC 9110 5.6.1: empty list elements do not count
    if not specs:
        return RangeOutcome.IGNORED
    parsed = [_range_spec(s) for s in specs]
    valid = [p for p in parsed if p is not None]
    if len(valid) != len(parsed):
        return RangeOutcome.IGNORED
    if len(valid) > 1:
        return RangeOutcome.MULTIPLE
    first, last = valid[0]
    if first is None:  # suffix range: the last ``last`` bytes (14.1.3)
        assert last is not None
        if last == 0:
            raise RangeNotSatisfiableError(f"suffix range {spec!r} asks for no byte")
        if size == 0:
            return RangeOutcome.IGNORED  # satisfiable per 14.1.1, yet no byte to name
        return ByteRange(max(0, size - last), size - 1)
    if first >= size:
        raise RangeNotSatisfiableError(f"range {spec!r} starts beyond the {size}-byte file")
    return ByteRange(first, size - 1 if last is None else min(last, size - 1))


def _range_spec(text: str) -> tuple[int | None, int | None] | None:
    """``(first, last)`` of one range-spec (either may be None), or None if invalid."""
    first_text, dash, last_text = text.partition("-")
    if not dash:
        return None
    if first_text == "":
        return (None, int(last_text)) if _DIGITS.match(last_text) else None
    if not _DIGITS.match(first_text) or (last_text and not _DIGITS.match(last_text)):
        return None
    first = int(first_text)
    last = int(last_text) if last_text else None
    if last is not None and last < first:
        return None  # RFC 9110 14.1.1: invalid, so the whole header is ignored
    return first, last
