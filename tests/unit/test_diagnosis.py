"""Diagnosis rules: each names its cause on the failure it describes and nothing else.

The evidence is synthetic but shaped like real boots (the events of
legacy_pxe_ipv4, uefi_tftp_ipv4 and uefi_http_ipv6 runs: the same sources,
kinds, request/answer texts and details). :class:`Boot` writes a boot second by
second; the ``*_boot`` functions write whole normal boots, which every test
then breaks in one place.
"""

from __future__ import annotations

import re
from dataclasses import replace
from typing import Any

import pytest

from pxelab.analysis.diagnosis import (
    decisions,
    dhcp,
    dhcp6,
    diagnose,
    files,
    firmware,
    guest,
    ipxe,
    linux,
    milestones,
    query,
    requests,
    tftp,
    transfers,
)
from pxelab.analysis.diagnosis.model import Cause, DiagnosisRule
from pxelab.analysis.diagnosis.rules import RULES
from pxelab.analysis.evidence import BootFacts, Evidence, PacketRecord
from pxelab.core.events import Event
from pxelab.machine.console import MilestoneHit, Timeline
from pxelab.server.tftp import codec

pytestmark = pytest.mark.unit

T0 = 1_795_266_449.0  # guest power-on, wall clock
MAC = "52:54:00:12:34:56"
IP = "192.0.2.100"
SERVER = "192.0.2.1"
IP6 = "2001:db8::1:0"
SERVER6 = "2001:db8::1"
DATA = "/srv/pxelab/run/data"
LEGACY_CLASS = "PXEClient:Arch:00000:UNDI:002001"
UEFI_CLASS = "PXEClient:Arch:00007:UNDI:003000"
HTTP_CLASS = "HTTPClient:Arch:00016:UNDI:003000"
CONFIG_SEARCH = ("pxelinux.cfg/01-52-54-00-12-34-56", "pxelinux.cfg/C0000264",
                 "pxelinux.cfg/C000026", "pxelinux.cfg/C00002", "pxelinux.cfg/C0000",
                 "pxelinux.cfg/C000", "pxelinux.cfg/C00", "pxelinux.cfg/C0", "pxelinux.cfg/C")
LINE = re.compile(r"^\s*\d+\.\d{3}s  ")


class Boot:
    """The evidence of one boot, written in time order (``at``: seconds since power-on)."""

    def __init__(self, scenario: str = "legacy_pxe_ipv4", **facts: Any) -> None:
        self.facts = BootFacts(scenario, **({"data_root": DATA} | facts))
        self.events: list[Event] = []
        self.packets: list[PacketRecord] = []
        self.hits: list[MilestoneHit] = []
        self.xid = 0x4a8b3c4d
        self.event(0.0, "server", "ready", answer=f"BootServer(br0 {SERVER}/24)",
                   data_root=DATA, interface="br0", ipv4=f"{SERVER}/24",
                   ipv6=f"{SERVER6}/64")

    # -- raw material ----------------------------------------------------------------------

    def event(self, at: float, source: str, kind: str, *, client: str = "", request: str = "",
              answer: str = "", reason: str = "", mac: str = "", file: str | None = None,
              **details: Any) -> Event:
        event = Event(source, kind, client, request, answer, reason, details, T0 + at,
                      mac=mac, file=file or "")
        self.events.append(event)
        return event

    def packet(self, at: float, proto: str, kind: str, src: str, dst: str, *,
               client: str = "", **fields: Any) -> PacketRecord:
        summary = f"{proto} {kind} {src} > {dst} " + " ".join(
            f"{k}={v}" for k, v in fields.items())
        record = PacketRecord(T0 + at, proto, kind, src, dst, summary.strip(), client, fields)
        self.packets.append(record)
        return record

    def hit(self, at: float, name: str, text: str) -> None:
        self.hits.append(MilestoneHit(name, at, text))

    def evidence(self, failed: str | None = None, failure: str | None = None,
                 at: float | None = None, tail: str = "") -> Evidence:
        timeline = Timeline(self.facts.scenario, list(self.hits), failed, failure, at, tail)
        return Evidence(self.facts, T0, timeline, tuple(self.events), tuple(self.packets))

    # -- DHCPv4 ----------------------------------------------------------------------------

    def dhcp4(self, at: float, kind: str, message: str, *, file: str | None = "pxelinux.0",
              vendor_class: str | None = LEGACY_CLASS, arch: int | None = 0,
              user_classes: tuple[str, ...] = ("iPXE",), echo: str | None = None,
              options: tuple[int, ...] = (53, 54, 51, 58, 59, 1, 66, 67), secs: int = 0,
              reason: str = "", mac: str = MAC, **extra: Any) -> Event:
        label = "no arch (option 93 absent)" if arch is None else f"arch {arch}"
        request = f"{message} {label}" + (f" vendor-class={vendor_class}" if vendor_class
                                          else "")
        answer = (f"{kind.upper()} yiaddr={IP}" + (f" next-server={SERVER} file={file}"
                                                     if file else "")) if kind in (
            "offer", "ack") else ""
        details: dict[str, Any] = {
            "arch": arch, "vendor_class": vendor_class, "user_classes": list(user_classes),
            "secs": secs, "message_type": message}
        if kind in ("offer", "ack"):
            details |= {"xid": self.xid, "yiaddr": IP, "siaddr": SERVER, "file": file,
                        "vendor_class_echo": echo, "options": list(options),
                        "omitted_options": [], "proxy": False,
                        "destination": "255.255.255.255:68"}
        return self.event(at, "dhcp4", kind, client=mac, mac=mac, request=request, answer=answer,
                          reason=reason or f"{label} -> {file}", **(details | extra))

    def dhcp4_round(self, at: float, **kw: Any) -> None:
        """DISCOVER, OFFER, REQUEST, ACK (server events and the client's packets)."""
        self.packet(at - 0.01, "dhcp4", "discover", "0.0.0.0:68", "255.255.255.255:67",
                    client=MAC, xid=self.xid, secs=kw.get("secs", 0),
                    vendor_class=kw.get("vendor_class", LEGACY_CLASS) or "")
        self.dhcp4(at, "offer", "DISCOVER", **kw)
        self.packet(at + 0.05, "dhcp4", "request", "0.0.0.0:68", "255.255.255.255:67",
                    client=MAC, xid=self.xid)
        self.dhcp4(at + 0.06, "ack", "REQUEST", **kw)
        self.xid += 1

    # -- TFTP and HTTP ---------------------------------------------------------------------

    def rrq(self, at: float, file: str, options: dict[str, str] | None = None) -> Event:
        options = {"tsize": "0", "blksize": "1408"} if options is None else options
        self.packet(at - 0.001, "tftp", "rrq", f"{IP}:49152", f"{SERVER}:69", file=file,
                    options=options, blksize=int(options.get("blksize", 0)) or None)
        text = " ".join(["RRQ", file, "octet", *(f"{k}={v}" for k, v in options.items())])
        return self.event(at, "tftp", "rrq", client=IP, request=text, file=file, mode="octet",
                          options=options, port=49152, local=SERVER)

    def oack(self, at: float, file: str, options: dict[str, str],
             requested: dict[str, str], **extra: Any) -> Event:
        answer = " ".join(f"{k}={v}" for k, v in options.items())
        return self.event(at, "tftp", "oack", client=IP, request=file, answer=answer,
                          file=file, options=options, requested=requested, **extra)

    def transfer(self, at: float, file: str, size: int, kind: str = "sent", *,
                 blksize: int = 1408, blocks: int | None = None, reason: str = "") -> Event:
        blocks = size // blksize + 1 if blocks is None else blocks
        sent = min(blocks * blksize, size)
        return self.event(at, "tftp", kind, client=IP, request=file,
                          answer=f"{sent} bytes in {blocks} blocks, 0.010s", reason=reason,
                          blksize=blksize, blocks=blocks, bytes=sent, file=file, size=size,
                          mode="octet", port=49152, retransmits=0, seconds=0.01,
                          windowsize=1, local=SERVER, tid=50000)

    def tftp_get(self, at: float, file: str, size: int,
                 options: dict[str, str] | None = None) -> Event:
        options = {"tsize": "0", "blksize": "1408"} if options is None else options
        self.rrq(at, file, options)
        self.oack(at + 0.001, file, {k: str(size) if k == "tsize" else v
                                     for k, v in options.items()}, options)
        return self.transfer(at + 0.02, file, size, blksize=int(options.get("blksize", 512)))

    def tftp_missing(self, at: float, file: str) -> Event:
        request = self.rrq(at, file).request
        return self.event(at + 0.001, "tftp", "not_found", client=IP, request=request,
                          answer="ERROR 1 file not found",
                          reason=f"{file!r}: no regular file at {DATA}/{file}",
                          code=1, file=file, local=SERVER, port=49153)

    def http(self, at: float, path: str, status: int = 200, size: int = 1000, *,
             method: str = "get", client: str = IP6) -> Event:
        sent = size if status == 200 and method == "get" else 0
        reason = "" if status == 200 else f"{path.lstrip('/')!r}: no regular file at {DATA}{path}"
        return self.event(at, "http", method, client=client,
                          request=f"{method.upper()} {path}", answer=f"{status} {sent} bytes",
                          reason=reason, file=path, status=status, bytes=sent,
                          size=size if status == 200 else 0, keep_alive=True,
                          arch=None, seconds=0.01)

    # -- DHCPv6 ----------------------------------------------------------------------------

    def dhcp6(self, at: float, kind: str, message: str, *, xid: int = 6105289,
              echo: str | None = "HTTPClient", url: str | None = f"http://[{SERVER6}]/grubx64.efi",
              vendor_class: str | None = HTTP_CLASS, answered: bool = False,
              user_classes: tuple[str, ...] = ()) -> Event:
        details: dict[str, Any] = {
            "address": IP6, "arch": 16 if vendor_class else None, "mac": MAC, "file": None,
            "message_type": message, "vendor_class": vendor_class, "xid": xid,
            "user_classes": list(user_classes), "elapsed_seconds": 0,
            "duid": "0001000131da709f525400123456", "peer": "[fe80::5054:ff:fe12:3456%2]:546"}
        answer = ""
        if answered:
            details |= {"file": url, "vendor_class_echo": echo, "status": None,
                        "in_reply_to": message, "addresses": [IP6], "rapid_commit": False}
            answer = f"{kind.upper()} {IP6}" + (f" url={url}" if url else "")
        return self.event(at, "dhcp6", kind, client=MAC, request=f"{message.upper()} arch 16",
                          answer=answer, reason="rule 'uefi-http6-grub'" if answered else "",
                          **details)


