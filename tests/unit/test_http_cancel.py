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

    async def readexactly(self, n: int) -> bytes:  # the head's first byte
        self.waiting.set()
        await asyncio.Future()  # never done
        raise AssertionError("unreachable")

    async def readuntil(self, separator: bytes = b"\n") -> bytes:
        return await self.readexactly(1)


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


class LingeringReader(asyncio.StreamReader):
    """A client that got a body cut short: it sends nothing and never closes."""

    def __init__(self) -> None:
        super().__init__()
        self.lingering = asyncio.Event()

    async def read(self, n: int = -1) -> bytes:
        self.lingering.set()
        await asyncio.Future()  # never done
        raise AssertionError("unreachable")


def test_cancelled_during_the_lingering_close_still_closes(tmp_path: Path) -> None:
    async def scenario() -> bool:
        server = HttpServer(DataRoot(tmp_path), EventLog())
        ours, theirs = socket.socketpair()
        with theirs:
            _, writer = await asyncio.open_connection(sock=ours)
            reader = LingeringReader()
            task = asyncio.create_task(server._close(reader, writer, linger=True))
            async with asyncio.timeout(5):
                await reader.lingering.wait()
            task.cancel()
            await asyncio.wait([task], timeout=5)
            return writer.is_closing()

    assert asyncio.run(scenario()), "the server stopped and left the connection open"
