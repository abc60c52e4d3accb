"""The initrd regressions' builders without QEMU: driverless spec, initramfs-tools config and
hook, the NFSv3 command line, the port mapper codec, the regressions and their
console patterns."""

from __future__ import annotations

import re
import socket
import struct
import subprocess
from dataclasses import replace
from pathlib import Path

import pytest

from pxelab.core.errors import ConfigError
from pxelab.machine import nfs
from pxelab.machine.payload import (
    INIT_PANIC,
    Initramfs,
    Payload,
    PayloadSpec,
    initramfs_tools_cmdline,
)
from pxelab.machine.payload import initramfs_tools as itools
from pxelab.machine.payload.builder import cache_key
from pxelab.scenarios import milestones as ms
from pxelab.scenarios.matrix import find_case
from pxelab.scenarios.regressions import apply_regressions, get_regression

pytestmark = pytest.mark.unit

PACKAGES = {"linux-image-6.1.0-56-cloud-amd64": "6.1.192-2", "busybox-static": "1:1.35"}


# -- PayloadSpec / Payload ------------------------------------------------------------------

def test_omit_modules_drops_the_driver_and_its_companions() -> None:
    spec = PayloadSpec(omit_modules=("virtio-net",))
    assert spec.wanted_modules() == ("nfsv4",)
    assert PayloadSpec().wanted_modules() == ("virtio_pci", "virtio_net", "nfsv4")


def test_cache_key_covers_the_new_fields() -> None:
    base = cache_key(PayloadSpec(), PACKAGES)
    assert base != cache_key(PayloadSpec(omit_modules=("virtio_net",)), PACKAGES)
    tools = PayloadSpec(initramfs=Initramfs.INITRAMFS_TOOLS)
    assert base != cache_key(tools, PACKAGES)
    assert cache_key(tools, PACKAGES) != cache_key(replace(tools, mkinitramfs_modules="most"),
                                                   PACKAGES)


def test_spec_takes_initramfs_by_name_and_checks_modules_setting() -> None:
    spec = PayloadSpec(initramfs="initramfs-tools")  # type: ignore[arg-type]
    assert spec.initramfs is Initramfs.INITRAMFS_TOOLS
    with pytest.raises(ConfigError, match="choose one of"):
        PayloadSpec(initramfs="dracut")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="mkinitramfs_modules"):
        PayloadSpec(mkinitramfs_modules="all")


def test_payload_names_its_modules_and_its_command_line(tmp_path: Path) -> None:
    payload = Payload(tmp_path / "k", tmp_path / "i", tmp_path / "r", "6.1", {},
                      modules=("kernel/drivers/net/virtio_net.ko.xz", "kernel/fs/nfs/nfsv4.ko"))
    assert payload.module_names == ("virtio_net", "nfsv4")
    assert payload.nfs_version == 4
    assert "pxelab.nfsroot=192.0.2.1:/pxelab" in payload.kernel_cmdline("192.0.2.1:/pxelab")
    tools = replace(payload, initramfs=Initramfs.INITRAMFS_TOOLS)
    assert tools.nfs_version == 3
    assert tools.kernel_cmdline("192.0.2.1:/pxelab").split() == [
        "console=ttyS0", "panic=-1", "boot=nfs", "nfsroot=192.0.2.1:/pxelab,tcp,vers=3,port=2049",
        "ip=dhcp"]


@pytest.mark.parametrize("bad", ["[2001:db8::1]:/pxelab", "192.0.2.1:/a,b", "host:/x", "1.2.3.4"])
def test_initramfs_tools_cmdline_refuses(bad: str) -> None:
    with pytest.raises(ConfigError):
        initramfs_tools_cmdline(bad)


# -- initramfs-tools config and hook --------------------------------------------------------

def test_confdir_has_modules_setting_and_hook(tmp_path: Path) -> None:
    itools.write_confdir(tmp_path / "conf", "most", ("e1000",))
    conf = (tmp_path / "conf" / "initramfs.conf").read_text()
    assert "MODULES=most\n" in conf and "BOOT=nfs\n" in conf and "COMPRESS=gzip\n" in conf
    assert (tmp_path / "conf" / "modules").read_text() == "e1000\n"
    hook = tmp_path / "conf" / "hooks" / "pxelab-netdev-wait"
    assert hook.stat().st_mode & 0o111
    assert subprocess.run([str(hook), "prereqs"], capture_output=True, text=True,
                          check=True).stdout.strip() == ""


