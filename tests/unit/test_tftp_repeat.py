"""A repeated RRQ is judged from its transfer's state, never from a clock.

OVMF's size probe sends an RRQ with tsize, gets the OACK, sends ERROR 8 to the
transfer's port and the real RRQ to port 69. The listener may see the real RRQ
before the transfer's thread has read that ERROR. These tests hand the server the
datagrams in that order, with a stand-in loop whose timers fire at once (the
transfer's thread is as late as it gets), and play the transfer's thread by hand.
"""

from __future__ import annotations

import socket
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from pxelab.core.events import EventLog
from pxelab.server.tftp import codec
from pxelab.server.tftp.codec import Ack, Error, ErrorCode, ReadRequest
from pxelab.server.tftp.files import DataRoot
from pxelab.server.tftp.server import TftpServer, TftpSettings
from pxelab.server.tftp.transfer import Local, ReadTransfer

pytestmark = pytest.mark.unit

PEER = ("192.0.2.100", 1444)
LOCAL = Local(socket.AF_INET, "192.0.2.1")
REQUEST = ReadRequest("syslinux.efi", "octet", (("blksize", "1468"), ("tsize", "0")))


class ImpatientLoop:
    """Runs every callback as soon as it is scheduled, timers included."""

    def call_later(self, delay: float, callback: Callable[..., Any], *args: Any) -> None:
        callback(*args)

    def call_soon_threadsafe(self, callback: Callable[..., Any], *args: Any) -> None:
        callback(*args)

    def is_closed(self) -> bool:
        return False


@pytest.fixture
def server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> TftpServer:
    (tmp_path / "syslinux.efi").write_bytes(b"x" * 4000)
    server = TftpServer(DataRoot(tmp_path), TftpSettings(), EventLog())
    server.loop = ImpatientLoop()  # type: ignore[assignment]
    started: list[ReadTransfer] = []
    server.started = started  # type: ignore[attr-defined]
    monkeypatch.setattr(server, "_start", lambda transfer, summary: started.append(transfer))
    return server


def probe(server: TftpServer) -> ReadTransfer:
    """The size probe's transfer: OACK sent, nothing heard, its thread not yet reading."""
    server._on_request(codec.encode(REQUEST), PEER, LOCAL, False)
    [transfer] = server.started  # type: ignore[attr-defined]
    assert server._active[PEER] is transfer
    transfer.acked, transfer.sent = -1, 0  # OACK sent, waiting for its ACK
    transfer.total_blocks = 3
    return transfer


def kinds(server: TftpServer) -> list[str]:
    return [event.kind for event in server.events]


def test_rrq_racing_the_probes_error_starts_a_new_transfer(server: TftpServer) -> None:
    first = probe(server)
    server._on_request(codec.encode(REQUEST), PEER, LOCAL, False)  # the real RRQ, first
    first._on_other(codec.encode(Error(ErrorCode.OPTION_REFUSED, "tsize probe")))  # then
    assert "drop" not in kinds(server), [e.reason for e in server.events]
    assert kinds(server) == ["rrq", "aborted", "rrq"]
    assert len(server.started) == 2  # type: ignore[attr-defined]
    assert server._active[PEER] is server.started[1]  # type: ignore[attr-defined]


def test_rrq_after_the_probes_error_starts_a_new_transfer(server: TftpServer) -> None:
    first = probe(server)
    first._on_other(codec.encode(Error(ErrorCode.OPTION_REFUSED, "tsize probe")))
    server._on_request(codec.encode(REQUEST), PEER, LOCAL, False)
    assert kinds(server) == ["rrq", "aborted", "rrq"]
    assert len(server.started) == 2  # type: ignore[attr-defined]


def test_retransmitted_rrq_is_a_duplicate_once_the_oack_is_acked(server: TftpServer) -> None:
    first = probe(server)
    server._on_request(codec.encode(REQUEST), PEER, LOCAL, False)  # a retransmission
    assert "drop" not in kinds(server)  # undecided: the transfer has not heard anything
    first.sock = _NullSocket()  # type: ignore[assignment]
    first._on_other(codec.encode(Ack(0)))
    assert kinds(server).count("drop") == 1
    assert len(server.started) == 1  # type: ignore[attr-defined]


def test_retransmitted_rrq_after_an_ack_is_dropped_at_once(server: TftpServer) -> None:
    first = probe(server)
    first.sock = _NullSocket()  # type: ignore[assignment]
    first._on_other(codec.encode(Ack(0)))
    server._on_request(codec.encode(REQUEST), PEER, LOCAL, False)
    assert kinds(server)[-1] == "drop"
    assert len(server.started) == 1  # type: ignore[attr-defined]


class _NullSocket:
    def shutdown(self, how: int) -> None:
        pass

    def send(self, data: bytes) -> int:
        return len(data)
