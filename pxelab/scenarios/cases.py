"""The boot scenarios pxelab knows, by name (the pytest ids and CLI names).

A scenario says which guest boots, through which firmware and boot program,
what the boot server hands out, and which milestones prove each stage.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass, field, replace
from enum import StrEnum
from ipaddress import IPv4Address, IPv6Address
from pathlib import Path

from pxelab.core.errors import ConfigError
from pxelab.core.overrides import Overrides
from pxelab.core.template import render
from pxelab.machine.backend import DEFAULT_LIBVIRT_URI, GuestBackend
from pxelab.machine.console import Milestone
from pxelab.machine.fwsets import HOST, FirmwareSet
from pxelab.machine.ipxerom import RomKind, rom_kind
from pxelab.machine.nvram import Ip6Policy, Ip6Settings
from pxelab.machine.payload import PayloadSpec
from pxelab.machine.payload.nics import nic_driver, payload_for_nic
from pxelab.machine.qemu import Firmware, GuestSpec
from pxelab.scenarios import milestones as ms
from pxelab.scenarios.edits import LabEdit
from pxelab.scenarios.system import SystemUnderTest
from pxelab.server.bootserver import ServerConfig
from pxelab.server.faults import Fault
from pxelab.server.match import url_host
from pxelab.server.policy import Arch, BootPolicy, Match, Rule, RulePolicy
from pxelab.server.settings import Dhcp4Config, Dhcp4Mode, RaConfig, TftpConfig


class ServerOverrides(Overrides):
    """:class:`~pxelab.server.bootserver.ServerConfig` fields a scenario changes, e.g.
    ``ServerOverrides(ra=RaConfig(managed=True))``; the lab sets where it serves."""

    target = ServerConfig
    reserved = frozenset({"interface", "ipv4", "ipv6", "data_root"})


class PolicyOverrides(Overrides):
    """:class:`~pxelab.server.policy.RulePolicy` fields a scenario sets besides its rules
    and iPXE script, e.g. ``PolicyOverrides(min_secs=2)``."""

    target = RulePolicy
    reserved = frozenset({"ipxe_script", "rules"})


class BootLoader(StrEnum):
    """The network boot program that loads the kernel (what the data root must hold)."""

    PXELINUX = "pxelinux"  # pxelinux.0 + ldlinux.c32 + pxelinux.cfg/default, over TFTP
    # syslinux.efi + ldlinux.e64 + pxelinux.cfg/default, over TFTP (Debian syslinux-efi)
    SYSLINUX_EFI = "syslinux-efi"
    # boot.ipxe: an iPXE client (ROM or NBP) fetches kernel and initrd itself
    IPXE_SCRIPT = "ipxe-script"
    # snponly.efi (iPXE on the firmware's SNP), which then runs boot.ipxe
    IPXE_EFI = "ipxe-efi"
    # grubx64.efi built by pxelab (pxelab.machine.nbp) + grub/grub.cfg; GRUB fetches kernel and
    # initrd over the protocol and IP version the firmware fetched it with
    GRUB = "grub"
    # Secure Boot: shimx64.efi (Microsoft-signed), which fetches Debian's signed GRUB
    # network image from beside itself as grubx64.efi; grub/grub.cfg as for GRUB.
    SHIM_GRUB = "shim-grub"

    @property
    def nbp(self) -> str:
        """The first file the firmware fetches from the data root."""
        return {BootLoader.PXELINUX: "pxelinux.0", BootLoader.SYSLINUX_EFI: "syslinux.efi",
                BootLoader.IPXE_SCRIPT: "boot.ipxe", BootLoader.IPXE_EFI: "snponly.efi",
                BootLoader.GRUB: "grubx64.efi", BootLoader.SHIM_GRUB: "shimx64.efi"}[self]


class BootMode(StrEnum):
    """How the firmware fetches its first program; part of every scenario name."""

    LEGACY_PXE = "legacy_pxe"  # BIOS + iPXE ROM, NBP over TFTP
    LEGACY_HTTP = "legacy_http"  # BIOS + iPXE ROM, script and files over HTTP
    UEFI_TFTP = "uefi_tftp"  # OVMF's own PXE client, EFI NBP over TFTP
    UEFI_HTTP = "uefi_http"  # OVMF's HTTP boot client
    UEFI_IPXE = "uefi_ipxe"  # OVMF with the iPXE EFI ROM

    @property
    def firmware_family(self) -> str:
        return self.value.split("_")[0]  # "legacy" or "uefi"

    @property
    def transport(self) -> str:
        return self.value.split("_")[1]  # "pxe", "http", "tftp" or "ipxe"


class IpVersion(StrEnum):
    IPV4 = "ipv4"
    IPV6 = "ipv6"


@dataclass(frozen=True)
class SnpOnlyRom:
    """How a scenario that boots iPXE from the NIC ROM's EFI driver boots when that driver
    is an SNP driver only (pxelab.machine.ipxerom): OVMF's own PXE runs over it and chain-loads
    iPXE, which then goes on as the ROM's iPXE would have."""

    description: str
    loader: BootLoader
    milestones: tuple[Milestone, ...]
    rules: tuple[Rule, ...]
    fetched: tuple[str, ...]
    # Firmware catalog entries recorded besides the scenario's own.
    firmware: tuple[str, ...]
    # The firmware's fixed waits on this way (see Scenario.fixed_waits).
    fixed_waits: tuple[str, ...] = ()


