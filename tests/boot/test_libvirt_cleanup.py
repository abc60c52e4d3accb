"""A libvirt boot stopped by Ctrl-C or killed leaves no domain, NVRAM file, bridge or veth.

Ctrl-C (SIGINT) unwinds the run: everything goes at once. SIGKILL leaves what the
run made; libvirtd destroys the domain when the connection closes (it was created
with AUTODESTROY), and the next run's reaping removes the rest.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pexpect
import pytest

from pxelab.machine.hostlink import lab_token, reap_host_links
from pxelab.machine.libvirt.connection import (
    domain_name,
    nvram_path,
    open_connection,
    reap_domains,
)
from pxelab.machine.network import sweep_stale_labs
from pxelab.pytest_plugin import pxelab_requires

pytestmark = [pytest.mark.qemu, pytest.mark.netns, pytest.mark.slow]

PXELAB = [sys.executable, "-m", "pxelab.cli"]
URI = "qemu:///system"


def leftovers(namespace: str) -> list[str]:
    """What of the lab in ``namespace`` still exists: namespace, domain, NVRAM, links."""
    found = []
    netns = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True,
                           check=True).stdout.split()
    if namespace in netns:
        found.append(f"namespace {namespace}")
    conn = open_connection(URI)
    try:
        name = domain_name(namespace)
        found += [f"domain {name}" for d in conn.listAllDomains() if d.name() == name]
    finally:
        conn.close()
    if nvram_path(domain_name(namespace)).exists():
        found.append(f"NVRAM {nvram_path(domain_name(namespace))}")
    token = lab_token(namespace)
    links = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True,
                           check=True).stdout
    found += [f"link {word}" for line in links.splitlines()
              for word in line.split()[1:2] if word.rstrip(":").split("@")[0][3:11] == token
              and word.startswith(("pxh", "pxv"))]
    return found


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGKILL], ids=["sigint", "sigkill"])
def test_stopped_libvirt_boot_leaves_nothing_after_reaping(tmp_path: Path,
                                                           sig: signal.Signals) -> None:
    pxelab_requires(root=True, tools=["virsh"], hint="apt-get install libvirt-clients")
    open_connection(URI).close()  # a HostCapabilityError (skip) without libvirtd
    # Not as an xdist worker: the lab's namespace is then pxl-m-<pid>-0.
    env = {k: v for k, v in os.environ.items() if k != "PYTEST_XDIST_WORKER"}
    child = pexpect.spawn(PXELAB[0], [*PXELAB[1:], "boot", "uefi_tftp_ipv4", "--backend",
                                      "libvirt", "--artifacts", str(tmp_path)],
                          encoding="utf-8", timeout=300, env=env)
    try:
        child.expect(r"\bnbp\s")  # mid-boot: domain, NVRAM, bridge and veth all exist
        namespace = f"pxl-m-{child.pid}-0"
        assert f"domain {domain_name(namespace)}" in leftovers(namespace)
        assert f"NVRAM {nvram_path(domain_name(namespace))}" in leftovers(namespace)
        os.kill(child.pid, sig)
        if sig == signal.SIGINT:
            child.expect("interrupted; the lab was torn down", timeout=60)
        child.expect(pexpect.EOF, timeout=60)
    finally:
        child.close(force=True)
    if sig == signal.SIGINT:
        assert child.exitstatus == 130
        assert leftovers(namespace) == [], "Ctrl-C tears everything down at once"
        return
    assert leftovers(namespace), "a killed run cannot clean up after itself"
    # What the next run does before it makes its own lab.
    sweep_stale_labs()
    reap_host_links()
    conn = open_connection(URI)
    try:
        reap_domains(conn)
    finally:
        conn.close()
    assert leftovers(namespace) == []
