"""The lab file: what it builds, and that every mistake names the file, the key and the fix."""

from __future__ import annotations

from dataclasses import fields
from ipaddress import IPv4Address, IPv4Interface, IPv6Address, IPv6Interface, ip_interface
from pathlib import Path

import pytest

from pxelab.core.errors import ConfigError
from pxelab.server.config import InterfaceAddresses, LabConfig, lab_config, load_lab_config
from pxelab.server.faults import (
    DelayPacket,
    DropPacket,
    HttpError,
    LieTsize,
    OackFault,
    OackMode,
    TruncateFile,
    WithholdOffers,
)
from pxelab.server.policy import BootPolicy, ClientInfo, HostRule, Match, default_profile
from pxelab.server.settings import Dhcp4Mode, RaConfig, TftpConfig

pytestmark = pytest.mark.unit

LABS = Path(__file__).parents[2] / "fixtures" / "labs"
MAC = "52:54:00:12:34:56"
BASE = '[server]\ninterface = "eth0"\ndata_root = "/srv/tftp"\n'
HOST_ADDRESS = "address" in {f.name for f in fields(HostRule)}
PACKET_FILE = "file" in {f.name for f in fields(DropPacket)}


def lab_net(interface: str) -> InterfaceAddresses:
    """What tests/netns/nslab.py puts on br0, for any interface name."""
    return IPv4Interface("192.0.2.1/24"), IPv6Interface("2001:db8::1/64")


def v4_only(interface: str) -> InterfaceAddresses:
    return IPv4Interface("10.1.2.3/16"), None


def no_interface(interface: str) -> InterfaceAddresses:
    raise ConfigError(f"there is no interface {interface!r} in this network namespace")


def load(tmp_path: Path, text: str, **kwargs: object) -> LabConfig:
    path = tmp_path / "lab.toml"
    path.write_text(text)
    kwargs.setdefault("resolve", lab_net)
    return load_lab_config(path, **kwargs)  # type: ignore[arg-type]


def error(tmp_path: Path, text: str, **kwargs: object) -> str:
    with pytest.raises(ConfigError) as caught:
        load(tmp_path, text, **kwargs)
    message = str(caught.value)
    assert message.startswith(f"{tmp_path / 'lab.toml'}: "), message
    assert "Traceback" not in message
    return message


# -- what a file builds ----------------------------------------------------------------------

@pytest.mark.parametrize("name", ["minimal", "classic", "proxy", "faults"])
def test_every_shipped_sample_loads(name: str) -> None:
    lab = load_lab_config(LABS / f"{name}.toml", resolve=lab_net)
    assert lab.source.endswith(f"{name}.toml")
    assert lab.describe()


def test_interface_and_data_root_are_a_complete_config(tmp_path: Path) -> None:
    lab = load(tmp_path, BASE)
    cfg = lab.server
    assert cfg.interface == "eth0" and cfg.data_root == Path("/srv/tftp")
    assert cfg.ipv4 == IPv4Interface("192.0.2.1/24")
    assert cfg.ipv6 == IPv6Interface("2001:db8::1/64")
    assert cfg.dhcp4.pool == (IPv4Address("192.0.2.128"), IPv4Address("192.0.2.254"))
    assert cfg.dhcp6.pool == (IPv6Address("2001:db8::1:0"), IPv6Address("2001:db8::1:ffff"))
    assert cfg.dhcp4.mode is Dhcp4Mode.FULL and cfg.dhcp6.enabled
    assert cfg.ra.enabled and cfg.tftp.enabled and cfg.http.enabled
    assert lab.profile == "default"
    assert lab.policy.rules == default_profile().rules


def test_without_ipv6_dhcp6_and_ra_stay_off(tmp_path: Path) -> None:
    cfg = load(tmp_path, BASE, resolve=v4_only).server
    assert cfg.ipv6 is None and not cfg.dhcp6.enabled and not cfg.ra.enabled
    assert cfg.dhcp4.pool == (IPv4Address("10.1.128.0"), IPv4Address("10.1.255.254"))
    off = load(tmp_path, BASE + "ipv6 = false\n").server
    assert off.ipv6 is None and not off.dhcp6.enabled


