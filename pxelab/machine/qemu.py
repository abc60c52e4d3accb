"""A QEMU guest that network-boots in a lab, with its serial console under pexpect.

:func:`qemu_command` turns a :class:`GuestSpec` into an argument list (pure,
unit tested); :class:`Guest` runs it inside the lab namespace, writes
``serial.log`` and a rerunnable ``qemu-cmdline.txt`` to its work directory and
leaves no process behind.

The console is the guest's only output: ``-display none`` plus the serial port
on QEMU's stdio (a pty owned by pexpect). SeaBIOS mirrors its console, and so
the iPXE ROM's, to the serial port only in its serial-console mode, which QEMU
turns on with ``-machine graphics=off``.

Someone must keep reading :attr:`Guest.console` while the guest runs: when the
pty buffer is full the emulated UART stops sending and the guest waits. What is
read there leaves out the cursor moves firmware consoles scatter through their
text (:class:`pxelab.machine.console.ConsoleSpawn`); serial.log has every byte.

OVMF's debug port (isa-debugcon on 0x402) goes to a FIFO that a
:class:`~pxelab.machine.firmware_log.DebugPortReader` thread reads while the
guest runs, so each line gets a wall-clock time (``ovmf-debug.log``,
:attr:`Guest.firmware_log`). :attr:`Guest.started_wall` is power-on on that
clock, the zero of a boot's merged timeline.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import select
import shlex
import shutil
import signal
import time
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

import pexpect

from pxelab.core.errors import ConfigError, GuestError
from pxelab.core.netns import exec_prefix
from pxelab.machine import kvm
from pxelab.machine.console import ConsoleSpawn
from pxelab.machine.firmware import OvmfImage, find_ovmf
from pxelab.machine.guestbase import OVMF_DEBUG_FIFO, ConsoleGuest
from pxelab.machine.nvram import Ip6Settings, ip6_config_variable, sbat_level_variable, write_vars
from pxelab.machine.sbat import SbatLevel

QEMU = "qemu-system-x86_64"
# QEMU searches this workdir directory (-L) before its own data directories: the NIC
# ROM of the spec lies there under the model's default ROM name.
ROM_DIR = "roms"
# The ROM each NIC model loads when romfile= is not given (QEMU's hw/net/*.c). Only
# a default ROM gets its PCI IDs patched to the device's (hw/pci/pci.c pci_patch_ids),
# and only when romfile= is not given at all (pci_qdev_realize): Debian's efi-virtio.rom
# says 1af4:1041, the transitional virtio-net-pci is 1af4:1000, and SeaBIOS skips a ROM
# whose IDs differ. So the set's ROM goes in under this name, found through -L.
DEFAULT_ROMS = {"virtio-net-pci": "efi-virtio.rom", "e1000": "efi-e1000.rom",
                "e1000e": "efi-e1000e.rom", "rtl8139": "efi-rtl8139.rom"}
COMMAND_FILE = "qemu-cmdline.txt"
OVMF_VARS = "ovmf-vars.fd"
# OVMF writes its DEBUG() output to this I/O port (only debug builds print much).
OVMF_DEBUG_PORT = "0x402"
STOP_TIMEOUT_S = 5.0
# The guest's entropy source. EDK2 from edk2-stable202405 on (the CVE-2023-45237 fix)
# hides its PXE and HTTP boot options when no EFI_RNG_PROTOCOL exists (edk2 issue
# 9530), and real machines have a hardware RNG. QEMU's default backend (rng-builtin)
# reads the host's getrandom(): no host file to name.
RNG_DEVICE = "virtio-rng-pci"

_MAC = re.compile(r"^[0-9a-f]{2}(:[0-9a-f]{2}){5}$")


class Firmware(StrEnum):
    SEABIOS = "seabios"
    OVMF = "ovmf"

    def is_uefi(self) -> bool:
        return self is Firmware.OVMF

    def machine(self) -> str:
        """QEMU machine type: OVMF's pflash layout wants q35, SeaBIOS boots the classic pc."""
        return "q35" if self.is_uefi() else "pc"


