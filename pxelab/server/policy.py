"""Per-client boot decisions, kept apart from the protocol code.

The DHCP server turns a request into a :class:`ClientInfo`, asks a
:class:`BootPolicy` what to answer and carries out the :class:`BootDecision`
it gets back. Tests and scenarios swap the policy, never the protocol (the
aiosmtpd handler pattern). :class:`BootPolicy` is an ABC so that hooks added
later (proxyDHCP, DHCPv6, TFTP faults, minimum ``secs``) come with defaults
and existing policies keep working.
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from dataclasses import dataclass, field, replace
from ipaddress import IPv4Address

from pxelab.core.errors import ConfigError
from pxelab.core.frozen import replaced
from pxelab.core.template import placeholders, render
from pxelab.server.match import (
    Arch,
    ClientInfo,
    Match,
    arch_label,
    boot_url,
    normalize_mac,
)

__all__ = [
    "BOOT_FILE_NAMES",
    "Arch",
    "ArchRule",
    "BootDecision",
    "BootPolicy",
    "ClientInfo",
    "HostRule",
    "Match",
    "Rule",
    "RulePolicy",
    "arch_label",
    "check_boot_file",
    "default_profile",
    "normalize_mac",
    "old_fields",
]


@dataclass(frozen=True)
class BootDecision:
    """What to answer one client, and why.

    ``boot_file`` is a TFTP file name or a URL (None: an address without a boot
    file); ``next_server`` None means this server; ``vendor_class`` is echoed in
    option 60 (UEFI HTTP boot ignores offers without ``HTTPClient``);
    ``no_proxy_wait`` sends iPXE option 175.176 so it does not wait 2 s for
    proxyDHCP offers (ipxe/ipxe src/net/udp/dhcp.c, dhcp_discovery_rx).
    """

    boot_file: str | None = None
    next_server: IPv4Address | None = None
    vendor_class: str | None = None
    withhold: bool = False
    no_proxy_wait: bool = True
    reason: str = ""
    # Extra DHCPv4 options (code -> raw bytes) a rule adds, e.g. PXELINUX 209/210.
    extra_options: tuple[tuple[int, bytes], ...] = ()

    @classmethod
    def withheld(cls, reason: str) -> BootDecision:
        return cls(withhold=True, reason=reason)


class BootPolicy(ABC):
    """Decides, per client, what the boot server answers."""

    @abstractmethod
    def decide_dhcp4(self, client: ClientInfo) -> BootDecision:
        """Answer for a DHCPv4 DISCOVER or REQUEST from ``client``."""

    def decide_dhcp6(self, client: ClientInfo) -> BootDecision:
        """Answer for a DHCPv6 Solicit/Request/Information-request; ``boot_file`` is a URL.

        The default asks :meth:`decide_dhcp4` and turns a bare file name into
        ``tftp://[server]/file`` (DHCPv6 has no next-server, RFC 5970 3.1).
        """
        decision = self.decide_dhcp4(client)
        return _as_url(decision, client)


    @property
    def fixed_addresses(self) -> dict[str, IPv4Address]:
        """DHCPv4 addresses reserved per MAC (lower-case, colon form); none by default."""
        return {}


def _as_url(decision: BootDecision, client: ClientInfo) -> BootDecision:
    file = decision.boot_file
    url = boot_url(file, client)
    if url == file:
        return decision
    return replaced(decision, boot_file=url, reason=decision.reason.replace(
        f"-> {file}", f"-> {url}"))


# The values a boot-file template is filled with, for the request at hand (docs/templates.md).
BOOT_FILE_NAMES = ("server", "server_ip", "mac", "mac_hyphen", "ip", "arch")
# A placeholder of str.format, which boot files used before {{ name }}: "{server}" (but not
# iPXE's "${server}").
_FORMAT_FIELD = re.compile(r"(?<![{$])\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}(?!\})")


def boot_file_values(client: ClientInfo) -> dict[str, object]:
    """:data:`BOOT_FILE_NAMES` for ``client``: ``server`` is our URL host in the family
    the request came in on (brackets for IPv6), ``ip`` the client's address if known."""
    return {"server": client.url_host, "server_ip": client.server_address, "mac": client.mac,
            "mac_hyphen": client.mac.replace(":", "-"), "ip": client.client_address,
            "arch": client.arch if client.arch is not None else 0}


def render_template(template: str, client: ClientInfo, source: str = "boot file") -> str:
    """Fill a boot-file template's ``{{ name }}`` placeholders from ``client``."""
    if "{{" not in template:  # a plain name (undionly.kpxe): once per DHCP answer, keep it cheap
        return template
    return render(template, boot_file_values(client), source=source)


def old_fields(template: str) -> list[str]:
    """The ``{name}`` placeholders of the old syntax in ``template``, in order."""
    return [match[1] for match in _FORMAT_FIELD.finditer(template)]