def _run_hook(tmp_path: Path, functions: str) -> subprocess.CompletedProcess[str]:
    hook = tmp_path / "hook"
    hook.write_text(itools.netdev_wait_hook(7))
    hook.chmod(0o755)
    (tmp_path / "dest" / "scripts").mkdir(parents=True)
    (tmp_path / "dest" / "scripts" / "functions").write_text(functions)
    return subprocess.run([str(hook)], env={"DESTDIR": str(tmp_path / "dest"),
                                            "PATH": "/usr/bin:/bin"},
                          capture_output=True, text=True, check=False)


def test_netdev_wait_hook_shortens_debians_wait(tmp_path: Path) -> None:
    result = _run_hook(tmp_path, "configure_networking()\n{\n\tlocal netdevwait=180\n}\n")
    assert result.returncode == 0, result.stderr
    text = (tmp_path / "dest" / "scripts" / "functions").read_text()
    assert "\tlocal netdevwait=7\n" in text


def test_netdev_wait_hook_fails_on_another_initramfs_tools(tmp_path: Path) -> None:
    result = _run_hook(tmp_path, "configure_networking()\n{\n\tlocal netdevwait=60\n}\n")
    assert result.returncode == 1
    assert "initramfs-tools changed" in result.stderr


def test_packed_modules_from_an_unpacked_image(tmp_path: Path) -> None:
    root = tmp_path / "usr/lib/modules/6.1.0-56-amd64/kernel/drivers/net/ethernet/intel/e1000"
    root.mkdir(parents=True)
    (root / "e1000.ko").write_bytes(b"")
    (tmp_path / "usr/lib/modules/6.1.0-56-amd64/modules.dep").write_text("")
    assert itools.packed_modules(tmp_path) == ("kernel/drivers/net/ethernet/intel/e1000/e1000.ko",)


def test_mkinitramfs_runs_in_a_private_mount_namespace(tmp_path: Path) -> None:
    argv = itools.command(tmp_path, tmp_path / "k", "6.1.0-56-amd64", tmp_path / "c",
                          tmp_path / "out")
    assert argv[:4] == ["unshare", "--mount", "--propagation", "private"]
    script = argv[6]
    assert "exec mkinitramfs -d" in script and " /usr/lib\n" in script
    assert "/etc/initramfs-tools" not in script


# -- port mapper and ganesha NFSv3 ----------------------------------------------------------

PORTS = {(nfs.NFS_PROGRAM, 3, nfs.IPPROTO_TCP): 2049,
         (nfs.MOUNT_PROGRAM, 3, nfs.IPPROTO_TCP): nfs.MOUNT_PORT}


def _result(reply: bytes, xid: int) -> bytes:
    return nfs.rpc_reply_result(reply, xid)


def test_getport_answers_from_the_table() -> None:
    call = nfs.pmap_getport_call(7, nfs.MOUNT_PROGRAM, 3)
    assert _result(nfs.pmap_reply(call[4:], PORTS), 7) == struct.pack(">I", nfs.MOUNT_PORT)
    call = nfs.pmap_getport_call(8, nfs.MOUNT_PROGRAM, 3, nfs.IPPROTO_UDP)
    assert _result(nfs.pmap_reply(call[4:], PORTS), 8) == struct.pack(">I", 0)


def test_registrations_are_acknowledged_and_other_programs_refused() -> None:
    set_call = nfs.rpc_call(9, nfs.PROC_SET, b"\0" * 20, program=nfs.PMAP_PROGRAM, version=4)
    assert _result(nfs.pmap_reply(set_call[4:], PORTS), 9) == struct.pack(">I", 1)
    other = nfs.rpc_call(10, 0, program=nfs.NFS_PROGRAM, version=3)
    with pytest.raises(ValueError, match="accept_stat=1"):
        _result(nfs.pmap_reply(other[4:], PORTS), 10)
    old = nfs.rpc_call(11, 0, program=nfs.PMAP_PROGRAM, version=1)
    with pytest.raises(ValueError, match="accept_stat=2"):
        _result(nfs.pmap_reply(old[4:], PORTS), 11)


def test_truncated_call_is_rejected() -> None:
    with pytest.raises(ValueError):
        nfs.parse_rpc_call(b"\0" * 10)


def test_portmapper_serves_getport_over_tcp() -> None:
    with socket.socket() as probe:  # a free port on the loopback
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with nfs.Portmapper(("127.0.0.1",), None, PORTS, port=port), \
            socket.create_connection(("127.0.0.1", port), timeout=2) as client:
        client.sendall(b"garbage!" + nfs.pmap_getport_call(5, nfs.NFS_PROGRAM, 3))
        # A malformed record drops the connection; a fresh one is answered.
    with nfs.Portmapper(("127.0.0.1",), None, PORTS, port=port), \
            socket.create_connection(("127.0.0.1", port), timeout=2) as client:
        client.sendall(nfs.pmap_getport_call(6, nfs.NFS_PROGRAM, 3))
        assert _result(client.recv(4096), 6) == struct.pack(">I", 2049)