class Accel(StrEnum):
    AUTO = "auto"
    KVM = "kvm"
    TCG = "tcg"


@dataclass(frozen=True)
class GuestSpec:
    """What the emulated machine looks like; data only."""

    firmware: Firmware = Firmware.SEABIOS
    nic_model: str = "virtio-net-pci"
    mac: str = "52:54:00:12:34:56"
    # Measured under TCG: the cloud kernel + initramfs reach /init with 96 MiB;
    # 256 and 512 boot PXELINUX -> NFS root equally fast (~11 s). 512 is headroom.
    memory_mib: int = 512
    cpus: int = 1
    accel: Accel = Accel.AUTO
    # None: QEMU's default ROM (iPXE from ipxe-qemu); "": no ROM, so OVMF uses
    # its own VirtioNetDxe + NetworkPkg; anything else: a ROM file path. The lab
    # always names the firmware set's ROM (pxelab.scenarios.cases.for_firmware_set).
    nic_romfile: str | None = None
    # The firmware images (a firmware set's): SeaBIOS for -bios, OVMF for the pflash
    # units, and the ROM QEMU loads as the NIC's default ROM. None: QEMU's own
    # bios-256k.bin and ROM, and OVMF from QEMU's firmware descriptors.
    bios: Path | None = None
    ovmf: OvmfImage | None = None
    nic_rom: Path | None = None
    # (name, string) pairs for -fw_cfg, e.g. ("opt/org.tianocore/IPv4PXESupport", "n").
    fw_cfg: tuple[tuple[str, str], ...] = ()
    # Milliseconds the firmware waits at its boot menu before it boots (QEMU
    # -boot menu=on,splash-time=N; OVMF rounds up to whole seconds). 0: no wait.
    # OVMF connects the NIC's network stack before this wait, so it runs in
    # parallel with what that stack does on its own (IPv6 link-local DAD).
    boot_menu_wait_ms: int = 0
    # OVMF only: the NIC's IPv6 settings in the firmware's NVRAM (pxelab.machine.nvram);
    # None: a fresh VARS copy, EDK2's defaults (manual policy, one DAD transmit).
    ip6_settings: Ip6Settings | None = None
    # A virtio RNG device (RNG_DEVICE), as a real machine has a hardware RNG. False
    # reproduces a machine without one (EDK2 >= stable202405 then offers no network boot).
    rng: bool = True
    # Direct kernel boot (no network boot program), the benchmark's physical limit.
    kernel: Path | None = None
    initrd: Path | None = None
    append: str = ""
    # More QEMU arguments, as a lab file's guest gives them (devices of its own).
    extra_args: tuple[str, ...] = ()
    # OVMF with Secure Boot enforced: ``ovmf`` must be a Secure Boot build with keys
    # enrolled (FirmwareSet.ovmf(secure_boot=True)). Its variable store is writable only
    # from SMM, so the machine gets smm=on and a secure pflash.
    secure_boot: bool = False
    # OVMF only: shim's SbatLevel in the NVRAM (pxelab.machine.sbat), as a firmware or
    # OS update leaves it; shim keeps a level newer than its own. None: shim writes its own.
    sbat_level: SbatLevel | None = None

    def __post_init__(self) -> None:
        if not _MAC.match(self.mac):
            raise ConfigError(f"GuestSpec.mac {self.mac!r} is not a lower-case "
                              "xx:xx:xx:xx:xx:xx MAC address")
        if self.memory_mib < 16 or self.cpus < 1:
            raise ConfigError(f"GuestSpec needs memory_mib >= 16 and cpus >= 1, got "
                              f"{self.memory_mib} MiB and {self.cpus} CPUs")
        for name, _ in self.fw_cfg:
            if not name.startswith("opt/"):
                raise ConfigError(f"GuestSpec.fw_cfg name {name!r} must start with 'opt/' "
                                  "(QEMU reserves the other names for itself)")
        if not 0 <= self.boot_menu_wait_ms <= 65535:
            raise ConfigError(f"GuestSpec.boot_menu_wait_ms={self.boot_menu_wait_ms} must be "
                              "0..65535 (QEMU's splash-time is 16 bits)")
        if self.ip6_settings is not None and not self.firmware.is_uefi():
            raise ConfigError("GuestSpec.ip6_settings are OVMF NVRAM settings; "
                              f"{self.firmware} has none: drop them or use Firmware.OVMF")
        if self.sbat_level is not None and not self.firmware.is_uefi():
            raise ConfigError("GuestSpec.sbat_level is a UEFI variable; "
                              f"{self.firmware} has no NVRAM for it: use Firmware.OVMF")
        if self.secure_boot and not self.firmware.is_uefi():
            raise ConfigError("GuestSpec.secure_boot needs Firmware.OVMF (SeaBIOS has no "
                              "Secure Boot)")
        if self.kernel is None and (self.initrd is not None or self.append):
            raise ConfigError("GuestSpec.initrd and .append need .kernel (direct boot)")

    @property
    def network_boot(self) -> bool:
        return self.kernel is None

    def firmware_settings(self) -> str:
        """The firmware configuration a result is recorded with, as key=value,..."""
        parts = [f"{name}={text}" for name, text in self.fw_cfg]
        if self.boot_menu_wait_ms:
            parts.append(f"boot-menu-wait={self.boot_menu_wait_ms}ms")
        if self.ip6_settings is not None:
            parts.append(f"ip6-policy={self.ip6_settings.policy}")
            parts.append(f"ip6-dad-transmits={self.ip6_settings.dad_transmits}")
        parts.append(f"rng={self.rng_device or 'none'}")
        if self.secure_boot:
            parts.append("secure-boot=on")
        if self.sbat_level is not None:
            parts.append(f"sbat-level={self.sbat_level.describe().replace(',', ':')}")
        return ",".join(parts)

    @property
    def rng_device(self) -> str:
        """The QEMU RNG device model the guest has ("" for none)."""
        return RNG_DEVICE if self.rng else ""


