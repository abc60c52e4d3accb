"""Network namespace primitives shared by every part of the lab.

Linux network namespaces belong to threads, not processes: a thread that calls
setns(2) creates its sockets in that namespace while the rest of the process
stays where it was. The boot server runs its event loop in such a thread.
Child processes (QEMU, ganesha, tcpdump) are started through ``ip netns exec``.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

from pyroute2 import netns as _netns


def exec_prefix(namespace: str | None) -> list[str]:
    """Command prefix that runs a program inside ``namespace`` (nothing for the host)."""
    return ["ip", "netns", "exec", namespace] if namespace else []


@contextmanager
def thread_in_namespace(namespace: str | None) -> Iterator[None]:
    """Move the calling thread into ``namespace`` for the duration of the block."""
    if namespace is None:
        yield
        return
    home = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
    try:
        _netns.setns(namespace, flags=0)
        yield
    finally:
        _netns.setns(home, flags=0)
        os.close(home)