def test_explicit_addresses_need_no_interface(tmp_path: Path) -> None:
    cfg = load(tmp_path, BASE + 'ipv4 = "198.51.100.7/25"\nipv6 = "fd00:1::7/64"\n',
               resolve=no_interface).server
    assert cfg.ipv4 == IPv4Interface("198.51.100.7/25")
    assert cfg.dhcp4.pool == (IPv4Address("198.51.100.64"), IPv4Address("198.51.100.126"))
    assert cfg.dhcp6.pool == (IPv6Address("fd00:1::1:0"), IPv6Address("fd00:1::1:ffff"))


def test_command_line_overrides_and_relative_data_root(tmp_path: Path) -> None:
    lab = load(tmp_path, '[server]\ninterface = "eth0"\ndata_root = "boot"\n')
    assert lab.server.data_root == tmp_path.resolve() / "boot"
    lab = load(tmp_path, BASE, interface="br7", data_root=Path("/x"))
    assert lab.server.interface == "br7" and lab.server.data_root == Path("/x")
    bare = lab_config({}, interface="br0", data_root=Path("/srv"), resolve=lab_net)
    assert bare.server.interface == "br0" and bare.source == "(command line)"


def test_every_server_key_reaches_server_config(tmp_path: Path) -> None:
    cfg = load(tmp_path, BASE + """
[dhcp4]
pool = ["192.0.2.10", "192.0.2.20"]
lease_seconds = 600
router = "192.0.2.254"
dns = ["192.0.2.1", "192.0.2.2"]
[dhcp6]
pool = ["2001:db8::100", "2001:db8::1ff"]
dns = ["2001:db8::53"]
rapid_commit = false
preferred_seconds = 300
[ra]
managed = true
other = true
interval = 2.5
router_lifetime = 1800
min_interval = 0
retrans_timer = 100
[tftp]
port = 6969
max_blksize = 1432
max_windowsize = 4
timeout = 0.5
retries = 3
allow_absolute = true
[http]
port = 8080
""").server
    assert cfg.dhcp4.pool == (IPv4Address("192.0.2.10"), IPv4Address("192.0.2.20"))
    assert cfg.lease_seconds == 600 and cfg.dhcp4.router == IPv4Address("192.0.2.254")
    assert cfg.dhcp4.dns == (IPv4Address("192.0.2.1"), IPv4Address("192.0.2.2"))
    assert cfg.dhcp6.pool == (IPv6Address("2001:db8::100"), IPv6Address("2001:db8::1ff"))
    assert cfg.dhcp6.dns == (IPv6Address("2001:db8::53"),)
    assert not cfg.dhcp6.rapid_commit and cfg.dhcp6.preferred_seconds == 300
    assert cfg.ra == RaConfig(managed=True, other=True, interval=2.5, router_lifetime=1800,
                              min_interval=0, retrans_timer=100)
    assert cfg.tftp == TftpConfig(port=6969, max_blksize=1432, max_windowsize=4, timeout=0.5,
                                  retries=3, allow_absolute=True)
    assert cfg.http.port == 8080


def test_services_can_be_turned_off(tmp_path: Path) -> None:
    cfg = load(tmp_path, BASE + '[dhcp4]\nmode = "off"\n[dhcp6]\nenabled = false\n'
               "[ra]\nenabled = false\n[tftp]\nenabled = false\n[http]\nenabled = false\n"
               ).server
    assert not (cfg.dhcp4.enabled or cfg.dhcp6.enabled or cfg.ra.enabled or cfg.tftp.enabled
                or cfg.http.enabled)
    assert cfg.dhcp4.mode is Dhcp4Mode.OFF
    proxy = load(tmp_path, BASE + '[dhcp4]\nmode = "proxy"\n').server
    assert proxy.dhcp4.mode is Dhcp4Mode.PROXY