def _value(text: str | Path) -> str:
    """Escape a value for QEMU's key=value option syntax (a comma is written twice)."""
    return str(text).replace(",", ",,")


def _console_args() -> list[str]:
    # signal=off: a Ctrl-C typed on the console goes to the guest, not to QEMU.
    return ["-display", "none", "-chardev", "stdio,id=console,signal=off",
            "-serial", "chardev:console", "-monitor", "none", "-no-reboot"]


def _machine_args(spec: GuestSpec) -> list[str]:
    machine = f"{spec.firmware.machine()},graphics=off"
    if not spec.secure_boot:
        return ["-machine", machine]
    # A Secure Boot OVMF keeps its variables in SMM: without smm=on and a secure pflash
    # it stops before any output (docs/secure-boot.md).
    return ["-machine", machine + ",smm=on",
            "-global", "driver=cfi.pflash01,property=secure,value=on"]


def _ovmf_args(ovmf: OvmfImage, workdir: Path) -> list[str]:
    return ["-drive", f"if=pflash,unit=0,format={ovmf.code_format},readonly=on,"
                      f"file={_value(ovmf.code)}",
            "-drive", f"if=pflash,unit=1,format={ovmf.vars_format},"
                      f"file={_value(workdir / OVMF_VARS)}",
            "-chardev", f"file,id=ovmfdebug,path={_value(workdir / OVMF_DEBUG_FIFO)}",
            "-device", f"isa-debugcon,iobase={OVMF_DEBUG_PORT},chardev=ovmfdebug"]


def _nic_args(spec: GuestSpec, tap: str) -> list[str]:
    device = f"{spec.nic_model},netdev=net0,mac={spec.mac}"
    if spec.network_boot:
        device += ",bootindex=1"
    if spec.nic_romfile is not None:
        device += f",romfile={_value(spec.nic_romfile)}"
    return ["-netdev", f"tap,id=net0,ifname={tap},script=no,downscript=no",
            "-device", device]