# -- whole normal boots ----------------------------------------------------------------------

def config_search(boot: Boot, at: float, default: bool = True) -> float:
    """PXELINUX's config file search: nine names not found, then pxelinux.cfg/default."""
    for name in CONFIG_SEARCH:
        boot.tftp_missing(at, name)
        at += 0.004
    if default:
        boot.tftp_get(at, "pxelinux.cfg/default", 379)
    else:
        boot.tftp_missing(at, "pxelinux.cfg/default")
    return at + 0.01


def linux_stages(boot: Boot, at: float, *, dhcp: bool = True, until: str = "") -> None:
    """Kernel, our initramfs, its DHCP, the NFS root, userspace (stopping before ``until``)."""
    stages = [
        (0.0, "kernel", "Linux version 6.1.0-56-cloud-amd64 (debian-kernel@lists.debian.org)"),
        (1.8, "initramfs", "pxelab-init: start"),
        (3.4, "initramfs_dhcp", f"pxelab-init: dhcp eth0 {IP}/24"),
        (3.6, "nfs_root", f"pxelab-init: nfs root mounted {SERVER}:/pxelab on /newroot type nfs4"),
        (3.8, "userspace", f"PXELAB-USERSPACE root={SERVER}:/pxelab fstype=nfs4"),
    ]
    for offset, name, text in stages:
        if name == until:
            return
        if name == "initramfs_dhcp" and dhcp:
            boot.dhcp4_round(at + 3.0, vendor_class="pxelab-init", arch=None, user_classes=(),
                             options=(53, 54, 51, 58, 59, 1, 67, 61))
        boot.hit(at + offset, name, text)


def legacy_boot(until: str = "", **facts: Any) -> Boot:
    """SeaBIOS + iPXE ROM -> pxelinux.0 -> ldlinux.c32 -> config -> kernel -> NFS root."""
    boot = Boot("legacy_pxe_ipv4", firmware="seabios", nic_model="e1000", loader="pxelinux",
                nbp="pxelinux.0", nic_driver="e1000",
                initrd_modules=("e1000", "virtio_net", "nfsv4"), **facts)
    boot.hit(0.13, "firmware", "SeaBIOS (version 1.16.2-debian-1.16.2-1)")
    boot.hit(0.20, "rom", "iPXE initialising devices")
    boot.hit(0.24, "rom_prompt", "Press Ctrl-B for the iPXE command line")
    boot.dhcp4_round(0.30, secs=4)
    boot.hit(0.39, "rom_dhcp", f"Configuring (net0 {MAC})... ok")
    boot.tftp_get(0.45, "pxelinux.0", 42430, {"blksize": "1432", "tsize": "0"})
    boot.hit(0.49, "nbp", "pxelinux.0 : 42430 bytes [PXE-NBP]")
    boot.hit(0.52, "bootloader", "PXELINUX 6.04 PXE 20200816 Copyright (C) 1994-2015")
    if until == "ldlinux":
        return boot
    boot.tftp_get(0.53, "ldlinux.c32", 119524)
    if until == "config":
        return boot
    at = config_search(boot, 0.56)
    boot.hit(0.60, "config", "pxelab: pxelinux config loaded")
    boot.tftp_get(0.62, "vmlinuz", 14186432)
    boot.hit(3.29, "kernel_fetch", "Loading vmlinuz... ok")
    boot.tftp_get(3.30, "initrd.img", 2276266)
    boot.hit(3.68, "initrd_fetch", "Loading initrd.img...ok")
    assert at < 3.3
    linux_stages(boot, 4.37, until=until)
    return boot


def uefi_tftp_boot() -> Boot:
    """OVMF PXEv4 -> syslinux.efi (after its size probe) -> ldlinux.e64 -> config -> Linux."""
    boot = Boot("uefi_tftp_ipv4", firmware="ovmf", nic_model="virtio-net-pci",
                loader="syslinux-efi", nbp="syslinux.efi", nic_driver="virtio_net",
                initrd_modules=("virtio_net", "nfsv4"))
    boot.hit(1.0, "firmware", ">>Start PXE over IPv4.")
    boot.dhcp4_round(4.0, file="syslinux.efi", vendor_class=UEFI_CLASS, arch=7,
                     user_classes=(), options=(53, 54, 51, 58, 59, 1, 66, 67, 97))
    boot.hit(4.2, "fw_dhcp", f"  Station IP address is {IP}")
    probe = {"blksize": "1468", "tsize": "0", "windowsize": "4"}
    boot.rrq(4.3, "syslinux.efi", probe)
    boot.oack(4.301, "syslinux.efi", probe | {"tsize": "171456"}, probe)
    boot.transfer(4.303, "syslinux.efi", 171456, "aborted", blksize=1468, blocks=0,
                  reason="size probe: client sent ERROR 8 'User aborted the transfer' after "
                         "the OACK")
    boot.tftp_get(4.31, "syslinux.efi", 171456, {"blksize": "1468", "windowsize": "4"})
    boot.hit(4.4, "nbp", "  NBP file downloaded successfully.")
    boot.hit(4.5, "nbp_start", 'BdsDxe: starting Boot0001 "UEFI PXEv4 (MAC:525400123456)"')
    boot.hit(5.0, "bootloader", "My IP is 192.0.2.100")
    boot.tftp_get(5.1, "ldlinux.e64", 136880)
    config_search(boot, 5.3)
    boot.hit(5.4, "config", "pxelab: syslinux.efi config loaded")
    boot.tftp_get(5.5, "vmlinuz", 14186432)
    boot.hit(8.3, "kernel_fetch", "Loading vmlinuz... ok")
    boot.tftp_get(8.4, "initrd.img", 2276266)
    boot.hit(9.0, "initrd_fetch", "Loading initrd.img...ok")
    linux_stages(boot, 9.5)
    return boot


def uefi_http6_boot(release_answered: bool = True) -> Boot:
    """OVMF HTTPv4 (404: skipped), HTTPv6 -> grubx64.efi, Release, GRUB -> Linux."""
    boot = Boot("uefi_http_ipv6", firmware="ovmf", nic_model="virtio-net-pci", loader="grub",
                nbp=f"http://[{SERVER6}]/grubx64.efi", nic_driver="virtio_net",
                initrd_modules=("virtio_net",))
    boot.dhcp4_round(2.0, file=f"http://{SERVER}/no-http-boot-over-ipv4.efi",
                     vendor_class=HTTP_CLASS, arch=16, user_classes=(), echo="HTTPClient",
                     options=(53, 54, 51, 58, 59, 1, 60, 67))
    boot.http(2.5, "/no-http-boot-over-ipv4.efi", 404, method="head", client=IP)
    boot.http(2.51, "/no-http-boot-over-ipv4.efi", 404, client=IP)
    boot.hit(3.0, "fw_http4_skip", 'BdsDxe: failed to load Boot0003 "UEFI HTTPv4 (MAC:5254)"')
    boot.hit(3.1, "firmware", ">>Start HTTP Boot over IPv6")
    boot.dhcp6(3.2, "solicit", "solicit", xid=1)
    boot.dhcp6(3.21, "advertise", "solicit", xid=1, answered=True)
    boot.dhcp6(4.2, "request", "request", xid=2)
    boot.dhcp6(4.21, "reply", "request", xid=2, answered=True)
    boot.hit(4.3, "fw_dhcp", "  Station IPv6 address is 2001:0DB8:0000:0000:0000:0000:0001:0000")
    boot.hit(4.4, "nbp_url", f"  URI: http://[{SERVER6}]/grubx64.efi")
    boot.http(16.0, "/grubx64.efi", 200, 540672, method="head")
    boot.http(16.1, "/grubx64.efi", 200, 540672)
    boot.hit(16.2, "nbp", "  Downloading...100%")
    boot.dhcp6(16.3, "release", "release", xid=3, vendor_class=None)
    if release_answered:
        boot.dhcp6(16.31, "reply", "release", xid=3, vendor_class=None, answered=True,
                   url=None, echo=None)
    else:
        return boot
    boot.hit(16.5, "nbp_start", 'BdsDxe: starting Boot0004 "UEFI HTTPv6 (MAC:525400123456)"')
    boot.hit(16.8, "bootloader", "pxelab-grub: image started, prefix (tftp,2001:db8::1)/grub")
    for name in ("command.lst", "fs.lst", "crypto.lst", "terminal.lst"):
        boot.http(16.9, f"/grub/x86_64-efi/{name}", 404)
    boot.http(17.0, "/grub/grub.cfg", 200, 676)
    boot.hit(17.1, "config", "pxelab: grub config loaded")
    boot.http(17.2, "/vmlinuz", 200, 14186432)
    boot.hit(19.5, "kernel_fetch", "pxelab: grub kernel loaded")
    boot.http(19.6, "/initrd.img", 200, 2276266)
    boot.hit(20.0, "initrd_fetch", "pxelab: grub initrd loaded")
    linux_stages(boot, 20.5)
    return boot


