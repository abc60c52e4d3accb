"""Where a TFTP transfer runs: the addresses it answers from and the settings it reads."""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass
from typing import Any, Protocol

__all__ = ["Address", "Local", "TransferSettings"]


Address = tuple[Any, ...]  # (host, port) or (host, port, flowinfo, scope_id)


@dataclass(frozen=True)
class Local:
    """The address a request was sent to, which every answer must come from."""

    family: socket.AddressFamily
    host: str
    ifindex: int = 0

    def bind_address(self, port: int = 0) -> Address:
        if self.family == socket.AF_INET:
            return (self.host, port)
        scope = self.ifindex if ipaddress.IPv6Address(self.host).is_link_local else 0
        return (self.host, port, 0, scope)


class TransferSettings(Protocol):
    """The server settings a transfer reads (:class:`~pxelab.server.tftp.server.TftpSettings`)."""

    @property
    def timeout(self) -> float: ...
    @property
    def retries(self) -> int: ...
    @property
    def max_timeout(self) -> float | None: ...