def check_boot_file(template: str | None, source: str) -> None:
    """Refuse a boot file template with a name pxelab does not fill in, or the old ``{name}``.

    Called when a rule is made, so a typo stops the lab before it starts rather than
    at the first client; ``source`` names the rule in the error.
    """
    if template is None:
        return
    old = old_fields(template)
    if old:
        raise ConfigError(f"{source}: boot file {template!r} has {{{old[0]}}}, the old syntax; "
                          f"write {{{{ name }}}} with a name of {', '.join(BOOT_FILE_NAMES)} "
                          "(docs/templates.md)")
    unknown = sorted(placeholders(template) - set(BOOT_FILE_NAMES))
    if unknown:
        raise ConfigError(f"{source}: boot file {template!r}: {{{{ {unknown[0]} }}}} is not a "
                          "value pxelab fills into a boot file; use one of: "
                          f"{', '.join(sorted(BOOT_FILE_NAMES))} (docs/templates.md)")


@dataclass(frozen=True)
class Rule:
    """First-match rule: clients ``match`` selects get ``boot_file``, or nothing.

    ``boot_file`` is a template with the :data:`BOOT_FILE_NAMES`, such as
    ``http://{{ server }}/{{ mac_hyphen }}.ipxe``. ``vendor_class`` is echoed in
    option 60/16; the default echoes ``HTTPClient`` to HTTP clients, which UEFI
    HTTP boot needs.
    """

    match: Match
    boot_file: str | None = None
    name: str = ""
    vendor_class: str | None = None
    withhold: bool = False
    extra_options: tuple[tuple[int, bytes], ...] = ()

    def __post_init__(self) -> None:
        check_boot_file(self.boot_file, self.label())

    def label(self) -> str:
        return f"rule {self.name!r}" if self.name else f"rule [{self.match.describe()}]"


@dataclass(frozen=True)
class ArchRule:
    """Boot file for one architecture, a template like :attr:`Rule.boot_file`."""

    arch: int
    boot_file: str

    def __post_init__(self) -> None:
        check_boot_file(self.boot_file, f"arch rule {arch_label(self.arch)}")


@dataclass(frozen=True)
class HostRule:
    """Per-MAC override: another boot file, or no answer at all.

    ``address`` is a fixed DHCPv4 address for this MAC (ISC dhcpd's
    ``fixed-address``): the lease pool keeps it for this client only.
    """

    mac: str
    boot_file: str | None = None
    withhold: bool = False
    reason: str = ""
    address: IPv4Address | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "mac", normalize_mac(self.mac))
        check_boot_file(self.boot_file, f"host {self.mac}")
        if self.address is not None:
            try:
                object.__setattr__(self, "address", IPv4Address(self.address))
            except ValueError:
                raise ConfigError(f"host {self.mac}: address {self.address!r} is not an "
                                  "IPv4 address like 192.0.2.77") from None


# What a DHCPv4 server would have answered a message type with, for withheld reasons.
_DHCP4_ANSWER = {"DISCOVER": "OFFER", "REQUEST": "ACK", "INFORM": "ACK", "BOOTP": "BOOTREPLY"}

DEFAULT_ARCH_RULES: tuple[ArchRule, ...] = (
    ArchRule(Arch.BIOS, "pxelinux.0"),
    ArchRule(Arch.EFI_IA32, "bootia32.efi"),
    ArchRule(Arch.EFI_X64, "bootx64.efi"),
    ArchRule(Arch.EFI_X64_ALT, "bootx64.efi"),
    ArchRule(Arch.EFI_ARM64, "bootaa64.efi"),
    ArchRule(Arch.EFI_X64_HTTP, "http://{{ server }}/bootx64.efi"),
    ArchRule(Arch.EFI_ARM64_HTTP, "http://{{ server }}/bootaa64.efi"),
)