def uefi_http_ipxe_boot(script: bool = True, loops: int = 3) -> Boot:
    """OVMF HTTPv4 -> ipxe.efi; iPXE (user class iPXE) -> script.ipxe, or ipxe.efi again."""
    boot = Boot("uefi_http_ipv4", firmware="ovmf", nic_model="virtio-net-pci", loader="ipxe",
                nbp=f"http://{SERVER}/ipxe.efi", nic_driver="virtio_net",
                initrd_modules=("virtio_net",))
    boot.dhcp4_round(2.0, file=f"http://{SERVER}/ipxe.efi", vendor_class=HTTP_CLASS, arch=16,
                     user_classes=(), echo="HTTPClient", options=(53, 54, 51, 58, 59, 1, 60, 67))
    boot.hit(2.2, "fw_dhcp", f"  Station IP address is {IP}")
    boot.http(2.5, "/ipxe.efi", 200, 1_000_000, client=IP)
    boot.hit(2.6, "nbp", "  Downloading...100%")
    boot.hit(2.7, "nbp_start", 'BdsDxe: starting Boot0003 "UEFI HTTPv4 (MAC:525400123456)"')
    boot.hit(3.0, "ipxe", "iPXE 1.21.1+ (g36a4c85) -- Open Source Network Boot Firmware")
    at = 3.5
    if script:
        boot.dhcp4_round(at, file=f"http://{SERVER}/script.ipxe", vendor_class=HTTP_CLASS,
                         arch=16, user_classes=("iPXE",), options=(53, 54, 51, 58, 59, 1, 67))
        boot.hit(at + 0.2, "ipxe_dhcp", f"Configuring (net0 {MAC})... ok")
        boot.http(at + 0.3, "/script.ipxe", 200, 300, client=IP)
        boot.hit(at + 0.4, "script", "script.ipxe : 300 bytes [script]")
        return boot
    for _ in range(loops):
        boot.dhcp4_round(at, file=f"http://{SERVER}/ipxe.efi", vendor_class=HTTP_CLASS,
                         arch=16, user_classes=("iPXE",), options=(53, 54, 51, 58, 59, 1, 67))
        boot.http(at + 0.3, "/ipxe.efi", 200, 1_000_000, client=IP)
        at += 2.0
    return boot


# -- helpers -----------------------------------------------------------------------------------

def fired(evidence: Evidence) -> list[str]:
    """The codes of every rule that fires on ``evidence``, whether it failed or not."""
    return [cause.code for rule in RULES if (cause := rule(evidence)) is not None]


def only(rule: DiagnosisRule, evidence: Evidence, code: str) -> Cause:
    """``rule``'s cause on ``evidence``, checked for the shape every cause must have."""
    cause = rule(evidence)
    assert cause is not None, f"{code} did not fire"
    assert cause.code == code
    assert cause.summary and cause.fix
    assert 1 <= len(cause.evidence) <= query.MAX_LINES + 1
    assert all(LINE.match(text) for text in cause.evidence), cause.evidence
    return cause


FAILED_LDLINUX = "Failed to load ldlinux.c32"


# -- normal boots: nothing to say ----------------------------------------------------------------

NORMAL_BOOTS = {
    "legacy": legacy_boot, "uefi_tftp": uefi_tftp_boot, "uefi_http6": uefi_http6_boot,
    "uefi_http_ipxe": uefi_http_ipxe_boot,
}


@pytest.mark.parametrize("name", sorted(NORMAL_BOOTS))
def test_a_normal_boot_is_ok_and_no_rule_fires(name: str) -> None:
    evidence = NORMAL_BOOTS[name]().evidence()
    assert diagnose(evidence).ok
    assert diagnose(evidence).render().endswith("booted")
    assert fired(evidence) == []


@pytest.mark.parametrize("name", ["legacy", "uefi_tftp", "uefi_http6"])
def test_a_late_failure_with_a_clean_network_path_blames_no_network_cause(name: str) -> None:
    # The whole network path went well (config probes' not-founds included); the boot
    # fails at the very end: no rule may claim it.
    boot = NORMAL_BOOTS[name]()
    boot.hits.pop()  # userspace never came
    evidence = boot.evidence("userspace", "timeout after 60 s", 30.0)
    diagnosis = diagnose(evidence)
    assert not diagnosis.ok and diagnosis.failed_stage == "userspace"
    assert diagnosis.causes == ()
    assert "no diagnosis rule matched" in diagnosis.render()


def test_unknown_says_which_evidence_was_missing() -> None:
    boot = Boot("uefi_tftp_ipv4", firmware="ovmf")
    boot.events.clear()  # a third-party server: no pxelab events
    evidence = boot.evidence("nbp", "no nbp within 60s of the previous milestone", 70.0)
    diagnosis = diagnose(evidence, rules=())
    assert diagnosis.causes == ()
    assert diagnosis.gaps == (
        "no boot server events (a third-party server: rules read packets, the console "
        "and the daemons' logs)",
        "no packet capture",
        "no guest line: stage nbp ended on its timeout, as no failure pattern of it matched",
        "no OVMF debug log")
    assert "the evidence lacked: no boot server events" in diagnosis.render()


def test_the_rules_are_one_per_code_most_specific_first() -> None:
    codes = [rule.__module__.rsplit(".", 1)[-1] + "." + rule.__name__ for rule in RULES]
    assert len(set(codes)) == len(RULES)
    assert RULES[-2:] == (dhcp.offer_unused, guest.error_line)  # the fallbacks come last


def test_evidence_survives_its_json_round_trip_and_diagnoses_the_same() -> None:
    boot = legacy_boot(until="ldlinux")
    boot.tftp_missing(0.56, "ldlinux.c32")
    evidence = boot.evidence("config", FAILED_LDLINUX, 10.0, FAILED_LDLINUX)
    again = Evidence.from_dict(evidence.to_dict())
    assert diagnose(again) == diagnose(evidence)
    assert diagnose(again).codes == ("file.not_found",)


# -- dhcp.no_discover ----------------------------------------------------------------------------

def test_no_discover_names_the_firmware_and_nic() -> None:
    boot = Boot("legacy_pxe_ipv4", firmware="seabios", nic_model="e1000")
    boot.hit(0.13, "firmware", "SeaBIOS (version 1.16.2-debian-1.16.2-1)")
    boot.event(5.0, "ra", "sent", client="ff02::1", request="periodic")
    evidence = boot.evidence("rom", "timeout after 30 s", 30.0, "Booting from Hard Disk...")
    cause = only(dhcp.no_discover, evidence, "dhcp.no_discover")
    assert "seabios" in cause.summary and "e1000" in cause.summary
    assert "boot order" in cause.fix
    assert diagnose(evidence).codes == ("dhcp.no_discover",)


def test_no_discover_is_silent_when_the_wire_shows_one_or_nothing_was_recorded() -> None:
    boot = Boot("legacy_pxe_ipv4")
    boot.packet(1.0, "dhcp4", "discover", "0.0.0.0:68", "255.255.255.255:67", client=MAC,
                xid=1, secs=0)
    assert dhcp.no_discover(boot.evidence("rom_dhcp", "timeout", 60.0)) is None
    empty = Evidence(BootFacts("legacy_pxe_ipv4"), T0, Timeline("legacy_pxe_ipv4", [], "rom"))
    assert dhcp.no_discover(empty) is None


# -- firmware.no_rng_device ----------------------------------------------------------------------

SHELL_FAILURE = ("OVMF started the UEFI shell: no network boot option worked (none at all "
                 "without an RNG device: EDK2 >= stable202405)")


def _silent_ovmf(ovmf: str = "2025.02-8+deb13u1", rng_device: str = "",
                 package: str = "ovmf") -> Evidence:
    """OVMF sent no DHCP at all and started the shell (Debian 13's OVMF without an RNG)."""
    boot = Boot("uefi_http_ipv4", firmware="ovmf", mode="http", nic_model="virtio-net-pci",
                rng_device=rng_device, firmware_packages={package: ovmf})
    boot.event(1.0, "ra", "sent", client="ff02::1", request="periodic")
    return boot.evidence("firmware", SHELL_FAILURE, 2.4, "UEFI Interactive Shell v2.2")


@pytest.mark.parametrize(("package", "version", "upstream"), [
    ("ovmf", "2025.02-8+deb13u1", "2025.02"), ("ovmf-generic", "2026.08+ds-2", "2026.08"),
    ("ovmf", "2024.05-1", "2024.05")])
def test_no_rng_device_names_the_ovmf_release_and_the_device(package: str, version: str,
                                                             upstream: str) -> None:
    evidence = _silent_ovmf(version, package=package)
    cause = only(firmware.no_rng_device, evidence, "firmware.no_rng_device")
    assert cause.summary == (f"OVMF {upstream} shows no network boot option: EDK2 from "
                             "stable202405 on needs an RNG device")
    assert "virtio-rng-pci" in cause.fix
    # The lines that show it: the server was up, and OVMF went to its shell instead.
    assert [line.split()[1] for line in cause.evidence] == ["server", "console"]
    assert "OVMF started the UEFI shell" in cause.evidence[-1]
    assert cause.stage == "firmware"
    # The more specific cause comes first; the boot-order one stays behind it.
    assert diagnose(evidence).codes == ("firmware.no_rng_device", "dhcp.no_discover")


@pytest.mark.parametrize("evidence", [
    _silent_ovmf("2022.11-6+deb12u2"),  # before edk2-stable202405: no RNG needed
    _silent_ovmf("2024.02-2"),
    _silent_ovmf(rng_device="virtio-rng-pci"),  # the RNG was there: something else
    _silent_ovmf(""),  # version unknown: no claim
], ids=["ovmf-2022.11", "ovmf-2024.02", "rng-present", "version-unknown"])
def test_no_rng_device_near_misses_keep_the_boot_order_verdict(evidence: Evidence) -> None:
    assert firmware.no_rng_device(evidence) is None
    assert diagnose(evidence).codes == ("dhcp.no_discover",)


def test_no_rng_device_is_silent_once_the_guest_sent_dhcp() -> None:
    boot = Boot("uefi_http_ipv4", firmware="ovmf", firmware_packages={"ovmf": "2025.02-8"})
    boot.packet(1.0, "dhcp4", "discover", "0.0.0.0:68", "255.255.255.255:67", client=MAC,
                xid=1, secs=0, vendor_class=HTTP_CLASS)
    assert firmware.no_rng_device(boot.evidence("fw_dhcp", "timeout", 60.0)) is None
    seabios = Boot("legacy_pxe_ipv4", firmware="seabios", firmware_packages={"ovmf": "2025.02"})
    assert firmware.no_rng_device(seabios.evidence("rom", "timeout", 30.0)) is None


