"""HTTP request heads, byte ranges and per-client templates (pure code)."""

from __future__ import annotations

import contextlib
import random

import pytest

from pxelab.server.http import template
from pxelab.server.http.codec import (
    ByteRange,
    HttpRequestError,
    RangeNotSatisfiableError,
    RangeOutcome,
    parse_range,
    parse_request,
    status_line,
)

pytestmark = pytest.mark.unit


def head(*lines: str) -> bytes:
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


# -- request heads ---------------------------------------------------------------------------

def test_parse_get_with_query_and_escapes() -> None:
    request = parse_request(head("GET /a%20b/script.ipxe?mac=52-54-00-00-00-01&x= HTTP/1.1",
                                 "Host: 192.0.2.1", "Range:  bytes=0-9 "))
    assert request.method == "GET" and request.version == "HTTP/1.1"
    assert request.path == "/a b/script.ipxe"
    assert request.query == {"mac": "52-54-00-00-00-01", "x": ""}
    assert request.header("RANGE") == "bytes=0-9"
    assert request.keep_alive


def test_absolute_form_target() -> None:
    request = parse_request(head("GET http://192.0.2.1/boot.ipxe HTTP/1.1", "Host: x"))
    assert request.path == "/boot.ipxe"


@pytest.mark.parametrize(("version", "connection", "keep"), [
    ("HTTP/1.1", None, True), ("HTTP/1.1", "close", False), ("HTTP/1.1", "Keep-Alive, Close",
                                                              False),
    ("HTTP/1.0", None, False), ("HTTP/1.0", "keep-alive", True), ("HTTP/1.0", "close", False),
])
def test_keep_alive_rules(version: str, connection: str | None, keep: bool) -> None:
    lines = [f"GET / {version}", "Host: x"]
    if connection is not None:
        lines.append(f"Connection: {connection}")
    assert parse_request(head(*lines)).keep_alive is keep


def test_http10_needs_no_host() -> None:
    assert parse_request(head("GET / HTTP/1.0")).version == "HTTP/1.0"


@pytest.mark.parametrize("raw", [
    b"",
    b"\r\n\r\n",
    head("GET /"),
    head("GET / HTTP/2.0", "Host: x"),
    head("GET  / HTTP/1.1", "Host: x"),
    head("G(T / HTTP/1.1", "Host: x"),
    head("GET relative HTTP/1.1", "Host: x"),
    head("GET ftp://x/ HTTP/1.1", "Host: x"),
    head("GET /a#frag HTTP/1.1", "Host: x"),
    head("GET /a\x00b HTTP/1.1", "Host: x"),
    head("GET / HTTP/1.1"),  # no Host
    head("GET / HTTP/1.1", "Host: a", "Host: b"),
    head("GET / HTTP/1.1", "Host : x"),  # whitespace before the colon (RFC 9112 5.1)
    head("GET / HTTP/1.1", "Host: x", " folded"),  # obs-fold (RFC 9112 5.2)
    head("GET / HTTP/1.1", "Host: x", "X: a\rb"),  # bare CR
    head("GET / HTTP/1.1", "Host: x", "X: a\x00b"),
    head("GET / HTTP/1.1", "Host: x", "no colon"),
    "GET /é HTTP/1.1\r\nHost: x\r\n\r\n".encode(),
], ids=["empty", "blank", "no-version", "http2", "double-space", "bad-method", "relative",
        "ftp", "fragment", "nul-target", "no-host", "two-hosts", "space-colon", "obs-fold",
        "bare-cr", "nul-value", "no-colon", "non-ascii"])
def test_malformed_heads_raise(raw: bytes) -> None:
    with pytest.raises(HttpRequestError):
        parse_request(raw)


def test_bad_utf8_escape_raises_on_path() -> None:
    request = parse_request(head("GET /%C3%28 HTTP/1.1", "Host: x"))
    with pytest.raises(UnicodeDecodeError):
        _ = request.path


def test_double_slash_target_is_a_path_not_a_host() -> None:
    # shim 16.1 asks for "//grubx64.efi" when HTTP-booted from the server's root.
    request = parse_request(head("GET //grubx64.efi?mac=1 HTTP/1.1", "Host: x"))
    assert (request.path, request.query) == ("//grubx64.efi", {"mac": "1"})
    absolute = parse_request(head("GET http://x/a/b?c=d HTTP/1.1", "Host: x"))
    assert (absolute.path, absolute.query) == ("/a/b", {"c": "d"})