@dataclass(frozen=True)
class RulePolicy(BootPolicy):
    """Declarative policy: per-MAC rules, then the iPXE script, then per-arch files.

    ``ipxe_script`` (a file name or URL) is what clients with user class "iPXE"
    get; None gives them the normal per-arch answer (the SeaBIOS iPXE ROM *is*
    the PXE firmware and should get pxelinux.0). ``default_file`` serves
    clients whose arch has no rule (None: address only).
    """

    arch_rules: tuple[ArchRule, ...] = DEFAULT_ARCH_RULES
    ipxe_script: str | None = None
    hosts: tuple[HostRule, ...] = ()
    default_file: str | None = None
    next_server: IPv4Address | None = None
    no_proxy_wait: bool = True
    rules: tuple[Rule, ...] = ()  # consulted after hosts, before ipxe_script and arch_rules
    min_secs: int = 0  # ISC dhcpd min-secs: ignore DHCPv4 clients whose secs is below it
    _by_arch: dict[int, str] = field(init=False, repr=False, compare=False)
    _by_mac: dict[str, HostRule] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        check_boot_file(self.ipxe_script, "policy ipxe_script")
        check_boot_file(self.default_file, "policy default_file")
        object.__setattr__(self, "_by_arch", {r.arch: r.boot_file for r in self.arch_rules})
        object.__setattr__(self, "_by_mac", {h.mac: h for h in self.hosts})

    def with_hosts(self, *hosts: HostRule) -> RulePolicy:
        return replace(self, hosts=self.hosts + hosts)

    @property
    def fixed_addresses(self) -> dict[str, IPv4Address]:
        return {h.mac: h.address for h in self.hosts if h.address is not None}

    def decide_dhcp4(self, client: ClientInfo) -> BootDecision:
        if client.protocol == "dhcp4" and client.secs < self.min_secs:
            answer = _DHCP4_ANSWER.get(client.message_type, "answer")
            return BootDecision.withheld(
                f"{answer} withheld: secs={client.secs} < min_secs={self.min_secs}")
        return self._decide(client)

    def decide_dhcp6(self, client: ClientInfo) -> BootDecision:
        return _as_url(self._decide(client), client)

    def _decide(self, client: ClientInfo) -> BootDecision:
        host = self._by_mac.get(client.mac)
        if host is not None and host.withhold:
            return BootDecision.withheld(host.reason or f"host rule for {client.mac}: withhold")
        if host is not None and host.boot_file is not None:
            return self._answer(client, host.boot_file,
                                host.reason or f"host rule for {client.mac}")
        for rule in self.rules:
            if rule.match.matches(client):
                return self._apply(client, rule)
        if client.is_ipxe and self.ipxe_script is not None:
            return self._answer(client, self.ipxe_script, "user class iPXE -> iPXE script")
        label = arch_label(client.arch)
        arch = Arch.BIOS if client.arch is None else client.arch
        template = self._by_arch.get(arch)
        if template is not None:
            origin = f"{label}, assumed BIOS" if client.arch is None else label
            return self._answer(client, template, origin)
        if self.default_file is not None:
            return self._answer(client, self.default_file, f"{label} has no rule: default")
        return replace(self._answer(client, None, ""), reason=f"{label} has no rule: address only")

    def _apply(self, client: ClientInfo, rule: Rule) -> BootDecision:
        if rule.withhold:
            return BootDecision.withheld(f"{rule.label()}: withhold")
        decision = self._answer(client, rule.boot_file, rule.label())
        if rule.vendor_class is not None:
            decision = replace(decision, vendor_class=rule.vendor_class or None)
        return replace(decision, extra_options=rule.extra_options)

    def _answer(self, client: ClientInfo, template: str | None, why: str) -> BootDecision:
        boot_file = None if template is None else render_template(template, client, why)
        http = client.is_http_client
        reason = f"{why} -> {boot_file}" if boot_file is not None else why
        return BootDecision(
            boot_file=boot_file, next_server=self.next_server,
            vendor_class="HTTPClient" if http else None,
            no_proxy_wait=self.no_proxy_wait, reason=reason)


def default_profile(*, hosts: tuple[HostRule, ...] = (), min_secs: int = 0) -> RulePolicy:
    """The classic ISC dhcpd decision tree: iPXE -> script, HTTP -> URL, UEFI -> EFI, else BIOS.

    iPXE clients get ``script.ipxe`` over HTTP; UEFI HTTP clients (arch 15/16)
    ``ipxe32.efi``/``ipxe.efi`` over HTTP with the ``HTTPClient`` echo; UEFI PXE
    (arch 6, 7, 9) the same files over TFTP; other HTTP clients an address only;
    everything else ``undionly.kpxe``.
    Over DHCPv6 the TFTP names become ``tftp://[server]/...`` URLs.
    """
    rules = (
        Rule(Match(user_class="iPXE"), "http://{{ server }}/script.ipxe", name="ipxe-script"),
        Rule(Match(arch=(Arch.EFI_IA32_HTTP,)), "http://{{ server }}/ipxe32.efi",
             name="uefi-http-ia32"),
        Rule(Match(arch=(Arch.EFI_X64_HTTP,)), "http://{{ server }}/ipxe.efi",
             name="uefi-http-x64"),
        Rule(Match(arch=(Arch.EFI_IA32,)), "ipxe32.efi", name="uefi-pxe-ia32"),
        Rule(Match(arch=(Arch.EFI_X64, Arch.EFI_X64_ALT)), "ipxe.efi", name="uefi-pxe-x64"),
        # Other UEFI HTTP clients (arm64: arch 19): the classic tree has no URL for them and
        # undionly.kpxe is neither a URL nor their architecture; an address only, as dhcpd.
        Rule(Match(vendor_class="HTTPClient"), None, name="uefi-http-other"),
    )
    return RulePolicy(arch_rules=(), rules=rules, hosts=hosts, default_file="undionly.kpxe",
                      min_secs=min_secs)