def test_no_rng_device_survives_the_json_round_trip() -> None:
    evidence = _silent_ovmf()
    assert diagnose(Evidence.from_dict(evidence.to_dict())) == diagnose(evidence)


# -- dhcp.withheld_min_secs ------------------------------------------------------------------------

def _withheld(boot: Boot, at: float, secs: int, message: str = "DISCOVER") -> None:
    answer = "OFFER" if message == "DISCOVER" else "ACK"
    boot.event(at, "dhcp4", "withheld", client=MAC,
               request=f"{message} no arch (option 93 absent) secs={secs}",
               reason=f"{answer} withheld: secs={secs} < min_secs=2",
               arch=None, vendor_class="Etherboot-5.4", user_classes=[], secs=secs,
               message_type=message)


def test_withheld_min_secs_names_secs_min_secs_and_the_client() -> None:
    boot = Boot("etherboot_min_secs")
    for n in range(4):
        _withheld(boot, 1.0 + 4 * n, 0)
    evidence = boot.evidence("rom_dhcp", "timeout after 20 s", 20.0)
    cause = only(dhcp.withheld_min_secs, evidence, "dhcp.withheld_min_secs")
    assert MAC in cause.summary and "min_secs=2" in cause.summary
    assert "(0)" in cause.summary and "never counts secs up" in cause.summary
    assert "4 answers" in cause.summary
    assert "set min_secs to 0 (the check off)" in cause.fix
    # The specific rule explains the silence; the fallback stays out of it.
    assert diagnose(evidence).codes == ("dhcp.withheld_min_secs",)


def test_withheld_min_secs_is_silent_once_the_client_counted_up_and_was_served() -> None:
    boot = legacy_boot(until="ldlinux")
    _withheld(boot, 0.1, 0)  # iPXE's first DISCOVER, before the round legacy_boot wrote
    boot.events.sort(key=lambda e: e.time)
    evidence = boot.evidence("bootloader", "timeout", 30.0)
    assert dhcp.withheld_min_secs(evidence) is None


# -- dhcp.withheld, dhcp6.withheld (any policy reason) ---------------------------------------------

POOL_RULE = "rule 'pool allows members of pxeclients only': withhold"


def test_a_withheld_initramfs_lease_names_the_policy_reason() -> None:
    boot = legacy_boot(until="ldlinux")
    for n in range(3):  # the initramfs asks; the policy keeps its pool for PXE clients
        boot.dhcp4(20.0 + 3 * n, "withheld", "DISCOVER", vendor_class="pxelab-init", arch=None,
                   user_classes=(), reason=POOL_RULE)
    evidence = boot.evidence("initramfs_dhcp", "no DHCP lease", 40.0)
    cause = only(decisions.withheld, evidence, "dhcp.withheld")
    assert "withheld 3 answers to " + MAC in cause.summary
    assert "pool allows members of pxeclients only" in cause.summary
    assert cause.stage == "initramfs_dhcp"
    assert diagnose(evidence).codes[0] == "dhcp.withheld"


def test_withheld_is_quiet_once_the_client_was_served_after() -> None:
    boot = Boot()
    boot.dhcp4(0.5, "withheld", "DISCOVER", reason=POOL_RULE)
    boot.dhcp4_round(1.0)
    assert decisions.withheld(boot.evidence("bootloader", "timeout", 30.0)) is None


def test_withheld_leaves_min_secs_to_its_own_rule() -> None:
    boot = Boot("etherboot_min_secs")
    _withheld(boot, 1.0, 0)
    assert decisions.withheld(boot.evidence("rom_dhcp", "timeout", 20.0)) is None


def test_a_withheld_dhcpv6_answer_is_dhcp6_withheld() -> None:
    boot = Boot("uefi_tftp_ipv6")
    boot.event(1.0, "dhcp6", "withheld", client=MAC, mac=MAC, request="SOLICIT arch 7",
               reason="host entry: no answer")
    cause = only(decisions.withheld, boot.evidence("fw_dhcp", "PXE-E16", 30.0), "dhcp6.withheld")
    assert "DHCPv6 server withheld 1 answer" in cause.summary and "SOLICIT" in cause.summary


# -- the guest's own lines: initrd.unpack_failed, guest.error_line -------------------------------

def test_a_cut_initrd_is_named_from_the_kernels_line() -> None:
    boot = legacy_boot(until="kernel")
    tail = "Initramfs unpacking failed: read error\nKernel panic - not syncing: No working init"
    evidence = boot.evidence("initramfs", "the kernel could not unpack the initrd (cut short or "
                             "corrupt) (console: 'Initramfs unpacking failed: read error')",
                             14.0, tail)
    cause = only(guest.known_line, evidence, "initrd.unpack_failed")
    assert "(read error)" in cause.summary
    assert diagnose(evidence).codes[0] == "initrd.unpack_failed"


def test_an_unknown_guest_error_line_is_quoted_not_unknown() -> None:
    boot = legacy_boot(until="kernel")
    evidence = boot.evidence("initramfs", "the kernel panicked (console: 'Kernel panic - not "
                             "syncing: Attempted to kill init! exitcode=0x00000100')", 14.0)
    cause = only(guest.error_line, evidence, "guest.error_line")
    assert cause.summary == ("the guest ended stage initramfs saying: Kernel panic - not "
                             "syncing: Attempted to kill init! exitcode=0x00000100")
    assert diagnose(evidence).codes == ("guest.error_line",)


def test_a_guest_line_with_an_apostrophe_is_quoted_too() -> None:
    boot = legacy_boot(until="kernel")
    line = "/init: .: line 252: can't open '/run/net-eth0.conf'"
    evidence = boot.evidence("initramfs", f"the initramfs gave up (console: {line!r})", 14.0)
    cause = only(guest.error_line, evidence, "guest.error_line")
    assert cause.summary == f"the guest ended stage initramfs saying: {line}"


def test_error_line_is_quiet_on_a_timeout() -> None:
    boot = legacy_boot(until="kernel")
    evidence = boot.evidence("initramfs", "no initramfs within 60s of the previous milestone", 70.0)
    assert guest.error_line(evidence) is None


# -- transfer.short (HTTP) ----------------------------------------------------------------------

def _short_kernel(boot: Boot, at: float, *, events: bool = True) -> None:
    if events:
        boot.event(at, "http", "get", client=IP, request="GET /vmlinuz",
                   answer="200 7095264 bytes", file="/vmlinuz", status=200, bytes=7095264,
                   size=14190528, keep_alive=False, arch=None, seconds=1.2)
    boot.packet(at - 1.2, "http", "response", f"{SERVER}:80", f"{IP}:40000",
                status=200, length=14190528, path="/vmlinuz", reason="OK", body_bytes=7095264)


@pytest.mark.parametrize("events", [True, False], ids=["events", "packets-only"])
def test_an_http_body_cut_short_is_transfer_short(events: bool) -> None:
    boot = legacy_boot(until="ldlinux")
    _short_kernel(boot, 9.0, events=events)
    evidence = boot.evidence("kernel", "no kernel line", 40.0)
    cause = only(transfers.short, evidence, "transfer.short")
    assert "vmlinuz came short over HTTP: 7095264 of 14190528 bytes (50%)" in cause.summary


def test_a_short_response_made_good_by_a_later_whole_one_is_not_the_cause() -> None:
    boot = legacy_boot(until="ldlinux")
    _short_kernel(boot, 9.0)
    boot.http(11.0, "/vmlinuz", size=14190528)
    assert transfers.short(boot.evidence("initrd_fetch", "timeout", 40.0)) is None


# -- dhcp.offer_no_httpclient_echo --------------------------------------------------------------

def _http_offers(boot: Boot, count: int, echo: str | None = None) -> None:
    for n in range(count):
        at = 1.0 + 4 * n
        boot.packet(at - 0.01, "dhcp4", "discover", "0.0.0.0:68", "255.255.255.255:67",
                    client=MAC, xid=0x100 + n, vendor_class=HTTP_CLASS, arch=16)
        boot.dhcp4(at, "offer", "DISCOVER", file=f"http://{SERVER}/ipxe.efi",
                   vendor_class=HTTP_CLASS, arch=16, user_classes=(), echo=echo,
                   options=(53, 54, 51, 58, 59, 1, 67))


def test_offer_without_httpclient_echo_names_the_client_and_the_missing_echo() -> None:
    boot = Boot("uefi_http_ipv4", firmware="ovmf")
    _http_offers(boot, 3)
    evidence = boot.evidence("fw_dhcp", "  Error: Server response timeout.", 60.0)
    cause = only(dhcp.offer_no_httpclient_echo, evidence, "dhcp.offer_no_httpclient_echo")
    assert MAC in cause.summary and "no option 60" in cause.summary
    assert "3 offers" in cause.summary and "no REQUEST" in cause.summary
    assert "HTTPClient" in cause.fix
    assert diagnose(evidence).codes == ("dhcp.offer_no_httpclient_echo",)


def test_offer_with_the_echo_and_a_request_is_not_blamed() -> None:
    boot = uefi_http_ipxe_boot()
    boot.hits = boot.hits[:2]
    evidence = boot.evidence("nbp", "timeout", 60.0)
    assert dhcp.offer_no_httpclient_echo(evidence) is None
    assert dhcp.offer_unused(evidence) is None


def test_offer_without_echo_is_read_from_the_wire_when_the_server_has_no_event() -> None:
    boot = Boot("uefi_http_ipv4")
    boot.packet(1.0, "dhcp4", "discover", "0.0.0.0:68", "255.255.255.255:67", client=MAC,
                xid=7, vendor_class=HTTP_CLASS, arch=16)
    boot.packet(1.01, "dhcp4", "offer", f"{SERVER}:67", "255.255.255.255:68", client=MAC,
                xid=7, vendor_class="", options=[53, 54, 51, 1, 67],
                file=f"http://{SERVER}/ipxe.efi")
    cause = only(dhcp.offer_no_httpclient_echo, boot.evidence("fw_dhcp", "timeout", 60.0),
                 "dhcp.offer_no_httpclient_echo")
    assert HTTP_CLASS in cause.summary