def test_ganesha_config_with_nfs3(tmp_path: Path) -> None:
    text = nfs.ganesha_config(export_dir=tmp_path, workdir=tmp_path, bind_address="192.0.2.1",
                              pseudo_path="/pxelab", read_only=True, dbus_prefix="x", nfs3=True)
    assert text.count("Protocols = 3, 4;") == 2
    assert f"MNT_Port = {nfs.MOUNT_PORT};" in text and "Mount_Path_Pseudo = true;" in text
    assert "Enable_NLM = false;" in text
    plain = nfs.ganesha_config(export_dir=tmp_path, workdir=tmp_path, bind_address="192.0.2.1",
                               pseudo_path="/pxelab", read_only=True, dbus_prefix="x")
    assert "MNT_Port" not in plain and plain.count("Protocols = 4;") == 2


def test_ganesha_with_nfs3_hides_the_host_rpcbind_socket(tmp_path: Path) -> None:
    server = nfs.Ganesha(tmp_path, tmp_path / "w", "pxl-x", nfs3=True)
    assert server.command[:3] == ["ip", "netns", "exec"] or "unshare" in server.command
    assert "mount -t tmpfs -o mode=0755 pxelab-run /run" in " ".join(server.command)
    assert server.portmapper is not None and "::1" in server.portmapper.addresses
    assert nfs.Ganesha(tmp_path, tmp_path / "w", "pxl-x").portmapper is None


# -- the regressions and their console patterns -----------------------------------------

def test_no_nic_driver_omits_the_cases_driver() -> None:
    scenario = apply_regressions(find_case("legacy_pxe_ipv4[e1000]"), ["initrd-no-nic-driver"])
    assert scenario.payload.omit_modules == ("e1000",)
    assert "e1000" not in scenario.payload.wanted_modules()
    assert scenario.applied == ("initrd-no-nic-driver",)


def test_initramfs_tools_fault_and_fix() -> None:
    entry = get_regression("initramfs-tools-no-nic-driver")
    base = find_case(entry.scenario)
    faulted = apply_regressions(base, [f"{entry.name}=most"])
    assert (faulted.payload.kernel_flavour, faulted.payload.mkinitramfs_modules) == (
        "cloud-amd64", "most")
    assert faulted.milestones[-5:] == ms.LINUX_INITRAMFS_TOOLS_NFSROOT
    fixed = entry.fixed_for(base)
    assert (fixed.payload.kernel_flavour, fixed.payload.mkinitramfs_modules,
            fixed.payload.initramfs) == ("amd64", "netboot", Initramfs.INITRAMFS_TOOLS)
    assert [m.name for m in fixed.milestones] == [m.name for m in base.milestones]


@pytest.mark.parametrize("case", ["legacy_pxe_ipv4", "legacy_pxe_ipv6"])
def test_initramfs_tools_fault_refuses_cases_it_cannot_fault(case: str) -> None:
    with pytest.raises(ConfigError):
        apply_regressions(find_case(case), ["initramfs-tools-no-nic-driver"])


def _first_failure(failures: tuple[ms.Fail, ...], console: str) -> str:
    """The cause pexpect would report: the earliest match, first pattern on a tie."""
    found = [(m.start(), i) for i, f in enumerate(failures)
             if (m := re.search(f.pattern, console))]
    return failures[min(found)[1]].cause


def test_pxelab_no_devices_panic_is_named() -> None:
    console = ("pxelab-init: PANIC link: no devices to configure: no network interface with a "
               "device after 10 s; have: lo \r\r\n[   14.8] Kernel panic - not syncing: "
               "Attempted to kill init! exitcode=0x00000100\r\n")
    assert INIT_PANIC.search(console)
    assert "no network device" in _first_failure(ms.KERNEL_FAILURES, console)


def test_initramfs_tools_no_devices_panic_is_named() -> None:
    console = ("Begin: Waiting up to 10 secs for any network device to become available ... "
               "Failure: Network device did not appear in time\r\ndone.\r\n"
               + "ipconfig: no devices to configure\r\r\n" * 10
               + "/init: .: line 384: can't open '/run/net-*.conf': No such file or directory\r\n"
               "[   16.0] Kernel panic - not syncing: Attempted to kill init! exitcode=0x200\r\n")
    dhcp = ms.LINUX_INITRAMFS_TOOLS_NFSROOT[2]
    assert dhcp.name == "initramfs_dhcp"
    assert "no network device to configure" in _first_failure(dhcp.failures, console)
    assert re.search(dhcp.pattern, "IP-Config: ens2 complete (dhcp from 192.0.2.1):\r\n")