# The most guests one lab powers on at once (Scenario.guests; pxelab.multiboot).
MAX_GUESTS = 64


@dataclass(frozen=True)
class Scenario:
    name: str
    description: str
    guest: GuestSpec
    loader: BootLoader
    milestones: tuple[Milestone, ...]
    payload: PayloadSpec = field(default_factory=PayloadSpec)
    # Seconds QEMU gets to power off by itself after the last milestone.
    poweroff_timeout: float = 60.0

    # Firmware catalog entries whose package versions are recorded with every result.
    firmware: tuple[str, ...] = ("seabios", "rom-virtio", "pxelinux.0", "ldlinux.c32", "qemu")
    # None: the iPXE ROM is the firmware's PXE client and gets the NBP like any BIOS.
    ipxe_script: str | None = None
    mode: BootMode = BootMode.LEGACY_PXE
    ip: IpVersion = IpVersion.IPV4
    # First-match rules ahead of the default per-arch files (see pxelab.server.policy.RulePolicy).
    rules: tuple[Rule, ...] = ()
    # RulePolicy fields this scenario sets besides rules and ipxe_script, checked here.
    policy_options: PolicyOverrides = field(default_factory=PolicyOverrides)
    # ServerConfig fields this scenario changes, checked here.
    server: ServerOverrides = field(default_factory=ServerOverrides)
    # NIC models this scenario also runs with, besides guest.nic_model (pytest ids
    # like "legacy_pxe_ipv4[e1000]").
    nic_variants: tuple[str, ...] = ()
    # Files the boot server must have sent in full (TFTP "sent" or HTTP GET 200) for the
    # boot to count as having gone the scenario's way.
    fetched: tuple[str, ...] = ()
    # Where an iPXE script (BootLoader.IPXE_SCRIPT, IPXE_EFI) fetches kernel and initrd;
    # A template (docs/templates.md): {{ server }} is the lab server's URL host for the
    # scenario's IP version.
    files_url: str = "http://{{ server }}/"
    # Faults the lab injects (pxelab.server.faults): the boot server gets the protocol ones
    # beside the policy, the data root the others; regressions
    # (pxelab.scenarios.regressions) put theirs here.
    faults: tuple[Fault, ...] = ()
    # Changes to the lab as built that leave no fault event (pxelab.scenarios.edits): a
    # file missing from the data root, a typo in a menu, no NFS server.
    edits: tuple[LabEdit, ...] = ()
    # MTU of the guest's link (the tap port), None: the bridge's 1500.
    link_mtu: int | None = None
    # Regressions applied to this case, as given on the command line (NAME[=ARGS]);
    # they make the command that reproduces the boot by hand.
    applied: tuple[str, ...] = ()
    # The way this scenario boots when the NIC ROM's EFI driver has no iPXE stack; None:
    # the same way whatever the ROM (see :meth:`on_rom`).
    snp_only: SnpOnlyRom | None = None
    # The firmware set the guest's firmware, NIC ROM and boot programs come from
    # (pxelab.machine.fwsets: host, bookworm, trixie, sid or a .toml file).
    firmware_set: str = HOST
    # What OVMF waits on this path whatever the server answers, by name in
    # pxelab/data/firmware/fixed-waits.toml (pxelab.machine.fixed_waits): part of the
    # case's physical limit, with its direct boot (bench/matrix_bench.py).
    fixed_waits: tuple[str, ...] = ()
    # The user's own system (a lab file's data root, NFS root and boot server); None:
    # pxelab's payload, data root and server with this scenario's rules.
    system: SystemUnderTest | None = None
    # The lab file's name, the first word of its test ids ("" for built-in scenarios).
    lab_name: str = ""
    # How many of this machine the lab powers on at once, each with its own MAC
    # (pxelab.multiboot); 1: a lab of one guest (pxelab.lab.BootRun).
    guests: int = 1

    def __post_init__(self) -> None:
        # A dict would be checked only when the lab builds the settings, and could change.
        for name, kind in (("server", ServerOverrides), ("policy_options", PolicyOverrides)):
            if not isinstance(getattr(self, name), kind):
                raise ConfigError(f"scenario {self.name!r}: {name} must be a {kind.__name__}"
                                  f"(...), not {type(getattr(self, name)).__name__}; "
                                  f"write {name}={kind.__name__}(key=value, ...)")
        expected = f"{self.mode}_{self.ip}"
        if not self.name.startswith(expected):
            raise ConfigError(f"scenario {self.name!r} must be named {expected}... "
                              "(mode and IP version), so that -k selects it as users expect")

    @property
    def keywords(self) -> tuple[str, ...]:
        """Words ``-k`` and markers select by: firmware family, transport, IP version."""
        words = (self.mode.firmware_family, self.mode.transport, str(self.ip),
                 str(self.guest.firmware))
        return (*words, "secureboot") if self.guest.secure_boot else words

    def files_base(self, ipv4: IPv4Address, ipv6: IPv6Address) -> str:
        """:attr:`files_url` for a lab server at ``ipv4`` and ``ipv6``."""
        host = url_host(str(ipv4 if self.ip is IpVersion.IPV4 else ipv6))
        values = {"server": host, "server_ipv4": ipv4, "server_ipv6": ipv6}
        return render(self.files_url, values, source=f"scenario {self.name} files_url")

    def policy(self) -> BootPolicy:
        """The boot server's per-client decisions for this scenario."""
        return RulePolicy(ipxe_script=self.ipxe_script, rules=self.rules,
                          **self.policy_options)

    @property
    def nic_model(self) -> str:
        return self.guest.nic_model

    @property
    def base_name(self) -> str:
        """The name without a NIC variant suffix: "legacy_pxe_ipv4" for "...[e1000]"."""
        return self.name.partition("[")[0]

    def with_nic(self, model: str) -> Scenario:
        """This scenario on NIC ``model``, named ``name[model]``.

        The payload gets the model's driver (and a kernel flavour that has it),
        and the firmware list names the iPXE ROM QEMU loads for the model.
        """
        if model == self.nic_model:
            return self
        old, new = nic_driver(self.nic_model), nic_driver(model)
        firmware = tuple(new.rom if name == old.rom else name for name in self.firmware)
        if self.guest.nic_romfile is None and new.rom not in firmware:
            firmware += (new.rom,)  # QEMU loads the model's default ROM
        return replace(self, name=f"{self.base_name}[{model}]",
                       guest=replace(self.guest, nic_model=model),
                       payload=payload_for_nic(self.payload, model),
                       firmware=firmware, nic_variants=())

    def on_rom(self, kind: RomKind) -> Scenario:
        """This scenario on a NIC ROM whose EFI driver is ``kind``."""
        alt = self.snp_only
        if kind is RomKind.IPXE or alt is None:
            return self
        return replace(self, description=alt.description, loader=alt.loader,
                       milestones=alt.milestones, rules=alt.rules, fetched=alt.fetched,
                       firmware=self.firmware + alt.firmware, fixed_waits=alt.fixed_waits,
                       snp_only=None)

    def variants(self) -> tuple[Scenario, ...]:
        """This scenario on its own NIC, then on each of ``nic_variants``."""
        return (self, *(self.with_nic(model) for model in self.nic_variants))