# -- dhcp.pxeclient_without_43 -------------------------------------------------------------------

def test_pxeclient_without_43_names_the_binl_trap_and_port_4011() -> None:
    boot = Boot("uefi_tftp_ipv4", firmware="ovmf")
    boot.dhcp4_round(1.0, file="syslinux.efi", vendor_class=UEFI_CLASS, arch=7,
                     user_classes=(), echo="PXEClient", options=(53, 54, 51, 1, 66, 67, 60),
                     fault_omitted=[], fault_added=[60])
    for n in range(2):
        boot.packet(2.0 + n, "dhcp4", "request", f"{IP}:68", f"{SERVER}:4011", client=MAC,
                    xid=9, dport=4011, vendor_class=UEFI_CLASS)
    evidence = boot.evidence("nbp", "PXE-E16: No valid offer received.", 60.0)
    cause = only(dhcp.pxeclient_without_43, evidence, "dhcp.pxeclient_without_43")
    assert MAC in cause.summary and "option 43" in cause.summary
    assert "4011" in cause.summary and "2 requests" in cause.summary
    assert "syslinux.efi" in cause.summary and "(a fault put in option 60)" in cause.summary
    assert "option 60" in cause.fix


def test_pxeclient_without_43_is_harmless_when_the_nbp_was_fetched() -> None:
    boot = Boot("legacy_pxe_ipv4")
    boot.dhcp4_round(0.3, echo="PXEClient", options=(53, 54, 51, 1, 60, 66, 67))
    boot.tftp_get(0.45, "pxelinux.0", 42430)
    evidence = boot.evidence("bootloader", "timeout", 30.0)
    assert dhcp.pxeclient_without_43(evidence) is None


def test_proxy_offers_with_option_43_are_not_binl() -> None:
    boot = Boot("uefi_tftp_ipv4")
    boot.dhcp4(1.0, "offer", "DISCOVER", vendor_class=UEFI_CLASS, arch=7, user_classes=(),
               echo="PXEClient", options=(53, 54, 60, 43, 97))
    assert dhcp.pxeclient_without_43(boot.evidence("nbp", "timeout", 60.0)) is None


# -- dhcp.offer_unused ---------------------------------------------------------------------------

def test_offer_unused_is_the_fallback_for_offers_without_a_request() -> None:
    boot = Boot("legacy_pxe_ipv4")
    for n in range(2):
        boot.dhcp4(1.0 + 4 * n, "offer", "DISCOVER", file="undionly.kpxe", user_classes=())
    evidence = boot.evidence("rom_dhcp", "No configuration methods succeeded", 20.0)
    cause = only(dhcp.offer_unused, evidence, "dhcp.offer_unused")
    assert "2 offers" in cause.summary and MAC in cause.summary
    assert "file=undionly.kpxe" in cause.summary and LEGACY_CLASS in cause.summary
    assert diagnose(evidence).codes == ("dhcp.offer_unused",)


def test_offer_unused_is_silent_when_the_request_came() -> None:
    boot = Boot("legacy_pxe_ipv4")
    boot.dhcp4_round(1.0)
    assert dhcp.offer_unused(boot.evidence("nbp", "timeout", 60.0)) is None


def test_offer_unused_covers_dhcpv6_advertises_without_a_request() -> None:
    boot = Boot("uefi_http_ipv6")
    boot.dhcp6(1.0, "solicit", "solicit", xid=1)
    boot.dhcp6(1.01, "advertise", "solicit", xid=1, answered=True, url=None)
    cause = only(dhcp.offer_unused, boot.evidence("fw_dhcp", "timeout", 60.0),
                 "dhcp.offer_unused")
    assert "Advertise" in cause.summary and "no boot URL" in cause.summary


# -- dhcp6.advertise_no_vendor_class ---------------------------------------------------------------

def test_advertise_without_vendor_class_names_the_http_client() -> None:
    boot = Boot("uefi_http_ipv6", firmware="ovmf")
    for n in range(2):
        boot.dhcp6(1.0 + 4 * n, "solicit", "solicit", xid=n)
        boot.dhcp6(1.01 + 4 * n, "advertise", "solicit", xid=n, answered=True, echo=None)
    evidence = boot.evidence("fw_dhcp", "timeout after 60 s", 60.0)
    cause = only(dhcp6.advertise_no_vendor_class, evidence, "dhcp6.advertise_no_vendor_class")
    assert MAC in cause.summary and "option 16" in cause.summary
    assert "2 Advertises" in cause.summary and "grubx64.efi" in cause.summary
    assert "option 16" in cause.fix
    assert diagnose(evidence).codes == ("dhcp6.advertise_no_vendor_class",)


def test_advertise_with_vendor_class_and_a_request_is_not_blamed() -> None:
    boot = uefi_http6_boot()
    boot.hits = boot.hits[:6]
    evidence = boot.evidence("nbp", "timeout", 60.0)
    assert dhcp6.advertise_no_vendor_class(evidence) is None


def test_advertise_without_vendor_class_from_the_wire() -> None:
    boot = Boot("uefi_http_ipv6")
    boot.packet(1.0, "dhcp6", "solicit", "[fe80::5054:ff:fe12:3456]:546", "[ff02::1:2]:547",
                client=MAC, xid=5, vendor_class=HTTP_CLASS, arch=16)
    boot.packet(1.01, "dhcp6", "advertise", "[fe80::ff:fe00:1]:547",
                "[fe80::5054:ff:fe12:3456]:546", client=MAC, xid=5, vendor_class="",
                boot_url=f"http://[{SERVER6}]/grubx64.efi")
    cause = only(dhcp6.advertise_no_vendor_class, boot.evidence("fw_dhcp", "timeout", 60.0),
                 "dhcp6.advertise_no_vendor_class")
    assert HTTP_CLASS in cause.summary


# -- dhcp6.release_unanswered ----------------------------------------------------------------------

def test_release_unanswered_names_the_stall_before_the_nbp() -> None:
    boot = uefi_http6_boot(release_answered=False)
    boot.event(16.31, "fault", "injected", client=MAC, request="dhcp6.reply #3",
               reason="drop dhcp6.reply x1 from #3", fault="DropPacket")
    evidence = boot.evidence("nbp_start", "timeout after 20 s", 36.3)
    cause = only(dhcp6.release_unanswered, evidence, "dhcp6.release_unanswered")
    assert MAC in cause.summary and "Release" in cause.summary and "xid 0x3" in cause.summary
    assert "60 s" in cause.summary and "grubx64.efi" in cause.summary
    assert "drop dhcp6.reply" in cause.summary
    assert "Reply" in cause.fix
    assert diagnose(evidence).codes == ("dhcp6.release_unanswered",)
    unfaulted = replace(evidence, events=tuple(e for e in evidence.events
                                               if e.source != "fault"))
    assert diagnose(unfaulted).codes == ("dhcp6.release_unanswered",)


def test_release_unanswered_is_silent_when_the_client_went_on() -> None:
    boot = uefi_http6_boot(release_answered=False)
    boot.http(40.0, "/grub/grub.cfg", 200, 676)  # EDK2 gave up waiting, GRUB ran
    evidence = boot.evidence("kernel_fetch", "timeout", 90.0)
    assert dhcp6.release_unanswered(evidence) is None


def test_release_unanswered_from_the_wire() -> None:
    boot = Boot("uefi_http_ipv6")
    boot.packet(1.0, "dhcp6", "release", "[fe80::5054:ff:fe12:3456]:546", "[ff02::1:2]:547",
                client=MAC, xid=0x42)
    boot.packet(2.0, "dhcp6", "release", "[fe80::5054:ff:fe12:3456]:546", "[ff02::1:2]:547",
                client=MAC, xid=0x42)
    cause = only(dhcp6.release_unanswered, boot.evidence("nbp_start", "timeout", 20.0),
                 "dhcp6.release_unanswered")
    assert "xid 0x42" in cause.summary


# -- ipxe.chainload_loop -------------------------------------------------------------------------

def test_chainload_loop_names_the_nbp_and_how_often_it_was_handed_out() -> None:
    evidence = uefi_http_ipxe_boot(script=False, loops=3).evidence(
        "ipxe_dhcp", "timeout after 30 s", 12.0)
    cause = only(ipxe.chainload_loop, evidence, "ipxe.chainload_loop")
    assert MAC in cause.summary and "ipxe.efi" in cause.summary
    assert "again 3 times" in cause.summary and "4 downloads" in cause.summary
    assert "script" in cause.fix and "iPXE" in cause.fix
    assert diagnose(evidence).codes == ("ipxe.chainload_loop",)


def test_chainload_loop_of_the_bios_rom_handed_undionly_again() -> None:
    boot = Boot("legacy_pxe_ipv4")
    for n in range(3):
        boot.dhcp4_round(0.3 + 2 * n, file="undionly.kpxe")
        boot.tftp_get(0.5 + 2 * n, "undionly.kpxe", 70000)
    cause = only(ipxe.chainload_loop, boot.evidence("bootloader", "timeout", 30.0),
                 "ipxe.chainload_loop")
    assert "undionly.kpxe again 2 times" in cause.summary


def test_the_ipxe_rom_getting_pxelinux_once_is_no_loop() -> None:
    # The SeaBIOS iPXE ROM has user class iPXE and rightly gets pxelinux.0.
    boot = legacy_boot(until="ldlinux")
    assert ipxe.chainload_loop(boot.evidence("bootloader", "timeout", 30.0)) is None


# -- tftp.next_file_missing ----------------------------------------------------------------------

def test_next_file_missing_names_ldlinux_and_the_directory_searched() -> None:
    boot = legacy_boot(until="ldlinux", data_files=("pxelinux.0", "syslinux/ldlinux.c32"))
    boot.tftp_missing(0.56, "ldlinux.c32")
    evidence = boot.evidence("config", FAILED_LDLINUX, 10.0, f"{FAILED_LDLINUX}\nBoot failed")
    cause = only(tftp.next_file_missing, evidence, "file.not_found")
    assert cause.summary.startswith("ldlinux.c32 was not found")
    assert f"looked in {DATA} after pxelinux.0 was sent" in cause.summary
    assert "syslinux/ldlinux.c32" in cause.summary  # where it is instead
    assert f"put ldlinux.c32 into {DATA}" in cause.fix
    assert "same syslinux build" in cause.fix
    assert diagnose(evidence).codes == ("file.not_found",)


