"""The HTTP server of a BootServer against curl, http.client and raw sockets.

Layout: tests/netns/nslab.py's two namespaces. One module-scoped BootServer
whose policy declares the HTTP faults under test (each selected by path or by
a ``?mac=`` the request carries, so the tests do not disturb one another).
Per-client templates are checked after a crafted DHCP exchange, with curl
sending from the leased address.
"""

from __future__ import annotations

import contextlib
import http.client
import os
import re
import shutil
import socket
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from nslab import CLIENT4, CLIENT6, SERVER4, SERVER6, Lab, dhcp4_client_socket, event, in_client
from pyroute2 import NetNS
from scapy.layers.dhcp import BOOTP, DHCP

from pxelab.core.events import Event, EventLog
from pxelab.core.netns import thread_in_namespace
from pxelab.core.paths import fixtures_dir
from pxelab.pytest_plugin import pxelab_requires
from pxelab.server.bootserver import BootServer, HttpConfig, RaConfig, ServerConfig, TftpConfig
from pxelab.server.clients import ClientRecord
from pxelab.server.dhcp4 import codec as dhcp
from pxelab.server.faults import DelayPacket, DropPacket, HttpError, TruncateFile
from pxelab.server.policy import Match, RulePolicy

pytestmark = pytest.mark.netns

LEASED_MAC = "52:54:00:00:0a:01"
QUERY_MAC = "52:54:00:00:0a:77"
V6_MAC = "52:54:00:00:0a:06"
DROP_MAC = "52:54:00:00:0d:01"
DELAY_MAC = "52:54:00:00:0d:02"
DELAY_S = 0.4
IDLE_S = 0.5
BIG = 100_000