def test_rules_hosts_and_faults(tmp_path: Path) -> None:
    lab = load(tmp_path, BASE + """
[dhcp4]
min_secs = 2
[[rule]]
name = "grub"
arch = 7
vendor_class = "PXEClient"
family = "ipv4"
boot_file = "grub/{{ mac_hyphen }}.efi"
pxelinux_config = "pxelinux.cfg/lab"
pxelinux_prefix = "boot/"
echo_vendor_class = false
[[rule]]
mac = "52-54-00-00-00-01"
withhold = true
[[host]]
mac = "52:54:00:AA:BB:CC"
boot_file = "special.efi"
[[fault]]
type = "drop"
kind = "dhcp4.offer"
count = 0
user_class = "iPXE"
[[fault]]
type = "delay"
kind = "tftp.data"
seconds = 1
nth = 3
[[fault]]
type = "withhold"
arch = [16]
[[fault]]
type = "oack"
mode = "add-option"
option = ["blksize", "9000"]
[[fault]]
type = "tsize"
tsize = 7
[[fault]]
type = "truncate"
size = 10
file = "vmlinuz"
[[fault]]
type = "http-error"
status = 503
""")
    policy, faults = lab.policy, lab.faults
    grub, withheld = policy.rules[:2]
    assert grub.match == Match(arch=(7,), vendor_class="PXEClient", family="ipv4")
    assert grub.boot_file == "grub/{{ mac_hyphen }}.efi" and grub.vendor_class == ""
    assert grub.extra_options == ((209, b"pxelinux.cfg/lab"), (210, b"boot/"))
    assert withheld.withhold and withheld.match.mac == "52:54:00:00:00:01"
    assert policy.rules[2:] == default_profile().rules  # user rules first
    assert policy.hosts[0].mac == "52:54:00:aa:bb:cc" and policy.min_secs == 2
    assert faults == (
        DropPacket("dhcp4.offer", count=0, match=Match(user_class="iPXE")),
        DelayPacket("tftp.data", 1.0, nth=3),
        WithholdOffers(Match(arch=(16,))),
        OackFault(OackMode.ADD_OPTION, option=("blksize", "9000")),
        LieTsize(7), TruncateFile(10, file="vmlinuz"), HttpError(503))


def test_ipxe_script_replaces_or_removes_the_profile_rule(tmp_path: Path) -> None:
    ipxe = client(7, user_classes=("iPXE",))
    custom = load(tmp_path, BASE + '[policy]\nipxe_script = "http://{{ server }}/boot.ipxe"\n')
    assert custom.policy.decide_dhcp4(ipxe).boot_file == "http://192.0.2.1/boot.ipxe"
    none = load(tmp_path, BASE + "[policy]\nipxe_script = false\n")
    assert none.policy.decide_dhcp4(ipxe).boot_file == "ipxe.efi"
    empty = load(tmp_path, BASE + '[policy]\nprofile = "empty"\nipxe_script = "s.ipxe"\n')
    assert empty.policy.decide_dhcp4(ipxe).boot_file == "s.ipxe"
    assert empty.policy.decide_dhcp4(client(7)).boot_file is None  # address only


@pytest.mark.skipif(not HOST_ADDRESS, reason="HostRule has no fixed address yet")
def test_host_fixed_address(tmp_path: Path) -> None:
    policy = load(tmp_path, BASE + '[[host]]\nmac = "52:54:00:00:00:07"\n'
                  'address = "192.0.2.7"\n').policy
    assert policy.hosts[0].address == IPv4Address("192.0.2.7")  # type: ignore[attr-defined]