def test_next_file_missing_of_the_config_search_names_default() -> None:
    boot = legacy_boot(until="config")
    config_search(boot, 0.56, default=False)
    evidence = boot.evidence("config", "timeout after 60 s", 60.0, "boot:")
    cause = only(tftp.next_file_missing, evidence, "file.not_found")
    assert cause.summary.startswith("pxelinux.cfg/default was not found")
    assert f"{DATA}/pxelinux.cfg" in cause.summary
    assert "also tried: pxelinux.cfg/01-52-54-00-12-34-56" in cause.summary
    assert len(cause.evidence) <= query.MAX_LINES


def test_the_config_search_answered_by_default_is_no_missing_file() -> None:
    boot = legacy_boot(until="kernel")
    evidence = boot.evidence("kernel", "timeout", 60.0)
    assert tftp.next_file_missing(evidence) is None
    assert fired(evidence) == []


def test_next_file_missing_over_http_after_grub() -> None:
    boot = uefi_http6_boot()
    del boot.hits[boot.hits.index(next(h for h in boot.hits if h.name == "config")):]
    boot.events = [e for e in boot.events if e.time < T0 + 17.0]
    boot.http(17.0, "/grub/grub.cfg", 404)
    evidence = boot.evidence("config", "timeout", 77.0, "grub>")
    cause = only(tftp.next_file_missing, evidence, "file.not_found")
    assert "grub/grub.cfg was not found: the HTTP server looked in" in cause.summary
    assert f"{DATA}/grub" in cause.summary


def test_a_missing_file_before_the_nbp_is_not_next_file_missing() -> None:
    boot = Boot("legacy_pxe_ipv4", nbp="pxelinux.0")
    boot.dhcp4_round(0.3)
    boot.tftp_missing(0.45, "pxelinux.0")
    assert tftp.next_file_missing(boot.evidence("nbp", "PXE-E32", 5.0)) is None


# -- file.not_found for the NBP the DHCP answer named -------------------------------------------

@pytest.mark.parametrize(("named", "close"), [("pxelinx.0", "pxelinux.0"),
                                              ("boot/pxelinux.0", "pxelinux.0")])
def test_a_boot_file_typo_names_the_file_the_data_root_has(named: str, close: str) -> None:
    boot = Boot("legacy_pxe_ipv4", nbp="pxelinux.0",
                data_files=("ldlinux.c32", "pxelinux.0", "pxelinux.cfg/default"))
    boot.dhcp4_round(0.3, file=named)
    boot.tftp_missing(0.45, named)
    evidence = boot.evidence("nbp", "No more network devices", 1.0)
    cause = only(files.nbp_not_found, evidence, "file.not_found")
    assert f"{named}, the boot file the DHCP answer named, is not on the TFTP server" \
        in cause.summary
    assert f"the data root has {close}" in cause.summary
    assert cause.fix.startswith(f"name {close} as the boot file")
    assert diagnose(evidence).codes[0] == "file.not_found"


def test_nbp_not_found_is_quiet_when_the_nbp_came() -> None:
    boot = legacy_boot(until="ldlinux")
    boot.tftp_missing(9.0, "pxelinux.0")  # a later, stray request
    assert files.nbp_not_found(boot.evidence("config", "timeout", 30.0)) is None


# -- request.unanswered: RRQs ---------------------------------------------------------------------

def _dropped_rrqs(boot: Boot, at: float, file: str, count: int) -> None:
    for n in range(count):
        boot.packet(at + 2 * n, "tftp", "rrq", f"{IP}:{49152 + n}", f"{SERVER}:69", file=file,
                    options={"tsize": "0", "blksize": "1408"}, blksize=1408)
        boot.event(at + 2 * n, "fault", "injected", client=IP,
                   request=f"tftp.rrq #{n + 1} ({file})",
                   reason=f"drop tftp.rrq for {file} from #1", fault="DropPacket")


def test_rrq_unanswered_names_the_file_and_the_drops() -> None:
    boot = legacy_boot(until="ldlinux")
    _dropped_rrqs(boot, 0.56, "ldlinux.c32", 4)
    evidence = boot.evidence("config", FAILED_LDLINUX, 20.0, FAILED_LDLINUX)
    cause = only(requests.unanswered, evidence, "request.unanswered")
    assert "192.0.2.100 sent TFTP RRQ for ldlinux.c32 4 times" in cause.summary
    assert "after pxelinux.0 was sent" in cause.summary
    assert "drop tftp.rrq for ldlinux.c32" in cause.summary
    assert diagnose(evidence).codes == ("request.unanswered",)
    # Detection needs no fault event, nor any server event.
    unfaulted = replace(evidence, events=tuple(e for e in evidence.events
                                               if e.source != "fault"))
    assert "never reported them" in only(requests.unanswered, unfaulted,
                                         "request.unanswered").summary
    assert diagnose(replace(evidence, events=())).codes == ("request.unanswered",)


def test_rrq_unanswered_from_the_wire_alone() -> None:
    boot = legacy_boot(until="ldlinux")
    for n in range(3):
        boot.packet(1.0 + 2 * n, "tftp", "rrq", f"{IP}:{49152 + n}", f"{SERVER}:69",
                    file="ldlinux.c32", options={"tsize": "0"}, blksize=None)
    cause = only(requests.unanswered, boot.evidence("config", FAILED_LDLINUX, 20.0),
                 "request.unanswered")
    assert "RRQ for ldlinux.c32 3 times" in cause.summary
    assert "never reported them" in cause.summary


def test_one_dropped_rrq_that_the_retry_got_through_is_no_cause() -> None:
    boot = legacy_boot(until="ldlinux")
    _dropped_rrqs(boot, 0.54, "ldlinux.c32", 1)
    boot.tftp_get(2.6, "ldlinux.c32", 119524)
    evidence = boot.evidence("config", "timeout", 60.0)
    assert requests.unanswered(evidence) is None


# -- tftp.ldlinux_mismatch -----------------------------------------------------------------------

def test_ldlinux_mismatch_when_it_arrived_in_full_and_still_failed() -> None:
    boot = legacy_boot(until="config")
    evidence = boot.evidence("config", FAILED_LDLINUX, 10.0, f"{FAILED_LDLINUX}\nBoot failed")
    cause = only(tftp.ldlinux_mismatch, evidence, "tftp.ldlinux_mismatch")
    assert "ldlinux.c32 (119524 bytes, sent in full)" in cause.summary
    assert "another syslinux build than pxelinux.0" in cause.summary
    assert "same syslinux release" in cause.fix
    assert diagnose(evidence).codes == ("tftp.ldlinux_mismatch",)


def test_ldlinux_that_asked_for_its_config_is_no_mismatch() -> None:
    boot = legacy_boot(until="kernel_fetch")
    boot.hits = [h for h in boot.hits if h.name != "kernel_fetch"]
    boot.events = [e for e in boot.events if e.time < T0 + 0.62]
    evidence = boot.evidence("config", "timeout", 60.0)
    assert tftp.ldlinux_mismatch(evidence) is None


def test_a_truncated_ldlinux_is_no_build_mismatch() -> None:
    # The OACK announces the file's size; the transfer ends after 4096 bytes of it. No
    # fault event needed: a third-party server that cuts the file looks the same.
    boot = legacy_boot(until="ldlinux")
    options = {"tsize": "0", "blksize": "1408"}
    boot.rrq(0.53, "ldlinux.c32", options)
    boot.oack(0.531, "ldlinux.c32", {"tsize": "119524", "blksize": "1408"}, options)
    boot.transfer(0.55, "ldlinux.c32", 4096)
    evidence = boot.evidence("config", FAILED_LDLINUX, 10.0, FAILED_LDLINUX)
    assert tftp.ldlinux_mismatch(evidence) is None


# -- tftp.blksize_above_mtu ----------------------------------------------------------------------

def _stalled(boot: Boot, at: float, file: str, blksize: int, acked: int) -> None:
    options = {"tsize": "0", "blksize": str(blksize)}
    boot.rrq(at, file, options)
    boot.oack(at + 0.001, file, {"tsize": "119524", "blksize": str(blksize)}, options)
    boot.transfer(at + 31.0, file, 119524, "error", blksize=blksize, blocks=acked,
                  reason=f"timed out: 5 retransmissions, no ACK of block {acked + 1}")


def test_blksize_above_mtu_names_block_blksize_and_mtu() -> None:
    boot = legacy_boot(until="config", link_mtu=1000)
    boot.events = [e for e in boot.events if "ldlinux" not in e.request]
    _stalled(boot, 0.53, "ldlinux.c32", 1408, 0)
    evidence = boot.evidence("config", FAILED_LDLINUX, 40.0, FAILED_LDLINUX)
    cause = only(tftp.blksize_above_mtu, evidence, "tftp.blksize_above_mtu")
    assert "ldlinux.c32 stalled at block 1" in cause.summary
    assert "blksize 1408" in cause.summary and "1440-byte" in cause.summary
    assert "link MTU 1000" in cause.summary
    assert "968" in cause.fix
    assert diagnose(evidence).codes[0] == "tftp.blksize_above_mtu"


def test_blksize_within_the_mtu_is_not_blamed_for_a_stall() -> None:
    boot = legacy_boot(until="config")
    boot.events = [e for e in boot.events if "ldlinux" not in e.request]
    _stalled(boot, 0.53, "ldlinux.c32", 1408, 7)
    assert tftp.blksize_above_mtu(boot.evidence("config", "timeout", 40.0)) is None