@pytest.fixture(scope="module")
def data_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Module scope: files, templates (the shipped fixture among them), escapes."""
    base = tmp_path_factory.mktemp("http")
    root = base / "root"
    (root / "broken").mkdir(parents=True)
    (root / "sub").mkdir()
    (root / "big.bin").write_bytes(os.urandom(BIG))
    (root / "trunc.bin").write_bytes(os.urandom(5000))
    (root / "broken" / "x.bin").write_bytes(b"never served")
    (root / "boot.ipxe").write_text("#!ipxe\necho plain\n")
    (root / "empty.bin").write_bytes(b"")
    shutil.copy(fixtures_dir() / "ipxe" / "script.ipxe.tmpl", root / "script.ipxe.tmpl")
    (root / "bad.ipxe.tmpl").write_text("#!ipxe\necho {{ colour }}\n")
    (root / "both.txt").write_text("plain file\n")
    (root / "both.txt.tmpl").write_text("template {{ ip }}\n")
    (base / "secret").write_text("outside the root\n")
    (root / "escape").symlink_to(base / "secret")
    (root / "escape.ipxe.tmpl").symlink_to(base / "secret")
    (root / "alias.ipxe").symlink_to(root / "boot.ipxe")
    os.mkfifo(root / "fifo")
    return root


@pytest.fixture(scope="module")
def server(lab: Lab, data_root: Path, events: EventLog) -> Iterator[BootServer]:
    """Module scope: a BootServer with HTTP faults keyed by path or ?mac=."""
    faults = (HttpError(503, "broken/*"), TruncateFile(1000, "trunc.bin"),
              DropPacket("http.request", count=0, match=Match(mac=DROP_MAC)),
              DelayPacket("http.request", DELAY_S, count=0, match=Match(mac=DELAY_MAC)))
    config = ServerConfig(data_root=data_root, tftp=TftpConfig(enabled=False),
                          ra=RaConfig(enabled=False), http=HttpConfig(idle_timeout=IDLE_S))
    with BootServer(config, RulePolicy(), events, faults=faults,
                    namespace=lab.server) as running:
        yield running


# -- helpers ---------------------------------------------------------------------------------

def curl(lab: Lab, *args: str) -> tuple[int, str, str]:
    """curl in the client namespace: (exit code, stdout, stderr)."""
    pxelab_requires(tools=["curl"], hint="apt-get install curl")
    result = in_client(lab, ["curl", "-sS", "-g", "--max-time", "5", *args], timeout=10)
    return result.returncode, result.stdout, result.stderr


def connect(lab: Lab, host: str = SERVER4) -> socket.socket:
    with thread_in_namespace(lab.client):
        sock = socket.create_connection((host, 80), timeout=5)
    return sock


def read_all(sock: socket.socket) -> bytes:
    """Everything until the server closes."""
    chunks = []
    while chunk := sock.recv(65536):
        chunks.append(chunk)
    return b"".join(chunks)


def raw(lab: Lab, data: bytes, host: str = SERVER4) -> bytes:
    with contextlib.closing(connect(lab, host)) as sock:
        sock.sendall(data)
        return read_all(sock)


def statuses(answer: bytes) -> list[int]:
    return [int(m) for m in re.findall(rb"^HTTP/1\.1 (\d{3}) ", answer, re.MULTILINE)]


def get(lab: Lab, path: str, headers: dict[str, str] | None = None, method: str = "GET",
        host: str = SERVER4) -> http.client.HTTPResponse:
    with thread_in_namespace(lab.client):
        conn = http.client.HTTPConnection(host, 80, timeout=5)
        conn.connect()
    conn.request(method, path, headers=headers or {})
    response = conn.getresponse()
    response.read()
    conn.close()
    return response


# -- curl over IPv4 and IPv6 -----------------------------------------------------------------

@pytest.mark.parametrize("host", [SERVER4, f"[{SERVER6}]"], ids=["ipv4", "ipv6"])
def test_curl_range_head_keepalive_and_416(lab: Lab, server: BootServer, events: EventLog,
                                           host: str) -> None:
    url = f"http://{host}/big.bin"
    code, out, err = curl(lab, "-r", "10-19", "-D", "-", "-o", "/dev/null", url)
    assert code == 0 and "HTTP/1.1 206" in out and f"Content-Range: bytes 10-19/{BIG}" in out
    assert "Content-Length: 10\n" in out
    code, out, _ = curl(lab, "-I", url)
    assert code == 0 and "HTTP/1.1 200" in out and f"Content-Length: {BIG}\n" in out
    assert "Date: " in out and "Accept-Ranges: bytes" in out
    # two URLs in one curl call: the second reuses the first connection
    code, out, err = curl(lab, "-o", "/dev/null", "-o", "/dev/null",
                          "-w", "%{http_code} %{num_connects} %{size_download}\n",
                          url, f"http://{host}/boot.ipxe")
    assert code == 0, err
    assert out.splitlines() == [f"200 1 {BIG}", "200 0 18"]
    code, out, _ = curl(lab, "-r", f"{BIG}-", "-D", "-", "-o", "/dev/null",
                        "-w", "%{http_code}", url)
    assert out.endswith("416") and f"Content-Range: bytes */{BIG}" in out
    assert "Content-Length: 0\n" in out
    events.wait_for(event("http", "get", file="/big.bin", status=416), 5, "http.get 416")


def test_curl_range_body_is_the_slice(lab: Lab, server: BootServer, tmp_path: Path,
                                      data_root: Path) -> None:
    out = tmp_path / "part"
    code, _, err = curl(lab, "-r", "-100", "-o", str(out), f"http://{SERVER4}/big.bin")
    assert code == 0, err
    assert out.read_bytes() == (data_root / "big.bin").read_bytes()[-100:]


# -- http.client -----------------------------------------------------------------------------

def test_multiple_ranges_get_the_whole_file_and_head_ignores_range(
        lab: Lab, server: BootServer, events: EventLog) -> None:
    whole = get(lab, "/big.bin", {"Range": "bytes=0-1,5-6"})
    assert whole.status == 200 and whole.getheader("Content-Length") == str(BIG)
    seen = events.wait_for(lambda e: e.source == "http" and "0-1,5-6" in e.request, 5,
                           "multi-range get")
    assert seen.reason == "several ranges asked: whole file served"
    head = get(lab, "/big.bin", {"Range": "bytes=0-1"}, method="HEAD")
    assert head.status == 200 and head.getheader("Content-Length") == str(BIG)
    empty = get(lab, "/empty.bin", {"Range": "bytes=-5"})
    assert empty.status == 200 and empty.getheader("Content-Length") == "0"


@pytest.mark.parametrize(("path", "status"), [
    ("/../secret", 403), ("/%2e%2e/secret", 403), ("/sub/..%2f..%2fsecret", 403),
    ("/boot%00.ipxe", 403), ("/escape", 403), ("/escape.ipxe", 403), ("/fifo", 404),
    ("/sub", 404), ("/", 404), ("/missing.efi", 404), ("/%C3%28", 400),
    ("/alias.ipxe", 200), ("/boot.ipxe?x=1&y", 200), ("/b%6F%6Ft.ipxe", 200),
])
def test_paths_refused_or_served(lab: Lab, server: BootServer, events: EventLog, path: str,
                                 status: int) -> None:
    response = get(lab, path)
    assert response.status == status
    assert response.getheader("Content-Length") is not None
    seen = events.wait_for(lambda e: e.source == "http" and e.kind == "get"
                           and e.request == f"GET {path}", 5, f"event for {path}")
    assert seen.details["status"] == status
    assert get(lab, "/boot.ipxe").status == 200  # still serving


# -- raw sockets -----------------------------------------------------------------------------

def test_pipelined_requests_answered_in_order(lab: Lab, server: BootServer) -> None:
    answer = raw(lab, b"GET /boot.ipxe HTTP/1.1\r\nHost: a\r\n\r\n"
                      b"HEAD /big.bin HTTP/1.1\r\nHost: a\r\n\r\n"
                      b"GET /nope HTTP/1.1\r\nHost: a\r\n\r\n"
                      b"GET /boot.ipxe HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"
                      b"GET /never-read HTTP/1.1\r\nHost: a\r\n\r\n")
    assert statuses(answer) == [200, 200, 404, 200]
    assert answer.count(b"#!ipxe\necho plain\n") == 2
    assert answer.rstrip().endswith(b"echo plain")


def test_http10_keep_alive_rules(lab: Lab, server: BootServer) -> None:
    answer = raw(lab, b"GET /boot.ipxe HTTP/1.0\r\n\r\n")  # 1.0: closed after one answer
    assert statuses(answer) == [200] and b"Connection: close" in answer
    with contextlib.closing(connect(lab)) as sock:
        sock.sendall(b"GET /boot.ipxe HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
        first = b""
        while not first.endswith(b"echo plain\n"):
            first += sock.recv(4096)
        assert b"Connection: keep-alive" in first
        sock.sendall(b"HEAD /boot.ipxe HTTP/1.0\r\n\r\n")
        second = read_all(sock)
    assert statuses(second) == [200] and b"Content-Length: 18" in second


@pytest.mark.parametrize(("request_bytes", "status"), [
    (b"GET / HTTP/1.1\r\nHost: a\r\nX: " + b"a" * 20000 + b"\r\n\r\n", 431),
    (b"GET / HTTP/1.1\r\nHost: a\r\nX: " + b"a" * 20000, 431),  # never ends
    (b"GET /boot.ipxe HTTP/1.1\r\n\r\n", 400),  # no Host
    (b"GET /boot.ipxe HTTP/1.1\r\nHost: a\r\n folded\r\n\r\n", 400),
    (b"GET /boot.ipxe HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\n\r\nbody", 400),
    (b"GET /boot.ipxe HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
     400),
    (b"DELETE /boot.ipxe HTTP/1.1\r\nHost: a\r\n\r\n", 405),
    (b"GET /boot.ipxe HTTP/3\r\nHost: a\r\n\r\n", 400),
    (b"\x00\xff\xfe garbage\r\n\r\n", 400),
], ids=["431", "431-unended", "no-host", "obs-fold", "body", "chunked", "405", "http3",
        "binary"])
def test_malformed_requests_refused_then_serving(lab: Lab, server: BootServer,
                                                 events: EventLog, request_bytes: bytes,
                                                 status: int) -> None:
    before = len(events.matching(event("http", "error", status=status)))
    with contextlib.closing(connect(lab)) as sock:
        sock.sendall(request_bytes)
        answer = read_all(sock)
    assert statuses(answer) == [status]
    assert b"Connection: close" in answer and b"Content-Length: " in answer
    if status == 405:
        assert b"Allow: GET, HEAD" in answer
    events.wait_for(lambda e: e.source == "http" and e.kind == "error"
                    and len(events.matching(event("http", "error", status=status))) > before,
                    5, f"http.error {status}")
    assert get(lab, "/boot.ipxe").status == 200


def test_idle_connection_closed_with_event(lab: Lab, server: BootServer,
                                           events: EventLog) -> None:
    with contextlib.closing(connect(lab)) as sock:
        local = sock.getsockname()
        started = time.monotonic()
        assert sock.recv(100) == b""  # closed by the server, no answer
        elapsed = time.monotonic() - started
    assert IDLE_S * 0.8 <= elapsed < IDLE_S + 2
    timeout = events.wait_for(event("http", "timeout", client=local[0]), 5, "http.timeout")
    assert timeout.details["idle"] is False and "no complete request" in timeout.reason


@pytest.mark.parametrize("rest", [b"", b"GET /boot"], ids=["unused", "request-cut"])
def test_a_kept_alive_connection_left_unused_is_told_from_a_request_cut(
        lab: Lab, server: BootServer, events: EventLog, rest: bytes) -> None:
    # A boot loader keeps the connection of its last file and starts the kernel: no
    # request follows, and nothing was lost (multiboot's transfer check skips it).
    def after_one(e: Event) -> bool:
        return e.source == "http" and e.kind == "timeout" and e.details.get("requests") == 1

    before = len(events.matching(after_one))
    with contextlib.closing(connect(lab)) as sock:
        sock.sendall(b"GET /boot.ipxe HTTP/1.1\r\nHost: x\r\n\r\n" + rest)
        assert statuses(read_all(sock)) == [200]
    events.wait_for(lambda e: after_one(e) and len(events.matching(after_one)) > before, 5,
                    "http.timeout after one request")
    timeout = events.matching(after_one)[-1]
    assert timeout.details["idle"] is (not rest)
    assert ("unused" in timeout.reason) is (not rest)


# -- per-client templates --------------------------------------------------------------------

def dhcp_lease(lab: Lab, mac: str, arch: int) -> str:
    """DISCOVER/OFFER/REQUEST/ACK with scapy-built packets; the leased address."""
    with dhcp4_client_socket(lab) as sock:
        sock.settimeout(5)
        chaddr = bytes.fromhex(mac.replace(":", ""))
        extra = [(93, arch.to_bytes(2, "big")), (77, b"iPXE")]

        def exchange(xid: int, options: list[object]) -> dhcp.DhcpMessage:
            packet = BOOTP(chaddr=chaddr, xid=xid, flags=0x8000) / DHCP(
                options=[*options, *extra, "end"])
            sock.sendto(bytes(packet), ("255.255.255.255", 67))
            while True:
                message = dhcp.decode(sock.recvfrom(4096)[0])
                if message.xid == xid:
                    return message

        offer = exchange(0x7001, [("message-type", "discover")])
        ack = exchange(0x7002, [("message-type", "request"), ("server_id", SERVER4),
                                ("requested_addr", str(offer.yiaddr))])
    assert ack.message_type is dhcp.MessageType.ACK
    return str(ack.yiaddr)


@pytest.fixture(scope="module")
def leased(lab: Lab, server: BootServer, events: EventLog) -> str:
    """Module scope: LEASED_MAC (arch 7) leased an address, now on the client's eth0."""
    address = dhcp_lease(lab, LEASED_MAC, 7)
    events.wait_for(event("dhcp4", "ack", client=LEASED_MAC), 5, "dhcp4.ack")
    with NetNS(lab.client) as ns:
        ns.addr("add", index=ns.link_lookup(ifname="eth0")[0], address=address, prefixlen=24)
    return address