# The NIC's IPv6 settings in OVMF's NVRAM for the UEFI IPv6 cases, as an admin sets
# them in the firmware's IPv6 Network Configuration form: automatic (router discovery as
# soon as the NIC is connected, so the RA's default route is known when PXE or HTTP boot
# looks for one) and DAD Transmit Count 0 (addresses are used without probing first).
# With EDK2's defaults (manual, one probe) PXEv6 waits a fixed 4 s before its Solicit
# and 1-2 s after the Reply, HTTPv6 ~2 s after it (bench/README.md).
UEFI_IPV6_SETTINGS = Ip6Settings(Ip6Policy.AUTOMATIC, dad_transmits=0)

# Secure Boot: OVMF's Secure Boot build with Microsoft's keys enrolled (from the firmware
# set), EDK2's own network stack (no iPXE ROM: iPXE's EFI driver is not signed by a key
# OVMF trusts, and the firmware would not start it).
SECURE_BOOT_GUEST = GuestSpec(firmware=Firmware.OVMF, nic_romfile="", secure_boot=True)
SECURE_BOOT_FIRMWARE = ("ovmf-code-sb", "shimx64.efi", "grubnetx64.efi", "qemu")

SCENARIOS: dict[str, Scenario] = {
    s.name: s
    for s in (
        Scenario(
            name="legacy_pxe_ipv4",
            description="SeaBIOS + iPXE ROM, DHCPv4, TFTP pxelinux.0, kernel+initrd over HTTP "
                        "through the iPXE ROM's PXE file API, NFSv4 root",
            guest=GuestSpec(firmware=Firmware.SEABIOS),
            loader=BootLoader.PXELINUX,
            milestones=ms.SEABIOS + ms.IPXE_ROM + ms.PXELINUX + ms.LINUX_NFSROOT,
            fetched=("pxelinux.0", "ldlinux.c32", "pxelinux.cfg/default", "vmlinuz",
                     "initrd.img"),
            nic_variants=("e1000", "rtl8139"),
        ),
        Scenario(
            name="legacy_http_ipv4",
            description="SeaBIOS + iPXE ROM, DHCPv4 with user class iPXE, HTTP iPXE script, "
                        "kernel+initrd over HTTP, NFSv4 root",
            guest=GuestSpec(firmware=Firmware.SEABIOS),
            loader=BootLoader.IPXE_SCRIPT,
            milestones=ms.SEABIOS + ms.IPXE_ROM_DHCP + ms.IPXE_SCRIPT + ms.LINUX_NFSROOT,
            firmware=("seabios", "rom-virtio", "qemu"),
            mode=BootMode.LEGACY_HTTP,
            rules=(Rule(Match(user_class="iPXE"), "http://{{ server }}/boot.ipxe",
                        name="ipxe-script"),),
            fetched=("boot.ipxe", "vmlinuz", "initrd.img"),
        ),
        Scenario(
            name="uefi_tftp_ipv4",
            description="OVMF with EDK2's network stack, PXEv4, syslinux.efi over TFTP, "
                        "kernel+initrd over HTTP (syslinux.efi's HTTP client on EDK2's TCP4), "
                        "NFSv4 root",
            # romfile="": no iPXE ROM, so OVMF's own PXEv4 boot option comes first.
            guest=GuestSpec(firmware=Firmware.OVMF, nic_romfile=""),
            loader=BootLoader.SYSLINUX_EFI,
            milestones=ms.OVMF_PXE4 + ms.SYSLINUX_EFI + ms.LINUX_NFSROOT,
            firmware=("ovmf-code", "syslinux.efi", "ldlinux.e64", "qemu"),
            mode=BootMode.UEFI_TFTP,
            rules=(Rule(Match(arch=(Arch.EFI_X64,)), "syslinux.efi", name="uefi-pxe4"),),
            fetched=("syslinux.efi", "ldlinux.e64", "pxelinux.cfg/default", "vmlinuz",
                     "initrd.img"),
            # PXEv4's DHCPv4 round, then the one syslinux.efi sets off by opening UDP4
            # with the default address (docs/firmware-notes.md).
            fixed_waits=("pxe4-offers", "default-address-offers"),
        ),
        Scenario(
            name="uefi_http_ipv4",
            description="OVMF with EDK2's network stack, HTTPv4 boot (HTTPClient echo + URL), "
                        "snponly.efi over HTTP, iPXE DHCP with user class iPXE, HTTP script, "
                        "kernel+initrd over HTTP, NFSv4 root",
            # Both PXE options off: HTTPv4 is OVMF's first boot option.
            guest=GuestSpec(firmware=Firmware.OVMF, nic_romfile="",
                            fw_cfg=(("opt/org.tianocore/IPv4PXESupport", "n"),
                                    ("opt/org.tianocore/IPv6PXESupport", "n"))),
            loader=BootLoader.IPXE_EFI,
            milestones=ms.OVMF_HTTP4 + ms.IPXE_EFI_NBP + ms.IPXE_SCRIPT + ms.LINUX_NFSROOT,
            firmware=("ovmf-code", "snponly.efi", "qemu"),
            mode=BootMode.UEFI_HTTP,
            # iPXE first: it runs on OVMF's SNP and would otherwise get itself again.
            rules=(Rule(Match(user_class="iPXE"), "http://{{ server }}/boot.ipxe",
                        name="ipxe-script"),
                   Rule(Match(arch=(Arch.EFI_X64_HTTP,), family="ipv4"),
                        "http://{{ server }}/snponly.efi", name="uefi-http4-ipxe")),
            fetched=("snponly.efi", "boot.ipxe", "vmlinuz", "initrd.img"),
            fixed_waits=("http4-offers",),  # HTTPv4's DHCPv4 round; iPXE's is its own
        ),
        Scenario(
            name="uefi_ipxe_ipv4",
            description="OVMF + the iPXE EFI driver of QEMU's NIC ROM (OVMF boots its "
                        "LoadFile), DHCP with user class iPXE, HTTP script, kernel+initrd "
                        "over HTTP, NFSv4 root",
            # QEMU's default romfile (efi-virtio.rom): its iPXE EFI driver binds the NIC
            # and installs SNP + LoadFile; OVMF's network boot option calls that
            # LoadFile, which runs iPXE's autoboot on the NIC.
            guest=GuestSpec(firmware=Firmware.OVMF),
            loader=BootLoader.IPXE_SCRIPT,
            milestones=ms.IPXE_EFI_ROM + ms.IPXE_SCRIPT + ms.LINUX_NFSROOT,
            firmware=("ovmf-code", "rom-virtio", "qemu"),
            mode=BootMode.UEFI_IPXE,
            rules=(Rule(Match(user_class="iPXE"), "http://{{ server }}/boot.ipxe",
                        name="ipxe-script"),),
            fetched=("boot.ipxe", "vmlinuz", "initrd.img"),
            nic_variants=("e1000",),  # efi-e1000.rom's iPXE EFI driver
            # The ROM's SNP driver drives the NIC (a PCI option ROM's driver goes before
            # OVMF's own; OVMF has none for e1000) and OVMF's PXEv4 runs over it.
            snp_only=SnpOnlyRom(
                description="OVMF + the SNP-only iPXE EFI driver of QEMU's NIC ROM, OVMF's "
                            "PXEv4, snponly.efi over TFTP, iPXE DHCP with user class iPXE, "
                            "HTTP script, kernel+initrd over HTTP, NFSv4 root",
                loader=BootLoader.IPXE_EFI,
                milestones=ms.OVMF_PXE4 + ms.IPXE_EFI_NBP + ms.IPXE_SCRIPT + ms.LINUX_NFSROOT,
                # iPXE first: it runs on the same SNP and would otherwise get itself again.
                rules=(Rule(Match(user_class="iPXE"), "http://{{ server }}/boot.ipxe",
                            name="ipxe-script"),
                       Rule(Match(arch=(Arch.EFI_X64,)), "snponly.efi", name="uefi-pxe4-ipxe")),
                fetched=("snponly.efi", "boot.ipxe", "vmlinuz", "initrd.img"),
                firmware=("snponly.efi",),
                fixed_waits=("pxe4-offers",)),
        ),
        Scenario(
            name="legacy_pxe_ipv6",
            description="SeaBIOS + iPXE ROM, RA (M flag) + DHCPv6 option 59 "
                        "tftp://[...]/boot.ipxe, kernel+initrd over TFTP/IPv6, NFSv4 root "
                        "over IPv6",
            guest=GuestSpec(firmware=Firmware.SEABIOS),
            loader=BootLoader.IPXE_SCRIPT,
            milestones=ms.SEABIOS + ms.IPXE_ROM_DHCP + ms.IPXE_SCRIPT + ms.LINUX_NFSROOT_IPV6,
            firmware=("seabios", "rom-virtio", "qemu"),
            mode=BootMode.LEGACY_PXE,
            ip=IpVersion.IPV6,
            # The RA's M flag makes iPXE run stateful DHCPv6 (option 59: the script's
            # URL). DHCPv4 answers with an address only: iPXE waits for every
            # configurator, so a silent DHCPv4 would cost ~15 s, and an answer without
            # a file name leaves "filename" to the DHCPv6 settings block (run).
            rules=(Rule(Match(user_class="iPXE", family="ipv6"),
                        "tftp://{{ server }}/boot.ipxe", name="ipxe-script-tftp6"),
                   Rule(Match(family="ipv4"), None, name="ipv4-address-only")),
            server=ServerOverrides(ra=RaConfig(managed=True)),
            files_url="tftp://{{ server }}/",
            fetched=("boot.ipxe", "vmlinuz", "initrd.img"),
        ),
        Scenario(
            name="uefi_tftp_ipv6",
            description="OVMF with EDK2's network stack, PXEv6 (RA + DHCPv6 option 59 "
                        "tftp://[...]/grubx64.efi), pxelab's GRUB image loads kernel+initrd "
                        "over HTTP/IPv6, NFSv4 root over IPv6",
            # IPv4PXESupport=n: PXEv6 is OVMF's first boot option; no DHCPv4 at all.
            # 1 s at the boot menu: EDK2 puts off using the link-local address for a
            # random 0-1 s even without DAD, and PXEv6 starting before that waits a fixed
            # 3 s (PxeBcDhcp6Sarr's EFI_NO_MAPPING path).
            guest=GuestSpec(firmware=Firmware.OVMF, nic_romfile="",
                            fw_cfg=(("opt/org.tianocore/IPv4PXESupport", "n"),),
                            boot_menu_wait_ms=1000, ip6_settings=UEFI_IPV6_SETTINGS),
            loader=BootLoader.GRUB,
            milestones=ms.OVMF_PXE6 + ms.GRUB + ms.LINUX_NFSROOT_IPV6,
            firmware=("ovmf-code", "grub-x86_64-efi", "grub-mkimage", "qemu"),
            mode=BootMode.UEFI_TFTP,
            ip=IpVersion.IPV6,
            rules=(Rule(Match(arch=(Arch.EFI_X64,), family="ipv6"), "grubx64.efi",
                        name="uefi-pxe6-grub"),),
            # GRUB asks TFTP for "/grub/grub.cfg"; a default route in the RA saves EDK2 a
            # 10 s route-table wait (see pxelab.server.ra.server), and the RS it sends when the
            # NIC is connected is answered at once, so the route is there before the
            # lease; a 100 ms Retrans Timer shortens any DAD (bench/README.md).
            server=ServerOverrides(
                dhcp4=Dhcp4Config(mode=Dhcp4Mode.OFF), tftp=TftpConfig(allow_absolute=True),
                ra=RaConfig(router_lifetime=1800, retrans_timer=100, min_interval=0.0)),
            fetched=("grubx64.efi", "grub/grub.cfg", "vmlinuz", "initrd.img"),
        ),
        Scenario(
            name="uefi_http_ipv6",
            description="OVMF with EDK2's network stack, HTTPv6 boot (DHCPv6 option 16 "
                        "HTTPClient + 59 http://[...]/snponly.efi), iPXE DHCPv6 with user "
                        "class iPXE, HTTP script, kernel+initrd over HTTP/IPv6, NFSv4 root "
                        "over IPv6",
            # Both PXE options off: HTTPv4 comes first, gets a URL that answers 404 and
            # fails at once, then HTTPv6 starts (fixtures/packets/README.md). HTTPv6 cannot
            # go first: OVMF 2022.11's HttpBootDhcp6Sarr fails at once while the link-local
            # address is tentative, which HTTPv4's 4 s DHCP round outlasts (bench/README.md).
            guest=GuestSpec(firmware=Firmware.OVMF, nic_romfile="",
                            fw_cfg=(("opt/org.tianocore/IPv4PXESupport", "n"),
                                    ("opt/org.tianocore/IPv6PXESupport", "n")),
                            ip6_settings=UEFI_IPV6_SETTINGS),
            loader=BootLoader.IPXE_EFI,
            milestones=ms.OVMF_HTTP6 + ms.IPXE_EFI_NBP + ms.IPXE_SCRIPT + ms.LINUX_NFSROOT_IPV6,
            firmware=("ovmf-code", "snponly.efi", "qemu"),
            mode=BootMode.UEFI_HTTP,
            ip=IpVersion.IPV6,
            # iPXE (snponly.efi on OVMF's SNP) first: it must get the script, not itself.
            # Its DHCPv4 gets an address only, so "filename" comes from DHCPv6 (as in
            # legacy_pxe_ipv6); the firmware's HTTPv4 attempt gets the 404 URL.
            rules=(Rule(Match(user_class="iPXE", family="ipv6"),
                        "http://{{ server }}/boot.ipxe", name="ipxe-script-http6"),
                   Rule(Match(arch=(Arch.EFI_X64_HTTP,), family="ipv6"),
                        "http://{{ server }}/snponly.efi", name="uefi-http6-ipxe"),
                   Rule(Match(arch=(Arch.EFI_X64_HTTP,), family="ipv4"),
                        "http://{{ server }}/no-http-boot-over-ipv4.efi",
                        name="uefi-http4-404"),
                   Rule(Match(family="ipv4"), None, name="ipv4-address-only")),
            # A default route saves EDK2's 10 s route-table wait; the solicitation it
            # sends from :: once HTTP boot sets its address is answered at once; a 100 ms
            # Retrans Timer shortens its DAD of the leased address (bench/README.md). The
            # O flag makes iPXE ask stateless DHCPv6 (Information-request) for its script
            # URL; OVMF's own second client then asks the same and needs no Release (with
            # the M flag it leased and released an address of its own).
            server=ServerOverrides(ra=RaConfig(router_lifetime=1800, min_interval=0.0,
                                                 retrans_timer=100, other=True)),
            fetched=("snponly.efi", "boot.ipxe", "vmlinuz", "initrd.img"),
            fixed_waits=("http4-offers",),  # the HTTPv4 attempt that gets the 404
        ),
        Scenario(
            name="uefi_tftp_ipv4_secureboot",
            description="OVMF with Secure Boot and Microsoft's keys, PXEv4, shimx64.efi over "
                        "TFTP, Debian's signed GRUB from beside it, kernel (Debian-signed, "
                        "verified through shim) + initrd over TFTP, NFSv4 root",
            guest=SECURE_BOOT_GUEST,
            loader=BootLoader.SHIM_GRUB,
            milestones=ms.OVMF_PXE4 + ms.SHIM_GRUB + ms.with_secure_boot(ms.LINUX_NFSROOT),
            firmware=SECURE_BOOT_FIRMWARE,
            mode=BootMode.UEFI_TFTP,
            rules=(Rule(Match(arch=(Arch.EFI_X64,)), "shimx64.efi", name="uefi-pxe4-shim"),),
            # shim asks for its second stage by the path beside itself, and signed GRUB
            # for "/grub/grub.cfg" (its built-in prefix): both from the TFTP root.
            server=ServerOverrides(tftp=TftpConfig(allow_absolute=True)),
            # Over TFTP too: Debian 12's signed GRUB has no http module, and under Secure
            # Boot it cannot load one.
            files_url="tftp://{{ server }}/",
            fetched=("shimx64.efi", "grubx64.efi", "grub/grub.cfg", "vmlinuz", "initrd.img"),
            fixed_waits=("pxe4-offers",),
        ),
        Scenario(
            name="uefi_http_ipv4_secureboot",
            description="OVMF with Secure Boot and Microsoft's keys, HTTPv4 boot of "
                        "shimx64.efi, Debian's signed GRUB over HTTP from beside it, kernel "
                        "(Debian-signed, verified through shim) + initrd over HTTP, NFSv4 root",
            guest=replace(SECURE_BOOT_GUEST,
                          fw_cfg=(("opt/org.tianocore/IPv4PXESupport", "n"),
                                  ("opt/org.tianocore/IPv6PXESupport", "n"))),
            loader=BootLoader.SHIM_GRUB,
            milestones=ms.OVMF_HTTP4 + ms.SHIM_GRUB + ms.with_secure_boot(ms.LINUX_NFSROOT),
            firmware=SECURE_BOOT_FIRMWARE,
            mode=BootMode.UEFI_HTTP,
            rules=(Rule(Match(arch=(Arch.EFI_X64_HTTP,), family="ipv4"),
                        "http://{{ server }}/shimx64.efi", name="uefi-http4-shim"),),
            fetched=("shimx64.efi", "grubx64.efi", "grub/grub.cfg", "vmlinuz", "initrd.img"),
            fixed_waits=("http4-offers",),
        ),
        Scenario(
            name="uefi_tftp_ipv6_secureboot",
            description="OVMF with Secure Boot and Microsoft's keys, PXEv6 (RA + DHCPv6 option "
                        "59 tftp://[...]/shimx64.efi), Debian's signed GRUB over TFTP/IPv6 from "
                        "beside it, kernel (Debian-signed, verified through shim) + initrd over "
                        "TFTP/IPv6, NFSv4 root over IPv6",
            # As uefi_tftp_ipv6: PXEv6 first, 1 s at the boot menu for the link-local
            # address, the NIC's IPv6 settings in NVRAM.
            guest=replace(SECURE_BOOT_GUEST, fw_cfg=(("opt/org.tianocore/IPv4PXESupport", "n"),),
                          boot_menu_wait_ms=1000, ip6_settings=UEFI_IPV6_SETTINGS),
            loader=BootLoader.SHIM_GRUB,
            milestones=ms.OVMF_PXE6 + ms.SHIM_GRUB + ms.with_secure_boot(ms.LINUX_NFSROOT_IPV6),
            firmware=SECURE_BOOT_FIRMWARE,
            mode=BootMode.UEFI_TFTP,
            ip=IpVersion.IPV6,
            rules=(Rule(Match(arch=(Arch.EFI_X64,), family="ipv6"), "shimx64.efi",
                        name="uefi-pxe6-shim"),),
            server=ServerOverrides(
                dhcp4=Dhcp4Config(mode=Dhcp4Mode.OFF), tftp=TftpConfig(allow_absolute=True),
                ra=RaConfig(router_lifetime=1800, retrans_timer=100, min_interval=0.0)),
            files_url="tftp://{{ server }}/",
            fetched=("shimx64.efi", "grubx64.efi", "grub/grub.cfg", "vmlinuz", "initrd.img"),
        ),
        Scenario(
            name="uefi_http_ipv6_secureboot",
            description="OVMF with Secure Boot and Microsoft's keys, HTTPv6 boot (DHCPv6 "
                        "option 16 HTTPClient + 59 http://[...]/shimx64.efi), Debian's signed "
                        "GRUB over HTTP/IPv6 from beside it, kernel (Debian-signed, verified "
                        "through shim) + initrd over HTTP/IPv6, NFSv4 root over IPv6",
            # As uefi_http_ipv6: HTTPv4 goes first and fails on a 404, then HTTPv6.
            guest=replace(SECURE_BOOT_GUEST,
                          fw_cfg=(("opt/org.tianocore/IPv4PXESupport", "n"),
                                  ("opt/org.tianocore/IPv6PXESupport", "n")),
                          ip6_settings=UEFI_IPV6_SETTINGS),
            loader=BootLoader.SHIM_GRUB,
            milestones=ms.OVMF_HTTP6 + ms.SHIM_GRUB + ms.with_secure_boot(ms.LINUX_NFSROOT_IPV6),
            firmware=SECURE_BOOT_FIRMWARE,
            mode=BootMode.UEFI_HTTP,
            ip=IpVersion.IPV6,
            rules=(Rule(Match(arch=(Arch.EFI_X64_HTTP,), family="ipv6"),
                        "http://{{ server }}/shimx64.efi", name="uefi-http6-shim"),
                   Rule(Match(arch=(Arch.EFI_X64_HTTP,), family="ipv4"),
                        "http://{{ server }}/no-http-boot-over-ipv4.efi",
                        name="uefi-http4-404"),
                   Rule(Match(family="ipv4"), None, name="ipv4-address-only")),
            server=ServerOverrides(ra=RaConfig(router_lifetime=1800, min_interval=0.0,
                                                 retrans_timer=100)),
            fetched=("shimx64.efi", "grubx64.efi", "grub/grub.cfg", "vmlinuz", "initrd.img"),
            fixed_waits=("http4-offers",),  # the HTTPv4 attempt that gets the 404
        ),
    )
}