def test_the_uefi_size_probe_is_no_stall_even_on_a_small_mtu() -> None:
    boot = Boot("uefi_tftp_ipv4", link_mtu=1400)
    probe = {"blksize": "1468", "tsize": "0", "windowsize": "4"}
    boot.rrq(4.3, "syslinux.efi", probe)
    boot.transfer(4.303, "syslinux.efi", 171456, "aborted", blksize=1468, blocks=0,
                  reason="size probe: client sent ERROR 8 'User aborted the transfer'")
    boot.tftp_get(4.31, "syslinux.efi", 171456, {"blksize": "1200", "windowsize": "4"})
    assert tftp.blksize_above_mtu(boot.evidence("bootloader", "timeout", 40.0)) is None


def test_blksize_above_mtu_from_a_transfer_record() -> None:
    boot = legacy_boot(until="config", link_mtu=1200)
    boot.events = [e for e in boot.events if "ldlinux" not in e.request]
    # As pxelab.analysis.evidence.packets summarises a flow: DATA 1 went out (5 more times), no ACK.
    boot.packet(0.6, "tftp", "transfer", f"{SERVER}:50000", f"{IP}:49152", file="ldlinux.c32",
                blksize=1408, blocks=1, bytes=1408, last_block=1, complete=False, acked=0,
                retransmits=5, largest_payload=1408, error="")
    cause = only(tftp.blksize_above_mtu, boot.evidence("config", "timeout", 40.0),
                 "tftp.blksize_above_mtu")
    assert "block 1" in cause.summary and "MTU 1200" in cause.summary


# -- tftp.oack_malformed / tftp.oack_unrequested_option ------------------------------------------

def _faulty_oack(boot: Boot, at: float, sent: bytes, fault: str, error: str, *,
                 ended: str = "aborted", after: float = 0.003) -> None:
    """RRQ, the faulty OACK, and the transfer's end ``after`` it (the client's ERROR
    ``error``, or with ``ended`` "error" the server's reason ``error``)."""
    probe = {"blksize": "1468", "tsize": "0", "windowsize": "4"}
    boot.rrq(at, "syslinux.efi", probe)
    boot.oack(at + 0.001, "syslinux.efi", probe | {"tsize": "171456"}, probe, fault=fault,
              sent=sent.hex())
    reason = f"client sent ERROR {error} after 0 blocks" if ended == "aborted" else error
    boot.transfer(at + after, "syslinux.efi", 171456, ended, blksize=1468, blocks=0,
                  reason=reason)


def _wire_oack(boot: Boot, oack_options: dict[str, str], *, malformed: bool) -> None:
    """A UEFI RRQ and the server's OACK, as the capture alone shows them."""
    boot.packet(4.3, "tftp", "rrq", f"{IP}:1283", f"{SERVER}:69", file="syslinux.efi",
                options={"blksize": "1468", "tsize": "0"}, blksize=1468)
    boot.packet(4.301, "tftp", "oack", f"{SERVER}:50000", f"{IP}:1283", file="syslinux.efi",
                options=oack_options, malformed=malformed)


def _uefi_until_nbp() -> Boot:
    boot = Boot("uefi_tftp_ipv4", firmware="ovmf", nbp="syslinux.efi")
    boot.dhcp4_round(4.0, file="syslinux.efi", vendor_class=UEFI_CLASS, arch=7,
                     user_classes=(), options=(53, 54, 51, 58, 59, 1, 66, 67, 97))
    boot.hit(4.2, "fw_dhcp", f"  Station IP address is {IP}")
    return boot


def test_oack_malformed_when_the_client_aborts_after_a_corrupt_oack() -> None:
    boot = _uefi_until_nbp()
    corrupt = b"\x00\x06blksize\x001468\x00tsize\x00171456\x00windowsize\x004\x00blksize\x00"
    _faulty_oack(boot, 4.3, corrupt, "corrupt", "4 'Malformatted OACK packet'")
    evidence = boot.evidence("nbp", "PXE-E23: Client received TFTP error from server.", 5.0)
    cause = only(tftp.oack_malformed, evidence, "tftp.oack_malformed")
    assert "192.0.2.100 aborted the transfer of syslinux.efi" in cause.summary
    assert "Malformatted OACK packet" in cause.summary
    assert diagnose(evidence).codes == ("tftp.oack_malformed",)


def test_oack_malformed_when_the_client_goes_silent_after_a_corrupt_oack() -> None:
    # OVMF sometimes tears its session down before its ERROR reaches the wire.
    boot = _uefi_until_nbp()
    corrupt = b"\x00\x06blksize\x001468\x00tsize\x00171456\x00windowsize\x004\x00blksize\x00"
    _faulty_oack(boot, 4.3, corrupt, "corrupt", "the server is stopping", ended="error",
                 after=0.12)
    evidence = boot.evidence("nbp", "PXE-E99: Unexpected network error.", 4.31)
    cause = only(tftp.oack_malformed, evidence, "tftp.oack_malformed")
    assert "192.0.2.100 went silent on the transfer of syslinux.efi" in cause.summary
    assert diagnose(evidence).codes == ("tftp.oack_malformed",)


def test_oack_malformed_from_the_wire_when_the_client_goes_silent() -> None:
    boot = _uefi_until_nbp()
    _wire_oack(boot, {"blksize": "1468", "tsize": "171456"}, malformed=True)
    cause = only(tftp.oack_malformed, boot.evidence("nbp", "PXE-E99", 5.0),
                 "tftp.oack_malformed")
    assert "went silent on the transfer of syslinux.efi" in cause.summary
    assert "never acknowledged the OACK" in cause.summary


def test_oack_refused_instead_of_acknowledged() -> None:
    boot = _uefi_until_nbp()
    request = boot.rrq(4.3, "syslinux.efi", {"blksize": "1468", "tsize": "0"}).request
    boot.event(4.301, "tftp", "refused", client=IP, request=request,
               answer="ERROR 8 option negotiation refused", reason="fault: OACK refused",
               code=8, file="syslinux.efi", port=1283, local=SERVER)
    cause = only(tftp.oack_malformed, boot.evidence("nbp", "PXE-E23", 5.0),
                 "tftp.oack_malformed")
    assert "ERROR 8 option negotiation refused instead of an OACK" in cause.summary


def test_oack_malformed_from_the_wire() -> None:
    boot = _uefi_until_nbp()
    _wire_oack(boot, {"blksize": "1468", "tsize": "171456"}, malformed=True)
    boot.packet(4.302, "tftp", "error", f"{IP}:1283", f"{SERVER}:50000", code=4,
                message="Malformatted OACK packet", file="syslinux.efi", from_client=True)
    cause = only(tftp.oack_malformed, boot.evidence("nbp", "PXE-E23", 5.0),
                 "tftp.oack_malformed")
    assert "ERROR 4 'Malformatted OACK packet'" in cause.summary
    assert tftp.oack_unrequested_option(boot.evidence("nbp", "PXE-E23", 5.0)) is None


def test_the_uefi_size_probe_abort_is_no_oack_trouble() -> None:
    evidence = uefi_tftp_boot().evidence()
    assert tftp.oack_malformed(evidence) is None
    assert tftp.oack_unrequested_option(evidence) is None


def test_oack_unrequested_option_names_the_option() -> None:
    boot = _uefi_until_nbp()
    sent = codec.encode(codec.OptionAck((("blksize", "1468"), ("tsize", "171456"),
                                         ("windowsize", "4"), ("timeout", "9"))))
    _faulty_oack(boot, 4.3, sent, "add-option", "8 'Malformatted OACK packet'")
    evidence = boot.evidence("nbp", "PXE-E23", 5.0)
    cause = only(tftp.oack_unrequested_option, evidence, "tftp.oack_unrequested_option")
    assert "carried timeout=9, which 192.0.2.100 had not asked for" in cause.summary
    assert "blksize, tsize, windowsize" in cause.summary
    assert "timeout" in cause.fix
    assert tftp.oack_malformed(evidence) is None  # well-formed: the other rule's case
    assert diagnose(evidence).codes == ("tftp.oack_unrequested_option",)


def test_oack_unrequested_option_from_the_wire() -> None:
    boot = _uefi_until_nbp()
    _wire_oack(boot, {"blksize": "1468", "tsize": "171456", "windowsize": "64"},
               malformed=False)
    boot.packet(4.302, "tftp", "error", f"{IP}:1283", f"{SERVER}:50000", code=8,
                message="Malformatted OACK packet", file="syslinux.efi", from_client=True)
    cause = only(tftp.oack_unrequested_option, boot.evidence("nbp", "PXE-E23", 5.0),
                 "tftp.oack_unrequested_option")
    assert "windowsize=64" in cause.summary and "Malformatted" in cause.summary


# -- initrd.no_network_driver --------------------------------------------------------------------

NO_INTERFACE = ("pxelab-init: PANIC link: no devices to configure: no network interface with "
                "a device after 10 s (is the NIC's driver in the initramfs? it has: "
                "virtio_net nfsv4); have: lo")
NO_DEVICE_FAILURE = ("the initramfs found no network device (is the NIC's driver in the "
                     "initrd?) and gave up: the kernel panicked")


def test_no_network_driver_names_the_driver_missing_from_the_initramfs() -> None:
    boot = legacy_boot(until="initramfs_dhcp")
    boot.facts = replace(boot.facts, initrd_modules=("virtio_net.ko", "nfsv4.ko"))
    evidence = boot.evidence("initramfs_dhcp", NO_DEVICE_FAILURE, 17.0,
                             f"pxelab-init: start\n{NO_INTERFACE}\nKernel panic - not syncing")
    cause = only(linux.no_network_driver, evidence, "initrd.no_network_driver")
    assert "driver e1000 is not among its 2 modules (nfsv4, virtio_net)" in cause.summary
    assert "(the console says: pxelab-init: PANIC link: no devices to configure" in cause.summary
    assert "put e1000 into the initramfs" in cause.fix
    # The kernel that ran is Debian's cloud-amd64, which has no e1000 at all.
    assert cause.fix.startswith("boot a kernel that has e1000: Debian's cloud-amd64 kernel "
                                "(6.1.0-56-cloud-amd64) ships none, so no MODULES= setting "
                                "can add it (Debian: the amd64 flavour); then put e1000")
    assert diagnose(evidence).codes == ("initrd.no_network_driver",)