def test_template_rendered_for_the_leased_client(lab: Lab, server: BootServer, leased: str,
                                                 events: EventLog) -> None:
    assert server.clients.by_address(leased) is not None
    code, out, err = curl(lab, "--interface", leased, f"http://{SERVER4}/script.ipxe")
    assert code == 0, err
    assert out.startswith("#!ipxe\n")
    assert (f"echo pxelab: pxe-525400000a01 mac {LEASED_MAC} arch 7 ip {leased} "
            f"via {SERVER4}") in out
    assert "BOOTIF=01-52-54-00-00-0a-01" in out and "hosts/525400000a01.ipxe" in out
    assert "set base http://192.0.2.1\n" in out and "${base}/vmlinuz" in out
    assert "{{" not in out
    seen = events.wait_for(event("http", "get", file="/script.ipxe", client=leased), 5,
                           "rendered get")
    assert seen.details["template"] == "script.ipxe.tmpl" and seen.mac == LEASED_MAC
    code, head, _ = curl(lab, "--interface", leased, "-I", f"http://{SERVER4}/script.ipxe")
    assert f"Content-Length: {len(out.encode())}\n" in head
    code, part, _ = curl(lab, "--interface", leased, "-r", "0-5",
                         f"http://{SERVER4}/script.ipxe")
    assert part == "#!ipxe"


