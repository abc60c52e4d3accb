"""Fixtures shared by the boot-server tests in namespaces; modules override them as needed."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from nslab import Lab, two_namespaces

from pxelab.events import EventLog


@pytest.fixture(scope="module")
def lab() -> Iterator[Lab]:
    """Module scope: the two namespaces (unique per process and xdist worker)."""
    with two_namespaces() as made:
        yield made


@pytest.fixture(scope="module")
def events() -> EventLog:
    """Module scope: the event log the module's server writes to."""
    return EventLog()