def default_rom(model: str) -> str:
    """The file name QEMU loads as NIC ``model``'s ROM when none is given."""
    try:
        return DEFAULT_ROMS[model]
    except KeyError:
        raise ConfigError(f"pxelab does not know QEMU's default ROM of NIC model {model}; "
                          f"known: {', '.join(DEFAULT_ROMS)}") from None


def _direct_boot_args(spec: GuestSpec) -> list[str]:
    if spec.kernel is None:
        return []
    args = ["-kernel", str(spec.kernel)]
    if spec.initrd is not None:
        args += ["-initrd", str(spec.initrd)]
    if spec.append:
        args += ["-append", spec.append]
    return args


def qemu_command(spec: GuestSpec, tap: str, workdir: Path, accel: Accel, *,
                 ovmf: OvmfImage | None = None, qemu: str = QEMU) -> list[str]:
    """QEMU's argument list for ``spec`` on ``tap`` (no namespace prefix).

    ``accel`` must be resolved (KVM or TCG). For OVMF, ``ovmf`` defaults to
    what QEMU's firmware descriptors name; its VARS copy is expected at
    ``workdir/ovmf-vars.fd`` (:class:`Guest` makes it).
    """
    if accel is Accel.AUTO:
        raise ConfigError("qemu_command needs a resolved accelerator; call resolve_accel() "
                          "on Accel.AUTO first")
    command = [qemu, "-nodefaults", "-no-user-config", "-name", f"pxelab-{tap}",
               *(["-L", str(workdir / ROM_DIR)] if spec.nic_rom is not None else []),
               *_machine_args(spec), "-accel", str(accel),
               "-m", str(spec.memory_mib), "-smp", str(spec.cpus), *_console_args()]
    if spec.firmware.is_uefi():
        command += _ovmf_args(ovmf or spec.ovmf or find_ovmf(), workdir)
    elif spec.bios is not None:
        command += ["-bios", str(spec.bios)]
    command += _nic_args(spec, tap)
    if spec.rng:
        command += ["-device", RNG_DEVICE]
    if spec.boot_menu_wait_ms:
        command += ["-boot", f"menu=on,splash-time={spec.boot_menu_wait_ms}"]
    for name, text in spec.fw_cfg:
        command += ["-fw_cfg", f"name={_value(name)},string={_value(text)}"]
    return command + list(spec.extra_args) + _direct_boot_args(spec)


def write_guest_vars(spec: GuestSpec, ovmf: OvmfImage, target: Path) -> None:
    """The guest's own VARS flash at ``target``: the template, with the spec's settings."""
    variables = []
    if spec.ip6_settings is not None:
        variables.append(ip6_config_variable(spec.mac, spec.ip6_settings))
    if spec.sbat_level is not None:
        variables.append(sbat_level_variable(spec.sbat_level))
    if not variables:
        shutil.copyfile(ovmf.vars_template, target)
        return
    write_vars(ovmf.vars_template, target, tuple(variables))


def resolve_accel(accel: Accel) -> Accel:
    """AUTO becomes KVM if the KVM probe says guests make progress under it, else TCG."""
    if accel is not Accel.AUTO:
        return accel
    return Accel.KVM if kvm.probe_kvm() else Accel.TCG