def test_template_for_unknown_client_is_500_naming_the_placeholder(
        lab: Lab, server: BootServer, events: EventLog) -> None:
    response = get(lab, "/script.ipxe")  # from CLIENT4: no lease known
    assert response.status == 500
    seen = events.wait_for(event("http", "get", file="/script.ipxe", client=CLIENT4,
                                 status=500), 5, "500 for an unknown client")
    assert seen.details["placeholder"] == "hostname"
    assert "no DHCP lease seen" in seen.reason
    bad = get(lab, "/bad.ipxe?mac=52:54:00:00:00:01")
    assert bad.status == 500
    seen = events.wait_for(event("http", "get", file="/bad.ipxe", status=500), 5, "bad")
    assert seen.details["placeholder"] == "colour" and "{{ colour }}: unknown" in seen.reason


def test_query_overrides_the_directory(lab: Lab, server: BootServer, leased: str) -> None:
    code, out, _ = curl(lab, f"http://{SERVER4}/script.ipxe?mac={QUERY_MAC.replace(':', '-')}"
                             "&arch=16&hostname=node7")
    assert code == 0 and f"echo pxelab: node7 mac {QUERY_MAC} arch 16 ip {CLIENT4}" in out
    # a MAC the directory knows brings its arch along
    code, out, _ = curl(lab, f"http://{SERVER4}/script.ipxe?mac={LEASED_MAC}")
    assert f"mac {LEASED_MAC} arch 7 ip {CLIENT4}" in out
    for query in ("mac=zz", "arch=x86", "hostname=a%0aimgexec%20evil", "ip=1.2.3"):
        assert get(lab, f"/script.ipxe?{query}").status == 400, query