def test_status_line_is_http11_with_phrase() -> None:
    assert status_line(416) == "HTTP/1.1 416 Range Not Satisfiable\r\n"
    assert status_line(431) == "HTTP/1.1 431 Request Header Fields Too Large\r\n"
    assert status_line(599) == "HTTP/1.1 599 Unknown\r\n"


def test_fuzzed_heads_only_raise_request_error() -> None:
    rng = random.Random(9112)
    good = head("GET /boot.ipxe?mac=x HTTP/1.1", "Host: 192.0.2.1", "Range: bytes=1-2",
                "Connection: keep-alive")
    for _ in range(3000):
        data = bytearray(good)
        for _ in range(rng.randrange(1, 4)):
            data[rng.randrange(len(data))] = rng.randrange(256)
        with contextlib.suppress(HttpRequestError):
            request = parse_request(bytes(data))
            with contextlib.suppress(UnicodeDecodeError, ValueError):
                _ = request.path, request.query, request.keep_alive


# -- ranges (RFC 9110 14) --------------------------------------------------------------------

@pytest.mark.parametrize(("header", "size", "expected"), [
    (None, 100, RangeOutcome.ABSENT),
    ("bytes=0-9", 100, ByteRange(0, 9)),
    ("bytes=90-", 100, ByteRange(90, 99)),
    ("bytes=90-500", 100, ByteRange(90, 99)),
    ("bytes=-10", 100, ByteRange(90, 99)),
    ("bytes=-500", 100, ByteRange(0, 99)),
    ("BYTES=5-5", 100, ByteRange(5, 5)),
    ("bytes= 1-2 ", 100, ByteRange(1, 2)),
    ("bytes=1-2,", 100, ByteRange(1, 2)),  # empty list elements do not count
    ("bytes=0-1,5-6", 100, RangeOutcome.MULTIPLE),
    ("bytes=0-1, -1", 100, RangeOutcome.MULTIPLE),
    ("bytes=9-1", 100, RangeOutcome.IGNORED),  # last < first: invalid
    ("bytes=+1-2", 100, RangeOutcome.IGNORED),
    ("bytes=1_0-20", 100, RangeOutcome.IGNORED),  # int() would take it; the grammar does not
    ("bytes=a-b", 100, RangeOutcome.IGNORED),
    ("bytes=5", 100, RangeOutcome.IGNORED),
    ("items=0-1", 100, RangeOutcome.IGNORED),
    ("bytes", 100, RangeOutcome.IGNORED),
    ("bytes=", 100, RangeOutcome.IGNORED),
    ("bytes=-5", 0, RangeOutcome.IGNORED),
])
def test_parse_range(header: str | None, size: int,
                     expected: ByteRange | RangeOutcome) -> None:
    assert parse_range(header, size) == expected


@pytest.mark.parametrize(("header", "size"), [
    ("bytes=100-", 100), ("bytes=100-200", 100), ("bytes=0-0", 0), ("bytes=-0", 100)])
def test_unsatisfiable_ranges(header: str, size: int) -> None:
    with pytest.raises(RangeNotSatisfiableError):
        parse_range(header, size)


def test_byte_range_length() -> None:
    assert ByteRange(10, 19).length == 10


# -- templates -------------------------------------------------------------------------------

IPXE = """#!ipxe
echo Booting {{ mac }} ({{arch}}) as ${net0/mac}
kernel http://{{ server }}/vmlinuz-{{ mac_hyphen }} ip=${ip}
"""


def test_render_leaves_ipxe_variables_alone() -> None:
    out = template.render(IPXE, {"mac": "52:54:00:00:00:01", "arch": "7",
                                 "server": "[2001:db8::1]", "mac_hyphen": "52-54-00-00-00-01"})
    assert "Booting 52:54:00:00:00:01 (7) as ${net0/mac}" in out
    assert "http://[2001:db8::1]/vmlinuz-52-54-00-00-00-01 ip=${ip}" in out


def test_placeholders_in_order_and_malformed_kept() -> None:
    assert template.placeholders(IPXE) == ["mac", "arch", "server", "mac_hyphen"]
    assert template.render("{{ mac x {{ {mac} }}", {}) == "{{ mac x {{ {mac} }}"


def test_unknown_placeholder_names_itself() -> None:
    with pytest.raises(template.TemplateError, match=r"\{\{ colour \}\}: unknown") as error:
        template.render("{{ colour }}", {"mac": "x"})
    assert error.value.name == "colour"


def test_missing_value_says_why() -> None:
    with pytest.raises(template.TemplateError, match="client unknown") as error:
        template.render("{{ ip }} {{ mac }}", {"ip": "192.0.2.9", "mac": None},
                        {"mac": "client unknown"})
    assert error.value.name == "mac"