DEFAULT_SCENARIO = "legacy_pxe_ipv4"


def for_firmware_set(scenario: Scenario, fwset: FirmwareSet) -> Scenario:
    """``scenario`` as it boots on ``fwset``: the way its NIC ROM boots, every file explicit.

    Which way a ROM boots: :mod:`pxelab.machine.ipxerom`. QEMU gets the set's SeaBIOS
    or OVMF and the set's ROM for the NIC, never its own defaults.
    """
    guest = scenario.guest
    rom = nic_driver(scenario.nic_model).rom
    if scenario.snp_only is not None and guest.nic_romfile != "":
        kind = fwset.rom_kind(rom) if guest.nic_romfile is None \
            else rom_kind(Path(guest.nic_romfile))
        scenario = scenario.on_rom(kind)
    if guest.nic_romfile is None:
        guest = replace(guest, nic_rom=fwset.locate(rom))
    if guest.firmware.is_uefi():
        guest = replace(guest, ovmf=fwset.ovmf(secure_boot=guest.secure_boot))
    else:
        guest = replace(guest, bios=fwset.locate("seabios"))
    return replace(scenario, guest=guest, firmware_set=fwset.reference)


def get_scenario(name: str) -> Scenario:
    try:
        return SCENARIOS[name]
    except KeyError:
        known = ", ".join(sorted(SCENARIOS))
        raise ConfigError(f"unknown scenario {name!r}; choose one of: {known}") from None