def test_describe_says_what_is_served_where(tmp_path: Path) -> None:
    text = "\n".join(load(tmp_path, BASE + "[http]\nport = 8080\n").describe())
    for part in ("interface eth0", "data root /srv/tftp", "pool 192.0.2.128-192.0.2.254",
                 "tftp://[2001:db8::1]/", "http://192.0.2.1:8080/", "profile default"):
        assert part in text


# -- the seed's decision tree: default_profile() and classic.toml agree -------------------------

def client(arch: int | None, vendor: str | None = None, user_classes: tuple[str, ...] = (),
           mac: str = MAC, v6: bool = False) -> ClientInfo:
    return ClientInfo(mac=mac, protocol="dhcp6" if v6 else "dhcp4", arch=arch,
                      vendor_class=vendor, user_classes=user_classes,
                      server_address="2001:db8::1" if v6 else "192.0.2.1")


SEED_CASES = [  # (arch, vendor class, user classes, DHCPv4 answer, DHCPv6 answer)
    (None, None, (), "undionly.kpxe", "tftp://[2001:db8::1]/undionly.kpxe"),
    (0, "PXEClient:Arch:00000:UNDI:002001", (), "undionly.kpxe",
     "tftp://[2001:db8::1]/undionly.kpxe"),
    (6, "PXEClient:Arch:00006", (), "ipxe32.efi", "tftp://[2001:db8::1]/ipxe32.efi"),
    (7, "PXEClient:Arch:00007:UNDI:003000", (), "ipxe.efi", "tftp://[2001:db8::1]/ipxe.efi"),
    (15, "HTTPClient:Arch:00015", (), "http://192.0.2.1/ipxe32.efi",
     "http://[2001:db8::1]/ipxe32.efi"),
    (16, "HTTPClient:Arch:00016:UNDI:003000", (), "http://192.0.2.1/ipxe.efi",
     "http://[2001:db8::1]/ipxe.efi"),
    (19, "HTTPClient:Arch:00019", (), None, None),  # arm64 HTTP: no URL in the tree
    (11, "PXEClient:Arch:00011", (), "undionly.kpxe", "tftp://[2001:db8::1]/undionly.kpxe"),
    (0, None, ("iPXE",), "http://192.0.2.1/script.ipxe", "http://[2001:db8::1]/script.ipxe"),
    (7, "PXEClient", ("iPXE",), "http://192.0.2.1/script.ipxe",
     "http://[2001:db8::1]/script.ipxe"),
]


@pytest.fixture(params=["default_profile", "classic.toml"])
def seed_policy(request: pytest.FixtureRequest) -> BootPolicy:
    if request.param == "default_profile":
        return default_profile()
    return load_lab_config(LABS / "classic.toml").policy


@pytest.mark.parametrize("case", SEED_CASES, ids=lambda c: f"arch={c[0]}-{c[2] or c[1]}")
def test_seed_decisions(seed_policy: BootPolicy, case: tuple[
        int | None, str | None, tuple[str, ...], str | None, str | None]) -> None:
    arch, vendor, users, file4, url6 = case
    v4 = seed_policy.decide_dhcp4(client(arch, vendor, users))
    v6 = seed_policy.decide_dhcp6(client(arch, vendor, users, v6=True))
    assert (v4.boot_file, v6.boot_file) == (file4, url6)
    http = arch in (15, 16, 19)  # the HTTPClient echo; PXE clients must not get PXEClient back
    assert v4.vendor_class == v6.vendor_class == ("HTTPClient" if http else None)
    assert not v4.withhold and v4.next_server is None and v4.reason


def test_seed_per_mac_override(tmp_path: Path) -> None:
    policy = load(tmp_path, BASE + '[[host]]\nmac = "52:54:00:00:00:42"\n'
                  'boot_file = "http://{{ server }}/script.ipxe-{{ mac }}"\n'
                  '[[host]]\nmac = "52:54:00:00:00:43"\nwithhold = true\n').policy
    special = "52:54:00:00:00:42"
    v4 = policy.decide_dhcp4(client(7, mac=special))
    assert v4.boot_file == f"http://192.0.2.1/script.ipxe-{special}"
    v6 = policy.decide_dhcp6(client(7, mac=special, v6=True))
    assert v6.boot_file == f"http://[2001:db8::1]/script.ipxe-{special}"
    assert policy.decide_dhcp4(client(16, mac="52:54:00:00:00:43")).withhold
    assert policy.decide_dhcp4(client(7)).boot_file == "ipxe.efi"  # others unchanged


