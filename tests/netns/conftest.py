"""Fixtures shared by the boot-server tests in namespaces; modules override them as needed."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from dhcp6_client import Client6
from nslab import Lab, two_namespaces

from pxelab.core.events import EventLog
from pxelab.server.bootserver import BootServer


@pytest.fixture(scope="module")
def lab() -> Iterator[Lab]:
    """Module scope: the two namespaces (unique per process and xdist worker)."""
    with two_namespaces() as made:
        yield made


@pytest.fixture(scope="module")
def events() -> EventLog:
    """Module scope: the event log the module's server writes to."""
    return EventLog()


@pytest.fixture
def client_factory(lab: Lab, server: BootServer) -> Iterator[Callable[[str], Client6]]:
    """Function scope: makes DHCPv6 Client6 objects and closes them (and their addresses)
    after; the module's own ``server`` fixture must be running."""
    made: list[Client6] = []

    def make(mac: str) -> Client6:
        made.append(Client6(lab, mac))
        return made[-1]

    yield make
    for client in made:
        client.close()