def reproduce_command(scenario: Scenario, artifacts: str = "pxelab-artifacts",
                      backend: GuestBackend | None = None, boot_dir: Path | None = None) -> str:
    """The shell command that boots ``scenario`` (with its regressions) by hand; with the
    libvirt backend, also how to start the guest's domain alone from ``boot_dir``."""
    words = ["pxelab", "boot", scenario.name]
    if scenario.system is not None:
        words[2:2] = ["--lab", str(scenario.system.source)]
    if scenario.firmware_set != HOST:
        words += ["--firmware-set", scenario.firmware_set]
    for spec in scenario.applied:
        words += ["--fault", spec]
    if scenario.guests > 1:
        words += ["--guests", str(scenario.guests)]
    if backend is not None and backend.kind.is_libvirt():
        words += ["--backend", str(backend.kind)]
        if backend.libvirt_uri != DEFAULT_LIBVIRT_URI:
            words += ["--libvirt-uri", backend.libvirt_uri]
    words += ["--artifacts", artifacts]
    command = shlex.join(words)
    if backend is not None and backend.kind.is_libvirt() and boot_dir is not None:
        command += (f"  # the domain alone: {shlex.join(['virsh', '-c', backend.libvirt_uri])}"
                    f" create {shlex.quote(str(boot_dir / 'domain.xml'))} --console")
    if scenario.edits:  # test-made changes with no command-line form: say what they were
        command += "  # with the lab edited: " + "; ".join(e.describe() for e in scenario.edits)
    return command