def test_urllib_template_and_500(lab: Lab, server: BootServer) -> None:
    url = f"http://{SERVER4}/script.ipxe?mac={QUERY_MAC}&hostname=urllib-node"
    with thread_in_namespace(lab.client), urllib.request.urlopen(url, timeout=5) as response:
        text = response.read().decode()
        assert response.headers["Content-Length"] == str(len(text.encode()))
    assert f"echo pxelab: urllib-node mac {QUERY_MAC} arch 0 ip {CLIENT4}" in text
    with thread_in_namespace(lab.client), pytest.raises(urllib.error.HTTPError) as failed:
        urllib.request.urlopen(f"http://{SERVER4}/bad.ipxe?mac={QUERY_MAC}", timeout=5)
    assert failed.value.code == 500
    assert b"{{ colour }}" in failed.value.read()
    failed.value.close()


def test_template_wins_over_plain_file_and_ipv6(lab: Lab, server: BootServer) -> None:
    assert curl(lab, f"http://{SERVER4}/both.txt")[1] == f"template {CLIENT4}\n"
    server.clients.add(ClientRecord(CLIENT6, V6_MAC, "dhcp6", 16))
    code, out, err = curl(lab, f"http://[{SERVER6}]/script.ipxe")
    assert code == 0, err
    assert f"mac {V6_MAC} arch 16 ip {CLIENT6} via [{SERVER6}]" in out
    assert f"set base http://[{SERVER6}]\n" in out


