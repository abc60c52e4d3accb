"""Ganesha in a throwaway namespace: serves the export over NFSv4, stops without leftovers.

The namespace + bridge helper here is deliberately tiny; labs use pxelab.machine.network.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pyroute2
import pytest

from pxelab.core.errors import NfsError
from pxelab.machine.network import LabNetwork
from pxelab.machine.nfs import NFS4_OK, Ganesha
from pxelab.pytest_plugin import pxelab_requires

pytestmark = pytest.mark.netns

NFS4ERR_NOENT = 2


@contextmanager
def bridge_namespace(address: str = "192.0.2.1") -> Iterator[str]:
    """A uniquely named namespace with lo and br0 (``address``/24) up; removed afterwards."""
    pxelab_requires(root=True)
    name = f"pxelab-nfs-{uuid.uuid4().hex[:8]}"
    pyroute2.netns.create(name)
    try:
        with pyroute2.NetNS(name) as ns:
            ns.link("add", ifname="br0", kind="bridge")
            (bridge,) = ns.link_lookup(ifname="br0")
            (lo,) = ns.link_lookup(ifname="lo")
            ns.addr("add", index=bridge, address=address, prefixlen=24)
            ns.link("set", index=lo, state="up")
            ns.link("set", index=bridge, state="up")
        yield name
    finally:
        pyroute2.netns.remove(name)


def processes_mentioning(text: str) -> list[int]:
    """PIDs whose command line contains ``text`` (to prove nothing is left running)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ")
            except OSError:
                continue
            if text.encode() in cmdline:
                found.append(int(entry.name))
    return found


@pytest.fixture
def export(tmp_path: Path) -> Path:
    root = tmp_path / "export"
    (root / "sbin").mkdir(parents=True)
    (root / "sbin" / "init").write_text("#!/bin/sh\n")
    return root


def started(ganesha: Ganesha) -> Ganesha:
    return ganesha.__enter__()


def test_serves_the_export_and_stops_cleanly(export: Path, tmp_path: Path) -> None:
    with bridge_namespace() as namespace:
        ganesha = started(Ganesha(export, tmp_path / "nfs", namespace))
        try:
            assert ganesha.mount_source == "192.0.2.1:/pxelab"
            ganesha.ping()
            assert ganesha.lookup_status("/pxelab/sbin/init") == NFS4_OK
            assert ganesha.lookup_status("/pxelab/nothing") == NFS4ERR_NOENT
            assert ganesha.command[:4] == ["ip", "netns", "exec", namespace]
            pid = ganesha.process.pid if ganesha.process else -1
        finally:
            ganesha.__exit__(None, None, None)
        assert processes_mentioning(str(tmp_path / "nfs")) == []
        assert not Path(f"/proc/{pid}").exists()
        with pytest.raises(OSError):
            ganesha.ping(timeout=0.5)
        ganesha.stop()  # idempotent
    # everything it wrote is in its workdir; the pid file is gone
    assert (tmp_path / "nfs" / "ganesha.log").exists()
    assert (tmp_path / "nfs" / "recovery").is_dir()
    assert not (tmp_path / "nfs" / "ganesha.pid").exists()


def test_two_labs_at_once_do_not_interfere(tmp_path: Path) -> None:
    roots = []
    for name in ("a", "b"):
        root = tmp_path / name / "export"
        root.mkdir(parents=True)
        (root / f"only-in-{name}").write_text(name)
        roots.append(root)
    with bridge_namespace() as ns_a, bridge_namespace() as ns_b:
        first = started(Ganesha(roots[0], tmp_path / "a" / "nfs", ns_a))
        try:
            with Ganesha(roots[1], tmp_path / "b" / "nfs", ns_b) as second:
                assert first.lookup_status("/pxelab/only-in-a") == NFS4_OK
                assert first.lookup_status("/pxelab/only-in-b") == NFS4ERR_NOENT
                assert second.lookup_status("/pxelab/only-in-b") == NFS4_OK
            # stopping one leaves the other serving
            assert first.lookup_status("/pxelab/only-in-a") == NFS4_OK
        finally:
            first.__exit__(None, None, None)
    assert processes_mentioning(str(tmp_path)) == []


def test_start_failure_is_explained_and_leaves_nothing(export: Path, tmp_path: Path) -> None:
    with bridge_namespace() as namespace:
        ganesha = Ganesha(export, tmp_path / "nfs", namespace, bind_address="192.0.2.99",
                          ready_timeout=10)
        with pytest.raises(NfsError) as failure:
            started(ganesha)
        message = str(failure.value)
        assert "exited with status" in message
        assert "Cannot assign requested address" in message  # the log tail is included
        assert "192.0.2.99 is configured" in message  # and what to do
        assert ganesha.process is None
        assert processes_mentioning(str(tmp_path / "nfs")) == []


def test_serves_over_ipv6(export: Path, tmp_path: Path) -> None:
    """The IPv6 scenarios bind ganesha to the lab's IPv6 address and mount [v6]:/pxelab."""
    with LabNetwork(capture=False) as net:
        ganesha = started(Ganesha(export, tmp_path / "nfs", net.namespace,
                                  bind_address=str(net.ipv6.ip)))
        try:
            assert ganesha.mount_source == "[2001:db8::1]:/pxelab"
            assert ganesha.lookup_status("/pxelab/sbin/init") == NFS4_OK
        finally:
            ganesha.__exit__(None, None, None)