# -- every mistake: the key path and the fix ----------------------------------------------------

ERRORS = [
    # (id, file text, fragments the message must contain)
    ("syntax", "[server\n", ["not valid TOML", "fix the syntax"]),
    ("unknown key", BASE + "[dhcp4]\nleese_seconds = 600\n",
     ["dhcp4.leese_seconds: unknown key", "did you mean 'lease_seconds'?"]),
    ("unknown key no match", BASE + "[tftp]\nzzz = 1\n",
     ["tftp.zzz: unknown key", "the keys of tftp are: allow_absolute, enabled"]),
    ("unknown section", BASE + "[dhpc4]\nmode = 'full'\n", ["dhpc4:", "did you mean 'dhcp4'?"]),
    ("key outside section", 'interface = "eth0"\n', ["interface:", "put it under [server]"]),
    ("section as array", "[[server]]\ninterface = 'eth0'\n", ["server:", "[server] section"]),
    ("rule as table", BASE + "[rule]\nboot_file = 'x'\n", ["rule:", "write [[rule]]"]),
    ("missing interface", '[server]\ndata_root = "/srv"\n',
     ["server.interface: missing", "--interface"]),
    ("bad interface", '[server]\ninterface = "eth 0"\ndata_root = "/srv"\n',
     ["server.interface:", "`ip link`"]),
    ("missing data_root", '[server]\ninterface = "eth0"\n',
     ["server.data_root: missing", "--data-root"]),
    ("string for integer", BASE + '[tftp]\nport = "69"\n',
     ["tftp.port: expected an integer, got string '69'", "port = 1"]),
    ("string for boolean", BASE + '[ra]\nenabled = "yes"\n',
     ["ra.enabled: expected a boolean", "true (or false, without quotes)"]),
    ("boolean for integer", BASE + "[dhcp4]\nmin_secs = true\n",
     ["dhcp4.min_secs: expected an integer, got boolean"]),
    ("string for list", BASE + '[dhcp4]\ndns = "192.0.2.1"\n',
     ["dhcp4.dns: expected an array", 'dns = ["192.0.2.1"]']),
    ("out of range", BASE + "[tftp]\nmax_blksize = 100000\n",
     ["tftp.max_blksize: 100000 is outside 512..65464", "from 512 to 65464"]),
    ("short lease", BASE + "[dhcp4]\nlease_seconds = 10\n", ["dhcp4.lease_seconds", "60"]),
    ("zero timeout", BASE + "[tftp]\ntimeout = 0\n", ["tftp.timeout", "above 0"]),
    ("bad ipv4", BASE + 'ipv4 = "192.0.2.300/24"\n',
     ["server.ipv4:", "not an IPv4 address with prefix length", '"192.0.2.1/24"']),
    ("no prefix", BASE + 'ipv4 = "192.0.2.1"\n', ["server.ipv4:", '"192.0.2.1/24"']),
    ("v6 as v4", BASE + 'ipv4 = "2001:db8::1/64"\n', ["server.ipv4:", "is IPv6"]),
    ("network address", BASE + 'ipv4 = "192.0.2.0/24"\n',
     ["server.ipv4:", "network or broadcast", "server's own address"]),
    ("link-local v6", BASE + 'ipv6 = "fe80::1/64"\n', ["server.ipv6:", "global"]),
    ("ipv6 true", BASE + "ipv6 = true\n", ["server.ipv6:", "(or ipv6 = false)"]),
    ("bad dns", BASE + '[dhcp4]\ndns = ["192.0.2.1", "192.0.2.x"]\n',
     ["dhcp4.dns[1]:", "not an IPv4 address", '"192.0.2.10"']),
    ("v6 dns in v4", BASE + '[dhcp4]\ndns = ["2001:db8::1"]\n',
     ["dhcp4.dns[0]:", "IPv4 is needed"]),
    ("pool outside", BASE + '[dhcp4]\npool = ["192.0.2.10", "10.0.0.5"]\n',
     ["dhcp4.pool[1]: 10.0.0.5 is not inside 192.0.2.0/24",
      "choose an address from 192.0.2.1 to 192.0.2.254"]),
    ("pool reversed", BASE + '[dhcp4]\npool = ["192.0.2.99", "192.0.2.10"]\n',
     ["dhcp4.pool[1]:", 'swap them: pool = ["192.0.2.10", "192.0.2.99"]']),
    ("pool one address", BASE + '[dhcp4]\npool = ["192.0.2.10"]\n',
     ["dhcp4.pool: gives 1 addresses, not 2", "the first and the last"]),
    ("pool broadcast", BASE + '[dhcp4]\npool = ["192.0.2.10", "192.0.2.255"]\n',
     ["dhcp4.pool[1]:", "broadcast", "between them"]),
    ("pool only server", BASE + '[dhcp4]\npool = ["192.0.2.1", "192.0.2.1"]\n',
     ["dhcp4.pool:", "no address to lease", 'mode = "proxy"']),
    ("pool in proxy mode", BASE + '[dhcp4]\nmode = "proxy"\npool = ["192.0.2.10", '
     '"192.0.2.20"]\n', ["dhcp4.pool:", "'proxy'", 'set mode = "full"']),
    ("mode typo", BASE + '[dhcp4]\nmode = "proxi"\n',
     ["dhcp4.mode: 'proxi' is not one of", "did you mean 'proxy'?"]),
    ("router off link", BASE + '[dhcp4]\nrouter = "10.0.0.1"\n',
     ["dhcp4.router: 10.0.0.1 is not inside 192.0.2.0/24", "choose an address"]),
    ("pool6 outside", BASE + '[dhcp6]\npool = ["2001:db9::1", "2001:db8::9"]\n',
     ["dhcp6.pool[0]: 2001:db9::1 is not inside 2001:db8::/64", "choose addresses"]),
    ("preferred over valid", BASE + "[dhcp6]\npreferred_seconds = 7200\n",
     ["dhcp6.preferred_seconds:", "longer than the valid lifetime", "at most 3600"]),
    ("dhcp6 without ipv6", BASE + "ipv6 = false\n[dhcp6]\nenabled = true\n",
     ["dhcp6.enabled:", 'ipv6 = "2001:db8::1/64" or enabled = false']),
    ("dhcp6 keys while off", BASE + "[dhcp6]\nenabled = false\nrapid_commit = true\n",
     ["dhcp6.rapid_commit: has no effect", "remove rapid_commit"]),
    ("ra without ipv6", BASE + "ipv6 = false\n[ra]\nenabled = true\n",
     ["ra.enabled:", "IPv6 prefix"]),
    ("unknown profile", BASE + '[policy]\nprofile = "classic"\n',
     ["policy.profile: 'classic' is not one of 'default', 'empty'"]),
    ("bad ipxe_script", BASE + '[policy]\nipxe_script = "http://{{ sever }}/s.ipxe"\n',
     ["policy.ipxe_script:", "{{ sever }} is not a value pxelab fills into a boot file",
      "did you mean 'server'?", "the names are server, server_ip, mac"]),
    ("template name", BASE + '[[rule]]\nname = "grub"\nboot_file = "{{ mac_hypen }}.efi"\n',
     ["rule[0].boot_file: rule 'grub': {{ mac_hypen }} is not a value",
      "did you mean 'mac_hyphen'?", "mac_hyphen, ip, arch", "docs/templates.md"]),
    ("template far off", BASE + '[[rule]]\nboot_file = "{{ colour }}.efi"\n',
     ["rule[0].boot_file: {{ colour }} is not a value",
      "use one of: arch, ip, mac, mac_hyphen, server, server_ip"]),
    ("template old syntax", BASE + '[[rule]]\nboot_file = "http://{server}/x.efi"\n',
     ["rule[0].boot_file: {server} is the old template syntax", "write {{ server }}"]),
    ("host template", BASE + '[[host]]\nmac = "52:54:00:12:34:56"\nboot_file = "{{ ipv4 }}"\n',
     ["host[0].boot_file: host 52:54:00:12:34:56: {{ ipv4 }} is not a value"]),
    ("arch as string", BASE + '[[rule]]\narch = [7, "9"]\nboot_file = "x"\n',
     ["rule[0].arch[1]: expected an architecture number", "arch = [7, 9]"]),
    ("arch range", BASE + '[[rule]]\narch = 70000\nboot_file = "x"\n',
     ["rule[0].arch: 70000 is outside 0..65535"]),
    ("family typo", BASE + '[[rule]]\nfamily = "ip4"\n',
     ["rule[0].family:", "did you mean 'ipv4'?"]),
    ("bad rule mac", BASE + '[[rule]]\nmac = "52:54:00"\n',
     ["rule[0].mac: '52:54:00' is not a MAC address", "52:54:00:12:34:56"]),
    ("withhold and file", BASE + '[[rule]]\nwithhold = true\nboot_file = "x"\n',
     ["rule[0].boot_file:", "remove boot_file or withhold"]),
    ("duplicate rule", BASE + '[[rule]]\nname = "a"\n[[rule]]\nname = "a"\n',
     ["rule[1].name: 'a' is already the name of rule[0]", "its own name"]),
    ("prefix slash", BASE + '[[rule]]\npxelinux_prefix = "boot"\n',
     ["rule[0].pxelinux_prefix:", "'bootldlinux.c32'", 'write "boot/"']),
    ("echo true", BASE + "[[rule]]\necho_vendor_class = true\n",
     ["rule[0].echo_vendor_class: expected a string, or false"]),
    ("rule unknown key", BASE + '[[rule]]\nbootfile = "x"\n',
     ["rule[0].bootfile: unknown key", "did you mean 'boot_file'?"]),
    ("host without mac", BASE + '[[host]]\nboot_file = "x"\n',
     ["host[0].mac: missing", 'mac = "52:54:00:12:34:56"']),
    ("host bad mac", BASE + '[[host]]\nmac = "zz:54:00:12:34:56"\n',
     ["host[0].mac:", "not a MAC address"]),
    ("host twice", BASE + '[[host]]\nmac = "52:54:00:12:34:56"\n'
     '[[host]]\nmac = "52-54-00-12-34-56"\n', ["host[1].mac:", "merge the two entries"]),
    ("fault without type", BASE + '[[fault]]\nkind = "dhcp4.offer"\n',
     ["fault[0].type: missing", "drop, delay, withhold"]),
    ("fault type typo", BASE + '[[fault]]\ntype = "dorp"\n',
     ["fault[0].type: unknown fault type 'dorp'", "did you mean 'drop'?"]),
    ("fault without kind", BASE + '[[fault]]\ntype = "drop"\n',
     ["fault[0].kind: missing", 'kind = "dhcp4.offer"']),
    ("fault kind typo", BASE + '[[fault]]\ntype = "drop"\nkind = "dhcp4.ofer"\n',
     ["fault[0].kind:", "did you mean 'dhcp4.offer'?"]),
    ("fault nth", BASE + '[[fault]]\ntype = "drop"\nkind = "tftp.rrq"\nnth = 0\n',
     ["fault[0].nth: 0 is outside 1..1000000"]),
    ("delay without seconds", BASE + '[[fault]]\ntype = "delay"\nkind = "tftp.rrq"\n',
     ["fault[0].seconds: missing", "seconds = 2"]),
    ("delay too long", BASE + '[[fault]]\ntype = "delay"\nkind = "tftp.rrq"\nseconds = 900\n',
     ["fault[0].seconds:", "at most 600"]),
    ("oack mode", BASE + '[[fault]]\ntype = "oack"\nmode = "refused"\n',
     ["fault[0].mode:", "did you mean 'refuse'?"]),
    ("oack option", BASE + '[[fault]]\ntype = "oack"\nmode = "add-option"\noption = ["x"]\n',
     ["fault[0].option: gives 1 strings, not 2", '["windowsize", "64"]']),
    ("http status", BASE + '[[fault]]\ntype = "http-error"\nstatus = 200\n',
     ["fault[0].status: 200 is outside 400..599"]),
    ("key of another fault", BASE + '[[fault]]\ntype = "tsize"\ntsize = 5\nkind = "x"\n',
     ["fault[0].kind: unknown key", "the keys of fault[0] are: file, tsize, type"]),
]