# -- faults ----------------------------------------------------------------------------------

def test_fault_status(lab: Lab, server: BootServer, events: EventLog) -> None:
    response = get(lab, "/broken/x.bin")
    assert response.status == 503
    fired = events.wait_for(event("fault", "injected", request="GET broken/x.bin"), 5, "fault")
    assert fired.reason == "HTTP 503 for broken/*"


def test_fault_truncate(lab: Lab, server: BootServer, events: EventLog) -> None:
    code, out, _ = curl(lab, "-o", "/dev/null", "-D", "-", "-w", "%{size_download}",
                        f"http://{SERVER4}/trunc.bin")
    assert code == 18  # CURLE_PARTIAL_FILE: the transfer ended short of Content-Length
    assert "Content-Length: 5000\n" in out and out.endswith("1000")
    seen = events.wait_for(event("http", "get", file="/trunc.bin"), 5, "truncated get")
    assert seen.details["bytes"] == 1000 and "truncated" in seen.reason
    assert not seen.details["keep_alive"]


def test_fault_drop_and_delay(lab: Lab, server: BootServer, events: EventLog) -> None:
    code, _, err = curl(lab, f"http://{SERVER4}/boot.ipxe?mac={DROP_MAC}")
    assert code == 52, err  # CURLE_GOT_NOTHING: closed without an answer
    events.wait_for(event("http", "drop", client=CLIENT4), 5, "http.drop")
    started = time.monotonic()
    code, out, _ = curl(lab, f"http://{SERVER4}/boot.ipxe?mac={DELAY_MAC}")
    assert code == 0 and out == "#!ipxe\necho plain\n"
    assert time.monotonic() - started >= DELAY_S
    fired = events.wait_for(lambda e: e.source == "fault" and "delay" in e.reason, 5, "delay")
    assert fired.reason.startswith("delay http.request")


def test_stopping_with_a_keep_alive_connection_open_is_not_an_error(
        lab: Lab, data_root: Path, tmp_path: Path) -> None:
    """GRUB keeps its HTTP connection open until the kernel runs; stopping then is normal."""
    events = EventLog()
    config = ServerConfig.only("http", data_root=data_root, http=HttpConfig(port=8080))
    with BootServer(config, RulePolicy(), events, namespace=lab.server):
        sock = connect_port(lab, 8080)
        sock.sendall(b"GET /boot.ipxe HTTP/1.1\r\nHost: x\r\n\r\n")
        events.wait_for(event("http", "get"), 5, "the GET answered")
    sock.close()
    assert [e.summary() for e in events if e.kind == "error"] == []


def connect_port(lab: Lab, port: int) -> socket.socket:
    with thread_in_namespace(lab.client):
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.settimeout(5)
    sock.connect((SERVER4, port))
    return sock