def test_no_network_driver_from_initramfs_tools_console_alone() -> None:
    boot = legacy_boot(until="initramfs")
    boot.facts = replace(boot.facts, initrd_modules=(), nic_driver="")
    tail = ("Begin: Running /scripts/nfs-premount ... done.\n"
            "ipconfig: no devices to configure\nipconfig: no devices to configure\n")
    evidence = boot.evidence("initramfs", "timeout after 60 s", 70.0, tail)
    cause = only(linux.no_network_driver, evidence, "initrd.no_network_driver")
    assert "ipconfig: no devices to configure" in cause.summary


def test_no_network_driver_is_silent_when_the_initramfs_sent_dhcp() -> None:
    boot = legacy_boot(until="initramfs_dhcp")
    boot.dhcp4(9.0, "withheld", "DISCOVER", vendor_class="pxelab-init", arch=None,
               user_classes=(), file=None)
    evidence = boot.evidence("initramfs_dhcp", "the initramfs gave up", 30.0,
                             "pxelab-init: FAILED dhcp: udhcpc on eth0 got no lease")
    assert linux.no_network_driver(evidence) is None


def test_no_network_driver_is_silent_when_the_driver_is_in_the_initramfs() -> None:
    boot = legacy_boot(until="initramfs_dhcp")  # facts: e1000 is among the modules
    evidence = boot.evidence("initramfs_dhcp", "the initramfs gave up", 30.0,
                             "pxelab-init: FAILED link: eth0 has no carrier after 10 s")
    assert linux.no_network_driver(evidence) is None


def test_no_network_driver_names_the_modules_of_a_multi_module_nic() -> None:
    boot = legacy_boot(until="initramfs_dhcp")
    boot.facts = replace(boot.facts, nic_model="virtio-net-pci",
                         nic_driver="virtio_net,net_failover,failover",
                         initrd_modules=("e1000", "failover"))
    evidence = boot.evidence("initramfs_dhcp", "the initramfs gave up", 17.0, NO_INTERFACE)
    cause = only(linux.no_network_driver, evidence, "initrd.no_network_driver")
    assert "driver virtio_net, net_failover (virtio-net-pci) is not among" in cause.summary
    assert "--add-drivers 'virtio_net net_failover'" in cause.fix


def test_no_network_driver_module_names_are_compared_by_stem() -> None:
    assert linux.module_name("kernel/drivers/net/ethernet/intel/e1000/e1000.ko.xz") == "e1000"
    assert linux.module_name("virtio-net") == "virtio_net"


# -- the query helpers ---------------------------------------------------------------------------

def test_file_keys_match_dhcp_names_urls_and_requests() -> None:
    assert query.file_key("http://192.0.2.1/ipxe.efi") == "ipxe.efi"
    assert query.file_key("tftp://[2001:db8::1]/boot/bootx64.efi") == "boot/bootx64.efi"
    assert query.file_key("/pxelinux.0") == "pxelinux.0"
    assert query.host("[2001:db8::1]:69") == "2001:db8::1"
    assert query.host("192.0.2.1:69") == "192.0.2.1"


def test_lines_keep_the_first_and_last_of_a_long_run() -> None:
    boot = legacy_boot(until="config")
    config_search(boot, 0.56, default=False)
    evidence = boot.evidence("config", "timeout", 60.0)
    shown = query.lines(evidence, query.events(evidence, "tftp", "not_found"))
    assert len(shown) == query.MAX_LINES
    assert "more like these" in shown[-3]
    assert shown[-1].split()[1] == "console" and "FAILED config" in shown[-1]


def test_a_dropped_rrq_in_the_config_search_is_unanswered_not_missing() -> None:
    # The search stops at a not-found only because the next RRQ was dropped.
    boot = legacy_boot(until="config")
    for name in CONFIG_SEARCH[:3]:
        boot.tftp_missing(0.56 + CONFIG_SEARCH.index(name) * 0.004, name)
    _dropped_rrqs(boot, 0.6, CONFIG_SEARCH[3], 3)
    evidence = boot.evidence("config", "timeout after 60 s", 60.0)
    assert tftp.next_file_missing(evidence) is None
    cause = only(requests.unanswered, evidence, "request.unanswered")
    assert f"RRQ for {CONFIG_SEARCH[3]} 3 times" in cause.summary


def test_an_rrq_the_wire_shows_answered_is_not_unanswered() -> None:
    # Packets only (the server's events lost): the OACK and the transfer answer the RRQ.
    boot = legacy_boot(until="ldlinux")
    boot.packet(0.56, "tftp", "rrq", f"{IP}:49160", f"{SERVER}:69", file="ldlinux.c32",
                options={"tsize": "0", "blksize": "1408"}, blksize=1408)
    boot.packet(0.561, "tftp", "oack", f"{SERVER}:50001", f"{IP}:49160", file="ldlinux.c32",
                options={"tsize": "119524", "blksize": "1408"}, malformed=False)
    boot.packet(0.561, "tftp", "transfer", f"{SERVER}:50001", f"{IP}:49160",
                file="ldlinux.c32", blksize=1408, blocks=85, bytes=119524, last_block=85,
                complete=True, acked=85, retransmits=0, largest_payload=1408, error="")
    evidence = boot.evidence("config", FAILED_LDLINUX, 10.0, FAILED_LDLINUX)
    assert requests.unanswered(evidence) is None


def _search_refused(boot: Boot, at: float) -> None:
    """PXELINUX's search for ldlinux.c32 in absolute paths, refused with ERROR 2."""
    for step, path in enumerate(("/boot/isolinux/", "/isolinux/", "/boot/syslinux/")):
        name = path + "ldlinux.c32"
        boot.event(at + step * 0.001, "tftp", "denied", client=IP, request=f"RRQ {name} octet",
                   answer="ERROR 2 access violation", reason=f"absolute path {name!r}",
                   code=2, file=name)


def test_ldlinux_read_in_part_and_closed_by_the_client_is_a_mismatch() -> None:
    # Seen with another build's ldlinux.c32: PXELINUX reads 11 blocks, sends ERROR 0
    # "file close", searches absolute paths (refused), then "Failed to load ldlinux.c32".
    boot = legacy_boot(until="ldlinux")
    boot.event(0.53, "tftp", "aborted", client=IP, request="ldlinux.c32",
               answer="15488 bytes in 11 blocks",
               reason="client sent ERROR 0 'No error, file close' after 11 blocks",
               file="ldlinux.c32", bytes=15488, size=136880, blocks=11, blksize=1408)
    _search_refused(boot, 0.54)
    evidence = boot.evidence("config", FAILED_LDLINUX, 10.0, FAILED_LDLINUX)
    cause = only(tftp.ldlinux_mismatch, evidence, "tftp.ldlinux_mismatch")
    assert "read 15488 of 136880 bytes, then closed by the client" in cause.summary
    assert tftp.next_file_missing(evidence) is None


def test_ldlinux_missing_then_absolute_paths_refused_is_a_missing_file() -> None:
    boot = legacy_boot(until="ldlinux")
    boot.event(0.53, "tftp", "not_found", client=IP, request="RRQ ldlinux.c32 octet",
               answer="ERROR 1 file not found",
               reason=f"'ldlinux.c32': no regular file at {DATA}/ldlinux.c32",
               code=1, file="ldlinux.c32")
    _search_refused(boot, 0.54)
    evidence = boot.evidence("config", FAILED_LDLINUX, 10.0, FAILED_LDLINUX)
    cause = only(tftp.next_file_missing, evidence, "file.not_found")
    assert cause.summary.startswith(f"ldlinux.c32 was not found: the TFTP server looked in {DATA}")
    assert tftp.ldlinux_mismatch(evidence) is None


# -- console.milestone_unmatched ---------------------------------------------------------------

SKIPPED = ("the console went on to kernel ('Linux version 6.1.0-57-cloud-amd64') without "
           "bootloader's line: 'Welcome to GRUB!' does not match what this build prints, or "
           "the boot took another path")


def _grub_boot_past_its_banner(skipped_to: str | None) -> Evidence:
    boot = _uefi_until_nbp()
    boot.facts = replace(boot.facts, firmware_packages={"grub-efi-amd64-bin": "2.12-9+deb13u4"})
    boot.hit(4.4, "nbp", "NBP file downloaded successfully")
    evidence = boot.evidence("bootloader", SKIPPED if skipped_to else "no bootloader", 6.0)
    return replace(evidence, timeline=replace(evidence.timeline, skipped_to=skipped_to))


def test_milestone_unmatched_names_the_stage_the_boot_went_past() -> None:
    evidence = _grub_boot_past_its_banner("kernel")
    cause = only(milestones.milestone_unmatched, evidence, "console.milestone_unmatched")
    assert cause.stage == "bootloader"
    assert "went on to kernel" in cause.summary and "grub-efi-amd64-bin 2.12" in cause.summary
    assert diagnose(evidence).codes[0] == "console.milestone_unmatched"


def test_milestone_unmatched_is_silent_when_nothing_later_came() -> None:
    evidence = _grub_boot_past_its_banner(None)
    assert milestones.milestone_unmatched(evidence) is None
    assert "console.milestone_unmatched" not in diagnose(evidence).codes


def test_the_guest_line_fallback_steps_back_when_a_rule_names_the_cause() -> None:
    boot = Boot("legacy_pxe_ipv4", nbp="pxelinux.0", data_files=("pxelinux.0",))
    boot.dhcp4_round(0.3, file="pxelinx.0")
    boot.tftp_missing(0.45, "pxelinx.0")
    evidence = boot.evidence("nbp", "iPXE could not boot from any NIC (console: 'No more "
                             "network devices')", 1.0)
    assert diagnose(evidence).codes == ("file.not_found",)


def test_similar_names_leave_out_merely_related_files() -> None:
    assert files.similar_names("pxelinux.cfg/default", ("pxelinux.0", "ldlinux.c32")) == []
    assert files.similar_names("boot/pxelinux.0", ("pxelinux.0",)) == ["pxelinux.0"]