@pytest.mark.parametrize(("text", "fragments"), [e[1:] for e in ERRORS],
                         ids=[e[0] for e in ERRORS])
def test_mistakes_name_the_key_and_the_fix(tmp_path: Path, text: str,
                                           fragments: list[str]) -> None:
    message = error(tmp_path, text)
    for fragment in fragments:
        assert fragment in message


@pytest.mark.skipif(not PACKET_FILE, reason="DropPacket has no file glob yet")
def test_drop_and_delay_limited_to_one_tftp_file(tmp_path: Path) -> None:
    lab = load(tmp_path, BASE + '[[fault]]\ntype = "drop"\nkind = "tftp.rrq"\ncount = 0\n'
               'file = "ldlinux.c32"\n')
    assert lab.faults == (DropPacket("tftp.rrq", count=0, file="ldlinux.c32"),)
    message = error(tmp_path, BASE + '[[fault]]\ntype = "delay"\nkind = "dhcp4.offer"\n'
                    'seconds = 1\nfile = "x"\n')
    assert "fault[0].file: dhcp4.offer packets carry no file name" in message
    assert "use a tftp.* kind" in message


@pytest.mark.skipif(not HOST_ADDRESS, reason="HostRule has no fixed address yet")
@pytest.mark.parametrize(("text", "fragment"), [
    ('address = "10.0.0.7"', "host[0].address: 10.0.0.7 is not a host address in 192.0.2.0/24"),
    ('address = "192.0.2.1"', "host[0].address: 192.0.2.1 is already taken by the server"),
])
def test_host_address_mistakes(tmp_path: Path, text: str, fragment: str) -> None:
    assert fragment in error(tmp_path, BASE + f'[[host]]\nmac = "{MAC}"\n{text}\n')


def test_addresses_the_interface_cannot_give(tmp_path: Path) -> None:
    missing = error(tmp_path, BASE, resolve=no_interface)
    assert "server.ipv4: not set, and there is no interface 'eth0'" in missing
    assert "give the address in [server]" in missing

    def v6_only(interface: str) -> InterfaceAddresses:
        return None, IPv6Interface("2001:db8::1/64")

    assert "server.ipv4: not set, and eth0 has no global IPv4 address" in error(
        tmp_path, BASE, resolve=v6_only)
    tiny = error(tmp_path, BASE + 'ipv4 = "192.0.2.1/32"\n')
    assert "dhcp4.mode: no address to lease" in tiny and 'mode = "proxy"' in tiny
    ok = load(tmp_path, BASE + 'ipv4 = "192.0.2.1/32"\n[dhcp4]\nmode = "proxy"\n').server
    assert ok.dhcp4.pool == (ip_interface("192.0.2.1/32").ip,) * 2


def test_unreadable_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"absent\.toml: cannot read the lab file"):
        load_lab_config(tmp_path / "absent.toml")
