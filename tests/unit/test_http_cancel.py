"""Cancelling a connection's task (the server stopping) cancels it: never swallowed."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path

import pytest

from pxelab.core.events import EventLog
from pxelab.server.http.server import HttpServer
from pxelab.server.tftp.files import DataRoot

pytestmark = pytest.mark.unit


class WaitingReader(asyncio.StreamReader):
    """Says when the handler waits for a request head, then waits forever."""

    def __init__(self) -> None:
        super().__init__()
        self.waiting = asyncio.Event()

    async def readuntil(self, separator: bytes = b"\n") -> bytes:
        self.waiting.set()
        await asyncio.Future()  # never done
        raise AssertionError("unreachable")


def test_cancelled_connection_task_is_cancelled(tmp_path: Path) -> None:
    async def scenario() -> tuple[bool, list[str]]:
        server = HttpServer(DataRoot(tmp_path), EventLog())
        ours, theirs = socket.socketpair()
        with theirs:
            _, writer = await asyncio.open_connection(sock=ours)
            reader = WaitingReader()
            task = asyncio.create_task(server.handle(reader, writer))
            async with asyncio.timeout(5):
                await reader.waiting.wait()
            task.cancel()
            await asyncio.wait([task], timeout=5)
            assert task.done(), "the handler did not end after cancel()"
            assert writer.is_closing(), "the connection was not closed"
            return task.cancelled(), [e.kind for e in server.events]

    cancelled, kinds = asyncio.run(scenario())
    assert kinds == []
    assert cancelled, "handle() swallowed CancelledError: the task ended normally"