class Guest(ConsoleGuest):
    """A running QEMU guest; a context manager that leaves nothing running on exit."""

    def __init__(self, spec: GuestSpec, tap: str, workdir: Path,
                 namespace: str | None) -> None:
        super().__init__(workdir)
        self.spec = spec
        self.tap = tap
        self.namespace = namespace
        self.log = logging.getLogger(f"{__name__}.{tap}")
        self.accel = resolve_accel(spec.accel)
        self._ovmf = self._firmware_image(spec)
        self.command = exec_prefix(namespace) + qemu_command(spec, tap, workdir, self.accel,
                                                             ovmf=self._ovmf)
        # What a result records of the machinery (LibvirtGuest adds versions).
        self.properties: dict[str, str] = {"backend": "qemu"}

    def _firmware_image(self, spec: GuestSpec) -> OvmfImage | None:
        if not spec.firmware.is_uefi():
            if spec.bios is None:
                self.log.info("no SeaBIOS image given: QEMU loads its own bios-256k.bin")
            return None
        if spec.ovmf is None:
            self.log.info("no OVMF image given: using QEMU's firmware descriptors")
        return spec.ovmf or find_ovmf()

    @property
    def pid(self) -> int | None:
        return self._console.pid if self._console is not None else None

    def _place_rom(self, rom: Path) -> None:
        if not rom.is_file():
            raise ConfigError(f"NIC ROM {rom} does not exist")
        directory = self.workdir / ROM_DIR
        directory.mkdir(exist_ok=True)
        shutil.copyfile(rom, directory / default_rom(self.spec.nic_model))

    def start(self) -> None:
        if self._console is not None:
            raise GuestError(f"guest on {self.tap} already started")
        self.workdir.mkdir(parents=True, exist_ok=True)
        if self.spec.nic_rom is not None:
            self._place_rom(self.spec.nic_rom)
        if self._ovmf is not None:
            write_guest_vars(self.spec, self._ovmf, self.workdir / OVMF_VARS)
            self._start_debug_port()
        line = shlex.join(self.command)
        (self.workdir / COMMAND_FILE).write_text(line + "\n", encoding="utf-8")
        self.log.info("starting %s guest (%s): %s", self.spec.firmware, self.accel, line)
        self._logfile = logfile = self.serial_log.open("wb")
        self._power_on()
        try:
            child = ConsoleSpawn(self.command[0], self.command[1:], timeout=30,
                                 maxread=65536)
        except (pexpect.ExceptionPexpect, OSError) as error:
            self._close_outputs()
            raise GuestError(f"cannot start QEMU ({line}): {error}") from error
        # Set before anything is read, so serial.log misses nothing.
        child.logfile_read = logfile
        self._console = child
        self.log.debug("QEMU pid %d", child.pid)

    def wait_exit(self, timeout: float) -> int:
        """Wait for QEMU to end by itself; its exit status (negative: killed by that signal)."""
        return self._reap(self._wait_eof(timeout, f"QEMU ({self.tap})"))

    def _reap(self, child: pexpect.spawn) -> int:
        if child.isalive():
            child.wait()
        if child.exitstatus is not None:
            status = int(child.exitstatus)
        else:
            status = -int(child.signalstatus or 0)
        self.log.info("QEMU exited with status %d after %.1fs", status,
                      time.monotonic() - self.started_at)
        return status

    def stop(self) -> None:
        """End QEMU (SIGTERM: it quits cleanly; SIGKILL if it does not), keep its output."""
        child, self._console = self._console, None
        if child is None:
            self._close_outputs()
            return
        try:
            for signum in (signal.SIGTERM, signal.SIGKILL):
                if _has_exited(child.pid, 0):
                    break
                self.log.debug("sending %s to QEMU pid %d", signum.name, child.pid)
                child.kill(signum)
                with contextlib.suppress(pexpect.TIMEOUT):
                    # Reading to EOF keeps the pty drained while QEMU shuts down.
                    child.expect(pexpect.EOF, timeout=STOP_TIMEOUT_S)
                if _has_exited(child.pid, STOP_TIMEOUT_S):
                    break
                self.log.warning("QEMU pid %d still running %.0fs after %s", child.pid,
                                 STOP_TIMEOUT_S, signum.name)
            else:
                raise GuestError(f"QEMU pid {child.pid} survived SIGKILL")
            with contextlib.suppress(pexpect.TIMEOUT):
                child.expect(pexpect.EOF, timeout=1)  # what it printed before dying
        finally:
            child.close(force=True)
            self._close_outputs()


def _has_exited(pid: int, timeout: float) -> bool:
    """Wait up to ``timeout`` for process ``pid`` to end (a zombie counts as ended)."""
    try:
        pidfd = os.pidfd_open(pid)
    except ProcessLookupError:
        return True
    try:
        readable, _, _ = select.select([pidfd], [], [], timeout)
        return bool(readable)
    finally:
        os.close(pidfd)
